#include "coord/uuid.h"

#include <random>

namespace sluice::coord {
namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int decode_char(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '-') return 62;
    if (c == '_') return 63;
    return -1;
}

}  // namespace

std::string uuid_to_base64(const uuid& id) {
    std::string out;
    out.reserve(22);
    // 16 bytes = 5 full 3-byte groups + 1 trailing byte (2 chars, no padding).
    size_t i = 0;
    for (; i + 3 <= id.size(); i += 3) {
        uint32_t v = (uint32_t(id[i]) << 16) | (uint32_t(id[i + 1]) << 8) | id[i + 2];
        for (int s = 18; s >= 0; s -= 6) out.push_back(alphabet[(v >> s) & 63]);
    }
    uint32_t v = uint32_t(id[i]) << 16;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    return out;
}

std::optional<uuid> uuid_from_base64(std::string_view text) {
    if (text.size() != 22) return std::nullopt;
    uuid id{};
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (char c : text) {
        int d = decode_char(c);
        if (d < 0) return std::nullopt;
        acc = (acc << 6) | uint32_t(d);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == id.size()) return std::nullopt;
            id[n++] = uint8_t(acc >> bits);
        }
    }
    // The last char carries 4 padding bits that must be zero (canonical form).
    if (n != id.size() || (acc & ((1u << bits) - 1)) != 0) return std::nullopt;
    return id;
}

bool is_zero(const uuid& id) {
    for (uint8_t b : id)
        if (b != 0) return false;
    return true;
}

uuid random_uuid() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    for (;;) {
        uuid id;
        for (size_t i = 0; i < id.size(); i += 8) {
            uint64_t r = rng();
            for (size_t j = 0; j < 8; ++j) id[i + j] = uint8_t(r >> (8 * j));
        }
        id[6] = uint8_t((id[6] & 0x0f) | 0x40);  // version 4
        id[8] = uint8_t((id[8] & 0x3f) | 0x80);  // IETF variant
        uuid metadata_topic_id{};
        metadata_topic_id[15] = 1;
        if (is_zero(id) || id == metadata_topic_id) continue;
        if (uuid_to_base64(id)[0] == '-') continue;
        return id;
    }
}

}  // namespace sluice::coord
