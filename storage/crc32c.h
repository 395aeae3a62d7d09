#pragma once
// CRC32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum of Kafka record
// batch v2 (it covers attributes .. end of the batch).
//
// Hand-written because Debian 12 packages no crc32c library. On x86-64 with SSE4.2 it
// uses the crc32 instruction on three interleaved streams (the instruction has a
// 3-cycle latency and 1-cycle throughput, so three independent chains keep the unit
// busy) and joins the streams with precomputed "append N zero bytes" tables. Otherwise
// a slicing-by-8 table implementation. The choice is made once at startup.
//
// Concurrency: pure functions; the tables are built once (thread-safe static init).
#include <cstddef>
#include <cstdint>
#include <span>

namespace sluice::storage {

// CRC32C of data, continuing from a previous crc (0 for a fresh checksum):
// crc32c(a ++ b) == crc32c_extend(crc32c(a), b).
uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t size);

inline uint32_t crc32c(std::span<const uint8_t> data) {
    return crc32c_extend(0, data.data(), data.size());
}

// Exposed for tests: both implementations must agree everywhere.
uint32_t crc32c_extend_software(uint32_t crc, const uint8_t* data, size_t size);
uint32_t crc32c_extend_hardware(uint32_t crc, const uint8_t* data, size_t size);
bool crc32c_hardware_available();

}  // namespace sluice::storage
