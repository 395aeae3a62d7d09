// coordinator against a real ZooKeeper (zk_fixture.h). Every wait is bounded.
#include <doctest/doctest.h>

#include <condition_variable>
#include <future>
#include <mutex>

#include "coord/coordinator.h"
#include "coord/zk_client.h"
#include "coord/znodes.h"
#include "tests/unit/coord/zk_fixture.h"

using namespace sluice::coord;
using namespace std::chrono_literals;
using sluice::coord::test::zk_server;

namespace {

std::atomic<int> chroot_seq{0};

std::string unique_chroot() { return "/sluice-test/" + std::to_string(::getpid()) + "-" + std::to_string(++chroot_seq); }

// Collects published snapshots; waits (bounded) for one that satisfies a predicate.
class snapshot_probe {
public:
    coordinator::snapshot_fn callback() {
        return [this](std::shared_ptr<const cluster_snapshot> s) {
            std::lock_guard lock(_mutex);
            _latest = std::move(s);
            _cv.notify_all();
        };
    }
    template <typename Pred>
    bool wait(Pred pred, std::chrono::milliseconds timeout = 15s) {
        std::unique_lock lock(_mutex);
        return _cv.wait_for(lock, timeout, [&] { return _latest && pred(*_latest); });
    }
    std::shared_ptr<const cluster_snapshot> latest() {
        std::lock_guard lock(_mutex);
        return _latest;
    }

private:
    std::mutex _mutex;
    std::condition_variable _cv;
    std::shared_ptr<const cluster_snapshot> _latest;
};

zk_config config_for(const zk_server& zk, const std::string& chroot, int32_t id, int32_t session_ms = 4000) {
    zk_config c;
    c.connect = zk.connect() + chroot;
    c.session_timeout_ms = session_ms;
    c.connection_timeout_ms = 10000;
    c.broker_id = id;
    c.advertised = {{"PLAINTEXT", "PLAINTEXT", "127.0.0.1", 9000 + id}};
    return c;
}

// A plain handle for inspecting ZooKeeper from the test.
struct raw_zk {
    zk_client zk;
    explicit raw_zk(const std::string& connect, int session_ms = 10000) {
        REQUIRE(zk.open(connect, session_ms, nullptr, nullptr));
        auto deadline = std::chrono::steady_clock::now() + 10s;
        while (zoo_state(zk.handle()) != ZOO_CONNECTED_STATE && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(20ms);
        REQUIRE(zoo_state(zk.handle()) == ZOO_CONNECTED_STATE);
    }
    std::optional<std::string> get(const std::string& path) {
        zk_node n;
        int rc = zk.get(path, n);
        if (rc != ZOK) return std::nullopt;
        return n.data.value_or("");
    }
    bool exists(const std::string& path) {
        Stat st;
        return zk.exists(path, &st) == ZOK;
    }
    Stat stat(const std::string& path) {
        Stat st{};
        REQUIRE(zk.exists(path, &st) == ZOK);
        return st;
    }
};

struct admin_result {
    int16_t error = -100;
    std::string message;
};

admin_result create(coordinator& c, const std::string& t, int32_t parts, int16_t rf,
                    std::map<std::string, std::string> configs = {}) {
    std::promise<admin_result> p;
    auto f = p.get_future();
    c.create_topic(t, parts, rf, std::move(configs), [&p](int16_t e, std::string m) { p.set_value({e, m}); });
    REQUIRE(f.wait_for(15s) == std::future_status::ready);
    return f.get();
}

admin_result create(coordinator& c, const std::string& t, int32_t parts, int16_t rf,
                    std::map<std::string, std::string> configs, bool validate_only) {
    std::promise<admin_result> p;
    auto f = p.get_future();
    c.create_topic(t, parts, rf, std::move(configs), [&p](int16_t e, std::string m) { p.set_value({e, m}); },
                   validate_only);
    REQUIRE(f.wait_for(15s) == std::future_status::ready);
    return f.get();
}

admin_result create_assigned(coordinator& c, const std::string& t, std::map<int32_t, std::vector<int32_t>> a) {
    std::promise<admin_result> p;
    auto f = p.get_future();
    c.create_topic(t, std::move(a), {}, [&p](int16_t e, std::string m) { p.set_value({e, m}); });
    REQUIRE(f.wait_for(15s) == std::future_status::ready);
    return f.get();
}

admin_result remove(coordinator& c, const std::string& t) {
    std::promise<admin_result> p;
    auto f = p.get_future();
    c.delete_topic(t, [&p](int16_t e, std::string m) { p.set_value({e, m}); });
    REQUIRE(f.wait_for(15s) == std::future_status::ready);
    return f.get();
}

// Expires a coordinator's session the way ZooKeeper's own tests do: open a second
// handle on the same session and close it. If the coordinator's client reconnects
// between the two, the close comes from a non-owner and is ignored, so retry (bounded).
bool expire_session(const std::string& connect, coordinator& c) {
    struct connected_flag {
        std::mutex mutex;
        std::condition_variable cv;
        bool connected = false;
    };
    auto watcher = [](zhandle_t*, int type, int state, const char*, void* ctx) {
        auto* f = static_cast<connected_flag*>(ctx);
        if (type != ZOO_SESSION_EVENT || state != ZOO_CONNECTED_STATE) return;
        std::lock_guard lock(f->mutex);
        f->connected = true;
        f->cv.notify_all();
    };
    const auto before = c.session_for_test();
    for (int attempt = 0; attempt < 5; ++attempt) {
        clientid_t cid{};
        cid.client_id = before.id;
        std::copy(before.password.begin(), before.password.end(), cid.passwd);
        connected_flag flag;
        zhandle_t* twin = zookeeper_init(connect.c_str(), watcher, 3000, &cid, &flag, 0);
        if (!twin) return false;
        {
            std::unique_lock lock(flag.mutex);
            flag.cv.wait_for(lock, 10s, [&] { return flag.connected; });
        }
        zookeeper_close(twin);
        for (int i = 0; i < 100; ++i) {
            if (c.session_for_test().id != before.id) return true;
            std::this_thread::sleep_for(50ms);
        }
    }
    return false;
}

bool all_led(const cluster_snapshot& s, const std::string& t, size_t parts, size_t isr_size) {
    auto it = s.topics.find(t);
    if (it == s.topics.end() || it->second->partitions.size() != parts) return false;
    for (const auto& [p, st] : it->second->partitions)
        if (st.leader < 0 || st.isr.size() != isr_size) return false;
    return true;
}

}  // namespace

TEST_CASE("zk: start registers the broker and the cluster id under a chroot; a second broker sees both") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1, p2;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);

    raw_zk raw(zk.connect() + chroot);
    for (const auto& path : znodes::persistent_paths()) CHECK(raw.exists(path));
    auto reg = raw.get("/brokers/ids/1");
    REQUIRE(reg.has_value());
    auto b = znodes::decode_broker(1, *reg);
    REQUIRE(b.has_value());
    CHECK(b->endpoints == std::vector<endpoint>{{"PLAINTEXT", "PLAINTEXT", "127.0.0.1", 9001}});
    Stat st = raw.stat("/brokers/ids/1");
    CHECK(st.ephemeralOwner == c1.session_for_test().id);
    auto cid = znodes::decode_cluster_id(raw.get("/cluster/id").value_or(""));
    REQUIRE(cid.has_value());
    CHECK(cid->size() == 22);

    auto s1 = c1.snapshot();
    CHECK(s1->cluster_id == *cid);
    CHECK(s1->controller_id == 1);
    CHECK(c1.is_controller());
    REQUIRE(s1->brokers.count(1) == 1);
    CHECK(s1->brokers.at(1).epoch == st.czxid);
    CHECK(znodes::decode_controller(raw.get("/controller").value_or("")) == std::optional<int32_t>(1));
    CHECK(raw.get("/controller_epoch") == std::optional<std::string>("1"));

    coordinator c2(config_for(zk, chroot, 2), p2.callback());
    REQUIRE(c2.start() == std::nullopt);
    CHECK(c2.snapshot()->cluster_id == *cid);  // read, not re-created
    CHECK(p2.wait([](const cluster_snapshot& s) { return s.brokers.size() == 2 && s.controller_id == 1; }));
    CHECK(p1.wait([](const cluster_snapshot& s) { return s.brokers.size() == 2; }));
    CHECK_FALSE(c2.is_controller());
    // The chroot-less root holds nothing but the chroot's ancestors.
    raw_zk root(zk.connect());
    CHECK_FALSE(root.exists("/brokers"));
}

TEST_CASE("zk: controller failover when the controller stops") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1, p2;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    coordinator c2(config_for(zk, chroot, 2), p2.callback());
    REQUIRE(c2.start() == std::nullopt);
    REQUIRE(p2.wait([](const cluster_snapshot& s) { return s.controller_id == 1 && s.brokers.size() == 2; }));

    c1.stop();
    CHECK(p2.wait([](const cluster_snapshot& s) { return s.controller_id == 2 && s.brokers.size() == 1; }));
    CHECK(c2.is_controller());
    raw_zk raw(zk.connect() + chroot);
    CHECK(raw.get("/controller_epoch") == std::optional<std::string>("2"));
    CHECK_FALSE(raw.exists("/brokers/ids/1"));
}

TEST_CASE("zk: create_topic -> state znodes with leaders; broker death moves leadership; delete_topic") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1, p2;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    coordinator c2(config_for(zk, chroot, 2), p2.callback());
    REQUIRE(c2.start() == std::nullopt);
    REQUIRE(p2.wait([](const cluster_snapshot& s) { return s.brokers.size() == 2; }));

    // Created through the non-controller: any broker may write the topic znodes.
    auto r = create(c2, "orders", 4, 2, {{"retention.ms", "1000"}});
    CHECK(r.error == 0);
    // ISR = every live replica (Kafka's rule for new partitions; coord/assignment.h).
    CHECK(p2.wait([](const cluster_snapshot& s) { return all_led(s, "orders", 4, 2); }));
    CHECK(p1.wait([](const cluster_snapshot& s) { return all_led(s, "orders", 4, 2); }));
    auto t = p2.latest()->topics.at("orders");
    CHECK_FALSE(is_zero(t->topic_id));
    CHECK(t->configs == std::map<std::string, std::string>{{"retention.ms", "1000"}});
    for (const auto& [p, replicas] : t->assignment) {
        CHECK(replicas.size() == 2);
        CHECK(t->partitions.at(p).leader == replicas[0]);  // preferred replica leads
    }

    raw_zk raw(zk.connect() + chroot);
    auto topic = znodes::decode_topic(raw.get("/brokers/topics/orders").value_or(""));
    REQUIRE(topic.has_value());
    CHECK(topic->topic_id == t->topic_id);
    auto state = znodes::decode_partition_state(raw.get("/brokers/topics/orders/partitions/0/state").value_or(""));
    REQUIRE(state.has_value());
    CHECK(state->leader == t->assignment.at(0)[0]);
    CHECK(state->controller_epoch == 1);
    CHECK(znodes::decode_config(raw.get("/config/topics/orders").value_or("")) ==
          std::optional(std::map<std::string, std::string>{{"retention.ms", "1000"}}));

    CHECK(create(c1, "orders", 1, 1).error == errors::topic_already_exists);
    auto rf = create(c1, "wide", 1, 3);
    CHECK(rf.error == errors::invalid_replication_factor);
    CHECK(rf.message.find("larger than available brokers: 2") != std::string::npos);
    CHECK(create(c1, "none", 0, 1).error == errors::invalid_partitions);
    CHECK(create(c1, "bad/name", 1, 1).error == errors::invalid_topic_exception);
    CHECK(create(c1, "ord_ers", 1, 1).error == 0);
    CHECK(create(c1, "ord.ers", 1, 1).error == errors::invalid_topic_exception);  // collides with ord_ers

    // validate_only writes nothing; explicit assignments are checked like Kafka's.
    CHECK(create(c1, "dry", 2, 2, {}, true).error == 0);
    CHECK_FALSE(raw.exists("/brokers/topics/dry"));
    CHECK(create_assigned(c1, "manual", {{0, {2, 1}}, {1, {1, 2}}}).error == 0);
    CHECK(p1.wait([](const cluster_snapshot& s) {
        return all_led(s, "manual", 2, 2) && s.topics.at("manual")->partitions.at(0).leader == 2;
    }));
    CHECK(create_assigned(c1, "dup", {{0, {1, 1}}}).error == errors::invalid_replica_assignment);
    CHECK(create_assigned(c1, "gap", {{0, {1}}, {2, {1}}}).error == errors::invalid_replica_assignment);
    CHECK(create_assigned(c1, "uneven", {{0, {1}}, {1, {1, 2}}}).error == errors::invalid_replica_assignment);

    // Broker 2 dies: broker 1, in every ISR, leads all partitions; every ISR shrinks to
    // [1] and every leader epoch bumps (Kafka's controller does both).
    c2.stop();
    CHECK(p1.wait([](const cluster_snapshot& s) {
        auto it = s.topics.find("orders");
        if (s.brokers.size() != 1 || it == s.topics.end()) return false;
        for (const auto& [p, st] : it->second->partitions) {
            if (st.leader != 1 || st.isr != std::vector<int32_t>{1} || st.leader_epoch != 1) return false;
        }
        return true;
    }));

    CHECK(remove(c1, "missing").error == errors::unknown_topic_or_partition);
    CHECK(remove(c1, "orders").error == 0);
    CHECK(p1.wait([](const cluster_snapshot& s) { return s.topics.count("orders") == 0; }));
    auto gone = [&] {
        return !raw.exists("/brokers/topics/orders") && !raw.exists("/config/topics/orders") &&
               !raw.exists("/admin/delete_topics/orders");
    };
    for (int i = 0; i < 100 && !gone(); ++i) std::this_thread::sleep_for(50ms);
    CHECK(gone());
}

TEST_CASE("zk: a leader's ISR change is a compare-and-set on the state znode that every broker sees") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1, p2;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    coordinator c2(config_for(zk, chroot, 2), p2.callback());
    REQUIRE(c2.start() == std::nullopt);
    REQUIRE(p2.wait([](const cluster_snapshot& s) { return s.brokers.size() == 2; }));
    REQUIRE(create_assigned(c1, "isr", {{0, {2, 1}}}).error == 0);
    REQUIRE(p1.wait([](const cluster_snapshot& s) { return all_led(s, "isr", 1, 2); }));
    REQUIRE(p2.wait([](const cluster_snapshot& s) { return all_led(s, "isr", 1, 2); }));
    const partition_state before = p2.latest()->topics.at("isr")->partitions.at(0);
    CHECK(before.leader == 2);

    auto update = [](coordinator& c, partition_state next) {
        std::promise<bool> done;
        auto f = done.get_future();
        c.update_isr("isr", 0, next, [&done](bool ok) { done.set_value(ok); });
        return f.wait_for(10s) == std::future_status::ready && f.get();
    };
    partition_state shrunk = before;
    shrunk.isr = {2};
    CHECK(update(c2, shrunk));  // the leader (broker 2) drops broker 1
    CHECK(p1.wait([](const cluster_snapshot& s) { return all_led(s, "isr", 1, 1); }));  // seen by the other broker
    const partition_state after = p1.latest()->topics.at("isr")->partitions.at(0);
    CHECK(after.leader == 2);
    CHECK(after.leader_epoch == before.leader_epoch);  // an ISR change is no new leader term
    CHECK(after.zk_version == before.zk_version + 1);
    // A second write based on the old version loses: someone changed the state since.
    partition_state stale = before;
    stale.isr = {2, 1};
    CHECK_FALSE(update(c2, stale));
    partition_state grown = after;
    grown.isr = {2, 1};
    CHECK(update(c2, grown));
    CHECK(p2.wait([](const cluster_snapshot& s) { return all_led(s, "isr", 1, 2); }));
}

TEST_CASE("zk: an expired session re-registers the broker and re-runs the election") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1;
    coordinator c1(config_for(zk, chroot, 1, 3000), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    auto before = c1.session_for_test();
    raw_zk raw(zk.connect() + chroot);
    const int64_t epoch_before = raw.stat("/brokers/ids/1").czxid;

    REQUIRE(expire_session(zk.connect() + chroot, c1));
    CHECK(p1.wait([&](const cluster_snapshot& s) {
        auto b = s.brokers.find(1);
        return b != s.brokers.end() && b->second.epoch > epoch_before && s.controller_id == 1;
    }));
    auto after = c1.session_for_test();
    CHECK(after.id != before.id);
    CHECK(raw.stat("/brokers/ids/1").ephemeralOwner == after.id);
    CHECK(c1.is_controller());
    CHECK(raw.get("/controller_epoch") == std::optional<std::string>("2"));
    CHECK(create(c1, "after-expiry", 1, 1).error == 0);
    CHECK(p1.wait([](const cluster_snapshot& s) { return all_led(s, "after-expiry", 1, 1); }));
}

TEST_CASE("zk: ZooKeeper restart: keep the last snapshot, reconnect, carry on") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1;
    coordinator c1(config_for(zk, chroot, 1, 10000), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    auto before = c1.snapshot();
    zk.stop();
    auto offline = create(c1, "offline", 1, 1);  // no ZooKeeper, no topic: a prompt error
    CHECK(offline.error == errors::request_timed_out);
    // The broker keeps serving with the metadata it had.
    CHECK(c1.snapshot()->brokers.count(1) == 1);
    CHECK(c1.snapshot()->cluster_id == before->cluster_id);
    REQUIRE(zk.start());
    // Reconnected (same session: it lived through the restart) and working again.
    admin_result r;
    for (int i = 0; i < 100; ++i) {
        r = create(c1, "online", 1, 1);
        if (r.error == 0) break;
        std::this_thread::sleep_for(100ms);
    }
    CHECK(r.error == 0);
    CHECK(p1.wait([](const cluster_snapshot& s) { return all_led(s, "online", 1, 1) && s.brokers.count(1); }));
    raw_zk raw(zk.connect() + chroot);
    CHECK(raw.exists("/brokers/ids/1"));
}

TEST_CASE("zk: start waits for a lingering registration of a dead session, then registers") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    {
        raw_zk setup(zk.connect());
        REQUIRE(setup.zk.create_recursive(chroot + "/brokers/ids") == ZOK);
    }
    auto ghost = std::make_unique<raw_zk>(zk.connect() + chroot);
    REQUIRE(ghost->zk.create("/brokers/ids/1", std::string("{\"version\":5}"), ZOO_EPHEMERAL) == ZOK);
    std::thread closer([&] {
        std::this_thread::sleep_for(2s);
        ghost.reset();  // session closed: the ephemeral goes
    });
    snapshot_probe p1;
    coordinator c1(config_for(zk, chroot, 1, 4000), p1.callback());
    auto t0 = std::chrono::steady_clock::now();
    auto err = c1.start();
    auto waited = std::chrono::steady_clock::now() - t0;
    closer.join();
    CHECK(err == std::nullopt);
    CHECK(waited >= 1500ms);
    raw_zk raw(zk.connect() + chroot);
    CHECK(raw.stat("/brokers/ids/1").ephemeralOwner == c1.session_for_test().id);
}

TEST_CASE("zk: a live broker with the same id is a fatal start error") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1, p2;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    coordinator dup(config_for(zk, chroot, 1, 1000), p2.callback());
    auto err = dup.start();
    REQUIRE(err.has_value());
    CHECK(err->find("broker.id 1 is registered by another live broker") != std::string::npos);
    // The failed start left the first registration alone.
    raw_zk raw(zk.connect() + chroot);
    CHECK(raw.stat("/brokers/ids/1").ephemeralOwner == c1.session_for_test().id);
    // create/delete on a stopped coordinator answer at once
    CHECK(create(dup, "x", 1, 1).error == errors::unknown_server_error);
}

TEST_CASE("zk: unreachable ZooKeeper fails start within the connection timeout") {
    zk_config c;
    c.connect = "127.0.0.1:" + std::to_string(sluice::coord::test::free_loopback_port());
    c.connection_timeout_ms = 1500;
    c.session_timeout_ms = 2000;
    c.broker_id = 1;
    coordinator coord(c, nullptr);
    auto t0 = std::chrono::steady_clock::now();
    auto err = coord.start();
    REQUIRE(err.has_value());
    CHECK(err->find("timed out connecting to ZooKeeper") != std::string::npos);
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    zk_config bad = c;
    bad.connect = "nohostport";
    coordinator c2(bad, nullptr);
    auto e2 = c2.start();
    REQUIRE(e2.has_value());
    CHECK(e2->find("invalid zookeeper.connect") != std::string::npos);
}

TEST_CASE("zk: a topic written by Kafka's tooling gets leaders; a restarted broker gets a newer leader epoch") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1, p2;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    auto c2 = std::make_unique<coordinator>(config_for(zk, chroot, 2), p2.callback());
    REQUIRE(c2->start() == std::nullopt);
    REQUIRE(p1.wait([](const cluster_snapshot& s) { return s.brokers.size() == 2; }));

    raw_zk raw(zk.connect() + chroot);
    // As kafka-topics.sh --zookeeper (pre-2.8) wrote it: version 1, no topic_id, no config.
    REQUIRE(raw.zk.create("/brokers/topics/legacy", std::string(R"({"version":1,"partitions":{"0":[1],"1":[2]}})")) ==
            ZOK);
    REQUIRE(p1.wait([](const cluster_snapshot& s) { return all_led(s, "legacy", 2, 1); }));
    CHECK(p1.wait([](const cluster_snapshot& s) { return !is_zero(s.topics.at("legacy")->topic_id); }));
    auto t = p1.latest()->topics.at("legacy");
    auto rewritten = znodes::decode_topic(raw.get("/brokers/topics/legacy").value_or(""));
    REQUIRE(rewritten.has_value());
    CHECK(rewritten->topic_id == t->topic_id);  // the controller backfilled the id, as Kafka's does
    CHECK(t->partitions.at(0).leader == 1);
    CHECK(t->partitions.at(1).leader == 2);
    CHECK(t->partitions.at(1).leader_epoch == 0);

    // Broker 2 restarts (kill + start): it must see itself lead partition 1 at a newer epoch.
    c2->stop();
    c2 = std::make_unique<coordinator>(config_for(zk, chroot, 2), p2.callback());
    REQUIRE(c2->start() == std::nullopt);
    CHECK(p2.wait([](const cluster_snapshot& s) {
        auto it = s.topics.find("legacy");
        if (it == s.topics.end() || !it->second->partitions.count(1)) return false;
        const auto& st = it->second->partitions.at(1);
        return st.leader == 2 && st.leader_epoch >= 1;
    }));
    CHECK(p1.latest()->topics.at("legacy")->partitions.at(0).leader_epoch == 0);  // untouched
}

TEST_CASE("zk: controller writes are fenced by /controller_epoch's version; a fenced controller re-elects") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    REQUIRE(c1.is_controller());
    raw_zk raw(zk.connect() + chroot);
    // Somebody else moved the epoch on: c1's next controller write must fail its check op.
    REQUIRE(raw.zk.set("/controller_epoch", std::string("5"), -1) == ZOK);
    CHECK(create(c1, "fenced", 1, 1).error == 0);  // admin writes are not controller writes
    CHECK(p1.wait([](const cluster_snapshot& s) {
        auto it = s.topics.find("fenced");
        return it != s.topics.end() && it->second->partitions.count(0) &&
               it->second->partitions.at(0).controller_epoch == 6 && it->second->partitions.at(0).leader == 1;
    }));
    CHECK(raw.get("/controller_epoch") == std::optional<std::string>("6"));
    CHECK(c1.is_controller());
}

namespace {
admin_result alter(coordinator& c, const std::string& t, coordinator::config_edit_fn edit, bool validate_only = false) {
    std::promise<admin_result> p;
    auto f = p.get_future();
    c.alter_topic_configs(t, std::move(edit), [&p](int16_t e, std::string m) { p.set_value({e, m}); }, validate_only);
    REQUIRE(f.wait_for(15s) == std::future_status::ready);
    return f.get();
}
}  // namespace

TEST_CASE("zk: alter_topic_configs rewrites /config/topics/<t>, notifies /config/changes, reaches snapshots") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1, p2;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    coordinator c2(config_for(zk, chroot, 2), p2.callback());
    REQUIRE(c2.start() == std::nullopt);
    REQUIRE(create(c1, "cfg", 1, 1, {{"retention.ms", "1000"}}).error == 0);

    // The edit sees what ZooKeeper holds and changes it; every broker's snapshot follows.
    std::map<std::string, std::string> seen;
    auto r = alter(c2, "cfg", [&seen](std::map<std::string, std::string>& m) -> std::optional<std::pair<int16_t, std::string>> {
        seen = m;
        m["segment.bytes"] = "4096";
        m.erase("retention.ms");
        return std::nullopt;
    });
    CHECK(r.error == 0);
    CHECK(seen == std::map<std::string, std::string>{{"retention.ms", "1000"}});
    const std::map<std::string, std::string> want = {{"segment.bytes", "4096"}};
    CHECK(p1.wait([&](const cluster_snapshot& s) { return s.topics.count("cfg") && s.topics.at("cfg")->configs == want; }));
    CHECK(p2.wait([&](const cluster_snapshot& s) { return s.topics.count("cfg") && s.topics.at("cfg")->configs == want; }));

    raw_zk raw(zk.connect() + chroot);
    CHECK(znodes::decode_config(raw.get("/config/topics/cfg").value_or("")) == want);
    std::vector<std::string> changes;
    REQUIRE(raw.zk.children("/config/changes", changes) == ZOK);
    REQUIRE(changes.size() == 1);
    CHECK(changes[0].starts_with("config_change_"));
    CHECK(raw.get("/config/changes/" + changes[0]) == R"({"version":2,"entity_path":"topics/cfg"})");

    // A refusal writes nothing; validate_only writes nothing; unknown topics are reported.
    r = alter(c1, "cfg", [](std::map<std::string, std::string>& m) -> std::optional<std::pair<int16_t, std::string>> {
        m.clear();
        return std::pair<int16_t, std::string>{errors::invalid_config, "no"};
    });
    CHECK(r.error == errors::invalid_config);
    CHECK(r.message == "no");
    r = alter(c1, "cfg", [](std::map<std::string, std::string>& m) -> std::optional<std::pair<int16_t, std::string>> {
        m.clear();
        return std::nullopt;
    }, true);
    CHECK(r.error == 0);
    CHECK(znodes::decode_config(raw.get("/config/topics/cfg").value_or("")) == want);
    r = alter(c1, "missing", [](std::map<std::string, std::string>&) -> std::optional<std::pair<int16_t, std::string>> {
        return std::nullopt;
    });
    CHECK(r.error == errors::unknown_topic_or_partition);
}

TEST_CASE("zk: get_many reads many znodes in one pipelined batch, ZNONODE per missing one") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    {
        raw_zk root(zk.connect());
        REQUIRE(root.zk.create_recursive(chroot) == ZOK);
    }
    raw_zk raw(zk.connect() + chroot);
    std::vector<std::string> paths;
    for (int i = 0; i < 300; ++i) {
        paths.push_back("/n" + std::to_string(i));
        if (i % 7 != 3) REQUIRE(raw.zk.create(paths.back(), "value-" + std::to_string(i)) == ZOK);
    }
    REQUIRE(raw.zk.create("/null-data", std::nullopt) == ZOK);
    paths.push_back("/null-data");
    std::vector<int> rcs;
    std::vector<zk_node> out;
    REQUIRE(raw.zk.get_many(paths, rcs, out) == ZOK);
    REQUIRE(rcs.size() == paths.size());
    for (int i = 0; i < 300; ++i) {
        CAPTURE(i);
        if (i % 7 == 3) {
            CHECK(rcs[i] == ZNONODE);
        } else {
            REQUIRE(rcs[i] == ZOK);
            CHECK(out[i].data == "value-" + std::to_string(i));
            CHECK(out[i].stat.version == 0);
        }
    }
    CHECK(rcs[300] == ZOK);
    CHECK(!out[300].data.has_value());
    CHECK(raw.zk.get_many({}, rcs, out) == ZOK);
}

TEST_CASE("zk: a 450-partition topic gets its states in a few multis, even with a partition znode left over") {
    zk_server zk;
    REQUIRE(zk.ready());
    const std::string chroot = unique_chroot();
    snapshot_probe p1;
    coordinator c1(config_for(zk, chroot, 1), p1.callback());
    REQUIRE(c1.start() == std::nullopt);
    REQUIRE(p1.wait([](const cluster_snapshot& s) { return s.controller_id == 1; }));
    raw_zk raw(zk.connect() + chroot);
    // Written the way Kafka's tooling does (topic znode, no states), plus a partition
    // parent left by an interrupted earlier attempt: it must not fail the multi.
    std::map<int32_t, std::vector<int32_t>> assignment;
    for (int32_t p = 0; p < 450; ++p) assignment[p] = {1};
    REQUIRE(raw.zk.create_recursive("/brokers/topics/big/partitions/7") == ZOK);
    REQUIRE(raw.zk.set("/brokers/topics/big", znodes::encode_topic(assignment, random_uuid()), -1) == ZOK);
    CHECK(p1.wait([](const cluster_snapshot& s) { return all_led(s, "big", 450, 1); }));
    for (int p : {0, 7, 199, 200, 449}) {
        CAPTURE(p);
        auto st = raw.get("/brokers/topics/big/partitions/" + std::to_string(p) + "/state");
        REQUIRE(st.has_value());
        CHECK(st->find("\"leader\":1") != std::string::npos);
    }
}
