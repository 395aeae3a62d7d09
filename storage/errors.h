#pragma once
// Storage outcomes as a std::error_code category, so they travel through result<T>
// next to errno values. Each maps onto the Kafka error code a Produce/Fetch/ListOffsets
// handler puts in its response (kafka_error_code()).
#include <cstdint>
#include <system_error>

namespace sluice::storage {

enum class log_errc : int {
    ok = 0,
    corrupt_message,                // CRC mismatch or a batch that does not parse (Kafka 2)
    invalid_record,                 // structurally valid batch with bad contents (Kafka 87)
    unsupported_magic,              // magic != 2; we store record batch v2 only (Kafka 43)
    unsupported_compression_type,   // codec id > 4 (Kafka 76)
    message_too_large,              // one batch > max.message.bytes (Kafka 10)
    record_list_too_large,          // the whole append > segment.bytes (Kafka 18)
    offset_out_of_range,            // fetch/truncate offset outside [log start, log end] (Kafka 1)
    storage_error,                  // pwrite/fsync/open failed: ENOSPC, EIO ... (Kafka 56)
    invalid_timestamp,              // timestamp outside the allowed window (Kafka 32)
    broker_id_mismatch,             // meta.properties belongs to another broker
    cluster_id_mismatch,            // meta.properties belongs to another cluster
};

const std::error_category& log_category();

inline std::error_code make_error_code(log_errc e) { return {static_cast<int>(e), log_category()}; }

// The Kafka protocol error code for a storage outcome (0 for ok).
int16_t kafka_error_code(log_errc e);

}  // namespace sluice::storage

template <>
struct std::is_error_code_enum<sluice::storage::log_errc> : std::true_type {};
