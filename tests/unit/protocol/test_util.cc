#include "tests/unit/protocol/test_util.h"

namespace sluice::proto::test {

std::vector<uint8_t> unhex(std::string_view hex) {
    if (hex.size() % 2 != 0) return {};
    auto nibble = [](char c) -> uint8_t {
        if (c >= '0' && c <= '9') return static_cast<uint8_t>(c - '0');
        if (c >= 'a' && c <= 'f') return static_cast<uint8_t>(c - 'a' + 10);
        if (c < 'A' || c > 'F') return 0;
        return static_cast<uint8_t>(c - 'A' + 10);
    };
    std::vector<uint8_t> out;
    for (size_t i = 0; i < hex.size(); i += 2)
        out.push_back(static_cast<uint8_t>(nibble(hex[i]) << 4 | nibble(hex[i + 1])));
    return out;
}

std::string hex(const std::vector<uint8_t>& bytes) {
    static const char digits[] = "0123456789abcdef";
    std::string s;
    for (uint8_t b : bytes) {
        s += digits[b >> 4];
        s += digits[b & 15];
    }
    return s;
}

std::vector<uint8_t> bytes_of(const out_message& m) {
    if (m.has_files()) return {};
    auto b = m.memory_bytes();
    return {b.begin(), b.end()};
}

}  // namespace sluice::proto::test
