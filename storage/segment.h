#pragma once
// One log segment: <base offset, 20 digits>.log holding record batches back to back,
// byte-for-byte as they travel on the wire, plus its .index and .timeindex (index.h).
//
// A segment is a file_handle so a Fetch response can carry slices of it: fd() is the
// .log file (for splice/sendfile/pread) and mapped()/mapped_size() a read-only shared
// mapping of it. The mapping reserves the maximum segment size once (address space only)
// so it never moves while the file grows; mapped_size() exposes only what is written.
//
// Concurrency: everything but fd()/mapped()/mapped_size() is for the owning shard's
// thread. Those three may be called from any thread holding a file_slice: the written
// size is published with release/acquire after each pwrite. A slice stays valid while a
// shared_ptr holds the segment, even after the segment is rolled or its files deleted.
// A truncation (recovery of a follower, a failed write) shrinks mapped_size() first;
// a sender must re-check mapped_size() before touching the mapping (as Kafka's
// FileRecords.writeTo re-checks the file size).
#include "base/out_message.h"
#include "base/result.h"
#include "storage/index.h"
#include "storage/log_config.h"
#include "storage/record_batch.h"
#include "storage/tail_cache.h"

#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

namespace sluice::storage {

// "00000000000000000042" + ext (".log", ".index", ".timeindex").
std::string segment_file_name(int64_t base_offset, std::string_view ext);

class segment final : public file_handle {
public:
    struct recover_stats {
        uint64_t valid_bytes = 0;
        uint64_t truncated_bytes = 0;
        int32_t batches = 0;
    };

    ~segment() override;

    // A new, empty, active segment (files created; existing ones are truncated).
    // suffix: appended to the three file names (the cleaner writes "<base>.log.cleaned").
    static result<std::shared_ptr<segment>> create(const std::filesystem::path& dir,
                                                   int64_t base_offset, const log_config& cfg,
                                                   int64_t now_ms, std::string_view suffix = {});
    // An existing segment. The caller then either checks it (sanity_check/load_tail)
    // or recovers it. index_open_mode::discard when it will be recovered right away: the
    // index files are cut to nothing instead of being read (index.h).
    static result<std::shared_ptr<segment>> open(const std::filesystem::path& dir,
                                                 int64_t base_offset, const log_config& cfg,
                                                 bool active,
                                                 index_open_mode mode = index_open_mode::load);

    // file_handle
    // Opens the .log file on first use (see release_fd); -1 if that fails.
    int fd() const override { return open_fd(); }
    const uint8_t* mapped() const override { return _map; }
    uint64_t mapped_size() const override {
        return std::min<uint64_t>(_size.load(std::memory_order_acquire), _map_bytes);
    }

    int64_t base_offset() const { return _base_offset; }
    uint64_t size_bytes() const { return _size.load(std::memory_order_relaxed); }
    // One past the last offset in the segment (base_offset when empty).
    int64_t next_offset() const { return _next_offset; }
    bool empty() const { return size_bytes() == 0; }
    int64_t created_ms() const { return _created_ms; }
    // Largest batch maxTimestamp and the last offset of that batch ({-1, -1} if empty).
    timestamp_offset max_timestamp() const { return {_max_timestamp, _offset_of_max_timestamp}; }
    const offset_index& index() const { return _index; }
    const time_index& timeindex() const { return _timeindex; }
    const std::filesystem::path& log_path() const { return _log_path; }

    // Would appending `bytes` in `batches` batches ending at last_offset need a new segment?
    bool needs_roll(uint64_t bytes, int32_t batches, int64_t last_offset, int64_t now_ms) const;

    // Appends whole batches whose offsets are already assigned (>= next_offset()). No
    // fsync. With log_config::direct_append the bytes are copied into a tail_chunk and
    // written from it with O_DIRECT (tail_cache.h); otherwise (or when no chunk is free,
    // or the file system refuses O_DIRECT) one pwrite loop to the page cache. On a write
    // error the file is truncated back and nothing changes.
    std::error_code append(std::span<const uint8_t> batches);

    // Slices for [position, position + length) (whole batches): bytes still held in a
    // tail chunk are served from it, the rest from the file. Split only at batch
    // boundaries.
    static void slices_into(const std::shared_ptr<segment>& self, uint64_t position,
                            uint64_t length, std::vector<file_slice>& out);

    // Header of the batch at position (pread or the mapping). corrupt_message when fewer
    // than 61 bytes remain or the magic is not 2.
    result<batch_header> header_at(uint64_t position) const;

    // Position of the first batch with last offset >= offset, or size_bytes() if none.
    result<uint64_t> find_position(int64_t offset) const;

    // Whole batches from `position` (a batch start): at most max_bytes, but at least the
    // first batch when min_one; stops before a batch whose base offset >= max_offset.
    result<uint64_t> slice_length(uint64_t position, uint64_t max_bytes, bool min_one,
                                  int64_t max_offset) const;

    // The first batch (from the time index) with maxTimestamp >= ts.
    result<std::optional<batch_header>> find_by_timestamp(int64_t ts) const;

    // Checks for a clean start, touching only the ends of each index (as Kafka does): the
    // first and last offset-index entries name real batch boundaries with the right last
    // offsets and increase; the time index's first and last entries are ordered.
    // false means rebuild.
    bool sanity_check() const;
    // Walks from the last index entry to the end: next offset, max timestamp, bytes since
    // the last index entry. For a clean start.
    std::error_code load_tail();
    // Re-validates every batch (CRC, structure, increasing offsets) from the start,
    // rebuilding both indexes, and truncates the file at the first invalid batch.
    result<recover_stats> recover(uint64_t max_batch_bytes);

    // Removes every batch containing an offset >= offset (whole batches) and their
    // index entries. Returns the new next_offset().
    result<int64_t> truncate_to(int64_t offset);

    // Roll/close: final time index entry, indexes trimmed to their entries.
    std::error_code seal();
    // Truncate-back after the newer segments were removed: indexes full size again.
    // exclusive: the caller holds the only reference (no slice is out), so the log mapping
    // may be replaced by one reserving the full segment size; otherwise the old mapping
    // stays and bytes past it are served by pread.
    std::error_code reactivate(bool exclusive);
    std::error_code flush();
    // Closes the .log descriptor; the next fd()/read/append reopens it. Only when no other
    // thread can be using the descriptor: the owner calls it when it holds the only
    // reference (use_count() == 1, no file_slice out). Returns whether one was open.
    bool release_fd();
    bool fd_open() const { return _fd.load(std::memory_order_relaxed) >= 0; }
    // Descriptors this segment holds (the .log one and, while appending direct, its
    // O_DIRECT one); owner thread only. The descriptor budget counts these.
    size_t open_fd_count() const { return (fd_open() ? 1 : 0) + (_direct.fd >= 0 ? 1 : 0); }
    // Gives back the direct-append chunks and descriptor, and drops this process's
    // page-table entries of the log and index mappings (the pages
    // stay in the page cache; a later access faults them back). Safe while a slice is
    // being sent from another thread: the mapping is shared and file-backed, so a reader
    // just refaults the same bytes.
    void release_memory();
    // Unlinks the three files; open descriptors (and slices) stay valid.
    std::error_code remove_files();
    // Retention: renames the three files to <name>.deleted (removed later, after
    // file.delete.delay.ms). The .log descriptor is opened first so fd() never needs the
    // old name again; open descriptors and slices stay valid.
    std::error_code mark_deleted();

    // Reads [position, position + length) into out (tests, tools, timestamp lookups).
    std::error_code read_bytes(uint64_t position, size_t length, uint8_t* out) const;

private:
    segment(const std::filesystem::path& dir, int64_t base_offset, const log_config& cfg,
            std::string_view suffix = {});
    std::error_code open_files(bool create, bool active,
                               index_open_mode mode = index_open_mode::load);
    std::error_code map_log(uint64_t reserve);
    int open_fd() const;
    void index_batch(const batch_header& h, uint64_t position);
    bool index_entry_matches(const offset_position& e) const;
    std::error_code truncate_file(uint64_t size);
    bool direct_ready(size_t bytes);
    std::error_code append_direct(std::span<const uint8_t> batches);
    std::error_code append_buffered(std::span<const uint8_t> batches);
    // The chunk holding [position, position + length) whole, or nullptr.
    const tail_chunk* cached(uint64_t position, uint64_t length) const;
    void drop_direct(bool close_fd);

    std::filesystem::path _log_path;
    std::filesystem::path _index_path;
    std::filesystem::path _timeindex_path;
    int64_t _base_offset;
    log_config _cfg;
    mutable std::atomic<int> _fd{-1};
    const uint8_t* _map = nullptr;
    uint64_t _map_bytes = 0;
    std::atomic<uint64_t> _size{0};
    int64_t _next_offset;
    int64_t _created_ms = 0;
    int64_t _max_timestamp = -1;
    int64_t _offset_of_max_timestamp = -1;
    uint64_t _bytes_since_index = 0;
    bool _index_lost = false;  // index files were missing at open: sanity_check() fails
    // Direct appends (owner thread only). The file may hold zeros past _size up to the
    // next 4 KiB boundary until seal() cuts it; recovery stops at them after a crash.
    struct direct_state {
        bool allowed = false;      // active log segment (not a cleaner output) with direct_append
        bool unavailable = false;  // O_DIRECT refused here: buffered from now on
        bool padded = false;       // the file may extend past _size
        int fd = -1;
        // Ascending file positions; back() is being filled. Each serves bytes from its
        // serve_from (a batch boundary) to its fill.
        struct held {
            std::shared_ptr<tail_chunk> chunk;
            uint64_t serve_from = 0;
        };
        std::vector<held> chunks;
    };
    direct_state _direct;
    offset_index _index;
    time_index _timeindex;
};

}  // namespace sluice::storage
