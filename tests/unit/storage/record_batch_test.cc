#include "storage/record_batch.h"

#include "captured_batches.h"
#include "storage/crc32c.h"
#include "storage/endian.h"
#include "storage/errors.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <limits>
#include <random>

using namespace sluice::storage;
using namespace sluice::storage::test;

namespace {

log_errc validate_error(std::span<const uint8_t> b, validate_origin o = validate_origin::client) {
    auto r = validate_batches(b, o);
    if (r) return log_errc::ok;
    REQUIRE(r.error().category() == log_category());
    return static_cast<log_errc>(r.error().value());
}

void fix_crc(std::vector<uint8_t>& b) { store_be32(b.data() + batch_offset::crc, compute_batch_crc(b)); }

}  // namespace

TEST_CASE("record batch: header layout is Kafka's") {
    CHECK(batch_header_size == 61);
    auto b = batch_builder(1700000000000)
                 .producer(77, 3, 10)
                 .add("key", "value")
                 .add(std::nullopt, "v2", 1700000000005)
                 .build(42);
    REQUIRE(b.size() > batch_header_size);
    CHECK(load_be64(b.data() + 0) == 42);
    CHECK(load_be32(b.data() + 8) == b.size() - 12);
    CHECK(b[16] == 2);
    CHECK(load_be32(b.data() + 17) == crc32c(std::span<const uint8_t>(b).subspan(21)));
    CHECK(load_be32(b.data() + 23) == 1);  // lastOffsetDelta
    CHECK(load_be64(b.data() + 27) == 1700000000000);
    CHECK(load_be64(b.data() + 35) == 1700000000005);
    CHECK(load_be64(b.data() + 43) == 77);
    CHECK(load_be16(b.data() + 51) == 3);
    CHECK(load_be32(b.data() + 53) == 10);
    CHECK(load_be32(b.data() + 57) == 2);
    auto h = parse_batch_header(b.data());
    CHECK(h.base_offset == 42);
    CHECK(h.last_offset() == 43);
    CHECK(h.size_bytes() == b.size());
    CHECK(h.codec() == compression::none);
}

TEST_CASE("record batch: batches sent by real clients validate and decode") {
    for (auto& c : captured_batches) {
        CAPTURE(c.source);
        auto b = from_hex(c.hex);
        auto s = validate_batches(b);
        REQUIRE(s.has_value());
        CHECK(s->batch_count == 1);
        CHECK(s->offset_count == c.record_count);
        auto h = parse_batch_header(b.data());
        CHECK(static_cast<int>(h.codec()) == c.codec);
        if (c.codec == 0) {
            auto recs = decode_records(b);
            REQUIRE(recs.has_value());
            CHECK(recs->size() == static_cast<size_t>(c.record_count));
        } else {
            CHECK(decode_records(b).error() == make_error_code(log_errc::invalid_record));
        }
    }
}

TEST_CASE("record batch: kafkajs capture decodes to its keys, values and header") {
    // kafkajs producer.send of 2 keyed records, the first with one header.
    const captured_batch* kjs = nullptr;
    for (auto& c : captured_batches)
        if (c.source.starts_with("kafkajs")) kjs = &c;
    REQUIRE(kjs != nullptr);
    auto b = from_hex(kjs->hex);
    auto recs = decode_records(b);
    REQUIRE(recs.has_value());
    REQUIRE(recs->size() == 2);
    CHECK(as_string(*(*recs)[0].key) == "k1");
    CHECK(as_string(*(*recs)[0].value) == "v1");
    REQUIRE((*recs)[0].headers.size() == 1);
    CHECK(as_string((*recs)[0].headers[0].key) == "h");
    CHECK(as_string(*(*recs)[0].headers[0].value) == "x");
    CHECK(as_string(*(*recs)[1].key) == "k2");
    CHECK((*recs)[1].offset_delta == 1);
}

TEST_CASE("record batch: builder round trip with nulls and headers") {
    auto b = batch_builder(5000)
                 .add(std::nullopt, std::nullopt, 5001)
                 .add("", "", 4999, {{"a", "1"}, {"b", std::nullopt}})
                 .add(std::string(300, 'k'), std::string(70000, 'v'), 6000)
                 .build();
    REQUIRE(validate_batches(b).has_value());
    auto h = parse_batch_header(b.data());
    CHECK(h.max_timestamp == 6000);
    auto recs = decode_records(b);
    REQUIRE(recs.has_value());
    REQUIRE(recs->size() == 3);
    CHECK(!(*recs)[0].key.has_value());
    CHECK(!(*recs)[0].value.has_value());
    CHECK((*recs)[0].timestamp_delta == 1);
    CHECK((*recs)[1].key->empty());
    CHECK((*recs)[1].timestamp_delta == -1);
    REQUIRE((*recs)[1].headers.size() == 2);
    CHECK(!(*recs)[1].headers[1].value.has_value());
    CHECK((*recs)[2].key->size() == 300);
    CHECK((*recs)[2].value->size() == 70000);
}

TEST_CASE("record batch: several batches back to back") {
    std::vector<uint8_t> buf;
    for (int i = 0; i < 5; ++i) {
        auto b = make_batch(i * 10, i + 1, 100 * i);
        buf.insert(buf.end(), b.begin(), b.end());
    }
    auto s = validate_batches(buf);
    REQUIRE(s.has_value());
    CHECK(s->batch_count == 5);
    CHECK(s->offset_count == 1 + 2 + 3 + 4 + 5);
    CHECK(s->max_timestamp == 400 + 4);
    // Trailing garbage, or a partial second batch, fails the whole buffer.
    auto garbage = buf;
    garbage.push_back(0);
    CHECK(validate_error(garbage) == log_errc::corrupt_message);
    auto partial = buf;
    auto more = make_batch(0, 2);
    partial.insert(partial.end(), more.begin(), more.begin() + 40);
    CHECK(validate_error(partial) == log_errc::corrupt_message);
}

TEST_CASE("record batch: every truncation of a valid buffer is rejected") {
    auto b = make_batch(0, 3);
    auto two = b;
    two.insert(two.end(), b.begin(), b.end());
    for (size_t n = 0; n < two.size(); ++n) {
        if (n == b.size()) continue;  // exactly one whole batch: valid
        CAPTURE(n);
        auto e = validate_error(std::span<const uint8_t>(two).first(n));
        CHECK(e == log_errc::corrupt_message);
    }
    CHECK(validate_error(std::span<const uint8_t>(two).first(b.size())) == log_errc::ok);
}

TEST_CASE("record batch: each corruption kind gets its error") {
    auto good = make_batch(0, 3);
    REQUIRE(validate_error(good) == log_errc::ok);

    SUBCASE("payload byte flipped -> crc mismatch") {
        auto b = good;
        b[b.size() - 2] ^= 0x01;
        CHECK(validate_error(b) == log_errc::corrupt_message);
    }
    SUBCASE("attributes flipped (inside the CRC range) -> crc mismatch") {
        auto b = good;
        b[batch_offset::attributes + 1] ^= 0x08;
        CHECK(validate_error(b) == log_errc::corrupt_message);
    }
    SUBCASE("base offset and leader epoch are outside the CRC") {
        auto b = good;
        set_base_offset(b.data(), 123456);
        set_partition_leader_epoch(b.data(), 9);
        CHECK(validate_error(b) == log_errc::ok);
    }
    SUBCASE("magic 0/1 message sets") {
        for (uint8_t m : {0, 1, 3}) {
            auto b = good;
            b[batch_offset::magic] = m;
            CHECK(validate_error(b) == log_errc::unsupported_magic);
        }
    }
    SUBCASE("batchLength too small, too large, negative") {
        for (int32_t len : {0, 48, static_cast<int32_t>(good.size()), -1,
                            std::numeric_limits<int32_t>::max()}) {
            auto b = good;
            store_be32(b.data() + batch_offset::batch_length, static_cast<uint32_t>(len));
            CAPTURE(len);
            CHECK(validate_error(b) == log_errc::corrupt_message);
        }
    }
    SUBCASE("recordCount != lastOffsetDelta + 1") {
        auto b = good;
        store_be32(b.data() + batch_offset::record_count, 2);
        fix_crc(b);
        CHECK(validate_error(b) == log_errc::invalid_record);
        store_be32(b.data() + batch_offset::record_count, 3);
        store_be32(b.data() + batch_offset::last_offset_delta, 5);
        fix_crc(b);
        CHECK(validate_error(b) == log_errc::invalid_record);
    }
    SUBCASE("zero or negative record count") {
        auto b = good;
        store_be32(b.data() + batch_offset::record_count, 0);
        store_be32(b.data() + batch_offset::last_offset_delta, static_cast<uint32_t>(-1));
        fix_crc(b);
        CHECK(validate_error(b) == log_errc::invalid_record);
    }
    SUBCASE("unknown codec") {
        auto b = good;
        store_be16(b.data() + batch_offset::attributes, 0x0007);
        fix_crc(b);
        CHECK(validate_error(b) == log_errc::unsupported_compression_type);
    }
    SUBCASE("control batch or producer id without sequence from a client") {
        auto ctrl = batch_builder(0).attributes(batch_attr::control).add("k", "v").build();
        CHECK(validate_error(ctrl) == log_errc::invalid_record);
        CHECK(validate_error(ctrl, validate_origin::replica) == log_errc::ok);
        auto noseq = batch_builder(0).producer(5, 0, -1).add("k", "v").build();
        CHECK(validate_error(noseq) == log_errc::invalid_record);
    }
    SUBCASE("empty buffer") { CHECK(validate_error({}) == log_errc::corrupt_message); }
}

TEST_CASE("record batch: records that do not parse are corrupt, compressed are opaque") {
    auto b = make_batch(0, 2);
    // Claim one more record than encoded (keeping lastOffsetDelta consistent).
    store_be32(b.data() + batch_offset::record_count, 3);
    store_be32(b.data() + batch_offset::last_offset_delta, 2);
    fix_crc(b);
    CHECK(validate_batches(b).has_value());  // header-level validation only
    CHECK(decode_records(b).error() == make_error_code(log_errc::corrupt_message));
    auto z = batch_builder(0).codec(compression::zstd).add("k", "v").build();
    CHECK(validate_batches(z).has_value());
    CHECK(parse_batch_header(z.data()).codec() == compression::zstd);
}

TEST_CASE("record batch: LogAppendTime rewrite keeps the CRC valid") {
    auto b = make_batch(0, 4, 10);
    set_log_append_time(b, 999999);
    auto h = parse_batch_header(b.data());
    CHECK(h.ts_type() == timestamp_type::log_append_time);
    CHECK(h.max_timestamp == 999999);
    CHECK(validate_batches(b).has_value());
}

TEST_CASE("record batch: stored-batch check allows compacted record counts") {
    auto b = make_batch(0, 4);
    store_be32(b.data() + batch_offset::record_count, 2);  // two records removed by compaction
    fix_crc(b);
    CHECK(!check_stored_batch(b, b.size()));
    CHECK(validate_error(b) == log_errc::invalid_record);  // but never from a producer
    CHECK(check_stored_batch(b, b.size() - 1) == make_error_code(log_errc::corrupt_message));
}

TEST_CASE("varint: zig-zag round trip at the edges") {
    for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{-1}, int64_t{63}, int64_t{-64}, int64_t{64},
                      int64_t{300}, std::numeric_limits<int64_t>::max(),
                      std::numeric_limits<int64_t>::min()}) {
        std::vector<uint8_t> out;
        put_varlong(out, v);
        const uint8_t* p = out.data();
        auto got = get_varlong(p, out.data() + out.size());
        REQUIRE(got.has_value());
        CHECK(*got == v);
        CHECK(p == out.data() + out.size());
        const uint8_t* q = out.data();
        CHECK(!get_varlong(q, out.data() + out.size() - 1).has_value());
    }
    std::vector<uint8_t> too_long(11, 0x80);
    const uint8_t* p = too_long.data();
    CHECK(!get_varlong(p, too_long.data() + too_long.size()).has_value());
}

TEST_CASE("record batch: random mutations never crash and accepted buffers are whole batches") {
    // A poor man's fuzz run (the libFuzzer target lives in tests/fuzz).
    std::mt19937 rng(777);
    std::vector<uint8_t> seed;
    for (int i = 0; i < 3; ++i) {
        auto b = make_batch(i, 1 + i, 10 * i, 5 * i);
        seed.insert(seed.end(), b.begin(), b.end());
    }
    int accepted = 0;
    for (int iter = 0; iter < 20000; ++iter) {
        auto buf = seed;
        int edits = 1 + static_cast<int>(rng() % 4);
        for (int e = 0; e < edits; ++e) {
            switch (rng() % 4) {
                case 0: buf[rng() % buf.size()] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
                case 1: buf.resize(rng() % (buf.size() + 1)); break;
                case 2: buf.insert(buf.begin() + static_cast<long>(rng() % (buf.size() + 1)),
                                   static_cast<uint8_t>(rng())); break;
                default: if (!buf.empty()) buf[rng() % buf.size()] = static_cast<uint8_t>(rng());
            }
            if (buf.empty()) break;
        }
        auto r = validate_batches(buf);
        if (!r) continue;
        ++accepted;
        size_t pos = 0;
        while (pos < buf.size()) {
            auto h = parse_batch_header(buf.data() + pos);
            REQUIRE(compute_batch_crc(std::span<const uint8_t>(buf).subspan(pos, h.size_bytes())) == h.crc);
            pos += h.size_bytes();
        }
        REQUIRE(pos == buf.size());
    }
    MESSAGE("accepted after mutation (edits outside the CRC range or whole-batch cuts): " << accepted);
}
