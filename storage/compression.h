#pragma once
// The four Kafka codecs, for the one place storage must see inside a compressed batch: the
// cleaner, which decompresses a batch, keeps its surviving records and re-compresses them
// with the batch's own codec (as Kafka's LogCleaner does). Produce and Fetch never call this.
//
// Payload formats, i.e. what follows the 61-byte header when attributes & 7 != 0:
//   gzip    a gzip stream (RFC 1952; members may be concatenated). zlib's inflate also
//           accepts a zlib (RFC 1950) stream, which some old clients wrote.
//   snappy  either xerial "snappy-java" framing, as the Java client and librdkafka write:
//             magic 82 53 4E 41 50 50 59 00 ("\x82SNAPPY\0"), int32 version, int32
//             min-compatible version (big-endian), then blocks of [int32 BE length,
//             raw snappy block]...
//           or one raw snappy block (also accepted by every client). We write xerial
//           framing with 32 KiB blocks, like snappy-java.
//   lz4     the LZ4 frame format (lz4frame.h); v2 batches do not have the v0/v1 header
//           checksum quirk. We write 64 KiB independent blocks, no content size, no
//           checksums beyond the frame's own, which Kafka's KafkaLZ4BlockInputStream reads.
//   zstd    zstd frames (possibly several back to back).
//
// Every decoder stops at `out_max` bytes of output (a decompression bomb fails with
// std::errc::value_too_large, never allocates past the cap). Malformed or truncated input is
// log_errc::corrupt_message; compression::none or an unknown codec is
// log_errc::unsupported_compression_type.
//
// Concurrency: pure functions on caller-owned bytes; safe from any thread.
#include "base/result.h"
#include "storage/record_batch.h"

#include <cstdint>
#include <span>
#include <vector>

namespace sluice::storage {

// The cap the cleaner uses: a batch is at most max.message.bytes on disk (1 MiB by default),
// and client codecs rarely exceed a few hundred to one on real records.
inline constexpr size_t decompressed_bytes_max_default = size_t{128} << 20;

result<std::vector<uint8_t>> decompress(compression codec, std::span<const uint8_t> in,
                                        size_t out_max = decompressed_bytes_max_default);
result<std::vector<uint8_t>> compress(compression codec, std::span<const uint8_t> in);

// A whole compressed v2 batch rewritten as the equivalent uncompressed batch: same header
// except the codec bits (cleared), batchLength and CRC; the records are the decompressed
// payload. The result is what decode_records/filter_records accept. Errors: those of
// decompress; corrupt_message if the batch frame itself is invalid.
result<std::vector<uint8_t>> decompress_batch(std::span<const uint8_t> batch,
                                              size_t out_max = decompressed_bytes_max_default);

// The inverse: an uncompressed batch (codec bits 0) whose records are compressed with
// `codec`, which is also set in its attributes; batchLength and CRC recomputed.
result<std::vector<uint8_t>> compress_batch(std::span<const uint8_t> batch, compression codec);

}  // namespace sluice::storage
