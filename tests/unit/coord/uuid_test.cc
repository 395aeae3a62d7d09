#include "coord/uuid.h"

#include <doctest/doctest.h>

using namespace sluice::coord;

TEST_CASE("uuid_to_base64 matches Kafka's Uuid.toString") {
    // new Uuid(0L, 1L).toString() == "AAAAAAAAAAAAAAAAAAAAAQ" (Kafka's METADATA_TOPIC_ID)
    uuid one{};
    one[15] = 1;
    CHECK(uuid_to_base64(one) == "AAAAAAAAAAAAAAAAAAAAAQ");
    CHECK(uuid_to_base64(uuid{}) == "AAAAAAAAAAAAAAAAAAAAAA");
    uuid all{};
    all.fill(0xff);
    CHECK(uuid_to_base64(all) == "_____________________w");  // URL-safe alphabet, no padding
    // java: Uuid(0x0123456789abcdefL, 0xfedcba9876543210L) -> bytes 01 23 .. 10
    uuid seq{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10};
    CHECK(uuid_to_base64(seq) == "ASNFZ4mrze_-3LqYdlQyEA");
}

TEST_CASE("uuid_from_base64 round-trips and rejects bad text") {
    for (int i = 0; i < 200; ++i) {
        uuid id = random_uuid();
        auto text = uuid_to_base64(id);
        CHECK(text.size() == 22);
        auto back = uuid_from_base64(text);
        REQUIRE(back.has_value());
        CHECK(*back == id);
    }
    CHECK_FALSE(uuid_from_base64("AAAA").has_value());
    CHECK_FALSE(uuid_from_base64("AAAAAAAAAAAAAAAAAAAAA=").has_value());    // padding is not allowed
    CHECK_FALSE(uuid_from_base64("AAAAAAAAAAAAAAAAAAAAA+").has_value());    // '+' is not URL-safe
    CHECK_FALSE(uuid_from_base64("AAAAAAAAAAAAAAAAAAAAAB").has_value());    // non-zero trailing bits
}

TEST_CASE("random_uuid is version 4, never zero, never starts with '-'") {
    for (int i = 0; i < 2000; ++i) {
        uuid id = random_uuid();
        CHECK((id[6] >> 4) == 4);
        CHECK((id[8] & 0xc0) == 0x80);
        CHECK_FALSE(is_zero(id));
        CHECK(uuid_to_base64(id)[0] != '-');
    }
    CHECK(random_uuid() != random_uuid());
}
