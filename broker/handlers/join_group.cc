// JoinGroup (key 11). Forwarded to the shard coordinating the group; the answer is
// parked in the group until the rebalance's join phase completes (all members rejoined,
// the rebalance timeout, or group.initial.rebalance.delay.ms for a new group), then sent
// back on the connection's shard. v4+ new members first get MEMBER_ID_REQUIRED (KIP-394).
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {

namespace {

proto::join_group_response to_response(groups::join_result r, int16_t version) {
    proto::join_group_response resp;
    resp.error_code = r.error;
    resp.generation_id = r.generation_id;
    resp.protocol_type = std::move(r.protocol_type);
    // Before v7 the protocol name is not nullable: "" stands for none.
    resp.protocol_name = version >= 7 ? std::move(r.protocol_name) : r.protocol_name.value_or("");
    resp.leader = std::move(r.leader);
    resp.skip_assignment = r.skip_assignment;
    resp.member_id = std::move(r.member_id);
    for (auto& m : r.members)
        resp.members.push_back({std::move(m.member_id), std::move(m.group_instance_id), std::move(m.metadata)});
    return resp;
}

}  // namespace

void handle_join_group(request_ptr req) {
    auto body = std::make_shared<proto::join_group_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed JoinGroup request");
    }
    int16_t version = req->version();
    groups::join_request jr;
    jr.member_id = body->member_id;
    jr.group_instance_id = body->group_instance_id;
    jr.client_id = req->header().client_id.value_or("");
    jr.client_host = "/" + req->peer().substr(0, req->peer().rfind(':'));
    jr.session_timeout_ms = body->session_timeout_ms;
    // v0 has no rebalance timeout: Kafka uses the session timeout.
    jr.rebalance_timeout_ms = version >= 1 ? body->rebalance_timeout_ms : body->session_timeout_ms;
    jr.protocol_type = body->protocol_type;
    for (auto& p : body->protocols) jr.protocols.push_back({p.name, p.metadata});
    jr.require_known_member_id = version >= 4;
    jr.supports_skip_assignment = version >= 9;

    shard& sh = req->sh();
    int32_t p = groups::coordinator_partition(sh, body->group_id);
    auto reply = groups::reply_on_origin<proto::join_group_response>(req);
    sh.srv().invoke_on(
        sh.id(), sh.srv().shard_of(groups::offsets_topic, p),
        [p, group_id = body->group_id, jr = std::move(jr), reply, version](shard& owner) mutable {
            owner.groups().join(p, group_id, std::move(jr),
                                [reply, version](groups::join_result res) { reply(to_response(std::move(res), version)); });
            return 0;
        },
        [](int) {});
}

}  // namespace sluice::broker
