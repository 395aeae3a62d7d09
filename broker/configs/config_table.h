#pragma once
// The table of topic configs (Kafka's LogConfig names) and the broker keys that set
// their defaults (server.properties synonyms), with types, defaults, validation and a
// line of documentation each. DescribeConfigs, AlterConfigs, CreateTopics and the
// shards' per-partition log settings all derive from this one table.
//
// How a topic config gets its value (Kafka's precedence, ZK mode, no dynamic broker
// configs): the topic override in /config/topics/<t>, else the first broker synonym set
// in server.properties (converted: log.retention.hours=1 -> retention.ms=3600000), else
// the topic default.
//
// Concurrency: the tables are immutable statics; every function here is pure.
#include "storage/log_config.h"

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::broker::configs {

// DescribeConfigs ConfigType (KIP-569), on the wire as int8.
enum class config_type : int8_t {
    unknown = 0, boolean = 1, string = 2, int32 = 3, int16 = 4, int64 = 5, float64 = 6, list = 7,
    class_name = 8, password = 9,
};

// DescribeConfigs ConfigSource, on the wire as int8.
enum class config_source : int8_t {
    unknown = 0, dynamic_topic = 1, dynamic_broker = 2, dynamic_default_broker = 3, static_broker = 4,
    default_config = 5, dynamic_broker_logger = 6,
};

// Resource types of the config APIs (ConfigResource.Type).
inline constexpr int8_t resource_topic = 2;
inline constexpr int8_t resource_broker = 4;
inline constexpr int8_t resource_broker_logger = 8;

// Accepted values. Numbers: [min, max] (inclusive). Strings/lists: one of `allowed`
// (every item for a list) unless allowed is empty.
struct validator {
    double min = -1e300;
    double max = 1e300;
    std::vector<std::string_view> allowed;
};

// A server.properties key that sets a topic config's default; value * multiplier is the
// topic value (hours -> ms). broker_default: Kafka's default for that key (may be null,
// e.g. log.retention.ms, whose effective default comes from log.retention.hours).
struct broker_synonym {
    std::string_view name;
    int64_t multiplier = 1;
    std::optional<std::string_view> broker_default;
};

struct topic_config_def {
    std::string_view name;
    config_type type;
    std::string_view default_value;         // the topic default as Kafka prints it
    std::vector<broker_synonym> synonyms;   // precedence order; the first is the primary
    validator valid;
    std::string_view doc;
};

// A broker-level key (DescribeConfigs BROKER). All read-only: Sluice has no dynamic
// broker configs yet.
struct broker_config_def {
    std::string_view name;
    config_type type;
    std::optional<std::string_view> default_value;
    validator valid;
    std::string_view doc;
    bool sensitive = false;
};

const std::vector<topic_config_def>& topic_configs();
const topic_config_def* find_topic_config(std::string_view name);
const std::vector<broker_config_def>& broker_configs();
const broker_config_def* find_broker_config(std::string_view name);

// nullopt if value is valid for key, else Kafka-style message
// ("Invalid value x for configuration retention.ms: Not a number of type LONG",
// "Unknown topic config name: foo").
std::optional<std::string> validate_topic_config(std::string_view name, const std::string& value);
// Every entry, then relations between entries (min.compaction.lag.ms <= max...).
std::optional<std::string> validate_topic_configs(const std::map<std::string, std::string>& overrides);
// The log.* / topic-synonym keys of server.properties (startup).
std::optional<std::string> validate_broker_keys(const std::map<std::string, std::string>& raw);

// One DescribeConfigs synonym entry.
struct synonym_entry {
    std::string name;
    std::optional<std::string> value;
    config_source source;
    bool operator==(const synonym_entry&) const = default;
};

// One described config, independent of the wire version.
struct described_config {
    std::string name;
    std::optional<std::string> value;
    config_source source = config_source::default_config;
    bool read_only = false;
    bool sensitive = false;
    config_type type = config_type::unknown;
    std::vector<synonym_entry> synonyms;  // Kafka's order: topic, static broker, default
    std::string_view doc;
};

// The effective value of a topic config and where it comes from.
described_config describe_topic_config(const topic_config_def& def,
                                       const std::map<std::string, std::string>& overrides,
                                       const std::map<std::string, std::string>& broker_raw);
// Every topic config (or only `keys` when given; unknown keys are skipped, as Kafka does).
std::vector<described_config> describe_topic(const std::map<std::string, std::string>& overrides,
                                             const std::map<std::string, std::string>& broker_raw,
                                             const std::optional<std::vector<std::string>>& keys);
std::vector<described_config> describe_broker(const std::map<std::string, std::string>& broker_raw,
                                              const std::optional<std::vector<std::string>>& keys);

// Effective value of every topic config (override, else broker, else default).
std::map<std::string, std::string> effective_topic_configs(const std::map<std::string, std::string>& overrides,
                                                           const std::map<std::string, std::string>& broker_raw);

// Every per-partition setting the broker derives from the topic configs: storage's
// log_config carries all of them (retention, compaction, delayed deletes, flush
// intervals); a struct so broker-only settings have a place to go.
struct partition_settings {
    storage::log_config log;
};
partition_settings make_partition_settings(const std::map<std::string, std::string>& overrides,
                                           const std::map<std::string, std::string>& broker_raw);

// A broker-level number (server.properties, else the table default, else fallback).
int64_t broker_long(const std::map<std::string, std::string>& broker_raw, std::string_view key, int64_t fallback);
// A broker-level boolean, likewise ("true"/"false", any case).
bool broker_bool(const std::map<std::string, std::string>& broker_raw, std::string_view key, bool fallback);

}  // namespace sluice::broker::configs
