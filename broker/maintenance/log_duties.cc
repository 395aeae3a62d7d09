#include "broker/maintenance/log_duties.h"

#include "base/log.h"
#include "broker/maintenance/background_io.h"
#include "broker/server.h"
#include "broker/shard.h"

#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace sluice::broker {
namespace {

constexpr size_t retention_slice_partitions = 32;  // per reactor turn
constexpr size_t flush_jobs_per_tick = 64;
constexpr std::chrono::milliseconds flush_check_interval{1000};

int64_t wall_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

template <typename Log>
constexpr bool has_set_config = requires(Log& l, const storage::log_config& c) { l.set_config(c); };

bool same_retention(const storage::log_config& a, const storage::log_config& b) {
    return a.retention_ms == b.retention_ms && a.retention_bytes == b.retention_bytes;
}

// Retention with settings the log does not hold yet (storage without set_config): the
// same rule as partition_log::enforce_retention, applied through advance_log_start.
result<int> enforce_retention_with(storage::partition_log& log, const storage::log_config& cfg, int64_t now_ms) {
    const auto& segs = log.segments();
    uint64_t total = log.size_bytes();
    size_t drop = 0;
    while (drop + 1 < segs.size() && segs[drop + 1]->base_offset() <= log.high_watermark()) {
        const auto& s = *segs[drop];
        int64_t newest = s.max_timestamp().timestamp;
        bool too_old = cfg.retention_ms >= 0 && newest >= 0 && now_ms - newest > cfg.retention_ms;
        bool too_big = cfg.retention_bytes >= 0 && total - s.size_bytes() >= static_cast<uint64_t>(cfg.retention_bytes);
        if (!too_old && !too_big) break;
        total -= s.size_bytes();
        ++drop;
    }
    if (drop == 0) return 0;
    if (auto ec = log.advance_log_start(segs[drop]->base_offset())) return ec;
    return static_cast<int>(drop);
}

}  // namespace

namespace {
// A template so the call compiles only when storage has the setter.
template <typename Log>
bool apply_log_config_to(Log& log, const storage::log_config& cfg) {
    if constexpr (has_set_config<Log>) {
        log.set_config(cfg);
        return true;
    } else {
        return false;
    }
}
}  // namespace

bool apply_log_config(storage::partition_log& log, const storage::log_config& cfg) {
    return apply_log_config_to(log, cfg);
}

void log_duties::start() {
    if (_started) return;
    _started = true;
    arm_retention();
    arm_flush();
}

void log_duties::track(partition& p, const std::map<std::string, std::string>& overrides) {
    auto [it, fresh] = _states.try_emplace(p.id);
    auto& st = it->second;
    if (fresh) {
        st.flushed_offset = p.log->recovery_point();
        st.last_flush_ms = wall_ms();
        st.generation = _next_generation++;
    } else if (st.overrides == overrides) {
        return;
    }
    st.overrides = overrides;
    st.settings = configs::make_partition_settings(overrides, _shard.srv().config().raw);
    if (!fresh) log::info("duties", "{}-{}: topic configs changed; applying", p.id.topic, p.id.partition);
    apply_log_config(*p.log, st.settings.log);
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

// A bounded number of partitions per reactor turn; the rest continue on a 0 ms timer so
// requests interleave with a long pass.
void log_duties::retention_slice(std::vector<topic_partition> todo, size_t from) {
    const int64_t now = wall_ms();
    size_t end = std::min(todo.size(), from + retention_slice_partitions);
    for (size_t i = from; i < end; ++i) {
        partition* p = _shard.find(todo[i]);
        auto st = _states.find(todo[i]);
        if (p == nullptr || st == _states.end()) continue;
        auto& log = *p->log;
        const auto& want = st->second.settings.log;
        result<int> deleted = same_retention(log.config(), want) ? log.enforce_retention(now)
                                                                 : enforce_retention_with(log, want, now);
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

// ---- flushing --------------------------------------------------------------------------

void log_duties::arm_flush() {
    _shard.reactor().add_timer(flush_check_interval, [this] {
        run_flush_check();
        arm_flush();
    });
}

bool log_duties::flush_due(const partition& p, const state& st, int64_t now_ms) const {
    if (st.flush_in_flight) return false;
    const auto& log = *p.log;
    int64_t unflushed = log.log_end_offset() - st.flushed_offset;
    if (unflushed <= 0) return false;
    const auto& d = st.settings.duties;
    if (unflushed >= d.flush_messages) return true;
    if (d.flush_ms != INT64_MAX && now_ms - st.last_flush_ms >= d.flush_ms) return true;
    // A segment rolled with unflushed data in it (Kafka flushes rolled segments too).
    const auto& segs = log.segments();
    return segs.size() > 1 && segs[segs.size() - 2]->next_offset() > st.flushed_offset;
}

void log_duties::run_flush_check() {
    const int64_t now = wall_ms();
    size_t submitted = 0;
    for (auto& [tp, st] : _states) {
        if (submitted == flush_jobs_per_tick) break;
        partition* p = _shard.find(tp);
        if (p == nullptr || !flush_due(*p, st, now)) continue;
        submit_flush(*p, st, now);
        ++submitted;
    }
}

void log_duties::submit_flush(partition& p, state& st, int64_t now_ms) {
    const auto& log = *p.log;
    int64_t target = log.log_end_offset();
    std::vector<std::shared_ptr<storage::segment>> segs;
    for (const auto& s : log.segments())
        if (s->next_offset() > st.flushed_offset) segs.push_back(s);
    // Sync the directory too: segment files created since the last flush must survive.
    std::string dir = log.dir().string();
    st.flush_in_flight = true;
    st.last_flush_ms = now_ms;
    shard* sh = &_shard;
    topic_partition tp = p.id;
    uint64_t gen = st.generation;
    auto report = [sh, tp, gen, target](bool ok) {
        sh->post([sh, tp, gen, target, ok] { sh->duties().flush_done(tp, gen, target, ok); });
    };
    bool queued = _shard.srv().background().submit(
        [segs = std::move(segs), dir, report, tp] {
            bool ok = true;
            for (const auto& s : segs) {
                int fd = s->fd();
                if (fd < 0 || ::fdatasync(fd) != 0) ok = false;
            }
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

}  // namespace sluice::broker
