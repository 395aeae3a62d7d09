#pragma once
// net::frame_pool: long-lived buffers for large request frames (Produce batches).
//
// Why: a 1 MiB frame assembled into freshly allocated memory touches every page for the
// first time inside the recv callback; on this class of VM a first-touch page fault costs
// ~0.6 GB/s, and big frames showed up as 10-78 ms reactor stalls. Buffers handed back by
// the broker once it is done with a request (connection::recycle_frame) are kept here,
// already faulted in, and reused for the next large frame that fits.
//
// Concurrency: owned by one reactor; acquire/release only on its thread.
#include "net/frame.h"

#include <cstddef>
#include <cstdint>
#include <vector>

namespace sluice::net {

class frame_pool {
public:
    static constexpr size_t min_pooled_bytes = 64 * 1024;  // smaller frames: malloc is cheap
    // A pipelining producer keeps up to max.in.flight (librdkafka: 5, loadgen: 8) frames
    // in flight, plus the one being assembled; 8 left a fresh 1 MiB allocation per request.
    static constexpr size_t max_buffers = 16;
    static constexpr size_t max_buffer_bytes = 32 * 1024 * 1024;

    // An empty frame with capacity >= size when a pooled buffer fits (the smallest that
    // does), else an empty frame with no capacity.
    frame acquire(size_t size) {
        if (size < min_pooled_bytes) return {};
        size_t best = _free.size();
        for (size_t i = 0; i < _free.size(); ++i)
            if (_free[i].capacity() >= size && (best == _free.size() || _free[i].capacity() < _free[best].capacity()))
                best = i;
        if (best == _free.size()) return {};
        frame f = std::move(_free[best]);
        _free[best] = std::move(_free.back());
        _free.pop_back();
        f.clear();
        ++_reused;
        return f;
    }

    // Keeps f's memory for a later frame if it is worth keeping and there is room.
    void release(frame f) {
        size_t cap = f.capacity();
        if (cap < min_pooled_bytes || cap > max_buffer_bytes) return;
        if (_free.size() < max_buffers) {
            _free.push_back(std::move(f));
            return;
        }
        // Full: keep the larger of f and the smallest pooled buffer.
        size_t smallest = 0;
        for (size_t i = 1; i < _free.size(); ++i)
            if (_free[i].capacity() < _free[smallest].capacity()) smallest = i;
        if (_free[smallest].capacity() < cap) _free[smallest] = std::move(f);
    }

    size_t size() const { return _free.size(); }
    uint64_t reused() const { return _reused; }

private:
    std::vector<frame> _free;
    uint64_t _reused = 0;
};

}  // namespace sluice::net
