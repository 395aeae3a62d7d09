// DeleteRecords (key 21), sent to each partition's leader: moves the log start offset
// up to the requested offset (-1: the high watermark) on the shard that owns the
// partition; whole segments below it are deleted, fetches below it get
// OFFSET_OUT_OF_RANGE, and the new start is checkpointed (periodically and at
// shutdown). An offset above the high watermark is OFFSET_OUT_OF_RANGE, as in Kafka.
// The answer carries the new low watermark. With replicas, Kafka waits until the
// followers' log starts moved too; Sluice's followers are not there yet.
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
using part_result = proto::delete_records_response::delete_records_partition_result;

struct deletion {
    size_t topic_i;
    size_t part_i;
    topic_partition tp;
    int64_t offset;
};

part_result delete_on_owner(shard& sh, const deletion& d) {
    part_result out;
    out.partition_index = d.tp.partition;
    out.low_watermark = -1;
    partition* p = sh.find(d.tp);
    if (p == nullptr) {
        out.error_code = static_cast<int16_t>(error_code::not_leader_or_follower);
        return out;
    }
    auto& log = *p->log;
    int64_t target = d.offset == -1 ? log.high_watermark() : d.offset;
    if (target < 0 || target > log.high_watermark()) {
        out.error_code = static_cast<int16_t>(error_code::offset_out_of_range);
        return out;
    }
    if (auto ec = log.advance_log_start(target)) {
        log::error("delete_records", "{}-{}: cannot advance log start to {}: {}", d.tp.topic, d.tp.partition, target,
                   ec.message());
        out.error_code = static_cast<int16_t>(error_code::kafka_storage_error);
        return out;
    }
    out.low_watermark = log.log_start_offset();
    sh.note_use(*p);
    return out;
}

struct delete_state {
    request_ptr req;
    proto::delete_records_response resp;
    size_t pending = 0;
};

}  // namespace

void handle_delete_records(request_ptr req) {
    proto::delete_records_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("delete_records", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed DeleteRecords request");
    }
    shard& sh = req->sh();
    server& srv = sh.srv();
    auto state = std::make_shared<delete_state>();
    state->req = req;
    std::map<unsigned, std::vector<deletion>> by_shard;
    for (size_t ti = 0; ti < body.topics.size(); ++ti) {
        const auto& t = body.topics[ti];
        proto::delete_records_response::delete_records_topic_result tr;
        tr.name = t.name;
        for (size_t pi = 0; pi < t.partitions.size(); ++pi) {
            const auto& p = t.partitions[pi];
            part_result pr;
            pr.partition_index = p.partition_index;
            pr.low_watermark = -1;
            auto lead = check_leader(sh, t.name, p.partition_index);
            if (lead == leadership::leader) {
                by_shard[srv.shard_of(t.name, p.partition_index)].push_back(
                    {ti, pi, {t.name, p.partition_index}, p.offset});
            } else {
                pr.error_code = static_cast<int16_t>(lead == leadership::unknown_partition
                                                         ? error_code::unknown_topic_or_partition
                                                     : lead == leadership::no_leader ? error_code::leader_not_available
                                                                                     : error_code::not_leader_or_follower);
            }
            tr.partitions.push_back(pr);
        }
        state->resp.topics.push_back(std::move(tr));
    }
    if (by_shard.empty()) return req->respond(state->resp);
    state->pending = by_shard.size();
    for (auto& [target, work] : by_shard) {
        srv.invoke_on(
            sh.id(), target,
            [work](shard& owner) {
                std::vector<std::tuple<size_t, size_t, part_result>> out;
                for (const auto& d : work) out.emplace_back(d.topic_i, d.part_i, delete_on_owner(owner, d));
                return out;
            },
            [state](std::vector<std::tuple<size_t, size_t, part_result>> out) {
                for (auto& [ti, pi, pr] : out) state->resp.topics[ti].partitions[pi] = pr;
                if (--state->pending == 0) state->req->respond(state->resp);
            });
    }
}

}  // namespace sluice::broker
