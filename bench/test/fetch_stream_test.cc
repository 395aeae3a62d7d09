// fetch_stream against the whole-frame path: the same Fetch response, fed through a
// socket in a small window, must give the summaries scan_batches gives on the frame --
// over a plain socket and over TLS (bench_tls.h, a real OpenSSL handshake and records).
#include "bench/fetch_stream.h"

#include "bench/bench_tls.h"
#include "bench/bench_util.h"
#include "bench/kafka_wire.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <memory>
#include <string>

#include <thread>
#include <vector>

using namespace sluice::bench;
using namespace sluice::bench::wire;

namespace {

struct part_spec {
    int32_t partition;
    int16_t error;
    int32_t aborted;
    std::vector<int32_t> batch_records;  // one batch per entry
    size_t cut;                          // bytes cut off the end (a partial batch)
};

// A Fetch response frame (size prefix included) of one topic, at `version` (4..11).
std::vector<uint8_t> response_frame(int16_t version, int32_t corr, const std::vector<part_spec>& parts,
                                    std::vector<std::vector<uint8_t>>& records_out) {
    std::vector<uint8_t> f;
    writer w(f);
    w.i32(0);
    w.i32(corr);
    w.i32(0);  // throttle
    if (version >= 7) {
        w.i16(0);
        w.i32(0);
    }
    w.i32(1);
    w.string("bench-topic");
    w.i32(static_cast<int32_t>(parts.size()));
    std::vector<uint8_t> value(333, 0x5a);
    for (auto& p : parts) {
        std::vector<uint8_t> records;
        int64_t base = 0;
        for (int32_t n : p.batch_records) {
            size_t at = records.size();
            append_record_batch(records, n, value, 1);
            for (int i = 0; i < 8; ++i) records[at + static_cast<size_t>(i)] = static_cast<uint8_t>(base >> (56 - 8 * i));
            base += n;
        }
        records.resize(records.size() - p.cut);
        w.i32(p.partition);
        w.i16(p.error);
        w.i64(base + 7);  // high watermark
        w.i64(base + 7);  // last stable offset
        if (version >= 5) w.i64(0);
        w.i32(p.aborted < 0 ? -1 : p.aborted);
        for (int32_t a = 0; a < p.aborted; ++a) {
            w.i64(99);
            w.i64(a);
        }
        if (version >= 11) w.i32(-1);
        w.i32(static_cast<int32_t>(records.size()));
        w.raw(records.data(), records.size());
        records_out.push_back(std::move(records));
    }
    w.patch_i32(0, static_cast<int32_t>(f.size() - 4));
    return f;
}

// A connected socket pair whose reads and writes give up after 5 s: a broken test fails
// instead of hanging.
void bounded_pair(int fds[2]) {
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    timeval tv{5, 0};
    for (int i = 0; i < 2; ++i) {
        setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(fds[i], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    }
}

// Both ends of a TLS connection over fds: the server (self-signed) on its own thread.
struct tls_pair {
    std::unique_ptr<tls_stream> client, server;
    std::string client_why, server_why;
};

tls_pair handshake_pair(int fds[2], size_t write_buffer_bytes) {
    std::string why;
    auto server_ctx = tls_context::self_signed_server(why);
    REQUIRE_MESSAGE(server_ctx, why);
    auto client_ctx = tls_context::client("", why);
    REQUIRE_MESSAGE(client_ctx, why);
    tls_pair p;
    std::thread server([&] {
        auto s = tls_stream::handshake(*server_ctx, fds[1], "", write_buffer_bytes, p.server_why);
        if (s) p.server = std::move(*s);
    });
    auto c = tls_stream::handshake(*client_ctx, fds[0], "127.0.0.1", write_buffer_bytes, p.client_why);
    if (c) p.client = std::move(*c);
    server.join();
    return p;
}

void check_streamed(int16_t version, size_t window, bool tls) {
    std::vector<part_spec> parts = {
        {0, 0, -1, {1, 50, 700, 3}, 0},
        {3, 0, 2, {10, 10}, 100},  // a partial trailing batch
        {7, 6, 0, {}, 0},          // an error, no records
        {9, 0, 0, {2000}, 0},      // one batch larger than a small window
    };
    std::vector<std::vector<uint8_t>> records;
    auto frame = response_frame(version, 42, parts, records);
    int fds[2];
    bounded_pair(fds);
    tls_pair link;
    if (tls) {
        // A small write buffer, so frames leave in several flushes of whole records.
        link = handshake_pair(fds, 16 * 1024);
        REQUIRE_MESSAGE(link.client, link.client_why);
        REQUIRE_MESSAGE(link.server, link.server_why);
        CHECK(link.client->describe().rfind("TLSv1.3 ", 0) == 0);
    }
    socket_io reader{fds[0], link.client.get()};
    socket_io sender{fds[1], link.server.get()};
    std::thread writer_thread([&] {
        // Two frames back to back: the stream must stop exactly at the first one's end.
        (void)sender.write_all(frame.data(), frame.size());
        frame[4 + 3] = 43;  // correlation id of the second frame
        (void)sender.write_all(frame.data(), frame.size());
    });
    fetch_stream stream(window);
    std::vector<partition_summary> got;
    int16_t top_error = -1;
    for (int32_t corr : {42, 43}) {
        REQUIRE_FALSE(stream.read_response(reader, version, corr, top_error, got));
        CHECK(top_error == 0);
        REQUIRE(got.size() == parts.size());
        for (size_t i = 0; i < parts.size(); ++i) {
            auto want = scan_batches(records[i], false);
            CHECK(got[i].partition == parts[i].partition);
            CHECK(got[i].error == parts[i].error);
            CHECK(got[i].scan.batches == want.batches);
            CHECK(got[i].scan.records == want.records);
            CHECK(got[i].scan.bytes == want.bytes);
            CHECK(got[i].scan.next_offset == want.next_offset);
        }
    }
    CHECK(got[0].scan.next_offset == 754);
    CHECK(got[1].scan.batches == 1);
    writer_thread.join();
    close(fds[0]);
    close(fds[1]);
}

}  // namespace

TEST_CASE("fetch_stream summarises responses like the whole-frame scan, at any window") {
    for (int16_t version : {4, 5, 7, 11})
        for (size_t window : {4096u, 65536u, 1u << 20}) {
            CAPTURE(version);
            CAPTURE(window);
            check_streamed(version, window, false);
        }
}

TEST_CASE("fetch_stream reads the same responses through TLS") {
    for (int16_t version : {4, 11})
        for (size_t window : {4096u, 1u << 20}) {
            CAPTURE(version);
            CAPTURE(window);
            check_streamed(version, window, true);
        }
}

TEST_CASE("a TLS client fails the handshake, bounded, against a plaintext peer") {
    int fds[2];
    bounded_pair(fds);
    const char reply[] = "HTTP/1.0 400 Bad Request\r\n\r\n";  // not a TLS record
    REQUIRE_FALSE(write_all(fds[1], reply, sizeof reply - 1));
    shutdown(fds[1], SHUT_WR);
    std::string why;
    auto ctx = tls_context::client("", why);
    REQUIRE(ctx);
    uint64_t t0 = now_ns();
    auto s = tls_stream::handshake(*ctx, fds[0], "127.0.0.1", tls_stream::default_write_buffer_bytes, why);
    CHECK_FALSE(s);
    CHECK_FALSE(why.empty());
    CHECK(now_ns() - t0 < 4'000'000'000ull);
    close(fds[0]);
    close(fds[1]);
}

TEST_CASE("a TLS client with a CA file refuses a server that certificate does not sign") {
    // The server's certificate is self-signed and fresh, so the system CA bundle cannot
    // have signed it: the handshake must fail on the certificate.
    const char* bundle = "/etc/ssl/certs/ca-certificates.crt";
    if (access(bundle, R_OK) != 0) return;
    std::string why;
    auto server_ctx = tls_context::self_signed_server(why);
    REQUIRE(server_ctx);
    auto client_ctx = tls_context::client(bundle, why);
    REQUIRE_MESSAGE(client_ctx, why);
    int fds[2];
    bounded_pair(fds);
    std::string server_why;
    std::thread server([&] {
        (void)tls_stream::handshake(*server_ctx, fds[1], "", tls_stream::default_write_buffer_bytes, server_why);
    });
    auto c = tls_stream::handshake(*client_ctx, fds[0], "127.0.0.1", tls_stream::default_write_buffer_bytes, why);
    shutdown(fds[0], SHUT_RDWR);  // the server may still wait for the client's Finished
    server.join();
    CHECK_FALSE(c);
    CHECK(why.find("certificate") != std::string::npos);
    close(fds[0]);
    close(fds[1]);
}

TEST_CASE("fetch_stream rejects a wrong correlation id and a truncated frame") {
    std::vector<std::vector<uint8_t>> records;
    auto frame = response_frame(11, 5, {{0, 0, -1, {3}, 0}}, records);
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    REQUIRE_FALSE(write_all(fds[1], frame.data(), frame.size()));
    fetch_stream stream(4096);
    std::vector<partition_summary> got;
    int16_t top_error = 0;
    CHECK(stream.read_response(socket_io{fds[0]}, 11, 6, top_error, got) == std::errc::protocol_error);
    close(fds[0]);
    close(fds[1]);

    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    frame.resize(frame.size() - 10);  // the size prefix promises 10 more bytes than follow
    REQUIRE_FALSE(write_all(fds[1], frame.data(), frame.size()));
    shutdown(fds[1], SHUT_WR);
    CHECK(stream.read_response(socket_io{fds[0]}, 11, 5, top_error, got) == std::errc::connection_aborted);
    close(fds[0]);
    close(fds[1]);
}
