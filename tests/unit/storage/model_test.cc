// Random operation sequences (append, read, truncate, advance start, flush, clean
// reopen, crash with a torn tail) against a simple in-memory model of the log.
#include "storage/partition_log.h"

#include "test_util.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>

using namespace sluice::storage;
using namespace sluice::storage::test;
namespace fs = std::filesystem;

namespace {

struct model {
    std::vector<record_kv> records;  // dense from offset 0
    std::vector<int64_t> batch_ends; // one past the last offset of each batch, ascending
    int64_t log_start = 0;

    int64_t end() const { return static_cast<int64_t>(records.size()); }
    void truncate(int64_t new_end) {
        records.resize(static_cast<size_t>(new_end));
        while (!batch_ends.empty() && batch_ends.back() > new_end) batch_ends.pop_back();
    }
    // First offset of the batch holding offset.
    int64_t batch_base(int64_t offset) const {
        auto it = std::upper_bound(batch_ends.begin(), batch_ends.end(), offset);
        return it == batch_ends.begin() ? 0 : *(it - 1);
    }
};

log_config config() {
    log_config cfg;
    cfg.segment_bytes = 3000;
    cfg.index_interval_bytes = 300;
    cfg.index_max_bytes = 1024;
    return cfg;
}

void check(partition_log& log, const model& m) {
    REQUIRE(log.log_end_offset() == m.end());
    REQUIRE(log.log_start_offset() == m.log_start);
    auto r = log.read(m.log_start, INT32_MAX, true);
    REQUIRE(r.error == log_errc::ok);
    auto got = records_of(slice_bytes(r));
    int64_t from = m.end() == m.log_start ? m.end() : m.batch_base(m.log_start);
    REQUIRE(got.size() == static_cast<size_t>(m.end() - from));
    for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == m.records[static_cast<size_t>(from) + i]);
}

void do_append(partition_log& log, model& m, std::mt19937& rng) {
    int first = static_cast<int>(m.end());
    int n = 1 + static_cast<int>(rng() % 6);
    size_t pad = rng() % 250;
    auto b = make_batch(first, n, 5000 + first, pad);
    auto r = log.append(b, 1, 0);
    REQUIRE(r.error == log_errc::ok);
    REQUIRE(r.base_offset == first);
    for (int k = 0; k < n; ++k)
        m.records.push_back({first + k, "k" + std::to_string(first + k),
                             "v" + std::to_string(first + k) + std::string(pad, 'x')});
    m.batch_ends.push_back(first + n);
}

std::unique_ptr<partition_log> open_log(const fs::path& dir, bool clean, int64_t log_start) {
    open_options o;
    o.clean_shutdown = clean;
    o.log_start_offset = log_start;
    auto log = partition_log::open(dir, config(), o);
    REQUIRE(log.has_value());
    return std::move(*log);
}

void crash_with_torn_tail(std::unique_ptr<partition_log>& log, model& m, const fs::path& dir,
                          std::mt19937& rng) {
    auto last = log->segments().back()->log_path();
    int64_t last_base = log->segments().back()->base_offset();
    log.reset();
    auto size = fs::file_size(last);
    if (size > 0) fs::resize_file(last, rng() % size);
    log = open_log(dir, false, m.log_start);
    // Recovery keeps a prefix of whole batches, losing only the torn segment's tail.
    int64_t end = log->log_end_offset();
    REQUIRE(end >= last_base);
    REQUIRE(end <= m.end());
    REQUIRE((end == 0 || std::binary_search(m.batch_ends.begin(), m.batch_ends.end(), end)));
    m.truncate(end);
    m.log_start = std::min(m.log_start, end);
}

}  // namespace

TEST_CASE("partition_log model: random operation sequences") {
    for (uint32_t seed = 1; seed <= 12; ++seed) {
        CAPTURE(seed);
        temp_dir dir;
        auto path = dir.path() / "model-0";
        std::mt19937 rng(seed);
        model m;
        auto log = open_log(path, true, 0);
        for (int step = 0; step < 250; ++step) {
            int op = static_cast<int>(rng() % 100);
            CAPTURE(step);
            CAPTURE(op);
            if (op < 55) {
                do_append(*log, m, rng);
            } else if (op < 70 && m.end() > m.log_start) {
                // A read from a random offset starts at the batch holding it.
                int64_t off = m.log_start + static_cast<int64_t>(rng() % (m.end() - m.log_start));
                auto r = log->read(off, 1 + static_cast<int32_t>(rng() % 5000), true);
                REQUIRE(r.error == log_errc::ok);
                auto got = records_of(slice_bytes(r));
                REQUIRE(!got.empty());
                REQUIRE(got.front().offset == m.batch_base(off));
                for (auto& kv : got) REQUIRE(kv == m.records[static_cast<size_t>(kv.offset)]);
            } else if (op < 76 && !m.batch_ends.empty()) {
                // Truncate at a batch boundary above the log start.
                auto boundary = m.batch_ends[rng() % m.batch_ends.size()];
                if (boundary > m.log_start) {
                    REQUIRE(!log->truncate_to(boundary));
                    m.truncate(boundary);
                }
            } else if (op < 80 && m.end() > m.log_start) {
                int64_t start = m.log_start + static_cast<int64_t>(rng() % (m.end() - m.log_start + 1));
                log->set_high_watermark(log->log_end_offset());
                REQUIRE(!log->advance_log_start(start));
                m.log_start = start;
            } else if (op < 85) {
                REQUIRE(!log->flush());
            } else if (op < 93) {
                REQUIRE(!log->close());
                log = open_log(path, true, m.log_start);
            } else {
                crash_with_torn_tail(log, m, path, rng);
            }
            check(*log, m);
        }
    }
}
