// Primitive encodings against hand-computed byte vectors (Kafka's ByteUtils).
#include "broker/protocol/errors.h"
#include "broker/protocol/reader.h"
#include "broker/protocol/writer.h"
#include "tests/unit/protocol/test_util.h"

#include <doctest/doctest.h>

#include <climits>

using namespace sluice;
using namespace sluice::proto;
using test::bytes_of;
using test::hex;
using test::unhex;

namespace {

template <typename F>
std::string encoded(F&& f) {
    out_message m;
    writer w(m);
    f(w);
    return hex(bytes_of(m));
}

}  // namespace

TEST_CASE("unsigned varint edge cases") {
    struct vec { uint32_t v; const char* hex; };
    for (const vec& c : {vec{0, "00"}, vec{1, "01"}, vec{127, "7f"}, vec{128, "8001"},
                         vec{300, "ac02"}, vec{16383, "ff7f"}, vec{16384, "808001"},
                         vec{UINT32_MAX, "ffffffff0f"}}) {
        const uint32_t v = c.v;
        const char* h = c.hex;
        CHECK(encoded([&](writer& w) { w.write_uvarint(v); }) == h);
        auto bytes = unhex(h);
        reader r(bytes);
        CHECK(r.read_uvarint() == v);
        CHECK(r.ok());
        CHECK(r.remaining() == 0);
    }
}

TEST_CASE("varint longer than 5 bytes or over 32 bits is rejected") {
    for (const char* h : {"ffffffff1f", "8080808080", "ffffffffff01", "80"}) {
        auto bytes = unhex(h);
        reader r(bytes);
        (void)r.read_uvarint();
        CHECK_FALSE(r.ok());
        CHECK(!r.error().empty());
    }
}

TEST_CASE("zigzag varint and varlong") {
    struct vec { int64_t v; const char* hex; };
    for (const vec& c : {vec{0, "00"}, vec{-1, "01"}, vec{1, "02"}, vec{-2, "03"}, vec{63, "7e"},
                         vec{-64, "7f"}, vec{64, "8001"}, vec{INT32_MAX, "feffffff0f"},
                         vec{INT32_MIN, "ffffffff0f"}}) {
        const int64_t v = c.v;
        const char* h = c.hex;
        CHECK(encoded([&](writer& w) { w.write_varint(static_cast<int32_t>(v)); }) == h);
        auto bytes = unhex(h);
        reader r(bytes);
        CHECK(r.read_varint() == v);
        CHECK(r.ok());
    }
    CHECK(encoded([](writer& w) { w.write_varlong(INT64_MIN); }) == "ffffffffffffffffff01");
    CHECK(encoded([](writer& w) { w.write_varlong(INT64_MAX); }) == "feffffffffffffffff01");
    auto bytes = unhex("ffffffffffffffffff01");
    reader r(bytes);
    CHECK(r.read_varlong() == INT64_MIN);
    CHECK(r.ok());
}

TEST_CASE("big-endian integers and float64") {
    CHECK(encoded([](writer& w) { w.write_int16(-2); }) == "fffe");
    CHECK(encoded([](writer& w) { w.write_int32(0x01020304); }) == "01020304");
    CHECK(encoded([](writer& w) { w.write_int64(-1); }) == "ffffffffffffffff");
    CHECK(encoded([](writer& w) { w.write_float64(1.0); }) == "3ff0000000000000");
    auto bytes = unhex("3ff0000000000000" "8000" "fffffffe");
    reader r(bytes);
    CHECK(r.read_float64() == 1.0);
    CHECK(r.read_uint16() == 0x8000);
    CHECK(r.read_int32() == -2);
    CHECK(r.ok());
}

TEST_CASE("classic and compact strings, null strings") {
    CHECK(encoded([](writer& w) { w.write_string("abc", false); }) == "0003616263");
    CHECK(encoded([](writer& w) { w.write_string("abc", true); }) == "04616263");
    CHECK(encoded([](writer& w) { w.write_string(std::optional<std::string>{}, false, true); }) == "ffff");
    CHECK(encoded([](writer& w) { w.write_string(std::optional<std::string>{}, true, true); }) == "00");
    // A null in a version where the field is not nullable goes out as empty.
    CHECK(encoded([](writer& w) { w.write_string(std::optional<std::string>{}, true, false); }) == "01");

    auto bytes = unhex("04616263" "00" "01" "ffff");
    reader r(bytes);
    std::optional<std::string> s;
    r.read_string(s, true, true);
    CHECK(s == "abc");
    r.read_string(s, true, true);
    CHECK(!s.has_value());
    r.read_string(s, true, true);
    CHECK(s == "");
    r.read_string(s, false, true);
    CHECK(!s.has_value());
    CHECK(r.ok());
}

TEST_CASE("a null where the field is not nullable is an error") {
    auto bytes = unhex("00");
    reader r(bytes);
    std::string s;
    r.read_string(s, true);
    CHECK_FALSE(r.ok());
}

TEST_CASE("string longer than the buffer fails with a useful message") {
    auto bytes = unhex("000a6162");
    reader r(bytes);
    r.set_context(3, 1);
    std::string s;
    r.read_string(s, false);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error() == "api_key 3 v1: string at offset 2: wanted 10 bytes, 2 remaining");
    // Sticky: later reads return zero and keep the first error.
    CHECK(r.read_int8() == 0);
    CHECK(r.error().find("offset 2") != std::string::npos);
}

TEST_CASE("arrays: null, negative and huge counts") {
    auto null_classic = unhex("ffffffff");
    reader a(null_classic);
    CHECK(a.read_array_length(false, true, 1) == -1);
    CHECK(a.ok());
    reader b(null_classic);
    (void)b.read_array_length(false, false, 1);
    CHECK_FALSE(b.ok());  // null where not nullable

    auto null_compact = unhex("00");
    reader c(null_compact);
    CHECK(c.read_array_length(true, true, 1) == -1);
    CHECK(c.ok());

    auto negative = unhex("fffffffe");
    reader d(negative);
    (void)d.read_array_length(false, true, 1);
    CHECK_FALSE(d.ok());

    // 1000 int32 elements announced, 8 bytes present: rejected before allocating.
    auto huge = unhex("000003e8" "0000000100000002");
    reader e(huge);
    (void)e.read_array_length(false, false, 4);
    CHECK_FALSE(e.ok());
    CHECK(e.error().find("wanted 4000 bytes, 8 remaining") != std::string::npos);

    auto two = unhex("03" "0000000100000002");
    reader f(two);
    CHECK(f.read_array_length(true, false, 4) == 2);
    CHECK(f.ok());
}

TEST_CASE("bytes and records") {
    CHECK(encoded([](writer& w) { w.write_bytes(std::vector<uint8_t>{1, 2}, false); }) == "000000020102");
    CHECK(encoded([](writer& w) { w.write_bytes(std::vector<uint8_t>{1, 2}, true); }) == "030102");
    CHECK(encoded([](writer& w) { w.write_records(records{}, false, true); }) == "ffffffff");
    CHECK(encoded([](writer& w) { w.write_records(records{}, true, true); }) == "00");

    records r;
    r.append(std::vector<uint8_t>{0xaa});
    r.append(std::vector<uint8_t>{0xbb, 0xcc});
    CHECK(r.size() == 3);
    CHECK(encoded([&](writer& w) { w.write_records(r, true, true); }) == "04aabbcc");

    auto frame = unhex("00000003aabbcc");
    reader rd(frame);
    records got;
    rd.read_records(got, false, true);
    REQUIRE(rd.ok());
    CHECK(!got.is_null);
    CHECK(got.view.data() == frame.data() + 4);  // a view into the frame, not a copy
    CHECK(got.view.size() == 3);
}

namespace {
struct fake_file : file_handle {
    int fd() const override { return 42; }
};
}  // namespace

TEST_CASE("records with file slices become file pieces with the total length prefix") {
    auto file = std::make_shared<fake_file>();
    records r;
    r.append(std::vector<uint8_t>{1, 2});
    r.append(file_slice{file, 100, 1000});
    out_message m;
    writer w(m);
    w.write_records(r, false, true);
    REQUIRE(m.pieces().size() == 2);
    CHECK(m.size() == 4 + 2 + 1000);
    CHECK(m.pieces()[1].is_file);
    CHECK(m.pieces()[1].slice.position == 100);
    const uint8_t* p = m.memory(m.pieces()[0]);
    CHECK(hex({p, p + 6}) == "000003ea0102");
}

TEST_CASE("frame prefix is patched with the body length") {
    out_message m;
    writer w(m);
    size_t at = w.begin_frame();
    w.write_int32(7);
    w.write_string("hi", false);
    w.end_frame(at);
    CHECK(hex(bytes_of(m)) == "00000008" "00000007" "00026869");
}

TEST_CASE("tagged fields: known decoded, unknown skipped, sizes enforced") {
    // two fields: tag 0 (size 1, 0x05), tag 7 (size 3, unknown)
    auto bytes = unhex("02" "000105" "0703aabbcc" "ee");
    reader r(bytes);
    int8_t tag0 = 0;
    r.read_tagged_fields([&](uint32_t tag) {
        if (tag != 0) return false;
        tag0 = r.read_int8();
        return true;
    });
    CHECK(r.ok());
    CHECK(tag0 == 5);
    CHECK(r.remaining() == 1);

    // a known field that reads less than its declared size is malformed
    auto short_read = unhex("01" "000205ff");
    reader s(short_read);
    s.read_tagged_fields([&](uint32_t) { (void)s.read_int8(); return true; });
    CHECK_FALSE(s.ok());

    // a size beyond the buffer
    auto overflow = unhex("01" "0009ff");
    reader o(overflow);
    o.read_tagged_fields([](uint32_t) { return false; });
    CHECK_FALSE(o.ok());

    out_message m;
    writer w(m);
    w.write_uvarint(1);
    w.write_tagged(3, [](writer& tw) { tw.write_int16(0x0102); });
    CHECK(hex(bytes_of(m)) == "0103020102");
}

TEST_CASE("uuid") {
    uuid u{};
    for (size_t i = 0; i < u.size(); ++i) u[i] = static_cast<uint8_t>(i);
    auto h = encoded([&](writer& w) { w.write_uuid(u); });
    CHECK(h == "000102030405060708090a0b0c0d0e0f");
    auto bytes = unhex(h);
    reader r(bytes);
    CHECK(r.read_uuid() == u);
    auto short_bytes = unhex("0001");
    reader s(short_bytes);
    (void)s.read_uuid();
    CHECK_FALSE(s.ok());
}

TEST_CASE("error code names") {
    CHECK(static_cast<int16_t>(error_code::unknown_topic_or_partition) == 3);
    CHECK(static_cast<int16_t>(error_code::unsupported_version) == 35);
    CHECK(static_cast<int16_t>(error_code::not_controller) == 41);
    CHECK(static_cast<int16_t>(error_code::unknown_topic_id) == 100);
    CHECK(error_name(error_code::unknown_server_error) == "unknown_server_error");
    CHECK(error_name(error_code::fenced_leader_epoch) == "fenced_leader_epoch");
    CHECK(error_name(static_cast<error_code>(9999)) == "unknown_error_code");
}
