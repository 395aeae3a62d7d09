#pragma once
// Pure controller decisions, kept free of ZooKeeper so they are unit-tested directly:
// replica assignment for new topics and leader election when brokers come and go.
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "coord/types.h"

namespace sluice::coord {

// Kafka's rack-unaware AdminUtils.assignReplicasToBrokers. brokers need not be sorted
// (they are sorted here, as Kafka does). start_index < 0 means random, as Kafka's
// fixedStartIndex = -1; tests pass a fixed index to compare with Kafka's vectors.
// Preconditions (asserted): partitions > 0, 0 < replication_factor <= brokers.size().
std::map<int32_t, std::vector<int32_t>> assign_replicas(std::vector<int32_t> brokers, int32_t partitions,
                                                        int32_t replication_factor, int32_t start_index = -1,
                                                        int32_t start_partition = 0);

// State for a partition that has none yet: leader = first live replica in assignment
// order, ISR = {leader} (no follower replication exists yet, so no follower is ever in
// sync); with no live replica: leader -1, ISR = all replicas (all equally empty).
partition_state initial_partition_state(const std::vector<int32_t>& assignment, const std::set<int32_t>& live,
                                        int32_t controller_epoch);

// Kafka's offline-partition election plus ISR shrink on broker death: ISR = ISR ∩ live
// (keeping the last member if none is live), leader = first replica in assignment order
// that is in the new ISR and live, else -1. Returns nullopt when nothing changes;
// otherwise the new state with leader_epoch bumped and zk_version unchanged (the
// caller's expected version for the conditional write).
std::optional<partition_state> reelect(const std::vector<int32_t>& assignment, const partition_state& current,
                                       const std::set<int32_t>& live, int32_t controller_epoch);

// A broker that restarted between two reads of /brokers/ids (same id, new broker epoch)
// is handled like Kafka's onBrokerFailure + onBrokerStartup: it leaves ISRs it is not
// the last member of and loses leadership, then may lead again if it is the only live
// ISR member. One leader_epoch bump for the combined change, so the restarted broker
// learns its role from a newer epoch even if the leader id did not change.
std::optional<partition_state> reelect_after_bounce(const std::vector<int32_t>& assignment,
                                                    const partition_state& current, const std::set<int32_t>& live,
                                                    const std::set<int32_t>& bounced, int32_t controller_epoch);

}  // namespace sluice::coord
