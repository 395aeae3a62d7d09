// LeaveGroup (key 13). v0-2 name one member; v3+ a batch of members, identified by
// member id or (static members) group.instance.id, each with its own error.
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {

void handle_leave_group(request_ptr req) {
    auto body = std::make_shared<proto::leave_group_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed LeaveGroup request");
    }
    std::vector<std::pair<std::string, std::optional<std::string>>> members;
    if (req->version() >= 3) {
        for (const auto& m : body->members) members.emplace_back(m.member_id, m.group_instance_id);
    } else {
        members.emplace_back(body->member_id, std::nullopt);
    }
    shard& sh = req->sh();
    int32_t p = groups::coordinator_partition(sh, body->group_id);
    groups::on_coordinator(
        sh, p, [p, body, members](groups::group_manager& gm) { return gm.leave(p, body->group_id, members); },
        [req, body, members](std::vector<int16_t> errors) {
            proto::leave_group_response resp;
            if (req->version() < 3) {
                resp.error_code = errors.empty() ? 0 : errors.front();
                return req->respond(resp);
            }
            // Group-level failures (coordinator, unknown group) go in the top-level error.
            bool group_level = !errors.empty() && std::all_of(errors.begin(), errors.end(), [&](int16_t e) {
                return e == errors.front() && (e == 14 || e == 15 || e == 16 || e == 24);
            });
            if (group_level) {
                resp.error_code = errors.front();
                return req->respond(resp);
            }
            for (size_t i = 0; i < members.size(); ++i)
                resp.members.push_back({members[i].first, members[i].second, errors[i]});
            req->respond(resp);
        });
}

}  // namespace sluice::broker
