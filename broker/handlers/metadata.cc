// Metadata (key 3): brokers (advertised endpoints of the client's listener), the cluster
// id, the controller, and topics with leaders, replicas and ISRs from ZooKeeper.
// Unknown topics are auto-created when auto.create.topics.enable is set and the
// request allows it (v4+ flag; implied below v4), answering LEADER_NOT_AVAILABLE
// meanwhile, as Kafka does. Authorized operations, when asked for, are everything
// (no authorizer; see protocol/acl.h).
#include "broker/handlers/handlers.h"
#include "broker/protocol/acl.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"
#include "coord/coordinator.h"

#include "base/log.h"

namespace sluice::broker {
namespace {

using proto::error_code;

proto::metadata_response::metadata_response_topic describe_topic(const coord::cluster_snapshot& snap,
                                                                 const coord::topic_info& t) {
    proto::metadata_response::metadata_response_topic out;
    out.name = t.name;
    out.topic_id = t.topic_id;
    out.is_internal = is_internal_topic(t.name);
    for (const auto& [index, replicas] : t.assignment) {
        proto::metadata_response::metadata_response_partition p;
        p.partition_index = index;
        p.replica_nodes = replicas;
        for (int32_t r : replicas)
            if (!snap.brokers.count(r)) p.offline_replicas.push_back(r);
        auto st = t.partitions.find(index);
        if (st == t.partitions.end() || st->second.leader < 0) {
            p.error_code = static_cast<int16_t>(error_code::leader_not_available);
            p.leader_id = -1;
            if (st != t.partitions.end()) p.isr_nodes = st->second.isr;
        } else {
            p.leader_id = st->second.leader;
            p.leader_epoch = st->second.leader_epoch;
            p.isr_nodes = st->second.isr;
            if (!snap.brokers.count(p.leader_id))
                p.error_code = static_cast<int16_t>(error_code::leader_not_available);
        }
        out.partitions.push_back(std::move(p));
    }
    return out;
}

}  // namespace

void handle_metadata(request_ptr req) {
    proto::metadata_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("metadata", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed Metadata request");
    }
    shard& sh = req->sh();
    const auto snap = sh.metadata();
    const auto& cfg = sh.srv().config();
    proto::metadata_response resp;
    for (const auto& [id, b] : snap->brokers) {
        auto ep = endpoint_for(b, req->listener());
        if (!ep) continue;
        proto::metadata_response::metadata_response_broker mb;
        mb.node_id = id;
        mb.host = ep->host;
        mb.port = ep->port;
        if (!b.rack.empty()) mb.rack = b.rack;
        resp.brokers.push_back(std::move(mb));
    }
    resp.cluster_id = snap->cluster_id;
    resp.controller_id = snap->controller_id;
    if (req->version() >= 8 && req->version() <= 10 && body.include_cluster_authorized_operations)
        resp.cluster_authorized_operations = proto::cluster_operations;
    bool topic_operations = req->version() >= 8 && body.include_topic_authorized_operations;
    auto finish = [&]() {
        if (topic_operations)
            for (auto& t : resp.topics) t.topic_authorized_operations = proto::topic_operations;
        req->respond(resp);
    };

    // v0: an empty list means all topics; v1+: null means all.
    bool all = !body.topics || (req->version() == 0 && body.topics->empty());
    if (all) {
        for (const auto& [name, t] : snap->topics)
            if (!t->marked_for_deletion) resp.topics.push_back(describe_topic(*snap, *t));
        return finish();
    }
    bool may_create = cfg.auto_create_topics_enable && (req->version() < 4 || body.allow_auto_topic_creation);
    for (const auto& wanted : *body.topics) {
        const coord::topic_info* t = nullptr;
        if (wanted.name) t = find_topic(*snap, *wanted.name);
        else t = find_topic_by_id(*snap, wanted.topic_id);
        if (t != nullptr) {
            resp.topics.push_back(describe_topic(*snap, *t));
            continue;
        }
        proto::metadata_response::metadata_response_topic missing;
        missing.name = wanted.name;
        missing.topic_id = wanted.topic_id;
        if (!wanted.name) {
            missing.error_code = static_cast<int16_t>(error_code::unknown_topic_id);
        } else if (coord::validate_topic_name(*wanted.name)) {
            missing.error_code = static_cast<int16_t>(error_code::invalid_topic_exception);
        } else if (may_create && auto_create_topic(sh, *wanted.name)) {
            missing.error_code = static_cast<int16_t>(error_code::leader_not_available);
        } else {
            missing.error_code = static_cast<int16_t>(error_code::unknown_topic_or_partition);
        }
        resp.topics.push_back(std::move(missing));
    }
    finish();
}

}  // namespace sluice::broker
