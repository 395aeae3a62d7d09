#include "broker/replication/leader.h"

#include "base/log.h"
#include "broker/protocol/errors.h"
#include "broker/server.h"
#include "broker/shard.h"

#include <fmt/ranges.h>

#include <algorithm>

namespace sluice::broker::replication {
namespace {

constexpr std::string_view sub = "replication";

bool contains(const std::vector<int32_t>& v, int32_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }

void fail_waiters(partition& p, proto::error_code error) {
    auto waiters = std::move(p.leader.ack_waiters);
    p.leader.ack_waiters.clear();
    for (auto& w : waiters)
        if (!w.alive.expired()) w.done(static_cast<int16_t>(error));
}

// Sends an ISR change to ZooKeeper; the answer comes back on this shard. At most one
// change is in flight per partition.
void propose_isr(shard& sh, partition& p, std::vector<int32_t> isr, std::string_view why) {
    auto& l = p.leader;
    if (l.pending_isr) return;
    coord::partition_state next = l.state;
    next.isr = std::move(isr);
    l.pending_isr = next.isr;
    log::info(sub, "{}-{}: ISR [{}] -> [{}] ({})", p.id.topic, p.id.partition, fmt::join(l.state.isr, ","),
              fmt::join(next.isr, ","), why);
    shard* owner = &sh;
    topic_partition tp = p.id;
    int32_t based_on = l.state.zk_version;
    sh.srv().coordinator().update_isr(p.id.topic, p.id.partition, next, [owner, tp, based_on](bool ok) {
        if (ok) return;  // the snapshot that carries it clears pending_isr
        owner->post([owner, tp, based_on]() {
            partition* q = owner->find(tp);
            if (q != nullptr && q->leader.state.zk_version == based_on) q->leader.pending_isr.reset();
        });
    });
}

}  // namespace

void on_snapshot(shard& sh, partition& p, const std::vector<int32_t>& replicas, const coord::partition_state* st,
                 int64_t now_ms) {
    auto& l = p.leader;
    const int32_t me = sh.srv().config().broker_id;
    bool leads = st != nullptr && st->leader == me;
    if (!leads) {
        if (l.leading) log::info(sub, "{}-{}: no longer leader", p.id.topic, p.id.partition);
        l.leading = false;
        l.followers.clear();
        l.pending_isr.reset();
        if (st != nullptr) l.state = *st;
        l.replicas = replicas;
        fail_waiters(p, proto::error_code::not_leader_or_follower);
        return;
    }
    bool new_term = !l.leading || st->leader_epoch != l.state.leader_epoch;
    if (st->zk_version != l.state.zk_version) l.pending_isr.reset();  // our change landed, or another did
    l.state = *st;
    l.replicas = replicas;
    if (new_term) {
        // Kafka resets follower state on a leader change: positions are unknown until the
        // followers fetch, and nobody counts as lagging before replica.lag.time.max.ms.
        l.leading = true;
        l.followers.clear();
        l.epoch_start_offset = p.log->log_end_offset();
        log::info(sub, "{}-{}: leader at epoch {} from offset {}, ISR [{}]", p.id.topic, p.id.partition,
                  st->leader_epoch, l.epoch_start_offset, fmt::join(st->isr, ","));
    }
    for (int32_t r : replicas)
        if (r != me && !l.followers.count(r)) l.followers[r] = follower_progress{-1, now_ms};
    std::erase_if(l.followers, [&](const auto& f) { return !contains(replicas, f.first); });
    update_high_watermark(p);  // a smaller ISR (controller shrank it) may let it move
}

bool on_follower_fetch(shard& sh, partition& p, int32_t replica, int64_t fetch_offset, int64_t now_ms) {
    auto& l = p.leader;
    auto it = l.followers.find(replica);
    if (!l.leading || it == l.followers.end()) return false;
    const int64_t leader_end = p.log->log_end_offset();
    // A fetch outside our log says nothing about the follower's log (it is told
    // OFFSET_OUT_OF_RANGE and truncates or resets first).
    if (fetch_offset < p.log->log_start_offset() || fetch_offset > leader_end) return true;
    it->second.log_end = fetch_offset;
    if (fetch_offset >= leader_end) it->second.last_caught_up_ms = now_ms;
    // Kafka's isFollowerInSync for expansion: the follower has everything up to the high
    // watermark and has reached this leader epoch's start (it truncated what the old
    // leader may have had beyond).
    if (!contains(l.state.isr, replica) && !l.pending_isr && fetch_offset >= p.log->high_watermark() &&
        fetch_offset >= l.epoch_start_offset) {
        auto isr = l.state.isr;
        isr.push_back(replica);
        propose_isr(sh, p, std::move(isr), fmt::format("broker {} caught up at offset {}", replica, fetch_offset));
    }
    update_high_watermark(p);
    return true;
}

void update_high_watermark(partition& p) {
    auto& log = *p.log;
    // A follower's high watermark is the fetcher's business (the leader's, capped by its
    // own log end). A single-replica partition's is its log end, leader state or not.
    if (!p.leader.leading && p.leader.replicas.size() > 1) return;
    int64_t hw = log.log_end_offset();
    if (p.leader.leading && !p.leader.followers.empty()) {
        // The maximal ISR (snapshot ISR and a pending change), without building it: this
        // runs after every append.
        auto count = [&](int32_t r) {
            auto f = p.leader.followers.find(r);
            if (f != p.leader.followers.end()) hw = std::min(hw, f->second.log_end);
        };
        for (int32_t r : p.leader.state.isr) count(r);
        if (p.leader.pending_isr)
            for (int32_t r : *p.leader.pending_isr) count(r);
    }
    if (hw <= log.high_watermark()) return;
    log.set_high_watermark(hw);
    p.notify_appended();
    if (p.leader.ack_waiters.empty()) return;
    const auto isr_size = static_cast<int64_t>(p.leader.state.isr.size());
    std::vector<ack_waiter> due;
    std::erase_if(p.leader.ack_waiters, [&](ack_waiter& w) {
        if (w.alive.expired()) return true;
        if (w.offset > hw) return false;
        due.push_back(std::move(w));
        return true;
    });
    for (auto& w : due) {
        // Kafka's DelayedProduce: enough copies exist, but if the ISR shrank below
        // min.insync.replicas meanwhile the producer is told so.
        auto error = isr_size < w.min_insync ? proto::error_code::not_enough_replicas_after_append
                                             : proto::error_code::none;
        w.done(static_cast<int16_t>(error));
    }
}

void after_append(partition& p) {
    update_high_watermark(p);
    p.notify_appended();  // followers wait for appends, consumers for the high watermark
}

void wait_for_ack(partition& p, int64_t offset, int64_t min_insync, std::weak_ptr<void> alive,
                  std::function<void(int16_t)> done) {
    if (!p.leader.leading && p.leader.replicas.size() > 1)
        return done(static_cast<int16_t>(proto::error_code::not_leader_or_follower));
    if (p.log->high_watermark() >= offset) return done(0);
    p.leader.ack_waiters.push_back({offset, min_insync, std::move(alive), std::move(done)});
}

void expire_lagging(shard& sh, partition& p, int64_t now_ms, int64_t lag_ms) {
    auto& l = p.leader;
    if (!l.leading || l.pending_isr) return;
    const int64_t leader_end = p.log->log_end_offset();
    std::vector<int32_t> keep;
    std::vector<int32_t> dropped;
    for (int32_t r : l.state.isr) {
        auto f = l.followers.find(r);
        bool lagging = f != l.followers.end() && f->second.log_end != leader_end &&
                       now_ms - f->second.last_caught_up_ms > lag_ms;
        (lagging ? dropped : keep).push_back(r);
    }
    if (dropped.empty() || keep.empty()) return;
    propose_isr(sh, p, std::move(keep),
                fmt::format("broker(s) {} not caught up for {} ms", fmt::join(dropped, ","), lag_ms));
}

}  // namespace sluice::broker::replication
