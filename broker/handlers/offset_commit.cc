// OffsetCommit (key 8), v1+ (v0 stored offsets in ZooKeeper in Kafka; no client needs it
// against a modern broker). Partitions of unknown topics get UNKNOWN_TOPIC_OR_PARTITION
// here, as Kafka's request handler does; the rest is validated against the group and
// written to __consumer_offsets on the coordinator shard, and answered after the append.
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/topics.h"

#include <algorithm>
#include <chrono>

namespace sluice::broker {

void handle_offset_commit(request_ptr req) {
    auto body = std::make_shared<proto::offset_commit_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed OffsetCommit request");
    }
    int16_t version = req->version();
    shard& sh = req->sh();
    auto resp = std::make_shared<proto::offset_commit_response>();
    // Response slot of each entry sent to the coordinator.
    auto slots = std::make_shared<std::vector<std::pair<size_t, size_t>>>();
    std::vector<groups::commit_entry> entries;
    int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch())
                      .count();
    for (size_t ti = 0; ti < body->topics.size(); ++ti) {
        const auto& t = body->topics[ti];
        proto::offset_commit_response::offset_commit_response_topic rt;
        rt.name = t.name;
        const auto* topic = find_topic(*sh.metadata(), t.name);
        for (size_t pi = 0; pi < t.partitions.size(); ++pi) {
            const auto& part = t.partitions[pi];
            proto::offset_commit_response::offset_commit_response_partition rp;
            rp.partition_index = part.partition_index;
            if (topic == nullptr || !topic->assignment.count(part.partition_index)) {
                rp.error_code = static_cast<int16_t>(proto::error_code::unknown_topic_or_partition);
            } else {
                groups::commit_entry e;
                e.topic = t.name;
                e.partition = part.partition_index;
                e.value.offset = part.committed_offset;
                e.value.leader_epoch = part.committed_leader_epoch;
                e.value.metadata = part.committed_metadata.value_or("");
                e.value.commit_timestamp = version == 1 && part.commit_timestamp >= 0 ? part.commit_timestamp : now;
                if (version >= 2 && version <= 4 && body->retention_time_ms >= 0)
                    e.value.expire_timestamp = now + body->retention_time_ms;
                entries.push_back(std::move(e));
                slots->emplace_back(ti, pi);
            }
            rt.partitions.push_back(rp);
        }
        resp->topics.push_back(std::move(rt));
    }
    if (entries.empty()) return req->respond(*resp);
    int32_t p = groups::coordinator_partition(sh, body->group_id);
    // Answered once the commit is in every ISR replica's copy of __consumer_offsets (Kafka's
    // offsets.commit.required.acks=-1), so a coordinator failover keeps it.
    auto answer = groups::reply_on_origin<proto::offset_commit_response>(req);
    groups::on_coordinator(
        sh, p,
        [p, body, entries = std::move(entries), resp, slots, answer](groups::group_manager& gm) mutable {
            auto errors = gm.commit(p, body->group_id, body->generation_id_or_member_epoch, body->member_id,
                                    body->group_instance_id, std::move(entries));
            for (size_t i = 0; i < errors.size() && i < slots->size(); ++i) {
                auto [ti, pi] = (*slots)[i];
                resp->topics[ti].partitions[pi].error_code = errors[i];
            }
            bool stored = std::any_of(errors.begin(), errors.end(), [](int16_t e) { return e == 0; });
            if (!stored) {
                answer(*resp);
                return 0;
            }
            gm.when_replicated(p, [resp, slots, answer](int16_t e) {
                if (e != 0)
                    for (auto [ti, pi] : *slots)
                        if (resp->topics[ti].partitions[pi].error_code == 0) resp->topics[ti].partitions[pi].error_code = e;
                answer(*resp);
            });
            return 0;
        },
        [](int) {});
}

}  // namespace sluice::broker
