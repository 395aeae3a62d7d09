#include "coord/assignment.h"

#include <algorithm>
#include <random>

#include "base/assert.h"

namespace sluice::coord {
namespace {

int32_t replica_index(int32_t first, int32_t shift, int32_t j, int32_t n) {
    int32_t s = 1 + (shift + j) % (n - 1);
    return (first + s) % n;
}

bool contains(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

}  // namespace

std::map<int32_t, std::vector<int32_t>> assign_replicas(std::vector<int32_t> brokers, int32_t partitions,
                                                        int32_t replication_factor, int32_t start_index,
                                                        int32_t start_partition) {
    SLUICE_ASSERT(partitions > 0, "partitions {}", partitions);
    SLUICE_ASSERT(replication_factor > 0 && size_t(replication_factor) <= brokers.size(), "rf {} brokers {}",
                  replication_factor, brokers.size());
    std::sort(brokers.begin(), brokers.end());
    const int32_t n = int32_t(brokers.size());
    thread_local std::mt19937 rng{std::random_device{}()};
    int32_t start = start_index >= 0 ? start_index : int32_t(rng() % uint32_t(n));
    int32_t shift = start_index >= 0 ? start_index : int32_t(rng() % uint32_t(n));
    std::map<int32_t, std::vector<int32_t>> out;
    int32_t p = std::max(0, start_partition);
    for (int32_t i = 0; i < partitions; ++i, ++p) {
        if (p > 0 && p % n == 0) ++shift;
        int32_t first = (p + start) % n;
        std::vector<int32_t> replicas{brokers[size_t(first)]};
        for (int32_t j = 0; j < replication_factor - 1; ++j)
            replicas.push_back(brokers[size_t(replica_index(first, shift, j, n))]);
        out[p] = std::move(replicas);
    }
    return out;
}

partition_state initial_partition_state(const std::vector<int32_t>& assignment, const std::set<int32_t>& live,
                                        int32_t controller_epoch) {
    partition_state s;
    s.controller_epoch = controller_epoch;
    // Kafka's rule: a new partition's ISR is every live assigned replica (all logs are
    // empty, so all are in sync); followers that do not fetch are dropped by the leader
    // after replica.lag.time.max.ms. The first live replica in assignment order leads.
    for (int32_t r : assignment)
        if (live.count(r)) {
            if (s.leader < 0) s.leader = r;
            s.isr.push_back(r);
        }
    if (s.leader >= 0) return s;
    s.isr = assignment;  // nobody can lead yet; all replicas are equally up to date (empty)
    return s;
}

std::optional<partition_state> reelect(const std::vector<int32_t>& assignment, const partition_state& current,
                                       const std::set<int32_t>& live, int32_t controller_epoch) {
    std::vector<int32_t> isr;
    for (int32_t r : current.isr)
        if (live.count(r)) isr.push_back(r);
    if (isr.empty() && !current.isr.empty()) isr.push_back(current.isr.back());
    int32_t leader = -1;
    for (int32_t r : assignment)
        if (live.count(r) && contains(isr, r)) {
            leader = r;
            break;
        }
    // A live leader that is still in the ISR keeps leading (no needless leader change).
    if (current.leader >= 0 && live.count(current.leader) && contains(isr, current.leader)) leader = current.leader;
    if (leader == current.leader && isr == current.isr) return std::nullopt;
    partition_state next = current;
    next.leader = leader;
    next.isr = std::move(isr);
    next.leader_epoch = current.leader_epoch + 1;
    next.controller_epoch = controller_epoch;
    return next;
}

std::optional<partition_state> reelect_after_bounce(const std::vector<int32_t>& assignment,
                                                    const partition_state& current, const std::set<int32_t>& live,
                                                    const std::set<int32_t>& bounced, int32_t controller_epoch) {
    bool touched = false;
    for (int32_t r : current.isr) touched |= bounced.count(r) > 0;
    if (!touched) return reelect(assignment, current, live, controller_epoch);
    std::set<int32_t> survivors;
    for (int32_t r : live)
        if (!bounced.count(r)) survivors.insert(r);
    partition_state next = reelect(assignment, current, survivors, controller_epoch).value_or(current);
    next = reelect(assignment, next, live, controller_epoch).value_or(next);
    next.leader_epoch = current.leader_epoch + 1;
    next.controller_epoch = controller_epoch;
    return next;
}

}  // namespace sluice::coord
