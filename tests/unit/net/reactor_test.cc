#include "net/reactor.h"
#include "net/task_queue.h"
#include "net_test_util.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>

using namespace sluice::net;
using namespace sluice::net::test;

TEST_CASE("task_queue: multi-producer pushes all arrive, FIFO per producer") {
    task_queue q;
    constexpr int producers = 4, per = 20000;
    std::vector<std::thread> threads;
    std::vector<int> seen_last(producers, -1);
    std::atomic<int> done{0};
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            for (int i = 0; i < per; ++i) {
                auto* n = new task_queue::node;
                n->fn = [&seen_last, p, i] {
                    REQUIRE(seen_last[p] == i - 1);  // FIFO per producer
                    seen_last[p] = i;
                };
                q.push(n);
            }
            done.fetch_add(1);
        });
    }
    int got = 0;
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (got < producers * per && std::chrono::steady_clock::now() < deadline) {
        if (auto* n = q.pop()) {
            n->fn();
            delete n;
            ++got;
        }
    }
    for (auto& t : threads) t.join();
    CHECK(got == producers * per);
    for (int p = 0; p < producers; ++p) CHECK(seen_last[p] == per - 1);
    CHECK(q.pop() == nullptr);
}

TEST_CASE("reactor: post from other threads runs every task on the reactor thread in order") {
    running_reactor rr(reactor_config{});
    constexpr int producers = 3, per = 5000;
    auto reactor_thread = rr.call([] { return std::this_thread::get_id(); });
    std::vector<int> last(producers, -1);  // touched only on the reactor thread
    int total = 0;
    bool wrong_thread = false, out_of_order = false;
    std::vector<std::thread> threads;
    for (int p = 0; p < producers; ++p) {
        threads.emplace_back([&, p] {
            for (int i = 0; i < per; ++i) {
                rr.r->post([&, p, i] {
                    if (std::this_thread::get_id() != reactor_thread) wrong_thread = true;
                    if (last[p] != i - 1) out_of_order = true;
                    last[p] = i;
                    ++total;
                });
            }
        });
    }
    for (auto& t : threads) t.join();
    CHECK(rr.wait_until([&](reactor&) { return total == producers * per; }));
    CHECK_FALSE(wrong_thread);
    CHECK_FALSE(out_of_order);
}

TEST_CASE("reactor: timers fire in deadline order and cancel works") {
    running_reactor rr(reactor_config{});
    std::vector<int> fired;  // reactor thread only
    rr.call([&] {
        rr.r->add_timer(60ms, [&] { fired.push_back(60); });
        rr.r->add_timer(20ms, [&] { fired.push_back(20); });
        uint64_t cancelled = rr.r->add_timer(30ms, [&] { fired.push_back(30); });
        rr.r->add_timer(40ms, [&] { fired.push_back(40); });
        rr.r->add_timer(0ms, [&] { fired.push_back(0); });
        rr.r->cancel_timer(cancelled);
        rr.r->cancel_timer(cancelled);  // twice is harmless
    });
    auto start = std::chrono::steady_clock::now();
    CHECK(rr.wait_until([&](reactor&) { return fired.size() >= 4; }));
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 50ms);
    std::this_thread::sleep_for(50ms);  // a cancelled timer would have fired by now
    auto result = rr.call([&] { return fired; });
    CHECK(result == std::vector<int>{0, 20, 40, 60});
}

TEST_CASE("reactor: a timer added from a timer with zero delay runs on a later turn") {
    running_reactor rr(reactor_config{});
    std::atomic<int> count{0};
    std::function<void()> again;
    again = [&] {
        if (count.fetch_add(1) < 100) rr.r->add_timer(0ms, again);
    };
    rr.call([&] { rr.r->add_timer(0ms, again); });
    CHECK(rr.wait_until([&](reactor&) { return count.load() == 101; }));
}

TEST_CASE("reactor: stop() from another thread ends run() promptly") {
    auto created = reactor::create(reactor_config{});
    REQUIRE(created.has_value());
    auto r = std::move(*created);
    std::promise<void> finished;
    std::thread t([&] {
        r->run();
        finished.set_value();
    });
    std::this_thread::sleep_for(20ms);
    r->stop();
    CHECK(finished.get_future().wait_for(5s) == std::future_status::ready);
    t.join();
}

TEST_CASE("reactor: a slow callback is counted as a stall") {
    running_reactor rr(reactor_config{});
    rr.call([] { std::this_thread::sleep_for(15ms); });
    CHECK(rr.stats().stalls >= 1);
}

TEST_CASE("reactor_group: claims go to the member with the fewest open connections") {
    std::vector<std::unique_ptr<reactor>> owned;
    std::vector<reactor*> members;
    for (unsigned i = 0; i < 3; ++i) {
        reactor_config cfg;
        cfg.shard_id = i;
        auto created = reactor::create(cfg);
        REQUIRE(created.has_value());
        owned.push_back(std::move(*created));
        members.push_back(owned.back().get());
    }
    reactor_group group(members);
    REQUIRE(group.size() == 3);

    // Nine claims spread 3/3/3 whatever the round-robin start.
    std::vector<unsigned> counts(3);
    for (int i = 0; i < 9; ++i) ++counts[group.claim()];
    CHECK(counts == std::vector<unsigned>{3, 3, 3});
    for (unsigned i = 0; i < 3; ++i) CHECK(group.open(i) == 3);

    // Member 1 loses its connections: the next claims fill it first.
    for (int i = 0; i < 3; ++i) group.release(1);
    CHECK(group.open(1) == 0);
    for (int i = 0; i < 3; ++i) CHECK(group.claim() == 1);
    CHECK(group.open(1) == 3);

    // Ties rotate: with all equal, consecutive claims do not all pick the same member.
    std::vector<unsigned> picked;
    for (int i = 0; i < 3; ++i) {
        unsigned m = group.claim();
        picked.push_back(m);
        group.release(m);
    }
    std::sort(picked.begin(), picked.end());
    CHECK(std::unique(picked.begin(), picked.end()) - picked.begin() > 1);
}
