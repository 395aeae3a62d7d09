#pragma once
// Log compaction (cleanup.policy=compact): keep the last record per key, drop tombstones
// once delete.retention.ms has passed, leave every surviving record at its offset.
//
// Three steps, split by thread:
//   1. partition_log::prepare_cleaning (owner shard): decides whether the log is due
//      (min.cleanable.dirty.ratio, min/max.compaction.lag.ms) and hands out a clean_task
//      holding shared_ptrs to SEALED segments -- immutable, so another thread may read
//      them while the shard keeps appending to the active segment.
//   2. run_cleaning (the log_cleaner thread, or any thread): builds key -> last offset over
//      the dirty range, then rewrites each segment that loses records into
//      <base>.log.cleaned / .index.cleaned / .timeindex.cleaned (fsynced). Batches keep
//      their base offsets and lastOffsetDelta; a batch losing some records is re-encoded
//      with the survivors (record bytes copied unchanged, CRC recomputed); a batch losing
//      all of them disappears.
//   3. partition_log::install_cleaned (owner shard): renames .cleaned -> .swap, .swap ->
//      live (atomic replacement under the same name) and swaps the segment objects.
//      Outstanding file_slices keep the old segment object and its open file.
//
// Crash safety, checked when a partition_log opens: a .cleaned file is an unfinished
// rewrite and is deleted; a .swap file belongs to a finished rewrite and is renamed to
// its live name (a .log.swap without its index .swap files drops the stale live indexes so
// they are rebuilt); .deleted files are removed.
//
// Compressed batches (gzip, snappy, lz4, zstd; storage/compression.h) are decompressed,
// and a batch that loses records is re-compressed with its own codec. Kept whole: a
// compressed batch that does not decompress (corrupt, or over the size cap), transactional
// and control batches.
// Keys are compared in full (Kafka hashes them to 16 bytes and bounds the map); the map
// is bounded by max_map_keys instead: a dirty range with more keys is cut at a segment
// boundary and the rest waits for the next pass.
//
// Concurrency: run_cleaning and discard_cleaned touch only the task's files and sealed
// segments. log_cleaner owns one thread; submit/stop may be called from any thread and
// `done` callbacks run on the cleaner thread (post them to the owner shard from there).
#include "base/result.h"
#include "storage/log_config.h"
#include "storage/segment.h"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice::storage {

inline constexpr std::string_view cleaned_suffix = ".cleaned";
inline constexpr std::string_view swap_suffix = ".swap";
inline constexpr std::string_view deleted_suffix = ".deleted";

struct clean_task {
    std::filesystem::path dir;
    log_config cfg;
    // Sealed segments from the log start up to end_offset, ascending; and each one's size
    // when the task was made (install refuses a segment that changed since).
    std::vector<std::shared_ptr<segment>> segments;
    std::vector<uint64_t> sizes;
    int64_t first_dirty = 0;  // offsets below were compacted by an earlier pass
    int64_t end_offset = 0;   // one past the last offset cleaned: the next first_dirty
    int64_t now_ms = 0;       // for the tombstone horizon
    size_t max_map_keys = 4'000'000;
};

struct cleaned_segment {
    int64_t base_offset = 0;
    std::shared_ptr<segment> original;
    uint64_t original_size = 0;
    uint64_t bytes_before = 0;
    uint64_t bytes_after = 0;
};

struct clean_stats {
    uint64_t keys = 0;
    uint64_t records_removed = 0;
    uint64_t tombstones_removed = 0;
    uint64_t batches_removed = 0;
    uint64_t bytes_before = 0;
    uint64_t bytes_after = 0;
};

struct clean_result {
    std::filesystem::path dir;
    // Only the segments that lost records; each has its three .cleaned files written.
    std::vector<cleaned_segment> segments;
    int64_t end_offset = 0;
    clean_stats stats;
};

// Step 2 above. `stop` (optional) is polled between batches; a stopped run returns
// operation_canceled after removing its .cleaned files.
result<clean_result> run_cleaning(const clean_task& task, const std::atomic<bool>* stop = nullptr);

// Removes the .cleaned files of a result that will not be installed.
void discard_cleaned(const clean_result& r);

// Startup half of the crash-safety contract above, for one partition directory. Returns
// how many files it deleted or renamed.
result<int> finish_interrupted_cleaning(const std::filesystem::path& dir);

// One background thread running clean tasks one at a time, oldest first.
class log_cleaner {
public:
    using done_fn = std::function<void(result<clean_result>)>;

    log_cleaner();
    ~log_cleaner();  // stop()
    log_cleaner(const log_cleaner&) = delete;
    log_cleaner& operator=(const log_cleaner&) = delete;

    void submit(clean_task task, done_fn done);
    // Cancels the running task, drops queued ones (their done gets operation_canceled)
    // and joins the thread. Idempotent.
    void stop();
    size_t queued() const;
    uint64_t completed() const { return _completed.load(std::memory_order_relaxed); }

private:
    void run();

    mutable std::mutex _mutex;
    std::condition_variable _cv;
    std::deque<std::pair<clean_task, done_fn>> _queue;
    std::atomic<bool> _stop{false};
    std::atomic<uint64_t> _completed{0};
    std::thread _thread;
};

}  // namespace sluice::storage
