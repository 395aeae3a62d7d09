#pragma once
// Direct appends (log.append.strategy=direct): record bytes go to the segment file with
// O_DIRECT from long-lived, pre-faulted chunks, and the chunks stay as the cache of the
// newest bytes that fetches are served from.
//
// Why: on a buffered append the kernel copies into newly allocated page-cache pages. On a
// VM whose hypervisor reclaims free guest memory, every such page costs a host fault on
// first touch (measured here: ~0.35 GB/s and 2-4 CPU-s/GB for a bare socket->file loop,
// against ~7 GB/s when overwriting resident pages). Memory that a process keeps and
// reuses stays fast, so the broker copies each batch once into a chunk it owns and lets
// the device read it from there (DMA; no new page-cache page); the data is then sent to
// consumers from the same chunk. This is the design Redpanda uses (own cache, O_DIRECT).
//
// A tail_chunk is a file_handle without a descriptor: fd() is -1, so every send strategy
// sends it from mapped() with a copy (splice or sendfile would pass page references that a
// later append could overwrite). A chunk holds the file's bytes [file_start, file_start +
// fill): file_start is 4096-aligned, so the bytes before the logical end in its first
// block are a copy of the block already on disk.
//
// Concurrency: chunks are filled only by the segment that owns them, on its shard. A chunk
// goes back to the pool only when no file_slice references it (use_count() == 1, checked
// with an acquire fence): slices may be sent from any thread. The pool is process-wide
// and takes a mutex once per chunk (4 MiB), never per append.
#include "base/out_message.h"

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace sluice::storage {

inline constexpr uint64_t direct_block = 4096;  // O_DIRECT offset/length/memory alignment
inline constexpr size_t tail_chunk_bytes = 4u << 20;

class tail_chunk final : public file_handle {
public:
    tail_chunk();
    ~tail_chunk() override;
    tail_chunk(const tail_chunk&) = delete;
    tail_chunk& operator=(const tail_chunk&) = delete;

    int fd() const override { return -1; }
    const uint8_t* mapped() const override { return _buf; }
    uint64_t mapped_size() const override { return fill(); }

    bool ok() const { return _buf != nullptr; }
    uint8_t* data() { return _buf; }
    size_t capacity() const { return tail_chunk_bytes; }
    uint64_t file_start = 0;  // file position of data()[0]; a multiple of direct_block
    // Valid bytes from data(); published before the segment's size, so a slice never
    // names bytes beyond it.
    void set_fill(uint64_t n) { _fill.store(n, std::memory_order_release); }
    uint64_t fill() const { return _fill.load(std::memory_order_acquire); }

private:
    uint8_t* _buf = nullptr;
    std::atomic<uint64_t> _fill{0};
};

// The chunks of all direct-append segments, allocated on demand up to a budget and then
// reused. New chunks are written once in full when allocated, so their pages are backed
// before the first append needs them.
class tail_pool {
public:
    static tail_pool& instance();
    // log.append.direct.cache.bytes; applies to later acquisitions.
    void set_budget(uint64_t bytes);
    // A chunk nobody else references (fill 0), or nullptr when the budget is used up by
    // chunks that segments or in-flight sends still hold.
    std::shared_ptr<tail_chunk> acquire();
    // Allocates (and touches) chunks up to the budget, so appends find them ready. For a
    // background thread at start: it takes a few hundred milliseconds per 128 MiB here.
    void prefill();

private:
    mutable std::mutex _mu;
    uint64_t _budget = 64u << 20;
    std::vector<std::shared_ptr<tail_chunk>> _chunks;
};

}  // namespace sluice::storage
