#include "storage/tail_cache.h"

#include <sys/mman.h>

#include <atomic>
#include <cstring>

namespace sluice::storage {

namespace {
constexpr size_t huge_page = 2u << 20;
}

tail_chunk::tail_chunk() {
    // Aligned to 2 MiB and advised huge: O_DIRECT pins the source pages for every write,
    // and pinning two huge pages costs far less than pinning a thousand small ones.
    size_t span = tail_chunk_bytes + huge_page;
    void* p = ::mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    auto base = reinterpret_cast<uintptr_t>(p);
    uintptr_t aligned = (base + huge_page - 1) / huge_page * huge_page;
    if (aligned > base) ::munmap(p, aligned - base);
    size_t tail = base + span - (aligned + tail_chunk_bytes);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + tail_chunk_bytes), tail);
    _buf = reinterpret_cast<uint8_t*>(aligned);
    ::madvise(_buf, tail_chunk_bytes, MADV_HUGEPAGE);  // best effort
    // Touch every page now: the first write to a fresh page is the expensive part, and it
    // belongs to start-up, not to a producer's request.
    std::memset(_buf, 0, tail_chunk_bytes);
}

tail_chunk::~tail_chunk() {
    if (_buf) ::munmap(_buf, tail_chunk_bytes);
}

tail_pool& tail_pool::instance() {
    static tail_pool pool;
    return pool;
}

void tail_pool::set_budget(uint64_t bytes) {
    std::lock_guard lock(_mu);
    _budget = bytes;
}

std::shared_ptr<tail_chunk> tail_pool::acquire() {
    std::lock_guard lock(_mu);
    // A lowered budget: unused chunks beyond it are given back.
    for (size_t i = _chunks.size(); i-- > 0 && _chunks.size() * tail_chunk_bytes > _budget;)
        if (_chunks[i].use_count() == 1) _chunks.erase(_chunks.begin() + static_cast<ptrdiff_t>(i));
    if (_chunks.size() * tail_chunk_bytes > _budget) return nullptr;
    for (auto& c : _chunks) {
        if (c.use_count() != 1) continue;
        // Pairs with the release in the last holder's shared_ptr decrement: its reads of
        // the chunk happen before we overwrite it.
        std::atomic_thread_fence(std::memory_order_acquire);
        c->file_start = 0;
        c->set_fill(0);
        return c;
    }
    if ((_chunks.size() + 1) * tail_chunk_bytes > _budget) return nullptr;
    auto c = std::make_shared<tail_chunk>();
    if (!c->ok()) return nullptr;
    _chunks.push_back(c);
    return c;
}

void tail_pool::prefill() {
    for (;;) {
        {
            std::lock_guard lock(_mu);
            if ((_chunks.size() + 1) * tail_chunk_bytes > _budget) return;
        }
        auto c = std::make_shared<tail_chunk>();  // the expensive part, outside the lock
        if (!c->ok()) return;
        std::lock_guard lock(_mu);
        if ((_chunks.size() + 1) * tail_chunk_bytes > _budget) return;
        _chunks.push_back(std::move(c));
    }
}

}  // namespace sluice::storage
