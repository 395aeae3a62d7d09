// The ZK-mode controller: election through /controller + /controller_epoch, then
// reconciliation of desired vs actual partition state after every metadata change.
// Every write is fenced by check(/controller_epoch, _epoch_zk_version) in its multi.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/log.h"
#include "coord/assignment.h"
#include "coord/coordinator_impl.h"
#include "coord/uuid.h"
#include "coord/znodes.h"

namespace sluice::coord {
namespace {

constexpr std::string_view sub = "controller";
// Keeps each multi far below jute.maxbuffer (1 MiB) even with long topic names.
constexpr size_t max_ops_per_txn = 200;

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

std::set<int32_t> coordinator::impl::live_brokers() const {
    std::set<int32_t> live;
    for (const auto& [id, b] : _model.brokers) live.insert(id);
    return live;
}

void coordinator::impl::try_elect() {
    const std::string epoch_path(znodes::controller_epoch_path);
    zk_node epoch_node;
    int rc = _zk.get(epoch_path, epoch_node);
    if (rc == ZNONODE) {
        rc = _zk.create(epoch_path, std::string("0"));
        if (rc == ZOK || rc == ZNODEEXISTS) rc = _zk.get(epoch_path, epoch_node);
    }
    if (rc != ZOK) {
        log::warn(sub, "cannot read {}: {}", epoch_path, zk_error_name(rc));
        retry_soon();
        return;
    }
    auto epoch = znodes::decode_controller_epoch(epoch_node.data.value_or(""));
    if (!epoch) {
        log::error(sub, "malformed {}: '{}'", epoch_path, epoch_node.data.value_or("null"));
        return;
    }
    zk_txn tx;
    tx.create(std::string(znodes::controller_path), znodes::encode_controller(_cfg.broker_id, now_ms()), ZOO_EPHEMERAL);
    tx.set(epoch_path, std::to_string(*epoch + 1), epoch_node.stat.version);
    rc = tx.commit(_zk);
    if (rc == ZNODEEXISTS || rc == ZBADVERSION) {  // somebody else won; learn who
        _need_controller = true;
        return;
    }
    if (rc != ZOK) {
        log::warn(sub, "controller election failed: {}", zk_error_name(rc));
        _need_controller = true;
        retry_soon();
        return;
    }
    _is_controller = true;
    _known_broker_epochs.clear();  // bounces before our reign are not ours to handle
    for (const auto& [id, b] : _model.brokers) _known_broker_epochs[id] = b.epoch;
    _controller_epoch = *epoch + 1;
    _epoch_zk_version = tx.stat(1).version;
    _model.controller_id = _cfg.broker_id;
    _changed = _need_reconcile = true;
    _need_controller = true;  // re-arm the /controller watch
    log::info(sub, "broker {} is now the controller (controller epoch {})", _cfg.broker_id, _controller_epoch);
}

void coordinator::impl::resign(const char* why) {
    if (!_is_controller) return;
    _is_controller = false;
    log::warn(sub, "broker {} is no longer the controller: {}", _cfg.broker_id, why);
}

bool coordinator::impl::commit_fenced(zk_txn& tx, const char* what) {
    int rc = tx.commit(_zk);
    if (rc == ZOK) return true;
    if (!tx.results().empty() && tx.results()[0].err == ZBADVERSION) {
        resign("a newer controller epoch exists");
        _need_controller = true;
        return false;
    }
    log::warn(sub, "{} failed: {}", what, zk_error_name(rc));
    return false;
}

void coordinator::impl::reconcile() {
    _need_reconcile = false;
    const std::set<int32_t> live = live_brokers();
    bool ok = true;
    for (const auto& name : _delete_markers) {
        if (!_is_controller) return;
        auto it = _model.topics.find(name);
        ok &= it == _model.topics.end() ? delete_marker(name) : delete_topic_znodes(name);
    }
    // Brokers whose registration changed since the last pass restarted in between.
    std::set<int32_t> bounced;
    for (const auto& [id, b] : _model.brokers) {
        auto known = _known_broker_epochs.find(id);
        if (known != _known_broker_epochs.end() && known->second != b.epoch) bounced.insert(id);
    }
    for (int32_t id : bounced) log::info(sub, "broker {} restarted (new broker epoch)", id);
    auto topics = _model.topics;
    for (const auto& [name, t] : topics) {
        if (!_is_controller) return;
        if (t->marked_for_deletion) continue;
        if (is_zero(t->topic_id)) ok &= assign_topic_id(*t);
        std::map<int32_t, partition_state> creates, updates;
        for (const auto& [p, replicas] : t->assignment) {
            auto st = t->partitions.find(p);
            if (st == t->partitions.end()) {
                creates[p] = initial_partition_state(replicas, live, _controller_epoch);
            } else if (auto next = reelect_after_bounce(replicas, st->second, live, bounced, _controller_epoch)) {
                updates[p] = *next;
            }
        }
        if (creates.empty() && updates.empty()) continue;
        ok &= write_states(*t, creates, updates);
        _need_topics.insert(name);  // read back the new zkVersions
    }
    if (ok) {
        _known_broker_epochs.clear();
        for (const auto& [id, b] : _model.brokers) _known_broker_epochs[id] = b.epoch;
    }
    if (!ok) _need_reconcile = true;
    if (!ok || !_need_topics.empty()) retry_soon(ok ? std::chrono::milliseconds(0) : std::chrono::milliseconds(500));
}

bool coordinator::impl::write_states(const topic_info& t, const std::map<int32_t, partition_state>& creates,
                                     const std::map<int32_t, partition_state>& updates) {
    // .../partitions first, unfenced (an empty znode is harmless); the per-partition
    // parents go into the fenced multis with their states. Each ZooKeeper write is a disk
    // sync on the server, so a 100-partition topic is one multi, not 200 creates
    // (Kafka's controller batches these as pipelined async creates).
    const std::string parent = znodes::topic_partitions_path(t.name);
    std::set<std::string> existing;
    if (!creates.empty()) {
        int rc = _zk.create_recursive(parent);
        std::vector<std::string> kids;
        if (rc == ZOK) rc = _zk.children(parent, kids);
        if (rc != ZOK) return false;
        existing.insert(kids.begin(), kids.end());
    }
    std::vector<std::pair<int32_t, const partition_state*>> all;
    for (const auto& [p, s] : creates) all.emplace_back(p, &s);
    for (const auto& [p, s] : updates) all.emplace_back(p, &s);
    for (size_t i = 0; i < all.size();) {
        zk_txn tx;
        tx.check(std::string(znodes::controller_epoch_path), _epoch_zk_version);
        for (; i < all.size() && tx.size() + 2 < max_ops_per_txn; ++i) {
            auto [p, s] = all[i];
            std::string path = znodes::partition_state_path(t.name, p);
            if (creates.count(p)) {
                if (!existing.count(std::to_string(p))) tx.create(znodes::partition_path(t.name, p), std::nullopt);
                tx.create(std::move(path), znodes::encode_partition_state(*s));
            } else {
                tx.set(std::move(path), znodes::encode_partition_state(*s), s->zk_version);
            }
        }
        tx.set(parent, std::nullopt, -1);  // the per-topic "states changed" notification
        if (!commit_fenced(tx, "partition state update")) return false;
    }
    for (const auto& [p, s] : all)
        log::info(sub, "{}-{}: leader {} leader_epoch {} isr [{}]", t.name, p, s->leader, s->leader_epoch,
                  fmt::join(s->isr, ","));
    return true;
}

bool coordinator::impl::delete_topic_znodes(const std::string& name) {
    // Post-order list of everything under /brokers/topics/<t>.
    std::vector<std::string> doomed;
    std::vector<std::pair<std::string, bool>> stack{{znodes::topic_path(name), false}};
    while (!stack.empty()) {
        auto [path, expanded] = stack.back();
        stack.pop_back();
        if (expanded) {
            doomed.push_back(path);
            continue;
        }
        std::vector<std::string> kids;
        int rc = _zk.children(path, kids);
        if (rc == ZNONODE) continue;
        if (rc != ZOK) return false;
        stack.emplace_back(path, true);
        for (const auto& k : kids) stack.emplace_back(path + "/" + k, false);
    }
    for (size_t i = 0; i < doomed.size(); i += max_ops_per_txn) {
        zk_txn tx;
        tx.check(std::string(znodes::controller_epoch_path), _epoch_zk_version);
        for (size_t j = i; j < std::min(doomed.size(), i + max_ops_per_txn); ++j) tx.remove(doomed[j]);
        if (!commit_fenced(tx, "topic deletion")) return false;
    }
    Stat st;
    const std::string config = znodes::topic_config_path(name);
    if (_zk.exists(config, &st) == ZOK) {
        zk_txn tx;
        tx.check(std::string(znodes::controller_epoch_path), _epoch_zk_version);
        tx.remove(config);
        if (!commit_fenced(tx, "topic config deletion")) return false;
    }
    log::info(sub, "deleted topic {}", name);
    _need_topic_list = true;
    return delete_marker(name);
}

// Topics written by pre-2.8 tooling have no topic_id; Kafka's controller adds one.
bool coordinator::impl::assign_topic_id(const topic_info& t) {
    auto version = _topic_zk_versions.find(t.name);
    if (version == _topic_zk_versions.end()) return false;
    const uuid id = random_uuid();
    zk_txn tx;
    tx.check(std::string(znodes::controller_epoch_path), _epoch_zk_version);
    tx.set(znodes::topic_path(t.name), znodes::encode_topic(t.assignment, id), version->second);
    if (!commit_fenced(tx, "topic id assignment")) return false;
    log::info(sub, "assigned topic id {} to {}", uuid_to_base64(id), t.name);
    return true;
}

bool coordinator::impl::delete_marker(const std::string& name) {
    // A marker for a topic our model has not caught up with yet is not stale.
    Stat st;
    if (!_model.topics.count(name) && _zk.exists(znodes::topic_path(name), &st) != ZNONODE) {
        _need_topic_list = true;
        return false;
    }
    zk_txn tx;
    tx.check(std::string(znodes::controller_epoch_path), _epoch_zk_version);
    tx.remove(znodes::delete_topic_path(name));
    bool ok = commit_fenced(tx, "delete marker removal");
    _need_markers = true;
    return ok || (tx.results().size() > 1 && tx.results()[1].err == ZNONODE);
}

}  // namespace sluice::coord
