#include "coord/zk_client.h"

#include <fmt/format.h>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>

#include "base/log.h"
#include "coord/connect_string.h"

namespace sluice::coord {
namespace {

const char* data_ptr(const std::optional<std::string>& d) { return d ? d->data() : nullptr; }
int data_len(const std::optional<std::string>& d) { return d ? int(d->size()) : -1; }

// The C client logs through this (level filtered by zoo_set_debug_level) instead of
// writing its own format to stderr. While ZooKeeper is down it retries every few tens
// of milliseconds and logs each failure, so identical messages are limited to one per
// 10 s per text (the text minus the client's own timestamp/thread prefix).
void route_client_log(const char* message) {
    std::string_view m(message);
    while (!m.empty() && m.back() == '\n') m.remove_suffix(1);
    if (auto at = m.find("ZOO_"); at != std::string_view::npos) m.remove_prefix(at);
    struct seen {
        std::chrono::steady_clock::time_point last;
        uint64_t suppressed = 0;
    };
    static std::mutex mutex;
    static std::map<std::string, seen, std::less<>> recent;
    const auto now = std::chrono::steady_clock::now();
    uint64_t suppressed = 0;
    {
        std::lock_guard lock(mutex);
        if (recent.size() > 256) recent.clear();
        auto it = recent.find(m);
        if (it != recent.end() && now - it->second.last < std::chrono::seconds(10)) {
            it->second.suppressed++;
            return;
        }
        if (it != recent.end()) suppressed = it->second.suppressed;
        recent[std::string(m)] = seen{now, 0};
    }
    if (suppressed)
        log::warn("zk-client", "{} (and {} more like it)", m, suppressed);
    else
        log::warn("zk-client", "{}", m);
}

}  // namespace

std::string zk_error_name(int rc) { return fmt::format("{} ({})", zerror(rc), rc); }

bool zk_client::open(const std::string& hosts, int32_t session_timeout_ms, watcher_fn session_watcher, void* ctx) {
    close();
    zoo_set_debug_level(ZOO_LOG_LEVEL_WARN);
    _zh = zookeeper_init2(hosts.c_str(), session_watcher, session_timeout_ms, nullptr, ctx, 0, route_client_log);
    return _zh != nullptr;
}

void zk_client::close() {
    if (_zh) zookeeper_close(_zh);
    _zh = nullptr;
}

int64_t zk_client::session_id() const {
    const clientid_t* id = _zh ? zoo_client_id(_zh) : nullptr;
    return id ? id->client_id : 0;
}

int32_t zk_client::negotiated_timeout_ms() const { return _zh ? zoo_recv_timeout(_zh) : 0; }

int zk_client::get(const std::string& path, zk_node& out, watcher_fn watcher, void* ctx) {
    std::string buf(64 * 1024, '\0');
    for (int attempt = 0; attempt < 3; ++attempt) {
        int len = int(buf.size());
        int rc = zoo_wget(_zh, path.c_str(), watcher, ctx, buf.data(), &len, &out.stat);
        if (rc != ZOK) return rc;
        if (out.stat.dataLength <= int(buf.size())) {
            if (len < 0) {
                out.data.reset();
            } else {
                buf.resize(size_t(len));
                out.data = std::move(buf);
            }
            return ZOK;
        }
        buf.assign(size_t(out.stat.dataLength), '\0');  // larger than our buffer: retry
    }
    return ZMARSHALLINGERROR;
}

int zk_client::exists(const std::string& path, Stat* stat, watcher_fn watcher, void* ctx) {
    return zoo_wexists(_zh, path.c_str(), watcher, ctx, stat);
}

int zk_client::children(const std::string& path, std::vector<std::string>& out, watcher_fn watcher, void* ctx) {
    String_vector v{};
    int rc = zoo_wget_children(_zh, path.c_str(), watcher, ctx, &v);
    out.clear();
    if (rc == ZOK) {
        for (int i = 0; i < v.count; ++i) out.emplace_back(v.data[i]);
        deallocate_String_vector(&v);
    }
    return rc;
}

int zk_client::create(const std::string& path, const std::optional<std::string>& data, int flags) {
    return zoo_create(_zh, path.c_str(), data_ptr(data), data_len(data), &ZOO_OPEN_ACL_UNSAFE, flags, nullptr, 0);
}

int zk_client::set(const std::string& path, const std::optional<std::string>& data, int version, Stat* stat) {
    return zoo_set2(_zh, path.c_str(), data_ptr(data), data_len(data), version, stat);
}

int zk_client::remove(const std::string& path, int version) { return zoo_delete(_zh, path.c_str(), version); }

int zk_client::create_recursive(const std::string& path) {
    for (const auto& prefix : path_prefixes(path)) {
        int rc = create(prefix, std::nullopt);
        if (rc != ZOK && rc != ZNODEEXISTS) return rc;
    }
    return ZOK;
}

namespace {

// Completion state shared by the requests of one get_many; completions run on the
// client's completion thread, the caller waits on cv.
struct get_batch {
    std::mutex mutex;
    std::condition_variable cv;
    size_t pending = 0;
    std::vector<int>* rcs = nullptr;
    std::vector<zk_node>* out = nullptr;
};

struct get_slot {
    get_batch* batch;
    size_t index;
};

void get_many_done(int rc, const char* value, int len, const Stat* stat, const void* data) {
    const auto* slot = static_cast<const get_slot*>(data);
    get_batch& b = *slot->batch;
    std::lock_guard lock(b.mutex);
    (*b.rcs)[slot->index] = rc;
    zk_node& node = (*b.out)[slot->index];
    if (rc == ZOK) {
        if (stat) node.stat = *stat;
        if (value && len >= 0)
            node.data = std::string(value, size_t(len));
        else
            node.data.reset();
    }
    if (--b.pending == 0) b.cv.notify_all();
}

}  // namespace

int zk_client::get_many(const std::vector<std::string>& paths, std::vector<int>& rcs, std::vector<zk_node>& out) {
    rcs.assign(paths.size(), ZOK);
    out.assign(paths.size(), zk_node{});
    get_batch batch;
    batch.rcs = &rcs;
    batch.out = &out;
    std::vector<get_slot> slots(paths.size());
    {
        std::unique_lock lock(batch.mutex);
        for (size_t i = 0; i < paths.size(); ++i) {
            slots[i] = {&batch, i};
            ++batch.pending;
            // The completion may run before zoo_aget returns: it only needs the mutex,
            // which this thread holds until every request is queued.
            int rc = zoo_aget(_zh, paths[i].c_str(), 0, get_many_done, &slots[i]);
            if (rc != ZOK) {
                --batch.pending;
                rcs[i] = rc;
            }
        }
        // Every queued request completes exactly once (with ZCONNECTIONLOSS or
        // ZCLOSING when the session breaks), so this wait is bounded by the session.
        batch.cv.wait(lock, [&] { return batch.pending == 0; });
    }
    for (int rc : rcs)
        if (rc != ZOK && rc != ZNONODE) return rc;
    return ZOK;
}

void zk_txn::check(std::string path, int version) { _ops.push_back({op::check_op, std::move(path), {}, version, 0}); }
void zk_txn::create(std::string path, std::optional<std::string> data, int flags) {
    _ops.push_back({op::create_op, std::move(path), std::move(data), -1, flags});
}
void zk_txn::set(std::string path, std::optional<std::string> data, int version) {
    _ops.push_back({op::set_op, std::move(path), std::move(data), version, 0});
}
void zk_txn::remove(std::string path, int version) { _ops.push_back({op::remove_op, std::move(path), {}, version, 0}); }

int zk_txn::commit(zk_client& zk) {
    std::vector<zoo_op_t> ops(_ops.size());
    _results.assign(_ops.size(), zoo_op_result_t{});
    _stats.assign(_ops.size(), Stat{});
    _path_buffers.clear();
    for (size_t i = 0; i < _ops.size(); ++i) {
        const op& o = _ops[i];
        switch (o.k) {
            case op::check_op: zoo_check_op_init(&ops[i], o.path.c_str(), o.version); break;
            case op::create_op: {
                std::string& buf = _path_buffers.emplace_back(o.path.size() + 32, '\0');
                zoo_create_op_init(&ops[i], o.path.c_str(), data_ptr(o.data), data_len(o.data), &ZOO_OPEN_ACL_UNSAFE,
                                   o.flags, buf.data(), int(buf.size()));
                break;
            }
            case op::set_op:
                zoo_set_op_init(&ops[i], o.path.c_str(), data_ptr(o.data), data_len(o.data), o.version, &_stats[i]);
                break;
            case op::remove_op: zoo_delete_op_init(&ops[i], o.path.c_str(), o.version); break;
        }
    }
    if (ops.empty()) return ZOK;
    return zoo_multi(zk.handle(), int(ops.size()), ops.data(), _results.data());
}

}  // namespace sluice::coord
