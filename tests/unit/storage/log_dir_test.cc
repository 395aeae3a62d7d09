#include "storage/log_dir.h"

#include "storage/errors.h"
#include "storage/partition_log.h"
#include "test_util.h"

#include <doctest/doctest.h>

#include <fstream>
#include <sstream>

using namespace sluice::storage;
using namespace sluice::storage::test;
namespace fs = std::filesystem;

namespace {
std::string read_all(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}
}  // namespace

TEST_CASE("log dir: partition dir names split at the last dash") {
    CHECK(parse_partition_dir_name("orders-0") == topic_partition{"orders", 0});
    CHECK(parse_partition_dir_name("my-topic.v2-17") == topic_partition{"my-topic.v2", 17});
    CHECK(parse_partition_dir_name("a--3") == topic_partition{"a-", 3});
    CHECK(!parse_partition_dir_name("nodash"));
    CHECK(!parse_partition_dir_name("-5"));
    CHECK(!parse_partition_dir_name("topic-"));
    CHECK(!parse_partition_dir_name("topic-x1"));
    CHECK(parse_partition_dir_name("topic--1") == topic_partition{"topic-", 1});
    CHECK(!parse_partition_dir_name("t-0.6c7e1c4a2d1b4c35a7d0a4d1c8a2f0b5-delete"));
    CHECK(partition_dir_name({"my-topic.v2", 17}) == "my-topic.v2-17");
}

TEST_CASE("log dir: scan finds partition directories only") {
    temp_dir dir;
    for (auto name : {"b-topic-1", "a.topic-0", "a.topic-10", "junk", "x-y"})
        fs::create_directories(dir.path() / name);
    std::ofstream(dir.path() / "file-3").put('x');
    auto found = scan_log_dir(dir.path());
    REQUIRE(found.has_value());
    std::vector<topic_partition> expect = {{"a.topic", 0}, {"a.topic", 10}, {"b-topic", 1}};
    CHECK(*found == expect);
    CHECK(!scan_log_dir(dir.path() / "missing").has_value());
}

TEST_CASE("log dir: clean shutdown marker is consumed at startup") {
    temp_dir dir;
    CHECK(!has_clean_shutdown_marker(dir.path()));
    auto none = consume_clean_shutdown_marker(dir.path());
    REQUIRE(none.has_value());
    CHECK(!*none);
    REQUIRE(!write_clean_shutdown_marker(dir.path()));
    CHECK(fs::exists(dir.path() / ".kafka_cleanshutdown"));
    CHECK(has_clean_shutdown_marker(dir.path()));
    auto was = consume_clean_shutdown_marker(dir.path());
    REQUIRE(was.has_value());
    CHECK(*was);
    CHECK(!has_clean_shutdown_marker(dir.path()));
}

TEST_CASE("log dir: offset checkpoints in Kafka's text format") {
    temp_dir dir;
    auto file = dir.path() / "recovery-point-offset-checkpoint";
    auto empty = read_offset_checkpoint(file);
    REQUIRE(empty.has_value());
    CHECK(empty->empty());
    std::vector<checkpoint_entry> entries = {{{"orders", 0}, 42}, {{"my-topic.v2", 3}, 1000000000000}};
    REQUIRE(!write_offset_checkpoint(file, entries));
    CHECK(read_all(file) == "0\n2\norders 0 42\nmy-topic.v2 3 1000000000000\n");
    CHECK(!fs::exists(dir.path() / "recovery-point-offset-checkpoint.tmp"));
    auto back = read_offset_checkpoint(file);
    REQUIRE(back.has_value());
    CHECK(*back == entries);
    for (auto bad : {"1\n0\n", "0\n3\na 0 1\n", "0\n1\na b 1\n", "0\n1\na 0\n", "0\n0\nextra 0 1\n"}) {
        CAPTURE(bad);
        std::ofstream(file, std::ios::trunc) << bad;
        CHECK(read_offset_checkpoint(file).error() == make_error_code(log_errc::corrupt_message));
    }
}

TEST_CASE("log dir: replication-offset-checkpoint round trip gives each log its high watermark") {
    temp_dir dir;
    auto file = dir.path() / replication_checkpoint_file;
    std::vector<checkpoint_entry> entries = {
        {{"orders", 0}, 7}, {{"my-topic.v2", 3}, 0}, {{"__consumer_offsets", 49}, 12345}};
    REQUIRE(!write_offset_checkpoint(file, entries));
    // Kafka's OffsetCheckpointFile, version 0: what a Kafka broker reads back as well.
    CHECK(read_all(file) == "0\n3\norders 0 7\nmy-topic.v2 3 0\n__consumer_offsets 49 12345\n");
    auto back = read_offset_checkpoint(file);
    REQUIRE(back.has_value());
    REQUIRE(*back == entries);

    // Rewriting replaces the file whole (a shorter list leaves nothing of the longer one).
    REQUIRE(!write_offset_checkpoint(file, {entries[0]}));
    CHECK(read_all(file) == "0\n1\norders 0 7\n");

    // A log opened with its entry starts at that high watermark (below its log end: the
    // records past it were never committed); an entry past the log end, whose tail a
    // crash took, is clamped to the log end; without an entry the log end.
    auto log_dir = dir.path() / partition_dir_name({"orders", 0});
    {
        auto log = partition_log::open(log_dir, log_config{});
        REQUIRE(log.has_value());
        auto batch = make_batch(0, 10);
        REQUIRE((*log)->append(batch, 7, 0).error == log_errc::ok);
        REQUIRE(!(*log)->close(close_mode::flush));
    }
    auto hw_after_open = [&](std::optional<int64_t> hw) {
        open_options opts;
        opts.clean_shutdown = true;
        opts.high_watermark = hw;
        auto log = partition_log::open(log_dir, log_config{}, opts);
        REQUIRE(log.has_value());
        REQUIRE((*log)->log_end_offset() == 10);
        int64_t out = (*log)->high_watermark();
        REQUIRE(!(*log)->close(close_mode::seal));
        return out;
    };
    auto stored = read_offset_checkpoint(file);
    REQUIRE(stored.has_value());
    CHECK(hw_after_open((*stored)[0].offset) == 7);
    CHECK(hw_after_open(50) == 10);
    CHECK(hw_after_open(std::nullopt) == 10);
}

TEST_CASE("log dir: meta.properties is written once and checked after") {
    temp_dir dir;
    CHECK(!read_meta_properties(dir.path())->has_value());
    auto first = ensure_meta_properties(dir.path(), 3, "abcDEF123");
    REQUIRE(first.has_value());
    auto text = read_all(dir.path() / "meta.properties");
    CHECK(text.find("version=0\n") != std::string::npos);
    CHECK(text.find("broker.id=3\n") != std::string::npos);
    CHECK(text.find("cluster.id=abcDEF123\n") != std::string::npos);
    auto again = ensure_meta_properties(dir.path(), 3, "abcDEF123");
    REQUIRE(again.has_value());
    CHECK(again->cluster_id == "abcDEF123");
    CHECK(ensure_meta_properties(dir.path(), 4, "abcDEF123").error() ==
          make_error_code(log_errc::broker_id_mismatch));
    CHECK(ensure_meta_properties(dir.path(), 3, "other").error() ==
          make_error_code(log_errc::cluster_id_mismatch));
    // A file Kafka wrote reads back too.
    std::ofstream(dir.path() / "meta.properties", std::ios::trunc)
        << "#\n#Tue Nov 25 01:00:00 UTC 2026\ncluster.id=Xyz\nversion=0\nbroker.id=7\n";
    auto kafka = read_meta_properties(dir.path());
    REQUIRE(kafka.has_value());
    REQUIRE(kafka->has_value());
    CHECK((*kafka)->broker_id == 7);
    CHECK((*kafka)->cluster_id == "Xyz");
}
