// DescribeConfigs (key 32), any broker. TOPIC resources: every topic config with its
// effective value and source (override, server.properties, default); BROKER: this
// broker's server.properties keys ("" is the cluster-wide dynamic default, which Sluice
// does not have: an empty list, as Kafka answers with none set). Synonyms from v1 when
// asked, type (and documentation when asked) from v3; v0 has is_default instead of
// the source. The answer comes from this shard's snapshot: no ZooKeeper round trip.
#include "base/log.h"
#include "broker/configs/config_table.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"

namespace sluice::broker {
namespace {

using proto::error_code;
using resp_t = proto::describe_configs_response;

resp_t::describe_configs_resource_result to_wire(const configs::described_config& d, bool synonyms, bool docs) {
    resp_t::describe_configs_resource_result out;
    out.name = d.name;
    out.value = d.value;
    out.read_only = d.read_only;
    out.is_default = d.source == configs::config_source::default_config;
    out.config_source = static_cast<int8_t>(d.source);
    out.is_sensitive = d.sensitive;
    out.config_type = static_cast<int8_t>(d.type);
    out.documentation = docs ? std::optional<std::string>(std::string(d.doc)) : std::nullopt;
    if (synonyms)
        for (const auto& s : d.synonyms) out.synonyms.push_back({s.name, s.value, static_cast<int8_t>(s.source)});
    return out;
}

resp_t::describe_configs_result describe_one(shard& sh, const proto::describe_configs_request::describe_configs_resource& r,
                                             bool synonyms, bool docs) {
    resp_t::describe_configs_result out;
    out.resource_type = r.resource_type;
    out.resource_name = r.resource_name;
    out.error_message = std::nullopt;
    auto fail = [&](error_code e, std::string msg) {
        out.error_code = static_cast<int16_t>(e);
        out.error_message = std::move(msg);
        return out;
    };
    const auto& cfg = sh.srv().config();
    std::vector<configs::described_config> described;
    if (r.resource_type == configs::resource_topic) {
        if (auto why = coord::validate_topic_name(r.resource_name)) return fail(error_code::invalid_topic_exception, *why);
        const auto* t = find_topic(*sh.metadata(), r.resource_name);
        if (t == nullptr)
            return fail(error_code::unknown_topic_or_partition, fmt::format("Topic {} does not exist.", r.resource_name));
        described = configs::describe_topic(t->configs, cfg.raw, r.configuration_keys);
    } else if (r.resource_type == configs::resource_broker) {
        if (!r.resource_name.empty()) {
            if (r.resource_name != std::to_string(cfg.broker_id))
                return fail(error_code::invalid_request,
                            fmt::format("Unexpected broker id, expected {} or empty string, but received {}",
                                        cfg.broker_id, r.resource_name));
            described = configs::describe_broker(cfg.raw, r.configuration_keys);
        }
    } else {
        return fail(error_code::invalid_request, fmt::format("Unsupported resource type {}", r.resource_type));
    }
    for (const auto& d : described) out.configs.push_back(to_wire(d, synonyms, docs));
    return out;
}

}  // namespace

void handle_describe_configs(request_ptr req) {
    proto::describe_configs_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("describe_configs", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed DescribeConfigs request");
    }
    resp_t resp;
    bool synonyms = req->version() >= 1 && body.include_synonyms;
    bool docs = req->version() >= 3 && body.include_documentation;
    for (const auto& res : body.resources) resp.results.push_back(describe_one(req->sh(), res, synonyms, docs));
    req->respond(resp);
}

}  // namespace sluice::broker
