// residency: mincore(2) over the pages of a mapped range, with a tiny per-file cache.
#include "net/residency.h"

#include "base/assert.h"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace sluice::net {
namespace {
uint64_t page_size() {
    static const uint64_t size = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

bool same_file(const std::weak_ptr<const file_handle>& w, const std::shared_ptr<const file_handle>& s) {
    return !w.owner_before(s) && !s.owner_before(w) && !w.expired();
}
}  // namespace

result<bool> range_resident(const uint8_t* base, uint64_t offset, uint64_t length,
                            std::vector<unsigned char>& scratch) {
    if (length == 0) return true;
    const uint64_t page = page_size();
    SLUICE_ASSERT(reinterpret_cast<uintptr_t>(base) % page == 0, "mapping base {} not page-aligned",
                  static_cast<const void*>(base));
    uint64_t first = offset / page * page;
    uint64_t last = (offset + length + page - 1) / page * page;
    // Bounded scratch: large ranges are asked in 16 MiB steps (4096 pages).
    constexpr uint64_t pages_per_call = 4096;
    scratch.resize(pages_per_call);
    for (uint64_t at = first; at < last; at += pages_per_call * page) {
        uint64_t len = std::min(last - at, pages_per_call * page);
        if (::mincore(const_cast<uint8_t*>(base + at), len, scratch.data()) != 0)
            return std::error_code(errno, std::generic_category());
        uint64_t pages = len / page;
        for (uint64_t i = 0; i < pages; ++i)
            if ((scratch[i] & 1) == 0) return false;
    }
    return true;
}

residency_cache::entry* residency_cache::find(const std::shared_ptr<const file_handle>& f) {
    for (auto& e : _entries)
        if (same_file(e.file, f)) return &e;
    return nullptr;
}

bool residency_cache::resident(const std::shared_ptr<const file_handle>& f, uint64_t position, uint64_t length) {
    if (!f || f->mapped() == nullptr || position + length > f->mapped_size()) return false;
    auto now = std::chrono::steady_clock::now();
    entry* e = find(f);
    if (e != nullptr && now - e->checked_at < _ttl && position >= e->begin && position + length <= e->end) {
        ++_cached;
        return true;
    }
    ++_checks;
    auto r = range_resident(f->mapped(), position, length, _scratch);
    if (!r || !*r) {
        ++_cold;
        return false;
    }
    if (e == nullptr) {
        e = &_entries[_next_victim];
        _next_victim = (_next_victim + 1) % entry_count;
        *e = entry{f, position, position + length, now};
        return true;
    }
    bool fresh = now - e->checked_at < _ttl;
    bool touches = position <= e->end && position + length >= e->begin;
    if (fresh && touches) {  // grow the known range (a consumer reads forward)
        e->begin = std::min(e->begin, position);
        e->end = std::max(e->end, position + length);
    } else {
        e->begin = position;
        e->end = position + length;
        e->checked_at = now;
    }
    return true;
}

}  // namespace sluice::net
