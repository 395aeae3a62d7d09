// libFuzzer target: storage::validate_batches (the Produce-path validator), and what runs
// on batches that pass or that sit in a log: check_stored_batch, decode_records,
// filter_records (compaction).
//
// Input: byte 0 is the mode, the rest is a records field.
//   bit 0 set: before validating, every batch frame found by walking batchLength gets a
//              correct CRC32C, so the checks behind the CRC are reached (a fuzzer does
//              not find CRCs on its own).
//   bit 1:     validate with replica origin instead of client.
// Oracle, besides the sanitizers:
//   - a success means the batches tile the buffer exactly, each passes the looser
//     check_stored_batch, and the summary's counts equal a re-walk of the headers;
//   - filter_records keeping everything returns the batch unchanged (uncompressed
//     batches whose records decode); keeping nothing returns no bytes; keeping every
//     other record gives a batch that check_stored_batch accepts and that decodes to
//     exactly the kept records.
#include "storage/endian.h"
#include "storage/record_batch.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

using namespace sluice::storage;

namespace {

[[noreturn]] void fail(const char* what) {
    __builtin_printf("oracle failed: %s\n", what);
    std::abort();
}

void fix_crcs(std::vector<uint8_t>& buf) {
    size_t pos = 0;
    while (buf.size() - pos >= batch_header_size) {
        auto len = static_cast<int32_t>(load_be32(buf.data() + pos + batch_offset::batch_length));
        if (len < static_cast<int32_t>(batch_header_size - log_overhead)) return;
        size_t total = log_overhead + static_cast<size_t>(len);
        if (total > buf.size() - pos) return;
        std::span<const uint8_t> b(buf.data() + pos, total);
        store_be32(buf.data() + pos + batch_offset::crc, compute_batch_crc(b));
        pos += total;
    }
}

void check_filter(std::span<const uint8_t> batch) {
    auto all = decode_records(batch);
    if (!all) return;
    auto same = filter_records(batch, [](int64_t, const record_view&) { return true; });
    if (!same) fail("filter(all) failed where decode_records succeeded");
    if (all->empty() ? !same->empty()
                     : (same->size() != batch.size() || std::memcmp(same->data(), batch.data(), batch.size()) != 0))
        fail("filter(all) changed the batch");
    auto none = filter_records(batch, [](int64_t, const record_view&) { return false; });
    if (!none || !none->empty()) fail("filter(none) kept bytes");
    size_t i = 0;
    auto half = filter_records(batch, [&](int64_t, const record_view&) { return i++ % 2 == 0; });
    if (!half) fail("filter(half) failed");
    if (half->empty()) return;
    if (check_stored_batch(*half, half->size())) fail("filtered batch not a valid stored batch");
    auto again = decode_records(*half);
    if (!again || again->size() != (all->size() + 1) / 2) fail("filtered batch decodes differently");
    for (size_t k = 0; k < again->size(); ++k)
        if ((*again)[k].offset_delta != (*all)[2 * k].offset_delta) fail("filtered record order");
    batch_header a = parse_batch_header(batch.data()), b = parse_batch_header(half->data());
    if (a.base_offset != b.base_offset || a.last_offset_delta != b.last_offset_delta)
        fail("filter moved offsets");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    uint8_t mode = data[0];
    std::vector<uint8_t> buf(data + 1, data + size);
    if (mode & 1) fix_crcs(buf);
    auto origin = (mode & 2) ? validate_origin::replica : validate_origin::client;
    auto s = validate_batches(buf, origin);
    if (!s) {
        if (!s.error()) fail("error result without an error code");
        // Stored-batch checks and decoding must be safe on anything.
        if (!check_stored_batch(buf, buf.size()))
            check_filter(std::span<const uint8_t>(buf).first(parse_batch_header(buf.data()).size_bytes()));
        return 0;
    }
    size_t pos = 0;
    int32_t batches = 0;
    int64_t offsets = 0;
    while (pos < buf.size()) {
        if (buf.size() - pos < batch_header_size) fail("accepted a partial batch");
        batch_header h = parse_batch_header(buf.data() + pos);
        if (h.size_bytes() > buf.size() - pos) fail("accepted a batch past the end");
        // The client's baseOffset means nothing (the broker assigns one, outside the CRC).
        std::vector<uint8_t> stored(buf.begin() + pos, buf.begin() + pos + h.size_bytes());
        set_base_offset(stored.data(), 0);
        std::span<const uint8_t> b(stored);
        if (check_stored_batch(b, b.size())) fail("accepted batch fails check_stored_batch");
        check_filter(b);
        ++batches;
        offsets += int64_t{h.last_offset_delta} + 1;
        pos += h.size_bytes();
    }
    if (batches != s->batch_count || offsets != s->offset_count) fail("summary counts");
    return 0;
}
