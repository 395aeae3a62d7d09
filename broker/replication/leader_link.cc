#include "broker/replication/leader_link.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

namespace sluice::broker::replication {
namespace {

std::error_code errno_code(int e = errno) { return {e, std::generic_category()}; }

}  // namespace

std::error_code leader_link::connect(const std::string& host, int32_t port) {
    close();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* res = nullptr;
    // Endpoints are what brokers registered (usually numeric); a name resolves through
    // the system resolver, which blocks this thread only.
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res) != 0 || res == nullptr)
        return std::make_error_code(std::errc::host_unreachable);
    int fd = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        auto ec = errno_code();
        ::freeaddrinfo(res);
        return ec;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int rc = ::connect(fd, res->ai_addr, res->ai_addrlen);
    int err = errno;
    ::freeaddrinfo(res);
    if (rc != 0 && err != EINPROGRESS) {
        ::close(fd);
        return errno_code(err);
    }
    _fd = fd;
    return {};
}

std::error_code leader_link::finish_connect() {
    int err = 0;
    socklen_t len = sizeof(err);
    if (::getsockopt(_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) return errno_code();
    return err == 0 ? std::error_code{} : errno_code(err);
}

std::error_code leader_link::send_frame(std::span<const uint8_t> frame, int timeout_ms,
                                        const std::atomic<bool>& cancel) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    size_t sent = 0;
    while (sent < frame.size()) {
        ssize_t n = ::send(_fd, frame.data() + sent, frame.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) return errno_code();
        if (cancel.load()) return std::make_error_code(std::errc::operation_canceled);
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::make_error_code(std::errc::timed_out);
        pollfd pfd{_fd, POLLOUT, 0};
        if (::poll(&pfd, 1, static_cast<int>(std::min<int64_t>(left.count(), 100))) < 0 && errno != EINTR)
            return errno_code();
    }
    return {};
}

result<bool> leader_link::read_some(uint32_t max_frame_bytes) {
    while (true) {
        uint8_t* dst;
        size_t want;
        if (_size_have < 4) {
            dst = _size_be + _size_have;
            want = 4 - _size_have;
        } else {
            dst = _frame->data() + _frame_have;
            want = _frame->size() - _frame_have;
        }
        ssize_t n = ::recv(_fd, dst, want, 0);
        if (n == 0) return std::make_error_code(std::errc::connection_reset);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) return false;
            return errno_code();
        }
        if (_size_have < 4) {
            _size_have += static_cast<size_t>(n);
            if (_size_have < 4) continue;
            uint32_t size = (uint32_t{_size_be[0]} << 24) | (uint32_t{_size_be[1]} << 16) |
                            (uint32_t{_size_be[2]} << 8) | _size_be[3];
            if (size < 4 || size > max_frame_bytes) return std::make_error_code(std::errc::message_size);
            _frame = std::make_shared<std::vector<uint8_t>>(size);
            _frame_have = 0;
            continue;
        }
        _frame_have += static_cast<size_t>(n);
        if (_frame_have == _frame->size()) return true;
    }
}

std::shared_ptr<std::vector<uint8_t>> leader_link::take_frame() {
    _size_have = 0;
    _frame_have = 0;
    return std::move(_frame);
}

void leader_link::close() {
    if (_fd >= 0) ::close(_fd);
    _fd = -1;
    _size_have = 0;
    _frame_have = 0;
    _frame.reset();
}

}  // namespace sluice::broker::replication
