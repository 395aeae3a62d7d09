#include "broker/server.h"
#include "storage/tail_cache.h"

#include "base/log.h"
#include "broker/configs/config_table.h"
#include "broker/replication/replica_fetcher.h"
#include "broker/session.h"
#include "net/connection.h"
#include "storage/log_dir.h"

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <future>
#include <optional>

namespace sluice::broker {
namespace {

net::send_strategy parse_strategy(const std::string& s) {
    if (s == "splice") return net::send_strategy::splice;
    if (s == "buffered") return net::send_strategy::buffered;
    return net::send_strategy::mmap_copy;
}

coord::zk_config zk_config_from(const broker_config& c) {
    coord::zk_config z;
    z.connect = c.zookeeper_connect;
    z.session_timeout_ms = c.zookeeper_session_timeout_ms;
    z.connection_timeout_ms = c.zookeeper_connection_timeout_ms;
    z.broker_id = c.broker_id;
    z.rack = c.rack;
    for (const auto& l : c.advertised_listeners)
        z.advertised.push_back({l.name, l.security_protocol, l.host, l.port});
    return z;
}

}  // namespace

server::server(broker_config cfg) : _config(std::move(cfg)) {
    using namespace std::chrono;
    // Producer ids: start second and broker id in the high bits, a counter below, so
    // ids are unique across brokers and restarts without a ZooKeeper round trip.
    int64_t start_s = duration_cast<seconds>(system_clock::now().time_since_epoch()).count() & 0x7fffffff;
    _producer_id_base = ((start_s << 8) | (_config.broker_id & 0xff)) << 20;
}

server::~server() = default;

int64_t server::next_producer_id() { return _producer_id_base + _producer_id_next.fetch_add(1); }

unsigned server::shard_of(std::string_view topic, int32_t partition) const {
    // The topic's hash picks the shard of partition 0 and the partitions follow round-robin,
    // so any topic's partitions spread evenly over any number of shards (a hash of
    // topic+partition leaves some shards with several and others with none), and the
    // hash spreads many single-partition topics. FNV-1a: stable across runs and builds
    // (std::hash need not be). Only this process uses the mapping: nothing on disk or on
    // the wire depends on it, so a different reactor.threads after a restart is fine.
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : topic) h = (h ^ c) * 1099511628211ull;
    return static_cast<unsigned>((h + static_cast<uint32_t>(partition)) % _shards.size());
}

bool server::mark_topic_creating(const std::string& name) {
    std::lock_guard g(_creating_mutex);
    return _creating.insert(name).second;
}

void server::unmark_topic_creating(const std::string& name) {
    std::lock_guard g(_creating_mutex);
    _creating.erase(name);
}

storage::log_config server::log_config_for(const coord::topic_info* topic) const {
    // One derivation for every partition setting: topic override, else
    // server.properties, else Kafka's default (broker/configs/config_table.h).
    static const std::map<std::string, std::string> none;
    return configs::make_partition_settings(topic != nullptr ? topic->configs : none, _config.raw).log;
}

storage::open_options server::open_options_for(const std::string& dir, const topic_partition& tp) const {
    storage::open_options o;
    auto it = _log_dirs.find(dir);
    if (it == _log_dirs.end()) return o;
    o.clean_shutdown = it->second.clean;
    if (auto rp = it->second.recovery_points.find(tp); rp != it->second.recovery_points.end())
        o.recovery_point = rp->second;
    if (auto ls = it->second.log_starts.find(tp); ls != it->second.log_starts.end())
        o.log_start_offset = ls->second;
    if (auto cl = it->second.cleaner_offsets.find(tp); cl != it->second.cleaner_offsets.end())
        o.cleaner_checkpoint = cl->second;
    if (auto hw = it->second.high_watermarks.find(tp); hw != it->second.high_watermarks.end())
        o.high_watermark = hw->second;
    o.now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    return o;
}

void server::size_fd_budget() {
    // Kafka's scripts recommend a high `ulimit -n`; take whatever the hard limit allows.
    struct rlimit lim {};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0) {
        rlim_t soft_before = lim.rlim_cur;
        if (lim.rlim_cur < lim.rlim_max) {
            lim.rlim_cur = lim.rlim_max;
            if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
                log::warn("server", "cannot raise RLIMIT_NOFILE to {}: {}", lim.rlim_max, std::strerror(errno));
                lim.rlim_cur = soft_before;
            }
        }
        log::info("server", "open file limit: soft {} (was {}), hard {}", lim.rlim_cur, soft_before, lim.rlim_max);
    } else {
        lim.rlim_cur = 1024;
    }
    // Half of the soft limit for segment descriptors leaves the rest for sockets,
    // index files opened briefly, checkpoints and the cleaner.
    int64_t configured = configs::broker_long(_config.raw, "log.max.open.files", 0);
    uint64_t soft = lim.rlim_cur == RLIM_INFINITY ? (1u << 20) : static_cast<uint64_t>(lim.rlim_cur);
    uint64_t total = configured > 0 ? static_cast<uint64_t>(configured) : std::max<uint64_t>(soft / 2, 16);
    unsigned shards = static_cast<unsigned>(std::max(1, _config.reactor_threads));
    _fd_share = static_cast<size_t>(std::max<uint64_t>(total / shards, 4));
    log::info("server", "segment descriptor budget: {} ({}), {} per shard", total,
              configured > 0 ? "log.max.open.files" : "half the soft limit", _fd_share);
}

bool server::prepare_log_dirs() {
    for (const auto& d : _config.log_dirs) {
        std::error_code ec;
        std::filesystem::create_directories(d, ec);
        if (ec || ::access(d.c_str(), W_OK) != 0) {
            log::error("server", "log dir {} is not writable: {}", d, ec ? ec.message() : std::strerror(errno));
            return false;
        }
        log_dir_state st;
        auto clean = storage::consume_clean_shutdown_marker(d);
        st.clean = clean && *clean;
        auto rp = storage::read_offset_checkpoint(std::filesystem::path(d) / storage::recovery_point_checkpoint_file);
        if (rp)
            for (auto& e : *rp) st.recovery_points[e.tp] = e.offset;
        auto ls = storage::read_offset_checkpoint(std::filesystem::path(d) / storage::log_start_checkpoint_file);
        if (ls)
            for (auto& e : *ls) st.log_starts[e.tp] = e.offset;
        auto cl = storage::read_offset_checkpoint(std::filesystem::path(d) / storage::cleaner_checkpoint_file);
        if (cl)
            for (auto& e : *cl) st.cleaner_offsets[e.tp] = e.offset;
        else
            log::warn("server", "log dir {}: unreadable {} ({}); compaction rescans from the log start", d,
                      storage::cleaner_checkpoint_file, cl.error().message());
        // A partition without an entry (first start, file lost) starts with its high
        // watermark at its log end, as a lone replica's is.
        auto hw = storage::read_offset_checkpoint(std::filesystem::path(d) / storage::replication_checkpoint_file);
        if (hw)
            for (auto& e : *hw) st.high_watermarks[e.tp] = e.offset;
        else
            log::warn("server", "log dir {}: unreadable {} ({}); high watermarks start at the log ends", d,
                      storage::replication_checkpoint_file, hw.error().message());
        log::info("server", "log dir {}: {} shutdown last time", d, st.clean ? "clean" : "unclean (or first start)");
        _log_dirs[d] = std::move(st);
    }
    return true;
}

void server::publish_snapshot(std::shared_ptr<const coord::cluster_snapshot> snap) {
    for (auto& s : _shards) {
        shard* sh = s.get();
        // Each shard gets its own control block (whose deleter holds the shared one): request
        // handlers copy the shard's snapshot pointer, and with one control block for all
        // shards every copy would bounce its reference count between cores.
        std::shared_ptr<const coord::cluster_snapshot> local(snap.get(), [keep = snap](const coord::cluster_snapshot*) {});
        sh->post([sh, local = std::move(local)]() mutable { sh->apply_snapshot(std::move(local)); });
    }
    // After the shards: work the fetcher posts for this snapshot reaches each shard
    // behind the snapshot itself (a shard's queue is FIFO).
    if (_fetcher) _fetcher->update(std::move(snap));
}

bool server::start_shards() {
    unsigned n = static_cast<unsigned>(std::max(1, _config.reactor_threads));
    std::vector<net::reactor*> members;
    for (unsigned i = 0; i < n; ++i) {
        net::reactor_config rc;
        rc.shard_id = i;
        rc.shard_count = n;
        rc.file_send = parse_strategy(_config.fetch_send_strategy);
        rc.max_frame_bytes = static_cast<size_t>(_config.socket_request_max_bytes);
        rc.direct_recv_min_bytes = static_cast<size_t>(_config.socket_receive_direct_min_bytes);
        auto r = net::reactor::create(rc);
        if (!r) {
            log::error("server", "cannot start reactor {}: {}", i, r.error().message());
            return false;
        }
        _shards.push_back(std::make_unique<shard>(*this, i, std::move(r).value()));
        members.push_back(&_shards.back()->reactor());
    }
    // Accepted connections go to the shard with the fewest (net::reactor_group).
    _reactors = std::make_unique<net::reactor_group>(std::move(members));
    for (auto& s : _shards) s->reactor().join(*_reactors);
    if (!listen_all()) return false;
    for (auto& s : _shards) {
        shard* sh = s.get();
        _threads.emplace_back([sh]() { sh->reactor().run(); });
        // "sluice-shard0": per-thread CPU in top -H, perf and /proc/PID/task/*/comm.
        auto name = fmt::format("sluice-shard{}", sh->id());
        ::pthread_setname_np(_threads.back().native_handle(), name.substr(0, 15).c_str());
    }
    if (stats_interval_ms() > 0)
        for (auto& s : _shards) {
            shard* sh = s.get();
            sh->post([this, sh] { arm_stats_timer(*sh); });
        }
    return true;
}

bool server::listen_all() {
    // Before the reactors run, from this thread (a reactor is owned by whoever runs it, or
    // by anyone before it runs), in the same order on every shard: a socket handed from
    // one shard to another is served by the listener in the same position. Shard 0 binds
    // first, so a configured port 0 becomes one kernel-chosen port that every shard shares.
    for (size_t li = 0; li < _config.listeners.size(); ++li) {
        const auto& l = _config.listeners[li];
        uint16_t port = l.port;
        for (auto& s : _shards) {
            shard* sh = s.get();
            std::string name = l.name;
            auto bound = sh->reactor().listen(l.host, port, [sh, name](std::shared_ptr<net::connection> c) {
                session::start(*sh, std::move(c), name);
            }, l.tls);  // nullptr: PLAINTEXT; SSL listeners share one context across shards
            if (!bound) {
                log::error("server", "cannot listen on {}:{} ({}): {}", l.host.empty() ? "0.0.0.0" : l.host,
                           port, l.name, bound.error().message());
                return false;
            }
            port = static_cast<uint16_t>(*bound);
        }
    }
    return true;
}

int64_t server::stats_interval_ms() const {
    // reactor.stats.interval.ms: 0 (the default) logs the per-shard line only at shutdown.
    return std::max<int64_t>(0, configs::broker_long(_config.raw, "reactor.stats.interval.ms", 0));
}

void server::log_shard_stats(shard& sh, std::string_view when) {
    auto st = sh.reactor().stats();
    log::info("server",
              "shard {} {}: {} connections open ({} accepted here, {} handed to other shards, {} taken from them), "
              "{} partitions, {} hand-offs of request work to other shards, {} stalls, {} SQ full, {} CQ overflow, "
              "{} large frames received in place ({} bytes); request service time {}",
              sh.id(), when, st.connections_open, st.connections_accepted, st.connections_handed_off,
              st.connections_adopted, sh.partition_count(), sh.invokes_sent(), st.stalls, st.sq_full,
              st.cq_overflow, st.recv_direct, st.bytes_recv_direct, sh.service_summary());
}

void server::arm_stats_timer(shard& sh) {
    sh.reactor().add_timer(std::chrono::milliseconds(stats_interval_ms()), [this, &sh] {
        log_shard_stats(sh, "now");
        arm_stats_timer(sh);
    });
}

void server::stop_shards() {
    for (auto& s : _shards) s->reactor().stop();
    for (auto& t : _threads)
        if (t.joinable()) t.join();
    bool ran = !_threads.empty();
    _threads.clear();
    if (ran)
        for (auto& s : _shards) log_shard_stats(*s, "at shutdown");
}

namespace {

// The entries of one checkpoint file of log dir `dir`: the partitions open there now
// (offset_of returns nullopt for a partition the file leaves out), then the startup
// entries of partitions not open this run, so a partition whose log failed to open or
// that this run has not opened yet keeps its entry.
template <typename OffsetOf>
std::vector<storage::checkpoint_entry> checkpoint_entries(const std::vector<shard::partition_offsets>& all,
                                                          const std::string& dir, OffsetOf offset_of,
                                                          const std::map<topic_partition, int64_t>* previous) {
    std::vector<storage::checkpoint_entry> out;
    std::set<topic_partition> open_here;
    for (const auto& p : all) {
        if (std::filesystem::path(p.log_dir) != std::filesystem::path(dir)) continue;
        open_here.insert(p.tp);
        if (std::optional<int64_t> off = offset_of(p)) out.push_back({p.tp, *off});
    }
    if (previous != nullptr)
        for (const auto& [tp, off] : *previous)
            if (!open_here.count(tp)) out.push_back({tp, off});
    return out;
}

}  // namespace

int64_t server::checkpoint_interval_ms(checkpoint_kind kind) const {
    if (kind == checkpoint_kind::high_watermarks)
        return std::max<int64_t>(
            configs::broker_long(_config.raw, "replica.high.watermark.checkpoint.interval.ms", 5000), 100);
    int64_t rp_ms = configs::broker_long(_config.raw, "log.flush.offset.checkpoint.interval.ms", 60000);
    int64_t ls_ms = configs::broker_long(_config.raw, "log.flush.start.offset.checkpoint.interval.ms", 60000);
    return std::max<int64_t>(std::min(rp_ms, ls_ms), 100);
}

std::set<std::string> server::write_checkpoints(checkpoint_kind kind,
                                                const std::vector<shard::partition_offsets>& all) const {
    std::set<std::string> written;
    for (const auto& d : _config.log_dirs) {
        auto st = _log_dirs.find(d);
        const log_dir_state* previous = st == _log_dirs.end() ? nullptr : &st->second;
        std::error_code first_error;
        // kept: the startup entries (log_dir_state) of the partitions not open this run.
        auto write = [&](std::string_view name, auto offset_of,
                         std::map<topic_partition, int64_t> log_dir_state::*kept) {
            auto entries = checkpoint_entries(all, d, offset_of, previous != nullptr ? &(previous->*kept) : nullptr);
            auto ec = storage::write_offset_checkpoint(std::filesystem::path(d) / name, entries);
            if (ec && !first_error) first_error = ec;
        };
        using offsets = shard::partition_offsets;
        if (kind == checkpoint_kind::high_watermarks) {
            write(storage::replication_checkpoint_file,
                  [](const offsets& p) -> std::optional<int64_t> { return p.high_watermark; },
                  &log_dir_state::high_watermarks);
        } else {
            write(storage::recovery_point_checkpoint_file,
                  [](const offsets& p) -> std::optional<int64_t> { return p.recovery_point; },
                  &log_dir_state::recovery_points);
            write(storage::log_start_checkpoint_file,
                  [](const offsets& p) -> std::optional<int64_t> { return p.log_start; }, &log_dir_state::log_starts);
            // Only compacted partitions have a cleaner checkpoint.
            write(storage::cleaner_checkpoint_file,
                  [](const offsets& p) -> std::optional<int64_t> {
                      if (p.cleaner_checkpoint < 0) return std::nullopt;
                      return p.cleaner_checkpoint;
                  },
                  &log_dir_state::cleaner_offsets);
        }
        if (first_error) {
            log::error("server", "log dir {}: cannot write checkpoints: {}", d, first_error.message());
            continue;
        }
        written.insert(d);
    }
    return written;
}

void server::write_checkpoints_and_marker() {
    // Seal every log, then one syncfs per log dir instead of an fsync per file: with
    // thousands of partitions serial fsyncs take longer than a shutdown may.
    for (auto& s : _shards) s->close_all();
    std::vector<std::filesystem::path> synced;
    for (const auto& d : _config.log_dirs) {
        if (auto ec = storage::sync_log_dir(d))
            log::error("server", "log dir {}: cannot make it durable: {}", d, ec.message());
        else
            synced.emplace_back(d);
    }
    std::vector<shard::partition_offsets> all;
    for (auto& s : _shards) {
        s->mark_synced(synced);
        s->collect_offsets(all);
    }
    auto written = write_checkpoints(checkpoint_kind::log_offsets, all);
    auto hw_written = write_checkpoints(checkpoint_kind::high_watermarks, all);
    for (const auto& d : _config.log_dirs) {
        bool ok = written.count(d) > 0 && hw_written.count(d) > 0 &&
                  std::find(synced.begin(), synced.end(), std::filesystem::path(d)) != synced.end();
        for (const auto& p : all)
            if (std::filesystem::path(p.log_dir) == std::filesystem::path(d)) ok = ok && !p.close_failed;
        if (!ok) {
            log::error("server", "log dir {}: checkpoints not written cleanly; next start recovers", d);
            continue;
        }
        if (auto ec = storage::write_clean_shutdown_marker(d))
            log::error("server", "log dir {}: cannot write clean-shutdown marker: {}", d, ec.message());
    }
}

void server::arm_checkpoint_timer(checkpoint_kind kind) {
    _shards[0]->reactor().add_timer(std::chrono::milliseconds(checkpoint_interval_ms(kind)), [this, kind] {
        checkpoint_now(kind);
        arm_checkpoint_timer(kind);
    });
}

void server::checkpoint_now(checkpoint_kind kind) {
    struct gather {
        std::vector<shard::partition_offsets> all;
        size_t pending = 0;
    };
    auto g = std::make_shared<gather>();
    g->pending = _shards.size();
    for (unsigned i = 0; i < _shards.size(); ++i) {
        invoke_on(
            0, i,
            [](shard& sh) {
                std::vector<shard::partition_offsets> out;
                sh.collect_live_offsets(out);
                return out;
            },
            [this, g, kind](std::vector<shard::partition_offsets> part) {
                g->all.insert(g->all.end(), part.begin(), part.end());
                if (--g->pending > 0) return;
                _background.submit([this, g, kind] { write_checkpoints(kind, g->all); });
            });
    }
}

int server::run() {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    // Blocked here, so every thread started below inherits the mask and only sigwait
    // in this thread sees them.
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    log::info("server", "starting broker {} ({} reactor threads, fetch send strategy {}, log append strategy {})",
              _config.broker_id, _config.reactor_threads, _config.fetch_send_strategy, _config.log_append_strategy);
    if (_config.log_append_strategy == "direct") {
        int64_t per_thread = int64_t{64} << 20;
        storage::tail_pool::instance().set_budget(static_cast<uint64_t>(
            _config.log_append_direct_cache_bytes >= 0 ? _config.log_append_direct_cache_bytes
                                                       : per_thread * std::max(1, _config.reactor_threads)));
    }
    if (!prepare_log_dirs()) return 1;
    size_fd_budget();
    _coordinator = std::make_unique<coord::coordinator>(
        zk_config_from(_config), [this](std::shared_ptr<const coord::cluster_snapshot> snap) {
            if (_serving.load()) publish_snapshot(std::move(snap));
        });
    if (auto err = _coordinator->start()) {
        log::error("server", "fatal: {}", *err);
        return 1;
    }
    auto snap = _coordinator->snapshot();
    for (const auto& d : _config.log_dirs) {
        auto meta = storage::ensure_meta_properties(d, _config.broker_id, snap->cluster_id);
        if (!meta) {
            log::error("server", "fatal: log dir {}: {}", d, meta.error().message());
            _coordinator->stop();
            return 1;
        }
    }
    if (!start_shards()) {
        stop_shards();
        _coordinator->stop();
        return 1;
    }
    if (configs::broker_bool(_config.raw, "log.cleaner.enable", true)) {
        _cleaner = std::make_unique<storage::log_cleaner>();
        log::info("server", "log cleaner started (1 thread; log.cleaner.threads={} accepted)",
                  configs::broker_long(_config.raw, "log.cleaner.threads", 1));
    } else {
        log::info("server", "log.cleaner.enable=false: compacted topics are not cleaned");
    }
    _fetcher = std::make_unique<replication::replica_fetcher>(*this);
    _serving.store(true);
    publish_snapshot(_coordinator->snapshot());
    _fetcher->start();
    _background.start();
    if (_config.log_append_strategy == "direct")
        _background.submit([] { storage::tail_pool::instance().prefill(); });
    for (auto& s : _shards) {
        shard* sh = s.get();
        sh->post([sh] { sh->start_duties(); });
    }
    _shards[0]->post([this] {
        arm_checkpoint_timer(checkpoint_kind::log_offsets);
        arm_checkpoint_timer(checkpoint_kind::high_watermarks);
    });
    for (const auto& l : _config.advertised_listeners)
        log::info("server", "broker {} serving {} at {}:{} (cluster {})", _config.broker_id, l.name, l.host, l.port,
                  snap->cluster_id);

    int sig = 0;
    sigwait(&signals, &sig);
    log::info("server", "{} received: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    _serving.store(false);
    _fetcher->stop();  // first: it appends to logs through the shards
    if (_cleaner) _cleaner->stop();  // likewise: cancels the running task, results post to the shards
    _background.stop();  // before the shards: its jobs report back to them
    stop_shards();
    write_checkpoints_and_marker();
    _coordinator->stop();
    log::info("server", "shutdown complete");
    return 0;
}

}  // namespace sluice::broker
