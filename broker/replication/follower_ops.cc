#include "broker/replication/follower_ops.h"

#include "base/log.h"
#include "broker/producer_state.h"
#include "broker/server.h"
#include "broker/shard.h"

#include <algorithm>

namespace sluice::broker::replication {
namespace {

// Whether the shard's snapshot still has this broker following id.leader at
// id.leader_epoch. The shard received every snapshot before the fetcher did, so a
// mismatch means the fetcher's work is out of date.
bool still_following(shard& sh, const followed_partition& id) {
    const auto& snap = *sh.metadata();
    auto t = snap.topics.find(id.tp.topic);
    if (t == snap.topics.end() || t->second->topic_id != id.topic_id || t->second->marked_for_deletion) return false;
    auto st = t->second->partitions.find(id.tp.partition);
    if (st == t->second->partitions.end()) return false;
    return st->second.leader == id.leader && st->second.leader_epoch == id.leader_epoch &&
           id.leader != sh.srv().config().broker_id;
}

// The partition to work on, or the status that says why not.
partition* checked(shard& sh, const followed_partition& id, log_position& out) {
    partition* p = sh.find(id.tp);
    if (p == nullptr || p->topic_id != id.topic_id) {
        out.status = op_status::not_hosted;
        return nullptr;
    }
    if (!still_following(sh, id)) {
        out.status = op_status::stale;
        return nullptr;
    }
    return p;
}

void fill_position(const storage::partition_log& log, log_position& out) {
    out.log_start = log.log_start_offset();
    out.log_end = log.log_end_offset();
    out.high_watermark = log.high_watermark();
}

log_position truncate_checked(shard& sh, partition& p, int64_t offset) {
    log_position out;
    auto& log = *p.log;
    int64_t before = log.log_end_offset();
    if (offset < before) {
        if (auto ec = log.truncate_to(offset)) {
            out.status = op_status::storage_error;
            out.error = ec;
        }
        sh.note_use(p);
    }
    fill_position(log, out);
    out.truncated = before - out.log_end;
    return out;
}

}  // namespace

log_position become_follower(shard& sh, const followed_partition& id) {
    log_position out;
    partition* p = checked(sh, id, out);
    if (p == nullptr) return out;
    return truncate_checked(sh, *p, p->log->high_watermark());
}

log_position truncate_follower(shard& sh, const followed_partition& id, int64_t offset) {
    log_position out;
    partition* p = checked(sh, id, out);
    if (p == nullptr) return out;
    return truncate_checked(sh, *p, std::max<int64_t>(offset, 0));
}

log_position empty_follower(shard& sh, const followed_partition& id) {
    log_position out;
    partition* p = checked(sh, id, out);
    if (p == nullptr) return out;
    // truncate_to at the first segment's base restarts the log empty with one fresh
    // segment there (a cut inside a segment would keep whole batches below it); that
    // empty segment takes the leader's first batch at any higher offset, and
    // apply_fetched then moves the log start up to the leader's.
    return truncate_checked(sh, *p, p->log->segments().front()->base_offset());
}

log_position apply_fetched(shard& sh, const fetched_partition& f, int64_t now_ms) {
    log_position out;
    partition* p = checked(sh, f.id, out);
    if (p == nullptr) return out;
    auto& log = *p->log;
    auto span = whole_batches(f.records, log.log_end_offset());
    if (span.malformed && span.bytes == 0) {
        out.status = op_status::invalid;
        out.error = storage::log_errc::corrupt_message;
        fill_position(log, out);
        return out;
    }
    if (span.bytes > 0) {
        // A batch that straddles our log end (our last batch ended inside one of the
        // leader's): the leader's copy wins, so ours goes first.
        if (span.first_base < log.log_end_offset()) {
            out = truncate_checked(sh, *p, span.first_base);
            if (out.status != op_status::ok) return out;
        }
        auto r = log.append_replicated(f.records.subspan(span.skip_bytes, span.bytes), now_ms);
        if (r.error != storage::log_errc::ok) {
            out.status = r.error == storage::log_errc::storage_error ? op_status::storage_error : op_status::invalid;
            out.error = r.io_error ? r.io_error : storage::make_error_code(r.error);
            fill_position(log, out);
            return out;
        }
        // Producer sequences travel with the batches: after a failover this replica, as
        // leader, answers a retried batch with its original offset (broker/producer_state.h).
        remember_replicated(*p, f.records.subspan(span.skip_bytes, span.bytes));
        out.bytes = span.bytes;
        out.batches = span.batches;
    }
    log.set_high_watermark(std::min(f.leader_high_watermark, log.log_end_offset()));
    // DeleteRecords and retention on the leader move its log start; the follower
    // follows once it holds that offset (advance_log_start refuses past the log end).
    if (f.leader_log_start > log.log_start_offset() && f.leader_log_start <= log.log_end_offset()) {
        if (auto ec = log.advance_log_start(f.leader_log_start, now_ms))
            log::warn("replication", "{}-{}: cannot move log start to the leader's {}: {}", f.id.tp.topic,
                      f.id.tp.partition, f.leader_log_start, ec.message());
    }
    sh.note_use(*p);
    p->notify_appended();
    fill_position(log, out);
    return out;
}

}  // namespace sluice::broker::replication
