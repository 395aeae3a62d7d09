// Produce (key 0). Batches are validated and appended on the shard that owns each
// partition; the response is assembled on the connection's shard once every owner has
// answered. acks=0 gets no response; acks=1 is answered after the leader's append;
// acks=-1 once the high watermark (the smallest log end in the ISR) has passed the
// records, or REQUEST_TIMED_OUT after the request's timeout_ms (broker/replication).
#include "base/clock.h"
#include "base/log.h"
#include "broker/configs/config_table.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/producer_state.h"
#include "broker/protocol/messages.h"
#include "broker/replication/leader.h"
#include "broker/server.h"
#include "broker/topics.h"

#include <charconv>
#include <chrono>
#include <map>
#include <optional>
#include <set>

namespace sluice::broker {
namespace {

using proto::error_code;

struct part_ref {
    size_t topic_i;
    size_t part_i;
    topic_partition tp;
    std::span<uint8_t> records;
    // Set when the batches passed storage::validate_batches on the connection's shard;
    // otherwise the owner validates (and reports what is wrong).
    std::optional<storage::batch_summary> validated;
};

struct part_outcome {
    int16_t error = 0;
    int64_t base_offset = -1;
    int64_t log_append_time = -1;
    int64_t log_start_offset = -1;
    std::string message;
    int64_t end_offset = -1;  // log end right after this append (what acks=-1 waits for)
    bool awaiting_ack = false;
};

// Kafka's LogValidator: a compacted topic needs a key on every record, since compaction
// keeps the last record per key. Uncompressed batches are checked record by record;
// compressed ones are accepted unchecked (the broker links no codecs; the cleaner keeps
// compressed batches whole, so nothing is lost, but a keyless record survives there).
// Structural problems are left to the append's validation, which reports them.
std::optional<part_outcome> check_keys_for_compaction(const partition& p, std::span<const uint8_t> records) {
    if (!p.log->config().compacted()) return std::nullopt;
    size_t at = 0;
    while (at + storage::batch_header_size <= records.size()) {
        auto h = storage::parse_batch_header(records.data() + at);
        if (h.batch_length <= 0 || h.size_bytes() > records.size() - at) break;
        auto batch = records.subspan(at, h.size_bytes());
        at += h.size_bytes();
        if (h.is_control() || h.codec() != storage::compression::none) continue;
        auto decoded = storage::decode_records(batch);
        if (!decoded) continue;
        for (const auto& rec : *decoded) {
            if (rec.key) continue;
            return part_outcome{static_cast<int16_t>(error_code::invalid_record), -1, -1, -1,
                                fmt::format("Compacted topic cannot accept message without key in topic partition {}-{}.",
                                            p.id.topic, p.id.partition)};
        }
    }
    return std::nullopt;
}

part_outcome append_on_owner(shard& sh, const part_ref& ref) {
    partition* p = sh.find(ref.tp);
    if (p == nullptr) return {static_cast<int16_t>(error_code::not_leader_or_follower)};
    // The magic byte sits at offset 16 in every message format; 0/1 are the pre-0.11
    // message sets that only Produce v0-2 clients send, which Sluice does not store.
    if (ref.records.size() > 16 && ref.records[16] != 2)
        return {static_cast<int16_t>(error_code::unsupported_for_message_format), -1, -1, -1,
                "only record batch v2 (magic 2) is accepted"};
    if (ref.records.size() < storage::batch_header_size)
        return {static_cast<int16_t>(error_code::corrupt_message), -1, -1, -1, "records shorter than a batch header"};
    auto header = storage::parse_batch_header(ref.records.data());
    if (auto keyless = check_keys_for_compaction(*p, ref.records)) return *keyless;
    if (auto v = check_sequence(*p, header))
        return {v->error, v->duplicate_of, -1, v->error == 0 ? p->log->log_start_offset() : -1, v->message};
    auto r = p->log->append(ref.records, p->leader_epoch, wall_ms(), storage::validate_origin::client,
                            ref.validated ? &*ref.validated : nullptr);
    if (r.error != storage::log_errc::ok) {
        if (r.error == storage::log_errc::storage_error)
            log::error("produce", "append to {}-{} failed: {}", ref.tp.topic, ref.tp.partition, r.io_error.message());
        return {storage::kafka_error_code(r.error), -1, -1, -1,
                std::string(storage::make_error_code(r.error).message())};
    }
    remember_sequence(*p, header, r.base_offset);
    sh.note_use(*p);
    replication::after_append(*p);
    part_outcome out{0, r.base_offset, r.log_append_time, r.log_start_offset};
    out.end_offset = p->log->log_end_offset();
    return out;
}

// min.insync.replicas: the topic override, else server.properties, else 1.
int64_t min_insync(shard& sh, const coord::topic_info* t) {
    int64_t min_isr = configs::broker_long(sh.srv().config().raw, "min.insync.replicas", 1);
    if (t == nullptr) return min_isr;
    if (auto it = t->configs.find("min.insync.replicas"); it != t->configs.end()) {
        int64_t v = 0;
        auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
        if (ec == std::errc{} && end == it->second.data() + it->second.size()) min_isr = v;
    }
    return min_isr;
}

// acks=-1 needs min.insync.replicas replicas in the ISR, as Kafka's
// Partition.appendRecordsToLeader checks before writing.
bool isr_too_small(shard& sh, const std::string& topic, int32_t partition) {
    const auto* t = find_topic(*sh.metadata(), topic);
    if (t == nullptr) return false;
    auto st = t->partitions.find(partition);
    if (st == t->partitions.end()) return false;
    return static_cast<int64_t>(st->second.isr.size()) < min_insync(sh, t);
}

// The owner's side of acks=-1: after the append, wait (on the owner) until the high
// watermark reaches the records; the answer is posted to the connection's shard.
void await_ack_on_owner(shard& owner, const topic_partition& tp, part_outcome& o, std::weak_ptr<void> alive,
                        std::function<void(int16_t)> done) {
    partition* p = owner.find(tp);
    if (p == nullptr || o.error != 0 || p->log->high_watermark() >= o.end_offset) return;
    if (!p->leader.leading) {
        o.error = static_cast<int16_t>(error_code::not_leader_or_follower);
        return;
    }
    o.awaiting_ack = true;
    replication::wait_for_ack(*p, o.end_offset, min_insync(owner, find_topic(*owner.metadata(), tp.topic)),
                              std::move(alive), std::move(done));
}

struct produce_state : std::enable_shared_from_this<produce_state> {
    request_ptr req;
    proto::produce_response resp;
    size_t pending = 0;     // owner shards still appending
    int64_t awaiting = 0;   // acks=-1 partitions whose high watermark has not arrived
    bool acks_zero = false;
    bool finished = false;
    uint64_t timer = 0;
    std::set<std::pair<size_t, size_t>> unacked;

    // All appends are back: answer now, or once the acks arrive (timeout_ms at most).
    void appended(int32_t timeout_ms) {
        if (awaiting <= 0) return finish();
        auto self = shared_from_this();
        timer = req->sh().reactor().add_timer(std::chrono::milliseconds(std::max(timeout_ms, 0)), [self]() {
            self->timer = 0;
            for (auto [ti, pi] : self->unacked) {
                auto& pr = self->resp.responses[ti].partition_responses[pi];
                pr.error_code = static_cast<int16_t>(error_code::request_timed_out);
                pr.error_message = "the ISR did not acknowledge the records within timeout_ms";
            }
            self->finish();
        });
    }
    void acked(size_t ti, size_t pi, int16_t error) {
        if (finished) return;
        unacked.erase({ti, pi});
        if (error != 0) resp.responses[ti].partition_responses[pi].error_code = error;
        if (--awaiting == 0 && pending == 0) finish();
    }
    void finish() {
        if (finished) return;
        finished = true;
        if (timer != 0) req->sh().reactor().cancel_timer(timer);
        timer = 0;
        if (acks_zero) return req->respond_nothing();
        req->respond(resp);
    }
};

}  // namespace

void handle_produce(request_ptr req) {
    auto body = std::make_shared<proto::produce_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("produce", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed Produce request");
    }
    shard& sh = req->sh();
    server& srv = sh.srv();
    auto state = std::make_shared<produce_state>();
    state->req = req;
    state->acks_zero = body->acks == 0;
    bool acks_valid = body->acks == 0 || body->acks == 1 || body->acks == -1;

    std::map<unsigned, std::vector<part_ref>> by_shard;
    for (size_t ti = 0; ti < body->topic_data.size(); ++ti) {
        const auto& td = body->topic_data[ti];
        proto::produce_response::topic_produce_response tr;
        tr.name = td.name;
        for (size_t pi = 0; pi < td.partition_data.size(); ++pi) {
            const auto& pd = td.partition_data[pi];
            proto::produce_response::partition_produce_response pr;
            pr.index = pd.index;
            pr.base_offset = -1;
            auto lead = check_leader(sh, td.name, pd.index);
            if (!acks_valid) {
                pr.error_code = static_cast<int16_t>(error_code::invalid_required_acks);
            } else if (lead == leadership::unknown_partition) {
                bool topic_exists = find_topic(*sh.metadata(), td.name) != nullptr;
                if (!topic_exists && srv.config().auto_create_topics_enable) auto_create_topic(sh, td.name);
                pr.error_code = static_cast<int16_t>(error_code::unknown_topic_or_partition);
            } else if (lead == leadership::no_leader) {
                pr.error_code = static_cast<int16_t>(error_code::leader_not_available);
            } else if (lead == leadership::not_leader) {
                pr.error_code = static_cast<int16_t>(error_code::not_leader_or_follower);
            } else if (pd.records.is_null || pd.records.view.empty()) {
                pr.error_code = static_cast<int16_t>(error_code::corrupt_message);
            } else if (body->acks == -1 && isr_too_small(sh, td.name, pd.index)) {
                pr.error_code = static_cast<int16_t>(error_code::not_enough_replicas);
                pr.error_message = "the ISR is smaller than min.insync.replicas";
            } else {
                // The frame is ours: batch headers get their offsets written in place.
                auto* data = const_cast<uint8_t*>(pd.records.view.data());
                part_ref ref{ti, pi, {td.name, pd.index}, {data, pd.records.view.size()}, std::nullopt};
                // CRCs are checked here, on the core that received the frame, so the
                // owner's core only appends. (Measured no cheaper per byte: a 1 MiB frame
                // is out of cache either way; bench/results/receive-in-place-2026-11-25.md.)
                if (auto v = storage::validate_batches(ref.records)) ref.validated = *v;
                by_shard[srv.shard_of(td.name, pd.index)].push_back(std::move(ref));
            }
            tr.partition_responses.push_back(std::move(pr));
        }
        state->resp.responses.push_back(std::move(tr));
    }
    if (by_shard.empty()) return state->finish();
    state->pending = by_shard.size();
    const bool acks_all = body->acks == -1;
    const int32_t timeout_ms = body->timeout_ms;
    shard* origin = &sh;
    std::weak_ptr<produce_state> weak_state = state;
    for (auto& [target, refs] : by_shard) {
        srv.invoke_on(
            sh.id(), target,
            // `body` keeps the decoded request (and req the frame) alive until every
            // owner has appended.
            [refs = std::move(refs), body, acks_all, origin, weak_state](shard& owner) {
                std::vector<std::pair<const part_ref*, part_outcome>> out;
                for (const auto& ref : refs) {
                    out.emplace_back(&ref, append_on_owner(owner, ref));
                    if (!acks_all) continue;
                    await_ack_on_owner(owner, ref.tp, out.back().second, weak_state,
                                       [origin, weak_state, ti = ref.topic_i, pi = ref.part_i](int16_t error) {
                                           origin->post([weak_state, ti, pi, error]() {
                                               if (auto st = weak_state.lock()) st->acked(ti, pi, error);
                                           });
                                       });
                }
                std::vector<std::tuple<size_t, size_t, part_outcome>> results;
                for (auto& [ref, o] : out) results.emplace_back(ref->topic_i, ref->part_i, std::move(o));
                return results;
            },
            [state, timeout_ms](std::vector<std::tuple<size_t, size_t, part_outcome>> results) {
                for (auto& [ti, pi, o] : results) {
                    auto& pr = state->resp.responses[ti].partition_responses[pi];
                    pr.error_code = o.error;
                    pr.base_offset = o.base_offset;
                    pr.log_append_time_ms = o.log_append_time;
                    pr.log_start_offset = o.log_start_offset;
                    if (o.error != 0 && !o.message.empty()) pr.error_message = o.message;
                    if (o.awaiting_ack) {
                        ++state->awaiting;
                        state->unacked.insert({ti, pi});
                    }
                }
                if (--state->pending == 0) state->appended(timeout_ms);
            });
    }
}

}  // namespace sluice::broker
