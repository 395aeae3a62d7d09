// The follower's plan (broker/replication/fetch_plan.h): which partitions a broker
// follows from a snapshot, which endpoint of the leader it connects to, and which bytes
// of a fetched records blob are whole batches to append.
#include "broker/replication/fetch_plan.h"
#include "storage/record_batch.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::broker::replication;

namespace {

coord::broker_info live_broker(int32_t id, std::vector<coord::endpoint> eps = {}) {
    if (eps.empty()) eps.push_back({"PLAINTEXT", "PLAINTEXT", "127.0.0.1", 9090 + id});
    return {id, std::move(eps), "", 0};
}

// Topic "t": partition -> (replicas, leader, epoch); a leader of -2 means no state znode.
struct part_spec {
    std::vector<int32_t> replicas;
    int32_t leader;
    int32_t epoch;
};

std::shared_ptr<const coord::topic_info> topic(const std::string& name, std::vector<part_spec> parts,
                                               bool deleting = false) {
    auto t = std::make_shared<coord::topic_info>();
    t->name = name;
    t->topic_id[0] = static_cast<uint8_t>(name.size());
    t->marked_for_deletion = deleting;
    for (int32_t i = 0; i < static_cast<int32_t>(parts.size()); ++i) {
        t->assignment[i] = parts[i].replicas;
        if (parts[i].leader != -2) t->partitions[i] = {parts[i].leader, parts[i].epoch, parts[i].replicas, 1, 0};
    }
    return t;
}

std::vector<uint8_t> batch_at(int64_t base, int records) {
    storage::batch_builder b(1'700'000'000'000);
    for (int i = 0; i < records; ++i) b.add(std::string("k") + std::to_string(i), std::string(20, 'v'));
    return b.build(base);
}

}  // namespace

TEST_CASE("a broker follows the partitions it hosts whose live leader is another broker") {
    coord::cluster_snapshot snap;
    snap.brokers = {{1, live_broker(1)}, {2, live_broker(2)}, {3, live_broker(3)}};
    snap.topics["a"] = topic("a", {{{1, 2, 3}, 1, 4},   // led by 1: followed
                                   {{2, 1}, 2, 0},      // led by 2: followed
                                   {{2, 3}, 2, 0},      // not hosted here
                                   {{1, 2}, -1, 3},     // offline
                                   {{3, 1}, 4, 1},      // leader 4 is not alive
                                   {{1, 3}, -2, 0}});   // no state znode yet
    snap.topics["b"] = topic("b", {{{3, 1}, 3, 7}});
    snap.topics["gone"] = topic("gone", {{{2, 1}, 2, 0}}, true);

    auto plan = partitions_to_follow(snap, 1);
    REQUIRE(plan.size() == 2);
    REQUIRE(plan[2].size() == 1);
    CHECK(plan[2][0] == followed_partition{{"a", 1}, snap.topics["a"]->topic_id, 2, 0});
    REQUIRE(plan[3].size() == 1);
    CHECK(plan[3][0].tp == storage::topic_partition{"b", 0});
    CHECK(plan[3][0].leader_epoch == 7);

    // Broker 1 leads a-0 itself, so from broker 2's side it follows 1 there.
    auto plan2 = partitions_to_follow(snap, 2);
    REQUIRE(plan2.count(1) == 1);
    CHECK(plan2[1].size() == 1);
    CHECK(plan2[1][0].tp == storage::topic_partition{"a", 0});
    CHECK(plan2[1][0].leader_epoch == 4);
    CHECK(plan2.count(2) == 0);
}

TEST_CASE("the leader's endpoint follows inter.broker.listener.name, then our listener's name, then PLAINTEXT") {
    auto b = live_broker(2, {{"EXTERNAL", "SSL", "10.0.0.2", 9093},
                        {"INTERNAL", "PLAINTEXT", "192.168.0.2", 9092},
                        {"REPLICATION", "PLAINTEXT", "172.16.0.2", 9094}});
    auto e = leader_endpoint(b, {"REPLICATION", "INTERNAL"});
    REQUIRE(e);
    CHECK(e->port == 9094);
    // An explicit inter-broker listener the leader lacks is not silently replaced.
    CHECK_FALSE(leader_endpoint(b, {"MISSING", "INTERNAL"}));
    e = leader_endpoint(b, {"", "EXTERNAL"});
    REQUIRE(e);
    CHECK(e->security_protocol == "SSL");  // same listener name wins; the caller refuses SSL
    e = leader_endpoint(b, {"", "OTHER"});
    REQUIRE(e);
    CHECK(e->listener_name == "INTERNAL");  // the first PLAINTEXT one
    CHECK_FALSE(leader_endpoint(live_broker(3, {{"EXTERNAL", "SSL", "h", 1}}), {"", "OTHER"}));
}

TEST_CASE("whole_batches keeps whole batches from our log end and drops a cut tail") {
    auto b0 = batch_at(0, 5);   // offsets 0-4
    auto b1 = batch_at(5, 3);   // 5-7
    auto b2 = batch_at(8, 10);  // 8-17
    std::vector<uint8_t> all;
    for (auto* b : {&b0, &b1, &b2}) all.insert(all.end(), b->begin(), b->end());

    auto s = whole_batches(all, 0);
    CHECK(s.skip_bytes == 0);
    CHECK(s.bytes == all.size());
    CHECK(s.first_base == 0);
    CHECK(s.next_offset == 18);
    CHECK(s.batches == 3);
    CHECK_FALSE(s.malformed);

    // The leader sends from the batch holding our fetch offset: batches below are skipped.
    s = whole_batches(all, 8);
    CHECK(s.skip_bytes == b0.size() + b1.size());
    CHECK(s.bytes == b2.size());
    CHECK(s.first_base == 8);

    // Our log ends inside b1 (offset 6): b1 is kept, and the caller re-aligns at its base.
    s = whole_batches(all, 6);
    CHECK(s.skip_bytes == b0.size());
    CHECK(s.first_base == 5);
    CHECK(s.batches == 2);

    // A response cut at max_bytes: a partial last batch is not appended.
    for (size_t cut : {size_t{1}, size_t{60}, b2.size() - 1}) {
        std::span<const uint8_t> part(all.data(), all.size() - cut);
        s = whole_batches(part, 0);
        CHECK(s.bytes == b0.size() + b1.size());
        CHECK(s.next_offset == 8);
        CHECK_FALSE(s.malformed);
    }

    // Everything already held.
    s = whole_batches(all, 18);
    CHECK(s.bytes == 0);
    CHECK(s.skip_bytes == all.size());
    CHECK(s.first_base == -1);
}

TEST_CASE("whole_batches stops at a header that cannot start a v2 batch") {
    auto b0 = batch_at(0, 2);
    auto bad = batch_at(2, 2);
    bad[storage::batch_offset::magic] = 1;
    std::vector<uint8_t> all(b0);
    all.insert(all.end(), bad.begin(), bad.end());
    auto s = whole_batches(all, 0);
    CHECK(s.malformed);
    CHECK(s.bytes == b0.size());
    CHECK(s.batches == 1);

    std::vector<uint8_t> garbage(100, 0xff);
    s = whole_batches(garbage, 0);
    CHECK(s.malformed);
    CHECK(s.bytes == 0);
}
