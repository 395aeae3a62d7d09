// DeleteGroups (key 42). Only Empty groups can be deleted (NON_EMPTY_GROUP otherwise);
// the group's metadata and every committed offset get tombstones in __consumer_offsets
// before the answer.
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {

void handle_delete_groups(request_ptr req) {
    auto body = std::make_shared<proto::delete_groups_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed DeleteGroups request");
    }
    struct gather {
        request_ptr req;
        proto::delete_groups_response resp;
        size_t pending = 0;
    };
    auto state = std::make_shared<gather>();
    state->req = req;
    state->pending = body->groups_names.size();
    for (const auto& g : body->groups_names) state->resp.results.push_back({g, 0});
    if (state->pending == 0) return req->respond(state->resp);
    shard& sh = req->sh();
    for (size_t i = 0; i < body->groups_names.size(); ++i) {
        std::string id = body->groups_names[i];
        int32_t p = groups::coordinator_partition(sh, id);
        groups::on_coordinator(
            sh, p, [p, id](groups::group_manager& gm) { return gm.delete_group(p, id); },
            [state, i](int16_t error) {
                state->resp.results[i].error_code = error;
                if (--state->pending == 0) state->req->respond(state->resp);
            });
    }
}

}  // namespace sluice::broker
