#include "broker/replication/fetch_plan.h"

#include "storage/record_batch.h"

#include <algorithm>

namespace sluice::broker::replication {

std::map<int32_t, std::vector<followed_partition>> partitions_to_follow(const coord::cluster_snapshot& snap,
                                                                        int32_t me) {
    std::map<int32_t, std::vector<followed_partition>> out;
    for (const auto& [name, t] : snap.topics) {
        if (t->marked_for_deletion) continue;
        for (const auto& [index, replicas] : t->assignment) {
            if (std::find(replicas.begin(), replicas.end(), me) == replicas.end()) continue;
            auto st = t->partitions.find(index);
            if (st == t->partitions.end()) continue;  // no state znode yet: nobody leads
            int32_t leader = st->second.leader;
            if (leader < 0 || leader == me || !snap.brokers.count(leader)) continue;
            out[leader].push_back({{name, index}, t->topic_id, leader, st->second.leader_epoch});
        }
    }
    return out;
}

std::optional<coord::endpoint> leader_endpoint(const coord::broker_info& leader, const endpoint_choice& choice) {
    auto named = [&](const std::string& name) -> std::optional<coord::endpoint> {
        for (const auto& e : leader.endpoints)
            if (e.listener_name == name) return e;
        return std::nullopt;
    };
    // An explicit inter-broker listener is a promise of the operator's: no fallback
    // that could cross into a network the operator meant to keep brokers out of.
    if (!choice.inter_broker_listener.empty()) return named(choice.inter_broker_listener);
    if (auto e = named(choice.own_first_listener)) return e;
    for (const auto& e : leader.endpoints)
        if (e.security_protocol == "PLAINTEXT") return e;
    return std::nullopt;
}

batch_span whole_batches(std::span<const uint8_t> records, int64_t log_end) {
    batch_span out;
    size_t pos = 0;
    while (records.size() - pos >= storage::batch_header_size) {
        auto h = storage::parse_batch_header(records.data() + pos);
        if (h.magic != storage::current_magic ||
            h.batch_length < static_cast<int32_t>(storage::batch_header_size - storage::log_overhead) ||
            h.last_offset_delta < 0) {
            out.malformed = true;
            break;
        }
        size_t size = h.size_bytes();
        if (size > records.size() - pos) break;  // cut by max_bytes: fetched again next time
        if (out.bytes == 0 && h.last_offset() < log_end) {
            out.skip_bytes += size;  // already in our log (the leader sends the batch holding our offset)
        } else {
            if (out.bytes == 0) out.first_base = h.base_offset;
            out.bytes += size;
            out.next_offset = h.last_offset() + 1;
            ++out.batches;
        }
        pos += size;
    }
    return out;
}

}  // namespace sluice::broker::replication
