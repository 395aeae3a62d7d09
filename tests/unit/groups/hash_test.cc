#include "broker/groups/hash.h"

#include <doctest/doctest.h>

using namespace sluice::broker::groups;

TEST_CASE("java_string_hash matches java.lang.String.hashCode") {
    // Values of String.hashCode from the JDK.
    CHECK(java_string_hash("") == 0);
    CHECK(java_string_hash("a") == 97);
    CHECK(java_string_hash("abc") == 96354);
    CHECK(java_string_hash("hello") == 99162322);
    CHECK(java_string_hash("Hello World") == -862545276);
    CHECK(java_string_hash("Aa") == java_string_hash("BB"));
    CHECK(java_string_hash("Aa") == 2112);
    CHECK(java_string_hash("polygenelubricants") == INT32_MIN);
}

TEST_CASE("java_string_hash hashes UTF-16 code units, not UTF-8 bytes") {
    CHECK(java_string_hash("\xc3\xa9") == 0xe9);               // U+00E9: one unit
    CHECK(java_string_hash("\xe2\x82\xac") == 0x20ac);         // U+20AC: one unit
    // U+1F600 is the surrogate pair D83D DE00: 0xD83D * 31 + 0xDE00.
    CHECK(java_string_hash("\xf0\x9f\x98\x80") == 0xd83d * 31 + 0xde00);
    CHECK(java_string_hash("\xff") == 0xfffd);                 // malformed: U+FFFD
}

TEST_CASE("offsets_partition_for uses Kafka's Utils.abs") {
    // MIN_VALUE & 0x7fffffff == 0 (Math.abs would stay negative).
    CHECK(offsets_partition_for("polygenelubricants", 50) == 0);
    CHECK(offsets_partition_for("hello", 50) == 99162322 % 50);
    // Negative hash: (-862545276 & 0x7fffffff) % 50.
    CHECK(offsets_partition_for("Hello World", 50) == static_cast<int32_t>((-862545276 & 0x7fffffff) % 50));
    for (const char* g : {"g", "group-1", "consumers", "\xc3\xa9t\xc3\xa9"}) {
        int32_t p = offsets_partition_for(g, 50);
        CHECK(p >= 0);
        CHECK(p < 50);
    }
}
