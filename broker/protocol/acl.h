#pragma once
// Authorized-operations bit fields (KIP-430) for Metadata, DescribeCluster and
// DescribeGroups when a client asks for them. Sluice has no authorizer, so, like a Kafka
// broker without `authorizer.class.name`, it reports every operation the resource type
// supports. Bit n is set for AclOperation code n; the wire default INT32_MIN (left
// alone when not asked for) means "not requested".
//
// Concurrency: constants only.
#include <cstdint>
#include <initializer_list>

namespace sluice::proto {

// AclOperation codes (org.apache.kafka.common.acl.AclOperation).
enum class acl_operation : int8_t {
    read = 3,
    write = 4,
    create = 5,
    remove = 6,  // DELETE
    alter = 7,
    describe = 8,
    cluster_action = 9,
    describe_configs = 10,
    alter_configs = 11,
    idempotent_write = 12,
};

constexpr int32_t operation_bits(std::initializer_list<acl_operation> ops) {
    int32_t bits = 0;
    for (auto op : ops) bits |= int32_t{1} << static_cast<int8_t>(op);
    return bits;
}

// What each resource type supports (Kafka's AclEntry.supportedOperations).
constexpr int32_t topic_operations = [] {
    using enum acl_operation;
    return operation_bits({read, write, create, remove, alter, describe, describe_configs, alter_configs});
}();
constexpr int32_t group_operations = [] {
    using enum acl_operation;
    return operation_bits({read, remove, describe});
}();
constexpr int32_t cluster_operations = [] {
    using enum acl_operation;
    return operation_bits({create, cluster_action, describe_configs, alter_configs, idempotent_write, alter, describe});
}();

static_assert(topic_operations == 3576 && group_operations == 328 && cluster_operations == 8096,
              "values a Kafka broker without an authorizer reports");

}  // namespace sluice::proto
