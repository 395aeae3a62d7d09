#include "net/listener.h"

#include "base/log.h"
#include "net/connection.h"
#include "net/reactor.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

namespace sluice::net {
namespace {

constexpr int listen_backlog = 4096;

result<sockaddr_storage> resolve(const std::string& host, uint16_t port, socklen_t& len) {
    sockaddr_storage ss{};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    std::string h = host == "localhost" ? "127.0.0.1" : host;
    if (h.empty() || h == "0.0.0.0") {
        v4->sin_family = AF_INET;
        v4->sin_addr.s_addr = htonl(INADDR_ANY);
        v4->sin_port = htons(port);
        len = sizeof(sockaddr_in);
        return ss;
    }
    if (::inet_pton(AF_INET, h.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        len = sizeof(sockaddr_in);
        return ss;
    }
    std::string h6 = h.size() > 2 && h.front() == '[' ? h.substr(1, h.size() - 2) : h;
    if (::inet_pton(AF_INET6, h6.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        len = sizeof(sockaddr_in6);
        return ss;
    }
    // A host name: blocking resolution, acceptable once at startup, never per request.
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(h.c_str(), nullptr, &hints, &res) != 0 || res == nullptr) {
        return std::errc::address_not_available;
    }
    std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
    len = res->ai_addrlen;
    ::freeaddrinfo(res);
    if (ss.ss_family == AF_INET) v4->sin_port = htons(port);
    else v6->sin6_port = htons(port);
    return ss;
}

std::string format_peer(const sockaddr_storage& ss) {
    char buf[INET6_ADDRSTRLEN] = "?";
    if (ss.ss_family == AF_INET) {
        auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
        ::inet_ntop(AF_INET, &a->sin_addr, buf, sizeof buf);
        return fmt::format("{}:{}", buf, ntohs(a->sin_port));
    }
    if (ss.ss_family == AF_INET6) {
        auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
        ::inet_ntop(AF_INET6, &a->sin6_addr, buf, sizeof buf);
        return fmt::format("[{}]:{}", buf, ntohs(a->sin6_port));
    }
    return "?";
}

}  // namespace

listener::listener(reactor& r, int fd, int port, accept_fn on_accept, std::shared_ptr<const tls_context> tls)
    : completion("accept"), _reactor(r), _fd(fd), _port(port), _on_accept(std::move(on_accept)),
      _tls(std::move(tls)) {}

listener::~listener() {
    if (_fd >= 0) ::close(_fd);
}

result<std::unique_ptr<listener>> listener::open(reactor& r, const std::string& host,
                                                 uint16_t port, accept_fn on_accept,
                                                 std::shared_ptr<const tls_context> tls) {
    socklen_t len = 0;
    auto addr = resolve(host, port, len);
    if (!addr) return addr.error();
    int fd = ::socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return errno_code(errno);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0 ||
        ::bind(fd, reinterpret_cast<const sockaddr*>(&*addr), len) != 0 ||
        ::listen(fd, listen_backlog) != 0) {
        int e = errno;
        log::error("net", "shard {}: cannot listen on {}:{}: {}", r.shard_id(), host, port,
                   strerror(e));
        ::close(fd);
        return errno_code(e);
    }
    sockaddr_storage bound{};
    socklen_t bound_len = sizeof bound;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &bound_len);
    int bound_port = bound.ss_family == AF_INET
                         ? ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port)
                         : ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
    log::info("net", "shard {} listening on {}{}", r.shard_id(), format_peer(bound), tls ? " (TLS)" : "");
    return std::unique_ptr<listener>(new listener(r, fd, bound_port, std::move(on_accept), std::move(tls)));
}

void listener::arm() {
    if (_armed || _closed) return;
    io_uring_sqe* sqe = _reactor.sqe_for(this);
    io_uring_prep_multishot_accept(sqe, _fd, nullptr, nullptr, SOCK_CLOEXEC);
    _armed = true;
}

void listener::close() {
    if (_closed) return;
    _closed = true;
    if (_armed) _reactor.cancel(this);
    // The socket itself is closed by the destructor, after the accept has surely ended:
    // closing it now could hand its fd number to a new socket the accept still refers to.
    ::shutdown(_fd, SHUT_RDWR);
}

void listener::complete(int32_t res, uint32_t flags) {
    bool more = (flags & IORING_CQE_F_MORE) != 0;
    if (!more) _armed = false;
    if (res >= 0) {
        if (_closed) {
            ::close(res);
        } else {
            accepted(res);
        }
    } else if (res != -ECANCELED && !_closed) {
        log::warn("net", "shard {}: accept on port {} failed: {}", _reactor.shard_id(), _port,
                  strerror(-res));
        if (!more && (res == -EMFILE || res == -ENFILE || res == -ENOMEM || res == -ENOBUFS)) {
            // Out of descriptors or memory: re-arming at once would spin; retry shortly.
            _reactor.add_timer(std::chrono::milliseconds(100), [this] { arm(); });
            return;
        }
    }
    if (!more && !_closed) arm();
}

void listener::accepted(int fd) {
    int one = 1;
    // Kafka responses are written whole; Nagle would only delay the last segment.
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof peer;
    ::getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &peer_len);
    ++_reactor.counters().connections_accepted;
    reactor_group* group = _reactor.group();
    unsigned owner = group != nullptr ? group->claim() : _reactor.shard_id();
    if (owner == _reactor.shard_id()) return serve(fd, format_peer(peer));
    ++_reactor.counters().connections_handed_off;
    reactor& to = group->member(owner);
    log::debug("net", "shard {} hands {} to shard {}", _reactor.shard_id(), format_peer(peer), owner);
    to.post([&to, slot = _slot, fd, who = format_peer(peer)]() mutable { to.adopt(slot, fd, std::move(who)); });
}

void listener::serve(int fd, std::string peer) {
    auto conn = connection::make(_reactor, fd, std::move(peer), _tls);
    log::debug("net", "shard {} serves {}", _reactor.shard_id(), conn->peer());
    if (_on_accept) _on_accept(conn);
    conn->start();
}

}  // namespace sluice::net
