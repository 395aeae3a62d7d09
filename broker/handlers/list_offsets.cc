// ListOffsets (key 2): -1 latest (the high watermark, which is also the last stable
// offset while there are no transactions), -2 earliest, -3 the offset of the largest
// timestamp (v7+), -4 earliest local (v8+, = earliest: no tiered storage), and a
// timestamp: the first offset whose timestamp is >= it.
#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"

#include <map>

namespace sluice::broker {
namespace {

using proto::error_code;
using partition_response = proto::list_offsets_response::list_offsets_partition_response;

constexpr int64_t latest = -1, earliest = -2, max_timestamp = -3, earliest_local = -4, latest_tiered = -5;

struct lookup {
    size_t topic_i;
    size_t part_i;
    topic_partition tp;
    int64_t timestamp;
    int32_t current_leader_epoch;
    bool from_replica;  // replica_id >= 0: a follower (or a debugging tool) asks, Kafka answers the log end
};

partition_response lookup_on_owner(shard& sh, const lookup& l, int16_t version) {
    partition_response out;
    out.partition_index = l.tp.partition;
    partition* p = sh.find(l.tp);
    if (p == nullptr) {
        out.error_code = static_cast<int16_t>(error_code::not_leader_or_follower);
        return out;
    }
    if (l.current_leader_epoch >= 0 && l.current_leader_epoch != p->leader_epoch) {
        out.error_code = static_cast<int16_t>(l.current_leader_epoch > p->leader_epoch
                                                  ? error_code::unknown_leader_epoch
                                                  : error_code::fenced_leader_epoch);
        return out;
    }
    const auto& log = *p->log;
    out.leader_epoch = p->leader_epoch;
    out.timestamp = -1;
    switch (l.timestamp) {
        case latest: out.offset = l.from_replica ? log.log_end_offset() : log.high_watermark(); break;
        case earliest:
        case earliest_local: out.offset = log.log_start_offset(); break;
        case latest_tiered: out.offset = -1; break;
        case max_timestamp: {
            auto m = log.max_timestamp();
            out.offset = m.offset;
            out.timestamp = m.timestamp;
            break;
        }
        default: {
            if (l.timestamp < 0) {
                out.error_code = static_cast<int16_t>(error_code::invalid_request);
                break;
            }
            auto r = log.offset_for_timestamp(l.timestamp);
            if (!r) {
                out.error_code = static_cast<int16_t>(error_code::kafka_storage_error);
            } else if (r->has_value() && (*r)->offset < log.high_watermark()) {
                out.offset = (*r)->offset;
                out.timestamp = (*r)->timestamp;
            } else {
                out.offset = -1;
            }
        }
    }
    if (version == 0 && out.error_code == 0) out.old_style_offsets = {out.offset};
    return out;
}

struct list_state {
    request_ptr req;
    proto::list_offsets_response resp;
    size_t pending = 0;
};

}  // namespace

void handle_list_offsets(request_ptr req) {
    proto::list_offsets_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("list_offsets", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed ListOffsets request");
    }
    shard& sh = req->sh();
    server& srv = sh.srv();
    auto state = std::make_shared<list_state>();
    state->req = req;
    std::map<unsigned, std::vector<lookup>> by_shard;
    for (size_t ti = 0; ti < body.topics.size(); ++ti) {
        const auto& t = body.topics[ti];
        proto::list_offsets_response::list_offsets_topic_response tr;
        tr.name = t.name;
        for (size_t pi = 0; pi < t.partitions.size(); ++pi) {
            const auto& p = t.partitions[pi];
            partition_response pr;
            pr.partition_index = p.partition_index;
            auto lead = check_leader(sh, t.name, p.partition_index);
            if (lead == leadership::leader) {
                by_shard[srv.shard_of(t.name, p.partition_index)].push_back(
                    {ti, pi, {t.name, p.partition_index}, p.timestamp, p.current_leader_epoch, body.replica_id >= 0});
            } else {
                pr.error_code = static_cast<int16_t>(lead == leadership::unknown_partition
                                                         ? error_code::unknown_topic_or_partition
                                                     : lead == leadership::no_leader ? error_code::leader_not_available
                                                                                     : error_code::not_leader_or_follower);
            }
            tr.partitions.push_back(std::move(pr));
        }
        state->resp.topics.push_back(std::move(tr));
    }
    if (by_shard.empty()) return req->respond(state->resp);
    state->pending = by_shard.size();
    int16_t version = req->version();
    for (auto& [target, lookups] : by_shard) {
        srv.invoke_on(
            sh.id(), target,
            [lookups, version](shard& owner) {
                std::vector<std::tuple<size_t, size_t, partition_response>> out;
                for (const auto& l : lookups) out.emplace_back(l.topic_i, l.part_i, lookup_on_owner(owner, l, version));
                return out;
            },
            [state](std::vector<std::tuple<size_t, size_t, partition_response>> out) {
                for (auto& [ti, pi, pr] : out) state->resp.topics[ti].partitions[pi] = std::move(pr);
                if (--state->pending == 0) state->req->respond(state->resp);
            });
    }
}

}  // namespace sluice::broker
