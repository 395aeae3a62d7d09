#include "broker/config.h"

#include "base/log.h"
#include "broker/configs/config_table.h"
#include "net/tls.h"

#include <charconv>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace sluice::broker {
namespace {

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\f' || s[b] == '\r')) ++b;
    while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\f' || s[e - 1] == '\r')) --e;
    return std::string(s.substr(b, e - b));
}

// Java properties escapes: \t \n \r \f \uXXXX (BMP only, encoded as UTF-8), \x -> x.
std::string unescape(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '\\' || i + 1 == s.size()) {
            out += s[i];
            continue;
        }
        char c = s[++i];
        switch (c) {
            case 't': out += '\t'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 'f': out += '\f'; break;
            case 'u': {
                unsigned cp = 0;
                if (i + 4 < s.size()) {
                    auto r = std::from_chars(s.data() + i + 1, s.data() + i + 5, cp, 16);
                    if (r.ec == std::errc{} && r.ptr == s.data() + i + 5) {
                        i += 4;
                        if (cp < 0x80) {
                            out += static_cast<char>(cp);
                        } else if (cp < 0x800) {
                            out += static_cast<char>(0xC0 | (cp >> 6));
                            out += static_cast<char>(0x80 | (cp & 0x3F));
                        } else {
                            out += static_cast<char>(0xE0 | (cp >> 12));
                            out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
                            out += static_cast<char>(0x80 | (cp & 0x3F));
                        }
                        break;
                    }
                }
                out += 'u';
                break;
            }
            default: out += c;
        }
    }
    return out;
}

// Joins physical lines ending in an odd number of backslashes into logical lines.
std::vector<std::string> logical_lines(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line, pending;
    bool continuing = false;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        std::string_view v = line;
        if (continuing) {
            size_t b = 0;
            while (b < v.size() && (v[b] == ' ' || v[b] == '\t' || v[b] == '\f')) ++b;
            v = v.substr(b);
        }
        size_t slashes = 0;
        while (slashes < v.size() && v[v.size() - 1 - slashes] == '\\') ++slashes;
        if (slashes % 2 == 1) {
            pending += v.substr(0, v.size() - 1);
            continuing = true;
            continue;
        }
        pending += v;
        lines.push_back(std::move(pending));
        pending.clear();
        continuing = false;
    }
    if (continuing) lines.push_back(std::move(pending));
    return lines;
}

template <typename T>
bool parse_int(const std::string& s, T& out) {
    std::string t = trim(s);
    if (t.empty()) return false;
    const char* b = t.data();
    if (*b == '+') ++b;
    auto r = std::from_chars(b, t.data() + t.size(), out);
    return r.ec == std::errc{} && r.ptr == t.data() + t.size();
}

bool parse_bool(const std::string& s, bool& out) {
    std::string t = trim(s);
    for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    if (t == "true") { out = true; return true; }
    if (t == "false") { out = false; return true; }
    return false;
}

std::vector<std::string> split(const std::string& s, char sep) {
    std::vector<std::string> out;
    std::string cur;
    for (char c : s) {
        if (c == sep) {
            out.push_back(trim(cur));
            cur.clear();
        } else {
            cur += c;
        }
    }
    out.push_back(trim(cur));
    return out;
}

// Keys Sluice reads, plus Kafka keys it accepts without acting on them yet (so they
// are not reported as unknown: a Kafka server.properties should start cleanly).
const std::set<std::string>& known_keys() {
    static const std::set<std::string> keys = {
        "broker.id", "log.dirs", "log.dir", "zookeeper.connect", "zookeeper.session.timeout.ms",
        "zookeeper.connection.timeout.ms", "listeners", "advertised.listeners",
        "listener.security.protocol.map", "inter.broker.listener.name", "broker.rack",
        "auto.create.topics.enable", "delete.topic.enable", "num.partitions",
        "default.replication.factor", "log.segment.bytes", "log.index.interval.bytes",
        "log.index.size.max.bytes", "message.max.bytes", "socket.request.max.bytes",
        "offsets.topic.replication.factor", "offsets.topic.num.partitions", "reactor.threads",
        "reactor.stats.interval.ms", "socket.receive.direct.min.bytes",
        "fetch.send.strategy", "log.append.strategy", "log.append.direct.cache.bytes", "queued.max.requests", "connections.max.idle.ms",
        "log.message.timestamp.type",
        // accepted, used by later features or irrelevant to this implementation
        "num.network.threads", "num.io.threads", "socket.send.buffer.bytes",
        "socket.receive.buffer.bytes", "num.recovery.threads.per.data.dir",
        "transaction.state.log.replication.factor", "transaction.state.log.min.isr",
        "log.retention.hours", "log.retention.minutes", "log.retention.ms", "log.retention.bytes",
        "log.retention.check.interval.ms", "log.flush.interval.messages", "log.flush.interval.ms",
        "group.initial.rebalance.delay.ms", "min.insync.replicas", "log.cleaner.enable",
        "log.cleanup.policy", "log.roll.ms", "log.roll.hours", "replica.lag.time.max.ms",
        "unclean.leader.election.enable", "controlled.shutdown.enable",
        "group.min.session.timeout.ms", "group.max.session.timeout.ms", "group.max.size",
        "offsets.retention.minutes", "auto.leader.rebalance.enable", "log.cleaner.threads",
        "file.delete.delay.ms", "log.segment.delete.delay.ms", "replica.fetch.max.bytes", "num.replica.fetchers", "replica.fetch.wait.max.ms",
        "replica.fetch.min.bytes", "replica.fetch.response.max.bytes", "replica.fetch.backoff.ms",
        "replica.socket.timeout.ms",
    };
    return keys;
}

// Kafka's ssl.* broker keys, without the "ssl." prefix. The first group is read; the
// second is accepted and has no effect here (Java-only knobs, client-side checks).
const std::set<std::string>& ssl_key_suffixes() {
    static const std::set<std::string> keys = {
        "keystore.type", "keystore.location", "keystore.password", "keystore.key", "keystore.certificate.chain",
        "key.password", "truststore.type", "truststore.location", "truststore.password",
        "truststore.certificates", "client.auth", "enabled.protocols", "cipher.suites", "protocol",
        "endpoint.identification.algorithm", "keymanager.algorithm", "trustmanager.algorithm",
        "secure.random.implementation", "provider", "engine.factory.class", "principal.mapping.rules",
        "allow.dn.changes", "allow.san.changes",
    };
    return keys;
}

bool is_ssl_key(const std::string& k) {
    if (k.rfind("ssl.", 0) == 0) return ssl_key_suffixes().count(k.substr(4)) > 0;
    // listener.name.<name>.ssl.<suffix>: a per-listener override
    if (k.rfind("listener.name.", 0) != 0) return false;
    auto at = k.find(".ssl.", 14);
    return at != std::string::npos && ssl_key_suffixes().count(k.substr(at + 5)) > 0;
}

std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    for (auto& item : split(s, ','))
        if (!item.empty()) out.push_back(item);
    return out;
}

// The ssl.* settings of one listener: listener.name.<name lowercase>.ssl.X wins over
// ssl.X, as in Kafka. `key_of` maps each setting suffix to the key it was read from, so
// errors name the key the operator actually wrote.
struct listener_ssl {
    net::tls_settings settings;
    std::map<std::string, std::string> key_of;
};

std::variant<listener_ssl, config_error> ssl_settings_for(const std::map<std::string, std::string>& props,
                                                           const std::string& listener_name) {
    listener_ssl out;
    auto get = [&](const std::string& suffix) -> std::optional<std::string> {
        std::string scoped = "listener.name." + lower(listener_name) + ".ssl." + suffix;
        if (auto it = props.find(scoped); it != props.end()) {
            out.key_of[suffix] = scoped;
            return it->second;  // PEM values keep their inner whitespace
        }
        out.key_of[suffix] = "ssl." + suffix;
        if (auto it = props.find("ssl." + suffix); it != props.end()) return it->second;
        return std::nullopt;
    };
    auto bad = [&](const std::string& suffix, std::string what) {
        return config_error{out.key_of[suffix], fmt::format("config {}: {} (listener {})", out.key_of[suffix], what,
                                                            listener_name)};
    };
    net::tls_settings& s = out.settings;
    for (const char* type_key : {"keystore.type", "truststore.type"}) {
        auto v = get(type_key);
        std::string t = v ? upper(trim(*v)) : "";
        if (t == "JKS")
            return bad(type_key, "JKS stores are not supported: use PEM or PKCS12 (keytool -importkeystore "
                                 "-deststoretype PKCS12 converts one)");
        if (!t.empty() && t != "PEM" && t != "PKCS12")
            return bad(type_key, fmt::format("invalid value '{}' (expected PEM or PKCS12)", *v));
        (std::string_view(type_key) == "keystore.type" ? s.keystore_type : s.truststore_type) = t;
    }
    if (auto v = get("keystore.location")) s.keystore_location = trim(*v);
    if (auto v = get("keystore.password")) s.keystore_password = *v;
    if (auto v = get("keystore.key")) s.keystore_key = *v;
    if (auto v = get("keystore.certificate.chain")) s.keystore_certificate_chain = *v;
    if (auto v = get("key.password")) s.key_password = *v;
    if (auto v = get("truststore.location")) s.truststore_location = trim(*v);
    if (auto v = get("truststore.password")) s.truststore_password = *v;
    if (auto v = get("truststore.certificates")) s.truststore_certificates = *v;
    if (auto v = get("client.auth")) {
        std::string a = lower(trim(*v));
        if (a == "none" || a.empty()) s.client_auth = net::tls_client_auth::none;
        else if (a == "requested") s.client_auth = net::tls_client_auth::requested;
        else if (a == "required") s.client_auth = net::tls_client_auth::required;
        else return bad("client.auth", fmt::format("invalid value '{}' (expected none, requested or required)", *v));
    }
    if (auto v = get("enabled.protocols")) s.enabled_protocols = split_list(*v);
    if (auto v = get("cipher.suites")) s.cipher_suites = split_list(*v);
    if (auto v = get("protocol")) {
        std::string p = trim(*v);
        if (p != "TLS" && p != "TLSv1.2" && p != "TLSv1.3")
            return bad("protocol", fmt::format("invalid value '{}' (expected TLS, TLSv1.2 or TLSv1.3)", *v));
    }
    return out;
}

// Builds one server context per SSL listener (shared by every shard).
std::optional<config_error> build_tls_contexts(std::vector<listener>& listeners,
                                               const std::map<std::string, std::string>& props) {
    for (auto& l : listeners) {
        if (l.security_protocol != "SSL") continue;
        auto resolved = ssl_settings_for(props, l.name);
        if (auto* e = std::get_if<config_error>(&resolved)) return *e;
        auto& ls = std::get<listener_ssl>(resolved);
        auto ctx = net::tls_context::create_server(ls.settings);
        if (auto* e = std::get_if<net::tls_error>(&ctx)) {
            std::string key = e->setting.empty() ? "listeners" : ls.key_of[e->setting];
            if (key.empty()) key = "ssl." + e->setting;
            return config_error{key, fmt::format("config {}: {} (listener {})", key, e->message, l.name)};
        }
        l.tls = std::get<std::shared_ptr<const net::tls_context>>(std::move(ctx));
    }
    return std::nullopt;
}

std::variant<broker_config, config_error> fail(std::string key, std::string message) {
    return config_error{key, std::move(message)};
}

}  // namespace

result<std::map<std::string, std::string>> parse_properties(const std::string& text) {
    std::map<std::string, std::string> props;
    for (const auto& raw_line : logical_lines(text)) {
        std::string_view line = raw_line;
        size_t b = 0;
        while (b < line.size() && (line[b] == ' ' || line[b] == '\t' || line[b] == '\f')) ++b;
        line = line.substr(b);
        if (line.empty() || line[0] == '#' || line[0] == '!') continue;
        size_t sep = std::string_view::npos;
        for (size_t i = 0; i < line.size(); ++i) {
            if (line[i] == '\\') { ++i; continue; }
            if (line[i] == '=' || line[i] == ':' || line[i] == ' ' || line[i] == '\t') { sep = i; break; }
        }
        std::string key, value;
        if (sep == std::string_view::npos) {
            key = unescape(line);
        } else {
            key = unescape(line.substr(0, sep));
            size_t v = sep;
            while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
            if (v < line.size() && (line[v] == '=' || line[v] == ':')) ++v;
            while (v < line.size() && (line[v] == ' ' || line[v] == '\t')) ++v;
            value = unescape(line.substr(v));
        }
        props[key] = value;
    }
    return props;
}

std::optional<std::vector<listener>> parse_listeners(
    const std::string& value, const std::map<std::string, std::string>& protocol_map) {
    std::vector<listener> out;
    if (trim(value).empty()) return out;
    for (const auto& item : split(value, ',')) {
        auto scheme_end = item.find("://");
        if (scheme_end == std::string::npos || scheme_end == 0) return std::nullopt;
        listener l;
        l.name = item.substr(0, scheme_end);
        std::string hostport = item.substr(scheme_end + 3);
        auto colon = hostport.rfind(':');
        if (colon == std::string::npos) return std::nullopt;
        l.host = hostport.substr(0, colon);
        if (l.host.size() >= 2 && l.host.front() == '[' && l.host.back() == ']')
            l.host = l.host.substr(1, l.host.size() - 2);
        int port = 0;
        if (!parse_int(hostport.substr(colon + 1), port) || port < 0 || port > 65535) return std::nullopt;
        l.port = static_cast<uint16_t>(port);
        auto it = protocol_map.find(l.name);
        l.security_protocol = it != protocol_map.end() ? it->second : l.name;
        out.push_back(std::move(l));
    }
    return out;
}

std::variant<broker_config, config_error> make_config(std::map<std::string, std::string> props) {
    broker_config c;
    auto get = [&](const char* k) -> const std::string* {
        auto it = props.find(k);
        return it == props.end() ? nullptr : &it->second;
    };
#define SLUICE_INT_KEY(key, field, min_value)                                                     \
    if (auto* v = get(key)) {                                                                     \
        if (!parse_int(*v, c.field) || c.field < (min_value))                                     \
            return fail(key, fmt::format("config {}: invalid value '{}' (expected an integer >= {})", \
                                         key, *v, min_value));                                    \
    }
#define SLUICE_BOOL_KEY(key, field)                                                               \
    if (auto* v = get(key)) {                                                                     \
        if (!parse_bool(*v, c.field))                                                             \
            return fail(key, fmt::format("config {}: invalid value '{}' (expected true or false)", key, *v)); \
    }

    auto* id = get("broker.id");
    if (!id) return fail("broker.id", "missing required config broker.id");
    if (!parse_int(*id, c.broker_id) || c.broker_id < 0)
        return fail("broker.id", fmt::format("config broker.id: invalid value '{}' (expected an integer >= 0)", *id));

    auto* dirs = get("log.dirs");
    if (!dirs) dirs = get("log.dir");
    if (!dirs) return fail("log.dirs", "missing required config log.dirs");
    for (auto& d : split(*dirs, ','))
        if (!d.empty()) c.log_dirs.push_back(d);
    if (c.log_dirs.empty()) return fail("log.dirs", "config log.dirs: no directory given");
    for (auto& d : c.log_dirs)
        if (d[0] != '/') return fail("log.dirs", fmt::format("config log.dirs: '{}' is not an absolute path", d));

    auto* zk = get("zookeeper.connect");
    if (!zk) return fail("zookeeper.connect", "missing required config zookeeper.connect");
    c.zookeeper_connect = trim(*zk);
    {
        std::string hosts = c.zookeeper_connect.substr(0, c.zookeeper_connect.find('/'));
        bool ok = !hosts.empty();
        for (auto& hp : split(hosts, ',')) {
            auto colon = hp.rfind(':');
            int port = 0;
            if (hp.empty() || colon == std::string::npos || colon == 0 ||
                !parse_int(hp.substr(colon + 1), port) || port <= 0 || port > 65535)
                ok = false;
        }
        auto slash = c.zookeeper_connect.find('/');
        if (slash != std::string::npos) {
            std::string chroot = c.zookeeper_connect.substr(slash);
            if (chroot.size() > 1 && chroot.back() == '/') ok = false;
            if (chroot.find("//") != std::string::npos) ok = false;
        }
        if (!ok)
            return fail("zookeeper.connect",
                        fmt::format("config zookeeper.connect: invalid value '{}' (expected host:port[,host:port...][/chroot])",
                                    *zk));
    }

    SLUICE_INT_KEY("zookeeper.session.timeout.ms", zookeeper_session_timeout_ms, 1000)
    SLUICE_INT_KEY("zookeeper.connection.timeout.ms", zookeeper_connection_timeout_ms, 100)
    SLUICE_BOOL_KEY("auto.create.topics.enable", auto_create_topics_enable)
    SLUICE_BOOL_KEY("delete.topic.enable", delete_topic_enable)
    SLUICE_INT_KEY("num.partitions", num_partitions, 1)
    SLUICE_INT_KEY("default.replication.factor", default_replication_factor, 1)
    SLUICE_INT_KEY("log.segment.bytes", log_segment_bytes, 14)
    SLUICE_INT_KEY("log.index.interval.bytes", log_index_interval_bytes, 0)
    SLUICE_INT_KEY("log.index.size.max.bytes", log_index_size_max_bytes, 4)
    SLUICE_INT_KEY("message.max.bytes", message_max_bytes, 0)
    SLUICE_INT_KEY("socket.request.max.bytes", socket_request_max_bytes, 1)
    SLUICE_INT_KEY("socket.receive.direct.min.bytes", socket_receive_direct_min_bytes, 0)
    SLUICE_INT_KEY("offsets.topic.replication.factor", offsets_topic_replication_factor, 1)
    SLUICE_INT_KEY("offsets.topic.num.partitions", offsets_topic_num_partitions, 1)
    SLUICE_INT_KEY("reactor.threads", reactor_threads, 0)
    if (auto* v = get("reactor.stats.interval.ms")) {
        // Read by the server from `raw` (broker/server.cc); checked here so a typo fails at start.
        int64_t ms = 0;
        if (!parse_int(*v, ms) || ms < 0)
            return fail("reactor.stats.interval.ms",
                        fmt::format("config reactor.stats.interval.ms: invalid value '{}' (expected an integer >= 0)", *v));
    }
    SLUICE_INT_KEY("queued.max.requests", queued_max_requests, 1)
    SLUICE_INT_KEY("connections.max.idle.ms", connections_max_idle_ms, -1)
    SLUICE_INT_KEY("log.append.direct.cache.bytes", log_append_direct_cache_bytes, 0)
#undef SLUICE_INT_KEY
#undef SLUICE_BOOL_KEY
    if (c.log_segment_bytes > INT32_MAX)
        return fail("log.segment.bytes", "config log.segment.bytes: must be at most 2147483647");
    if (auto* v = get("broker.rack")) c.rack = trim(*v);
    if (auto* v = get("log.message.timestamp.type")) {
        c.log_message_timestamp_type = trim(*v);
        if (c.log_message_timestamp_type != "CreateTime" && c.log_message_timestamp_type != "LogAppendTime")
            return fail("log.message.timestamp.type",
                        "config log.message.timestamp.type: expected CreateTime or LogAppendTime");
    }
    if (auto* v = get("log.append.strategy")) {
        c.log_append_strategy = trim(*v);
        if (c.log_append_strategy != "buffered" && c.log_append_strategy != "direct")
            return fail("log.append.strategy",
                        fmt::format("config log.append.strategy: invalid value '{}' (expected buffered or direct)", *v));
    }
    if (auto* v = get("fetch.send.strategy")) {
        c.fetch_send_strategy = trim(*v);
        if (c.fetch_send_strategy != "splice" && c.fetch_send_strategy != "mmap_copy" &&
            c.fetch_send_strategy != "buffered")
            return fail("fetch.send.strategy",
                        fmt::format("config fetch.send.strategy: invalid value '{}' (expected splice, mmap_copy or buffered)", *v));
    }

    std::map<std::string, std::string> protocol_map = {
        {"PLAINTEXT", "PLAINTEXT"}, {"SSL", "SSL"}, {"SASL_PLAINTEXT", "SASL_PLAINTEXT"}, {"SASL_SSL", "SASL_SSL"}};
    if (auto* v = get("listener.security.protocol.map")) {
        protocol_map.clear();
        for (auto& kv : split(*v, ',')) {
            auto colon = kv.find(':');
            if (colon == std::string::npos)
                return fail("listener.security.protocol.map",
                            fmt::format("config listener.security.protocol.map: invalid entry '{}'", kv));
            protocol_map[kv.substr(0, colon)] = kv.substr(colon + 1);
        }
    }
    auto listeners = parse_listeners(get("listeners") ? *get("listeners") : "PLAINTEXT://:9092", protocol_map);
    if (!listeners || listeners->empty())
        return fail("listeners", fmt::format("config listeners: invalid value '{}' (expected NAME://host:port,...)",
                                             get("listeners") ? *get("listeners") : ""));
    for (auto& l : *listeners) {
        if (l.security_protocol == "PLAINTEXT" || l.security_protocol == "SSL") continue;
        if (l.security_protocol == "SASL_SSL" || l.security_protocol == "SASL_PLAINTEXT")
            return fail("listeners", fmt::format("config listeners: security protocol {} of listener {} is not "
                                                 "supported (Sluice speaks PLAINTEXT and SSL)",
                                                 l.security_protocol, l.name));
        return fail("listener.security.protocol.map",
                    fmt::format("config listener.security.protocol.map: listener {} has no known security protocol "
                                "(got '{}'; map it to PLAINTEXT or SSL)", l.name, l.security_protocol));
    }
    if (auto e = build_tls_contexts(*listeners, props)) return *e;
    c.listeners = *listeners;
    if (auto* v = get("advertised.listeners")) {
        auto adv = parse_listeners(*v, protocol_map);
        if (!adv || adv->empty())
            return fail("advertised.listeners",
                        fmt::format("config advertised.listeners: invalid value '{}'", *v));
        c.advertised_listeners = *adv;
    } else {
        c.advertised_listeners = c.listeners;
    }
    // Kafka advertises the canonical host name for an empty host; loopback-only
    // machines and tests are better served by 127.0.0.1 when nothing was given.
    for (auto& l : c.advertised_listeners)
        if (l.host.empty() || l.host == "0.0.0.0") l.host = "127.0.0.1";

    if (c.reactor_threads == 0) c.reactor_threads = static_cast<int32_t>(std::max(1u, std::thread::hardware_concurrency()));

    // Log and topic-default keys (log.retention.*, log.flush.*, ...) are checked against
    // the config table the topics use (broker/configs).
    if (auto why = configs::validate_broker_keys(props)) return fail("", *why);
    for (auto& [k, v] : props)
        if (!known_keys().count(k) && !is_ssl_key(k) && !configs::find_broker_config(k))
            log::warn("config", "unknown config key '{}' ignored", k);
    c.raw = std::move(props);
    return c;
}

std::variant<broker_config, config_error> load_config(const std::string& path,
                                                      const std::vector<std::string>& overrides) {
    std::ifstream in(path);
    if (!in) return config_error{"", fmt::format("cannot read config file {}", path)};
    std::stringstream ss;
    ss << in.rdbuf();
    auto props = parse_properties(ss.str());
    if (!props) return config_error{"", fmt::format("cannot parse config file {}", path)};
    for (const auto& o : overrides) {
        auto eq = o.find('=');
        if (eq == std::string::npos || eq == 0)
            return config_error{o, fmt::format("invalid --override '{}' (expected key=value)", o)};
        (*props)[trim(o.substr(0, eq))] = trim(o.substr(eq + 1));
    }
    return make_config(std::move(*props));
}

}  // namespace sluice::broker
