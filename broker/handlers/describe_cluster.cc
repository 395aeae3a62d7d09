// DescribeCluster (key 60): brokers on the client's listener, cluster id, controller.
#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/acl.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"

namespace sluice::broker {

void handle_describe_cluster(request_ptr req) {
    proto::describe_cluster_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("describe_cluster", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed DescribeCluster request");
    }
    proto::describe_cluster_response resp;
    const auto snap = req->sh().metadata();
    if (req->version() >= 1 && body.endpoint_type != 1) {
        resp.error_code = static_cast<int16_t>(proto::error_code::unsupported_endpoint_type);
        resp.error_message = fmt::format("The request was sent to an endpoint of type BROKER, but we wanted an "
                                         "endpoint of type {}",
                                         body.endpoint_type == 2 ? "CONTROLLER" : "UNKNOWN");
        return req->respond(resp);
    }
    resp.cluster_id = snap->cluster_id;
    resp.controller_id = snap->controller_id;
    if (body.include_cluster_authorized_operations) resp.cluster_authorized_operations = proto::cluster_operations;
    for (const auto& [id, b] : snap->brokers) {
        auto ep = endpoint_for(b, req->listener());
        if (!ep) continue;
        proto::describe_cluster_response::describe_cluster_broker db;
        db.broker_id = id;
        db.host = ep->host;
        db.port = ep->port;
        if (!b.rack.empty()) db.rack = b.rack;
        resp.brokers.push_back(std::move(db));
    }
    req->respond(resp);
}

}  // namespace sluice::broker
