#include "coord/coordinator.h"

#include <fmt/format.h>

#include "base/assert.h"
#include "base/log.h"
#include "coord/coordinator_impl.h"
#include "coord/znodes.h"

namespace sluice::coord {
namespace {

constexpr std::string_view sub = "coord";

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

// ---------------------------------------------------------------- public facade

namespace {
void post_create(coordinator::impl* self, coordinator::impl::create_request req, coordinator::admin_fn cb) {
    auto shared_cb = std::make_shared<coordinator::admin_fn>(std::move(cb));
    self->post([self, req = std::move(req), shared_cb] { self->create_topic_now(req, *shared_cb); },
               [shared_cb] { (*shared_cb)(errors::unknown_server_error, "coordinator is stopped"); });
}
}  // namespace

coordinator::coordinator(zk_config cfg, snapshot_fn on_snapshot)
    : _impl(std::make_unique<impl>(std::move(cfg), std::move(on_snapshot))) {}
coordinator::~coordinator() { _impl->stop(); }
std::optional<std::string> coordinator::start() { return _impl->start(); }
void coordinator::stop() { _impl->stop(); }
std::shared_ptr<const cluster_snapshot> coordinator::snapshot() const { return _impl->snapshot(); }
coordinator::session_credentials coordinator::session_for_test() const { return _impl->credentials(); }
bool coordinator::is_controller() const { return _impl->is_controller(); }

void coordinator::create_topic(std::string name, int32_t partitions, int16_t replication_factor,
                               std::map<std::string, std::string> configs, admin_fn cb, bool validate_only) {
    post_create(_impl.get(), {std::move(name), partitions, replication_factor, {}, std::move(configs), validate_only},
                std::move(cb));
}

void coordinator::create_topic(std::string name, std::map<int32_t, std::vector<int32_t>> assignment,
                               std::map<std::string, std::string> configs, admin_fn cb, bool validate_only) {
    post_create(_impl.get(), {std::move(name), 0, 0, std::move(assignment), std::move(configs), validate_only},
                std::move(cb));
}

void coordinator::delete_topic(std::string name, admin_fn cb) {
    auto shared_cb = std::make_shared<admin_fn>(std::move(cb));
    impl* self = _impl.get();
    _impl->post([self, name = std::move(name), shared_cb] { self->delete_topic_now(name, *shared_cb); },
                [shared_cb] { (*shared_cb)(errors::unknown_server_error, "coordinator is stopped"); });
}

void coordinator::add_partitions(std::string name, int32_t total,
                                 std::optional<std::vector<std::vector<int32_t>>> assignments, admin_fn cb,
                                 bool validate_only) {
    auto shared_cb = std::make_shared<admin_fn>(std::move(cb));
    impl* self = _impl.get();
    impl::add_partitions_request req{std::move(name), total, std::move(assignments), validate_only};
    _impl->post([self, req = std::move(req), shared_cb] { self->add_partitions_now(req, *shared_cb); },
                [shared_cb] { (*shared_cb)(errors::unknown_server_error, "coordinator is stopped"); });
}

void coordinator::alter_topic_configs(std::string name, config_edit_fn edit, admin_fn cb, bool validate_only) {
    auto shared_cb = std::make_shared<admin_fn>(std::move(cb));
    impl* self = _impl.get();
    _impl->post(
        [self, name = std::move(name), edit = std::move(edit), shared_cb, validate_only] {
            self->alter_topic_configs_now(name, edit, *shared_cb, validate_only);
        },
        [shared_cb] { (*shared_cb)(errors::unknown_server_error, "coordinator is stopped"); });
}

void coordinator::update_isr(std::string topic, int32_t partition, partition_state next, isr_fn cb) {
    auto shared_cb = std::make_shared<isr_fn>(std::move(cb));
    impl* self = _impl.get();
    _impl->post([self, topic = std::move(topic), partition, next,
                 shared_cb] { (*shared_cb)(self->update_isr_now(topic, partition, next)); },
                [shared_cb] { (*shared_cb)(false); });
}

// ---------------------------------------------------------------- cross-thread plumbing

coordinator::impl::impl(zk_config cfg, snapshot_fn on_snapshot)
    : _cfg(std::move(cfg)), _on_snapshot(std::move(on_snapshot)) {
    _published = std::make_shared<const cluster_snapshot>();
}

coordinator::impl::~impl() { stop(); }

void coordinator::impl::session_watcher(zhandle_t*, int type, int state, const char* path, void* ctx) {
    auto* w = static_cast<watch_ctx*>(ctx);
    w->self->push_event(w->generation, type, state, path);
}

void coordinator::impl::node_watcher(zhandle_t*, int type, int state, const char* path, void* ctx) {
    // Session events also reach every node watcher; the session watcher handles them.
    if (type == ZOO_SESSION_EVENT) return;
    auto* w = static_cast<watch_ctx*>(ctx);
    w->self->push_event(w->generation, type, state, path);
}

void coordinator::impl::push_event(uint64_t generation, int type, int state, const char* path) {
    std::lock_guard lock(_mutex);
    _events.push_back({generation, type, state, path ? path : ""});
    _cv.notify_all();
}

void coordinator::impl::post(std::function<void()> run, std::function<void()> cancel) {
    {
        std::lock_guard lock(_mutex);
        if (_started && !_stop_requested && _thread.joinable()) {
            _commands.push_back({std::move(run), std::move(cancel)});
            _cv.notify_all();
            return;
        }
    }
    cancel();
}

std::shared_ptr<const cluster_snapshot> coordinator::impl::snapshot() const {
    std::lock_guard lock(_mutex);
    return _published;
}

coordinator::session_credentials coordinator::impl::credentials() const {
    std::lock_guard lock(_mutex);
    return _credentials;
}

// ---------------------------------------------------------------- lifecycle

std::optional<std::string> coordinator::impl::start() {
    std::promise<std::optional<std::string>> started;
    auto result = started.get_future();
    {
        std::lock_guard lock(_mutex);
        SLUICE_ASSERT(!_started, "coordinator::start called twice");
        _started = true;
        _thread = std::thread([this, p = std::move(started)]() mutable { run(std::move(p)); });
    }
    auto error = result.get();
    if (error) stop();
    return error;
}

void coordinator::impl::stop() {
    std::deque<command> pending;
    {
        std::lock_guard lock(_mutex);
        _stop_requested = true;
        _cv.notify_all();
    }
    if (_thread.joinable()) _thread.join();
    {
        std::lock_guard lock(_mutex);
        pending.swap(_commands);
    }
    for (auto& c : pending) c.cancel();
}

void coordinator::impl::run(std::promise<std::optional<std::string>> started) {
    auto error = startup();
    started.set_value(error);
    if (!error) loop();
    if (_zk.is_open()) {
        _zk.close();
        if (_registered) log::info(sub, "closed ZooKeeper session; broker {} deregistered", _cfg.broker_id);
    }
    _is_controller_flag = false;
}

std::optional<std::string> coordinator::impl::startup() {
    std::string why;
    _connect = parse_connect_string(_cfg.connect, &why);
    if (!_connect) return fmt::format("invalid zookeeper.connect '{}': {}", _cfg.connect, why);
    if (!_connect->chroot.empty()) {
        // The chroot must exist before a chrooted handle can do anything.
        if (auto e = open_session(_connect->hosts, /*quiet=*/true)) return e;
        int rc = _zk.create_recursive(_connect->chroot);
        _zk.close();
        if (rc != ZOK) return fmt::format("cannot create ZooKeeper chroot {}: {}", _connect->chroot, zk_error_name(rc));
    }
    if (auto e = open_session(_connect->full())) return e;
    if (auto e = ensure_paths()) return e;
    if (auto e = ensure_cluster_id()) return e;
    if (auto e = register_broker(/*wait_for_lingering=*/true)) return e;
    mark_all_dirty();
    refresh();
    try_elect();
    refresh();
    if (_is_controller) reconcile();
    _changed = true;
    publish_if_changed();
    return std::nullopt;
}

std::optional<std::string> coordinator::impl::open_session(const std::string& hosts, bool quiet) {
    _ctx = &_watch_ctxs.emplace_back(watch_ctx{this, _watch_ctxs.size() + 1});
    if (!_zk.open(hosts, _cfg.session_timeout_ms, &impl::session_watcher, _ctx))
        return fmt::format("cannot create ZooKeeper handle for '{}'", hosts);
    auto deadline = clock::now() + std::chrono::milliseconds(_cfg.connection_timeout_ms);
    if (!wait_connected(deadline)) {
        _zk.close();
        return fmt::format("timed out connecting to ZooKeeper at '{}' after {} ms", hosts,
                           _cfg.connection_timeout_ms);
    }
    _connected = true;
    _expired = false;
    const clientid_t* id = zoo_client_id(_zk.handle());
    {
        std::lock_guard lock(_mutex);
        _credentials.id = id->client_id;
        std::copy(std::begin(id->passwd), std::end(id->passwd), _credentials.password.begin());
    }
    if (!quiet)
        log::info(sub, "connected to ZooKeeper at '{}', session 0x{:x}, timeout {} ms", hosts, id->client_id,
                  _zk.negotiated_timeout_ms());
    return std::nullopt;
}

bool coordinator::impl::wait_connected(clock::time_point deadline) {
    // Polls zoo_state: the CONNECTED event may race with our storing the handle.
    std::unique_lock lock(_mutex);
    while (zoo_state(_zk.handle()) != ZOO_CONNECTED_STATE) {
        if (_stop_requested || clock::now() >= deadline) return false;
        if (zoo_state(_zk.handle()) == ZOO_EXPIRED_SESSION_STATE) return false;
        _cv.wait_for(lock, std::chrono::milliseconds(50));
    }
    return true;
}

std::optional<std::string> coordinator::impl::ensure_paths() {
    for (const auto& path : znodes::persistent_paths()) {
        int rc = _zk.create_recursive(path);
        if (rc != ZOK) return fmt::format("cannot create ZooKeeper path {}: {}", path, zk_error_name(rc));
    }
    return std::nullopt;
}

std::optional<std::string> coordinator::impl::ensure_cluster_id() {
    const std::string path(znodes::cluster_id_path);
    for (int attempt = 0; attempt < 3; ++attempt) {
        zk_node node;
        int rc = _zk.get(path, node);
        if (rc == ZOK) {
            auto id = znodes::decode_cluster_id(node.data.value_or(""));
            if (!id) return fmt::format("malformed {}: '{}'", path, node.data.value_or(""));
            _model.cluster_id = *id;
            log::info(sub, "cluster id {}", *id);
            return std::nullopt;
        }
        if (rc != ZNONODE) return fmt::format("cannot read {}: {}", path, zk_error_name(rc));
        // Race-safe: another broker may create it first; then we read theirs.
        rc = _zk.create_recursive("/cluster");
        if (rc == ZOK) rc = _zk.create(path, znodes::encode_cluster_id(uuid_to_base64(random_uuid())));
        if (rc != ZOK && rc != ZNODEEXISTS) return fmt::format("cannot create {}: {}", path, zk_error_name(rc));
    }
    return fmt::format("cannot settle {}", path);
}

// ---------------------------------------------------------------- registration

std::optional<std::string> coordinator::impl::register_broker(bool wait_for_lingering) {
    const std::string path = znodes::broker_path(_cfg.broker_id);
    broker_info me{_cfg.broker_id, _cfg.advertised, _cfg.rack, 0};
    const std::string data = znodes::encode_broker(me, now_ms());
    // A registration left by our own killed process lingers until its session times
    // out; that session had (at most) our timeout, plus ZooKeeper's tick granularity.
    const auto bound = std::chrono::milliseconds(_cfg.session_timeout_ms + std::max(2000, _cfg.session_timeout_ms / 2));
    const auto deadline = clock::now() + bound;
    bool logged = false;
    while (true) {
        int rc = _zk.create(path, data, ZOO_EPHEMERAL);
        if (rc != ZOK && rc != ZNODEEXISTS)
            return fmt::format("cannot register {}: {}", path, zk_error_name(rc));
        zk_node node;
        rc = _zk.get(path, node);
        if (rc == ZNONODE) continue;  // the old registration just went away
        if (rc != ZOK) return fmt::format("cannot read {}: {}", path, zk_error_name(rc));
        const int64_t owner = node.stat.ephemeralOwner;
        if (owner == _zk.session_id()) {
            _registered = true;
            log::info(sub, "registered broker {} at {} (broker epoch {})", _cfg.broker_id, path, node.stat.czxid);
            return std::nullopt;
        }
        std::string held = fmt::format("broker.id {} is registered by another live broker (ZooKeeper session 0x{:x})",
                                       _cfg.broker_id, owner);
        if (!wait_for_lingering) return held;
        if (clock::now() >= deadline)
            return fmt::format("{}; it did not go away within {} ms; check that no other broker uses broker.id {}",
                               held, bound.count(), _cfg.broker_id);
        if (!logged) {
            log::warn(sub,
                      "{} is still registered by ZooKeeper session 0x{:x}, probably this broker's previous "
                      "process that died; waiting up to {} ms for that session to expire",
                      path, owner, bound.count());
            logged = true;
        }
        Stat st;
        rc = _zk.exists(path, &st, &impl::node_watcher, wctx());
        if (rc == ZNONODE) continue;
        if (rc != ZOK) return fmt::format("cannot watch {}: {}", path, zk_error_name(rc));
        if (!wait_for_path_event(path, deadline) && stop_requested()) return "stopped";
    }
}

bool coordinator::impl::wait_for_path_event(const std::string& path, clock::time_point deadline) {
    std::unique_lock lock(_mutex);
    while (true) {
        for (auto it = _events.begin(); it != _events.end(); ++it) {
            if (it->path == path) {
                _events.erase(it);
                return true;
            }
        }
        if (_stop_requested) return false;
        if (_cv.wait_until(lock, deadline) == std::cv_status::timeout) return false;
    }
}

bool coordinator::impl::stop_requested() {
    std::lock_guard lock(_mutex);
    return _stop_requested;
}

// ---------------------------------------------------------------- event loop

void coordinator::impl::retry_soon(std::chrono::milliseconds delay) {
    _retry_at = std::min(_retry_at, clock::now() + delay);
}

void coordinator::impl::loop() {
    while (true) {
        std::deque<zk_event> events;
        std::deque<command> commands;
        {
            std::unique_lock lock(_mutex);
            auto wake = std::min(_retry_at, clock::now() + std::chrono::seconds(1));
            _cv.wait_until(lock, wake, [&] { return _stop_requested || !_events.empty() || !_commands.empty(); });
            if (_stop_requested) return;
            events.swap(_events);
            commands.swap(_commands);
        }
        if (clock::now() >= _retry_at) _retry_at = clock::time_point::max();
        for (const auto& ev : events) dispatch(ev);
        if (_expired) renew_session();
        if (_connected && !_expired) {
            if (!_registered) {
                if (auto e = register_broker(false)) {
                    log::error(sub, "cannot re-register broker {}: {}", _cfg.broker_id, *e);
                    retry_soon(std::chrono::seconds(1));
                }
            }
            refresh();
            if (_model.controller_id < 0 && !_is_controller) {
                try_elect();
                refresh();
            }
            if (_is_controller && _need_reconcile) reconcile();
        }
        for (auto& c : commands) c.run();
        publish_if_changed();
    }
}

void coordinator::impl::dispatch(const zk_event& ev) {
    if (!_ctx || ev.generation != _ctx->generation) return;  // a closed handle's late event
    if (ev.type == ZOO_SESSION_EVENT) {
        if (ev.state == ZOO_CONNECTED_STATE && !_connected) {
            log::info(sub, "reconnected to ZooKeeper (session 0x{:x})", _zk.session_id());
            _connected = true;
            mark_all_dirty();
        } else if (ev.state == ZOO_CONNECTING_STATE && _connected) {
            log::warn(sub, "lost connection to ZooKeeper; serving with the last metadata while reconnecting");
            _connected = false;
        } else if (ev.state == ZOO_EXPIRED_SESSION_STATE) {
            _expired = true;
            _connected = false;
        } else if (ev.state == ZOO_AUTH_FAILED_STATE) {
            log::error(sub, "ZooKeeper authentication failed");
        }
        return;
    }
    const std::string& p = ev.path;
    if (p == znodes::broker_ids_path) {
        _need_brokers = true;
    } else if (p == znodes::controller_path) {
        _need_controller = true;
    } else if (p == znodes::topics_path) {
        _need_topic_list = true;
    } else if (p == znodes::delete_topics_path) {
        _need_markers = true;
    } else if (p.starts_with("/brokers/topics/")) {
        std::string rest = p.substr(16);
        auto slash = rest.find('/');
        if (slash == std::string::npos || rest.substr(slash) == "/partitions") _need_topics.insert(rest.substr(0, slash));
    } else if (p.starts_with("/config/topics/")) {
        _need_topics.insert(p.substr(15));
    }
}

void coordinator::impl::renew_session() {
    log::warn(sub, "ZooKeeper session 0x{:x} expired; opening a new session", _zk.session_id());
    _zk.close();
    if (_is_controller) resign("its ZooKeeper session expired");
    _registered = false;
    if (auto e = open_session(_connect->full())) {
        log::warn(sub, "{}; retrying", *e);
        _expired = true;
        retry_soon(std::chrono::seconds(1));
        return;
    }
    if (auto e = register_broker(false)) {
        log::error(sub, "ZooKeeper session expired; could not re-register broker {}: {}", _cfg.broker_id, *e);
        retry_soon(std::chrono::seconds(1));
    } else {
        log::warn(sub, "ZooKeeper session expired; re-registered broker {}", _cfg.broker_id);
    }
    mark_all_dirty();
}

void coordinator::impl::publish_if_changed() {
    _is_controller_flag = _is_controller;
    if (!_changed) return;
    _changed = false;
    _model.version++;
    auto snap = std::make_shared<const cluster_snapshot>(_model);
    {
        std::lock_guard lock(_mutex);
        _published = snap;
    }
    if (_on_snapshot) _on_snapshot(std::move(snap));
}

}  // namespace sluice::coord
