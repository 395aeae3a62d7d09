#include "net_test_util.h"

#include <doctest/doctest.h>

#include <atomic>

using namespace sluice;
using namespace sluice::net;
using namespace sluice::net::test;

TEST_CASE("connection: pipelined frames are echoed whole and in order") {
    running_reactor rr(reactor_config{}, install_echo);
    int fd = connect_to(rr.port);
    std::vector<uint8_t> wire;
    constexpr int frames = 200;
    for (int i = 0; i < frames; ++i) {
        auto f = make_frame("request-" + std::to_string(i) + std::string(static_cast<size_t>(i * 37), 'x'));
        wire.insert(wire.end(), f.begin(), f.end());
    }
    REQUIRE(write_all(fd, wire.data(), wire.size()));
    for (int i = 0; i < frames; ++i) {
        std::string body;
        REQUIRE(read_frame(fd, body));
        CHECK(body == "request-" + std::to_string(i) + std::string(static_cast<size_t>(i * 37), 'x'));
    }
    auto s = rr.stats();
    CHECK(s.connections_accepted == 1);
    CHECK(s.bytes_sent_memory == wire.size());
    ::close(fd);
    CHECK(rr.wait_until([](reactor& r) { return r.stats().connections_open == 0; }));
}

TEST_CASE("connection: a frame larger than a receive buffer is assembled") {
    reactor_config cfg;
    cfg.recv_buffer_size = 4096;
    cfg.recv_buffer_count = 8;  // forces -ENOBUFS back-pressure along the way
    cfg.direct_recv_min_bytes = 0;  // assembled from provided buffers only
    running_reactor rr(cfg, install_echo);
    int fd = connect_to(rr.port);
    std::string big(3 * 1024 * 1024 + 17, '\0');
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
    auto f = make_frame(big);
    REQUIRE(write_all(fd, f.data(), f.size()));
    std::string body;
    REQUIRE(read_frame(fd, body));
    CHECK(body == big);
    ::close(fd);
}

namespace {
std::string patterned(size_t n, unsigned seed) {
    std::string s(n, '\0');
    for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + seed * 7919) >> 3);
    return s;
}
// on_accept for the pause tests: every frame's bytes go to `got`, reading pauses after the
// first frame, and close-handler calls are counted in `closes`.
std::function<void(std::shared_ptr<connection>)> pause_after_first(std::shared_ptr<connection>& conn,
                                                                   std::vector<std::string>& got,
                                                                   std::atomic<int>& closes) {
    return [&](std::shared_ptr<connection> c) {
        conn = c;
        connection* raw = c.get();
        c->set_frame_handler([&, raw](frame f) {
            got.emplace_back(f.begin(), f.end());
            if (got.size() == 1) raw->pause_reading();
        });
        c->set_close_handler([&](std::string_view) { closes.fetch_add(1); });
    };
}
}  // namespace

// Large frames switch the connection from multishot recv to one RECV into the frame's own
// buffer and back; small frames around them, uneven write sizes and pauses between writes
// move the switch to every point of a frame. Off (min 0) must deliver the same bytes.
TEST_CASE("connection: large frames received in place, pipelined with small ones") {
    for (size_t min : {size_t{64 * 1024}, size_t{0}}) {
        CAPTURE(min);
        reactor_config cfg;
        cfg.direct_recv_min_bytes = min;
        running_reactor rr(cfg, install_echo);
        int fd = connect_to(rr.port);
        std::vector<std::string> bodies = {"s0", patterned(1024 * 1024, 1), "s1", patterned(200 * 1024, 2),
                                           patterned(64 * 1024 + 5, 3), "", patterned(5 * 1024 * 1024 + 3, 4),
                                           "s2", patterned(70 * 1024, 5)};
        std::vector<uint8_t> wire;
        size_t huge_at = 0;  // where the 5 MiB frame starts
        for (const auto& b : bodies) {
            if (b.size() > 5 * 1024 * 1024) huge_at = wire.size();
            auto f = make_frame(b);
            wire.insert(wire.end(), f.begin(), f.end());
        }
        std::thread writer([&] {
            size_t pos = 0;
            unsigned step = 0;
            bool paused = false;
            while (pos < wire.size()) {
                size_t n = std::min<size_t>(wire.size() - pos, 1 + (step * 48271u) % 300000);
                // Stop a moment 100 bytes into the 5 MiB frame: its size prefix is surely
                // seen before the rest arrives, so the bulk of it must come in place.
                if (!paused && pos < huge_at + 100 && pos + n > huge_at + 100) n = huge_at + 100 - pos;
                if (!write_all(fd, wire.data() + pos, n)) return;
                pos += n;
                if (pos == huge_at + 100) {
                    paused = true;
                    std::this_thread::sleep_for(50ms);
                }
                if (++step % 3 == 0) std::this_thread::sleep_for(1ms);
            }
        });
        for (size_t i = 0; i < bodies.size(); ++i) {
            std::string body;
            REQUIRE(read_frame(fd, body));
            CHECK(body.size() == bodies[i].size());
            CHECK(body == bodies[i]);
        }
        writer.join();
        auto s = rr.stats();
        if (min > 0) {
            // How many of the others go in place depends on how much the kernel had
            // buffered when each one started.
            CHECK(s.recv_direct >= 1);
            CHECK(s.bytes_recv_direct >= 5 * 1024 * 1024 - 100);
        } else {
            CHECK(s.recv_direct == 0);
        }
        ::close(fd);
        CHECK(rr.wait_until([](reactor& r) { return r.stats().connections_open == 0; }));
    }
}

TEST_CASE("connection: pause after a large frame holds the next one; EOF inside a large frame delivers nothing") {
    std::shared_ptr<connection> conn;  // reactor thread only
    std::vector<std::string> got;
    std::atomic<int> closes{0};
    running_reactor rr(reactor_config{}, pause_after_first(conn, got, closes));
    int fd = connect_to(rr.port);
    std::vector<std::string> bodies = {patterned(512 * 1024, 6), patterned(768 * 1024, 7), "tail"};
    std::vector<uint8_t> wire;
    for (const auto& b : bodies) {
        auto f = make_frame(b);
        wire.insert(wire.end(), f.begin(), f.end());
    }
    // A's size prefix and a few bytes first, so that its rest is surely received in place.
    std::thread writer([&] {
        if (!write_all(fd, wire.data(), 100)) return;
        std::this_thread::sleep_for(20ms);
        write_all(fd, wire.data() + 100, wire.size() - 100);
    });
    CHECK(rr.wait_until([&](reactor&) { return got.size() == 1; }));
    std::this_thread::sleep_for(100ms);
    CHECK(rr.call([&] { return got.size(); }) == 1);
    rr.call([&] { conn->resume_reading(); });
    writer.join();
    CHECK(rr.wait_until([&](reactor&) { return got.size() == 3; }));
    CHECK(rr.call([&] { return got; }) == bodies);
    // Half of a large frame, then EOF: the connection closes and nothing more is delivered.
    auto partial = make_frame(patterned(1024 * 1024, 8));
    REQUIRE(write_all(fd, partial.data(), 100));
    std::this_thread::sleep_for(20ms);
    REQUIRE(write_all(fd, partial.data() + 100, partial.size() / 2));
    std::this_thread::sleep_for(50ms);
    ::shutdown(fd, SHUT_WR);
    CHECK(rr.wait_until([&](reactor&) { return closes.load() == 1; }));
    CHECK(rr.call([&] { return got.size(); }) == 3);
    CHECK(rr.stats().recv_direct >= 2);
    rr.call([&] { conn.reset(); });
    ::close(fd);
}

TEST_CASE("connection: 1-byte writes from a slow client do not stall other clients") {
    running_reactor rr(reactor_config{}, install_echo);
    int slow = connect_to(rr.port);
    int fast = connect_to(rr.port);
    auto f = make_frame("slowpoke");
    std::thread trickle([&] {
        for (uint8_t b : f) {
            REQUIRE(write_all(slow, &b, 1));
            std::this_thread::sleep_for(100ms);
        }
    });
    // The slow frame takes 1.2 s to arrive; a reader waiting on it would hold pings that long.
    auto worst = std::chrono::steady_clock::duration::zero();
    for (int i = 0; i < 40; ++i) {
        auto start = std::chrono::steady_clock::now();
        auto q = make_frame("ping" + std::to_string(i));
        REQUIRE(write_all(fast, q.data(), q.size()));
        std::string body;
        REQUIRE(read_frame(fast, body));
        CHECK(body == "ping" + std::to_string(i));
        worst = std::max(worst, std::chrono::steady_clock::now() - start);
        std::this_thread::sleep_for(10ms);
    }
    CHECK(worst < 300ms);
    trickle.join();
    std::string body;
    REQUIRE(read_frame(slow, body));
    CHECK(body == "slowpoke");
    ::close(slow);
    ::close(fast);
}

TEST_CASE("connection: oversized and negative frame sizes close the connection") {
    reactor_config cfg;
    cfg.max_frame_bytes = 1024 * 1024;
    std::atomic<int> closes{0};
    std::string reason;
    running_reactor rr(cfg, [&](std::shared_ptr<connection> c) {
        install_echo(c);
        c->set_close_handler([&](std::string_view why) {
            reason = why;
            closes.fetch_add(1);
        });
    });
    SUBCASE("oversized") {
        int fd = connect_to(rr.port);
        uint32_t be = htonl(1024 * 1024 + 1);
        REQUIRE(write_all(fd, &be, 4));
        CHECK(peer_closed(fd));
        ::close(fd);
    }
    SUBCASE("negative") {
        int fd = connect_to(rr.port);
        uint8_t neg[4] = {0xff, 0xff, 0xff, 0xfe};
        REQUIRE(write_all(fd, neg, 4));
        CHECK(peer_closed(fd));
        ::close(fd);
    }
    SUBCASE("exactly the limit is accepted") {
        int fd = connect_to(rr.port);
        auto f = make_frame(std::string(1024 * 1024, 'k'));
        REQUIRE(write_all(fd, f.data(), f.size()));
        std::string body;
        REQUIRE(read_frame(fd, body));
        CHECK(body.size() == 1024 * 1024);
        ::close(fd);
    }
    CHECK(rr.wait_until([&](reactor& r) { return closes.load() == 1 && r.stats().connections_open == 0; }));
}

TEST_CASE("connection: 200 connections at once") {
    reactor_config cfg;
    SUBCASE("default ring") {}
    SUBCASE("tiny SQ: full submission queue is flushed, not an error") { cfg.sq_entries = 8; }
    running_reactor rr(cfg, install_echo);
    constexpr int n = 200;
    std::vector<int> fds;
    for (int i = 0; i < n; ++i) fds.push_back(connect_to(rr.port));
    for (int i = 0; i < n; ++i) {
        auto f = make_frame("client-" + std::to_string(i));
        REQUIRE(write_all(fds[static_cast<size_t>(i)], f.data(), f.size()));
    }
    for (int i = 0; i < n; ++i) {
        std::string body;
        REQUIRE(read_frame(fds[static_cast<size_t>(i)], body));
        CHECK(body == "client-" + std::to_string(i));
    }
    auto s = rr.stats();
    CHECK(s.connections_open == n);
    CHECK(s.connections_accepted == n);
    if (cfg.sq_entries == 8) CHECK(s.sq_full > 0);
    for (int fd : fds) ::close(fd);
    CHECK(rr.wait_until([](reactor& r) { return r.stats().connections_open == 0; }));
}

TEST_CASE("connection: pause_reading holds frames until resume_reading") {
    std::shared_ptr<connection> conn;  // reactor thread only
    std::vector<std::string> got;
    std::atomic<int> closes{0};
    running_reactor rr(reactor_config{}, pause_after_first(conn, got, closes));
    int fd = connect_to(rr.port);
    std::vector<uint8_t> wire;
    for (int i = 0; i < 3; ++i) {
        auto f = make_frame("f" + std::to_string(i));
        wire.insert(wire.end(), f.begin(), f.end());
    }
    REQUIRE(write_all(fd, wire.data(), wire.size()));
    CHECK(rr.wait_until([&](reactor&) { return got.size() == 1; }));
    std::this_thread::sleep_for(100ms);
    CHECK(rr.call([&] { return got.size(); }) == 1);
    rr.call([&] { conn->resume_reading(); });
    CHECK(rr.wait_until([&](reactor&) { return got.size() == 3; }));
    CHECK(rr.call([&] { return got; }) == std::vector<std::string>{"f0", "f1", "f2"});
    // Reading continues after resume.
    auto f = make_frame("f3");
    REQUIRE(write_all(fd, f.data(), f.size()));
    CHECK(rr.wait_until([&](reactor&) { return got.size() == 4; }));
    rr.call([&] { conn.reset(); });
    ::close(fd);
}

TEST_CASE("connection: close() from the broker side ends the socket and calls the close handler once") {
    std::atomic<int> closes{0};
    running_reactor rr(reactor_config{}, [&](std::shared_ptr<connection> c) {
        connection* raw = c.get();
        c->set_frame_handler([raw](frame) {
            raw->close();
            raw->close();
        });
        c->set_close_handler([&](std::string_view) { closes.fetch_add(1); });
    });
    int fd = connect_to(rr.port);
    auto f = make_frame("bye");
    REQUIRE(write_all(fd, f.data(), f.size()));
    CHECK(peer_closed(fd));
    CHECK(rr.wait_until([&](reactor& r) { return closes.load() == 1 && r.stats().connections_open == 0; }));
    ::close(fd);
}

TEST_CASE("connection: EOF in the middle of a frame closes cleanly without delivering it") {
    std::atomic<int> frames{0}, closes{0};
    running_reactor rr(reactor_config{}, [&](std::shared_ptr<connection> c) {
        c->set_frame_handler([&](frame) { frames.fetch_add(1); });
        c->set_close_handler([&](std::string_view) { closes.fetch_add(1); });
    });
    int fd = connect_to(rr.port);
    auto f = make_frame("complete");
    auto partial = make_frame("never finished");
    REQUIRE(write_all(fd, f.data(), f.size()));
    REQUIRE(write_all(fd, partial.data(), partial.size() - 3));
    ::close(fd);
    CHECK(rr.wait_until([&](reactor& r) { return closes.load() == 1 && r.stats().connections_open == 0; }));
    CHECK(frames.load() == 1);
}

TEST_CASE("reactor: two shards share a port with SO_REUSEPORT") {
    std::atomic<int> accepted_a{0}, accepted_b{0};
    reactor_config ca, cb;
    ca.shard_id = 0;
    cb.shard_id = 1;
    running_reactor a(ca, [&](std::shared_ptr<connection> c) {
        accepted_a.fetch_add(1);
        install_echo(c);
    });
    auto created = reactor::create(cb);
    REQUIRE(created.has_value());
    auto b = std::move(*created);
    auto bound = b->listen("127.0.0.1", static_cast<uint16_t>(a.port), [&](std::shared_ptr<connection> c) {
        accepted_b.fetch_add(1);
        install_echo(c);
    });
    REQUIRE(bound.has_value());
    CHECK(*bound == a.port);
    std::thread tb([&] { b->run(); });
    std::vector<int> fds;
    for (int i = 0; i < 64; ++i) {
        int fd = connect_to(a.port);
        auto f = make_frame("x" + std::to_string(i));
        REQUIRE(write_all(fd, f.data(), f.size()));
        std::string body;
        REQUIRE(read_frame(fd, body));
        CHECK(body == "x" + std::to_string(i));
        fds.push_back(fd);
    }
    CHECK(accepted_a.load() + accepted_b.load() == 64);
    CHECK(accepted_a.load() > 0);  // the kernel spreads by hash; 64 all to one side is ~1e-19
    CHECK(accepted_b.load() > 0);
    for (int fd : fds) ::close(fd);
    b->stop();
    tb.join();
}
