#include "storage/crc32c.h"

#include <doctest/doctest.h>

#include <random>
#include <string_view>
#include <vector>

using namespace sluice::storage;

namespace {
uint32_t crc_of(const std::vector<uint8_t>& v) { return crc32c(v); }
}  // namespace

TEST_CASE("crc32c: RFC 3720 appendix B.4 vectors") {
    std::vector<uint8_t> zeros(32, 0x00), ones(32, 0xff), inc(32), dec(32);
    for (int i = 0; i < 32; ++i) {
        inc[i] = static_cast<uint8_t>(i);
        dec[i] = static_cast<uint8_t>(31 - i);
    }
    CHECK(crc_of(zeros) == 0x8A9136AAu);
    CHECK(crc_of(ones) == 0x62A8AB43u);
    CHECK(crc_of(inc) == 0x46DD794Eu);
    CHECK(crc_of(dec) == 0x113FDB5Cu);
    // The iSCSI SCSI Read (10) command PDU of the same appendix.
    std::vector<uint8_t> pdu = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
        0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    CHECK(crc_of(pdu) == 0xD9963A56u);
}

TEST_CASE("crc32c: check value and empty input") {
    std::string_view s = "123456789";
    CHECK(crc32c_extend(0, reinterpret_cast<const uint8_t*>(s.data()), s.size()) == 0xE3069283u);
    CHECK(crc32c_extend_software(0, reinterpret_cast<const uint8_t*>(s.data()), s.size()) ==
          0xE3069283u);
    CHECK(crc32c(std::span<const uint8_t>{}) == 0u);
}

TEST_CASE("crc32c: hardware and software agree on every length, alignment and split") {
    std::mt19937_64 rng(42);
    std::vector<uint8_t> buf(3 * 8192 * 2 + 3 * 256 * 3 + 123);
    for (auto& b : buf) b = static_cast<uint8_t>(rng());
    // Lengths around the 3-way block boundaries and a spread of random ones.
    std::vector<size_t> lengths = {0, 1, 7, 8, 9, 255, 256, 767, 768, 769, 24575, 24576, 24577,
                                   buf.size() - 8};
    for (int i = 0; i < 200; ++i) lengths.push_back(rng() % (buf.size() - 8));
    bool hw = crc32c_hardware_available();
    MESSAGE("SSE4.2 crc32c available: " << hw);
    for (size_t len : lengths) {
        for (size_t misalign = 0; misalign < 8; misalign += 3) {
            const uint8_t* p = buf.data() + misalign;
            uint32_t sw = crc32c_extend_software(0, p, len);
            if (hw) REQUIRE(crc32c_extend_hardware(0, p, len) == sw);
            REQUIRE(crc32c_extend(0, p, len) == sw);
            // crc(a ++ b) == extend(crc(a), b)
            size_t cut = len ? rng() % len : 0;
            REQUIRE(crc32c_extend(crc32c_extend(0, p, cut), p + cut, len - cut) == sw);
        }
    }
}

TEST_CASE("crc32c: a single flipped bit changes the checksum") {
    std::vector<uint8_t> buf(100000, 0x5a);
    uint32_t before = crc_of(buf);
    buf[54321] ^= 0x10;
    CHECK(crc_of(buf) != before);
}
