// IncrementalAlterConfigs (key 44), any broker: SET / DELETE / APPEND / SUBTRACT on
// single keys of a TOPIC resource (APPEND/SUBTRACT only for list configs such as
// cleanup.policy), applied to the overrides read from ZooKeeper and validated as a
// whole before anything is written. BROKER resources: see configs/alter.h.
#include "base/log.h"
#include "broker/configs/alter.h"
#include "broker/configs/config_table.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"

namespace sluice::broker {
namespace {

using resp_t = proto::incremental_alter_configs_response;

struct alter_state {
    request_ptr req;
    resp_t resp;
    size_t pending = 1;  // released at the end of the handler
    void one_done() {
        if (--pending == 0) req->respond(resp);
    }
};

void set_outcome(resp_t::alter_configs_resource_response& o, const configs::alter_outcome& oc) {
    o.error_code = oc.error_code;
    o.error_message = oc.message;
}

}  // namespace

void handle_incremental_alter_configs(request_ptr req) {
    proto::incremental_alter_configs_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("incremental_alter_configs", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed IncrementalAlterConfigs request");
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
        std::vector<configs::incremental_entry> entries;
        std::vector<std::string> keys;
        for (const auto& c : res.configs) {
            entries.push_back({c.name, c.config_operation, c.value});
            keys.push_back(c.name);
        }
        if (res.resource_type == configs::resource_broker) {
            set_outcome(out, configs::alter_broker(sh.srv().config().broker_id, res.resource_name, keys));
        } else if (res.resource_type != configs::resource_topic) {
            set_outcome(out, {static_cast<int16_t>(proto::error_code::invalid_request),
                              fmt::format("Unsupported resource type {}", res.resource_type)});
        } else if (auto refused = configs::precheck_incremental(entries)) {
            set_outcome(out, *refused);
        } else {
            state->resp.responses.push_back(std::move(out));
            ++state->pending;
            configs::alter_topic(sh, res.resource_name, configs::incremental_edit(std::move(entries)),
                                 body.validate_only, [state, i](configs::alter_outcome oc) {
                                     set_outcome(state->resp.responses[i], oc);
                                     state->one_done();
                                 });
            continue;
        }
        state->resp.responses.push_back(std::move(out));
    }
    state->one_done();
}

}  // namespace sluice::broker
