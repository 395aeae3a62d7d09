// Request/response header versions and the ApiVersions quirk.
#include "broker/protocol/header.h"
#include "tests/unit/protocol/test_util.h"

#include <doctest/doctest.h>

using namespace sluice;
using namespace sluice::proto;
using test::bytes_of;
using test::hex;
using test::unhex;

TEST_CASE("api table knows the required APIs with Kafka 3.9 ranges") {
    struct want { int16_t key; int16_t max; int16_t flex; };
    for (const want& w : {want{0, 11, 9}, want{1, 17, 12}, want{2, 9, 6}, want{3, 12, 9},
                          want{8, 9, 8}, want{9, 9, 6}, want{10, 6, 3}, want{11, 9, 6},
                          want{12, 4, 4}, want{13, 5, 4}, want{14, 5, 4}, want{15, 5, 5},
                          want{16, 5, 3}, want{17, 1, -1}, want{18, 4, 3}, want{19, 7, 5},
                          want{20, 6, 4}, want{21, 2, 2}, want{22, 5, 2}, want{23, 4, 4},
                          want{32, 4, 4}, want{33, 2, 2}, want{36, 2, 2}, want{37, 3, 2},
                          want{42, 2, 2}, want{44, 1, 1}, want{47, 0, -1}, want{60, 1, 0}}) {
        CAPTURE(w.key);
        const api_info* api = find_api(w.key);
        REQUIRE(api != nullptr);
        CHECK(api->min_version == 0);
        CHECK(api->max_version == w.max);
        CHECK(api->flexible_version == w.flex);
    }
    CHECK(api_table.size() == 28);
    CHECK(find_api(4) == nullptr);
    CHECK(find_api(18)->name == "api_versions");
}

TEST_CASE("header versions follow flexible versions; ApiVersions responses use v0") {
    CHECK(request_header_version(0, 8) == 1);
    CHECK(request_header_version(0, 9) == 2);
    CHECK(response_header_version(0, 9) == 1);
    CHECK(response_header_version(0, 8) == 0);
    CHECK(request_header_version(18, 3) == 2);
    CHECK(response_header_version(18, 3) == 0);
    CHECK(response_header_version(18, 4) == 0);
    CHECK(request_header_version(17, 1) == 1);  // SaslHandshake is never flexible
    CHECK(request_header_version(999, 5) == 1);
}

TEST_CASE("request header v2 keeps an int16 client id and adds tagged fields") {
    // librdkafka ApiVersions v3: header, then compact strings in the body.
    auto frame = unhex("0012000300000001000772646b61666b61000b6c696272646b61666b6106322e302e3200");
    reader r(frame);
    request_header h;
    REQUIRE(decode_request_header(r, h));
    CHECK(h.api_key == 18);
    CHECK(h.api_version == 3);
    CHECK(h.correlation_id == 1);
    CHECK(h.client_id == "rdkafka");
    CHECK(h.header_version == 2);
    CHECK(r.offset() == 18);

    out_message m;
    writer w(m);
    encode_request_header(w, h);
    CHECK(hex(bytes_of(m)) == "0012000300000001000772646b61666b6100");
}

TEST_CASE("null client id") {
    auto frame = unhex("000300010000000cffff");
    reader r(frame);
    request_header h;
    REQUIRE(decode_request_header(r, h));
    CHECK_FALSE(h.client_id.has_value());
    CHECK(r.remaining() == 0);
}

TEST_CASE("begin_response writes the size prefix and the right header") {
    out_message m;
    writer w(m);
    size_t at = begin_response(w, 7, 18, 3);  // ApiVersions: v0 header even for v3
    w.write_int16(0);
    w.end_frame(at);
    CHECK(hex(bytes_of(m)) == "00000006" "00000007" "0000");

    out_message m2;
    writer w2(m2);
    at = begin_response(w2, 7, 3, 12);  // Metadata v12: v1 header with tagged fields
    w2.end_frame(at);
    CHECK(hex(bytes_of(m2)) == "00000005" "00000007" "00");
}
