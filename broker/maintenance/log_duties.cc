#include "base/clock.h"
#include "broker/maintenance/log_duties.h"

#include "base/assert.h"
#include "base/log.h"
#include "broker/maintenance/background_io.h"
#include "broker/maintenance/fd_budget.h"
#include "broker/server.h"
#include "broker/shard.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice::broker {
namespace {

constexpr size_t retention_slice_partitions = 32;  // per reactor turn
constexpr size_t flush_jobs_per_tick = 64;
constexpr size_t clean_tasks_per_tick = 16;        // the rest wait for the next check
constexpr std::chrono::milliseconds housekeeping_interval{1000};
constexpr uint64_t descriptor_report_ticks = 60;

// fdatasync of one segment from the background thread. A descriptor the fd budget
// closed is not reopened for good (that would bypass the budget): a temporary one
// syncs the same inode. A segment whose files were deleted meanwhile needs no sync.
bool sync_segment(const storage::segment& s) {
    if (s.fd_open()) {
        int fd = s.fd();
        return fd >= 0 && ::fdatasync(fd) == 0;
    }
    int fd = ::open(s.log_path().c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT;
    bool ok = ::fdatasync(fd) == 0;
    ::close(fd);
    return ok;
}

}  // namespace

void log_duties::start() {
    if (_started) return;
    _started = true;
    arm_retention();
    arm_housekeeping();
    if (_shard.srv().cleaner() != nullptr) arm_cleaner();
}

void log_duties::track(partition& p, const std::map<std::string, std::string>& overrides) {
    auto [it, fresh] = _states.try_emplace(p.id);
    auto& st = it->second;
    SLUICE_ASSERT(fresh || st.part == &p, "{}-{} tracked for two partition objects", p.id.topic, p.id.partition);
    if (fresh) {
        st.part = &p;
        st.flushed_offset = p.log->recovery_point();
        st.last_flush_ms = wall_ms();
        st.generation = _next_generation++;
    } else if (st.overrides == overrides) {
        return;
    }
    st.overrides = overrides;
    st.settings = configs::make_partition_settings(overrides, _shard.srv().config().raw);
    if (!fresh) log::info("duties", "{}-{}: topic configs changed; applying", p.id.topic, p.id.partition);
    p.log->set_config(st.settings.log);
}

void log_duties::forget(const topic_partition& tp) { _states.erase(tp); }

int64_t log_duties::recovery_point(const partition& p) const {
    int64_t rp = p.log->recovery_point();
    auto it = _states.find(p.id);
    if (it != _states.end()) rp = std::max(rp, std::min(it->second.flushed_offset, p.log->log_end_offset()));
    return rp;
}

const configs::partition_settings* log_duties::settings(const topic_partition& tp) const {
    auto it = _states.find(tp);
    return it == _states.end() ? nullptr : &it->second.settings;
}

// ---- retention -------------------------------------------------------------------------

void log_duties::arm_retention() {
    int64_t interval = configs::broker_long(_shard.srv().config().raw, "log.retention.check.interval.ms", 300000);
    _shard.reactor().add_timer(std::chrono::milliseconds(std::max<int64_t>(interval, 1)), [this] {
        run_retention();
        arm_retention();
    });
}

void log_duties::run_retention() {
    std::vector<topic_partition> todo;
    todo.reserve(_states.size());
    for (const auto& [tp, st] : _states) todo.push_back(tp);
    retention_slice(std::move(todo), 0);
}

// Kafka dates a segment without timestamps (emptied by compaction) by its file's last
// modification; partition_log::enforce_retention stops at such a segment (its max
// timestamp is -1), so with compact,delete the emptied front of a log would never age
// out. Until storage handles it, drop those segments here by the same time rule.
// Returns how many it dropped.
namespace {
int drop_expired_empty_front(storage::partition_log& log, int64_t now_ms) {
    const auto& cfg = log.config();
    if (!cfg.deletes() || cfg.retention_ms < 0) return 0;
    const auto& segs = log.segments();
    size_t drop = 0;
    while (drop + 1 < segs.size() && segs[drop]->empty() && segs[drop + 1]->base_offset() <= log.high_watermark() &&
           now_ms - segs[drop]->created_ms() > cfg.retention_ms)
        ++drop;
    if (drop == 0) return 0;
    if (auto ec = log.advance_log_start(segs[drop]->base_offset(), now_ms)) return 0;
    return static_cast<int>(drop);
}
}  // namespace

// A bounded number of partitions per reactor turn; the rest continue on a 0 ms timer so
// requests interleave with a long pass.
void log_duties::retention_slice(std::vector<topic_partition> todo, size_t from) {
    const int64_t now = wall_ms();
    size_t end = std::min(todo.size(), from + retention_slice_partitions);
    for (size_t i = from; i < end; ++i) {
        auto st = _states.find(todo[i]);
        if (st == _states.end()) continue;
        auto& log = *st->second.part->log;
        result<int> deleted = log.enforce_retention(now);
        if (int empties = deleted ? drop_expired_empty_front(log, now) : 0; empties > 0) {
            auto more = log.enforce_retention(now);  // what the empty segments held back
            deleted = more ? result<int>(*deleted + empties + *more) : more;
        }
        if (!deleted) {
            log::error("duties", "{}-{}: retention failed: {}", todo[i].topic, todo[i].partition,
                       deleted.error().message());
        } else if (*deleted > 0) {
            log::info("duties", "{}-{}: retention deleted {} segment(s); log start now {}", todo[i].topic,
                      todo[i].partition, *deleted, log.log_start_offset());
        }
    }
    if (end < todo.size())
        _shard.reactor().add_timer(std::chrono::milliseconds(0),
                                   [this, todo = std::move(todo), end]() mutable { retention_slice(std::move(todo), end); });
}

// ---- housekeeping: delayed deletes, flushes, descriptors ------------------------------

void log_duties::arm_housekeeping() {
    _shard.reactor().add_timer(housekeeping_interval, [this] {
        run_housekeeping();
        arm_housekeeping();
    });
}

void log_duties::run_housekeeping() {
    const int64_t now = wall_ms();
    size_t flushes = 0;
    for (auto& [tp, st] : _states) {
        if (st.part->log->pending_deletes() > 0) remove_expired_files(st, now);
        if (flushes < flush_jobs_per_tick && flush_due(st, now)) {
            submit_flush(st, now);
            ++flushes;
        }
    }
    _shard.fds().sweep();
    if (++_housekeeping_ticks % descriptor_report_ticks == 0) report_descriptors();
}

// The descriptor budget at work, once a minute when it had to evict since the last line.
void log_duties::report_descriptors() {
    const auto& fds = _shard.fds();
    if (fds.evictions() == _evictions_reported) return;
    _evictions_reported = fds.evictions();
    log::info("duties", "shard {}: {} open segment descriptors for {} partitions (share {}); {} released in {} evictions so far",
              _shard.id(), fds.open_count(), _shard.partition_count(), fds.share(), fds.released_total(),
              fds.evictions());
}

void log_duties::remove_expired_files(state& st, int64_t now_ms) {
    int removed = st.part->log->delete_expired_files(now_ms);
    if (removed == 0) return;
    _totals.deleted_files_removed += static_cast<uint64_t>(removed);
    log::info("duties", "{}-{}: removed {} deleted segment(s) after file.delete.delay.ms", st.part->id.topic,
              st.part->id.partition, removed);
}

// partition_log::maybe_flush's rule (flush.messages / flush.ms since the last flush),
// evaluated here so the fsync itself can run on the background thread.
bool log_duties::flush_due(const state& st, int64_t now_ms) const {
    if (st.flush_in_flight) return false;
    const auto& log = *st.part->log;
    int64_t unflushed = log.log_end_offset() - st.flushed_offset;
    if (unflushed <= 0) return false;
    const auto& cfg = st.settings.log;
    if (unflushed >= cfg.flush_interval_messages) return true;
    if (now_ms - st.last_flush_ms >= cfg.flush_interval_ms) return true;
    // A segment rolled with unflushed data in it (Kafka flushes rolled segments too).
    const auto& segs = log.segments();
    return segs.size() > 1 && segs[segs.size() - 2]->next_offset() > st.flushed_offset;
}

void log_duties::submit_flush(state& st, int64_t now_ms) {
    const auto& log = *st.part->log;
    int64_t target = log.log_end_offset();
    std::vector<std::shared_ptr<storage::segment>> segs;
    for (const auto& s : log.segments())
        if (s->next_offset() > st.flushed_offset) segs.push_back(s);
    // Sync the directory too: segment files created since the last flush must survive.
    std::string dir = log.dir().string();
    st.flush_in_flight = true;
    st.last_flush_ms = now_ms;
    shard* sh = &_shard;
    topic_partition tp = st.part->id;
    uint64_t gen = st.generation;
    auto report = [sh, tp, gen, target](bool ok) {
        sh->post([sh, tp, gen, target, ok] { sh->duties().flush_done(tp, gen, target, ok); });
    };
    bool queued = _shard.srv().background().submit(
        [segs = std::move(segs), dir, report, tp] {
            bool ok = true;
            for (const auto& s : segs) ok = sync_segment(*s) && ok;
            int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
            if (dfd < 0 || ::fsync(dfd) != 0) ok = false;
            if (dfd >= 0) ::close(dfd);
            if (!ok) log::warn("duties", "{}-{}: background flush failed: {}", tp.topic, tp.partition, std::strerror(errno));
            report(ok);
        },
        [report] { report(false); });
    if (!queued) st.flush_in_flight = false;
}

void log_duties::flush_done(const topic_partition& tp, uint64_t generation, int64_t target, bool ok) {
    auto it = _states.find(tp);
    if (it == _states.end() || it->second.generation != generation) return;  // re-opened meanwhile
    auto& st = it->second;
    st.flush_in_flight = false;
    if (ok) st.flushed_offset = std::max(st.flushed_offset, target);
}

// ---- compaction ------------------------------------------------------------------------

void log_duties::arm_cleaner() {
    int64_t backoff = configs::broker_long(_shard.srv().config().raw, "log.cleaner.backoff.ms", 15000);
    _shard.reactor().add_timer(std::chrono::milliseconds(std::max<int64_t>(backoff, 10)), [this] {
        run_cleaner_check();
        arm_cleaner();
    });
}

// Cheap when nothing is due: prepare_cleaning answers from segment sizes and the
// cleaner checkpoint, and only compacted partitions are asked.
void log_duties::run_cleaner_check() {
    if (_shard.srv().cleaner() == nullptr) return;
    const int64_t now = wall_ms();
    size_t submitted = 0;
    for (auto& [tp, st] : _states) {
        if (submitted == clean_tasks_per_tick) break;
        if (!st.settings.log.compacted()) continue;
        auto task = st.part->log->prepare_cleaning(now);
        if (!task) continue;
        submit_cleaning(st, std::move(*task));
        ++submitted;
    }
}

void log_duties::submit_cleaning(state& st, storage::clean_task task) {
    shard* sh = &_shard;
    topic_partition tp = st.part->id;
    uint64_t gen = st.generation;
    // Runs on the cleaner thread: only post from there.
    _shard.srv().cleaner()->submit(std::move(task), [sh, tp, gen](result<storage::clean_result> r) {
        auto boxed = std::make_shared<result<storage::clean_result>>(std::move(r));
        sh->post([sh, tp, gen, boxed] { sh->duties().cleaning_done(tp, gen, std::move(*boxed)); });
    });
}

void log_duties::cleaning_done(const topic_partition& tp, uint64_t generation, result<storage::clean_result> r) {
    auto it = _states.find(tp);
    if (it == _states.end() || it->second.generation != generation) {
        // Deleted or re-opened while the cleaner worked: its files are not ours to install.
        if (r) storage::discard_cleaned(*r);
        return;
    }
    auto& log = *it->second.part->log;
    if (!r) {
        log.abort_cleaning();
        ++_totals.cleanings_failed;
        if (r.error() != std::errc::operation_canceled)
            log::warn("duties", "{}-{}: compaction failed: {}", tp.topic, tp.partition, r.error().message());
        return;
    }
    const auto& stats = r->stats;
    if (auto ec = log.install_cleaned(*r)) {
        ++_totals.cleanings_failed;
        log::error("duties", "{}-{}: installing compacted segments failed: {}", tp.topic, tp.partition, ec.message());
        return;
    }
    ++_totals.cleanings_installed;
    _totals.records_compacted_away += stats.records_removed;
    log::info("duties",
              "{}-{}: cleaned up to offset {}: {} record(s) removed ({} tombstones, {} whole batches), {} keys, "
              "{} segment(s) rewritten, {} -> {} bytes",
              tp.topic, tp.partition, r->end_offset, stats.records_removed, stats.tombstones_removed,
              stats.batches_removed, stats.keys, r->segments.size(), stats.bytes_before, stats.bytes_after);
}

}  // namespace sluice::broker
