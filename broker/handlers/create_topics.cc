// CreateTopics (key 19), controller only (NOT_CONTROLLER elsewhere, as in Kafka's ZK
// mode; clients send it to Metadata's controller_id). The topic is written to
// ZooKeeper; the answer waits (up to timeout_ms) until every partition has a leader,
// so a client can produce right after it. Explicit replica assignments are taken as
// Kafka's ZooKeeper mode takes them (num_partitions and replication_factor must then be
// -1; brokers in the assignment need not be alive).
#include "base/log.h"
#include "broker/configs/config_table.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"
#include "coord/coordinator.h"

#include <set>

namespace sluice::broker {
namespace {

using proto::error_code;
using topic_result = proto::create_topics_response::creatable_topic_result;

bool topic_has_leaders(const coord::cluster_snapshot& snap, const std::string& name) {
    const auto* t = find_topic(snap, name);
    if (t == nullptr) return false;
    for (const auto& [index, replicas] : t->assignment) {
        auto st = t->partitions.find(index);
        if (st == t->partitions.end() || st->second.leader < 0) return false;
    }
    return true;
}

struct create_state {
    request_ptr req;
    proto::create_topics_response resp;
    size_t pending = 0;
    void one_done() {
        if (--pending == 0) req->respond(resp);
    }
};

// On the shard, after the coordinator's answer: an error (or a validation) is the
// result; a created topic is answered once its leaders are elected (bounded by timeout).
void create_written(shard& sh, std::shared_ptr<create_state> state, size_t index, std::string name, int64_t timeout,
                    bool validate_only, int16_t error, std::string message) {
    auto& res = state->resp.topics[index];
    if (error != 0 || validate_only) {
        res.error_code = error;
        if (error != 0) res.error_message = std::move(message);
        return state->one_done();
    }
    wait_for_metadata(
        sh, timeout, [&sh, name]() { return topic_has_leaders(*sh.metadata(), name); },
        [state, index, &sh, name](bool ready) {
            auto& res = state->resp.topics[index];
            if (ready) {
                if (const auto* t = find_topic(*sh.metadata(), name)) res.topic_id = t->topic_id;
            } else {
                res.error_code = static_cast<int16_t>(error_code::request_timed_out);
                res.error_message = "topic created; leaders not elected within the timeout";
            }
            state->one_done();
        });
}

}  // namespace

void handle_create_topics(request_ptr req) {
    proto::create_topics_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("create_topics", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed CreateTopics request");
    }
    shard& sh = req->sh();
    server& srv = sh.srv();
    const auto& cfg = srv.config();
    auto state = std::make_shared<create_state>();
    state->req = req;
    bool controller = sh.metadata()->controller_id == cfg.broker_id;
    std::multiset<std::string> names;
    for (const auto& t : body.topics) names.insert(t.name);
    state->pending = 1;  // released at the end, so early answers cannot respond twice
    for (size_t i = 0; i < body.topics.size(); ++i) {
        const auto& t = body.topics[i];
        topic_result tr;
        tr.name = t.name;
        tr.error_message = std::nullopt;
        auto fail = [&](error_code e, std::string msg) {
            tr.error_code = static_cast<int16_t>(e);
            tr.error_message = std::move(msg);
            state->resp.topics.push_back(std::move(tr));
        };
        int32_t partitions = t.num_partitions == -1 ? cfg.num_partitions : t.num_partitions;
        int16_t rf = t.replication_factor == -1 ? cfg.default_replication_factor : t.replication_factor;
        if (!controller) { fail(error_code::not_controller, "this broker is not the controller"); continue; }
        if (names.count(t.name) > 1) { fail(error_code::invalid_request, "topic named more than once"); continue; }
        if (auto why = coord::validate_topic_name(t.name)) { fail(error_code::invalid_topic_exception, *why); continue; }
        if (find_topic(*sh.metadata(), t.name)) {
            fail(error_code::topic_already_exists, fmt::format("Topic '{}' already exists.", t.name));
            continue;
        }
        std::map<int32_t, std::vector<int32_t>> assignment;
        if (!t.assignments.empty()) {
            if (t.num_partitions != -1 || t.replication_factor != -1) {
                fail(error_code::invalid_request,
                     "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used "
                     "at the same time.");
                continue;
            }
            bool duplicate = false;
            for (const auto& a : t.assignments) duplicate |= !assignment.emplace(a.partition_index, a.broker_ids).second;
            if (duplicate) { fail(error_code::invalid_replica_assignment, "a partition is assigned twice"); continue; }
            // The coordinator checks the rest as Kafka does (0-based consecutive ids,
            // equal non-empty replica lists without duplicates).
            partitions = static_cast<int32_t>(assignment.size());
            rf = static_cast<int16_t>(assignment.begin()->second.size());
        } else if (partitions <= 0) {
            fail(error_code::invalid_partitions, "number of partitions must be larger than 0");
            continue;
        } else if (rf <= 0) {
            fail(error_code::invalid_replication_factor, "replication factor must be larger than 0");
            continue;
        } else if (static_cast<size_t>(rf) > sh.metadata()->brokers.size()) {
            fail(error_code::invalid_replication_factor,
                 fmt::format("Replication factor: {} larger than available brokers: {}.", rf,
                             sh.metadata()->brokers.size()));
            continue;
        }
        std::map<std::string, std::string> configs;
        std::string null_configs;
        for (const auto& c : t.configs) {
            if (c.value) configs[c.name] = *c.value;
            else null_configs += (null_configs.empty() ? "" : ",") + c.name;
        }
        if (!null_configs.empty()) {
            fail(error_code::invalid_config, "Null value not supported for topic configs: " + null_configs);
            continue;
        }
        if (auto why = configs::validate_topic_configs(configs)) { fail(error_code::invalid_config, *why); continue; }
        tr.num_partitions = partitions;
        tr.replication_factor = rf;
        // v5+: the topic's resulting configs, as DescribeConfigs would list them.
        tr.configs.emplace();
        for (const auto& d : configs::describe_topic(configs, cfg.raw, std::nullopt))
            tr.configs->push_back({d.name, d.value, d.read_only, static_cast<int8_t>(d.source), d.sensitive});
        size_t index = state->resp.topics.size();
        state->resp.topics.push_back(std::move(tr));
        // validate_only: the handler's checks are enough without an assignment; an
        // assignment is checked by the coordinator, which writes nothing then.
        if (body.validate_only && assignment.empty()) continue;
        ++state->pending;
        auto done = [state, index, &sh, timeout = body.timeout_ms, name = t.name,
                     validate_only = body.validate_only](int16_t error, std::string message) {
            sh.post([=, &sh]() { create_written(sh, state, index, name, timeout, validate_only, error, message); });
        };
        if (assignment.empty())
            srv.coordinator().create_topic(t.name, partitions, rf, std::move(configs), std::move(done));
        else
            srv.coordinator().create_topic(t.name, std::move(assignment), std::move(configs), std::move(done),
                                           body.validate_only);
    }
    state->one_done();
}

}  // namespace sluice::broker
