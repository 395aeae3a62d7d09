#include "broker/configs/alter.h"

#include "broker/configs/config_table.h"
#include "broker/protocol/errors.h"
#include "broker/server.h"
#include "broker/topics.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <memory>
#include <set>

namespace sluice::broker::configs {
namespace {

using proto::error_code;
using refusal = std::optional<std::pair<int16_t, std::string>>;

refusal refuse(error_code e, std::string message) { return std::pair{static_cast<int16_t>(e), std::move(message)}; }

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos) comma = s.size();
        std::string item = s.substr(start, comma - start);
        item.erase(0, item.find_first_not_of(" \t"));
        item.erase(item.find_last_not_of(" \t") + 1);
        if (!item.empty()) out.push_back(std::move(item));
        start = comma + 1;
    }
    return out;
}

refusal check_result(const std::map<std::string, std::string>& configs) {
    if (auto why = validate_topic_configs(configs)) return refuse(error_code::invalid_config, *why);
    return std::nullopt;
}

}  // namespace

coord::coordinator::config_edit_fn replace_all_edit(std::vector<full_entry> entries) {
    return [entries = std::move(entries)](std::map<std::string, std::string>& configs) -> refusal {
        std::map<std::string, std::string> next;
        std::vector<std::string> nulls;
        for (const auto& e : entries) {
            if (!e.value) nulls.push_back(e.name);
            else next[e.name] = *e.value;
        }
        if (!nulls.empty())
            return refuse(error_code::invalid_request,
                          fmt::format("Null value not supported for : {}", fmt::join(nulls, ", ")));
        if (auto r = check_result(next)) return r;
        configs = std::move(next);
        return std::nullopt;
    };
}

std::optional<alter_outcome> precheck_incremental(const std::vector<incremental_entry>& entries) {
    std::set<std::string> names;
    for (const auto& e : entries) {
        if (!names.insert(e.name).second)
            return alter_outcome{static_cast<int16_t>(error_code::invalid_request),
                                 fmt::format("Error due to duplicate config keys : {}", e.name)};
        if (e.op < 0 || e.op > 3)
            return alter_outcome{static_cast<int16_t>(error_code::invalid_request),
                                 fmt::format("Unknown alter config operation type {}", e.op)};
        auto op = static_cast<op_type>(e.op);
        if (op == op_type::remove) continue;
        const auto* def = find_topic_config(e.name);
        if (def == nullptr)
            return alter_outcome{static_cast<int16_t>(error_code::invalid_config),
                                 fmt::format("Unknown topic config name: {}", e.name)};
        if (!e.value)
            return alter_outcome{static_cast<int16_t>(error_code::invalid_request),
                                 fmt::format("Null value not supported for : {}", e.name)};
        if ((op == op_type::append || op == op_type::subtract) && def->type != config_type::list)
            return alter_outcome{static_cast<int16_t>(error_code::invalid_config),
                                 fmt::format("Config value {} is not allowed for config key: {}",
                                             op == op_type::append ? "append" : "subtract", e.name)};
    }
    return std::nullopt;
}

coord::coordinator::config_edit_fn incremental_edit(std::vector<incremental_entry> entries) {
    return [entries = std::move(entries)](std::map<std::string, std::string>& configs) -> refusal {
        auto next = configs;
        for (const auto& e : entries) {
            switch (static_cast<op_type>(e.op)) {
                case op_type::set: next[e.name] = *e.value; break;
                case op_type::remove: next.erase(e.name); break;
                case op_type::append:
                case op_type::subtract: {
                    // The current list: the override, else the topic default (as Kafka).
                    const auto* def = find_topic_config(e.name);
                    auto it = next.find(e.name);
                    auto items = split_list(it != next.end() ? it->second : std::string(def->default_value));
                    for (const auto& v : split_list(*e.value)) {
                        auto at = std::find(items.begin(), items.end(), v);
                        if (static_cast<op_type>(e.op) == op_type::append && at == items.end()) items.push_back(v);
                        if (static_cast<op_type>(e.op) == op_type::subtract && at != items.end()) items.erase(at);
                    }
                    next[e.name] = fmt::format("{}", fmt::join(items, ","));
                    break;
                }
            }
        }
        if (auto r = check_result(next)) return r;
        configs = std::move(next);
        return std::nullopt;
    };
}

alter_outcome alter_broker(int32_t broker_id, const std::string& resource_name, const std::vector<std::string>& keys) {
    if (!resource_name.empty() && resource_name != std::to_string(broker_id))
        return {static_cast<int16_t>(error_code::invalid_request),
                fmt::format("Unexpected broker id, expected {} or empty string, but received {}", broker_id,
                            resource_name)};
    if (keys.empty()) return {};
    return {static_cast<int16_t>(error_code::invalid_request),
            fmt::format("Cannot update these configs dynamically: Set({})", fmt::join(keys, ", "))};
}

void alter_topic(shard& sh, const std::string& topic, coord::coordinator::config_edit_fn edit, bool validate_only,
                 std::function<void(alter_outcome)> done) {
    if (auto why = coord::validate_topic_name(topic))
        return done({static_cast<int16_t>(error_code::invalid_topic_exception), *why});
    if (find_topic(*sh.metadata(), topic) == nullptr)
        return done({static_cast<int16_t>(error_code::unknown_topic_or_partition),
                     fmt::format("Topic {} does not exist.", topic)});
    // The map the edit produced, written on the session thread and read on the shard
    // after the callback was posted (the post orders the two).
    auto written = std::make_shared<std::map<std::string, std::string>>();
    auto wrapped = [edit = std::move(edit), written](std::map<std::string, std::string>& configs) {
        auto r = edit(configs);
        if (!r) *written = configs;
        return r;
    };
    sh.srv().coordinator().alter_topic_configs(
        topic, std::move(wrapped),
        [&sh, topic, written, validate_only, done = std::move(done)](int16_t error, std::string message) mutable {
            sh.post([&sh, topic, written, validate_only, error, message = std::move(message),
                     done = std::move(done)]() mutable {
                if (error != 0) return done({error, std::move(message)});
                if (validate_only) return done({});
                wait_for_metadata(
                    sh, 5000,
                    [&sh, topic, written]() {
                        const auto* t = find_topic(*sh.metadata(), topic);
                        return t == nullptr || t->configs == *written;
                    },
                    [done = std::move(done)](bool) mutable { done({}); });
            });
        },
        validate_only);
}

}  // namespace sluice::broker::configs
