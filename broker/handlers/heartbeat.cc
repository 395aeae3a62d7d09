// Heartbeat (key 12). Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to
// rejoin.
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {

void handle_heartbeat(request_ptr req) {
    auto body = std::make_shared<proto::heartbeat_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed Heartbeat request");
    }
    shard& sh = req->sh();
    int32_t p = groups::coordinator_partition(sh, body->group_id);
    groups::on_coordinator(
        sh, p,
        [p, body](groups::group_manager& gm) {
            return gm.heartbeat(p, body->group_id, body->generation_id, body->member_id, body->group_instance_id);
        },
        [req](int16_t error) {
            proto::heartbeat_response resp;
            resp.error_code = error;
            req->respond(resp);
        });
}

}  // namespace sluice::broker
