// AlterConfigs (key 33), any broker (it writes ZooKeeper directly, as Kafka's ZK-mode
// brokers do). The entries of a TOPIC resource replace all of the topic's overrides;
// every value is checked against the config table first (INVALID_CONFIG, nothing
// written). BROKER resources: no dynamic broker configs (see configs/alter.h).
// Each resource is answered on its own; the response goes out when all are done.
#include "base/log.h"
#include "broker/configs/alter.h"
#include "broker/configs/config_table.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"

namespace sluice::broker {
namespace {

using resp_t = proto::alter_configs_response;

struct alter_state {
    request_ptr req;
    resp_t resp;
    size_t pending = 1;  // released at the end of the handler
    void one_done() {
        if (--pending == 0) req->respond(resp);
    }
};

}  // namespace

void handle_alter_configs(request_ptr req) {
    proto::alter_configs_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("alter_configs", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed AlterConfigs request");
    }
    shard& sh = req->sh();
    auto state = std::make_shared<alter_state>();
    state->req = req;
    for (size_t i = 0; i < body.resources.size(); ++i) {
        const auto& res = body.resources[i];
        resp_t::alter_configs_resource_response out;
        out.resource_type = res.resource_type;
        out.resource_name = res.resource_name;
        out.error_message = std::nullopt;
        auto set = [](resp_t::alter_configs_resource_response& o, const configs::alter_outcome& oc) {
            o.error_code = oc.error_code;
            o.error_message = oc.message;
        };
        if (res.resource_type == configs::resource_broker) {
            std::vector<std::string> keys;
            for (const auto& c : res.configs) keys.push_back(c.name);
            set(out, configs::alter_broker(sh.srv().config().broker_id, res.resource_name, keys));
            state->resp.responses.push_back(std::move(out));
            continue;
        }
        if (res.resource_type != configs::resource_topic) {
            set(out, {static_cast<int16_t>(proto::error_code::invalid_request),
                      fmt::format("Unsupported resource type {}", res.resource_type)});
            state->resp.responses.push_back(std::move(out));
            continue;
        }
        std::vector<configs::full_entry> entries;
        for (const auto& c : res.configs) entries.push_back({c.name, c.value});
        state->resp.responses.push_back(std::move(out));
        ++state->pending;
        configs::alter_topic(sh, res.resource_name, configs::replace_all_edit(std::move(entries)), body.validate_only,
                             [state, i, set](configs::alter_outcome oc) {
                                 set(state->resp.responses[i], oc);
                                 state->one_done();
                             });
    }
    state->one_done();
}

}  // namespace sluice::broker
