#include "coord/znodes.h"

#include <charconv>
#include <nlohmann/json.hpp>

#include "coord/uuid.h"

namespace sluice::coord::znodes {
namespace {

using json = nlohmann::json;
using ordered = nlohmann::ordered_json;

// parse without exceptions: a discarded value means malformed text.
std::optional<json> parse_object(std::string_view text) {
    json j = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) return std::nullopt;
    return j;
}

std::optional<int64_t> int_field(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<int64_t>();
}

std::optional<std::string> string_field(const json& j, const char* key) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
}

std::optional<std::vector<int32_t>> int_array(const json& j) {
    if (!j.is_array()) return std::nullopt;
    std::vector<int32_t> out;
    for (const auto& e : j) {
        if (!e.is_number_integer()) return std::nullopt;
        out.push_back(e.get<int32_t>());
    }
    return out;
}

std::optional<int32_t> parse_int32(std::string_view s) {
    int32_t v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

// "NAME://host:port" or "NAME://[v6]:port"
std::optional<endpoint> parse_endpoint(std::string_view s) {
    auto sep = s.find("://");
    if (sep == std::string_view::npos || sep == 0) return std::nullopt;
    endpoint ep;
    ep.listener_name = std::string(s.substr(0, sep));
    std::string_view hp = s.substr(sep + 3);
    auto colon = hp.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    auto port = parse_int32(hp.substr(colon + 1));
    if (!port) return std::nullopt;
    std::string_view host = hp.substr(0, colon);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    ep.host = std::string(host);
    ep.port = *port;
    return ep;
}

}  // namespace

const std::vector<std::string>& persistent_paths() {
    static const std::vector<std::string> paths = {
        "/consumers", "/brokers/ids", "/brokers/topics", "/config/changes", "/admin/delete_topics",
        "/brokers/seqid", "/isr_change_notification", "/latest_producer_id_block",
        "/log_dir_event_notification", "/config/topics", "/config/clients", "/config/users",
        "/config/brokers", "/config/ips"};
    return paths;
}

std::string broker_path(int32_t id) { return std::string(broker_ids_path) + "/" + std::to_string(id); }
std::string topic_path(std::string_view t) { return std::string(topics_path) + "/" + std::string(t); }
std::string topic_partitions_path(std::string_view t) { return topic_path(t) + "/partitions"; }
std::string partition_path(std::string_view t, int32_t p) {
    return topic_partitions_path(t) + "/" + std::to_string(p);
}
std::string partition_state_path(std::string_view t, int32_t p) { return partition_path(t, p) + "/state"; }
std::string topic_config_path(std::string_view t) {
    return std::string(config_topics_path) + "/" + std::string(t);
}
std::string delete_topic_path(std::string_view t) {
    return std::string(delete_topics_path) + "/" + std::string(t);
}

std::string encode_cluster_id(std::string_view id) {
    ordered j;
    j["version"] = "1";  // a string here, unlike every other znode
    j["id"] = std::string(id);
    return j.dump();
}

std::optional<std::string> decode_cluster_id(std::string_view text) {
    auto j = parse_object(text);
    if (!j) return std::nullopt;
    return string_field(*j, "id");
}

std::string encode_controller(int32_t broker_id, int64_t timestamp_ms) {
    ordered j;
    j["version"] = 1;
    j["brokerid"] = broker_id;
    j["timestamp"] = std::to_string(timestamp_ms);
    return j.dump();
}

std::optional<int32_t> decode_controller(std::string_view text) {
    auto j = parse_object(text);
    if (!j) return std::nullopt;
    auto id = int_field(*j, "brokerid");
    if (!id) return std::nullopt;
    return int32_t(*id);
}

std::string endpoint_string(const endpoint& ep) {
    bool v6 = ep.host.find(':') != std::string::npos;
    return ep.listener_name + "://" + (v6 ? "[" + ep.host + "]" : ep.host) + ":" + std::to_string(ep.port);
}

std::string encode_broker(const broker_info& b, int64_t timestamp_ms) {
    const endpoint* plaintext = nullptr;
    for (const auto& ep : b.endpoints)
        if (ep.security_protocol == "PLAINTEXT") {
            plaintext = &ep;
            break;
        }
    ordered j;
    j["version"] = 5;
    j["host"] = plaintext ? ordered(plaintext->host) : ordered(nullptr);
    j["port"] = plaintext ? plaintext->port : -1;
    j["jmx_port"] = -1;
    j["timestamp"] = std::to_string(timestamp_ms);
    ordered eps = ordered::array();
    ordered protocols = ordered::object();
    for (const auto& ep : b.endpoints) {
        eps.push_back(endpoint_string(ep));
        protocols[ep.listener_name] = ep.security_protocol;
    }
    j["endpoints"] = eps;
    j["listener_security_protocol_map"] = protocols;
    if (!b.rack.empty()) j["rack"] = b.rack;
    j["features"] = ordered::object();
    return j.dump();
}

std::optional<broker_info> decode_broker(int32_t id, std::string_view text) {
    auto j = parse_object(text);
    if (!j) return std::nullopt;
    broker_info b;
    b.id = id;
    if (auto rack = string_field(*j, "rack")) b.rack = *rack;
    std::map<std::string, std::string> protocols;
    if (auto it = j->find("listener_security_protocol_map"); it != j->end() && it->is_object())
        for (const auto& [k, v] : it->items())
            if (v.is_string()) protocols[k] = v.get<std::string>();
    auto eps = j->find("endpoints");
    if (eps != j->end() && eps->is_array()) {
        for (const auto& e : *eps) {
            if (!e.is_string()) return std::nullopt;
            auto ep = parse_endpoint(e.get<std::string>());
            if (!ep) return std::nullopt;
            auto p = protocols.find(ep->listener_name);
            ep->security_protocol = p != protocols.end() ? p->second : ep->listener_name;
            b.endpoints.push_back(std::move(*ep));
        }
    } else {  // v1: only host/port, implicitly PLAINTEXT
        auto host = string_field(*j, "host");
        auto port = int_field(*j, "port");
        if (!host || !port) return std::nullopt;
        b.endpoints.push_back({"PLAINTEXT", "PLAINTEXT", *host, int32_t(*port)});
    }
    return b;
}

std::string encode_topic(const std::map<int32_t, std::vector<int32_t>>& assignment, const uuid& topic_id) {
    ordered parts = ordered::object();
    for (const auto& [p, replicas] : assignment) parts[std::to_string(p)] = replicas;
    ordered j;
    j["version"] = 3;
    j["partitions"] = parts;
    j["adding_replicas"] = ordered::object();
    j["removing_replicas"] = ordered::object();
    j["topic_id"] = uuid_to_base64(topic_id);
    return j.dump();
}

std::optional<topic_znode> decode_topic(std::string_view text) {
    auto j = parse_object(text);
    if (!j) return std::nullopt;
    auto parts = j->find("partitions");
    if (parts == j->end() || !parts->is_object()) return std::nullopt;
    topic_znode t;
    for (const auto& [k, v] : parts->items()) {
        auto p = parse_int32(k);
        auto replicas = int_array(v);
        if (!p || *p < 0 || !replicas) return std::nullopt;
        t.assignment[*p] = std::move(*replicas);
    }
    if (auto id = string_field(*j, "topic_id")) {
        auto parsed = uuid_from_base64(*id);
        if (!parsed) return std::nullopt;
        t.topic_id = *parsed;
    }
    return t;
}

std::string encode_partition_state(const partition_state& s) {
    ordered j;
    j["version"] = 1;
    j["leader"] = s.leader;
    j["leader_epoch"] = s.leader_epoch;
    j["controller_epoch"] = s.controller_epoch;
    j["isr"] = s.isr;
    return j.dump();
}

std::optional<partition_state> decode_partition_state(std::string_view text) {
    auto j = parse_object(text);
    if (!j) return std::nullopt;
    auto leader = int_field(*j, "leader");
    auto leader_epoch = int_field(*j, "leader_epoch");
    auto controller_epoch = int_field(*j, "controller_epoch");
    auto isr_it = j->find("isr");
    if (!leader || !leader_epoch || !controller_epoch || isr_it == j->end()) return std::nullopt;
    auto isr = int_array(*isr_it);
    if (!isr) return std::nullopt;
    partition_state s;
    s.leader = int32_t(*leader);
    s.leader_epoch = int32_t(*leader_epoch);
    s.controller_epoch = int32_t(*controller_epoch);
    s.isr = std::move(*isr);
    return s;
}

std::string encode_config(const std::map<std::string, std::string>& config) {
    ordered c = ordered::object();
    for (const auto& [k, v] : config) c[k] = v;
    ordered j;
    j["version"] = 1;
    j["config"] = c;
    return j.dump();
}

std::optional<std::map<std::string, std::string>> decode_config(std::string_view text) {
    auto j = parse_object(text);
    if (!j) return std::nullopt;
    auto c = j->find("config");
    if (c == j->end() || !c->is_object()) return std::nullopt;
    std::map<std::string, std::string> out;
    for (const auto& [k, v] : c->items()) {
        if (!v.is_string()) return std::nullopt;
        out[k] = v.get<std::string>();
    }
    return out;
}

std::string encode_config_change(std::string_view entity_path) {
    ordered j;
    j["version"] = 2;
    j["entity_path"] = std::string(entity_path);
    return j.dump();
}

std::optional<int32_t> decode_controller_epoch(std::string_view text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.remove_suffix(1);
    return parse_int32(text);
}

}  // namespace sluice::coord::znodes
