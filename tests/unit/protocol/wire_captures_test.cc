// Real client request frames (from ../shared/wire-captures) decoded field by field.
#include "broker/protocol/header.h"
#include "tests/unit/protocol/test_util.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace sluice;
using namespace sluice::proto;
using test::bytes_of;
using test::hex;
using test::unhex;

namespace {

// Decodes header + body; checks the whole frame is consumed and that re-encoding the
// decoded request reproduces the frame byte for byte.
template <typename T>
T decode_frame(const std::vector<uint8_t>& frame, int16_t want_key, int16_t want_version) {
    reader r(frame);
    request_header h;
    REQUIRE(decode_request_header(r, h));
    REQUIRE(h.api_key == want_key);
    REQUIRE(h.api_version == want_version);
    T req;
    bool ok = req.decode(r, h.api_version);
    INFO(r.error());
    REQUIRE(ok);
    CHECK(r.remaining() == 0);

    out_message m;
    writer w(m);
    encode_request_header(w, h);
    req.encode(w, h.api_version);
    CHECK(hex(bytes_of(m)) == hex(frame));
    return req;
}

}  // namespace

TEST_CASE("librdkafka ApiVersions v3 (flexible, header v2)") {
    auto f = unhex("0012000300000001000772646b61666b61000b6c696272646b61666b6106322e302e3200");
    auto req = decode_frame<api_versions_request>(f, 18, 3);
    CHECK(req.client_software_name == "librdkafka");
    CHECK(req.client_software_version == "2.0.2");
}

TEST_CASE("librdkafka Metadata v2 with one topic") {
    auto f = unhex("0003000200000003000772646b61666b610000000100027431");
    auto req = decode_frame<metadata_request>(f, 3, 2);
    REQUIRE(req.topics.has_value());
    REQUIRE(req.topics->size() == 1);
    CHECK(req.topics->at(0).name == "t1");
}

TEST_CASE("kafka-python Metadata v0 (empty list) and v1 (null: all topics)") {
    auto v0 = decode_frame<metadata_request>(
        unhex("000300000000000200176b61666b612d707974686f6e2d70726f64756365722d3100000000"), 3, 0);
    REQUIRE(v0.topics.has_value());
    CHECK(v0.topics->empty());
    auto v1 = decode_frame<metadata_request>(
        unhex("000300010000000300176b61666b612d707974686f6e2d70726f64756365722d31ffffffff"), 3, 1);
    CHECK_FALSE(v1.topics.has_value());
}

TEST_CASE("librdkafka Produce v7 with a record batch") {
    auto f = unhex(
        "0000000700000004000772646b61666b61ffffffff0000753000000001000274310000000100000000000000dc"
        "0000000000000000000000d00000000002bd2e4841000000000002000001a2102fc197000001a2102fc197ffff"
        "ffffffffffffffffffffffff0000000368000000046b314476616c75652d312d61616161616161616161616161"
        "61616161616161616161616161040468310261046832026268000002046b324476616c75652d322d6161616161"
        "616161616161616161616161616161616161616161040468310261046832026268000004046b334476616c7565"
        "2d332d61616161616161616161616161616161616161616161616161610404683102610468320262");
    auto req = decode_frame<produce_request>(f, 0, 7);
    CHECK_FALSE(req.transactional_id.has_value());
    CHECK(req.acks == -1);
    CHECK(req.timeout_ms == 30000);
    REQUIRE(req.topic_data.size() == 1);
    CHECK(req.topic_data[0].name == "t1");
    REQUIRE(req.topic_data[0].partition_data.size() == 1);
    const auto& p = req.topic_data[0].partition_data[0];
    CHECK(p.index == 0);
    REQUIRE_FALSE(p.records.is_null);
    CHECK(p.records.view.size() == 0xdc);
    // The view points into the frame: batch base offset 0, then length 0xd0, magic 2.
    CHECK(p.records.view.data() >= f.data());
    CHECK(p.records.view[11] == 0xd0);
    CHECK(p.records.view[16] == 2);
}

TEST_CASE("kafka-python Produce v7 (uncompressed fallback batch)") {
    auto f = unhex(
        "000000070000000100176b61666b612d707974686f6e2d70726f64756365722d31ffffffff0000753000000001"
        "0002743100000001000000000000004c00000000000000000000004000000000022d65bb390000000000000000"
        "01a210307984000001a210307984ffffffffffffffffffffffffffff000000011c000000046b300476300202680278");
    auto req = decode_frame<produce_request>(f, 0, 7);
    CHECK(req.acks == -1);
    CHECK(req.topic_data.at(0).partition_data.at(0).records.view.size() == 0x4c);
}

TEST_CASE("kafkajs Produce v7") {
    auto f = unhex(
        "000000070000000200076b61666b616a73ffffffff000075300000000100027431000000010000000000000057"
        "00000000000000000000004b000000000208e3d057000000000001000001a21030e6fc000001a21030e6fcffff"
        "ffffffffffff000000000000000000021c000000046b31047631020268027814000002046b3204763200");
    auto req = decode_frame<produce_request>(f, 0, 7);
    CHECK(req.topic_data.at(0).partition_data.at(0).records.view.size() == 0x57);
}

TEST_CASE("librdkafka Fetch v11") {
    auto f = unhex(
        "0001000b00000006000772646b61666b61ffffffff000001f400000001032000000100000000ffffffff000000"
        "01000274310000000100000000ffffffff0000000000000000ffffffffffffffff00100000000000000000");
    auto req = decode_frame<fetch_request>(f, 1, 11);
    CHECK(req.replica_id == -1);
    CHECK(req.max_wait_ms == 500);
    CHECK(req.min_bytes == 1);
    CHECK(req.max_bytes == 0x03200000);
    CHECK(req.isolation_level == 1);
    CHECK(req.session_id == 0);
    CHECK(req.session_epoch == -1);
    REQUIRE(req.topics.size() == 1);
    CHECK(req.topics[0].topic == "t1");
    const auto& p = req.topics[0].partitions.at(0);
    CHECK(p.partition == 0);
    CHECK(p.current_leader_epoch == -1);
    CHECK(p.fetch_offset == 0);
    CHECK(p.log_start_offset == -1);
    CHECK(p.partition_max_bytes == 0x100000);
    CHECK(req.forgotten_topics_data.empty());
    CHECK(req.rack_id == "");
}

TEST_CASE("kafka-python Fetch v4, FindCoordinator v0, JoinGroup v2") {
    auto fetch = decode_frame<fetch_request>(
        unhex("000100040000000300126b61666b612d707974686f6e2d322e302e32ffffffff000001f40000000103200000"
              "0000000001000274310000000100000000000000000000000000100000"),
        1, 4);
    CHECK(fetch.isolation_level == 0);
    CHECK(fetch.topics.at(0).partitions.at(0).partition_max_bytes == 0x100000);

    auto fc = decode_frame<find_coordinator_request>(
        unhex("000a00000000000300126b61666b612d707974686f6e2d322e302e3200076b7067726f7570"), 10, 0);
    CHECK(fc.key == "kpgroup");

    auto join = decode_frame<join_group_request>(
        unhex("000b00020000000100126b61666b612d707974686f6e2d322e302e3200076b7067726f757000002710000493e0"
              "00000008636f6e73756d657200000002000572616e67650000000e0000000000010002743100000000000a72"
              "6f756e64726f62696e0000000e0000000000010002743100000000"),
        11, 2);
    CHECK(join.group_id == "kpgroup");
    CHECK(join.session_timeout_ms == 10000);
    CHECK(join.rebalance_timeout_ms == 300000);
    CHECK(join.member_id == "");
    CHECK(join.protocol_type == "consumer");
    REQUIRE(join.protocols.size() == 2);
    CHECK(join.protocols[0].name == "range");
    CHECK(join.protocols[1].name == "roundrobin");
    CHECK(join.protocols[1].metadata.size() == 14);
}

TEST_CASE("kafkajs JoinGroup v5 and OffsetCommit v5") {
    auto join = decode_frame<join_group_request>(
        unhex("000b00050000000300076b61666b616a7300086b6a7367726f7570000075300000ea600000ffff0008636f6e73"
              "756d6572000000010012526f756e64526f62696e41737369676e65720000000e00000000000100027431000000"
              "00"),
        11, 5);
    CHECK(join.session_timeout_ms == 30000);
    CHECK(join.rebalance_timeout_ms == 60000);
    CHECK_FALSE(join.group_instance_id.has_value());
    CHECK(join.protocols.at(0).name == "RoundRobinAssigner");

    auto commit = decode_frame<offset_commit_request>(
        unhex("000800050000000900076b61666b616a7300086b6a7367726f757000000002000e30783766383839633030323932"
              "30000000010002743100000001000000000000000000000003ffff"),
        8, 5);
    CHECK(commit.group_id == "kjsgroup");
    CHECK(commit.generation_id_or_member_epoch == 2);
    CHECK(commit.member_id == "0x7f889c002920");
    const auto& p = commit.topics.at(0).partitions.at(0);
    CHECK(p.committed_offset == 3);
    CHECK_FALSE(p.committed_metadata.has_value());
}

TEST_CASE("librdkafka OffsetCommit v7, OffsetFetch v5, ListOffsets v2") {
    auto commit = decode_frame<offset_commit_request>(
        unhex("0008000700000009000772646b61666b6100096b63617467726f757000000002000e307837663866373030303261"
              "6130ffff000000010002743100000001000000000000000000000003ffffffff0000"),
        8, 7);
    CHECK_FALSE(commit.group_instance_id.has_value());
    const auto& p = commit.topics.at(0).partitions.at(0);
    CHECK(p.committed_offset == 3);
    CHECK(p.committed_leader_epoch == -1);
    CHECK(p.committed_metadata == "");

    auto fetch = decode_frame<offset_fetch_request>(
        unhex("0009000500000008000772646b61666b6100096b63617467726f757000000001000274310000000100000000"), 9, 5);
    CHECK(fetch.group_id == "kcatgroup");
    REQUIRE(fetch.topics.has_value());
    CHECK(fetch.topics->at(0).partition_indexes == std::vector<int32_t>{0});

    auto lo = decode_frame<list_offsets_request>(
        unhex("0002000200000007000772646b61666b61ffffffff0100000001000274310000000100000000fffffffffffffffe"),
        2, 2);
    CHECK(lo.replica_id == -1);
    CHECK(lo.isolation_level == 1);
    CHECK(lo.topics.at(0).partitions.at(0).timestamp == -2);
}

TEST_CASE("confluent-kafka InitProducerId v4 (flexible) and ApiVersions v3") {
    auto init = decode_frame<init_producer_id_request>(
        unhex("0016000400000004000772646b61666b610000ffffffffffffffffffffffffffff00"), 22, 4);
    CHECK_FALSE(init.transactional_id.has_value());
    CHECK(init.transaction_timeout_ms == -1);
    CHECK(init.producer_id == -1);
    CHECK(init.producer_epoch == -1);

    auto av = decode_frame<api_versions_request>(
        unhex("0012000300000001000772646b61666b610017636f6e666c75656e742d6b61666b612d707974686f6e14312e372e"
              "302d72646b61666b612d322e302e3200"),
        18, 3);
    CHECK(av.client_software_name == "confluent-kafka-python");
    CHECK(av.client_software_version == "1.7.0-rdkafka-2.0.2");
}

TEST_CASE("every prefix of a real frame fails to decode") {
    auto f = unhex("0001000b00000006000772646b61666b61ffffffff000001f400000001032000000100000000ffffffff000000"
                   "01000274310000000100000000ffffffff0000000000000000ffffffffffffffff00100000000000000000");
    for (size_t n = 0; n < f.size(); ++n) {
        reader r(std::span<const uint8_t>(f.data(), n));
        request_header h;
        fetch_request req;
        bool ok = decode_request_header(r, h) && req.decode(r, h.api_version);
        CHECK_FALSE(ok);
        CHECK(!r.error().empty());
    }
}

// Decodes every frame of every capture file, if the shared folder is present.
TEST_CASE("every captured frame decodes completely") {
    namespace fs = std::filesystem;
    fs::path dir = fs::path(SLUICE_SOURCE_ROOT) / ".." / "shared" / "wire-captures";
    if (!fs::is_directory(dir)) {
        MESSAGE("skipped: no ", dir.string());
        return;
    }
    int frames = 0;
    for (const auto& entry : fs::directory_iterator(dir)) {
        if (entry.path().extension() != ".txt") continue;
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            auto at = line.find(" hex=");
            if (line.rfind("api_key=", 0) != 0 || at == std::string::npos) continue;
            std::string h = line.substr(at + 5);
            h = h.substr(0, h.find(' '));
            auto frame = unhex(h);
            CAPTURE(entry.path().filename().string());
            CAPTURE(line.substr(0, 60));
            reader r(frame);
            request_header header;
            REQUIRE(decode_request_header(r, header));
            bool decoded = false;
            bool known = visit_api(header.api_key, [&]<typename Req, typename Resp>(
                                                      std::type_identity<Req>, std::type_identity<Resp>) {
                Req req;
                decoded = req.decode(r, header.api_version);
            });
            CHECK(known);
            CHECK_MESSAGE(decoded, r.error());
            CHECK(r.remaining() == 0);
            ++frames;
        }
    }
    MESSAGE("captured frames decoded: ", frames);
    CHECK(frames > 100);
}
