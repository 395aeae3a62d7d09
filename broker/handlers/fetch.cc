// Fetch (key 1). Each partition is read on the shard that owns it: the read returns
// file slices of whole batches (no record bytes are copied), which the connection
// sends zero-copy or one-copy (net/send_strategy.h). If fewer than min_bytes are
// available, the request is parked: a waiter on every partition it reads (woken by the
// next append) and a max_wait_ms timer on the connection's shard; whichever comes first
// re-runs the read (and parks again while the wait lasts). Nothing blocks, nothing polls.
//
// A Fetch with a replica id >= 0 comes from a follower (broker/replication/leader.h):
// it reads up to the log end rather than the high watermark, and its fetch offset tells
// the leader how far that follower has come.
//
// Sessions (KIP-227) are not implemented: every response is a full response with
// session id 0, which is what librdkafka, kafka-python and kafkajs ask for.
#include "base/clock.h"
#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/replication/leader.h"
#include "broker/server.h"
#include "broker/topics.h"

#include <chrono>
#include <map>

namespace sluice::broker {
namespace {

using proto::error_code;

struct read_ref {
    size_t topic_i;
    size_t part_i;
    topic_partition tp;
    int64_t fetch_offset;
    int32_t max_bytes;
    int32_t current_leader_epoch;
    int32_t replica_id;  // >= 0: a follower's fetch
};

struct read_outcome {
    int16_t error = 0;
    int64_t high_watermark = -1;
    int64_t log_start_offset = -1;
    std::vector<file_slice> slices;
    uint64_t bytes = 0;
};

read_outcome read_on_owner(shard& sh, const read_ref& ref) {
    partition* p = sh.find(ref.tp);
    if (p == nullptr) return {static_cast<int16_t>(error_code::not_leader_or_follower)};
    if (ref.current_leader_epoch >= 0 && ref.current_leader_epoch != p->leader_epoch) {
        auto e = ref.current_leader_epoch > p->leader_epoch ? error_code::unknown_leader_epoch
                                                            : error_code::fenced_leader_epoch;
        return {static_cast<int16_t>(e)};
    }
    const auto& log = *p->log;
    if (ref.replica_id >= 0 && !replication::on_follower_fetch(sh, *p, ref.replica_id, ref.fetch_offset, wall_ms()))
        return {static_cast<int16_t>(error_code::not_leader_or_follower)};
    // Consumers read up to the high watermark; with no transactions the last stable
    // offset is the high watermark, so read_committed and read_uncommitted agree.
    // Followers read up to the log end.
    auto r = log.read(ref.fetch_offset, ref.max_bytes, true, ref.replica_id >= 0 ? -1 : log.high_watermark());
    read_outcome out;
    out.high_watermark = log.high_watermark();
    out.log_start_offset = log.log_start_offset();
    if (r.error != storage::log_errc::ok) {
        out.error = storage::kafka_error_code(r.error);
        return out;
    }
    out.slices = std::move(r.slices);
    out.bytes = r.total_bytes;
    sh.note_use(*p);  // LRU clock and open-descriptor count of the fd budget
    return out;
}

// Registers `wake` to run (on the origin shard) after the next append to any of refs.
void park_on_owner(shard& sh, const std::vector<read_ref>& refs, std::weak_ptr<void> owner_alive,
                   std::function<void()> wake) {
    for (const auto& ref : refs) {
        partition* p = sh.find(ref.tp);
        if (p != nullptr) p->add_append_waiter(owner_alive, wake);
    }
}

class fetch_op : public std::enable_shared_from_this<fetch_op> {
public:
    fetch_op(request_ptr req, std::shared_ptr<proto::fetch_request> body)
        : _req(std::move(req)), _body(std::move(body)), _srv(_req->srv()) {}

    void start() {
        build_skeleton();
        read_round();
    }

private:
    void build_skeleton() {
        shard& sh = _req->sh();
        const auto snap = sh.metadata();
        bool by_id = _req->version() >= 13;
        const int32_t replica_id = _req->version() >= 15 ? _body->replica_state.replica_id : _body->replica_id;
        for (size_t ti = 0; ti < _body->topics.size(); ++ti) {
            const auto& ft = _body->topics[ti];
            const coord::topic_info* t = by_id ? find_topic_by_id(*snap, ft.topic_id) : find_topic(*snap, ft.topic);
            proto::fetch_response::fetchable_topic_response tr;
            tr.topic = t ? t->name : ft.topic;
            tr.topic_id = ft.topic_id;
            for (size_t pi = 0; pi < ft.partitions.size(); ++pi) {
                const auto& fp = ft.partitions[pi];
                proto::fetch_response::partition_data pd;
                pd.partition_index = fp.partition;
                pd.high_watermark = -1;
                pd.last_stable_offset = -1;
                pd.records = proto::records::of({});
                if (t == nullptr) {
                    pd.error_code = static_cast<int16_t>(by_id ? error_code::unknown_topic_id
                                                               : error_code::unknown_topic_or_partition);
                } else {
                    auto lead = check_leader(sh, t->name, fp.partition);
                    if (lead == leadership::leader) {
                        _refs[_srv.shard_of(t->name, fp.partition)].push_back(
                            {ti, pi, {t->name, fp.partition}, fp.fetch_offset, fp.partition_max_bytes,
                             fp.current_leader_epoch, replica_id});
                    } else {
                        pd.error_code = static_cast<int16_t>(lead == leadership::unknown_partition
                                                                 ? error_code::unknown_topic_or_partition
                                                                 : error_code::not_leader_or_follower);
                    }
                }
                tr.partitions.push_back(std::move(pd));
            }
            _resp.responses.push_back(std::move(tr));
        }
    }

    void read_round() {
        if (_refs.empty()) return finish();
        _pending = _refs.size();
        _reading = true;
        _round_bytes = 0;
        _round_error = false;
        auto self = shared_from_this();
        for (const auto& [target, refs] : _refs) {
            _srv.invoke_on(
                _req->sh().id(), target,
                [refs](shard& owner) {
                    std::vector<read_outcome> out;
                    out.reserve(refs.size());
                    for (const auto& ref : refs) out.push_back(read_on_owner(owner, ref));
                    return out;
                },
                [self, target](std::vector<read_outcome> out) { self->read_done(target, std::move(out)); });
        }
    }

    void read_done(unsigned target, std::vector<read_outcome> out) {
        const auto& refs = _refs[target];
        for (size_t i = 0; i < out.size(); ++i) {
            auto& pd = _resp.responses[refs[i].topic_i].partitions[refs[i].part_i];
            pd.error_code = out[i].error;
            pd.high_watermark = out[i].high_watermark;
            pd.last_stable_offset = out[i].high_watermark;
            pd.log_start_offset = out[i].log_start_offset;
            pd.records = proto::records::of({});
            for (auto& s : out[i].slices) pd.records.append(std::move(s));
            _round_bytes += out[i].bytes;
            if (out[i].error != 0) _round_error = true;
        }
        if (--_pending > 0) return;
        _reading = false;
        bool enough = _round_bytes >= static_cast<uint64_t>(std::max(_body->min_bytes, 1)) ||
                      _round_error || _body->max_wait_ms <= 0;
        // Woken by an append that did not move the high watermark (or moved it too
        // little): park again until max_wait_ms has passed.
        if (enough || (_waited && _timer == 0)) return finish();
        park();
    }

    void park() {
        auto self = shared_from_this();
        auto& origin = _req->sh();
        std::weak_ptr<fetch_op> weak = self;
        _woken = false;
        // A fresh token per parking: waiters of an earlier one expire with it.
        _park_token = std::make_shared<int>(0);
        std::weak_ptr<void> token = _park_token;
        auto wake = [weak, token, &origin]() {
            origin.post([weak, token]() {
                auto op = weak.lock();
                if (op && !token.expired()) op->wake();
            });
        };
        if (!_waited)
            _timer = origin.reactor().add_timer(std::chrono::milliseconds(_body->max_wait_ms), [self]() {
                self->_timer = 0;
                if (self->_reading) return;  // that read's answer sees the timer gone and finishes
                self->_woken = false;
                self->wake();
            });
        _waited = true;
        for (const auto& [target, refs] : _refs) {
            _srv.invoke_on(
                origin.id(), target,
                [refs, token, wake](shard& owner) {
                    park_on_owner(owner, refs, token, wake);
                    return 0;
                },
                [](int) {});
        }
    }

    void wake() {
        if (_finished || _woken) return;
        _woken = true;
        _park_token.reset();
        read_round();
    }

    void finish() {
        if (_finished) return;
        _finished = true;
        _park_token.reset();
        if (_timer != 0) {
            _req->sh().reactor().cancel_timer(_timer);
            _timer = 0;
        }
        trim_to_max_bytes();
        _req->respond(_resp);
    }

    // Partitions are read in parallel with their own limits; the response as a whole
    // honours max_bytes by dropping data of later partitions (the first non-empty one
    // is always kept, KIP-74). Dropped partitions are simply fetched again.
    void trim_to_max_bytes() {
        uint64_t limit = static_cast<uint64_t>(std::max(_body->max_bytes, 0));
        uint64_t total = 0;
        for (auto& tr : _resp.responses)
            for (auto& pd : tr.partitions) {
                uint64_t n = pd.records.size();
                if (n == 0) continue;
                if (total > 0 && total + n > limit) {
                    pd.records = proto::records::of({});
                    continue;
                }
                total += n;
            }
    }

    request_ptr _req;
    std::shared_ptr<proto::fetch_request> _body;
    server& _srv;
    proto::fetch_response _resp;
    std::map<unsigned, std::vector<read_ref>> _refs;
    size_t _pending = 0;
    uint64_t _round_bytes = 0;
    bool _round_error = false;
    bool _waited = false;
    bool _woken = false;
    bool _reading = false;
    bool _finished = false;
    uint64_t _timer = 0;
    std::shared_ptr<void> _park_token;  // alive while parked; append waiters hold it weakly
};

}  // namespace

void handle_fetch(request_ptr req) {
    auto body = std::make_shared<proto::fetch_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("fetch", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed Fetch request");
    }
    std::make_shared<fetch_op>(std::move(req), std::move(body))->start();
}

}  // namespace sluice::broker
