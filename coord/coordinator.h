#pragma once
// ZooKeeper coordination in Kafka's ZK-mode layout (see znodes.h for every znode):
// broker registration, controller election, topic admin, and an always-current
// cluster_snapshot for the reactors.
//
// Concurrency contract: public methods are thread-safe and never block on ZooKeeper,
// except start() (called once from main before serving) and stop(). Every ZooKeeper
// call happens on one session thread owned by the coordinator (synchronous libzookeeper
// API, so only that thread ever waits). Callbacks (on_snapshot, create/delete results)
// run on that session thread: post them to a reactor, do not block in them, and do not
// call stop() from them (it joins that thread).
//
// How brokers learn partition state without a watch per partition: whoever writes
// /brokers/topics/<t>/partitions/<p>/state (the controller today, partition leaders for
// ISR changes later) must, in the same multi, bump the version of the parent
// /brokers/topics/<t>/partitions with a null-data setData. Every broker keeps one
// exists-watch per topic on that znode and re-reads the topic's states when it fires.
// Kafka's own tools read only its children, so the bump is invisible to them.
//
// Controller: all writes are multis starting with check(/controller_epoch, version),
// so a deposed controller cannot write. The controller reconciles desired vs actual
// state after every metadata change (new topics get state znodes, dead brokers leave
// ISRs and lose leadership, marked topics are deleted).
#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "coord/types.h"
#include "coord/uuid.h"

namespace sluice::coord {

// Kafka error codes create_topic/delete_topic report.
namespace errors {
inline constexpr int16_t none = 0;
inline constexpr int16_t unknown_server_error = -1;
inline constexpr int16_t unknown_topic_or_partition = 3;
inline constexpr int16_t request_timed_out = 7;
inline constexpr int16_t invalid_topic_exception = 17;
inline constexpr int16_t topic_already_exists = 36;
inline constexpr int16_t invalid_partitions = 37;
inline constexpr int16_t invalid_replication_factor = 38;
inline constexpr int16_t invalid_replica_assignment = 39;
inline constexpr int16_t invalid_config = 40;
}  // namespace errors

// Kafka's Topic.validate: 1..249 chars of [a-zA-Z0-9._-], not "." or "..".
std::optional<std::string> validate_topic_name(const std::string& name);

class coordinator {
public:
    using snapshot_fn = std::function<void(std::shared_ptr<const cluster_snapshot>)>;
    using admin_fn = std::function<void(int16_t error, std::string message)>;

    coordinator(zk_config cfg, snapshot_fn on_snapshot);
    ~coordinator();  // stop()s
    coordinator(const coordinator&) = delete;
    coordinator& operator=(const coordinator&) = delete;

    // Blocking, once. Connects (bounded by connection_timeout_ms), creates the chroot
    // and Kafka's persistent paths, /cluster/id if absent, registers /brokers/ids/<id>
    // (waiting up to session timeout + margin for a registration left by our own dead
    // previous process), tries to become controller, loads topics and starts watches.
    // Returns nullopt on success, else a message that is fatal for the caller.
    std::optional<std::string> start();
    // Closes the session (our ephemeral znodes go at once). Pending admin callbacks get
    // unknown_server_error. Idempotent.
    void stop();
    // The latest published snapshot (never null after a successful start()).
    std::shared_ptr<const cluster_snapshot> snapshot() const;

    // Any broker may create a topic (Kafka's AdminZkClient path). partitions and
    // replication_factor must be concrete (the broker substitutes its defaults for -1).
    // cb runs after the ZooKeeper write, not after the controller created leaders:
    // watch snapshots for that.
    // validate_only (CreateTopics v1+): run every check, write nothing.
    void create_topic(std::string name, int32_t partitions, int16_t replication_factor,
                      std::map<std::string, std::string> configs, admin_fn cb, bool validate_only = false);
    // CreateTopics with explicit replica assignments (partition -> replicas), checked as
    // Kafka does (ids 0..n-1, same replica count, no duplicates; like Kafka's ZK path,
    // unknown broker ids are allowed) -> invalid_replica_assignment.
    void create_topic(std::string name, std::map<int32_t, std::vector<int32_t>> assignment,
                      std::map<std::string, std::string> configs, admin_fn cb, bool validate_only = false);
    // Marks the topic for deletion (/admin/delete_topics/<t>); the controller deletes.
    void delete_topic(std::string name, admin_fn cb);
    // CreatePartitions: grows the topic to `total` partitions (Kafka's AdminZkClient
    // addPartitions): the new partitions get `assignments` (one replica list each, checked
    // like Kafka: same replication factor, live brokers, no duplicates) or Kafka's
    // round-robin continued from partition 0's first replica. cb runs after the
    // ZooKeeper write; the controller then elects leaders (watch snapshots).
    void add_partitions(std::string name, int32_t total, std::optional<std::vector<std::vector<int32_t>>> assignments,
                        admin_fn cb, bool validate_only = false);

    // Changes a topic's config overrides as Kafka's AdminZkClient.changeTopicConfig does:
    // reads /config/topics/<t>, lets `edit` change the map (return {error, message} to
    // refuse: nothing is written), then in one multi sets the znode (compare-and-set on
    // its version; retried on a race) and creates /config/changes/config_change_<seq>
    // {"version":2,"entity_path":"topics/<t>"}. unknown_topic_or_partition when
    // /brokers/topics/<t> does not exist. `edit` runs on the session thread: it must
    // not touch reactor state (capture by value). The next snapshot carries the change.
    // validate_only: run edit, write nothing.
    using config_edit_fn = std::function<std::optional<std::pair<int16_t, std::string>>(
        std::map<std::string, std::string>& configs)>;
    void alter_topic_configs(std::string name, config_edit_fn edit, admin_fn cb, bool validate_only = false);

    // A partition leader changes its ISR, as Kafka's Partition.expandIsr/shrinkIsr do in
    // ZooKeeper mode: `next` (same leader and leader_epoch, the new isr) is written to
    // /brokers/topics/<t>/partitions/<p>/state only if that znode still has version
    // next.zk_version (compare-and-set: a controller that moved leadership in between
    // wins), together with the parent bump that tells every broker to re-read the topic.
    // cb(ok) runs on the session thread; on success the next snapshot carries the state.
    using isr_fn = std::function<void(bool ok)>;
    void update_isr(std::string topic, int32_t partition, partition_state next, isr_fn cb);

    // Test support: the current ZooKeeper session (id, password), so a test can open
    // a second handle on it and close it, which expires ours.
    struct session_credentials {
        int64_t id = 0;
        std::array<char, 16> password{};
    };
    session_credentials session_for_test() const;
    bool is_controller() const;

    class impl;

private:
    std::unique_ptr<impl> _impl;
};

}  // namespace sluice::coord
