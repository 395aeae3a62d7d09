#pragma once
// Shared helpers for the storage tests: a scratch directory, hex, and reading what a
// partition_log hands out back into (offset, key, value) tuples.
#include "base/log.h"
#include "storage/partition_log.h"
#include "storage/record_batch.h"

#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

namespace sluice::storage::test {

// A fresh directory under /tmp, removed (recursively) when the test ends.
class temp_dir {
public:
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "sluice-storage-XXXXXX").string();
        char* p = ::mkdtemp(tmpl.data());
        REQUIRE(p != nullptr);
        _path = p;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(_path, ec);
    }
    const std::filesystem::path& path() const { return _path; }

private:
    std::filesystem::path _path;
};

inline std::vector<uint8_t> from_hex(std::string_view hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2)
        out.push_back(static_cast<uint8_t>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
    return out;
}

inline std::string as_string(std::span<const uint8_t> s) { return {s.begin(), s.end()}; }

// The bytes of every slice, read with pread on the slice's fd (what a sender would send),
// or from the mapping of a slice without one.
inline std::vector<uint8_t> slice_bytes(const read_result& r) {
    std::vector<uint8_t> out;
    for (auto& s : r.slices) {
        size_t at = out.size();
        out.resize(at + s.length);
        size_t done = 0;
        if (s.file->fd() < 0) {  // bytes held in memory (a direct-append tail chunk)
            REQUIRE(s.position + s.length <= s.file->mapped_size());
            std::memcpy(out.data() + at, s.file->mapped() + s.position, s.length);
            done = s.length;
        }
        while (done < s.length) {
            ssize_t n = ::pread(s.file->fd(), out.data() + at + done, s.length - done,
                                static_cast<off_t>(s.position + done));
            REQUIRE(n > 0);
            done += static_cast<size_t>(n);
        }
    }
    return out;
}

struct record_kv {
    int64_t offset;
    std::string key;
    std::string value;
    bool operator==(const record_kv&) const = default;
};

// Walks whole batches (asserting each is valid) and returns their records.
inline std::vector<record_kv> records_of(std::span<const uint8_t> bytes) {
    std::vector<record_kv> out;
    size_t pos = 0;
    while (pos < bytes.size()) {
        REQUIRE(bytes.size() - pos >= batch_header_size);
        auto h = parse_batch_header(bytes.data() + pos);
        REQUIRE(pos + h.size_bytes() <= bytes.size());
        auto batch = bytes.subspan(pos, h.size_bytes());
        REQUIRE(!check_stored_batch(batch, batch.size()));
        auto recs = decode_records(batch);
        REQUIRE(recs.has_value());
        for (auto& r : *recs)
            out.push_back({h.base_offset + r.offset_delta, r.key ? as_string(*r.key) : "",
                           r.value ? as_string(*r.value) : ""});
        pos += h.size_bytes();
    }
    return out;
}

// A batch of n records with values "v<first+i>" and keys "k<first+i>".
inline std::vector<uint8_t> make_batch(int first, int n, int64_t ts = 1000, size_t pad = 0) {
    batch_builder b(ts);
    for (int i = 0; i < n; ++i) {
        std::string v = "v" + std::to_string(first + i) + std::string(pad, 'x');
        b.add("k" + std::to_string(first + i), v, ts + i);
    }
    return b.build();
}

}  // namespace sluice::storage::test

namespace sluice::storage::test {
// Opens (recovers) the log in dir as after a clean or an unclean stop.
inline std::unique_ptr<partition_log> open_after_stop(const std::filesystem::path& dir, const log_config& cfg,
                                                      bool clean,
                                                      std::optional<int64_t> recovery_point = std::nullopt) {
    open_options opts;
    opts.clean_shutdown = clean;
    opts.recovery_point = recovery_point;
    auto log = partition_log::open(dir, cfg, opts);
    REQUIRE(log.has_value());
    return std::move(*log);
}

// Small segments, compaction due at once, tombstones kept: the cleaner tests' log.
inline log_config compact_test_config() {
    log_config cfg;
    cfg.segment_bytes = 2048;
    cfg.index_interval_bytes = 128;
    cfg.index_max_bytes = 4096;
    cfg.cleanup_policy = cleanup_compact;
    cfg.min_cleanable_dirty_ratio = 0.0;
    cfg.delete_retention_ms = 1'000'000;
    return cfg;
}

// Recovery and rolls log at info; keep test output to warnings and errors.
inline const bool quiet_logs = (sluice::log::set_level(sluice::log::level::warn), true);
}  // namespace sluice::storage::test
