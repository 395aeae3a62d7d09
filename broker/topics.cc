#include "broker/topics.h"

#include "base/log.h"
#include "broker/server.h"
#include "coord/coordinator.h"

namespace sluice::broker {

const coord::topic_info* find_topic(const coord::cluster_snapshot& snap, const std::string& name) {
    auto it = snap.topics.find(name);
    if (it == snap.topics.end() || it->second->marked_for_deletion) return nullptr;
    return it->second.get();
}

const coord::topic_info* find_topic_by_id(const coord::cluster_snapshot& snap, const coord::uuid& id) {
    for (const auto& [name, t] : snap.topics)
        if (t->topic_id == id && !t->marked_for_deletion) return t.get();
    return nullptr;
}

std::optional<coord::endpoint> endpoint_for(const coord::broker_info& broker, const std::string& listener_name) {
    for (const auto& e : broker.endpoints)
        if (e.listener_name == listener_name) return e;
    return std::nullopt;
}

leadership check_leader(shard& sh, const std::string& topic, int32_t partition) {
    const auto* t = find_topic(*sh.metadata(), topic);
    if (t == nullptr || !t->assignment.count(partition)) return leadership::unknown_partition;
    auto st = t->partitions.find(partition);
    if (st == t->partitions.end() || st->second.leader < 0) return leadership::no_leader;
    return st->second.leader == sh.srv().config().broker_id ? leadership::leader : leadership::not_leader;
}

bool auto_create_topic(shard& sh, const std::string& name) {
    if (coord::validate_topic_name(name)) return false;
    const auto& cfg = sh.srv().config();
    server& srv = sh.srv();
    if (!srv.mark_topic_creating(name)) return true;
    log::info("topics", "auto-creating topic {} ({} partitions, replication factor {})", name,
              cfg.num_partitions, cfg.default_replication_factor);
    srv.coordinator().create_topic(name, cfg.num_partitions, cfg.default_replication_factor, {},
                                   [&srv, name](int16_t error, std::string message) {
                                       if (error != 0 && error != coord::errors::topic_already_exists)
                                           log::warn("topics", "auto-creating topic {} failed: {} {}", name,
                                                     error, message);
                                       srv.unmark_topic_creating(name);
                                   });
    return true;
}

bool is_internal_topic(const std::string& name) {
    return name == "__consumer_offsets" || name == "__transaction_state";
}

}  // namespace sluice::broker

namespace sluice::broker {
namespace {
void wait_step(shard& sh, std::chrono::steady_clock::time_point deadline, std::function<bool()> cond,
               std::function<void(bool)> done) {
    if (cond()) return done(true);
    if (std::chrono::steady_clock::now() >= deadline) return done(false);
    sh.reactor().add_timer(std::chrono::milliseconds(10), [&sh, deadline, cond = std::move(cond),
                                                           done = std::move(done)]() mutable {
        wait_step(sh, deadline, std::move(cond), std::move(done));
    });
}
}  // namespace

void wait_for_metadata(shard& sh, int64_t timeout_ms, std::function<bool()> cond, std::function<void(bool)> done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(std::max<int64_t>(timeout_ms, 0));
    wait_step(sh, deadline, std::move(cond), std::move(done));
}
}  // namespace sluice::broker
