#pragma once
// Which __consumer_offsets partition (and so which broker and shard) coordinates a
// group: Kafka's abs(groupId.hashCode) % offsets.topic.num.partitions, where hashCode is
// java.lang.String.hashCode over the UTF-16 code units of the id and abs is Kafka's
// Utils.abs (x & 0x7fffffff, so Integer.MIN_VALUE maps to 0, not to itself). Matching it
// exactly lets an operator read Kafka tooling output against Sluice and keeps a data
// directory written by one usable by the other.
//
// Concurrency: pure functions.
#include <cstdint>
#include <string_view>

namespace sluice::broker::groups {

inline constexpr std::string_view offsets_topic = "__consumer_offsets";

// Java's String.hashCode of the UTF-8 text `s` (decoded to UTF-16; malformed bytes count
// as U+FFFD, as Java's decoder replaces them).
int32_t java_string_hash(std::string_view s);

// abs(java_string_hash(group_id)) % partitions; partitions > 0.
int32_t offsets_partition_for(std::string_view group_id, int32_t partitions);

}  // namespace sluice::broker::groups
