#pragma once
// A blocking Kafka client connection for the load generator, and the cluster discovery
// it needs before the timed part of a run (ApiVersions, Metadata, CreateTopics,
// ListOffsets). Blocking sockets with SO_RCVTIMEO/SO_SNDTIMEO keep every call bounded:
// a broker that stops answering turns into std::errc::resource_unavailable_try_again
// (EAGAIN) after io_timeout_ms, never a hang. With a tls_context the connection speaks
// TLS (bench_tls.h) over the same blocking socket; without one, bytes go straight to
// read()/write().
//
// Concurrency: a connection belongs to one thread. Pipelining is the caller's business:
// send() several frames, then receive() their responses in order.
#include "base/result.h"
#include "bench/bench_tls.h"
#include "bench/kafka_wire.h"

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace sluice::bench {

class kafka_connection {
public:
    // tls: null for PLAINTEXT. A failed TLS handshake is std::errc::protocol_error (or the
    // socket error), with OpenSSL's reason in `why` when given.
    static result<std::unique_ptr<kafka_connection>> open(const std::string& host, uint16_t port, int io_timeout_ms,
                                                          std::shared_ptr<const tls_context> tls = nullptr,
                                                          std::string* why = nullptr);
    ~kafka_connection();
    kafka_connection(const kafka_connection&) = delete;
    kafka_connection& operator=(const kafka_connection&) = delete;

    int32_t next_correlation_id() { return _next_correlation_id++; }
    std::error_code send(std::span<const uint8_t> frame);
    // Reads the next response frame; it must carry `correlation_id` (responses come back
    // in request order). Returns the body after the correlation id; valid until the next call.
    result<std::span<const uint8_t>> receive(int32_t correlation_id);
    // send + receive of one frame built with next_correlation_id().
    result<std::span<const uint8_t>> roundtrip(std::span<const uint8_t> frame, int32_t correlation_id);
    const std::string& peer() const { return _peer; }
    // For readers that stream a response (fetch_stream); they must consume whole frames.
    socket_io io() const { return {_fd, _tls.get()}; }
    // "TLSv1.3 TLS_AES_256_GCM_SHA384", or "" for PLAINTEXT.
    std::string tls_description() const { return _tls ? _tls->describe() : std::string(); }

private:
    kafka_connection(int fd, std::string peer) : _fd(fd), _peer(std::move(peer)) {}
    int _fd;
    std::unique_ptr<tls_stream> _tls;  // freed before _fd is closed
    std::string _peer;
    int32_t _next_correlation_id = 1;
    std::unique_ptr<uint8_t[]> _rx;
    size_t _rx_capacity = 0;
};

// What a run needs to know about the cluster and the topic.
struct cluster_view {
    std::map<int32_t, std::pair<std::string, uint16_t>> brokers;  // id -> host, port
    int32_t controller_id = -1;
    std::vector<int32_t> leaders;  // per partition index
    int16_t produce_version = -1;
    int16_t fetch_version = -1;
    int16_t metadata_version = -1;
    int16_t list_offsets_version = -1;
    int16_t create_topics_version = -1;
};

struct discovery_options {
    std::string host;
    uint16_t port = 0;
    std::string topic;
    std::string client_id;
    bool create = false;           // create the topic if missing (CreateTopics to the controller)
    int32_t create_partitions = 1;
    int16_t replication_factor = 1;
    int io_timeout_ms = 10000;
    int wait_leaders_ms = 30000;   // bound on waiting for every partition to have a leader
    int16_t produce_version_max = 7;
    int16_t fetch_version_max = 11;
    int16_t metadata_version_max = 12;
    std::shared_ptr<const tls_context> tls;  // null: PLAINTEXT
};

// Connects to the bootstrap broker and returns the topic's leaders; errors carry a
// one-line explanation in `why`.
result<cluster_view> discover(const discovery_options& opt, std::string& why);

// Earliest (timestamp -2) or latest (-1) offsets of the given partitions, asked of one broker.
result<std::map<int32_t, int64_t>> list_offsets(kafka_connection& conn, int16_t version, const std::string& client_id,
                                                const std::string& topic, const std::vector<int32_t>& partitions,
                                                int64_t timestamp);

}  // namespace sluice::bench
