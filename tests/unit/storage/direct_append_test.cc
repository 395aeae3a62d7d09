// log.append.strategy=direct: O_DIRECT appends from tail chunks that also serve reads.
#include "storage/partition_log.h"
#include "storage/tail_cache.h"

#include "test_util.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cstring>
#include <fstream>
#include <random>

using namespace sluice::storage;
using namespace sluice::storage::test;

namespace {

log_config direct_config(uint64_t segment_bytes) {
    log_config cfg;
    cfg.segment_bytes = segment_bytes;
    cfg.index_interval_bytes = 4096;
    cfg.max_message_bytes = 16u << 20;
    cfg.direct_append = true;
    return cfg;
}

// Appends `batches` batches of 1..5 records with values up to max_pad bytes; returns the model.
std::vector<record_kv> fill(partition_log& log, int batches, std::mt19937& rng, size_t max_pad) {
    std::vector<record_kv> model;
    int next = static_cast<int>(log.log_end_offset());
    for (int i = 0; i < batches; ++i) {
        int n = 1 + static_cast<int>(rng() % 5);
        size_t pad = rng() % max_pad;
        auto b = make_batch(next, n, 1000 + next, pad);
        auto r = log.append(b, 3, 0);
        REQUIRE(r.error == log_errc::ok);
        REQUIRE(r.base_offset == next);
        for (int k = 0; k < n; ++k)
            model.push_back({next + k, "k" + std::to_string(next + k), "v" + std::to_string(next + k) + std::string(pad, 'x')});
        next += n;
    }
    return model;
}

uint64_t on_disk_size(const std::filesystem::path& p) {
    struct stat st {};
    REQUIRE(::stat(p.c_str(), &st) == 0);
    return static_cast<uint64_t>(st.st_size);
}

// The first `n` bytes of a file, read through the page cache (what a restart would read).
std::vector<uint8_t> file_bytes(const std::filesystem::path& p, uint64_t n) {
    std::ifstream in(p, std::ios::binary);
    std::vector<uint8_t> out(n);
    in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(n));
    REQUIRE(static_cast<uint64_t>(in.gcount()) == n);
    return out;
}

void copy_dir(const std::filesystem::path& from, const std::filesystem::path& to) {
    std::filesystem::create_directories(to);
    for (auto& e : std::filesystem::directory_iterator(from))
        std::filesystem::copy_file(e.path(), to / e.path().filename());
}

}  // namespace

TEST_CASE("direct append: reads come from the tail chunks and match the file, across chunks and rolls") {
    temp_dir dir;
    tail_pool::instance().set_budget(64u << 20);
    auto log = partition_log::open(dir.path() / "t-0", direct_config(40u << 20));
    REQUIRE(log.has_value());
    auto& l = **log;
    std::mt19937 rng(11);
    auto model = fill(l, 900, rng, 40000);  // ~54 MiB: a roll, then several 4 MiB chunks
    REQUIRE(l.segment_count() >= 2);

    auto all = l.read(0, INT32_MAX, true);
    REQUIRE(all.error == log_errc::ok);
    auto bytes = slice_bytes(all);
    CHECK(records_of(bytes) == model);
    size_t from_chunks = 0;
    for (auto& s : all.slices) from_chunks += s.file->fd() < 0 ? 1 : 0;
    CHECK(from_chunks >= 2);  // the newest bytes are served from memory, split at batches

    // Every slice starts at a batch boundary: each decodes on its own (the group
    // coordinator and the cleaner parse slice by slice).
    for (auto& s : all.slices) {
        read_result one;
        one.slices.push_back(s);
        CHECK_FALSE(records_of(slice_bytes(one)).empty());
    }
    // Reads starting inside every chunk region, small budgets.
    for (int i = 0; i < 200; ++i) {
        int64_t off = static_cast<int64_t>(rng() % model.size());
        auto r = l.read(off, 1 + static_cast<int32_t>(rng() % 200000), true);
        REQUIRE(r.error == log_errc::ok);
        auto got = records_of(slice_bytes(r));
        REQUIRE(!got.empty());
        CHECK(got.front().offset <= off);
        for (auto& kv : got) REQUIRE(kv == model[static_cast<size_t>(kv.offset)]);
    }
    // The active file holds the same bytes (written with O_DIRECT), zero-padded to 4 KiB.
    const auto& active = *l.segments().back();
    uint64_t logical = active.size_bytes();
    CHECK(on_disk_size(active.log_path()) % direct_block == 0);
    CHECK(on_disk_size(active.log_path()) >= logical);
    auto on_disk = file_bytes(active.log_path(), logical);
    auto r = l.read(active.base_offset(), INT32_MAX, true);
    CHECK(slice_bytes(r) == on_disk);

    // A clean close cuts the padding; a clean reopen sees everything and appends on.
    auto path = active.log_path();
    REQUIRE(!l.close());
    CHECK(on_disk_size(path) == logical);
    log->reset();
    auto again = open_after_stop(dir.path() / "t-0", direct_config(40u << 20), true);
    CHECK(again->log_end_offset() == static_cast<int64_t>(model.size()));
    auto more = fill(*again, 50, rng, 3000);
    model.insert(model.end(), more.begin(), more.end());
    CHECK(records_of(slice_bytes(again->read(0, INT32_MAX, true))) == model);
}

TEST_CASE("direct append: a crash leaves zero padding that recovery cuts, losing nothing written") {
    temp_dir dir;
    tail_pool::instance().set_budget(64u << 20);
    auto cfg = direct_config(64u << 20);
    auto log = open_after_stop(dir.path() / "t-0", cfg, true);
    std::mt19937 rng(5);
    auto model = fill(*log, 120, rng, 5000);
    // Files as a kill -9 leaves them: nothing sealed, the last block padded with zeros.
    copy_dir(dir.path() / "t-0", dir.path() / "crashed-0");
    auto seg_path = log->segments().back()->log_path();
    CHECK(on_disk_size(seg_path) > log->segments().back()->size_bytes());
    auto crashed = open_after_stop(dir.path() / "crashed-0", cfg, false);
    CHECK(crashed->log_end_offset() == static_cast<int64_t>(model.size()));
    CHECK(records_of(slice_bytes(crashed->read(0, INT32_MAX, true))) == model);
    // Appends continue at the recovered end (the partial block is re-read from the file).
    auto more = fill(*crashed, 30, rng, 5000);
    model.insert(model.end(), more.begin(), more.end());
    CHECK(records_of(slice_bytes(crashed->read(0, INT32_MAX, true))) == model);
}

TEST_CASE("direct append: a slice being sent keeps its chunk from reuse") {
    temp_dir dir;
    tail_pool::instance().set_budget(3 * tail_chunk_bytes);  // tight: chunks must cycle
    auto log = open_after_stop(dir.path() / "t-0", direct_config(256u << 20), true);
    std::mt19937 rng(9);
    auto model = fill(*log, 20, rng, 20000);
    auto held = log->read(0, INT32_MAX, true);
    auto before = slice_bytes(held);
    REQUIRE(!before.empty());
    bool any_chunk = false;
    for (auto& s : held.slices) any_chunk |= s.file->fd() < 0;
    REQUIRE(any_chunk);
    // Far more than the pool: the held chunk must not be handed out and overwritten.
    auto more = fill(*log, 600, rng, 40000);
    CHECK(slice_bytes(held) == before);
    model.insert(model.end(), more.begin(), more.end());
    CHECK(records_of(slice_bytes(log->read(0, INT32_MAX, true))) == model);
    tail_pool::instance().set_budget(64u << 20);
}

TEST_CASE("direct append: no free chunk or an oversized append falls back to the page cache") {
    temp_dir dir;
    tail_pool::instance().set_budget(0);  // nothing can go direct
    auto cfg = direct_config(64u << 20);
    auto log = open_after_stop(dir.path() / "t-0", cfg, true);
    std::mt19937 rng(3);
    auto model = fill(*log, 40, rng, 3000);
    for (auto& s : log->read(0, INT32_MAX, true).slices) CHECK(s.file->fd() >= 0);
    // Direct again, then one append bigger than a chunk (buffered), then direct again.
    tail_pool::instance().set_budget(64u << 20);
    auto a = fill(*log, 40, rng, 3000);
    int next = static_cast<int>(log->log_end_offset());
    auto big = make_batch(next, 3, 1000, 2u << 20);  // ~6 MiB in one batch
    REQUIRE(log->append(big, 3, 0).error == log_errc::ok);
    for (int k = 0; k < 3; ++k)
        a.push_back({next + k, "k" + std::to_string(next + k), "v" + std::to_string(next + k) + std::string(2u << 20, 'x')});
    auto b = fill(*log, 40, rng, 3000);
    model.insert(model.end(), a.begin(), a.end());
    model.insert(model.end(), b.begin(), b.end());
    CHECK(records_of(slice_bytes(log->read(0, INT32_MAX, true))) == model);
    REQUIRE(!log->close());
    auto again = open_after_stop(dir.path() / "t-0", cfg, true);
    CHECK(records_of(slice_bytes(again->read(0, INT32_MAX, true))) == model);
}
