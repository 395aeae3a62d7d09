#include "broker/groups/records.h"

#include "broker/protocol/reader.h"
#include "broker/protocol/writer.h"

namespace sluice::broker::groups {
namespace {

template <typename T>
std::vector<uint8_t> encode_versioned(int16_t version, const T& v) {
    out_message msg;
    proto::writer w(msg);
    w.write_int16(version);
    v.encode(w, version);
    auto bytes = msg.memory_bytes();
    return {bytes.begin(), bytes.end()};
}

// Decodes `T` after its version prefix; the whole buffer must be consumed.
template <typename T>
std::optional<T> decode_versioned(std::span<const uint8_t> bytes) {
    proto::reader r(bytes);
    int16_t version = r.read_int16();
    if (!r.ok() || version < T::min_version || version > T::max_version) return std::nullopt;
    T v;
    if (!v.decode(r, version) || r.remaining() != 0) return std::nullopt;
    return v;
}

}  // namespace

std::vector<uint8_t> encode_offset_key(const std::string& group, const std::string& topic, int32_t partition) {
    proto::offset_commit_key k;
    k.group = group;
    k.topic = topic;
    k.partition = partition;
    return encode_versioned(offset_key_version, k);
}

std::vector<uint8_t> encode_group_key(const std::string& group) {
    proto::group_metadata_key k;
    k.group = group;
    return encode_versioned(group_key_version, k);
}

std::vector<uint8_t> encode_offset_value(const proto::offset_commit_value& v) {
    return encode_versioned(offset_value_version, v);
}

std::vector<uint8_t> encode_group_value(const proto::group_metadata_value& v) {
    return encode_versioned(group_value_version, v);
}

std::optional<record_key> decode_key(std::span<const uint8_t> bytes) {
    proto::reader r(bytes);
    int16_t version = r.read_int16();
    if (!r.ok()) return std::nullopt;
    if (version == 0 || version == 1) {
        auto k = decode_versioned<proto::offset_commit_key>(bytes);
        if (!k) return std::nullopt;
        return record_key{record_key::kind::offset, *k, k->group};
    }
    if (version == 2) {
        auto k = decode_versioned<proto::group_metadata_key>(bytes);
        if (!k) return std::nullopt;
        return record_key{record_key::kind::group, {}, k->group};
    }
    return std::nullopt;  // e.g. a newer Kafka's consumer-group (KIP-848) records
}

std::optional<proto::offset_commit_value> decode_offset_value(std::span<const uint8_t> bytes) {
    return decode_versioned<proto::offset_commit_value>(bytes);
}

std::optional<proto::group_metadata_value> decode_group_value(std::span<const uint8_t> bytes) {
    return decode_versioned<proto::group_metadata_value>(bytes);
}

}  // namespace sluice::broker::groups
