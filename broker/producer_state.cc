#include "broker/producer_state.h"

#include "broker/protocol/errors.h"

#include <fmt/format.h>

namespace sluice::broker {

using proto::error_code;

std::optional<sequence_verdict> check_sequence(const partition& p, const storage::batch_header& h) {
    if (h.producer_id < 0) return std::nullopt;
    auto it = p.producers.find(h.producer_id);
    if (it == p.producers.end()) return std::nullopt;
    const auto& e = it->second;
    if (h.producer_epoch < e.epoch) return sequence_verdict{static_cast<int16_t>(error_code::invalid_producer_epoch)};
    if (h.producer_epoch > e.epoch) return std::nullopt;
    for (const auto& b : e.recent)
        if (b.first_sequence == h.base_sequence) return sequence_verdict{0, b.base_offset, {}};
    if (!e.recent.empty()) {
        int32_t expected = e.recent.back().last_sequence + 1;
        if (expected < 0) expected = 0;  // sequence numbers wrap at INT32_MAX
        if (h.base_sequence != expected)
            return sequence_verdict{static_cast<int16_t>(error_code::out_of_order_sequence_number), -1,
                                    fmt::format("expected sequence {} got {}", expected, h.base_sequence)};
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

void remember_replicated(partition& p, std::span<const uint8_t> records) {
    size_t at = 0;
    while (at + storage::batch_header_size <= records.size()) {
        auto h = storage::parse_batch_header(records.data() + at);
        if (h.batch_length <= 0 || h.size_bytes() > records.size() - at) break;
        at += h.size_bytes();
        if (!h.is_control()) remember_sequence(p, h, h.base_offset);
    }
}

}  // namespace sluice::broker
