#pragma once
// The follower's plan, derived from a cluster snapshot: which partitions this broker
// must copy from which leader, where that leader listens, and how much of a fetched
// records blob is whole batches. Pure functions, so the rules are unit-tested without
// brokers or sockets (tests/unit/broker/fetch_plan_test.cc).
//
// Concurrency: stateless; the snapshot is immutable (coord/types.h).
#include "coord/types.h"
#include "storage/log_dir.h"

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sluice::broker::replication {

// One partition this broker follows, as the snapshot names it. A change of leader or
// leader_epoch (or of the topic id: deleted and re-created) is a new "becoming a follower".
struct followed_partition {
    storage::topic_partition tp;
    coord::uuid topic_id{};
    int32_t leader = -1;
    int32_t leader_epoch = 0;
    bool operator==(const followed_partition&) const = default;
};

// Every partition whose assignment contains `me`, whose state names a live leader other
// than `me`, of a topic not marked for deletion; grouped by leader, ordered by topic
// and partition.
std::map<int32_t, std::vector<followed_partition>> partitions_to_follow(const coord::cluster_snapshot& snap,
                                                                        int32_t me);

// How this broker reaches its leaders (inter-broker listener selection, Kafka's rules
// reduced to what Sluice supports).
struct endpoint_choice {
    std::string inter_broker_listener;  // inter.broker.listener.name; empty: unset
    std::string own_first_listener;     // the name of this broker's first listener
};

// The leader's endpoint named by inter_broker_listener when set (nullopt if the leader
// has none), else the one with own_first_listener's name, else the first PLAINTEXT one.
std::optional<coord::endpoint> leader_endpoint(const coord::broker_info& leader, const endpoint_choice& choice);

// What a fetched records blob holds for the follower's log. Batches are read from their
// 61-byte headers only (the log validates CRCs when it appends).
struct batch_span {
    size_t skip_bytes = 0;     // leading whole batches that end below `log_end` (already ours)
    size_t bytes = 0;          // then this many bytes of whole batches to append
    int64_t first_base = -1;   // base offset of the first batch to append (-1: none)
    int64_t next_offset = -1;  // last offset of the last batch to append + 1 (-1: none)
    int32_t batches = 0;
    bool malformed = false;    // a header that cannot start a v2 batch: nothing past it is used
};
// Walks `records` (a Fetch response's partition records): skips batches wholly below
// log_end, keeps the whole batches after them and drops a trailing partial batch (a
// response cut at max_bytes). A batch that straddles log_end is kept: the caller
// truncates its log to that batch's base first.
batch_span whole_batches(std::span<const uint8_t> records, int64_t log_end);

}  // namespace sluice::broker::replication
