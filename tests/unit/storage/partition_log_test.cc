#include "storage/partition_log.h"

#include "storage/endian.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <cstring>
#include <random>

using namespace sluice::storage;
using namespace sluice::storage::test;

namespace {

log_config small_config() {
    log_config cfg;
    cfg.segment_bytes = 4096;
    cfg.index_interval_bytes = 256;
    cfg.index_max_bytes = 8 * 1024;
    return cfg;
}

// Appends batches of 1..5 records with values of random size; returns the model.
std::vector<record_kv> fill(partition_log& log, int batches, std::mt19937& rng,
                            int64_t ts_base = 1000) {
    std::vector<record_kv> model;
    int next = static_cast<int>(log.log_end_offset());
    for (int i = 0; i < batches; ++i) {
        int n = 1 + static_cast<int>(rng() % 5);
        size_t pad = rng() % 200;
        auto b = make_batch(next, n, ts_base + next, pad);
        auto r = log.append(b, 7, 0);
        REQUIRE(r.error == log_errc::ok);
        REQUIRE(r.base_offset == next);
        REQUIRE(r.last_offset == next + n - 1);
        for (int k = 0; k < n; ++k)
            model.push_back({next + k, "k" + std::to_string(next + k),
                             "v" + std::to_string(next + k) + std::string(pad, 'x')});
        next += n;
    }
    return model;
}

// Reads from fetch_offset and checks the KIP-74 and whole-batch contracts against the model.
void check_read(const partition_log& log, const std::vector<record_kv>& model, int64_t fetch,
                int32_t max_bytes, bool min_one) {
    CAPTURE(fetch);
    CAPTURE(max_bytes);
    auto r = log.read(fetch, max_bytes, min_one);
    REQUIRE(r.error == log_errc::ok);
    auto bytes = slice_bytes(r);
    REQUIRE(bytes.size() == r.total_bytes);
    // The one-copy path sees the same bytes through the mapping.
    size_t at = 0;
    for (auto& s : r.slices) {
        REQUIRE(s.file->mapped() != nullptr);
        REQUIRE(s.position + s.length <= s.file->mapped_size());
        CHECK(std::memcmp(s.file->mapped() + s.position, bytes.data() + at, s.length) == 0);
        at += s.length;
    }
    if (fetch >= log.log_end_offset()) {
        CHECK(bytes.empty());
        return;
    }
    if (!min_one && bytes.empty()) return;  // nothing fitted
    REQUIRE(!bytes.empty());
    auto first = parse_batch_header(bytes.data());
    CHECK(first.base_offset <= fetch);
    CHECK(first.last_offset() >= fetch);
    if (bytes.size() > static_cast<size_t>(max_bytes)) {
        CHECK(min_one);
        CHECK(bytes.size() == first.size_bytes());  // only the oversized first batch
    }
    auto got = records_of(bytes);
    REQUIRE(!got.empty());
    size_t start = static_cast<size_t>(got.front().offset - model.front().offset);
    for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == model[start + i]);
}

}  // namespace

TEST_CASE("partition_log: append/read round trip over many batches and segment rolls") {
    temp_dir dir;
    auto log = partition_log::open(dir.path() / "t-0", small_config());
    REQUIRE(log.has_value());
    auto& l = **log;
    CHECK(l.log_start_offset() == 0);
    CHECK(l.log_end_offset() == 0);
    std::mt19937 rng(7);
    auto model = fill(l, 300, rng);
    CHECK(l.log_end_offset() == static_cast<int64_t>(model.size()));
    CHECK(l.segment_count() > 10);
    for (auto& seg : l.segments()) CHECK(seg->size_bytes() <= 4096);

    // Everything, in one read.
    auto all = l.read(0, INT32_MAX, true);
    REQUIRE(all.error == log_errc::ok);
    CHECK(all.slices.size() == l.segment_count());
    CHECK(records_of(slice_bytes(all)) == model);

    // Every offset (including ones in the middle of a batch), various budgets.
    for (int64_t off = 0; off <= l.log_end_offset(); ++off) {
        check_read(l, model, off, 1 + static_cast<int32_t>(rng() % 9000), true);
        check_read(l, model, off, 1 + static_cast<int32_t>(rng() % 9000), false);
    }
}

TEST_CASE("partition_log: min_one returns a batch larger than max_bytes whole (KIP-74)") {
    temp_dir dir;
    log_config cfg;  // defaults: 1 GiB segments
    auto log = partition_log::open(dir.path() / "big-0", cfg);
    REQUIRE(log.has_value());
    auto small = make_batch(0, 1);
    auto big = batch_builder(5).add("big", std::string(200000, 'b')).build();
    REQUIRE((*log)->append(small, 0, 0).error == log_errc::ok);
    REQUIRE((*log)->append(big, 0, 0).error == log_errc::ok);
    auto r = (*log)->read(1, 1000, true);
    REQUIRE(r.error == log_errc::ok);
    CHECK(r.total_bytes == big.size());
    auto none = (*log)->read(1, 1000, false);
    CHECK(none.total_bytes == 0);
    // The small batch fits but the big one does not: only the small one comes back.
    auto some = (*log)->read(0, 1000, true);
    CHECK(some.total_bytes == small.size());
}

TEST_CASE("partition_log: offsets out of range, log end, and a max offset bound") {
    temp_dir dir;
    auto log = partition_log::open(dir.path() / "t-1", small_config());
    REQUIRE(log.has_value());
    std::mt19937 rng(1);
    auto model = fill(**log, 20, rng);
    auto& l = **log;
    CHECK(l.read(-1, 1000, true).error == log_errc::offset_out_of_range);
    CHECK(l.read(l.log_end_offset() + 1, 1000, true).error == log_errc::offset_out_of_range);
    auto at_end = l.read(l.log_end_offset(), 1000, true);
    CHECK(at_end.error == log_errc::ok);
    CHECK(at_end.slices.empty());
    // Consumers read below the high watermark only.
    int64_t bound = model[model.size() / 2].offset;
    auto r = l.read(0, INT32_MAX, true, bound);
    auto got = records_of(slice_bytes(r));
    REQUIRE(!got.empty());
    CHECK(got.back().offset < bound + 5);
    size_t batches_below = 0;
    auto bytes = slice_bytes(r);
    for (size_t pos = 0; pos < bytes.size();) {
        auto h = parse_batch_header(bytes.data() + pos);
        CHECK(h.base_offset < bound);
        pos += h.size_bytes();
        ++batches_below;
    }
    CHECK(batches_below > 0);
}

TEST_CASE("partition_log: appends rewrite base offset and leader epoch only") {
    temp_dir dir;
    auto log = partition_log::open(dir.path() / "t-0", small_config());
    REQUIRE(log.has_value());
    auto b0 = make_batch(0, 3);
    REQUIRE((*log)->append(b0, 4, 0).error == log_errc::ok);
    auto b1 = make_batch(3, 2);
    auto original = b1;
    auto r = (*log)->append(b1, 5, 0);
    REQUIRE(r.error == log_errc::ok);
    CHECK(r.base_offset == 3);
    CHECK(r.log_append_time == -1);
    auto read = (*log)->read(3, 10000, true);
    auto bytes = slice_bytes(read);
    REQUIRE(bytes.size() == original.size());
    CHECK(load_be64(bytes.data()) == 3);
    CHECK(load_be32(bytes.data() + batch_offset::partition_leader_epoch) == 5);
    // Bytes from the magic on are exactly what the producer sent.
    CHECK(std::memcmp(bytes.data() + 16, original.data() + 16, original.size() - 16) == 0);
}

TEST_CASE("partition_log: rejected appends write nothing") {
    temp_dir dir;
    auto cfg = small_config();
    cfg.max_message_bytes = 1000;
    auto log = partition_log::open(dir.path() / "t-0", cfg);
    REQUIRE(log.has_value());
    auto& l = **log;
    auto good = make_batch(0, 2);
    auto bad = make_batch(2, 2);
    bad.back() ^= 1;
    std::vector<uint8_t> mixed = good;
    mixed.insert(mixed.end(), bad.begin(), bad.end());
    CHECK(l.append(mixed, 0, 0).error == log_errc::corrupt_message);
    CHECK(l.log_end_offset() == 0);
    CHECK(l.size_bytes() == 0);
    auto huge = batch_builder(0).add("k", std::string(2000, 'x')).build();
    CHECK(l.append(huge, 0, 0).error == log_errc::message_too_large);
    std::vector<uint8_t> many;
    for (int i = 0; i < 10; ++i) {
        auto b = make_batch(i, 1, 0, 500);
        many.insert(many.end(), b.begin(), b.end());
    }
    REQUIRE(many.size() > cfg.segment_bytes);
    CHECK(l.append(many, 0, 0).error == log_errc::record_list_too_large);
    auto old = batch_builder(0).add("k", "v").build();
    old[batch_offset::magic] = 1;
    CHECK(l.append(old, 0, 0).error == log_errc::unsupported_magic);
    CHECK(kafka_error_code(log_errc::unsupported_magic) == 43);
    CHECK(l.log_end_offset() == 0);
    CHECK(l.size_bytes() == 0);
    CHECK(l.append(good, 0, 0).error == log_errc::ok);
}

TEST_CASE("partition_log: LogAppendTime stamps the batch and keeps its CRC valid") {
    temp_dir dir;
    auto cfg = small_config();
    cfg.message_timestamp_type = timestamp_type::log_append_time;
    auto log = partition_log::open(dir.path() / "t-0", cfg);
    REQUIRE(log.has_value());
    auto b = make_batch(0, 3, 5);
    auto r = (*log)->append(b, 0, 1234567);
    REQUIRE(r.error == log_errc::ok);
    CHECK(r.log_append_time == 1234567);
    auto bytes = slice_bytes((*log)->read(0, 10000, true));
    auto h = parse_batch_header(bytes.data());
    CHECK(h.max_timestamp == 1234567);
    CHECK(h.ts_type() == timestamp_type::log_append_time);
    CHECK(!check_stored_batch(bytes, bytes.size()));
    CHECK((*log)->max_timestamp().timestamp == 1234567);
}

TEST_CASE("partition_log: reopen after a clean close") {
    temp_dir dir;
    auto path = dir.path() / "my.topic-with-dash-3";
    std::mt19937 rng(3);
    std::vector<record_kv> model;
    {
        auto log = partition_log::open(path, small_config());
        REQUIRE(log.has_value());
        model = fill(**log, 120, rng);
        REQUIRE(!(*log)->flush());
        REQUIRE(!(*log)->close());
    }
    // Sealed indexes are trimmed to their entries; names are 20-digit base offsets.
    size_t logs = 0;
    for (auto& e : std::filesystem::directory_iterator(path)) {
        auto name = e.path().filename().string();
        CHECK(name.size() == 20 + e.path().extension().string().size());
        if (e.path().extension() == ".index") CHECK(e.file_size() % 8 == 0);
        if (e.path().extension() == ".timeindex") CHECK(e.file_size() % 12 == 0);
        if (e.path().extension() == ".log") ++logs;
    }
    CHECK(logs > 3);
    open_options opts;
    opts.clean_shutdown = true;
    auto log = partition_log::open(path, small_config(), opts);
    REQUIRE(log.has_value());
    CHECK((*log)->log_end_offset() == static_cast<int64_t>(model.size()));
    CHECK((*log)->segment_count() == logs);
    CHECK(records_of(slice_bytes((*log)->read(0, INT32_MAX, true))) == model);
    for (int64_t off = 0; off < (*log)->log_end_offset(); off += 7) check_read(**log, model, off, 700, true);
    auto more = fill(**log, 30, rng);
    model.insert(model.end(), more.begin(), more.end());
    CHECK(records_of(slice_bytes((*log)->read(0, INT32_MAX, true))) == model);
}

TEST_CASE("partition_log: offset_for_timestamp finds the first record at or after ts") {
    temp_dir dir;
    auto log = partition_log::open(dir.path() / "t-0", small_config());
    REQUIRE(log.has_value());
    std::mt19937 rng(11);
    // Record at offset o has timestamp 1000 + o (make_batch: ts_base + next + i).
    auto model = fill(**log, 150, rng, 1000);
    int64_t end = (*log)->log_end_offset();
    for (int64_t ts : {int64_t{0}, int64_t{1000}, int64_t{1001}, 1000 + end / 2, 1000 + end - 1}) {
        CAPTURE(ts);
        auto r = (*log)->offset_for_timestamp(ts);
        REQUIRE(r.has_value());
        REQUIRE(r->has_value());
        int64_t expect = std::max<int64_t>(0, ts - 1000);
        CHECK((*r)->offset == expect);
        CHECK((*r)->timestamp == 1000 + expect);
    }
    auto past = (*log)->offset_for_timestamp(1000 + end);
    REQUIRE(past.has_value());
    CHECK(!past->has_value());
    CHECK((*log)->max_timestamp().timestamp == 1000 + end - 1);
    CHECK((*log)->max_timestamp().offset == end - 1);
}

TEST_CASE("partition_log: truncate_to removes the tail and appends continue densely") {
    temp_dir dir;
    auto log = partition_log::open(dir.path() / "t-0", small_config());
    REQUIRE(log.has_value());
    auto& l = **log;
    std::mt19937 rng(5);
    auto model = fill(l, 200, rng);
    size_t segments_before = l.segment_count();
    // Truncate at a batch boundary in an early segment.
    auto mid = l.segments()[2]->base_offset() + 1;
    auto pos = l.segments()[2]->find_position(mid);
    REQUIRE(pos.has_value());
    auto h = l.segments()[2]->header_at(*pos);
    REQUIRE(h.has_value());
    int64_t cut = h->base_offset;
    l.set_high_watermark(l.log_end_offset());
    REQUIRE(!l.truncate_to(cut));
    CHECK(l.log_end_offset() == cut);
    CHECK(l.high_watermark() == cut);
    CHECK(l.segment_count() < segments_before);
    model.resize(static_cast<size_t>(cut));
    CHECK(records_of(slice_bytes(l.read(0, INT32_MAX, true))) == model);
    auto more = fill(l, 50, rng);
    model.insert(model.end(), more.begin(), more.end());
    CHECK(records_of(slice_bytes(l.read(0, INT32_MAX, true))) == model);
    // Truncating below the first segment restarts the log at that offset.
    REQUIRE(!l.truncate_to(0));
    CHECK(l.log_end_offset() == 0);
    CHECK(l.segment_count() == 1);
    auto again = make_batch(0, 2);
    CHECK(l.append(again, 0, 0).base_offset == 0);
}

TEST_CASE("partition_log: slices keep deleted segments readable") {
    temp_dir dir;
    auto log = partition_log::open(dir.path() / "t-0", small_config());
    REQUIRE(log.has_value());
    auto& l = **log;
    std::mt19937 rng(9);
    auto model = fill(l, 100, rng);
    auto r = l.read(0, INT32_MAX, true);
    auto before = slice_bytes(r);
    l.set_high_watermark(l.log_end_offset());
    REQUIRE(!l.advance_log_start(l.log_end_offset() - 1));
    CHECK(l.segment_count() == 1);
    CHECK(l.log_start_offset() == l.log_end_offset() - 1);
    CHECK(l.read(0, 100, true).error == log_errc::offset_out_of_range);
    // The files are unlinked, the slices still read the same bytes (fd and mapping).
    CHECK(!std::filesystem::exists(dir.path() / "t-0" / "00000000000000000000.log"));
    CHECK(slice_bytes(r) == before);
    CHECK(std::memcmp(r.slices.front().file->mapped(), before.data(), r.slices.front().length) == 0);
}

TEST_CASE("partition_log: retention by bytes and by time never deletes the active segment") {
    temp_dir dir;
    auto cfg = small_config();
    cfg.retention_bytes = 3 * 4096;
    cfg.retention_ms = -1;
    auto log = partition_log::open(dir.path() / "t-0", cfg);
    REQUIRE(log.has_value());
    auto& l = **log;
    std::mt19937 rng(2);
    fill(l, 200, rng, 1000);
    l.set_high_watermark(l.log_end_offset());
    auto deleted = l.enforce_retention(0);
    REQUIRE(deleted.has_value());
    CHECK(*deleted > 0);
    CHECK(l.size_bytes() <= 4 * 4096);
    CHECK(l.log_start_offset() == l.segments().front()->base_offset());

    auto cfg2 = small_config();
    cfg2.retention_ms = 100;
    auto log2 = partition_log::open(dir.path() / "t-1", cfg2);
    REQUIRE(log2.has_value());
    fill(**log2, 100, rng, 1000);
    (*log2)->set_high_watermark((*log2)->log_end_offset());
    auto none = (*log2)->enforce_retention(1000);
    REQUIRE(none.has_value());
    CHECK(*none == 0);
    auto all = (*log2)->enforce_retention(1000000);
    REQUIRE(all.has_value());
    CHECK((*log2)->segment_count() == 1);
}

TEST_CASE("partition_log: an index entry damaged at runtime does not break reads") {
    temp_dir dir;
    auto log = partition_log::open(dir.path() / "t-0", small_config());
    REQUIRE(log.has_value());
    std::mt19937 rng(21);
    auto model = fill(**log, 25, rng);

    auto& seg = *(*log)->segments().front();
    REQUIRE(seg.index().entries() > 1);
    // Point the second entry into the middle of a batch (as a bit flip on disk would).
    auto e = seg.index().entry(1);
    uint8_t* p = const_cast<uint8_t*>(seg.index().file().entry(1));
    store_be32(p + 4, e.position + 3);
    for (int64_t off = 0; off < seg.next_offset(); ++off) check_read(**log, model, off, 5000, true);
}

TEST_CASE("partition_log: a follower appends the leader's batches byte for byte") {
    temp_dir dir;
    auto leader = partition_log::open(dir.path() / "leader" / "t-0", small_config());
    auto follower = partition_log::open(dir.path() / "follower" / "t-0", small_config());
    REQUIRE(leader.has_value());
    REQUIRE(follower.has_value());
    std::mt19937 rng(4);
    auto model = fill(**leader, 80, rng);
    // Replicate in fetch-sized chunks, as a replica fetcher would.
    while ((*follower)->log_end_offset() < (*leader)->log_end_offset()) {
        auto r = (*leader)->read((*follower)->log_end_offset(), 1500, true);
        REQUIRE(r.error == log_errc::ok);
        auto bytes = slice_bytes(r);
        auto a = (*follower)->append_replicated(bytes, 0);
        REQUIRE(a.error == log_errc::ok);
        REQUIRE(a.base_offset == parse_batch_header(bytes.data()).base_offset);
    }
    auto from_leader = slice_bytes((*leader)->read(0, INT32_MAX, true));
    auto from_follower = slice_bytes((*follower)->read(0, INT32_MAX, true));
    CHECK(from_leader == from_follower);
    // Offsets the follower already has are refused.
    auto again = slice_bytes((*leader)->read(0, 500, true));
    CHECK((*follower)->append_replicated(again, 0).error == log_errc::invalid_record);
    CHECK((*follower)->log_end_offset() == (*leader)->log_end_offset());
}

TEST_CASE("partition_log rolls by segment.ms and when an index fills") {
    temp_dir dir;
    SUBCASE("segment.ms") {
        log_config cfg;
        cfg.segment_ms = 1'000;
        auto log = partition_log::open(dir.path() / "t-0", cfg, {.now_ms = 0}).value();
        auto b = make_batch(0, 1);
        REQUIRE(log->append(b, 0, 500).error == log_errc::ok);
        b = make_batch(1, 1);
        REQUIRE(log->append(b, 0, 1'000).error == log_errc::ok);
        CHECK(log->segment_count() == 1);  // exactly segment.ms old: not yet
        b = make_batch(2, 1);
        REQUIRE(log->append(b, 0, 1'001).error == log_errc::ok);
        CHECK(log->segment_count() == 2);
        CHECK(log->segments().back()->base_offset() == 2);
        b = make_batch(3, 1);
        REQUIRE(log->append(b, 0, 1'500).error == log_errc::ok);
        CHECK(log->segment_count() == 2);  // the new segment's clock started at 1'001
    }
    SUBCASE("offset index full") {
        log_config cfg;
        cfg.index_interval_bytes = 1;    // an index entry per batch
        cfg.index_max_bytes = 8 * 4;     // room for four offset-index entries
        auto log = partition_log::open(dir.path() / "t-0", cfg).value();
        for (int i = 0; i < 12; ++i) {
            auto b = make_batch(i, 1);
            REQUIRE(log->append(b, 0, 0).error == log_errc::ok);
        }
        CHECK(log->segment_count() >= 3);
        for (auto& s : log->segments()) CHECK(s->index().entries() <= 4);
        std::vector<record_kv> model;
        for (int i = 0; i < 12; ++i) model.push_back({i, "k" + std::to_string(i), "v" + std::to_string(i)});
        auto r = log->read(0, 1 << 20, true);
        CHECK(records_of(slice_bytes(r)) == model);
    }
}
