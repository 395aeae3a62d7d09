#pragma once
// Broker configuration: Kafka's server.properties keys and defaults.
//
// Parsing is strict where a wrong value would silently change behaviour (required keys,
// numbers, listeners) and lenient where Kafka is (unknown keys are logged once, not fatal).
// A config_error carries the one-line reason main() prints before exiting with status 2.
//
// Concurrency: built once in main() before any thread starts, then read-only.
#include "base/result.h"

#include <cstdint>
#include <map>
#include <memory>
#include <variant>
#include <optional>
#include <string>
#include <vector>

namespace sluice::net {
class tls_context;
}

namespace sluice::broker {

struct listener {
    std::string name;               // "PLAINTEXT"
    std::string security_protocol;  // "PLAINTEXT" or "SSL"
    std::string host;               // may be empty: all interfaces
    uint16_t port = 0;
    // SSL listeners (in `listeners`): the server context built from the listener's
    // ssl.* keys (listener.name.<name>.ssl.* first, as Kafka resolves them).
    std::shared_ptr<const net::tls_context> tls;
};

struct config_error {
    std::string key;
    std::string message;  // one line, names the key
};

struct broker_config {
    int32_t broker_id = -1;
    std::vector<std::string> log_dirs;
    std::string zookeeper_connect;
    int32_t zookeeper_session_timeout_ms = 18000;
    int32_t zookeeper_connection_timeout_ms = 18000;
    std::vector<listener> listeners;
    std::vector<listener> advertised_listeners;
    std::string rack;
    bool auto_create_topics_enable = true;
    bool delete_topic_enable = true;
    int32_t num_partitions = 1;
    int16_t default_replication_factor = 1;
    int64_t log_segment_bytes = 1073741824;
    int32_t log_index_interval_bytes = 4096;
    int32_t log_index_size_max_bytes = 10485760;
    int32_t message_max_bytes = 1048588;
    int32_t socket_request_max_bytes = 104857600;
    // A request frame with at least this many bytes still to arrive is received straight
    // into its buffer (one copy fewer per produced byte; net/connection.h). 0: never.
    int32_t socket_receive_direct_min_bytes = 65536;
    int16_t offsets_topic_replication_factor = 3;
    int32_t offsets_topic_num_partitions = 50;
    int32_t reactor_threads = 0;  // 0: one per online CPU
    // Zero-copy by default: in the least loaded run (bench/results/20261125-0329-vm.md) splice
    // was the fastest of the three paths; io_uring runs a splice from a cold page on a kernel
    // worker, so it never faults on the reactor. mmap_copy and buffered stay selectable.
    std::string fetch_send_strategy = "splice";
    // log.append.strategy: "buffered" (page cache) or "direct" (O_DIRECT from reused
    // chunks that also cache the newest bytes, storage/tail_cache.h); the chunks' budget
    // is log.append.direct.cache.bytes (default 64 MiB per reactor thread).
    std::string log_append_strategy = "buffered";
    int64_t log_append_direct_cache_bytes = -1;
    int32_t queued_max_requests = 500;
    int64_t connections_max_idle_ms = 600000;
    std::string log_message_timestamp_type = "CreateTime";

    // Every key as given (file + overrides), for DescribeConfigs and logging.
    std::map<std::string, std::string> raw;
};

// Parses Java-properties text (comments, `=`/`:`/space separators, escapes, continuations).
result<std::map<std::string, std::string>> parse_properties(const std::string& text);

// Builds the typed config; returns the first problem found. For SSL listeners this reads
// the key material named by the ssl.* keys (a file that is missing, unreadable or holds a
// key that does not match its certificate is a config error naming the key).
std::variant<broker_config, config_error> make_config(std::map<std::string, std::string> props);

// Reads the file, applies `--override key=value` pairs, validates.
std::variant<broker_config, config_error> load_config(const std::string& path,
                                                      const std::vector<std::string>& overrides);

// Listener lists: "PLAINTEXT://host:9092,SSL://:9093".
std::optional<std::vector<listener>> parse_listeners(const std::string& value,
                                                     const std::map<std::string, std::string>& protocol_map);

}  // namespace sluice::broker
