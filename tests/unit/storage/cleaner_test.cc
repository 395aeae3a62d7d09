// Compaction (log_cleaner.h), retention's .deleted files, flush policy and descriptor
// release in partition_log.
#include "storage/log_cleaner.h"
#include "storage/partition_log.h"

#include "test_util.h"

#include <doctest/doctest.h>

#include <dirent.h>

#include <chrono>
#include <future>
#include <map>
#include <random>

using namespace sluice::storage;
using namespace sluice::storage::test;
namespace fs = std::filesystem;

namespace {

struct rec {
    int64_t offset;
    std::string key;
    std::optional<std::string> value;
    bool operator==(const rec&) const = default;
};


// One record per batch: key, value (nullopt: tombstone), timestamp.
append_result put(partition_log& log, const std::string& key, std::optional<std::string> value,
                  int64_t ts) {
    batch_builder b(ts);
    b.add(key, value ? std::optional<std::string_view>(*value) : std::nullopt, ts);
    auto bytes = b.build();
    auto r = log.append(bytes, 0, ts);
    REQUIRE(r.error == log_errc::ok);
    return r;
}

std::vector<rec> decode_all(std::span<const uint8_t> bytes) {
    std::vector<rec> out;
    for (size_t pos = 0; pos < bytes.size();) {
        auto h = parse_batch_header(bytes.data() + pos);
        auto batch = bytes.subspan(pos, h.size_bytes());
        REQUIRE(!check_stored_batch(batch, batch.size()));
        auto recs = decode_records(batch);
        REQUIRE(recs.has_value());
        for (auto& r : *recs) {
            std::optional<std::string> v;
            if (r.value) v = as_string(*r.value);
            out.push_back({h.base_offset + r.offset_delta, r.key ? as_string(*r.key) : "", v});
        }
        pos += h.size_bytes();
    }
    return out;
}

std::vector<rec> read_all(const partition_log& log, int64_t from = -1) {
    auto r = log.read(from < 0 ? log.log_start_offset() : from, 64 << 20, true);
    REQUIRE(r.error == log_errc::ok);
    return decode_all(slice_bytes(r));
}

// prepare -> run -> install on this thread; returns the stats (or nullopt: nothing due).
std::optional<clean_stats> compact(partition_log& log, int64_t now_ms) {
    auto task = log.prepare_cleaning(now_ms);
    if (!task) return std::nullopt;
    auto r = run_cleaning(*task);
    REQUIRE(r.has_value());
    REQUIRE(!log.install_cleaned(*r));
    return r->stats;
}

// What compaction must leave: below `end`, the last record of each key (tombstones
// dropped when drop_tombstones); at and above `end`, everything.
std::vector<rec> expected_after(const std::vector<rec>& all, int64_t end, bool drop_tombstones) {
    std::map<std::string, int64_t> last;
    for (auto& r : all)
        if (r.offset < end) last[r.key] = r.offset;
    std::vector<rec> out;
    for (auto& r : all) {
        if (r.offset >= end) {
            out.push_back(r);
            continue;
        }
        bool newer_exists = last[r.key] > r.offset;
        if (newer_exists || (drop_tombstones && !r.value)) continue;
        out.push_back(r);
    }
    return out;
}

size_t files_ending(const fs::path& dir, std::string_view suffix) {
    size_t n = 0;
    for (auto& e : fs::directory_iterator(dir))
        if (e.path().filename().string().ends_with(suffix)) ++n;
    return n;
}

}  // namespace

TEST_CASE("filter_records keeps offsets, re-encodes the survivors and fixes the CRC") {
    batch_builder b(5000);
    for (int i = 0; i < 6; ++i) b.add("k" + std::to_string(i % 3), "v" + std::to_string(i), 5000 + i);
    auto batch = b.build(100);
    auto odd = filter_records(batch, [](int64_t off, const record_view&) { return off % 2 == 1; });
    REQUIRE(odd.has_value());
    REQUIRE(!check_stored_batch(*odd, odd->size()));
    auto h = parse_batch_header(odd->data());
    CHECK(h.base_offset == 100);
    CHECK(h.last_offset_delta == 5);
    CHECK(h.record_count == 3);
    CHECK(h.base_timestamp == 5000);
    auto recs = decode_all(*odd);
    REQUIRE(recs.size() == 3);
    CHECK(recs[0] == rec{101, "k1", "v1"});
    CHECK(recs[2] == rec{105, "k2", "v5"});
    auto none = filter_records(batch, [](int64_t, const record_view&) { return false; });
    REQUIRE(none.has_value());
    CHECK(none->empty());
    auto compressed = batch_builder(0).add("k", "v").codec(compression::gzip).build();
    CHECK(filter_records(compressed, [](int64_t, const record_view&) { return true; }).error() ==
          log_errc::invalid_record);
}

TEST_CASE("parse_cleanup_policy") {
    CHECK(parse_cleanup_policy("delete") == cleanup_delete);
    CHECK(parse_cleanup_policy("compact") == cleanup_compact);
    CHECK(parse_cleanup_policy("compact,delete") == (cleanup_compact | cleanup_delete));
    CHECK(parse_cleanup_policy("delete, compact") == (cleanup_compact | cleanup_delete));
    CHECK(!parse_cleanup_policy("").has_value());
    CHECK(!parse_cleanup_policy("compact,bogus").has_value());
}

TEST_CASE("compaction keeps the last record per key at its offset and reads stay consistent") {
    temp_dir dir;
    auto cfg = compact_test_config();
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    std::vector<rec> all;
    std::mt19937 rng(7);
    for (int i = 0; i < 300; ++i) {
        std::string key = "key" + std::to_string(rng() % 20);
        std::string value = "value-" + std::to_string(i) + std::string(rng() % 40, 'x');
        auto r = put(*log, key, value, 1000 + i);
        all.push_back({r.base_offset, key, value});
    }
    REQUIRE(log->segment_count() > 4);
    auto before_end = log->log_end_offset();
    // A slice taken before compaction still reads the old bytes afterwards.
    auto old_read = log->read(0, 64 << 20, true);
    auto old_bytes = slice_bytes(old_read);

    auto stats = compact(*log, 10'000);
    REQUIRE(stats.has_value());
    CHECK(stats->records_removed > 200);
    int64_t end = log->cleaner_checkpoint();
    CHECK(end == log->segments().back()->base_offset());
    CHECK(log->log_end_offset() == before_end);
    auto now = read_all(*log);
    CHECK(now == expected_after(all, end, false));
    CHECK(decode_all(slice_bytes(old_read)) == decode_all(old_bytes));
    // A fetch from an offset whose record is gone starts at the next survivor.
    for (int64_t off = 0; off < end; off += 7) {
        auto from = read_all(*log, off);
        REQUIRE(!from.empty());
        CHECK(from.front().offset >= off);
        auto it = std::find_if(now.begin(), now.end(), [&](const rec& r) { return r.offset >= off; });
        CHECK(from.front() == *it);
    }
    // Appends continue at the same log end; nothing is left in flight or on disk.
    auto r = put(*log, "key1", "after", 50'000);
    CHECK(r.base_offset == before_end);
    CHECK(!log->cleaning());
    CHECK(files_ending(log->dir(), ".cleaned") == 0);
    CHECK(files_ending(log->dir(), ".swap") == 0);

    // Reopened (clean and unclean), the compacted log reads the same.
    auto expect = read_all(*log);
    log.reset();
    auto again = partition_log::open(dir.path() / "t-0", cfg, {.clean_shutdown = true}).value();
    CHECK(read_all(*again) == expect);
    again.reset();
    auto unclean = partition_log::open(dir.path() / "t-0", cfg, {.clean_shutdown = false}).value();
    CHECK(read_all(*unclean) == expect);
    CHECK(unclean->log_end_offset() == before_end + 1);
}

TEST_CASE("a second pass compacts only what is dirty against the new keys") {
    temp_dir dir;
    auto cfg = compact_test_config();
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    std::vector<rec> all;
    for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < 120; ++i) {
            std::string key = "k" + std::to_string(i % 10);
            std::string value = "r" + std::to_string(round) + "-" + std::to_string(i) + std::string(30, 'y');
            auto r = put(*log, key, value, 1000 + round * 1000 + i);
            all.push_back({r.base_offset, key, value});
        }
        REQUIRE(compact(*log, 100'000).has_value());
        CHECK(read_all(*log) == expected_after(all, log->cleaner_checkpoint(), false));
    }
    // Nothing new is dirty: no task.
    CHECK(!log->prepare_cleaning(100'000).has_value());
}

TEST_CASE("tombstones survive delete.retention.ms, then go") {
    temp_dir dir;
    auto cfg = compact_test_config();
    cfg.delete_retention_ms = 5'000;
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    std::vector<rec> all;
    for (int i = 0; i < 100; ++i) {
        std::string key = "k" + std::to_string(i % 5);
        std::optional<std::string> value;
        if (i % 7 != 3) value = "v" + std::to_string(i) + std::string(40, 'z');
        auto r = put(*log, key, value, 1000 + i);
        all.push_back({r.base_offset, key, value});
    }
    // The last word on k0 and k1 is a delete; filler rolls them into sealed segments.
    for (auto key : {"k0", "k1"}) {
        auto r = put(*log, key, std::nullopt, 1100);
        all.push_back({r.base_offset, key, std::nullopt});
    }
    for (int i = 0; i < 30; ++i) {
        auto r = put(*log, "fill" + std::to_string(i), std::string(60, 'p'), 1100 + i);
        all.push_back({r.base_offset, "fill" + std::to_string(i), std::string(60, 'p')});
    }
    // Segments' newest records are ~1000-1130: at now=2000 they are 1 s old.
    REQUIRE(compact(*log, 2'000).has_value());
    int64_t end = log->cleaner_checkpoint();
    auto kept = read_all(*log);
    CHECK(kept == expected_after(all, end, false));
    CHECK(std::count_if(kept.begin(), kept.end(), [](const rec& r) { return !r.value; }) == 2);
    // New dirty data so there is a task; now the old segments are past the horizon.
    for (int i = 100; i < 140; ++i) {
        auto r = put(*log, "other" + std::to_string(i), std::string(60, 'q'), 1000 + i);
        all.push_back({r.base_offset, "other" + std::to_string(i), std::string(60, 'q')});
    }
    auto stats = compact(*log, 20'000);
    REQUIRE(stats.has_value());
    CHECK(read_all(*log) == expected_after(all, log->cleaner_checkpoint(), true));
    CHECK(stats->tombstones_removed == 2);
}

TEST_CASE("min.cleanable.dirty.ratio, min.compaction.lag.ms and max.compaction.lag.ms gate a pass") {
    temp_dir dir;
    auto cfg = compact_test_config();
    cfg.min_cleanable_dirty_ratio = 0.5;
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    for (int i = 0; i < 200; ++i) put(*log, "u" + std::to_string(i), std::string(50, 'a'), 1000 + i);
    CHECK(log->dirty_ratio(10'000) == doctest::Approx(1.0));
    REQUIRE(compact(*log, 10'000).has_value());
    CHECK(log->dirty_ratio(10'000) == doctest::Approx(0.0));
    // A little new dirty data: below the ratio, no pass...
    for (int i = 0; i < 60; ++i) put(*log, "u" + std::to_string(i), std::string(50, 'b'), 20'000 + i);
    double ratio = log->dirty_ratio(30'000);
    CHECK(ratio > 0.0);
    CHECK(ratio < 0.5);
    CHECK(!log->prepare_cleaning(30'000).has_value());
    int64_t checkpoint = log->cleaner_checkpoint();
    CHECK(checkpoint > 0);
    // ...unless the oldest dirty record waited longer than max.compaction.lag.ms.
    auto lagged = cfg;
    lagged.max_compaction_lag_ms = 5'000;
    log.reset();
    log = partition_log::open(dir.path() / "t-0", lagged, {.cleaner_checkpoint = checkpoint}).value();
    // The first dirty segment starts with record u<checkpoint>, written at 1000 + checkpoint.
    int64_t oldest_dirty = 1000 + checkpoint;
    CHECK(!log->prepare_cleaning(oldest_dirty + 5'000).has_value());
    auto task = log->prepare_cleaning(oldest_dirty + 5'001);
    REQUIRE(task.has_value());
    CHECK(task->first_dirty == checkpoint);
    log->abort_cleaning();
    // min.compaction.lag.ms keeps young segments out of the cleanable range.
    auto young = compact_test_config();
    young.min_compaction_lag_ms = 10'000;
    log.reset();
    log = partition_log::open(dir.path() / "t-0", young, {.cleaner_checkpoint = checkpoint}).value();
    CHECK(!log->prepare_cleaning(25'000).has_value());  // every dirty segment is too young
    auto t2 = log->prepare_cleaning(40'000);
    REQUIRE(t2.has_value());
    log->abort_cleaning();
}

TEST_CASE("a segment that changed while being cleaned is not replaced") {
    temp_dir dir;
    auto cfg = compact_test_config();
    cfg.cleanup_policy = cleanup_compact | cleanup_delete;
    cfg.retention_ms = 100;
    cfg.file_delete_delay_ms = 0;
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    for (int i = 0; i < 200; ++i) put(*log, "k" + std::to_string(i % 4), std::string(50, 'c'), 1000 + i);
    auto task = log->prepare_cleaning(2'000);
    REQUIRE(task.has_value());
    CHECK(!log->prepare_cleaning(2'000).has_value());  // one in flight
    auto result = run_cleaning(*task);
    REQUIRE(result.has_value());
    REQUIRE(!result->segments.empty());
    // Retention deletes the old segments before the install.
    log->set_high_watermark(log->log_end_offset());
    REQUIRE(log->enforce_retention(1'000'000).value() > 0);
    auto before = read_all(*log);
    REQUIRE(!log->install_cleaned(*result));
    CHECK(read_all(*log) == before);
    CHECK(files_ending(log->dir(), ".cleaned") == 0);
}

TEST_CASE("interrupted swaps: .cleaned is dropped, .swap is completed, a stale index is rebuilt") {
    temp_dir dir;
    auto cfg = compact_test_config();
    std::vector<rec> all;
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    for (int i = 0; i < 150; ++i) {
        auto r = put(*log, "k" + std::to_string(i % 6), "v" + std::to_string(i) + std::string(40, 'd'), 1000 + i);
        all.push_back({r.base_offset, "k" + std::to_string(i % 6), "v" + std::to_string(i) + std::string(40, 'd')});
    }
    auto pristine = read_all(*log);
    auto task = log->prepare_cleaning(5'000);
    REQUIRE(task.has_value());
    auto result = run_cleaning(*task);
    REQUIRE(result.has_value());
    REQUIRE(result->segments.size() >= 2);
    int64_t end = task->end_offset;
    log.reset();
    auto base_name = [&](size_t i, std::string_view ext) {
        return dir.path() / "t-0" / segment_file_name(result->segments[i].base_offset, ext);
    };
    auto suffixed = [](fs::path p, std::string_view sfx) { return fs::path(p.string() + std::string(sfx)); };

    SUBCASE("killed while writing .cleaned: the old data stays") {
        auto reopened = partition_log::open(dir.path() / "t-0", cfg, {.clean_shutdown = false}).value();
        CHECK(read_all(*reopened) == pristine);
        CHECK(files_ending(reopened->dir(), ".cleaned") == 0);
    }
    SUBCASE("killed after every .cleaned became .swap: the new data is installed") {
        for (size_t i = 0; i < result->segments.size(); ++i)
            for (auto ext : {".log", ".index", ".timeindex"})
                fs::rename(suffixed(base_name(i, ext), ".cleaned"), suffixed(base_name(i, ext), ".swap"));
        auto reopened = partition_log::open(dir.path() / "t-0", cfg, {.clean_shutdown = true}).value();
        CHECK(read_all(*reopened) == expected_after(all, end, false));
        CHECK(files_ending(reopened->dir(), ".swap") == 0);
    }
    SUBCASE("killed after the first log reached .swap but not its indexes") {
        fs::rename(suffixed(base_name(0, ".log"), ".cleaned"), suffixed(base_name(0, ".log"), ".swap"));
        auto reopened = partition_log::open(dir.path() / "t-0", cfg, {.clean_shutdown = true}).value();
        // Segment 0 is the compacted one (its index rebuilt), the others are the originals.
        auto got = read_all(*reopened);
        auto first_end = result->segments.size() > 1 ? result->segments[1].base_offset : end;
        std::vector<rec> want;
        auto compacted = expected_after(all, end, false);
        for (auto& r : compacted)
            if (r.offset < first_end) want.push_back(r);
        for (auto& r : pristine)
            if (r.offset >= first_end) want.push_back(r);
        CHECK(got == want);
        CHECK(files_ending(reopened->dir(), ".cleaned") == 0);
        CHECK(fs::exists(base_name(0, ".index")));
    }
}

TEST_CASE("retention renames segments to .deleted and unlinks them after file.delete.delay.ms") {
    temp_dir dir;
    log_config cfg;
    cfg.segment_bytes = 1024;
    cfg.index_interval_bytes = 128;
    cfg.index_max_bytes = 4096;
    cfg.retention_ms = 10'000;
    cfg.file_delete_delay_ms = 60'000;
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    for (int i = 0; i < 60; ++i) put(*log, "k", std::string(100, 'e'), 1000 + i);
    log->set_high_watermark(log->log_end_offset());
    size_t segments = log->segment_count();
    REQUIRE(segments > 3);
    auto held = log->read(0, 1 << 20, true);  // a fetch in progress on the first segment
    auto held_bytes = slice_bytes(held);
    int deleted = log->enforce_retention(100'000).value();
    CHECK(deleted == static_cast<int>(segments - 1));
    CHECK(log->log_start_offset() == log->segments().front()->base_offset());
    CHECK(log->read(0, 1024, true).error == log_errc::offset_out_of_range);
    CHECK(files_ending(log->dir(), ".log.deleted") == segments - 1);
    CHECK(slice_bytes(held) == held_bytes);  // still readable through the open file
    CHECK(log->delete_expired_files(100'000 + 59'999) == 0);
    CHECK(log->delete_expired_files(100'000 + 60'000) == deleted);
    CHECK(files_ending(log->dir(), ".deleted") == 0);
    CHECK(slice_bytes(held) == held_bytes);

    // A restart before the delay removes leftovers; the checkpointed log start holds.
    for (int i = 0; i < 30; ++i) put(*log, "k", std::string(100, 'f'), 200'000 + i);
    log->set_high_watermark(log->log_end_offset());
    REQUIRE(log->enforce_retention(300'000).value() > 0);
    REQUIRE(files_ending(log->dir(), ".deleted") > 0);
    int64_t start = log->log_start_offset();
    log.reset();
    auto again = partition_log::open(dir.path() / "t-0", cfg, {.log_start_offset = start}).value();
    CHECK(files_ending(again->dir(), ".deleted") == 0);
    CHECK(again->log_start_offset() == start);
}

TEST_CASE("cleanup.policy=compact alone never deletes by retention") {
    temp_dir dir;
    auto cfg = compact_test_config();
    cfg.retention_ms = 1;
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    for (int i = 0; i < 60; ++i) put(*log, "k" + std::to_string(i), std::string(100, 'g'), 1000 + i);
    log->set_high_watermark(log->log_end_offset());
    CHECK(log->enforce_retention(1'000'000).value() == 0);
    CHECK(log->log_start_offset() == 0);
}

TEST_CASE("flush.messages and flush.ms") {
    temp_dir dir;
    log_config cfg;
    cfg.flush_interval_messages = 3;
    cfg.flush_interval_ms = 1'000;
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    CHECK(!log->maybe_flush(0).value());
    put(*log, "a", "1", 0);
    put(*log, "a", "2", 0);
    CHECK(!log->maybe_flush(10).value());
    CHECK(log->recovery_point() == 0);
    put(*log, "a", "3", 0);
    CHECK(log->maybe_flush(20).value());
    CHECK(log->recovery_point() == 3);
    put(*log, "a", "4", 0);
    CHECK(!log->maybe_flush(500).value());
    CHECK(log->maybe_flush(1'020).value());
    CHECK(log->recovery_point() == 4);
}

TEST_CASE("idle descriptors are released and reopened on demand") {
    temp_dir dir;
    log_config cfg;
    cfg.segment_bytes = 1024;
    cfg.index_max_bytes = 4096;
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    std::vector<rec> all;
    for (int i = 0; i < 40; ++i) {
        auto r = put(*log, "k" + std::to_string(i), std::string(80, 'h'), 1000 + i);
        all.push_back({r.base_offset, "k" + std::to_string(i), std::string(80, 'h')});
    }
    REQUIRE(log->segment_count() > 2);
    {
        auto held = log->read(0, 100, true);  // holds segment 0
        REQUIRE(held.slices.at(0).file->fd() >= 0);  // a sender opened it (sealed: lazily)
        size_t closed = log->release_idle_fds();
        CHECK(closed >= 1);
        CHECK(log->segments().front()->fd_open());
    }
    log->release_idle_fds();
    CHECK(log->open_fds() == 0);
    CHECK(read_all(*log) == all);  // slices reopen through fd()
    auto r = put(*log, "late", "x", 5000);
    all.push_back({r.base_offset, "late", "x"});
    CHECK(read_all(*log) == all);
    REQUIRE(!log->flush());
    log.reset();
    auto again = partition_log::open(dir.path() / "t-0", cfg, {.clean_shutdown = true}).value();
    // A reopened log holds a descriptor for its active segment only (until read).
    CHECK(again->open_fds() == 1);
    CHECK(read_all(*again) == all);
}

TEST_CASE("log_cleaner runs tasks on its thread and hands results back") {
    temp_dir dir;
    auto cfg = compact_test_config();
    auto log = partition_log::open(dir.path() / "t-0", cfg).value();
    std::vector<rec> all;
    for (int i = 0; i < 200; ++i) {
        auto r = put(*log, "k" + std::to_string(i % 8), "v" + std::to_string(i) + std::string(30, 'i'), 1000 + i);
        all.push_back({r.base_offset, "k" + std::to_string(i % 8), "v" + std::to_string(i) + std::string(30, 'i')});
    }
    log_cleaner cleaner;
    auto task = log->prepare_cleaning(10'000);
    REQUIRE(task.has_value());
    std::promise<sluice::result<clean_result>> done;
    auto fut = done.get_future();
    cleaner.submit(std::move(*task), [&](sluice::result<clean_result> r) { done.set_value(std::move(r)); });
    // The owner keeps appending meanwhile (to the active segment only).
    for (int i = 200; i < 220; ++i) {
        auto r = put(*log, "k" + std::to_string(i % 8), "v" + std::to_string(i), 1000 + i);
        all.push_back({r.base_offset, "k" + std::to_string(i % 8), "v" + std::to_string(i)});
    }
    REQUIRE(fut.wait_for(std::chrono::seconds(30)) == std::future_status::ready);
    auto r = fut.get();
    REQUIRE(r.has_value());
    REQUIRE(!log->install_cleaned(*r));
    CHECK(read_all(*log) == expected_after(all, log->cleaner_checkpoint(), false));
    cleaner.stop();
    CHECK(cleaner.completed() == 1);
    // After stop, submissions are refused through the callback.
    bool refused = false;
    cleaner.submit(clean_task{}, [&](sluice::result<clean_result> res) { refused = !res; });
    CHECK(refused);
}

TEST_CASE("random appends and compactions against a model") {
    for (uint32_t seed = 1; seed <= 5; ++seed) {
        CAPTURE(seed);
        temp_dir dir;
        auto cfg = compact_test_config();
        cfg.delete_retention_ms = 50;
        std::mt19937 rng(seed);
        auto log = partition_log::open(dir.path() / "t-0", cfg).value();
        std::map<std::string, std::optional<std::string>> latest;
        int64_t ts = 1000;
        for (int step = 0; step < 400; ++step) {
            if (rng() % 40 == 0) {
                auto cleaned = compact(*log, ts);
                (void)cleaned;
                auto now = read_all(*log);
                // Offsets strictly increase; each key's last record equals the model's.
                std::map<std::string, std::optional<std::string>> seen;
                for (size_t i = 0; i < now.size(); ++i) {
                    if (i > 0) REQUIRE(now[i].offset > now[i - 1].offset);
                    seen[now[i].key] = now[i].value;
                }
                for (auto& [k, v] : latest) {
                    auto it = seen.find(k);
                    if (it == seen.end()) {
                        CHECK(!v.has_value());  // only a deleted key may vanish entirely
                    } else {
                        CHECK(it->second == v);
                    }
                }
                continue;
            }
            std::string key = "k" + std::to_string(rng() % 30);
            std::optional<std::string> value;
            if (rng() % 6 != 0) value = std::string(rng() % 60, 'a' + static_cast<char>(step % 26));
            put(*log, key, value, ts);
            latest[key] = value;
            ts += rng() % 20;
        }
    }
}
