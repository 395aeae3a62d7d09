#pragma once
// Per-reactor pools for the file-sending strategies: pipe pairs for splice and 1 MiB
// chunks for buffered sends. A connection borrows one while it sends a file piece and
// returns it when the piece is done, so a thousand idle connections hold no pipes.
//
// Concurrency: reactor thread only.
#include "base/result.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::net {

struct pipe_pair {
    int read_fd = -1;
    int write_fd = -1;
    size_t capacity = 0;  // bytes the pipe holds (F_GETPIPE_SZ after F_SETPIPE_SZ)
};

class pipe_pool {
public:
    explicit pipe_pool(size_t wanted_capacity, size_t max_idle = 16)
        : _wanted(wanted_capacity), _max_idle(max_idle) {}
    ~pipe_pool();
    pipe_pool(const pipe_pool&) = delete;
    pipe_pool& operator=(const pipe_pool&) = delete;

    result<pipe_pair> acquire();
    // Only an empty pipe may be released; one still holding bytes must be discarded.
    void release(pipe_pair p);
    static void discard(pipe_pair p);
    size_t idle() const { return _idle.size(); }

private:
    size_t _wanted;
    size_t _max_idle;
    std::vector<pipe_pair> _idle;
};

class chunk_pool {
public:
    static constexpr size_t chunk_bytes = 1024 * 1024;
    using chunk = std::unique_ptr<uint8_t[]>;

    explicit chunk_pool(size_t max_idle = 8) : _max_idle(max_idle) {}
    chunk acquire();
    void release(chunk c);

private:
    size_t _max_idle;
    std::vector<chunk> _idle;
};

}  // namespace sluice::net
