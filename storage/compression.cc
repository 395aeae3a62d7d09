#include "storage/compression.h"

#include "storage/endian.h"
#include "storage/errors.h"

#include <lz4frame.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>

namespace sluice::storage {

namespace {

std::error_code corrupt() { return make_error_code(log_errc::corrupt_message); }
std::error_code too_large() { return std::make_error_code(std::errc::value_too_large); }

// Grows `out` by up to `step` bytes without passing `out_max`; false when already at the cap.
bool grow(std::vector<uint8_t>& out, size_t& used, size_t out_max, size_t step) {
    if (used < out.size()) return true;
    if (out.size() >= out_max) return false;
    out.resize(std::min(out_max, out.size() + std::max(step, out.size())));
    return true;
}

// ---- gzip ----------------------------------------------------------------------------

result<std::vector<uint8_t>> gzip_decompress(std::span<const uint8_t> in, size_t out_max) {
    z_stream z{};
    // 15 + 32: auto-detect gzip or zlib headers.
    if (inflateInit2(&z, 15 + 32) != Z_OK) return std::make_error_code(std::errc::not_enough_memory);
    std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
    std::vector<uint8_t> out;
    size_t used = 0;
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    for (;;) {
        if (!grow(out, used, out_max, in.size() * 4 + 1024)) return too_large();
        size_t room = std::min<size_t>(out.size() - used, std::numeric_limits<uInt>::max());
        z.next_out = out.data() + used;
        z.avail_out = static_cast<uInt>(room);
        int rc = inflate(&z, Z_NO_FLUSH);
        used += room - z.avail_out;
        if (rc == Z_STREAM_END) {
            if (z.avail_in == 0) break;
            if (inflateReset(&z) != Z_OK) return corrupt();  // another gzip member follows
            continue;
        }
        if (rc == Z_BUF_ERROR && z.avail_in == 0 && z.avail_out != 0) return corrupt();  // truncated
        if (rc != Z_OK && rc != Z_BUF_ERROR) return corrupt();
    }
    out.resize(used);
    return out;
}

result<std::vector<uint8_t>> gzip_compress(std::span<const uint8_t> in) {
    z_stream z{};
    // 15 + 16: a gzip header, which is what Kafka's GZIPOutputStream writes.
    if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return std::make_error_code(std::errc::not_enough_memory);
    std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, deflateEnd);
    std::vector<uint8_t> out(deflateBound(&z, static_cast<uLong>(in.size())));
    z.next_in = const_cast<Bytef*>(in.data());
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) return corrupt();
    out.resize(z.total_out);
    return out;
}

// ---- snappy --------------------------------------------------------------------------

constexpr uint8_t xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
constexpr size_t xerial_header_size = 16;  // magic, version, min compatible version
constexpr size_t xerial_block_size = 32 * 1024;

// Appends one raw snappy block's decompressed bytes to out.
std::error_code snappy_block(std::span<const uint8_t> block, std::vector<uint8_t>& out, size_t out_max) {
    size_t n = 0;
    auto src = reinterpret_cast<const char*>(block.data());
    if (snappy_uncompressed_length(src, block.size(), &n) != SNAPPY_OK) return corrupt();
    if (n > out_max - out.size()) return too_large();
    size_t at = out.size();
    out.resize(at + n);
    if (snappy_uncompress(src, block.size(), reinterpret_cast<char*>(out.data() + at), &n) != SNAPPY_OK)
        return corrupt();
    out.resize(at + n);
    return {};
}

result<std::vector<uint8_t>> snappy_decompress(std::span<const uint8_t> in, size_t out_max) {
    std::vector<uint8_t> out;
    bool xerial = in.size() >= xerial_header_size && std::memcmp(in.data(), xerial_magic, 8) == 0;
    if (!xerial) {
        if (auto ec = snappy_block(in, out, out_max)) return ec;
        return out;
    }
    for (size_t pos = xerial_header_size; pos < in.size();) {
        if (in.size() - pos < 4) return corrupt();
        size_t len = load_be32(in.data() + pos);
        pos += 4;
        if (len > in.size() - pos) return corrupt();
        if (auto ec = snappy_block(in.subspan(pos, len), out, out_max)) return ec;
        pos += len;
    }
    return out;
}

result<std::vector<uint8_t>> xerial_compress(std::span<const uint8_t> in) {
    std::vector<uint8_t> out(xerial_magic, xerial_magic + 8);
    out.resize(xerial_header_size);
    store_be32(out.data() + 8, 1);   // version
    store_be32(out.data() + 12, 1);  // min compatible version
    for (size_t pos = 0; pos < in.size(); pos += xerial_block_size) {
        size_t n = std::min(xerial_block_size, in.size() - pos);
        size_t at = out.size();
        size_t room = snappy_max_compressed_length(n);
        out.resize(at + 4 + room);
        if (::snappy_compress(reinterpret_cast<const char*>(in.data() + pos), n,
                            reinterpret_cast<char*>(out.data() + at + 4), &room) != SNAPPY_OK)
            return corrupt();
        store_be32(out.data() + at, static_cast<uint32_t>(room));
        out.resize(at + 4 + room);
    }
    return out;
}

// ---- lz4 -----------------------------------------------------------------------------

result<std::vector<uint8_t>> lz4_decompress(std::span<const uint8_t> in, size_t out_max) {
    LZ4F_dctx* ctx = nullptr;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
        return std::make_error_code(std::errc::not_enough_memory);
    std::unique_ptr<LZ4F_dctx, LZ4F_errorCode_t (*)(LZ4F_dctx*)> guard(ctx, LZ4F_freeDecompressionContext);
    std::vector<uint8_t> out;
    size_t used = 0;
    size_t pos = 0;
    size_t hint = 1;
    while (pos < in.size() || hint != 0) {
        if (!grow(out, used, out_max, in.size() * 4 + 1024)) return too_large();
        size_t dst = out.size() - used;
        size_t src = in.size() - pos;
        hint = LZ4F_decompress(ctx, out.data() + used, &dst, in.data() + pos, &src, nullptr);
        if (LZ4F_isError(hint)) return corrupt();
        used += dst;
        pos += src;
        // Input gone with the frame unfinished and no output made: truncated.
        if (pos == in.size() && hint != 0 && dst == 0) return corrupt();
    }
    out.resize(used);
    return out;
}

result<std::vector<uint8_t>> lz4_compress(std::span<const uint8_t> in) {
    LZ4F_preferences_t prefs{};
    prefs.frameInfo.blockSizeID = LZ4F_max64KB;
    prefs.frameInfo.blockMode = LZ4F_blockIndependent;
    std::vector<uint8_t> out(LZ4F_compressFrameBound(in.size(), &prefs));
    size_t n = LZ4F_compressFrame(out.data(), out.size(), in.data(), in.size(), &prefs);
    if (LZ4F_isError(n)) return corrupt();
    out.resize(n);
    return out;
}

// ---- zstd ----------------------------------------------------------------------------

result<std::vector<uint8_t>> zstd_decompress(std::span<const uint8_t> in, size_t out_max) {
    std::unique_ptr<ZSTD_DStream, size_t (*)(ZSTD_DStream*)> ctx(ZSTD_createDStream(), ZSTD_freeDStream);
    if (!ctx) return std::make_error_code(std::errc::not_enough_memory);
    std::vector<uint8_t> out;
    size_t used = 0;
    ZSTD_inBuffer src{in.data(), in.size(), 0};
    size_t last = 1;  // 0 once a frame is complete
    if (in.empty()) return corrupt();
    while (src.pos < src.size || last != 0) {
        if (!grow(out, used, out_max, in.size() * 4 + 1024)) return too_large();
        ZSTD_outBuffer dst{out.data() + used, out.size() - used, 0};
        size_t before = src.pos;
        last = ZSTD_decompressStream(ctx.get(), &dst, &src);
        if (ZSTD_isError(last)) return corrupt();
        used += dst.pos;
        if (src.pos == src.size && last != 0 && dst.pos == 0 && src.pos == before) return corrupt();
    }
    out.resize(used);
    return out;
}

result<std::vector<uint8_t>> zstd_compress(std::span<const uint8_t> in) {
    std::vector<uint8_t> out(ZSTD_compressBound(in.size()));
    size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), ZSTD_CLEVEL_DEFAULT);
    if (ZSTD_isError(n)) return corrupt();
    out.resize(n);
    return out;
}

}  // namespace

result<std::vector<uint8_t>> decompress(compression codec, std::span<const uint8_t> in, size_t out_max) {
    switch (codec) {
        case compression::gzip: return gzip_decompress(in, out_max);
        case compression::snappy: return snappy_decompress(in, out_max);
        case compression::lz4: return lz4_decompress(in, out_max);
        case compression::zstd: return zstd_decompress(in, out_max);
        default: return make_error_code(log_errc::unsupported_compression_type);
    }
}

result<std::vector<uint8_t>> compress(compression codec, std::span<const uint8_t> in) {
    switch (codec) {
        case compression::gzip: return gzip_compress(in);
        case compression::snappy: return xerial_compress(in);
        case compression::lz4: return lz4_compress(in);
        case compression::zstd: return zstd_compress(in);
        default: return make_error_code(log_errc::unsupported_compression_type);
    }
}

namespace {

// `header` (61 bytes) followed by `records`, with the codec bits set to `codec` and
// batchLength and CRC recomputed.
std::vector<uint8_t> assemble(std::span<const uint8_t> header, std::span<const uint8_t> records,
                              compression codec) {
    std::vector<uint8_t> out(batch_header_size + records.size());
    std::memcpy(out.data(), header.data(), batch_header_size);
    if (!records.empty()) std::memcpy(out.data() + batch_header_size, records.data(), records.size());
    uint16_t attrs = load_be16(out.data() + batch_offset::attributes);
    attrs = static_cast<uint16_t>((attrs & ~batch_attr::codec_mask) | static_cast<uint16_t>(codec));
    store_be16(out.data() + batch_offset::attributes, attrs);
    store_be32(out.data() + batch_offset::batch_length, static_cast<uint32_t>(out.size() - log_overhead));
    store_be32(out.data() + batch_offset::crc, compute_batch_crc(out));
    return out;
}

}  // namespace

result<std::vector<uint8_t>> decompress_batch(std::span<const uint8_t> batch, size_t out_max) {
    if (auto ec = check_stored_batch(batch, batch.size())) return ec;
    batch_header h = parse_batch_header(batch.data());
    if (h.size_bytes() != batch.size()) return corrupt();
    auto records = decompress(h.codec(), batch.subspan(batch_header_size), out_max);
    if (!records) return records.error();
    return assemble(batch, *records, compression::none);
}

result<std::vector<uint8_t>> compress_batch(std::span<const uint8_t> batch, compression codec) {
    if (auto ec = check_stored_batch(batch, batch.size())) return ec;
    batch_header h = parse_batch_header(batch.data());
    if (h.size_bytes() != batch.size() || h.codec() != compression::none) return corrupt();
    auto records = compress(codec, batch.subspan(batch_header_size));
    if (!records) return records.error();
    return assemble(batch, *records, codec);
}

}  // namespace sluice::storage
