// FindCoordinator (key 10): the leader of the group's __consumer_offsets partition.
// v0-3 ask for one key, v4+ for a batch (coordinator_keys). The first request for a
// group creates __consumer_offsets (as Kafka does) with offsets.topic.num.partitions
// and offsets.topic.replication.factor; the answer waits briefly for the new partition's
// leader and is COORDINATOR_NOT_AVAILABLE until there is one. When fewer brokers are
// alive than the replication factor, the topic cannot be created: the broker says so
// once in its log, and clients keep getting COORDINATOR_NOT_AVAILABLE.
// Transaction coordinators (key type 1) do not exist: Sluice has no transactions. The
// answer is TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which librdkafka and kafkajs treat as
// fatal, so init_transactions() fails at once naming the reason; COORDINATOR_NOT_AVAILABLE
// would be retried until the caller's timeout (and forever by a client that has none).
#include "base/log.h"
#include "broker/configs/config_table.h"
#include "broker/groups/hash.h"
#include "broker/groups/group_manager.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"

#include <atomic>

namespace sluice::broker {
namespace {

using proto::error_code;
constexpr int64_t wait_for_leader_ms = 2000;

struct lookup {
    int16_t error = 0;
    std::string message;
    int32_t node_id = -1;
    std::string host;
    int32_t port = -1;
};

void create_offsets_topic(shard& sh) {
    server& srv = sh.srv();
    const auto& cfg = srv.config();
    size_t alive = sh.metadata()->brokers.size();
    if (alive < static_cast<size_t>(std::max<int16_t>(cfg.offsets_topic_replication_factor, 1))) {
        static std::atomic<bool> logged{false};
        if (!logged.exchange(true))
            log::error("groups",
                       "offsets.topic.replication.factor={} but only {} broker{} alive: __consumer_offsets cannot "
                       "be created and consumer groups cannot work; set offsets.topic.replication.factor={} for {}",
                       cfg.offsets_topic_replication_factor, alive, alive == 1 ? " is" : "s are", std::max<size_t>(alive, 1),
                       alive <= 1 ? "a single broker" : "this cluster (or start more brokers)");
        return;
    }
    std::string name(groups::offsets_topic);
    if (!srv.mark_topic_creating(name)) return;
    log::info("groups", "creating {} ({} partitions, replication factor {})", name, cfg.offsets_topic_num_partitions,
              cfg.offsets_topic_replication_factor);
    srv.coordinator().create_topic(
        name, cfg.offsets_topic_num_partitions, cfg.offsets_topic_replication_factor,
        {{"cleanup.policy", "compact"},
         {"compression.type", "producer"},
         {"segment.bytes",
          std::to_string(configs::broker_long(cfg.raw, "offsets.topic.segment.bytes", 104857600))}},
        [&srv, name](int16_t error, std::string message) {
            if (error != 0 && error != coord::errors::topic_already_exists)
                log::error("groups", "creating {} failed: {} {}", name, error, message);
            srv.unmark_topic_creating(name);
        });
}

bool offsets_topic_has_leader(shard& sh, int32_t p) {
    const auto* t = find_topic(*sh.metadata(), std::string(groups::offsets_topic));
    if (t == nullptr) return false;
    auto st = t->partitions.find(p);
    return st != t->partitions.end() && st->second.leader >= 0;
}

lookup find_leader(shard& sh, const std::string& key, const std::string& listener) {
    const auto& snap = *sh.metadata();
    int32_t p = groups::offsets_partition_for(key, groups::offsets_partition_count(snap, sh.srv().config()));
    const auto* t = find_topic(snap, std::string(groups::offsets_topic));
    if (t == nullptr || !t->partitions.count(p) || t->partitions.at(p).leader < 0)
        return {static_cast<int16_t>(error_code::coordinator_not_available), "The coordinator is not available."};
    auto b = snap.brokers.find(t->partitions.at(p).leader);
    if (b == snap.brokers.end())
        return {static_cast<int16_t>(error_code::coordinator_not_available), "The coordinator is not available."};
    auto ep = endpoint_for(b->second, listener);
    if (!ep) return {static_cast<int16_t>(error_code::coordinator_not_available), "The coordinator has no such listener."};
    return {0, "", b->first, ep->host, ep->port};
}

lookup check_key(int8_t key_type, const std::string& key) {
    if (key_type == 1)
        return {static_cast<int16_t>(error_code::transactional_id_authorization_failed),
                "Transactions are not supported by this broker (Sluice)."};
    if (key_type != 0) return {static_cast<int16_t>(error_code::invalid_request), "Unknown key type."};
    if (key.empty()) return {static_cast<int16_t>(error_code::invalid_request), "Empty group id."};
    return {};
}

void respond(request_ptr req, const std::vector<std::string>& keys, int8_t key_type) {
    shard& sh = req->sh();
    proto::find_coordinator_response resp;
    std::vector<lookup> found;
    for (const auto& k : keys) {
        lookup l = check_key(key_type, k);
        found.push_back(l.error != 0 ? l : find_leader(sh, k, req->listener()));
    }
    if (req->version() >= 4) {
        for (size_t i = 0; i < keys.size(); ++i)
            resp.coordinators.push_back({keys[i], found[i].node_id, found[i].host, found[i].port, found[i].error,
                                         found[i].error ? std::optional<std::string>(found[i].message) : std::nullopt});
    } else {
        const auto& l = found.front();
        resp.error_code = l.error;
        resp.error_message = l.error ? std::optional<std::string>(l.message) : std::nullopt;
        resp.node_id = l.node_id;
        resp.host = l.host;
        resp.port = l.port;
    }
    req->respond(resp);
}

}  // namespace

void handle_find_coordinator(request_ptr req) {
    auto body = std::make_shared<proto::find_coordinator_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed FindCoordinator request");
    }
    std::vector<std::string> keys = req->version() >= 4 ? body->coordinator_keys : std::vector<std::string>{body->key};
    int8_t key_type = body->key_type;
    shard& sh = req->sh();
    if (key_type != 0 || keys.empty()) return respond(req, keys, key_type);
    if (find_topic(*sh.metadata(), std::string(groups::offsets_topic)) == nullptr) create_offsets_topic(sh);
    // Wait (bounded, timer-driven) until every asked-for partition has a leader: a new
    // __consumer_offsets gets one within moments of its creation.
    auto parts = std::make_shared<std::vector<int32_t>>();
    for (const auto& k : keys)
        if (!k.empty())
            parts->push_back(groups::offsets_partition_for(
                k, groups::offsets_partition_count(*sh.metadata(), sh.srv().config())));
    auto ready = [&sh, parts]() {
        for (int32_t p : *parts)
            if (!offsets_topic_has_leader(sh, p)) return false;
        return true;
    };
    if (ready()) return respond(req, keys, key_type);
    bool creatable = sh.metadata()->brokers.size() >=
                     static_cast<size_t>(std::max<int16_t>(sh.srv().config().offsets_topic_replication_factor, 1));
    if (!creatable && find_topic(*sh.metadata(), std::string(groups::offsets_topic)) == nullptr)
        return respond(req, keys, key_type);
    wait_for_metadata(sh, wait_for_leader_ms, ready, [req, keys, key_type](bool) { respond(req, keys, key_type); });
}

}  // namespace sluice::broker
