#include "coord/assignment.h"

#include <doctest/doctest.h>

using namespace sluice::coord;

TEST_CASE("assign_replicas matches Kafka's AdminZkClientTest.testReplicaAssignment") {
    // brokers 0..4, 10 partitions, RF 3, fixedStartIndex 0 (expected map from Kafka's test)
    std::map<int32_t, std::vector<int32_t>> expected = {
        {0, {0, 1, 2}}, {1, {1, 2, 3}}, {2, {2, 3, 4}}, {3, {3, 4, 0}}, {4, {4, 0, 1}},
        {5, {0, 2, 3}}, {6, {1, 3, 4}}, {7, {2, 4, 0}}, {8, {3, 0, 1}}, {9, {4, 1, 2}}};
    CHECK(assign_replicas({4, 2, 0, 3, 1}, 10, 3, 0) == expected);
}

TEST_CASE("assign_replicas with a random start spreads leaders and never repeats a broker") {
    for (int round = 0; round < 50; ++round) {
        auto a = assign_replicas({1, 2, 3}, 6, 3);
        REQUIRE(a.size() == 6);
        std::map<int32_t, int> leaders;
        for (const auto& [p, replicas] : a) {
            REQUIRE(replicas.size() == 3);
            CHECK(std::set<int32_t>(replicas.begin(), replicas.end()).size() == 3);
            leaders[replicas[0]]++;
        }
        for (const auto& [b, n] : leaders) CHECK(n == 2);
    }
    auto single = assign_replicas({7}, 3, 1);
    CHECK(single == std::map<int32_t, std::vector<int32_t>>{{0, {7}}, {1, {7}}, {2, {7}}});
}

TEST_CASE("initial state: first live replica leads, ISR = every live replica in assignment order") {
    auto s = initial_partition_state({3, 1, 2}, {1, 2}, 7);
    CHECK(s.leader == 1);
    CHECK(s.isr == std::vector<int32_t>{1, 2});
    CHECK(s.leader_epoch == 0);
    CHECK(s.controller_epoch == 7);
    auto none = initial_partition_state({3}, {}, 7);
    CHECK(none.leader == -1);
    CHECK(none.isr == std::vector<int32_t>{3});
}

TEST_CASE("reelect: leader death moves leadership to the first live ISR member in assignment order") {
    partition_state s{.leader = 1, .leader_epoch = 4, .isr = {1, 3, 2}, .controller_epoch = 2, .zk_version = 9};
    auto next = reelect({1, 2, 3}, s, {2, 3}, 5);
    REQUIRE(next.has_value());
    CHECK(next->leader == 2);  // assignment order, not ISR order
    CHECK(next->isr == std::vector<int32_t>{3, 2});
    CHECK(next->leader_epoch == 5);
    CHECK(next->controller_epoch == 5);
    CHECK(next->zk_version == 9);  // expected version for the conditional write
}

TEST_CASE("reelect: follower death shrinks the ISR, keeps the leader, bumps the epoch") {
    partition_state s{.leader = 1, .leader_epoch = 0, .isr = {1, 2}};
    auto next = reelect({1, 2}, s, {1}, 1);
    REQUIRE(next.has_value());
    CHECK(next->leader == 1);
    CHECK(next->isr == std::vector<int32_t>{1});
    CHECK(next->leader_epoch == 1);
}

TEST_CASE("reelect: no live ISR member -> leader -1, ISR keeps its last member; it returns later") {
    partition_state s{.leader = 2, .leader_epoch = 3, .isr = {2}};
    auto offline = reelect({2, 1}, s, {1}, 1);
    REQUIRE(offline.has_value());
    CHECK(offline->leader == -1);
    CHECK(offline->isr == std::vector<int32_t>{2});  // no unclean election of broker 1
    CHECK(offline->leader_epoch == 4);
    CHECK_FALSE(reelect({2, 1}, *offline, {1}, 1).has_value());  // stable: nothing to do
    auto back = reelect({2, 1}, *offline, {1, 2}, 1);
    REQUIRE(back.has_value());
    CHECK(back->leader == 2);
    CHECK(back->leader_epoch == 5);
}

TEST_CASE("reelect: healthy partition needs no write") {
    partition_state s{.leader = 1, .leader_epoch = 2, .isr = {1, 2}};
    CHECK_FALSE(reelect({1, 2}, s, {1, 2, 3}, 4).has_value());
}

TEST_CASE("reelect_after_bounce: a restarted leader is replaced by a live ISR member, one epoch bump") {
    partition_state s{.leader = 2, .leader_epoch = 3, .isr = {2, 1}};
    auto next = reelect_after_bounce({2, 1}, s, {1, 2}, {2}, 6);
    REQUIRE(next.has_value());
    CHECK(next->leader == 1);
    CHECK(next->isr == std::vector<int32_t>{1});  // it re-joins through the leader's ISR expansion
    CHECK(next->leader_epoch == 4);
    CHECK(next->controller_epoch == 6);
}

TEST_CASE("reelect_after_bounce: a restarted sole ISR member leads again with a newer epoch") {
    partition_state s{.leader = 2, .leader_epoch = 0, .isr = {2}};
    auto next = reelect_after_bounce({2}, s, {1, 2}, {2}, 1);
    REQUIRE(next.has_value());
    CHECK(next->leader == 2);
    CHECK(next->isr == std::vector<int32_t>{2});
    CHECK(next->leader_epoch == 1);
    // untouched partitions are left alone
    partition_state other{.leader = 1, .leader_epoch = 0, .isr = {1}};
    CHECK_FALSE(reelect_after_bounce({1}, other, {1, 2}, {2}, 1).has_value());
}
