#include "broker/api_table.h"

#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"

#include <array>

namespace sluice::broker {
namespace {

// Versions are the ones Kafka 3.9 accepts that Sluice fully honours:
// - Produce 0-11, but record batch v2 only: magic 0/1 message sets (what only pre-0.11
//   clients put in Produce v0-2) are refused per partition with UNSUPPORTED_FOR_MESSAGE_FORMAT
//   (43), nothing written. v0 stays in the range because librdkafka (before 2.10) compresses
//   gzip, snappy and lz4 only when the broker's Produce range includes v0, and silently
//   sends such batches uncompressed otherwise.
// - Fetch from 4: no down-conversion. librdkafka needs Produce 3 and Fetch 4 inside the
//   ranges to use record batch v2; kafka-python recognises Fetch 11 as a 2.3+ broker.
// - ApiVersions 0-3: v4 only differs by the KIP-848 feature levels we do not have.
constexpr std::array entries = {
    api_entry{0, 0, 11, handle_produce},
    api_entry{1, 4, 16, handle_fetch},
    api_entry{2, 0, 9, handle_list_offsets},
    api_entry{3, 0, 12, handle_metadata},
    api_entry{18, 0, 3, handle_api_versions},
    api_entry{19, 0, 7, handle_create_topics},
    api_entry{20, 0, 6, handle_delete_topics},
    api_entry{37, 0, 3, handle_create_partitions},
    api_entry{22, 0, 4, handle_init_producer_id},
    // Consumer groups. OffsetCommit/OffsetFetch v0 kept offsets in ZooKeeper in Kafka;
    // from v1 they live in __consumer_offsets, which is what Sluice implements.
    api_entry{8, 1, 9, handle_offset_commit},
    api_entry{9, 1, 9, handle_offset_fetch},
    api_entry{10, 0, 6, handle_find_coordinator},
    api_entry{11, 0, 9, handle_join_group},
    api_entry{12, 0, 4, handle_heartbeat},
    api_entry{13, 0, 5, handle_leave_group},
    api_entry{14, 0, 5, handle_sync_group},
    api_entry{15, 0, 5, handle_describe_groups},
    api_entry{16, 0, 5, handle_list_groups},
    api_entry{42, 0, 2, handle_delete_groups},
    api_entry{47, 0, 0, handle_offset_delete},
    // Configs and DeleteRecords: every version Kafka 3.9 has.
    api_entry{21, 0, 2, handle_delete_records},
    api_entry{32, 0, 4, handle_describe_configs},
    api_entry{33, 0, 2, handle_alter_configs},
    api_entry{44, 0, 1, handle_incremental_alter_configs},
    api_entry{60, 0, 1, handle_describe_cluster},
};

// Every advertised version must be one the codec knows.
// (No pointer comparison: GCC's -fsanitize=undefined makes `p == nullptr` non-constant.)
constexpr bool within_codec() {
    for (const auto& e : entries) {
        bool known = false;
        for (const auto& api : proto::api_table)
            if (api.key == e.key) known = e.min_version >= api.min_version && e.max_version <= api.max_version;
        if (!known) return false;
    }
    return true;
}
static_assert(within_codec(), "an advertised version is outside the generated codec's range");

}  // namespace

std::span<const api_entry> api_table() { return entries; }

const api_entry* find_api_entry(int16_t key) {
    for (const auto& e : entries)
        if (e.key == key) return &e;
    return nullptr;
}

}  // namespace sluice::broker
