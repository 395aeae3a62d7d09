// Tests for the load generator's minimal Kafka codec: CRC32C vectors, record batches
// checked against a real librdkafka batch, request frames against captured client
// frames, and response decoders on hand-built and truncated bodies.
#include "bench/kafka_wire.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

using namespace sluice::bench::wire;

namespace {

std::vector<uint8_t> unhex(const std::string& hex) {
    std::vector<uint8_t> out;
    for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<uint8_t>(std::stoi(hex.substr(i, 2), nullptr, 16)));
    return out;
}

// A frame as the captures print it: body without the size prefix.
std::vector<uint8_t> framed(const std::string& body_hex) {
    auto body = unhex(body_hex);
    std::vector<uint8_t> out;
    writer(out).i32(static_cast<int32_t>(body.size()));
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

// librdkafka 2.0.2 (kcat -P, no compression), Produce v7, corr 4: three keyed records with two headers each.
const std::string rdkafka_produce_v7 =
    "0000000700000004000772646b61666b61ffffffff0000753000000001000274310000000100000000000000dc00000000000000"
    "00000000d00000000002bd2e4841000000000002000001a2102fc197000001a2102fc197ffffffffffffffffffffffffffff0000"
    "000368000000046b314476616c75652d312d61616161616161616161616161616161616161616161616161610404683102610468"
    "32026268000002046b324476616c75652d322d616161616161616161616161616161616161616161616161616104046831026104"
    "6832026268000004046b334476616c75652d332d6161616161616161616161616161616161616161616161616161040468310261"
    "0468320262";

uint32_t crc32c_bitwise(const std::vector<uint8_t>& data) {
    uint32_t c = ~0u;
    for (uint8_t b : data) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    }
    return ~c;
}

}  // namespace

TEST_CASE("crc32c matches the standard check value and a bitwise reference") {
    CHECK(crc32c("123456789", 9) == 0xe3069283u);
    CHECK(crc32c("", 0) == 0u);
    std::vector<uint8_t> zeros(32, 0);
    CHECK(crc32c(zeros.data(), zeros.size()) == 0x8a9136aau);  // RFC 3720 B.4
    std::vector<uint8_t> data;
    for (int n = 0; n < 300; ++n) {
        data.push_back(static_cast<uint8_t>(n * 37 + 11));
        CHECK(crc32c(data.data(), data.size()) == crc32c_bitwise(data));
    }
    // Chaining: crc of a+b from the crc of a.
    uint32_t a = crc32c(data.data(), 100);
    CHECK(crc32c(data.data() + 100, data.size() - 100, a) == crc32c(data.data(), data.size()));
}

TEST_CASE("a batch captured from librdkafka scans as 3 records with a valid CRC") {
    auto frame = unhex(rdkafka_produce_v7);
    // The batch starts after: header (4+4+2+7), txn id 2, acks 2, timeout 4, topics 4, "t1" 4, parts 4, index 4, size 4.
    size_t at = 17 + 2 + 2 + 4 + 4 + 4 + 4 + 4 + 4;
    std::span<const uint8_t> batch(frame.data() + at, frame.size() - at);
    REQUIRE(batch.size() == 220);
    auto scan = scan_batches(batch, true);
    CHECK(scan.batches == 1);
    CHECK(scan.records == 3);
    CHECK(scan.next_offset == 3);
    CHECK(scan.bytes == 220);
    CHECK(scan.crc_failures == 0);
    CHECK_FALSE(scan.malformed);

    std::vector<uint8_t> corrupt(batch.begin(), batch.end());
    corrupt[100] ^= 1;
    CHECK(scan_batches(corrupt, true).crc_failures == 1);
    CHECK(scan_batches(corrupt, false).crc_failures == 0);
}

TEST_CASE("encode_produce reproduces librdkafka's Produce v7 frame around the same batch") {
    auto expected = framed(rdkafka_produce_v7);
    size_t at = 4 + 17 + 2 + 2 + 4 + 4 + 4 + 4 + 4 + 4;
    std::vector<uint8_t> batch(expected.begin() + static_cast<long>(at), expected.end());
    std::vector<uint8_t> out;
    produce_partition part{0, batch};
    encode_produce(out, 7, 4, "rdkafka", -1, 30000, "t1", std::span(&part, 1));
    CHECK(out == expected);
}

TEST_CASE("append_record_batch builds a v2 batch the scanner and a record walk agree on") {
    std::vector<uint8_t> value(300);
    for (size_t i = 0; i < value.size(); ++i) value[i] = static_cast<uint8_t>(i);
    std::vector<uint8_t> out{0xaa};  // batches are appended after existing bytes
    append_record_batch(out, 200, value, 1700000000000);
    std::span<const uint8_t> batch(out.data() + 1, out.size() - 1);

    reader h(batch);
    CHECK(h.i64() == 0);
    CHECK(static_cast<size_t>(h.i32()) == batch.size() - 12);
    CHECK(h.i32() == -1);
    CHECK(h.i8() == 2);
    uint32_t crc = static_cast<uint32_t>(h.i32());
    CHECK(crc == crc32c(batch.data() + batch_attributes_offset, batch.size() - batch_attributes_offset));
    CHECK(h.i16() == 0);
    CHECK(h.i32() == 199);
    CHECK(h.i64() == 1700000000000);
    CHECK(h.i64() == 1700000000000);
    CHECK(h.i64() == -1);
    CHECK(h.i16() == -1);
    CHECK(h.i32() == -1);
    CHECK(h.i32() == 200);
    for (int i = 0; i < 200; ++i) {
        int64_t length = h.varint();
        size_t body_start = h.position();
        CHECK(h.i8() == 0);
        CHECK(h.varint() == 0);
        CHECK(h.varint() == i);
        CHECK(h.varint() == -1);
        CHECK(h.varint() == 300);
        h.skip(300);
        CHECK(h.varint() == 0);
        CHECK(static_cast<int64_t>(h.position() - body_start) == length);
    }
    CHECK(h.ok());
    CHECK(h.remaining() == 0);

    auto scan = scan_batches(batch, true);
    CHECK(scan.records == 200);
    CHECK(scan.next_offset == 200);
    CHECK(scan.crc_failures == 0);
}

TEST_CASE("scan_batches ignores a partial trailing batch and stops at garbage") {
    std::vector<uint8_t> value(10, 7);
    std::vector<uint8_t> two;
    append_record_batch(two, 5, value, 1);
    size_t first = two.size();
    append_record_batch(two, 3, value, 2);
    // The broker assigns base offsets; give the second batch base offset 5.
    two[first + 7] = 5;
    auto whole = scan_batches(two, false);
    CHECK(whole.batches == 2);
    CHECK(whole.records == 8);
    CHECK(whole.next_offset == 8);

    std::span<const uint8_t> cut(two.data(), two.size() - 1);
    auto partial = scan_batches(cut, false);
    CHECK(partial.batches == 1);
    CHECK(partial.next_offset == 5);
    CHECK(partial.bytes == first);

    std::vector<uint8_t> garbage(100, 0);
    CHECK(scan_batches(garbage, false).malformed);
    CHECK(scan_batches({}, false).next_offset == -1);
}

TEST_CASE("request frames match what real clients sent") {
    std::vector<uint8_t> out;
    encode_api_versions_v0(out, 2, "rdkafka");
    CHECK(out == framed("0012000000000002000772646b61666b61"));

    out.clear();
    encode_metadata(out, 2, 3, "rdkafka", {"t1"}, false);
    CHECK(out == framed("0003000200000003000772646b61666b610000000100027431"));

    out.clear();
    fetch_partition p{0, 0, 1048576};
    encode_fetch(out, 4, 3, "kafka-python-2.0.2", 500, 1, 52428800, "t1", std::span(&p, 1));
    CHECK(out == framed("000100040000000300126b61666b612d707974686f6e2d322e302e32ffffffff000001f40000000103200000000000"
                        "0001000274310000000100000000000000000000000000100000"));

    // librdkafka's Fetch v11 differs from ours only in isolation level (it reads committed).
    out.clear();
    p = {0, 3, 1048576};
    encode_fetch(out, 11, 8, "rdkafka", 500, 1, 52428800, "t1", std::span(&p, 1));
    auto rdk = framed("0001000b00000008000772646b61666b61ffffffff000001f400000001032000000100000000ffffffff000000010002"
                      "74310000000100000000ffffffff0000000000000003ffffffffffffffff00100000000000000000");
    REQUIRE(out.size() == rdk.size());
    size_t isolation = 4 + 17 + 4 + 4 + 4 + 4;
    CHECK(rdk[isolation] == 1);
    rdk[isolation] = 0;
    CHECK(out == rdk);
}

TEST_CASE("decoders read hand-built responses and reject truncated ones") {
    std::vector<uint8_t> body;
    writer w(body);
    w.i16(0);
    w.i32(2);
    w.i16(0); w.i16(3); w.i16(8);
    w.i16(1); w.i16(4); w.i16(11);
    auto av = decode_api_versions_v0(body);
    REQUIRE(av.has_value());
    CHECK(av->pick(api::produce, 3, 7) == 7);
    CHECK(av->pick(api::fetch, 4, 11) == 11);
    CHECK(av->pick(api::fetch, 12, 13) == -1);
    CHECK(av->pick(api::metadata, 1, 4) == -1);
    body.pop_back();
    CHECK_FALSE(decode_api_versions_v0(body).has_value());

    body.clear();
    w.i32(0);  // throttle
    w.i16(0);  // error
    w.i32(0);  // session
    w.i32(1);
    w.string("t");
    w.i32(1);
    w.i32(4);          // partition
    w.i16(0);          // error
    w.i64(1000);       // hw
    w.i64(1000);       // lso
    w.i64(10);         // log start
    w.i32(-1);         // aborted: null
    w.i32(-1);         // preferred replica
    std::vector<uint8_t> records;
    std::vector<uint8_t> value(3, 1);
    append_record_batch(records, 2, value, 5);
    w.i32(static_cast<int32_t>(records.size()));
    w.raw(records.data(), records.size());
    auto f = decode_fetch(11, body);
    REQUIRE(f.has_value());
    REQUIRE(f->partitions.size() == 1);
    CHECK(f->partitions[0].partition == 4);
    CHECK(f->partitions[0].high_watermark == 1000);
    CHECK(f->partitions[0].log_start_offset == 10);
    CHECK(f->partitions[0].records.size() == records.size());
    body.resize(body.size() - records.size() - 1);
    CHECK_FALSE(decode_fetch(11, body).has_value());

    body.clear();
    w.i32(1);
    w.string("t");
    w.i32(1);
    w.i32(2);
    w.i16(6);
    w.i64(-1);
    w.i64(-1);  // log append time
    w.i64(-1);  // log start (v5+)
    w.i32(0);   // throttle
    auto pr = decode_produce(7, body);
    REQUIRE(pr.has_value());
    REQUIRE(pr->size() == 1);
    CHECK((*pr)[0].partition == 2);
    CHECK((*pr)[0].error == 6);
    CHECK_FALSE(decode_produce(8, body).has_value());  // v8 expects record errors: too short
}

TEST_CASE("a huge array count in a response does not allocate, it fails") {
    std::vector<uint8_t> body;
    writer w(body);
    w.i16(0);
    w.i32(0x7fffffff);
    CHECK_FALSE(decode_api_versions_v0(body).has_value());
}
