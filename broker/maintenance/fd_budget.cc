#include "broker/maintenance/fd_budget.h"

#include "base/assert.h"

#include <algorithm>
#include <vector>

namespace sluice::broker {

fd_budget::fd_budget(size_t share, partition_walk walk) : _share(std::max<size_t>(share, 1)), _walk(std::move(walk)) {}

void fd_budget::set_share(size_t share) { _share = std::max<size_t>(share, 1); }

void fd_budget::recount(partition& p, bool reopened_is_use) {
    size_t now_open = p.log->open_fds();
    if (reopened_is_use && now_open > p.fds_counted) p.last_use = ++_clock;
    SLUICE_ASSERT(_open >= p.fds_counted, "fd count {} below a partition's {}", _open, p.fds_counted);
    _open = _open - p.fds_counted + now_open;
    p.fds_counted = now_open;
}

void fd_budget::note_use(partition& p) {
    p.last_use = ++_clock;
    recount(p, false);
    if (_open > _share) evict();
}

void fd_budget::forget(partition& p) {
    SLUICE_ASSERT(_open >= p.fds_counted, "fd count {} below a partition's {}", _open, p.fds_counted);
    _open -= p.fds_counted;
    p.fds_counted = 0;
}

void fd_budget::sweep() {
    _walk([this](partition& p) { recount(p, true); });
    if (_open > _share) evict();
}

// Oldest first until the count is a quarter of the share below it. Only partitions
// holding descriptors are candidates, about `share` of them, so the sort stays small.
void fd_budget::evict() {
    const size_t target = _share - std::max<size_t>(_share / 4, 1);
    std::vector<partition*> holders;
    _walk([&](partition& p) {
        if (p.fds_counted > 0) holders.push_back(&p);
    });
    std::sort(holders.begin(), holders.end(),
              [](const partition* a, const partition* b) { return a->last_use < b->last_use; });
    ++_evictions;
    // A partition may keep descriptors a file_slice or a background job holds; the loop
    // then simply moves on to the next oldest.
    for (size_t i = 0; i < holders.size() && _open > target; ++i) {
        partition& p = *holders[i];
        _released += p.log->release_idle_fds();
        recount(p, false);
    }
}

}  // namespace sluice::broker
