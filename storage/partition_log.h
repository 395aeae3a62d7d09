#pragma once
// The log of one topic-partition: a directory <log dir>/<topic>-<partition>/ of
// segments (segment.h) in Kafka's layout. Appends assign offsets and go to the page
// cache; reads hand out file slices of whole batches for zero-copy fetch.
//
// Concurrency: a partition_log is used by exactly one thread, the reactor shard that
// owns the partition. Nothing here locks. file_slices it hands out hold the segment
// (shared_ptr) and may be sent from any thread, even after the segment is rolled,
// truncated or deleted.
#include "base/out_message.h"
#include "base/result.h"
#include "storage/errors.h"
#include "storage/log_cleaner.h"
#include "storage/log_config.h"
#include "storage/segment.h"

#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sluice::storage {

struct append_result {
    log_errc error = log_errc::ok;
    int64_t base_offset = -1;
    int64_t last_offset = -1;
    int64_t log_append_time = -1;  // the broker's timestamp when LogAppendTime, else -1
    int64_t log_start_offset = 0;
    std::error_code io_error;      // the errno behind storage_error
};

struct read_result {
    log_errc error = log_errc::ok;
    std::vector<file_slice> slices;  // one per segment touched, whole batches only
    uint64_t total_bytes = 0;
    int64_t log_start_offset = 0;
    int64_t log_end_offset = 0;
    int64_t high_watermark = 0;
};

struct open_options {
    // Whether the previous run shut down cleanly. Unset: look for the clean-shutdown
    // marker in the parent log dir (log_dir.h) -- the log dir owner normally removes the
    // marker at startup and passes what it found here.
    std::optional<bool> clean_shutdown;
    // From recovery-point-offset-checkpoint: everything below was flushed. Unclean starts
    // re-validate from the segment holding it. Unset: from the first segment.
    std::optional<int64_t> recovery_point;
    // From log-start-offset-checkpoint (DeleteRecords / retention progress).
    std::optional<int64_t> log_start_offset;
    // From replication-offset-checkpoint; unset: log end (a single broker's HW).
    std::optional<int64_t> high_watermark;
    // From cleaner-offset-checkpoint: offsets below were compacted already. Unset: 0
    // (the first pass then scans everything, which is only slower).
    std::optional<int64_t> cleaner_checkpoint;
    int64_t now_ms = 0;  // for the roll timer of a newly created segment
};

enum class close_mode {
    seal,   // trim the active segment's indexes; durability is the caller's (sync_log_dir)
    flush,  // flush() then seal
};

class partition_log {
public:
    ~partition_log();
    partition_log(const partition_log&) = delete;
    partition_log& operator=(const partition_log&) = delete;

    // Opens (creating the directory if missing) and recovers the log in dir.
    static result<std::unique_ptr<partition_log>> open(const std::filesystem::path& dir,
                                                       const log_config& cfg,
                                                       const open_options& opts = {});

    // Validates every batch first (nothing is written on error), assigns offsets and the
    // leader epoch in place (both outside the CRC) and appends the bytes unchanged --
    // except with LogAppendTime, where maxTimestamp is set and the CRC recomputed.
    // `validated`: validate_batches(records, origin) already succeeded on these very bytes
    // (the Produce handler runs it on the connection's core, where a just-received frame is
    // still in cache); its summary is used instead of a second pass. Limits that depend on
    // this log's config are still checked here.
    append_result append(std::span<uint8_t> records, int32_t leader_epoch, int64_t now_ms,
                         validate_origin origin = validate_origin::client,
                         const batch_summary* validated = nullptr);

    // A follower's append: batches keep the offsets and epochs the leader assigned (the
    // first base offset must be >= log end; a gap rolls to a segment starting there).
    // Validated like client batches (replica origin) before anything is written.
    append_result append_replicated(std::span<const uint8_t> records, int64_t now_ms);

    // Whole batches from the one containing fetch_offset, at most max_bytes (but the whole
    // first batch when min_one, KIP-74), stopping before max_offset (e.g. the high
    // watermark for consumers; -1: log end). offset_out_of_range outside
    // [log_start_offset, log_end_offset]; fetch_offset == log end gives no slices.
    read_result read(int64_t fetch_offset, int32_t max_bytes, bool min_one,
                     int64_t max_offset = -1) const;

    int64_t log_start_offset() const { return _log_start; }
    int64_t log_end_offset() const { return _log_end; }  // the next offset to assign
    int64_t high_watermark() const { return _high_watermark; }
    void set_high_watermark(int64_t hw);                 // clamped to [log start, log end]
    int64_t recovery_point() const { return _recovery_point; }
    const std::filesystem::path& dir() const { return _dir; }
    const log_config& config() const { return _cfg; }
    // A topic config change (AlterConfigs): retention, compaction and flush settings apply
    // from the next call; segment size/time and index settings from the next new segment.
    void set_config(const log_config& cfg) { _cfg = cfg; }
    size_t segment_count() const { return _segments.size(); }
    uint64_t size_bytes() const;
    const std::vector<std::shared_ptr<segment>>& segments() const { return _segments; }

    // ListOffsets by timestamp: the first record (first batch for compressed batches)
    // with timestamp >= ts and its timestamp; nullopt when every record is older.
    result<std::optional<timestamp_offset>> offset_for_timestamp(int64_t ts) const;
    // Largest batch maxTimestamp and that batch's last offset ({-1, -1} when empty).
    timestamp_offset max_timestamp() const;

    // fdatasync of segments holding unflushed data, then the recovery point moves to
    // the log end. Costs nothing when !flush_needed().
    std::error_code flush();
    // Data past the recovery point, or segment files created/removed since the last flush.
    bool flush_needed() const;
    // Seals the active segment (trims indexes). The object must not be used afterwards
    // except for destruction (and synced()); outstanding slices stay valid.
    // close_mode::seal (= close()): no fsync. The fast clean stop seals every log, then
    // makes the whole log dir durable with one sync_log_dir() (log_dir.h) and calls
    // synced() on each log before writing the checkpoints and the clean-shutdown marker.
    // close_mode::flush: flush() first (one log alone; serial fsyncs for many).
    std::error_code close(close_mode mode);
    std::error_code close();
    // After close() and a successful sync_log_dir() of this log's dir: everything written
    // is durable, so recovery_point() becomes the log end (for the checkpoint).
    void synced();

    // Removes every offset >= offset (replication: truncate to the leader's epoch end).
    // Whole batches go; below the first segment the log restarts empty at offset.
    std::error_code truncate_to(int64_t offset);
    // DeleteRecords / retention: moves the log start forward and deletes segments that
    // lie entirely below it (renamed to .deleted, unlinked by delete_expired_files).
    // Also unlinks .deleted files that are due. now_ms < 0: the system clock.
    std::error_code advance_log_start(int64_t offset, int64_t now_ms = -1);
    // cleanup.policy contains "delete": deletes old segments by retention.ms and
    // retention.bytes (never the active one, never above the high watermark), moving the
    // log start offset (the owner checkpoints log_start_offset()). Returns how many.
    // Also unlinks .deleted files that are due (delete_expired_files).
    result<int> enforce_retention(int64_t now_ms);
    // Unlinks .deleted segments whose file.delete.delay.ms has passed; returns how many.
    int delete_expired_files(int64_t now_ms);
    size_t pending_deletes() const { return _pending_deletes.size(); }

    // flush.messages / flush.ms: flushes when either is due. Returns whether it flushed.
    result<bool> maybe_flush(int64_t now_ms);

    // Closes the .log descriptors of segments nobody else holds (no file_slice out); the
    // next read or append reopens them. The owner calls it for idle partitions so that
    // many partitions fit under a modest `ulimit -n`. Also drops the resident pages of
    // the log and index mappings (segment::release_memory). Returns how many it closed.
    size_t release_idle_fds();
    size_t open_fds() const;

    // ---- compaction (log_cleaner.h) ----
    // A task for the cleaner when cleanup.policy has "compact", no task is in flight and
    // the log is due (dirty ratio, compaction lags); nullopt otherwise. Marks one in flight.
    std::optional<clean_task> prepare_cleaning(int64_t now_ms);
    // Installs a finished task's segments (owner thread). A segment that changed since the
    // task was prepared (truncated, deleted by retention) is skipped and its .cleaned
    // files removed. Clears the in-flight mark, also on error.
    std::error_code install_cleaned(const clean_result& r);
    // The task failed or was cancelled: clears the in-flight mark.
    void abort_cleaning() { _cleaning = false; }
    bool cleaning() const { return _cleaning; }
    // Offsets below were compacted; the owner checkpoints it (cleaner-offset-checkpoint).
    int64_t cleaner_checkpoint() const { return _first_dirty; }
    // Dirty bytes / cleanable bytes over the sealed segments (0 when none).
    double dirty_ratio(int64_t now_ms) const;

private:
    partition_log(const std::filesystem::path& dir, const log_config& cfg);
    std::error_code load(const open_options& opts);
    std::error_code load_segments(const std::vector<int64_t>& bases, bool clean,
                                  int64_t recovery_point);
    std::error_code recover_from(size_t first);
    std::error_code roll(int64_t next_base, int64_t now_ms);
    std::error_code delete_segment_front(int64_t now_ms);
    size_t cleanable_end(int64_t now_ms) const;
    std::error_code install_one(const cleaned_segment& c);
    std::error_code flush_dir();
    size_t segment_index_for(int64_t offset) const;
    append_result check_append(std::span<uint8_t> records, validate_origin origin,
                               const batch_summary* validated, batch_summary* summary) const;
    void assign_offsets(std::span<uint8_t> records, int32_t leader_epoch, int64_t now_ms,
                        append_result* r);
    std::optional<timestamp_offset> refine_by_records(const segment& s, const batch_header& h,
                                                      int64_t ts) const;

    std::filesystem::path _dir;
    log_config _cfg;
    std::vector<std::shared_ptr<segment>> _segments;  // ascending base offsets; back is active
    int64_t _log_start = 0;
    int64_t _log_end = 0;
    int64_t _high_watermark = 0;
    int64_t _recovery_point = 0;
    bool _closed = false;
    bool _dir_dirty = true;  // segment files created/removed since the last directory fsync
    bool _cleaning = false;  // a clean_task is out
    int64_t _first_dirty = 0;
    int64_t _unflushed_messages = 0;
    int64_t _last_flush_ms = -1;
    struct pending_delete {
        std::shared_ptr<segment> seg;
        int64_t due_ms;
    };
    std::vector<pending_delete> _pending_deletes;
};

}  // namespace sluice::storage
