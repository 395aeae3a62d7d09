// DescribeGroups (key 15). Each group is described by its coordinator shard; a group
// this broker does not coordinate gets NOT_COORDINATOR, an unknown one state "Dead".
// Members' metadata and assignments are only shown while the group is Stable (Kafka).
// Authorized operations, when asked for, are everything (no authorizer; protocol/acl.h).
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/acl.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {

void handle_describe_groups(request_ptr req) {
    auto body = std::make_shared<proto::describe_groups_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed DescribeGroups request");
    }
    struct gather {
        request_ptr req;
        proto::describe_groups_response resp;
        size_t pending = 0;
    };
    auto state = std::make_shared<gather>();
    state->req = req;
    state->resp.groups.resize(body->groups.size());
    state->pending = body->groups.size();
    if (state->pending == 0) return req->respond(state->resp);
    shard& sh = req->sh();
    bool operations = req->version() >= 3 && body->include_authorized_operations;
    for (size_t i = 0; i < body->groups.size(); ++i) {
        std::string id = body->groups[i];
        int32_t p = groups::coordinator_partition(sh, id);
        groups::on_coordinator(
            sh, p, [p, id](groups::group_manager& gm) { return gm.describe(p, id); },
            [state, i, operations](proto::describe_groups_response::described_group g) {
                if (operations && g.error_code == 0) g.authorized_operations = proto::group_operations;
                state->resp.groups[i] = std::move(g);
                if (--state->pending == 0) state->req->respond(state->resp);
            });
    }
}

}  // namespace sluice::broker
