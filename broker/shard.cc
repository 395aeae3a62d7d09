#include "base/clock.h"
#include "broker/shard.h"

#include "base/log.h"
#include "broker/groups/group_manager.h"
#include "broker/maintenance/fd_budget.h"
#include "broker/maintenance/log_duties.h"
#include "broker/replication/leader.h"
#include "broker/configs/config_table.h"
#include "broker/server.h"
#include "storage/log_dir.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <system_error>

namespace sluice::broker {

shard::shard(server& srv, unsigned id, std::unique_ptr<net::reactor> r)
    : _srv(srv), _id(id), _reactor(std::move(r)), _metadata(std::make_shared<coord::cluster_snapshot>()),
      _groups(std::make_shared<groups::group_manager>(*this)), _duties(std::make_shared<log_duties>(*this)),
      _fds(std::make_shared<fd_budget>(_srv.fd_share(), [this](const std::function<void(partition&)>& fn) {
          for (auto& [tp, p] : _partitions) fn(*p);
      })) {}

void shard::start_duties() {
    _duties->start();
    arm_isr_expiry();
}

// Kafka's isr-expiration task: every replica.lag.time.max.ms / 2, leaders drop followers
// that have not caught up for replica.lag.time.max.ms.
void shard::arm_isr_expiry() {
    const int64_t lag_ms = configs::broker_long(_srv.config().raw, "replica.lag.time.max.ms", 30000);
    _reactor->add_timer(std::chrono::milliseconds(std::max<int64_t>(lag_ms / 2, 10)), [this, lag_ms] {
        const int64_t now = wall_ms();
        for (auto& [tp, p] : _partitions)
            if (p->leader.leading) replication::expire_lagging(*this, *p, now, lag_ms);
        arm_isr_expiry();
    });
}

void shard::note_use(partition& p) { _fds->note_use(p); }

partition* shard::find(const topic_partition& tp) {
    auto it = _partitions.find(tp);
    return it == _partitions.end() ? nullptr : it->second.get();
}

std::string shard::dir_for(const topic_partition& tp) const {
    const auto& dirs = _srv.config().log_dirs;
    std::string name = storage::partition_dir_name(tp);
    for (const auto& d : dirs) {
        std::error_code ec;
        if (std::filesystem::exists(std::filesystem::path(d) / name, ec)) return d;
    }
    return dirs[topic_partition_hash{}(tp) % dirs.size()];
}

partition* shard::open_partition(const topic_partition& tp, const coord::topic_info* topic) {
    std::string dir = dir_for(tp);
    auto opts = _srv.open_options_for(dir, tp);
    auto log = storage::partition_log::open(std::filesystem::path(dir) / storage::partition_dir_name(tp),
                                            _srv.log_config_for(topic), opts);
    if (!log) {
        // A broken partition is reported and left offline; the others keep serving.
        log::error("shard", "cannot open log of {}-{} in {}: {}", tp.topic, tp.partition, dir, log.error().message());
        return nullptr;
    }
    auto p = std::make_unique<partition>();
    p->id = tp;
    p->log = std::move(log).value();
    if (!opts.high_watermark) p->log->set_high_watermark(p->log->log_end_offset());
    auto* raw = p.get();
    _partitions.emplace(tp, std::move(p));
    _duties->track(*raw, topic != nullptr ? topic->configs : std::map<std::string, std::string>{});
    // Opening leaves the active segment's descriptor open: count it (and evict others
    // when many partitions open at once, e.g. at startup).
    _fds->note_use(*raw);
    return raw;
}

void shard::apply_snapshot(std::shared_ptr<const coord::cluster_snapshot> snap) {
    const int32_t me = _srv.config().broker_id;
    const int64_t now = wall_ms();
    // Partitions of topics that were deleted (or deleted and re-created: new topic id).
    for (auto it = _partitions.begin(); it != _partitions.end();) {
        auto t = snap->topics.find(it->first.topic);
        bool gone = t == snap->topics.end() || t->second->topic_id != it->second->topic_id ||
                    !t->second->assignment.count(it->first.partition);
        if (!gone) {
            ++it;
            continue;
        }
        auto path = it->second->log->dir();
        _duties->forget(it->first);
        _fds->forget(*it->second);
        it->second->log->close();
        it = _partitions.erase(it);
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
        log::info("shard", "deleted log {}{}", path.string(), ec ? " (failed: " + ec.message() + ")" : "");
    }
    for (const auto& [name, t] : snap->topics) {
        if (t->marked_for_deletion) continue;
        for (const auto& [index, replicas] : t->assignment) {
            if (std::find(replicas.begin(), replicas.end(), me) == replicas.end()) continue;
            if (_srv.shard_of(name, index) != _id) continue;
            topic_partition tp{name, index};
            partition* p = find(tp);
            if (p == nullptr) p = open_partition(tp, t.get());
            if (p == nullptr) continue;
            p->topic_id = t->topic_id;
            _duties->track(*p, t->configs);  // live config changes reach the log here
            auto st = t->partitions.find(index);
            if (st != t->partitions.end()) p->leader_epoch = st->second.leader_epoch;
            replication::on_snapshot(*this, *p, replicas, st != t->partitions.end() ? &st->second : nullptr, now);
        }
    }
    _metadata = std::move(snap);
    _groups->on_snapshot();  // load/unload __consumer_offsets partitions this shard now leads
}

void shard::close_all() {
    for (auto& [tp, p] : _partitions) {
        auto& log = *p->log;
        p->log_start = log.log_start_offset();
        p->cleaner_checkpoint = log.config().compacted() ? log.cleaner_checkpoint() : -1;
        p->recovery_point = _duties->recovery_point(*p);
        if (auto ec = log.close(storage::close_mode::seal)) {
            log::error("shard", "close of {}-{} failed: {}", tp.topic, tp.partition, ec.message());
            p->close_failed = true;
        }
        // Thousands of partitions must not hold a descriptor each while closing.
        log.release_idle_fds();
    }
}

void shard::mark_synced(const std::vector<std::filesystem::path>& synced_dirs) {
    for (auto& [tp, p] : _partitions) {
        auto& log = *p->log;
        if (std::find(synced_dirs.begin(), synced_dirs.end(), log.dir().parent_path()) == synced_dirs.end()) continue;
        log.synced();
        p->recovery_point = log.recovery_point();
    }
}

void shard::collect_live_offsets(std::vector<partition_offsets>& out) const {
    for (const auto& [tp, p] : _partitions)
        out.push_back({tp, p->log->dir().parent_path().string(), p->log->log_start_offset(),
                       _duties->recovery_point(*p),
                       p->log->config().compacted() ? p->log->cleaner_checkpoint() : -1, p->log->high_watermark(),
                       false});
}

void shard::collect_offsets(std::vector<partition_offsets>& out) const {
    // A closed log still reports its high watermark (nothing moves it once the fetcher
    // and the request path have stopped).
    for (const auto& [tp, p] : _partitions)
        out.push_back({tp, p->log->dir().parent_path().string(), p->log_start, p->recovery_point,
                       p->cleaner_checkpoint, p->log->high_watermark(), p->close_failed});
}

void shard::note_service(std::chrono::microseconds t) {
    int64_t us = std::max<int64_t>(t.count(), 0);
    size_t b = us == 0 ? 0 : std::min<size_t>(_service_buckets.size() - 1, 64 - __builtin_clzll(static_cast<uint64_t>(us)));
    ++_service_buckets[b];
    ++_service_count;
    _service_max_us = std::max(_service_max_us, us);
}

std::string shard::service_summary() const {
    if (_service_count == 0) return "no requests";
    auto bound = [&](double q) -> uint64_t {
        uint64_t want = static_cast<uint64_t>(q * static_cast<double>(_service_count));
        uint64_t seen = 0;
        for (size_t b = 0; b < _service_buckets.size(); ++b) {
            seen += _service_buckets[b];
            if (seen > want || seen == _service_count) return b == 0 ? 1 : uint64_t{1} << b;
        }
        return uint64_t{1} << (_service_buckets.size() - 1);
    };
    return fmt::format("p50 <= {} us, p99 <= {} us, p99.9 <= {} us, max {} us over {} requests", bound(0.5),
                       bound(0.99), bound(0.999), _service_max_us, _service_count);
}

}  // namespace sluice::broker
