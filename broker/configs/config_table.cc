#include "broker/configs/config_table.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <set>

namespace sluice::broker::configs {
namespace {

using ct = config_type;
constexpr std::string_view long_max = "9223372036854775807";
constexpr double int_min = std::numeric_limits<int32_t>::min();
constexpr double int_max = std::numeric_limits<int32_t>::max();

validator at_least(double min) { return {min, 1e300, {}}; }
validator between(double min, double max) { return {min, max, {}}; }
validator one_of(std::vector<std::string_view> v) { return {-1e300, 1e300, std::move(v)}; }

// Kafka's topic configs (LogConfig, 3.9) with their server.properties synonyms
// (ServerTopicConfigSynonyms). Docs are our own one-line summaries.
std::vector<topic_config_def> build_topic_table() {
    return {
        {"cleanup.policy", ct::list, "delete", {{"log.cleanup.policy", 1, "delete"}}, one_of({"compact", "delete"}),
         "How old segments are discarded: delete (by retention) and/or compact (keep the latest value per key)."},
        {"compression.type", ct::string, "producer", {{"compression.type", 1, "producer"}},
         one_of({"uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"}),
         "Compression of stored batches; producer keeps the producer's codec (Sluice stores batches as sent)."},
        {"delete.retention.ms", ct::int64, "86400000", {{"log.cleaner.delete.retention.ms", 1, "86400000"}},
         at_least(0), "How long compaction keeps delete tombstones readable."},
        {"file.delete.delay.ms", ct::int64, "60000", {{"log.segment.delete.delay.ms", 1, "60000"}}, at_least(0),
         "Delay between removing a segment from the log and deleting its files."},
        {"flush.messages", ct::int64, long_max, {{"log.flush.interval.messages", 1, long_max}}, at_least(1),
         "Force an fsync after this many messages have been appended since the last one."},
        {"flush.ms", ct::int64, long_max,
         {{"log.flush.interval.ms", 1, std::nullopt}, {"log.flush.scheduler.interval.ms", 1, long_max}}, at_least(0),
         "Force an fsync when unflushed data is older than this."},
        {"follower.replication.throttled.replicas", ct::list, "", {}, {},
         "Replicas throttled on the follower side (partition:broker pairs or *)."},
        {"index.interval.bytes", ct::int32, "4096", {{"log.index.interval.bytes", 1, "4096"}},
         between(0, int_max), "Bytes of batches between two offset-index entries."},
        {"leader.replication.throttled.replicas", ct::list, "", {}, {},
         "Replicas throttled on the leader side (partition:broker pairs or *)."},
        {"max.compaction.lag.ms", ct::int64, long_max, {{"log.cleaner.max.compaction.lag.ms", 1, long_max}},
         at_least(1), "Longest time a record may stay uncompacted."},
        {"max.message.bytes", ct::int32, "1048588", {{"message.max.bytes", 1, "1048588"}}, between(0, int_max),
         "Largest record batch accepted, batch overhead included."},
        {"message.downconversion.enable", ct::boolean, "true", {{"log.message.downconversion.enable", 1, "true"}},
         {}, "Whether old fetch versions get down-converted batches."},
        {"message.format.version", ct::string, "3.0-IV1", {{"log.message.format.version", 1, "3.0-IV1"}}, {},
         "Deprecated: the message format version (record batch v2 from 3.0 on)."},
        {"message.timestamp.after.max.ms", ct::int64, long_max,
         {{"log.message.timestamp.after.max.ms", 1, long_max}}, at_least(0),
         "How far in the future a CreateTime timestamp may be."},
        {"message.timestamp.before.max.ms", ct::int64, long_max,
         {{"log.message.timestamp.before.max.ms", 1, long_max}}, at_least(0),
         "How far in the past a CreateTime timestamp may be."},
        {"message.timestamp.difference.max.ms", ct::int64, long_max,
         {{"log.message.timestamp.difference.max.ms", 1, long_max}}, at_least(0),
         "Deprecated: largest difference between a CreateTime timestamp and the broker clock."},
        {"message.timestamp.type", ct::string, "CreateTime", {{"log.message.timestamp.type", 1, "CreateTime"}},
         one_of({"CreateTime", "LogAppendTime"}), "Whether batches keep the producer's timestamp or get the broker's."},
        {"min.cleanable.dirty.ratio", ct::float64, "0.5", {{"log.cleaner.min.cleanable.ratio", 1, "0.5"}},
         between(0, 1), "Share of uncompacted bytes that makes a log eligible for compaction."},
        {"min.compaction.lag.ms", ct::int64, "0", {{"log.cleaner.min.compaction.lag.ms", 1, "0"}}, at_least(0),
         "Shortest time a record stays uncompacted."},
        {"min.insync.replicas", ct::int32, "1", {{"min.insync.replicas", 1, "1"}}, between(1, int_max),
         "Replicas that must acknowledge an acks=all write."},
        {"preallocate", ct::boolean, "false", {{"log.preallocate", 1, "false"}}, {},
         "Preallocate segment files on creation."},
        {"retention.bytes", ct::int64, "-1", {{"log.retention.bytes", 1, "-1"}}, {},
         "Delete old segments while the partition is larger than this (-1: no limit)."},
        {"retention.ms", ct::int64, "604800000",
         {{"log.retention.ms", 1, std::nullopt},
          {"log.retention.minutes", 60000, std::nullopt},
          {"log.retention.hours", 3600000, "168"}},
         at_least(-1), "Delete segments whose newest record is older than this (-1: keep forever)."},
        {"segment.bytes", ct::int32, "1073741824", {{"log.segment.bytes", 1, "1073741824"}}, between(14, int_max),
         "Roll to a new segment when the active one would grow past this."},
        {"segment.index.bytes", ct::int32, "10485760", {{"log.index.size.max.bytes", 1, "10485760"}},
         between(4, int_max), "Preallocated size of each segment's offset and time index."},
        {"segment.jitter.ms", ct::int64, "0",
         {{"log.roll.jitter.ms", 1, std::nullopt}, {"log.roll.jitter.hours", 3600000, "0"}}, at_least(0),
         "Random jitter subtracted from segment.ms to spread rolls."},
        {"segment.ms", ct::int64, "604800000",
         {{"log.roll.ms", 1, std::nullopt}, {"log.roll.hours", 3600000, "168"}}, at_least(1),
         "Roll a non-empty segment this old even when it is not full."},
        {"unclean.leader.election.enable", ct::boolean, "false", {{"unclean.leader.election.enable", 1, "false"}},
         {}, "Whether a replica outside the ISR may become leader (losing data)."},
    };
}

// Broker keys that are not topic synonyms. Sluice-specific keys are marked as such.
std::vector<broker_config_def> build_broker_table() {
    std::vector<broker_config_def> out = {
        {"advertised.listeners", ct::string, std::nullopt, {}, "Listeners published in ZooKeeper for clients."},
        {"auto.create.topics.enable", ct::boolean, "true", {}, "Create unknown topics on Metadata/Produce."},
        {"broker.id", ct::int32, "-1", {}, "This broker's id."},
        {"broker.rack", ct::string, std::nullopt, {}, "Rack of this broker."},
        {"connections.max.idle.ms", ct::int64, "600000", {}, "Close connections idle this long."},
        {"default.replication.factor", ct::int32, "1", {}, "Replication factor of auto-created topics."},
        {"delete.topic.enable", ct::boolean, "true", {}, "Whether DeleteTopics deletes."},
        {"fetch.send.strategy", ct::string, "splice", one_of({"splice", "mmap_copy", "buffered"}),
         "Sluice: how fetch responses send segment bytes."},
        {"listener.security.protocol.map", ct::string,
         "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL", {},
         "Security protocol of each listener name."},
        {"listeners", ct::string, "PLAINTEXT://:9092", {}, "Addresses this broker listens on."},
        {"log.cleaner.backoff.ms", ct::int64, "15000", at_least(0),
         "How often each shard looks for compacted partitions that are due for cleaning."},
        {"log.cleaner.enable", ct::boolean, "true", {}, "Run the log cleaner (compaction)."},
        {"log.cleaner.threads", ct::int32, "1", at_least(0),
         "Cleaner threads; accepted, Sluice runs one cleaner thread (tasks are queued)."},
        {"log.dir", ct::string, "/tmp/kafka-logs", {}, "Log directory when log.dirs is not set."},
        {"log.dirs", ct::string, std::nullopt, {}, "Log directories."},
        {"log.flush.offset.checkpoint.interval.ms", ct::int32, "60000", between(0, int_max),
         "How often the recovery points are checkpointed."},
        {"log.flush.start.offset.checkpoint.interval.ms", ct::int32, "60000", between(0, int_max),
         "How often the log start offsets are checkpointed."},
        {"log.max.open.files", ct::int32, "0", at_least(0),
         "Sluice: open segment descriptors allowed across all partitions; idle partitions release theirs "
         "beyond it (0: half the process's RLIMIT_NOFILE soft limit)."},
        {"log.retention.check.interval.ms", ct::int64, "300000", at_least(1),
         "How often partitions are checked for segments to delete by retention."},
        {"num.partitions", ct::int32, "1", at_least(1), "Partitions of auto-created topics."},
        {"offsets.topic.num.partitions", ct::int32, "50", at_least(1), "Partitions of __consumer_offsets."},
        {"offsets.topic.replication.factor", ct::int16, "3", at_least(1), "Replication of __consumer_offsets."},
        {"queued.max.requests", ct::int32, "500", at_least(1), "Requests queued per connection before reads stop."},
        {"reactor.threads", ct::int32, "0", at_least(0), "Sluice: reactor threads (0: one per CPU)."},
        {"replica.fetch.backoff.ms", ct::int32, "1000", at_least(0),
         "How long a follower waits before fetching a partition again after an error."},
        {"replica.fetch.max.bytes", ct::int32, "1048576", at_least(0),
         "Bytes a follower asks for per partition in one fetch."},
        {"replica.fetch.min.bytes", ct::int32, "1", at_least(1), "Bytes a follower's fetch waits for."},
        {"replica.fetch.response.max.bytes", ct::int32, "10485760", at_least(0),
         "Bytes a follower asks for in one fetch response."},
        {"replica.fetch.wait.max.ms", ct::int32, "500", at_least(0), "How long a follower's fetch waits at the leader."},
        {"replica.high.watermark.checkpoint.interval.ms", ct::int64, "5000", at_least(1),
         "How often high watermarks are written to replication-offset-checkpoint."},
        {"replica.lag.time.max.ms", ct::int64, "30000", at_least(1),
         "A follower not caught up for this long leaves the ISR."},
        {"replica.socket.timeout.ms", ct::int32, "30000", at_least(1), "Socket timeout of follower fetches."},
        {"socket.request.max.bytes", ct::int32, "104857600", at_least(1), "Largest request accepted."},
        {"zookeeper.connect", ct::string, std::nullopt, {}, "ZooKeeper connect string with optional chroot."},
        {"zookeeper.connection.timeout.ms", ct::int32, std::nullopt, {}, "Wait this long for ZooKeeper at start."},
        {"zookeeper.session.timeout.ms", ct::int32, "18000", {}, "ZooKeeper session timeout."},
    };
    std::set<std::string_view> seen;
    for (const auto& b : out) seen.insert(b.name);
    for (const auto& t : topic_configs()) {
        for (const auto& s : t.synonyms) {
            if (!seen.insert(s.name).second) continue;
            // Scaled synonyms (hours, minutes) are int32 in Kafka; their range scales too.
            validator v = t.valid;
            config_type type = t.type;
            if (s.multiplier != 1) {
                type = ct::int32;
                v = between(v.min <= -1 ? -1 : v.min, int_max);
            }
            out.push_back({s.name, type, s.broker_default, v, t.doc});
        }
    }
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
    return out;
}

std::string trim(std::string_view s) {
    size_t b = 0, e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

std::optional<int64_t> parse_long(const std::string& s) {
    std::string t = trim(s);
    int64_t v = 0;
    auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
    if (t.empty() || ec != std::errc{} || p != t.data() + t.size()) return std::nullopt;
    return v;
}

std::optional<double> parse_double(const std::string& s) {
    std::string t = trim(s);
    if (t.empty()) return std::nullopt;
    char* end = nullptr;
    double v = std::strtod(t.c_str(), &end);
    if (end != t.c_str() + t.size() || std::isnan(v)) return std::nullopt;
    return v;
}

std::vector<std::string> split_list(const std::string& s) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos) comma = s.size();
        std::string item = trim(std::string_view(s).substr(start, comma - start));
        if (!item.empty()) out.push_back(std::move(item));
        start = comma + 1;
    }
    return out;
}

std::string_view type_name(config_type t) {
    switch (t) {
        case ct::boolean: return "BOOLEAN";
        case ct::string: return "STRING";
        case ct::int32: return "INT";
        case ct::int16: return "SHORT";
        case ct::int64: return "LONG";
        case ct::float64: return "DOUBLE";
        case ct::list: return "LIST";
        case ct::class_name: return "CLASS";
        case ct::password: return "PASSWORD";
        default: return "UNKNOWN";
    }
}

std::string format_number(double v) {
    if (v == std::floor(v) && std::fabs(v) < 9.3e18) return fmt::format("{}", static_cast<int64_t>(v));
    return fmt::format("{}", v);
}

// Kafka's ConfigDef.parseType + validator messages.
std::optional<std::string> check_value(std::string_view name, config_type type, const validator& valid,
                                       const std::string& value) {
    auto bad = [&](std::string_view why) {
        return fmt::format("Invalid value {} for configuration {}: {}", value, name, why);
    };
    auto range = [&](double v) -> std::optional<std::string> {
        if (v < valid.min) return bad(fmt::format("Value must be at least {}", format_number(valid.min)));
        if (v > valid.max) return bad(fmt::format("Value must be no more than {}", format_number(valid.max)));
        return std::nullopt;
    };
    auto allowed = [&](const std::string& item) {
        return valid.allowed.empty() ||
               std::find(valid.allowed.begin(), valid.allowed.end(), item) != valid.allowed.end();
    };
    auto allowed_text = [&] { return fmt::format("String must be one of: {}", fmt::join(valid.allowed, ", ")); };
    switch (type) {
        case ct::int16:
        case ct::int32:
        case ct::int64: {
            auto v = parse_long(value);
            if (!v) return bad(fmt::format("Not a number of type {}", type_name(type)));
            if (type == ct::int32 && (*v < int_min || *v > int_max)) return bad("Not a number of type INT");
            if (type == ct::int16 && (*v < INT16_MIN || *v > INT16_MAX)) return bad("Not a number of type SHORT");
            return range(static_cast<double>(*v));
        }
        case ct::float64: {
            auto v = parse_double(value);
            if (!v) return bad("Not a number of type DOUBLE");
            return range(*v);
        }
        case ct::boolean: {
            std::string t = trim(value);
            std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
            if (t != "true" && t != "false") return bad("Expected value to be either true or false");
            return std::nullopt;
        }
        case ct::list: {
            for (const auto& item : split_list(value))
                if (!allowed(item)) return bad(allowed_text());
            if (!valid.allowed.empty() && split_list(value).empty()) return bad("Empty list");
            return std::nullopt;
        }
        default:
            if (!allowed(trim(value))) return bad(allowed_text());
            return std::nullopt;
    }
}

// The broker-level value a topic config inherits: the first synonym set in
// server.properties, scaled to the topic's unit.
std::optional<std::string> inherited_value(const topic_config_def& def,
                                           const std::map<std::string, std::string>& broker_raw) {
    for (const auto& s : def.synonyms) {
        auto it = broker_raw.find(std::string(s.name));
        if (it == broker_raw.end()) continue;
        if (s.multiplier == 1) return trim(it->second);
        auto v = parse_long(it->second);
        if (!v) continue;
        return fmt::format("{}", *v * s.multiplier);
    }
    return std::nullopt;
}

bool wanted(const std::optional<std::vector<std::string>>& keys, std::string_view name) {
    return !keys || keys->empty() || std::find(keys->begin(), keys->end(), name) != keys->end();
}

}  // namespace

const std::vector<topic_config_def>& topic_configs() {
    static const std::vector<topic_config_def> table = build_topic_table();
    return table;
}

const topic_config_def* find_topic_config(std::string_view name) {
    for (const auto& d : topic_configs())
        if (d.name == name) return &d;
    return nullptr;
}

const std::vector<broker_config_def>& broker_configs() {
    static const std::vector<broker_config_def> table = build_broker_table();
    return table;
}

const broker_config_def* find_broker_config(std::string_view name) {
    for (const auto& d : broker_configs())
        if (d.name == name) return &d;
    return nullptr;
}

std::optional<std::string> validate_topic_config(std::string_view name, const std::string& value) {
    const auto* def = find_topic_config(name);
    if (def == nullptr) return fmt::format("Unknown topic config name: {}", name);
    return check_value(def->name, def->type, def->valid, value);
}

std::optional<std::string> validate_topic_configs(const std::map<std::string, std::string>& overrides) {
    for (const auto& [k, v] : overrides)
        if (auto why = validate_topic_config(k, v)) return why;
    auto num = [&](const char* key) -> std::optional<int64_t> {
        auto it = overrides.find(key);
        return it == overrides.end() ? std::nullopt : parse_long(it->second);
    };
    auto min_lag = num("min.compaction.lag.ms"), max_lag = num("max.compaction.lag.ms");
    if (min_lag && max_lag && *min_lag > *max_lag)
        return fmt::format("conflict topic config setting min.compaction.lag.ms ({}) > max.compaction.lag.ms ({})",
                           *min_lag, *max_lag);
    return std::nullopt;
}

std::optional<std::string> validate_broker_keys(const std::map<std::string, std::string>& raw) {
    for (const auto& [k, v] : raw) {
        const auto* def = find_broker_config(k);
        if (def == nullptr) continue;
        if (auto why = check_value(def->name, def->type, def->valid, v)) return why;
    }
    return std::nullopt;
}

described_config describe_topic_config(const topic_config_def& def,
                                       const std::map<std::string, std::string>& overrides,
                                       const std::map<std::string, std::string>& broker_raw) {
    described_config d;
    d.name = std::string(def.name);
    d.type = def.type;
    d.doc = def.doc;
    // Synonyms as Kafka lists them: static broker keys, then broker defaults, from the
    // primary broker key on (so log.retention.hours is not listed under retention.ms
    // unless log.retention.ms itself is set), with the topic override in front.
    std::vector<synonym_entry> broker_side;
    for (const auto& s : def.synonyms) {
        auto it = broker_raw.find(std::string(s.name));
        if (it != broker_raw.end()) broker_side.push_back({std::string(s.name), trim(it->second), config_source::static_broker});
    }
    for (const auto& s : def.synonyms)
        if (s.broker_default) broker_side.push_back({std::string(s.name), std::string(*s.broker_default), config_source::default_config});
    if (!def.synonyms.empty()) {
        auto primary = def.synonyms.front().name;
        auto first = std::find_if(broker_side.begin(), broker_side.end(), [&](const auto& e) { return e.name == primary; });
        broker_side.erase(broker_side.begin(), first);
    }
    if (auto it = overrides.find(d.name); it != overrides.end()) {
        d.value = it->second;
        d.synonyms.push_back({d.name, it->second, config_source::dynamic_topic});
    } else {
        d.value = inherited_value(def, broker_raw).value_or(std::string(def.default_value));
    }
    d.synonyms.insert(d.synonyms.end(), broker_side.begin(), broker_side.end());
    d.source = d.synonyms.empty() ? config_source::default_config : d.synonyms.front().source;
    return d;
}

std::vector<described_config> describe_topic(const std::map<std::string, std::string>& overrides,
                                             const std::map<std::string, std::string>& broker_raw,
                                             const std::optional<std::vector<std::string>>& keys) {
    std::vector<described_config> out;
    for (const auto& def : topic_configs())
        if (wanted(keys, def.name)) out.push_back(describe_topic_config(def, overrides, broker_raw));
    return out;
}

std::vector<described_config> describe_broker(const std::map<std::string, std::string>& broker_raw,
                                              const std::optional<std::vector<std::string>>& keys) {
    std::vector<described_config> out;
    for (const auto& def : broker_configs()) {
        if (!wanted(keys, def.name)) continue;
        described_config d;
        d.name = std::string(def.name);
        d.type = def.type;
        d.doc = def.doc;
        d.read_only = true;
        d.sensitive = def.sensitive;
        if (auto it = broker_raw.find(d.name); it != broker_raw.end()) {
            d.value = trim(it->second);
            d.synonyms.push_back({d.name, d.value, config_source::static_broker});
        }
        if (def.default_value) d.synonyms.push_back({d.name, std::string(*def.default_value), config_source::default_config});
        if (!d.value && def.default_value) d.value = std::string(*def.default_value);
        d.source = d.synonyms.empty() ? config_source::default_config : d.synonyms.front().source;
        if (d.sensitive) {
            d.value = std::nullopt;
            for (auto& s : d.synonyms) s.value = std::nullopt;
        }
        out.push_back(std::move(d));
    }
    return out;
}

std::map<std::string, std::string> effective_topic_configs(const std::map<std::string, std::string>& overrides,
                                                           const std::map<std::string, std::string>& broker_raw) {
    std::map<std::string, std::string> out;
    for (const auto& def : topic_configs()) {
        std::string name(def.name);
        if (auto it = overrides.find(name); it != overrides.end()) {
            out[name] = it->second;
        } else {
            out[name] = inherited_value(def, broker_raw).value_or(std::string(def.default_value));
        }
    }
    return out;
}

partition_settings make_partition_settings(const std::map<std::string, std::string>& overrides,
                                           const std::map<std::string, std::string>& broker_raw) {
    // Values that fail validation (written by other tools, or a bad server.properties
    // that slipped through) fall back to the topic default rather than failing the log.
    auto eff = effective_topic_configs(overrides, broker_raw);
    auto num = [&](const char* key) -> int64_t {
        const auto* def = find_topic_config(key);
        if (!check_value(def->name, def->type, def->valid, eff[key])) return *parse_long(eff[key]);
        return *parse_long(std::string(def->default_value));
    };
    auto real = [&](const char* key) -> double {
        const auto* def = find_topic_config(key);
        if (!check_value(def->name, def->type, def->valid, eff[key])) return *parse_double(eff[key]);
        return *parse_double(std::string(def->default_value));
    };
    partition_settings s;
    auto& lc = s.log;
    lc.segment_bytes = static_cast<uint64_t>(num("segment.bytes"));
    lc.segment_ms = num("segment.ms");
    lc.index_interval_bytes = static_cast<uint32_t>(num("index.interval.bytes"));
    lc.index_max_bytes = static_cast<size_t>(num("segment.index.bytes"));
    lc.max_message_bytes = static_cast<uint32_t>(num("max.message.bytes"));
    lc.message_timestamp_type = trim(eff["message.timestamp.type"]) == "LogAppendTime"
                                    ? storage::timestamp_type::log_append_time
                                    : storage::timestamp_type::create_time;
    lc.retention_ms = num("retention.ms");
    lc.retention_bytes = num("retention.bytes");
    lc.cleanup_policy = storage::parse_cleanup_policy(eff["cleanup.policy"]).value_or(storage::cleanup_delete);
    lc.delete_retention_ms = num("delete.retention.ms");
    lc.min_cleanable_dirty_ratio = real("min.cleanable.dirty.ratio");
    lc.min_compaction_lag_ms = num("min.compaction.lag.ms");
    lc.max_compaction_lag_ms = num("max.compaction.lag.ms");
    lc.file_delete_delay_ms = num("file.delete.delay.ms");
    lc.flush_interval_messages = num("flush.messages");
    lc.flush_interval_ms = num("flush.ms");
    if (auto it = broker_raw.find("log.append.strategy"); it != broker_raw.end())
        lc.direct_append = trim(it->second) == "direct";
    return s;
}

int64_t broker_long(const std::map<std::string, std::string>& broker_raw, std::string_view key, int64_t fallback) {
    if (auto it = broker_raw.find(std::string(key)); it != broker_raw.end())
        if (auto v = parse_long(it->second)) return *v;
    if (const auto* def = find_broker_config(key); def && def->default_value)
        if (auto v = parse_long(std::string(*def->default_value))) return *v;
    return fallback;
}

bool broker_bool(const std::map<std::string, std::string>& broker_raw, std::string_view key, bool fallback) {
    auto parse = [](std::string v) -> std::optional<bool> {
        v = trim(v);
        std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::tolower(c); });
        if (v == "true") return true;
        if (v == "false") return false;
        return std::nullopt;
    };
    if (auto it = broker_raw.find(std::string(key)); it != broker_raw.end())
        if (auto v = parse(it->second)) return *v;
    if (const auto* def = find_broker_config(key); def && def->default_value)
        if (auto v = parse(std::string(*def->default_value))) return *v;
    return fallback;
}

}  // namespace sluice::broker::configs
