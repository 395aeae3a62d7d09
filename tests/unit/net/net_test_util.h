#pragma once
// Helpers for net tests: a reactor running on its own thread, and plain blocking client
// sockets on 127.0.0.1 with timeouts so that no test can hang.
#include "net/connection.h"
#include "net/reactor.h"
#include "base/log.h"

#include <cstdlib>

#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace sluice::net::test {

using namespace std::chrono_literals;

struct running_reactor {
    std::unique_ptr<reactor> r;
    std::thread thread;
    int port = 0;

    explicit running_reactor(reactor_config cfg,
                             std::function<void(std::shared_ptr<connection>)> on_accept = {}) {
        auto created = reactor::create(cfg);
        REQUIRE(created.has_value());
        r = std::move(*created);
        if (on_accept) {
            auto bound = r->listen("127.0.0.1", 0, std::move(on_accept));
            REQUIRE(bound.has_value());
            port = *bound;
        }
        thread = std::thread([this] { r->run(); });
    }
    ~running_reactor() {
        r->stop();
        thread.join();
    }

    // Runs fn on the reactor thread and returns its result (bounded wait).
    template <typename F>
    auto call(F fn) -> decltype(fn()) {
        using T = decltype(fn());
        auto p = std::make_shared<std::promise<T>>();
        auto fut = p->get_future();
        r->post([p, fn = std::move(fn)]() mutable {
            if constexpr (std::is_void_v<T>) {
                fn();
                p->set_value();
            } else {
                p->set_value(fn());
            }
        });
        REQUIRE(fut.wait_for(10s) == std::future_status::ready);
        return fut.get();
    }

    reactor_stats stats() {
        return call([this] { return r->stats(); });
    }

    // Polls pred (on the reactor thread) until true or timeout.
    bool wait_until(std::function<bool(reactor&)> pred, std::chrono::milliseconds limit = 5s) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            if (call([&] { return pred(*r); })) return true;
            std::this_thread::sleep_for(5ms);
        }
        return false;
    }
};

inline int connect_to(int port, std::chrono::milliseconds timeout = 10s) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int rc;
    do {
        rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    } while (rc != 0 && errno == EINTR);
    REQUIRE(rc == 0);
    return fd;
}

inline bool write_all(int fd, const void* data, size_t n) {
    auto* p = static_cast<const uint8_t*>(data);
    while (n > 0) {
        ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        p += w;
        n -= static_cast<size_t>(w);
    }
    return true;
}

// Reads exactly n bytes; false on EOF, error or timeout.
inline bool read_exact(int fd, void* data, size_t n) {
    auto* p = static_cast<uint8_t*>(data);
    while (n > 0) {
        ssize_t r = ::recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;  // SO_RCVTIMEO turns restarts into EINTR
        if (r <= 0) {
            MESSAGE("read_exact: recv returned " << r << " errno " << errno << " with " << n << " bytes left");
            return false;
        }
        p += r;
        n -= static_cast<size_t>(r);
    }
    return true;
}

// True when the peer closed (EOF or reset) within the socket's receive timeout.
inline bool peer_closed(int fd) {
    uint8_t buf[4096];
    for (int i = 0; i < 10000; ++i) {
        ssize_t r = ::recv(fd, buf, sizeof buf, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r == 0) return true;
        if (r < 0) return errno == ECONNRESET;
    }
    return false;
}

inline std::vector<uint8_t> make_frame(const std::string& body) {
    std::vector<uint8_t> f(4 + body.size());
    uint32_t be = htonl(static_cast<uint32_t>(body.size()));
    std::memcpy(f.data(), &be, 4);
    std::memcpy(f.data() + 4, body.data(), body.size());
    return f;
}

inline bool read_frame(int fd, std::string& body) {
    uint32_t be = 0;
    if (!read_exact(fd, &be, 4)) return false;
    body.resize(ntohl(be));
    return read_exact(fd, body.data(), body.size());
}

// An echo server: each frame goes back with its size prefix.
inline void install_echo(const std::shared_ptr<connection>& conn) {
    connection* c = conn.get();  // the handler runs only while the connection lives
    conn->set_frame_handler([c](frame f) {
        out_message m;
        uint32_t be = htonl(static_cast<uint32_t>(f.size()));
        m.append(&be, 4);
        m.append(f.data(), f.size());
        c->send(std::move(m));
    });
}

}  // namespace sluice::net::test

namespace sluice::net::test {
// SLUICE_TEST_DEBUG=1 turns on debug logging for a failing run.
inline const bool debug_logging = [] {
    if (std::getenv("SLUICE_TEST_DEBUG") != nullptr) sluice::log::set_level(sluice::log::level::debug);
    return true;
}();
}  // namespace sluice::net::test
