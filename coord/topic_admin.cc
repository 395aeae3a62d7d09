// Topic creation and deletion requests, as Kafka's AdminZkClient does them: any broker
// writes the znodes; the controller reacts to them.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/log.h"
#include "coord/assignment.h"
#include "coord/coordinator_impl.h"
#include "coord/znodes.h"

namespace sluice::coord {
namespace {

constexpr std::string_view sub = "coord";

// Kafka's Topic.hasCollisionChars / unifyCollisionChars: '.' and '_' collide in metric names.
std::string unify_collision_chars(std::string s) {
    for (char& c : s)
        if (c == '.') c = '_';
    return s;
}

int16_t zk_to_kafka_error(int rc) {
    return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT ? errors::request_timed_out : errors::unknown_server_error;
}

}  // namespace

std::optional<std::string> validate_topic_name(const std::string& name) {
    if (name.empty()) return "Topic name is illegal, it can't be empty";
    if (name == "." || name == "..") return "Topic name cannot be \".\" or \"..\"";
    if (name.size() > 249)
        return fmt::format("Topic name is illegal, it can't be longer than 249 characters, topic name: {}", name);
    for (char c : name) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                  c == '-';
        if (!ok)
            return fmt::format(
                "Topic name \"{}\" is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'",
                name);
    }
    return std::nullopt;
}

namespace {

// Kafka's AdminZkClient.validateTopicCreate checks on an explicit assignment.
std::optional<std::string> validate_assignment(const std::map<int32_t, std::vector<int32_t>>& assignment) {
    if (assignment.empty()) return "Replica assignment must not be empty";
    int32_t expected = 0;
    for (const auto& [p, replicas] : assignment) {
        if (p != expected++) return "partitions should be a consecutive 0-based integer sequence";
        if (replicas.empty()) return fmt::format("Partition {} has an empty replica list", p);
        if (std::set<int32_t>(replicas.begin(), replicas.end()).size() != replicas.size())
            return fmt::format("Duplicate replica assignment found: {}", fmt::join(replicas, ","));
        if (replicas.size() != assignment.begin()->second.size())
            return "All partitions should have the same number of replicas";
    }
    return std::nullopt;
}

}  // namespace

void coordinator::impl::create_topic_now(const create_request& req, const admin_fn& cb) {
    const std::string& name = req.name;
    if (auto why = validate_topic_name(name)) return cb(errors::invalid_topic_exception, *why);
    if (!_connected) return cb(errors::request_timed_out, "not connected to ZooKeeper");
    auto assignment = req.assignment;
    if (assignment.empty()) {
        if (req.partitions <= 0) return cb(errors::invalid_partitions, "Number of partitions must be larger than 0.");
        if (req.replication_factor <= 0)
            return cb(errors::invalid_replication_factor, "Replication factor must be larger than 0.");
        const std::set<int32_t> live = live_brokers();
        if (size_t(req.replication_factor) > live.size())
            return cb(errors::invalid_replication_factor,
                      fmt::format("Replication factor: {} larger than available brokers: {}.", req.replication_factor,
                                  live.size()));
        assignment = assign_replicas(std::vector<int32_t>(live.begin(), live.end()), req.partitions,
                                     req.replication_factor);
    } else if (auto why = validate_assignment(assignment)) {
        return cb(errors::invalid_replica_assignment, *why);
    }
    if (auto it = _model.topics.find(name); it != _model.topics.end()) {
        if (it->second->marked_for_deletion)
            return cb(errors::topic_already_exists, fmt::format("Topic '{}' is marked for deletion.", name));
        return cb(errors::topic_already_exists, fmt::format("Topic '{}' already exists.", name));
    }
    const std::string unified = unify_collision_chars(name);
    for (const auto& [other, t] : _model.topics)
        if (unify_collision_chars(other) == unified)
            return cb(errors::invalid_topic_exception,
                      fmt::format("Topic '{}' collides with existing topic: {}", name, other));
    if (req.validate_only) return cb(errors::none, "");

    const uuid topic_id = random_uuid();
    // Config first, as Kafka does, so the topic never exists without its overrides.
    const std::string config_path = znodes::topic_config_path(name);
    int rc = _zk.create(config_path, znodes::encode_config(req.configs));
    if (rc == ZNODEEXISTS) rc = _zk.set(config_path, znodes::encode_config(req.configs), -1);
    if (rc != ZOK)
        return cb(zk_to_kafka_error(rc), fmt::format("cannot write {}: {}", config_path, zk_error_name(rc)));
    rc = _zk.create(znodes::topic_path(name), znodes::encode_topic(assignment, topic_id));
    if (rc == ZNODEEXISTS) return cb(errors::topic_already_exists, fmt::format("Topic '{}' already exists.", name));
    if (rc != ZOK)
        return cb(zk_to_kafka_error(rc), fmt::format("cannot create topic {}: {}", name, zk_error_name(rc)));
    log::info(sub, "created topic {} ({} partitions, replication factor {}, id {})", name, assignment.size(),
              assignment.begin()->second.size(), uuid_to_base64(topic_id));
    _need_topic_list = true;
    retry_soon(std::chrono::milliseconds(0));
    cb(errors::none, "");
}

void coordinator::impl::delete_topic_now(const std::string& name, const admin_fn& cb) {
    if (!_connected) return cb(errors::request_timed_out, "not connected to ZooKeeper");
    Stat st;
    int rc = _zk.exists(znodes::topic_path(name), &st);
    if (rc == ZNONODE)
        return cb(errors::unknown_topic_or_partition, "This server does not host this topic-partition.");
    if (rc == ZOK) rc = _zk.create(znodes::delete_topic_path(name), std::nullopt);
    if (rc != ZOK && rc != ZNODEEXISTS)
        return cb(zk_to_kafka_error(rc), fmt::format("cannot mark topic {} for deletion: {}", name, zk_error_name(rc)));
    log::info(sub, "marked topic {} for deletion", name);
    _need_markers = true;
    retry_soon(std::chrono::milliseconds(0));
    cb(errors::none, "");
}

void coordinator::impl::alter_topic_configs_now(const std::string& name, const config_edit_fn& edit,
                                                const admin_fn& cb, bool validate_only) {
    if (!_connected) return cb(errors::request_timed_out, "not connected to ZooKeeper");
    const std::string config_path = znodes::topic_config_path(name);
    // Compare-and-set on /config/topics/<t>: a concurrent writer (another broker, Kafka's
    // tools) makes the multi fail with ZBADVERSION / ZNODEEXISTS and we re-read.
    for (int attempt = 0; attempt < 5; ++attempt) {
        Stat st;
        int rc = _zk.exists(znodes::topic_path(name), &st);
        if (rc == ZNONODE)
            return cb(errors::unknown_topic_or_partition, fmt::format("Topic {} does not exist.", name));
        if (rc != ZOK) return cb(zk_to_kafka_error(rc), fmt::format("cannot read topic {}: {}", name, zk_error_name(rc)));
        zk_node node;
        rc = _zk.get(config_path, node);
        if (rc != ZOK && rc != ZNONODE)
            return cb(zk_to_kafka_error(rc), fmt::format("cannot read {}: {}", config_path, zk_error_name(rc)));
        const bool exists = rc == ZOK;
        std::map<std::string, std::string> configs;
        if (exists && node.data) {
            auto decoded = znodes::decode_config(*node.data);
            if (!decoded) return cb(errors::invalid_config, fmt::format("{} holds malformed JSON", config_path));
            configs = std::move(*decoded);
        }
        if (auto refused = edit(configs)) return cb(refused->first, refused->second);
        if (validate_only) return cb(errors::none, "");
        zk_txn tx;
        if (exists)
            tx.set(config_path, znodes::encode_config(configs), node.stat.version);
        else
            tx.create(config_path, znodes::encode_config(configs));
        tx.create(std::string(znodes::config_change_prefix), znodes::encode_config_change("topics/" + name),
                  ZOO_SEQUENCE);
        rc = tx.commit(_zk);
        if (rc == ZBADVERSION || rc == ZNODEEXISTS || rc == ZNONODE) continue;
        if (rc != ZOK)
            return cb(zk_to_kafka_error(rc), fmt::format("cannot write {}: {}", config_path, zk_error_name(rc)));
        log::info(sub, "topic {}: configs now {}", name, znodes::encode_config(configs));
        _need_topics.insert(name);
        retry_soon(std::chrono::milliseconds(0));
        return cb(errors::none, "");
    }
    cb(errors::request_timed_out, fmt::format("{} kept changing; try again", config_path));
}

}  // namespace sluice::coord
