// CreatePartitions, as Kafka's AdminZkClient.addPartitions does it in ZooKeeper mode:
// any broker rewrites /brokers/topics/<t> with the longer assignment (compare-and-set on
// the znode version); the controller's data watch on that znode sees the new partitions
// and writes their state (leader, ISR) like those of a new topic.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include "base/log.h"
#include "coord/assignment.h"
#include "coord/coordinator_impl.h"
#include "coord/znodes.h"

#include <algorithm>
#include <set>

namespace sluice::coord {
namespace {

constexpr std::string_view sub = "coord";

int16_t zk_to_kafka_error(int rc) {
    return rc == ZCONNECTIONLOSS || rc == ZOPERATIONTIMEOUT ? errors::request_timed_out : errors::unknown_server_error;
}

// Kafka's validateReplicaAssignment for added partitions: one replica list per new
// partition, each as long as the existing ones, no duplicates, known brokers only.
std::optional<std::string> check_new_assignments(const std::vector<std::vector<int32_t>>& lists, int32_t adding,
                                                 size_t replication_factor, const std::set<int32_t>& brokers) {
    if (int32_t(lists.size()) != adding)
        return fmt::format("Increasing the number of partitions by {} but {} assignments provided.", adding,
                           lists.size());
    for (const auto& replicas : lists) {
        if (replicas.empty()) return "Replica assignment must not contain an empty replica list";
        if (std::set<int32_t>(replicas.begin(), replicas.end()).size() != replicas.size())
            return fmt::format("Duplicate brokers not allowed in replica assignment: {}", fmt::join(replicas, ", "));
        if (replicas.size() != replication_factor)
            return fmt::format("Inconsistent replication factor between partitions, partition 0 has {} while "
                               "partitions [{}] have replication factors [{}], respectively.",
                               replication_factor, fmt::join(replicas, ", "), replicas.size());
        for (int32_t b : replicas)
            if (!brokers.count(b)) return fmt::format("Unknown broker(s) in replica assignment: {}.", b);
    }
    return std::nullopt;
}

}  // namespace

void coordinator::impl::add_partitions_now(const add_partitions_request& req, const admin_fn& cb) {
    if (!_connected) return cb(errors::request_timed_out, "not connected to ZooKeeper");
    const std::string path = znodes::topic_path(req.name);
    zk_node node;
    int rc = _zk.get(path, node);
    if (rc == ZNONODE)
        return cb(errors::unknown_topic_or_partition, fmt::format("The topic '{}' does not exist.", req.name));
    if (rc != ZOK) return cb(zk_to_kafka_error(rc), fmt::format("cannot read {}: {}", path, zk_error_name(rc)));
    auto topic = znodes::decode_topic(node.data.value_or(""));
    if (!topic || topic->assignment.empty())
        return cb(errors::unknown_server_error, fmt::format("{} holds a malformed assignment", path));
    if (auto it = _model.topics.find(req.name); it != _model.topics.end() && it->second->marked_for_deletion)
        return cb(errors::invalid_topic_exception, fmt::format("The topic '{}' is queued for deletion.", req.name));
    const int32_t existing = int32_t(topic->assignment.size());
    if (req.total <= existing)
        return cb(errors::invalid_partitions,
                  req.total == existing
                      ? fmt::format("Topic already has {} partitions.", existing)
                      : fmt::format("Topic currently has {} partitions, which is higher than the requested {}.",
                                    existing, req.total));
    const int32_t adding = req.total - existing;
    const auto& first = topic->assignment.begin()->second;
    const size_t rf = first.size();
    const std::set<int32_t> live = live_brokers();
    std::map<int32_t, std::vector<int32_t>> added;
    if (req.assignments) {
        if (auto why = check_new_assignments(*req.assignments, adding, rf, live))
            return cb(errors::invalid_replica_assignment, *why);
        for (int32_t i = 0; i < adding; ++i) added[existing + i] = (*req.assignments)[size_t(i)];
    } else {
        if (rf > live.size())
            return cb(errors::invalid_replication_factor,
                      fmt::format("Replication factor: {} larger than available brokers: {}.", rf, live.size()));
        // Kafka starts the round-robin where partition 0's first replica sits, so the
        // added partitions continue the existing spread.
        std::vector<int32_t> brokers(live.begin(), live.end());
        auto pos = std::find(brokers.begin(), brokers.end(), first.front());
        int32_t start = pos == brokers.end() ? -1 : int32_t(pos - brokers.begin());
        added = assign_replicas(brokers, adding, int32_t(rf), start, existing);
    }
    if (req.validate_only) return cb(errors::none, "");
    auto assignment = topic->assignment;
    assignment.insert(added.begin(), added.end());
    rc = _zk.set(path, znodes::encode_topic(assignment, topic->topic_id), node.stat.version);
    if (rc == ZBADVERSION)
        return cb(errors::request_timed_out, fmt::format("{} changed concurrently; try again", path));
    if (rc != ZOK) return cb(zk_to_kafka_error(rc), fmt::format("cannot write {}: {}", path, zk_error_name(rc)));
    log::info(sub, "topic {}: partitions {} -> {}", req.name, existing, req.total);
    _need_topics.insert(req.name);
    retry_soon(std::chrono::milliseconds(0));
    cb(errors::none, "");
}

bool coordinator::impl::update_isr_now(const std::string& topic, int32_t partition, const partition_state& next) {
    if (!_connected) return false;
    zk_txn tx;
    tx.set(znodes::partition_state_path(topic, partition), znodes::encode_partition_state(next), next.zk_version);
    tx.set(znodes::topic_partitions_path(topic), std::nullopt, -1);  // every broker re-reads the topic
    int rc = tx.commit(_zk);
    if (rc != ZOK) {
        log::info(sub, "{}-{}: ISR change to [{}] not written: {}", topic, partition, fmt::join(next.isr, ","),
                  zk_error_name(rc));
        _need_topics.insert(topic);  // our view is stale: read the state again
        retry_soon(std::chrono::milliseconds(0));
        return false;
    }
    log::info(sub, "{}-{}: leader {} leader_epoch {} changed its ISR to [{}]", topic, partition, next.leader,
              next.leader_epoch, fmt::join(next.isr, ","));
    _need_topics.insert(topic);
    retry_soon(std::chrono::milliseconds(0));
    return true;
}

}  // namespace sluice::coord
