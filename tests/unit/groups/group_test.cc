// The classic group state machine under a manual clock: timers fire only when the test
// advances time, and persistence completes inline (or fails, when told to).
#include "broker/groups/group.h"
#include "broker/protocol/errors.h"

#include <doctest/doctest.h>

#include <map>

using namespace sluice::broker::groups;
using sluice::proto::error_code;

namespace {

constexpr int16_t E(error_code e) { return static_cast<int16_t>(e); }

class test_host final : public group_host {
public:
    group_config cfg;
    int64_t now = 1000;
    int stores = 0;
    int16_t store_error = 0;

    int64_t now_ms() override { return now; }
    uint64_t schedule(int64_t delay_ms, std::function<void()> fn) override {
        uint64_t id = ++_next;
        _timers.emplace(id, timer{now + delay_ms, std::move(fn)});
        return id;
    }
    void cancel(uint64_t id) override { _timers.erase(id); }
    const group_config& config() const override { return cfg; }
    std::string new_member_id(const std::string& client_id) override {
        return client_id + "-" + std::to_string(++_ids);
    }
    void store_group(group&, std::function<void(int16_t)> done) override {
        ++stores;
        done(store_error);
    }
    // Runs every timer due up to now + ms, in deadline order.
    void advance(int64_t ms) {
        int64_t until = now + ms;
        while (true) {
            auto due = _timers.end();
            for (auto it = _timers.begin(); it != _timers.end(); ++it)
                if (it->second.at <= until && (due == _timers.end() || it->second.at < due->second.at)) due = it;
            if (due == _timers.end()) break;
            now = due->second.at;
            auto fn = std::move(due->second.fn);
            _timers.erase(due);
            fn();
        }
        now = until;
    }

private:
    struct timer {
        int64_t at;
        std::function<void()> fn;
    };
    std::map<uint64_t, timer> _timers;
    uint64_t _next = 0;
    int _ids = 0;
};

struct join_slot {
    bool done = false;
    join_result r;
    join_callback cb() {
        return [this](join_result res) {
            done = true;
            r = std::move(res);
        };
    }
};

struct sync_slot {
    bool done = false;
    sync_result r;
    sync_callback cb() {
        return [this](sync_result res) {
            done = true;
            r = std::move(res);
        };
    }
};

join_request jreq(std::string member_id, std::string client = "c", std::vector<std::string> protocols = {"range"}) {
    join_request j;
    j.member_id = std::move(member_id);
    j.client_id = std::move(client);
    j.session_timeout_ms = 10000;
    j.rebalance_timeout_ms = 30000;
    j.protocol_type = "consumer";
    for (auto& p : protocols) j.protocols.push_back({p, {1, 2, 3}});
    return j;
}

sync_request sreq(int32_t gen, std::string member, std::map<std::string, std::vector<uint8_t>> a = {}) {
    sync_request s;
    s.generation_id = gen;
    s.member_id = std::move(member);
    s.assignments = std::move(a);
    return s;
}

// Two members join a fresh group (v3 style: no MEMBER_ID_REQUIRED) and sync.
struct two_members {
    test_host host;
    std::shared_ptr<group> g;
    std::string a, b;
    two_members() {
        host.cfg.initial_rebalance_delay_ms = 100;
        g = std::make_shared<group>(host, "g", 0);
        join_slot ja, jb;
        g->join(jreq(""), ja.cb());
        g->join(jreq(""), jb.cb());
        REQUIRE_FALSE(ja.done);
        host.advance(100);  // b arrived during the delay: extended once more
        REQUIRE_FALSE(ja.done);
        host.advance(100);
        REQUIRE(ja.done);
        REQUIRE(jb.done);
        a = ja.r.member_id;
        b = jb.r.member_id;
        sync_slot sa, sb;
        g->sync(sreq(1, b), sb.cb());
        REQUIRE_FALSE(sb.done);
        g->sync(sreq(1, a, {{a, {0xa}}, {b, {0xb}}}), sa.cb());
        REQUIRE(sa.done);
        REQUIRE(sb.done);
        REQUIRE(g->state() == group_state::stable);
    }
};

}  // namespace

TEST_CASE("first generation: initial delay, leader gets members, sync distributes the assignment") {
    test_host host;
    host.cfg.initial_rebalance_delay_ms = 3000;
    auto g = std::make_shared<group>(host, "g", 0);
    join_slot j1, j2;
    g->join(jreq("", "c1"), j1.cb());
    CHECK(g->state() == group_state::preparing_rebalance);
    host.advance(1000);
    g->join(jreq("", "c2"), j2.cb());
    host.advance(2000);  // the first delay expires, but a member arrived meanwhile: extended
    CHECK_FALSE(j1.done);
    host.advance(3000);
    REQUIRE(j1.done);
    REQUIRE(j2.done);
    CHECK(g->state() == group_state::completing_rebalance);
    CHECK(j1.r.error == 0);
    CHECK(j1.r.generation_id == 1);
    CHECK(j1.r.protocol_name == "range");
    CHECK(j1.r.leader == j1.r.member_id);
    CHECK(j1.r.members.size() == 2);
    CHECK(j2.r.members.empty());
    CHECK(j2.r.leader == j1.r.member_id);

    sync_slot s1, s2;
    g->sync(sreq(1, j2.r.member_id), s2.cb());
    CHECK_FALSE(s2.done);
    g->sync(sreq(1, j1.r.member_id, {{j1.r.member_id, {1}}, {j2.r.member_id, {2}}}), s1.cb());
    REQUIRE(s1.done);
    REQUIRE(s2.done);
    CHECK(s1.r.assignment == std::vector<uint8_t>{1});
    CHECK(s2.r.assignment == std::vector<uint8_t>{2});
    CHECK(g->state() == group_state::stable);
    CHECK(host.stores == 1);
}

TEST_CASE("JoinGroup v4+: MEMBER_ID_REQUIRED first, then the join with that id") {
    test_host host;
    host.cfg.initial_rebalance_delay_ms = 0;
    auto g = std::make_shared<group>(host, "g", 0);
    auto req = jreq("");
    req.require_known_member_id = true;
    join_slot j;
    g->join(req, j.cb());
    REQUIRE(j.done);
    CHECK(j.r.error == E(error_code::member_id_required));
    CHECK_FALSE(j.r.member_id.empty());
    CHECK(g->state() == group_state::empty);
    join_slot j2;
    g->join(jreq(j.r.member_id), j2.cb());
    host.advance(0);
    REQUIRE(j2.done);
    CHECK(j2.r.error == 0);
    CHECK(j2.r.member_id == j.r.member_id);
    CHECK(j2.r.generation_id == 1);
}

TEST_CASE("errors: session timeout bounds, unknown member, illegal generation, protocol mismatch") {
    two_members t;
    auto bad = jreq("");
    bad.session_timeout_ms = 1000;
    join_slot j;
    t.g->join(bad, j.cb());
    CHECK(j.r.error == E(error_code::invalid_session_timeout));
    join_slot j2;
    t.g->join(jreq("nobody"), j2.cb());
    CHECK(j2.r.error == E(error_code::unknown_member_id));
    join_slot j3;
    t.g->join(jreq("", "c", {"roundrobin"}), j3.cb());
    CHECK(j3.r.error == E(error_code::inconsistent_group_protocol));
    CHECK(t.g->heartbeat(7, t.a, std::nullopt) == E(error_code::illegal_generation));
    CHECK(t.g->heartbeat(1, "nobody", std::nullopt) == E(error_code::unknown_member_id));
    CHECK(t.g->heartbeat(1, t.a, std::nullopt) == 0);
    sync_slot s;
    t.g->sync(sreq(2, t.a), s.cb());
    CHECK(s.r.error == E(error_code::illegal_generation));
    CHECK(t.g->validate_commit(1, t.a, std::nullopt) == 0);
    CHECK(t.g->validate_commit(0, t.a, std::nullopt) == E(error_code::illegal_generation));
    CHECK(t.g->validate_commit(-1, "", std::nullopt) == E(error_code::unknown_member_id));
}

TEST_CASE("a new member triggers a rebalance; heartbeats say REBALANCE_IN_PROGRESS until all rejoined") {
    two_members t;
    join_slot jc;
    t.g->join(jreq("", "c3"), jc.cb());
    CHECK(t.g->state() == group_state::preparing_rebalance);
    CHECK(t.g->heartbeat(1, t.a, std::nullopt) == E(error_code::rebalance_in_progress));
    join_slot ja, jb;
    t.g->join(jreq(t.a), ja.cb());
    CHECK_FALSE(jc.done);
    t.g->join(jreq(t.b), jb.cb());
    REQUIRE(jc.done);
    CHECK(ja.r.generation_id == 2);
    CHECK(jc.r.generation_id == 2);
    CHECK(ja.r.members.size() == 3);  // a stays leader
}

TEST_CASE("a member that does not rejoin within the rebalance timeout is removed") {
    two_members t;
    join_slot ja;
    t.g->join(jreq(t.a), ja.cb());  // a rejoins (e.g. new subscription); b never does
    CHECK(t.g->state() == group_state::preparing_rebalance);
    for (int i = 0; i < 5; ++i) {
        t.host.advance(5000);  // b stays alive by heartbeating, but does not rejoin
        CHECK(t.g->heartbeat(1, t.b, std::nullopt) == E(error_code::rebalance_in_progress));
    }
    t.host.advance(4999);
    CHECK_FALSE(ja.done);
    t.host.advance(1);
    REQUIRE(ja.done);
    CHECK(ja.r.generation_id == 2);
    CHECK(t.g->members().size() == 1);
    CHECK_FALSE(t.g->has_member(t.b));
}

TEST_CASE("session timeout removes a silent member and rebalances the rest") {
    two_members t;
    t.host.advance(9000);
    CHECK(t.g->heartbeat(1, t.a, std::nullopt) == 0);
    t.host.advance(1000);  // b's session (10 s since its sync) expires
    CHECK_FALSE(t.g->has_member(t.b));
    CHECK(t.g->state() == group_state::preparing_rebalance);
    join_slot ja;
    t.g->join(jreq(t.a), ja.cb());
    REQUIRE(ja.done);
    CHECK(ja.r.generation_id == 2);
    CHECK(t.g->state() == group_state::completing_rebalance);
}

TEST_CASE("leave: the last member leaving empties the group and stores it") {
    two_members t;
    CHECK(t.g->leave(t.b, std::nullopt) == 0);
    CHECK(t.g->state() == group_state::preparing_rebalance);
    CHECK(t.g->leave("nobody", std::nullopt) == E(error_code::unknown_member_id));
    int stores = t.host.stores;
    CHECK(t.g->leave(t.a, std::nullopt) == 0);
    CHECK(t.g->state() == group_state::empty);
    CHECK(t.g->generation() == 2);
    CHECK(t.host.stores == stores + 1);
    CHECK(t.g->validate_commit(-1, "", std::nullopt) == 0);  // now a standalone commit is fine
}

TEST_CASE("a leader's failed store fails the syncs and starts a new rebalance") {
    test_host host;
    host.cfg.initial_rebalance_delay_ms = 0;
    auto g = std::make_shared<group>(host, "g", 0);
    join_slot j;
    g->join(jreq(""), j.cb());
    host.advance(0);
    REQUIRE(j.done);
    host.store_error = E(error_code::coordinator_not_available);
    sync_slot s;
    g->sync(sreq(1, j.r.member_id, {{j.r.member_id, {1}}}), s.cb());
    REQUIRE(s.done);
    CHECK(s.r.error == E(error_code::coordinator_not_available));
    CHECK(g->state() == group_state::preparing_rebalance);
}

TEST_CASE("static membership: a restarted instance takes over without a rebalance; the old id is fenced") {
    test_host host;
    host.cfg.initial_rebalance_delay_ms = 0;
    auto g = std::make_shared<group>(host, "g", 0);
    auto a = jreq("", "ca");
    a.group_instance_id = "inst-a";
    auto b = jreq("", "cb");
    b.group_instance_id = "inst-b";
    join_slot ja, jb;
    g->join(a, ja.cb());
    g->join(b, jb.cb());
    host.advance(0);
    REQUIRE(ja.done);
    REQUIRE(jb.done);
    std::string leader = ja.r.leader;
    sync_slot sa, sb;
    g->sync(sreq(ja.r.generation_id, jb.r.member_id), sb.cb());
    g->sync(sreq(ja.r.generation_id, ja.r.member_id, {{ja.r.member_id, {0xa}}, {jb.r.member_id, {0xb}}}), sa.cb());
    REQUIRE(g->state() == group_state::stable);
    int32_t gen = g->generation();

    // b restarts: joins with no member id but the same instance id.
    join_slot jb2;
    g->join(b, jb2.cb());
    REQUIRE(jb2.done);
    CHECK(jb2.r.error == 0);
    CHECK(jb2.r.member_id != jb.r.member_id);
    CHECK(jb2.r.generation_id == gen);
    CHECK(g->state() == group_state::stable);
    CHECK(g->generation() == gen);
    sync_slot sb2;
    g->sync(sreq(gen, jb2.r.member_id), sb2.cb());
    REQUIRE(sb2.done);
    CHECK(sb2.r.assignment == std::vector<uint8_t>{0xb});
    // The old incarnation is fenced.
    CHECK(g->heartbeat(gen, jb.r.member_id, std::string("inst-b")) == E(error_code::fenced_instance_id));
    CHECK(g->validate_commit(gen, jb.r.member_id, std::string("inst-b")) == E(error_code::fenced_instance_id));
    CHECK(g->heartbeat(gen, jb2.r.member_id, std::string("inst-b")) == 0);
    // Leaving by instance id alone works (KIP-345 admin removal).
    CHECK(g->leave("", std::string("inst-b")) == 0);
    CHECK(g->members().size() == 1);
}

TEST_CASE("group.max.size") {
    two_members t;
    t.host.cfg.max_size = 2;
    join_slot j;
    t.g->join(jreq(""), j.cb());
    CHECK(j.r.error == E(error_code::group_max_size_reached));
}

TEST_CASE("protocol selection: the protocol most members prefer among those all support") {
    test_host host;
    host.cfg.initial_rebalance_delay_ms = 0;
    auto g = std::make_shared<group>(host, "g", 0);
    join_slot j1, j2, j3;
    g->join(jreq("", "c", {"range", "roundrobin"}), j1.cb());
    g->join(jreq("", "c", {"roundrobin", "range"}), j2.cb());
    g->join(jreq("", "c", {"roundrobin", "sticky", "range"}), j3.cb());
    host.advance(0);
    REQUIRE(j1.done);
    CHECK(j1.r.protocol_name == "roundrobin");
}

TEST_CASE("restore: a loaded group is Stable with its members and expires them without heartbeats") {
    test_host host;
    auto g = std::make_shared<group>(host, "g", 0);
    std::vector<group::loaded_member> ms;
    ms.push_back({"m1", std::nullopt, "c", "/h", 10000, 30000, {1}, {2}});
    g->restore("consumer", 4, std::string("range"), std::string("m1"), 500, ms);
    CHECK(g->state() == group_state::stable);
    CHECK(g->generation() == 4);
    sync_slot s;
    g->sync(sreq(4, "m1"), s.cb());
    CHECK(s.r.assignment == std::vector<uint8_t>{2});
    host.advance(10000);
    CHECK(g->members().empty());
    CHECK(g->state() == group_state::empty);
}

TEST_CASE("a join during CompletingRebalance fails parked syncs; old-generation commits pass until the rejoin") {
    test_host host;
    host.cfg.initial_rebalance_delay_ms = 0;
    auto g = std::make_shared<group>(host, "g", 0);
    join_slot ja;
    g->join(jreq("", "a"), ja.cb());
    host.advance(0);
    REQUIRE(ja.done);
    std::string a = ja.r.member_id;
    REQUIRE(g->state() == group_state::completing_rebalance);
    // A follower-less leader has not synced yet when a second member arrives: the
    // group goes back to PreparingRebalance and a SyncGroup for generation 1 is refused.
    join_slot jb;
    g->join(jreq("", "b"), jb.cb());
    CHECK(g->state() == group_state::preparing_rebalance);
    sync_slot sa;
    g->sync(sreq(1, a, {{a, {1}}}), sa.cb());
    REQUIRE(sa.done);
    CHECK(sa.r.error == E(error_code::rebalance_in_progress));
    CHECK(host.stores == 0);
    // The revoking member commits what it consumed before it rejoins (librdkafka's
    // on_revoke): accepted with the old generation while the group prepares.
    CHECK(g->validate_commit(1, a, std::nullopt) == 0);
    join_slot ja2;
    g->join(jreq(a, "a"), ja2.cb());
    REQUIRE(ja2.done);
    REQUIRE(jb.done);
    CHECK(ja2.r.generation_id == 2);
    CHECK(g->state() == group_state::completing_rebalance);
    // Between the join answers and the leader's SyncGroup, commits must wait.
    CHECK(g->validate_commit(2, a, std::nullopt) == E(error_code::rebalance_in_progress));
}
