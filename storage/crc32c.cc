#include "storage/crc32c.h"

#include "base/assert.h"

#include <array>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace sluice::storage {
namespace {

constexpr uint32_t poly = 0x82F63B78u;

// table[k][b]: the CRC register after feeding byte b followed by k zero bytes.
struct sw_tables {
    std::array<std::array<uint32_t, 256>, 8> t{};
    sw_tables() {
        for (uint32_t b = 0; b < 256; ++b) {
            uint32_t c = b;
            for (int i = 0; i < 8; ++i) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
            t[0][b] = c;
        }
        for (uint32_t b = 0; b < 256; ++b)
            for (size_t k = 1; k < 8; ++k) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
};

const sw_tables& tables() {
    static const sw_tables instance;
    return instance;
}

// The raw register update (no pre/post inversion), slicing by 8.
uint32_t raw_software(uint32_t crc, const uint8_t* p, size_t n) {
    const auto& t = tables().t;
    while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
        crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
        --n;
    }
    while (n >= 8) {
        uint64_t w;
        std::memcpy(&w, p, 8);  // little-endian host: byte 0 is the low byte
        w ^= crc;
        crc = t[7][w & 0xff] ^ t[6][(w >> 8) & 0xff] ^ t[5][(w >> 16) & 0xff] ^
              t[4][(w >> 24) & 0xff] ^ t[3][(w >> 32) & 0xff] ^ t[2][(w >> 40) & 0xff] ^
              t[1][(w >> 48) & 0xff] ^ t[0][w >> 56];
        p += 8;
        n -= 8;
    }
    while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
    return crc;
}

// A linear operator "advance the raw register over len zero bytes", as four byte tables.
// Built from the images of the 32 basis vectors, which is obviously correct and costs
// 32 * len table steps once at startup.
struct zeros_op {
    std::array<std::array<uint32_t, 256>, 4> t{};
    explicit zeros_op(size_t len) {
        std::array<uint32_t, 32> basis{};
        static const uint8_t zero_block[256] = {};
        for (int i = 0; i < 32; ++i) {
            uint32_t c = 1u << i;
            for (size_t left = len; left > 0;) {
                size_t step = left < sizeof(zero_block) ? left : sizeof(zero_block);
                c = raw_software(c, zero_block, step);
                left -= step;
            }
            basis[i] = c;
        }
        for (int k = 0; k < 4; ++k) {
            for (uint32_t b = 0; b < 256; ++b) {
                uint32_t v = 0;
                for (int bit = 0; bit < 8; ++bit)
                    if (b & (1u << bit)) v ^= basis[k * 8 + bit];
                t[k][b] = v;
            }
        }
    }
    uint32_t shift(uint32_t crc) const {
        return t[0][crc & 0xff] ^ t[1][(crc >> 8) & 0xff] ^ t[2][(crc >> 16) & 0xff] ^
               t[3][crc >> 24];
    }
};

constexpr size_t long_block = 8192;
constexpr size_t short_block = 256;

#if defined(__x86_64__)
struct hw_ops {
    zeros_op long_op{long_block};
    zeros_op short_op{short_block};
};

const hw_ops& ops() {
    static const hw_ops instance;
    return instance;
}

__attribute__((target("sse4.2"))) uint64_t crc_words(uint64_t crc, const uint8_t* p, size_t n) {
    for (size_t i = 0; i < n; i += 8) {
        uint64_t w;
        std::memcpy(&w, p + i, 8);
        crc = _mm_crc32_u64(crc, w);
    }
    return crc;
}

// Three streams of `block` bytes each, joined: crc(A B C) = shift(shift(crc(A)) ^ crc(B)) ^ crc(C).
__attribute__((target("sse4.2"))) uint64_t crc_3way(uint64_t crc, const uint8_t*& p, size_t& n,
                                                    size_t block, const zeros_op& op) {
    while (n >= 3 * block) {
        uint64_t c0 = crc, c1 = 0, c2 = 0;
        const uint8_t* end = p + block;
        while (p < end) {
            uint64_t w0, w1, w2;
            std::memcpy(&w0, p, 8);
            std::memcpy(&w1, p + block, 8);
            std::memcpy(&w2, p + 2 * block, 8);
            c0 = _mm_crc32_u64(c0, w0);
            c1 = _mm_crc32_u64(c1, w1);
            c2 = _mm_crc32_u64(c2, w2);
            p += 8;
        }
        crc = op.shift(static_cast<uint32_t>(c0)) ^ c1;
        crc = op.shift(static_cast<uint32_t>(crc)) ^ c2;
        p += 2 * block;
        n -= 3 * block;
    }
    return crc;
}

__attribute__((target("sse4.2"))) uint32_t raw_hardware(uint32_t crc32, const uint8_t* p,
                                                         size_t n) {
    uint64_t crc = crc32;
    while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
        crc = _mm_crc32_u8(static_cast<uint32_t>(crc), *p++);
        --n;
    }
    const auto& o = ops();
    crc = crc_3way(crc, p, n, long_block, o.long_op);
    crc = crc_3way(crc, p, n, short_block, o.short_op);
    size_t words = n & ~size_t{7};
    crc = crc_words(crc, p, words);
    p += words;
    n -= words;
    while (n-- > 0) crc = _mm_crc32_u8(static_cast<uint32_t>(crc), *p++);
    return static_cast<uint32_t>(crc);
}
#endif

bool detect_hardware() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2");
#else
    return false;
#endif
}

}  // namespace

bool crc32c_hardware_available() {
    static const bool available = detect_hardware();
    return available;
}

uint32_t crc32c_extend_software(uint32_t crc, const uint8_t* data, size_t size) {
    return ~raw_software(~crc, data, size);
}

uint32_t crc32c_extend_hardware(uint32_t crc, const uint8_t* data, size_t size) {
#if defined(__x86_64__)
    SLUICE_ASSERT(crc32c_hardware_available(), "crc32c: no SSE4.2 on this CPU");
    return ~raw_hardware(~crc, data, size);
#else
    SLUICE_ASSERT(false, "crc32c: hardware path only on x86-64");
    return crc32c_extend_software(crc, data, size);
#endif
}

uint32_t crc32c_extend(uint32_t crc, const uint8_t* data, size_t size) {
    static const bool hw = crc32c_hardware_available();
    return hw ? crc32c_extend_hardware(crc, data, size) : crc32c_extend_software(crc, data, size);
}

}  // namespace sluice::storage
