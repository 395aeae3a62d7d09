// Produce (key 0). Batches are validated and appended on the shard that owns each
// partition; the response is assembled on the connection's shard once every owner has
// answered. acks=0 gets no response; acks=1 and acks=-1 are answered after the append
// (with one replica, -1 behaves as 1; the high watermark moves with the log end).
#include "base/log.h"
#include "broker/configs/config_table.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"

#include <charconv>
#include <chrono>
#include <map>
#include <optional>

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
};

int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// Idempotent producers: a retried batch (same producer, epoch and sequence as one of
// the last five) is answered with its original offset and not written again; a gap in
// sequence numbers is OUT_OF_ORDER_SEQUENCE_NUMBER. State is in memory only: after a
// restart the first batch of a known producer is accepted as is.
std::optional<part_outcome> check_sequence(partition& p, const storage::batch_header& h) {
    if (h.producer_id < 0) return std::nullopt;
    auto it = p.producers.find(h.producer_id);
    if (it == p.producers.end()) return std::nullopt;
    auto& e = it->second;
    if (h.producer_epoch < e.epoch) return part_outcome{static_cast<int16_t>(error_code::invalid_producer_epoch)};
    if (h.producer_epoch > e.epoch) return std::nullopt;
    for (const auto& b : e.recent)
        if (b.first_sequence == h.base_sequence) return part_outcome{0, b.base_offset, -1, p.log->log_start_offset()};
    if (!e.recent.empty()) {
        int32_t expected = e.recent.back().last_sequence + 1;
        if (expected < 0) expected = 0;  // sequence numbers wrap at INT32_MAX
        if (h.base_sequence != expected)
            return part_outcome{static_cast<int16_t>(error_code::out_of_order_sequence_number), -1, -1, -1,
                                fmt::format("expected sequence {} got {}", expected, h.base_sequence)};
    }
    return std::nullopt;
}

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

void remember_sequence(partition& p, const storage::batch_header& h, int64_t base_offset) {
    if (h.producer_id < 0) return;
    auto& e = p.producers[h.producer_id];
    if (h.producer_epoch != e.epoch) {
        e.epoch = h.producer_epoch;
        e.recent.clear();
    }
    e.recent.push_back({h.base_sequence, h.base_sequence + h.last_offset_delta, base_offset});
    if (e.recent.size() > 5) e.recent.erase(e.recent.begin());
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
    if (auto dup = check_sequence(*p, header)) return *dup;
    auto r = p->log->append(ref.records, p->leader_epoch, now_ms(), storage::validate_origin::client,
                            ref.validated ? &*ref.validated : nullptr);
    if (r.error != storage::log_errc::ok) {
        if (r.error == storage::log_errc::storage_error)
            log::error("produce", "append to {}-{} failed: {}", ref.tp.topic, ref.tp.partition, r.io_error.message());
        return {storage::kafka_error_code(r.error), -1, -1, -1,
                std::string(storage::make_error_code(r.error).message())};
    }
    remember_sequence(*p, header, r.base_offset);
    sh.note_use(*p);
    p->log->set_high_watermark(p->log->log_end_offset());
    p->notify_appended();
    return {0, r.base_offset, r.log_append_time, r.log_start_offset};
}

// acks=-1 needs min.insync.replicas (topic override, else server.properties, else 1)
// replicas in the ISR, as Kafka's Partition.appendRecordsToLeader checks before writing.
bool isr_too_small(shard& sh, const std::string& topic, int32_t partition) {
    const auto* t = find_topic(*sh.metadata(), topic);
    if (t == nullptr) return false;
    auto st = t->partitions.find(partition);
    if (st == t->partitions.end()) return false;
    int64_t min_isr = configs::broker_long(sh.srv().config().raw, "min.insync.replicas", 1);
    if (auto it = t->configs.find("min.insync.replicas"); it != t->configs.end()) {
        int64_t v = 0;
        auto [end, ec] = std::from_chars(it->second.data(), it->second.data() + it->second.size(), v);
        if (ec == std::errc{} && end == it->second.data() + it->second.size()) min_isr = v;
    }
    return static_cast<int64_t>(st->second.isr.size()) < min_isr;
}

struct produce_state {
    request_ptr req;
    proto::produce_response resp;
    size_t pending = 0;
    bool acks_zero = false;

    void finish() {
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
                pr.error_message = "the ISR is smaller than min.insync.replicas (Sluice followers do not replicate yet)";
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
    for (auto& [target, refs] : by_shard) {
        srv.invoke_on(
            sh.id(), target,
            // `body` keeps the decoded request (and req the frame) alive until every
            // owner has appended.
            [refs = std::move(refs), body](shard& owner) {
                std::vector<std::pair<const part_ref*, part_outcome>> out;
                for (const auto& ref : refs) out.emplace_back(&ref, append_on_owner(owner, ref));
                std::vector<std::tuple<size_t, size_t, part_outcome>> results;
                for (auto& [ref, o] : out) results.emplace_back(ref->topic_i, ref->part_i, std::move(o));
                return results;
            },
            [state](std::vector<std::tuple<size_t, size_t, part_outcome>> results) {
                for (auto& [ti, pi, o] : results) {
                    auto& pr = state->resp.responses[ti].partition_responses[pi];
                    pr.error_code = o.error;
                    pr.base_offset = o.base_offset;
                    pr.log_append_time_ms = o.log_append_time;
                    pr.log_start_offset = o.log_start_offset;
                    if (o.error != 0 && !o.message.empty()) pr.error_message = o.message;
                }
                if (--state->pending == 0) state->finish();
            });
    }
}

}  // namespace sluice::broker
