#include "net/send_pools.h"

#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

namespace sluice::net {

pipe_pool::~pipe_pool() {
    for (auto& p : _idle) discard(p);
}

result<pipe_pair> pipe_pool::acquire() {
    if (!_idle.empty()) {
        pipe_pair p = _idle.back();
        _idle.pop_back();
        return p;
    }
    int fds[2];
    // Blocking on purpose: io_uring runs splice in its worker pool; a non-blocking pipe
    // would turn a full socket into -EAGAIN completions instead of a wait.
    if (::pipe2(fds, O_CLOEXEC) != 0) return errno_code(errno);
    pipe_pair p{fds[0], fds[1], 0};
    // Bigger pipes mean fewer splice round trips; the kernel may refuse (fs.pipe-max-size,
    // per-user pipe page limits), then we live with what we got.
    ::fcntl(p.write_fd, F_SETPIPE_SZ, static_cast<int>(_wanted));
    int got = ::fcntl(p.write_fd, F_GETPIPE_SZ);
    if (got <= 0) {
        int e = errno;
        discard(p);
        return errno_code(e);
    }
    p.capacity = static_cast<size_t>(got);
    return p;
}

void pipe_pool::release(pipe_pair p) {
    if (_idle.size() < _max_idle) {
        _idle.push_back(p);
    } else {
        discard(p);
    }
}

void pipe_pool::discard(pipe_pair p) {
    if (p.read_fd >= 0) ::close(p.read_fd);
    if (p.write_fd >= 0) ::close(p.write_fd);
}

chunk_pool::chunk chunk_pool::acquire() {
    if (!_idle.empty()) {
        chunk c = std::move(_idle.back());
        _idle.pop_back();
        return c;
    }
    return chunk(new uint8_t[chunk_bytes]);
}

void chunk_pool::release(chunk c) {
    if (c && _idle.size() < _max_idle) _idle.push_back(std::move(c));
}

}  // namespace sluice::net
