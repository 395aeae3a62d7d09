#include "bench/kafka_conn.h"

#include "bench/bench_util.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <thread>

namespace sluice::bench {

namespace {
constexpr uint32_t response_bytes_max = 1u << 30;
}  // namespace

result<std::unique_ptr<kafka_connection>> kafka_connection::open(const std::string& host, uint16_t port,
                                                                  int io_timeout_ms,
                                                                  std::shared_ptr<const tls_context> tls,
                                                                  std::string* why) {
    auto fd = tcp_connect(host, port, std::min(io_timeout_ms, 5000), io_timeout_ms);
    if (!fd) return fd.error();
    std::unique_ptr<kafka_connection> conn(new kafka_connection(*fd, fmt::format("{}:{}", host, port)));
    if (tls) {
        std::string reason;
        auto session = tls_stream::handshake(std::move(tls), *fd, host, tls_stream::default_write_buffer_bytes, reason);
        if (!session) {
            if (why) *why = reason;
            return session.error();
        }
        conn->_tls = std::move(*session);
    }
    return conn;
}

kafka_connection::~kafka_connection() {
    _tls.reset();
    ::close(_fd);
}

std::error_code kafka_connection::send(std::span<const uint8_t> frame) {
    return io().write_all(frame.data(), frame.size());
}

result<std::span<const uint8_t>> kafka_connection::receive(int32_t correlation_id) {
    auto io = this->io();
    uint8_t size_be[4];
    if (auto ec = io.read_exact(size_be, 4)) return ec;
    uint32_t size = (uint32_t{size_be[0]} << 24) | (uint32_t{size_be[1]} << 16) | (uint32_t{size_be[2]} << 8) | size_be[3];
    if (size < 4 || size > response_bytes_max) return std::errc::bad_message;
    if (size > _rx_capacity) {
        _rx.reset(new uint8_t[size]);  // not value-initialised: it is overwritten by the read
        _rx_capacity = size;
    }
    if (auto ec = io.read_exact(_rx.get(), size)) return ec;
    wire::reader r({_rx.get(), 4});
    if (r.i32() != correlation_id) return std::errc::protocol_error;
    return std::span<const uint8_t>(_rx.get() + 4, size - 4);
}

result<std::span<const uint8_t>> kafka_connection::roundtrip(std::span<const uint8_t> frame, int32_t correlation_id) {
    if (auto ec = send(frame)) return ec;
    return receive(correlation_id);
}

namespace {

result<wire::api_versions_response> ask_api_versions(kafka_connection& conn, const std::string& client_id) {
    std::vector<uint8_t> frame;
    int32_t corr = conn.next_correlation_id();
    wire::encode_api_versions_v0(frame, corr, client_id);
    auto body = conn.roundtrip(frame, corr);
    if (!body) return body.error();
    return wire::decode_api_versions_v0(*body);
}

result<wire::metadata_response> ask_metadata(kafka_connection& conn, const discovery_options& opt, int16_t version) {
    std::vector<uint8_t> frame;
    int32_t corr = conn.next_correlation_id();
    wire::encode_metadata(frame, version, corr, opt.client_id, {opt.topic}, false);
    auto body = conn.roundtrip(frame, corr);
    if (!body) return body.error();
    return wire::decode_metadata(version, *body);
}

// CreateTopics must go to the controller; TOPIC_ALREADY_EXISTS counts as success (a
// concurrent creator, or auto-creation by an older Metadata version).
bool create_topic(const cluster_view& view, const discovery_options& opt, std::string& why) {
    if (view.create_topics_version < 0) {
        why = fmt::format("topic '{}' does not exist and the broker offers no CreateTopics", opt.topic);
        return false;
    }
    auto controller = view.brokers.find(view.controller_id);
    if (controller == view.brokers.end()) {
        why = fmt::format("topic '{}' does not exist and no controller is known (controller id {})", opt.topic,
                          view.controller_id);
        return false;
    }
    std::string reason;
    auto conn = kafka_connection::open(controller->second.first, controller->second.second, opt.io_timeout_ms, opt.tls,
                                       &reason);
    if (!conn) {
        why = fmt::format("cannot connect to controller {}:{}: {}", controller->second.first,
                          controller->second.second, reason.empty() ? conn.error().message() : reason);
        return false;
    }
    std::vector<uint8_t> frame;
    int32_t corr = (*conn)->next_correlation_id();
    wire::encode_create_topics(frame, view.create_topics_version, corr, opt.client_id, opt.topic,
                               opt.create_partitions, opt.replication_factor, opt.io_timeout_ms);
    auto body = (*conn)->roundtrip(frame, corr);
    auto results = body ? wire::decode_create_topics(view.create_topics_version, *body)
                        : result<std::vector<wire::create_topic_result>>(body.error());
    if (!results) {
        why = fmt::format("CreateTopics to {} failed: {}", (*conn)->peer(), results.error().message());
        return false;
    }
    for (auto& t : *results) {
        if (t.error != 0 && t.error != 36) {
            why = fmt::format("CreateTopics '{}': {}", t.name, wire::error_name(t.error));
            return false;
        }
    }
    return true;
}

// True when every partition of the topic has a leader; fills view.leaders.
bool take_leaders(const wire::metadata_response::topic& t, cluster_view& view) {
    if (t.error != 0 || t.partitions.empty()) return false;
    view.leaders.assign(t.partitions.size(), -1);
    for (auto& p : t.partitions) {
        if (p.index < 0 || static_cast<size_t>(p.index) >= view.leaders.size() || p.leader < 0) return false;
        view.leaders[static_cast<size_t>(p.index)] = p.leader;
    }
    return true;
}

}  // namespace

result<cluster_view> discover(const discovery_options& opt, std::string& why) {
    std::string reason;
    auto conn = kafka_connection::open(opt.host, opt.port, opt.io_timeout_ms, opt.tls, &reason);
    if (!conn) {
        // A handshake that fails before any certificate is seen usually means a PLAINTEXT port.
        bool certificate = reason.find("certificate") != std::string::npos;
        why = !reason.empty() ? fmt::format("{}:{}: {}{}", opt.host, opt.port, reason,
                                            certificate ? "" : " (is that an SSL listener?)")
                              : fmt::format("cannot connect to {}:{}: {} (is the broker running and listening there?)",
                                            opt.host, opt.port, conn.error().message());
        return conn.error();
    }
    auto versions = ask_api_versions(**conn, opt.client_id);
    if (!versions || versions->error != 0) {
        why = versions ? fmt::format("ApiVersions v0: {}", wire::error_name(versions->error))
                       : fmt::format("ApiVersions v0 to {}: {}", (*conn)->peer(), versions.error().message());
        return std::errc::protocol_error;
    }
    cluster_view view;
    view.produce_version = versions->pick(wire::api::produce, 3, opt.produce_version_max);
    view.fetch_version = versions->pick(wire::api::fetch, 4, opt.fetch_version_max);
    view.metadata_version = versions->pick(wire::api::metadata, 1, opt.metadata_version_max);
    // Capped at v3, as real clients (librdkafka 2, kafkajs 3): librdkafka's mock broker,
    // our reference broker, writes 4 stray bytes per partition from v4 on.
    view.list_offsets_version = versions->pick(wire::api::list_offsets, 1, 3);
    view.create_topics_version = versions->pick(wire::api::create_topics, 0, 7);
    if (view.metadata_version < 0) {
        why = "the broker offers no Metadata version from v1";
        return std::errc::protocol_not_supported;
    }
    bool created = false;
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(opt.wait_leaders_ms);
    while (true) {
        auto md = ask_metadata(**conn, opt, view.metadata_version);
        if (!md) {
            why = fmt::format("Metadata v{} to {}: {}", view.metadata_version, (*conn)->peer(), md.error().message());
            return md.error();
        }
        view.brokers.clear();
        for (auto& b : md->brokers) view.brokers[b.id] = {b.host, static_cast<uint16_t>(b.port)};
        view.controller_id = md->controller_id;
        const wire::metadata_response::topic* topic = nullptr;
        for (auto& t : md->topics)
            if (t.name == opt.topic) topic = &t;
        if (topic && take_leaders(*topic, view)) return view;
        bool missing = !topic || topic->error == 3;
        if (missing && !opt.create) {
            why = fmt::format("topic '{}' does not exist", opt.topic);
            return std::errc::no_such_file_or_directory;
        }
        if (missing && !created) {
            if (!create_topic(view, opt, why)) return std::errc::operation_not_permitted;
            created = true;
        }
        if (std::chrono::steady_clock::now() > deadline) {
            why = fmt::format("topic '{}' has partitions without a leader after {} ms ({})", opt.topic,
                              opt.wait_leaders_ms, topic ? wire::error_name(topic->error) : "not in metadata");
            return std::errc::timed_out;
        }
        // Leader election is asynchronous on the broker; polling metadata is how clients wait.
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
}

result<std::map<int32_t, int64_t>> list_offsets(kafka_connection& conn, int16_t version, const std::string& client_id,
                                                const std::string& topic, const std::vector<int32_t>& partitions,
                                                int64_t timestamp) {
    std::vector<wire::list_offsets_query> queries;
    for (int32_t p : partitions) queries.push_back({p, timestamp});
    std::vector<uint8_t> frame;
    int32_t corr = conn.next_correlation_id();
    wire::encode_list_offsets(frame, version, corr, client_id, topic, queries);
    auto body = conn.roundtrip(frame, corr);
    if (!body) return body.error();
    auto results = wire::decode_list_offsets(version, *body);
    if (!results) return results.error();
    std::map<int32_t, int64_t> out;
    for (auto& r : *results) {
        if (r.error != 0) return std::errc::protocol_error;
        out[r.partition] = r.offset;
    }
    if (out.size() != partitions.size()) return std::errc::protocol_error;
    return out;
}

}  // namespace sluice::bench
