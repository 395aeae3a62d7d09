#pragma once
// Getting a group request to the shard that coordinates the group and its answer back.
//
// A group's state lives on the shard owning its __consumer_offsets partition. Handlers
// run on the connection's shard, so they compute the partition, hop there, and answer on
// the connection's shard. JoinGroup and SyncGroup answers may come much later (parked
// until the rebalance step completes): reply_on_origin wraps the request so the
// coordinator shard never touches it; the answer, and the request itself, travel back
// to the shard it belongs to.
//
// Concurrency: route_to_coordinator runs on the request's shard; the reply function may
// be called (once) on any shard.
#include "broker/groups/group_manager.h"
#include "broker/groups/hash.h"
#include "broker/request.h"
#include "broker/server.h"
#include "broker/shard.h"

#include <functional>
#include <memory>

namespace sluice::broker::groups {

// The __consumer_offsets partition of `group_id` as the request's shard sees the cluster.
inline int32_t coordinator_partition(shard& sh, std::string_view group_id) {
    return offsets_partition_for(group_id, offsets_partition_count(*sh.metadata(), sh.srv().config()));
}

// Holds a request away from its shard; whoever drops it last sends it home, so the
// session and connection behind it are only ever released on their own thread.
struct parked_request {
    request_ptr req;
    shard* origin = nullptr;
    ~parked_request() {
        if (!req) return;
        if (shards_stopping.load()) {
            (void)new request_ptr(std::move(req));  // deliberate leak at exit, see shards_stopping
            return;
        }
        origin->post([r = std::move(req)]() {});
    }
};

template <typename Response>
std::function<void(Response)> reply_on_origin(request_ptr req) {
    shard* origin = &req->sh();
    auto held = std::make_shared<parked_request>();
    held->req = std::move(req);
    held->origin = origin;
    return [held](Response resp) {
        request_ptr r = std::move(held->req);
        held->req = nullptr;
        if (!r) return;
        held->origin->post([r = std::move(r), resp = std::move(resp)]() { r->respond(resp); });
    };
}

// Runs work(group_manager&) on the coordinator shard of partition p; work's result is
// handed to done on the request's shard.
template <typename Work, typename Done>
void on_coordinator(shard& sh, int32_t p, Work work, Done done) {
    server& srv = sh.srv();
    srv.invoke_on(sh.id(), srv.shard_of(offsets_topic, p), [work = std::move(work)](shard& owner) mutable {
        return work(owner.groups());
    }, std::move(done));
}

}  // namespace sluice::broker::groups
