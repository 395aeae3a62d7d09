#include "broker/groups/records.h"

#include <doctest/doctest.h>

using namespace sluice;
using namespace sluice::broker::groups;

TEST_CASE("offset commit key: fixed vector and round trip") {
    auto k = encode_offset_key("g", "t", 3);
    // int16 version 1, string "g", string "t", int32 partition.
    std::vector<uint8_t> want = {0, 1, 0, 1, 'g', 0, 1, 't', 0, 0, 0, 3};
    CHECK(k == want);
    auto d = decode_key(k);
    REQUIRE(d);
    CHECK(d->type == record_key::kind::offset);
    CHECK(d->group == "g");
    CHECK(d->offset.topic == "t");
    CHECK(d->offset.partition == 3);
}

TEST_CASE("group metadata key: fixed vector and round trip") {
    auto k = encode_group_key("grp");
    std::vector<uint8_t> want = {0, 2, 0, 3, 'g', 'r', 'p'};
    CHECK(k == want);
    auto d = decode_key(k);
    REQUIRE(d);
    CHECK(d->type == record_key::kind::group);
    CHECK(d->group == "grp");
}

TEST_CASE("offset commit value v3: fixed vector and round trip") {
    proto::offset_commit_value v;
    v.offset = 42;
    v.leader_epoch = 7;
    v.metadata = "m";
    v.commit_timestamp = 1000;
    auto b = encode_offset_value(v);
    std::vector<uint8_t> want = {0, 3,                             // version
                                 0, 0, 0, 0, 0, 0, 0, 42,          // offset
                                 0, 0, 0, 7,                       // leader epoch
                                 0, 1, 'm',                        // metadata
                                 0, 0, 0, 0, 0, 0, 0x03, 0xe8};    // commit timestamp
    CHECK(b == want);
    auto d = decode_offset_value(b);
    REQUIRE(d);
    CHECK(*d == v);
}

TEST_CASE("offset commit value v1 (with expire timestamp) decodes") {
    std::vector<uint8_t> v1 = {0, 1, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 10};
    auto d = decode_offset_value(v1);
    REQUIRE(d);
    CHECK(d->offset == 5);
    CHECK(d->metadata.empty());
    CHECK(d->commit_timestamp == 9);
    CHECK(d->expire_timestamp == 10);
}

TEST_CASE("group metadata value v3 round trip") {
    proto::group_metadata_value v;
    v.protocol_type = "consumer";
    v.generation = 5;
    v.protocol = "range";
    v.leader = "m-1";
    v.current_state_timestamp = 123;
    proto::group_metadata_value::member_metadata m;
    m.member_id = "m-1";
    m.group_instance_id = "i-1";
    m.client_id = "c";
    m.client_host = "/127.0.0.1";
    m.rebalance_timeout = 300000;
    m.session_timeout = 10000;
    m.subscription = {1, 2, 3};
    m.assignment = {4, 5};
    v.members.push_back(m);
    auto b = encode_group_value(v);
    CHECK(b[0] == 0);
    CHECK(b[1] == 3);
    auto d = decode_group_value(b);
    REQUIRE(d);
    CHECK(*d == v);
}

TEST_CASE("malformed and unknown records are rejected") {
    CHECK_FALSE(decode_key(std::vector<uint8_t>{0}));
    CHECK_FALSE(decode_key(std::vector<uint8_t>{0, 9, 0, 0}));           // unknown key version
    CHECK_FALSE(decode_key(std::vector<uint8_t>{0, 2, 0, 5, 'a'}));      // truncated string
    CHECK_FALSE(decode_offset_value(std::vector<uint8_t>{0, 3, 0, 0}));  // truncated
    auto k = encode_group_key("g");
    k.push_back(0);  // trailing byte
    CHECK_FALSE(decode_key(k));
}
