// Every API x every version, request and response: fill every field present in the
// version with a non-default value, encode, decode, compare; the decode must consume
// the whole encoding, re-encoding must give the same bytes, and every strict prefix
// of the encoding must fail to decode.
#include "broker/protocol/header.h"
#include "broker/protocol/samples.h"
#include "tests/unit/protocol/test_util.h"

#include <doctest/doctest.h>

using namespace sluice;
using namespace sluice::proto;
using test::bytes_of;

namespace {

int g_checked = 0;

template <typename T>
void round_trip(int16_t version, int seed, bool prefixes) {
    T original;
    fill_sample(original, version, seed);
    out_message m;
    writer w(m);
    original.encode(w, version);
    auto bytes = bytes_of(m);

    reader r(bytes);
    T decoded;
    bool ok = decoded.decode(r, version);
    CHECK_MESSAGE(ok, r.error());
    CHECK(r.remaining() == 0);
    CHECK(decoded == original);

    out_message again;
    writer w2(again);
    decoded.encode(w2, version);
    CHECK(bytes_of(again) == bytes);

    if (prefixes) {
        for (size_t n = 0; n < bytes.size(); ++n) {
            reader p(std::span<const uint8_t>(bytes.data(), n));
            T partial;
            if (partial.decode(p, version)) FAIL("prefix of ", n, "/", bytes.size(), " decoded");
        }
    }
    ++g_checked;
}

template <typename T>
void all_versions(bool prefixes) {
    for (int16_t v = T::min_version; v <= T::max_version; ++v) {
        CAPTURE(v);
        for (int seed : {1, 2, 7}) {
            CAPTURE(seed);
            round_trip<T>(v, seed, prefixes && seed == 1);
        }
    }
}

}  // namespace

TEST_CASE("round trip: every API, every version, request and response") {
    g_checked = 0;
    int apis = 0;
    for (const api_info& api : api_table) {
        CAPTURE(api.name);
        bool known = visit_api(api.key, [&]<typename Req, typename Resp>(std::type_identity<Req>,
                                                                           std::type_identity<Resp>) {
            CHECK(Req::api_key == api.key);
            CHECK(Req::max_version == api.max_version);
            all_versions<Req>(true);
            all_versions<Resp>(true);
        });
        CHECK(known);
        ++apis;
    }
    CHECK(apis == 28);
    MESSAGE("round trips checked: ", g_checked);
    CHECK(g_checked > 600);
}

TEST_CASE("round trip: __consumer_offsets records") {
    all_versions<offset_commit_key>(true);
    all_versions<offset_commit_value>(true);
    all_versions<group_metadata_key>(true);
    all_versions<group_metadata_value>(true);
}

TEST_CASE("fields absent in a version keep their defaults and cost no bytes") {
    fetch_request req;
    fill_sample(req, 12, 1);
    CHECK(req.topics.at(0).topic_id == uuid{});  // topic_id is v13+
    CHECK(!req.topics.at(0).topic.empty());
    fetch_request v13;
    fill_sample(v13, 13, 1);
    CHECK(v13.topics.at(0).topic.empty());  // topic name is v0-12 only
    CHECK(v13.topics.at(0).topic_id != uuid{});

    // ListOffsets v1 dropped max_num_offsets (v0 only).
    list_offsets_request lo;
    fill_sample(lo, 0, 1);
    out_message m0, m1;
    writer w0(m0), w1(m1);
    lo.encode(w0, 0);
    lo.encode(w1, 1);
    // v0: -replica(4) ... each partition has + max_num_offsets(4); v1: no max_num_offsets,
    // no isolation level (v2+), so v0 is exactly 4 bytes per partition longer.
    size_t partitions = 0;
    for (auto& t : lo.topics) partitions += t.partitions.size();
    CHECK(m0.size() == m1.size() + 4 * partitions);
}

TEST_CASE("tagged fields are encoded only when non-default") {
    fetch_request req;
    req.topics.clear();
    out_message plain;
    writer w(plain);
    req.encode(w, 15);
    req.cluster_id = "c";
    req.replica_state.replica_id = 3;
    out_message tagged;
    writer w2(tagged);
    req.encode(w2, 15);
    // cluster_id: tag 0, size 2, compact "c"; replica_state: tag 1, size 13 (int32, int64, tags)
    CHECK(tagged.size() == plain.size() + (1 + 1 + 2) + (1 + 1 + 13));
    auto bytes = bytes_of(tagged);
    reader r(bytes);
    fetch_request back;
    REQUIRE(back.decode(r, 15));
    CHECK(back.cluster_id == "c");
    CHECK(back.replica_state.replica_id == 3);
    CHECK(back.replica_state.replica_epoch == -1);
}

TEST_CASE("unknown tagged fields are skipped") {
    heartbeat_request req;
    req.group_id = "g";
    req.member_id = "m";
    out_message m;
    writer w(m);
    req.encode(w, 4);
    auto bytes = bytes_of(m);
    REQUIRE(bytes.back() == 0);  // empty tagged section
    bytes.back() = 2;            // two unknown tags
    for (uint8_t b : {9, 2, 0xaa, 0xbb, 10, 0}) bytes.push_back(b);
    reader r(bytes);
    heartbeat_request back;
    REQUIRE(back.decode(r, 4));
    CHECK(r.remaining() == 0);
    CHECK(back == req);
}

TEST_CASE("create topics v5+ responses carry configs; v4 does not") {
    create_topics_response resp;
    fill_sample(resp, 5, 1);
    CHECK(resp.topics.at(0).configs.has_value());
    CHECK(!resp.topics.at(0).configs->empty());
    create_topics_response v4;
    fill_sample(v4, 4, 1);
    // Absent in v4: Kafka's default for the field, an empty (non-null) list.
    REQUIRE(v4.topics.at(0).configs.has_value());
    CHECK(v4.topics.at(0).configs->empty());
}

TEST_CASE("metadata v10+ carries topic ids in requests and responses") {
    metadata_request req;
    fill_sample(req, 10, 1);
    REQUIRE(req.topics.has_value());
    CHECK(req.topics->at(0).topic_id != uuid{});
    metadata_response resp;
    fill_sample(resp, 9, 1);
    CHECK(resp.topics.at(0).topic_id == uuid{});
    fill_sample(resp, 10, 1);
    CHECK(resp.topics.at(0).topic_id != uuid{});
}
