#pragma once
// Page-cache residency of file ranges behind a mapping (KAFKA-7504's lesson): the
// mmap_copy send path copies straight from a segment's mapping inside a SEND, and a page
// that is not resident would fault -- a synchronous disk read -- on the reactor thread.
// Before sending from a mapping we ask the kernel with mincore(2) whether every page of
// the range is in the page cache; if not, the piece goes the buffered way (an io_uring
// READ, which the kernel completes off the reactor thread).
//
// Concurrency: a residency_cache is owned by one reactor and used only on its thread.
// The answer is a snapshot: a page can be evicted right after the check. Entries expire
// after `ttl` so that a page evicted since is noticed soon; the window is the same one
// any page-cache-based sender has, and is small next to "never checked".
#include "base/out_message.h"
#include "base/result.h"

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <vector>

namespace sluice::net {

// True when every page holding bytes [offset, offset + length) of the mapping at `base`
// (page-aligned, as mmap returns it) is resident. `scratch` is reused between calls.
result<bool> range_resident(const uint8_t* base, uint64_t offset, uint64_t length,
                            std::vector<unsigned char>& scratch);

class residency_cache {
public:
    explicit residency_cache(std::chrono::milliseconds ttl = std::chrono::milliseconds(250)) : _ttl(ttl) {}

    // True when [position, position + length) of f's mapping is resident (false when f
    // is not mapped, the range is outside the mapping, or mincore fails). Per file the
    // cache remembers one range known resident, and extends it as checks succeed.
    bool resident(const std::shared_ptr<const file_handle>& f, uint64_t position, uint64_t length);

    uint64_t checks() const { return _checks; }      // mincore calls made
    uint64_t cached() const { return _cached; }      // answered from the cache
    uint64_t not_resident() const { return _cold; }  // ranges found not (fully) resident

private:
    struct entry {
        std::weak_ptr<const file_handle> file;  // weak: identity without keeping it alive
        uint64_t begin = 0;
        uint64_t end = 0;
        std::chrono::steady_clock::time_point checked_at{};
    };
    entry* find(const std::shared_ptr<const file_handle>& f);

    static constexpr size_t entry_count = 8;  // a few segments are hot at any time
    std::chrono::milliseconds _ttl;
    std::array<entry, entry_count> _entries{};
    size_t _next_victim = 0;
    std::vector<unsigned char> _scratch;
    uint64_t _checks = 0;
    uint64_t _cached = 0;
    uint64_t _cold = 0;
};

}  // namespace sluice::net
