// SyncGroup (key 14). The leader's SyncGroup carries every member's assignment; it is
// stored in __consumer_offsets (GroupMetadataValue) before any member gets its share.
// Followers' SyncGroups are parked until then.
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {

void handle_sync_group(request_ptr req) {
    auto body = std::make_shared<proto::sync_group_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed SyncGroup request");
    }
    groups::sync_request sr;
    sr.generation_id = body->generation_id;
    sr.member_id = body->member_id;
    sr.group_instance_id = body->group_instance_id;
    sr.protocol_type = body->protocol_type;
    sr.protocol_name = body->protocol_name;
    for (auto& a : body->assignments) sr.assignments[a.member_id] = a.assignment;

    shard& sh = req->sh();
    int32_t p = groups::coordinator_partition(sh, body->group_id);
    auto reply = groups::reply_on_origin<proto::sync_group_response>(req);
    sh.srv().invoke_on(
        sh.id(), sh.srv().shard_of(groups::offsets_topic, p),
        [p, group_id = body->group_id, sr = std::move(sr), reply](shard& owner) mutable {
            owner.groups().sync(p, group_id, std::move(sr), [reply](groups::sync_result res) {
                proto::sync_group_response resp;
                resp.error_code = res.error;
                resp.protocol_type = std::move(res.protocol_type);
                resp.protocol_name = std::move(res.protocol_name);
                resp.assignment = std::move(res.assignment);
                reply(std::move(resp));
            });
            return 0;
        },
        [](int) {});
}

}  // namespace sluice::broker
