#pragma once
// The records of __consumer_offsets, in Kafka's formats so that Kafka's tools (and a
// Kafka broker given the same log) read them:
//
//   key   = int16 key version, then the key struct (non-flexible encoding)
//             version 0/1: OffsetCommitKey    {group string, topic string, partition int32}
//             version 2:   GroupMetadataKey   {group string}
//   value = int16 value version, then the value struct; a null value is a tombstone
//             (compaction then drops the key: deleted offsets, deleted groups)
//             OffsetCommitValue v3:  {offset int64, leader_epoch int32, metadata string,
//                                     commit_timestamp int64}
//             GroupMetadataValue v3: {protocol_type string, generation int32,
//                                     protocol string?, leader string?,
//                                     current_state_timestamp int64, members [...]}
// Sluice writes offset keys v1, offset values v3, group keys v2 and group values v3, as
// Kafka 3.x does; it reads every version of the schemas (values up to v4, flexible).
//
// Concurrency: pure functions.
#include "broker/protocol/messages.h"

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace sluice::broker::groups {

inline constexpr int16_t offset_key_version = 1;
inline constexpr int16_t group_key_version = 2;
inline constexpr int16_t offset_value_version = 3;
inline constexpr int16_t group_value_version = 3;

std::vector<uint8_t> encode_offset_key(const std::string& group, const std::string& topic, int32_t partition);
std::vector<uint8_t> encode_group_key(const std::string& group);
std::vector<uint8_t> encode_offset_value(const proto::offset_commit_value& v);
std::vector<uint8_t> encode_group_value(const proto::group_metadata_value& v);

struct record_key {
    enum class kind { offset, group } type;
    proto::offset_commit_key offset;  // type == offset
    std::string group;                // both kinds
};

// nullopt: malformed or a key version this broker does not know (callers skip it).
std::optional<record_key> decode_key(std::span<const uint8_t> bytes);
std::optional<proto::offset_commit_value> decode_offset_value(std::span<const uint8_t> bytes);
std::optional<proto::group_metadata_value> decode_group_value(std::span<const uint8_t> bytes);

}  // namespace sluice::broker::groups
