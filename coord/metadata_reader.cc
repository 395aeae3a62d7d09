// ZooKeeper -> the coordinator's model. Every read re-arms the watch that tells us
// when to read again; a failed read leaves its dirty flag set and schedules a retry.
#include <charconv>

#include "base/log.h"
#include "coord/coordinator_impl.h"
#include "coord/znodes.h"

namespace sluice::coord {
namespace {

constexpr std::string_view sub = "coord";

std::optional<int32_t> to_int32(const std::string& s) {
    int32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size()) return std::nullopt;
    return v;
}

}  // namespace

void coordinator::impl::mark_all_dirty() {
    _need_brokers = _need_controller = _need_topic_list = _need_markers = true;
    for (const auto& [name, t] : _model.topics) _need_topics.insert(name);
}

void coordinator::impl::refresh() {
    // A flag stays set when its read fails, so the retry re-reads just that.
    auto read = [this](bool& dirty, bool (impl::*reader)()) {
        if (dirty) dirty = !(this->*reader)();
        return !dirty;
    };
    // Markers before topics so that topics read in this pass carry the right flag.
    bool ok = read(_need_markers, &impl::read_delete_markers);
    ok &= read(_need_brokers, &impl::read_brokers);
    ok &= read(_need_controller, &impl::read_controller);
    ok &= read(_need_topic_list, &impl::read_topic_list);
    std::set<std::string> failed;
    for (const auto& name : _need_topics)
        if (!read_topic(name)) failed.insert(name);
    _need_topics.swap(failed);
    ok &= _need_topics.empty();
    if (!ok) retry_soon();
}

bool coordinator::impl::read_brokers() {
    std::vector<std::string> ids;
    int rc = _zk.children(std::string(znodes::broker_ids_path), ids, &impl::node_watcher, wctx());
    if (rc != ZOK) {
        log::warn(sub, "cannot read {}: {}", znodes::broker_ids_path, zk_error_name(rc));
        return false;
    }
    std::map<int32_t, broker_info> brokers;
    for (const auto& child : ids) {
        auto id = to_int32(child);
        if (!id) continue;
        zk_node node;
        rc = _zk.get(znodes::broker_path(*id), node);
        if (rc == ZNONODE) continue;
        if (rc != ZOK) return false;
        auto b = znodes::decode_broker(*id, node.data.value_or(""));
        if (!b) {
            log::warn(sub, "ignoring malformed registration of broker {}: {}", *id, node.data.value_or("null"));
            continue;
        }
        b->epoch = node.stat.czxid;
        brokers[*id] = std::move(*b);
    }
    if (brokers != _model.brokers) {
        _model.brokers = std::move(brokers);
        _changed = _need_reconcile = true;
    }
    return true;
}

bool coordinator::impl::read_controller() {
    const std::string path(znodes::controller_path);
    Stat st;
    int rc = _zk.exists(path, &st, &impl::node_watcher, wctx());  // also fires on creation
    int32_t id = -1;
    zk_node node;
    if (rc == ZOK) {
        rc = _zk.get(path, node);
        if (rc == ZOK) id = znodes::decode_controller(node.data.value_or("")).value_or(-1);
    }
    if (rc != ZOK && rc != ZNONODE) return false;
    if (_is_controller && id != _cfg.broker_id) resign("/controller no longer names this broker");
    if (!_is_controller && rc == ZOK && node.stat.ephemeralOwner == _zk.session_id()) {
        // We hold /controller but were fenced (a write found a newer controller epoch):
        // like Kafka's triggerControllerMove, give it up so that a fresh election runs.
        log::warn(sub, "giving up /controller after being fenced; re-electing");
        rc = _zk.remove(path, node.stat.version);
        return rc == ZOK || rc == ZNONODE;
    }
    if (id != _model.controller_id) {
        _model.controller_id = id;
        _changed = true;
    }
    return true;
}

bool coordinator::impl::read_topic_list() {
    std::vector<std::string> names;
    int rc = _zk.children(std::string(znodes::topics_path), names, &impl::node_watcher, wctx());
    if (rc != ZOK) return false;
    std::set<std::string> present(names.begin(), names.end());
    for (auto it = _model.topics.begin(); it != _model.topics.end();) {
        if (present.count(it->first)) {
            ++it;
            continue;
        }
        it = _model.topics.erase(it);
        _changed = _need_reconcile = true;
    }
    for (const auto& name : names)
        if (!_model.topics.count(name)) _need_topics.insert(name);
    return true;
}

bool coordinator::impl::read_delete_markers() {
    std::vector<std::string> names;
    int rc = _zk.children(std::string(znodes::delete_topics_path), names, &impl::node_watcher, wctx());
    if (rc != ZOK) return false;
    std::set<std::string> markers(names.begin(), names.end());
    if (markers == _delete_markers) return true;
    _delete_markers = std::move(markers);
    _need_reconcile = true;
    for (const auto& [name, t] : _model.topics) {
        if (t->marked_for_deletion == bool(_delete_markers.count(name))) continue;
        auto copy = std::make_shared<topic_info>(*t);
        copy->marked_for_deletion = !t->marked_for_deletion;
        set_topic(name, std::move(copy));
    }
    return true;
}

// One topic: assignment (data watch: partition additions), configs (data watch),
// partition states (no per-partition watch: one exists-watch on .../partitions,
// whose version writers bump; see coordinator.h).
bool coordinator::impl::read_topic(const std::string& name) {
    zk_node node;
    int rc = _zk.get(znodes::topic_path(name), node, &impl::node_watcher, wctx());
    if (rc == ZNONODE) {
        _topic_zk_versions.erase(name);
        if (_model.topics.erase(name)) _changed = _need_reconcile = true;
        return true;
    }
    if (rc != ZOK) return false;
    auto decoded = znodes::decode_topic(node.data.value_or(""));
    if (!decoded) {
        log::warn(sub, "ignoring topic {} with malformed znode: {}", name, node.data.value_or("null"));
        return true;
    }
    _topic_zk_versions[name] = node.stat.version;
    auto t = std::make_shared<topic_info>();
    t->name = name;
    t->topic_id = decoded->topic_id;
    t->assignment = std::move(decoded->assignment);
    t->marked_for_deletion = _delete_markers.count(name) > 0;

    zk_node config;
    const std::string config_path = znodes::topic_config_path(name);
    rc = _zk.get(config_path, config, &impl::node_watcher, wctx());
    if (rc == ZNONODE) {
        Stat st;
        rc = _zk.exists(config_path, &st, &impl::node_watcher, wctx());
        if (rc == ZNONODE) rc = ZOK;
    } else if (rc == ZOK) {
        t->configs = znodes::decode_config(config.data.value_or("")).value_or(std::map<std::string, std::string>{});
    }
    if (rc != ZOK) return false;

    Stat st;
    rc = _zk.exists(znodes::topic_partitions_path(name), &st, &impl::node_watcher, wctx());
    if (rc != ZOK && rc != ZNONODE) return false;
    // All partition states in one pipelined batch: a 100-partition topic costs one round
    // trip, not 100.
    std::vector<int32_t> ids;
    std::vector<std::string> paths;
    for (const auto& [p, replicas] : t->assignment) {
        ids.push_back(p);
        paths.push_back(znodes::partition_state_path(name, p));
    }
    std::vector<int> rcs;
    std::vector<zk_node> states;
    if (_zk.get_many(paths, rcs, states) != ZOK) return false;
    for (size_t i = 0; i < ids.size(); ++i) {
        if (rcs[i] != ZOK) continue;  // ZNONODE: the controller has not written it yet
        auto s = znodes::decode_partition_state(states[i].data.value_or(""));
        if (!s) continue;
        s->zk_version = states[i].stat.version;
        t->partitions[ids[i]] = std::move(*s);
    }
    set_topic(name, std::move(t));
    return true;
}

void coordinator::impl::set_topic(const std::string& name, std::shared_ptr<const topic_info> t) {
    auto it = _model.topics.find(name);
    if (it != _model.topics.end() && *it->second == *t) return;
    _model.topics[name] = std::move(t);
    _changed = _need_reconcile = true;
}

}  // namespace sluice::coord
