#include "broker/groups/hash.h"

#include "base/assert.h"

namespace sluice::broker::groups {
namespace {

// Decodes one code point at s[i] (advancing i); U+FFFD for malformed input.
uint32_t next_code_point(std::string_view s, size_t& i) {
    auto byte = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    uint8_t b0 = byte(i);
    size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xe ? 3 : (b0 >> 3) == 0x1e ? 4 : 0;
    if (len == 0 || i + len > s.size()) {
        ++i;
        return 0xfffd;
    }
    uint32_t cp = len == 1 ? b0 : b0 & (0x7f >> len);
    for (size_t k = 1; k < len; ++k) {
        if ((byte(i + k) & 0xc0) != 0x80) {
            ++i;
            return 0xfffd;
        }
        cp = (cp << 6) | (byte(i + k) & 0x3f);
    }
    i += len;
    return cp;
}

}  // namespace

int32_t java_string_hash(std::string_view s) {
    uint32_t h = 0;  // unsigned: Java's int arithmetic wraps
    for (size_t i = 0; i < s.size();) {
        uint32_t cp = next_code_point(s, i);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            h = h * 31 + (0xd800 + (cp >> 10));
            h = h * 31 + (0xdc00 + (cp & 0x3ff));
        } else {
            h = h * 31 + cp;
        }
    }
    return static_cast<int32_t>(h);
}

int32_t offsets_partition_for(std::string_view group_id, int32_t partitions) {
    SLUICE_ASSERT(partitions > 0, "offsets.topic.num.partitions {}", partitions);
    return (java_string_hash(group_id) & 0x7fffffff) % partitions;
}

}  // namespace sluice::broker::groups
