// ListGroups (key 16): the groups this broker coordinates, gathered from every shard.
// v4+ filter by state (case-insensitive, as Kafka), v5+ by type: every group here is a
// "classic" group.
#include "base/log.h"
#include "broker/groups/group_manager.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"

#include <algorithm>
#include <cctype>

namespace sluice::broker {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
    return out;
}

bool wanted(const std::vector<std::string>& filter, std::string_view value) {
    if (filter.empty()) return true;
    return std::any_of(filter.begin(), filter.end(), [&](const std::string& f) { return lower(f) == lower(value); });
}

}  // namespace

void handle_list_groups(request_ptr req) {
    auto body = std::make_shared<proto::list_groups_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed ListGroups request");
    }
    struct gather {
        request_ptr req;
        proto::list_groups_response resp;
        size_t pending = 0;
    };
    auto state = std::make_shared<gather>();
    state->req = req;
    shard& sh = req->sh();
    server& srv = sh.srv();
    state->pending = srv.shard_count();
    int16_t version = req->version();
    for (unsigned target = 0; target < srv.shard_count(); ++target) {
        srv.invoke_on(
            sh.id(), target, [](shard& owner) { return owner.groups().list(); },
            [state, body, version](std::pair<std::vector<groups::group_listing>, int16_t> res) {
                if (res.second != 0) state->resp.error_code = res.second;
                for (auto& g : res.first) {
                    auto st = groups::state_name(g.state);
                    if (version >= 4 && !wanted(body->states_filter, st)) continue;
                    if (version >= 5 && !wanted(body->types_filter, "classic")) continue;
                    state->resp.groups.push_back({g.group_id, g.protocol_type, std::string(st), "classic"});
                }
                if (--state->pending == 0) state->req->respond(state->resp);
            });
    }
}

}  // namespace sluice::broker
