#include "base/clock.h"
#include "broker/replication/replica_fetcher.h"

#include "base/log.h"
#include "broker/configs/config_table.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/header.h"
#include "broker/protocol/messages.h"
#include "broker/replication/fetch_plan.h"
#include "broker/replication/follower_ops.h"
#include "broker/replication/leader_link.h"
#include "broker/server.h"

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <optional>

namespace sluice::broker::replication {
namespace {

using proto::error_code;
using topic_partition = storage::topic_partition;

constexpr int16_t fetch_version = 12;        // the last version that names topics
constexpr int16_t list_offsets_version = 7;  // flexible, current_leader_epoch
constexpr int64_t shard_wait_ms = 10000;     // bound on one batch of shard work
constexpr int64_t warn_interval_ms = 30000;  // connection warnings per leader, at most
constexpr int64_t stale_retry_ms = 100;      // a newer snapshot is on its way
constexpr uint32_t response_bytes_max = 256u << 20;

int64_t steady_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
}

std::string name_of(int16_t code) { return std::string(proto::error_name(static_cast<error_code>(code))); }

struct settings {
    int32_t me = -1;
    int32_t max_wait_ms = 500;
    int32_t min_bytes = 1;
    int32_t max_bytes = 10485760;
    int32_t partition_max_bytes = 1048576;
    int64_t backoff_ms = 1000;
    int64_t socket_timeout_ms = 10500;
    endpoint_choice endpoints;
    std::string client_id;
};

settings read_settings(const broker_config& cfg) {
    auto key = [&](std::string_view k, int64_t def) { return configs::broker_long(cfg.raw, k, def); };
    settings s;
    s.me = cfg.broker_id;
    s.max_wait_ms = static_cast<int32_t>(std::clamp<int64_t>(key("replica.fetch.wait.max.ms", 500), 0, 60000));
    s.min_bytes = static_cast<int32_t>(std::clamp<int64_t>(key("replica.fetch.min.bytes", 1), 1, INT32_MAX));
    s.max_bytes = static_cast<int32_t>(
        std::clamp<int64_t>(key("replica.fetch.response.max.bytes", 10485760), 1024, INT32_MAX));
    s.partition_max_bytes =
        static_cast<int32_t>(std::clamp<int64_t>(key("replica.fetch.max.bytes", 1048576), 1024, INT32_MAX));
    s.backoff_ms = std::clamp<int64_t>(key("replica.fetch.backoff.ms", 1000), 10, 60000);
    // A leader holds a fetch up to max_wait_ms; anything much longer is a dead peer.
    s.socket_timeout_ms = std::max<int64_t>(key("replica.socket.timeout.ms", s.max_wait_ms + 10000), s.max_wait_ms + 1000);
    if (auto it = cfg.raw.find("inter.broker.listener.name"); it != cfg.raw.end()) s.endpoints.inter_broker_listener = it->second;
    if (!cfg.listeners.empty()) s.endpoints.own_first_listener = cfg.listeners.front().name;
    s.client_id = fmt::format("broker-{}-fetcher-0", cfg.broker_id);
    return s;
}

// One whole request frame (size prefix, header, body) built with the generated codec.
template <typename Message>
std::vector<uint8_t> encode_request(const Message& m, int16_t version, int32_t correlation_id,
                                    const std::string& client_id) {
    out_message frame;
    proto::writer w(frame);
    size_t prefix = w.begin_frame();
    proto::request_header h;
    h.api_key = Message::api_key;
    h.api_version = version;
    h.correlation_id = correlation_id;
    h.client_id = client_id;
    h.header_version = proto::request_header_version(Message::api_key, version);
    proto::encode_request_header(w, h);
    m.encode(w, version);
    w.end_frame(prefix);
    auto bytes = frame.memory_bytes();
    return {bytes.begin(), bytes.end()};
}

// `frame` starts with the correlation id; flexible versions then have the response
// header's tagged fields.
template <typename Message>
std::optional<Message> decode_response(std::span<const uint8_t> frame, int16_t version, int32_t correlation_id,
                                       std::string& why) {
    proto::reader r(frame);
    r.set_context(Message::api_key, version);
    if (r.read_int32() != correlation_id) {
        why = "correlation id mismatch";
        return std::nullopt;
    }
    if (proto::response_header_version(Message::api_key, version) == 1) r.read_tagged_fields([](uint32_t) { return false; });
    Message m;
    if (!m.decode(r, version) || !r.ok()) {
        why = r.error();
        return std::nullopt;
    }
    return m;
}

enum class phase {
    become,    // truncate to the high watermark before the first fetch
    fetch,
    latest,    // out of range: ask the leader's log end
    earliest,  // ... and then its log start
    failed,    // the local log cannot be written; waits for the next snapshot change
};

struct follow_entry {
    followed_partition id;
    phase ph = phase::become;
    int64_t fetch_offset = 0;
    int64_t log_start = 0;
    int64_t retry_at_ms = 0;
    int16_t logged_error = 0;  // the last per-partition error logged (one line per change)
    // What the last applied response carried: an idle partition's empty answers that
    // change neither are not posted to its shard.
    int64_t applied_high_watermark = -1;
    int64_t applied_leader_log_start = -1;
};

enum class request_kind { none, fetch, latest, earliest };

struct sent_partition {
    followed_partition id;
    int64_t fetch_offset;
};

// One connection to one leader broker and the partitions fetched over it.
struct link_state {
    enum class conn { down, connecting, ready, awaiting };
    int32_t leader = -1;
    leader_link socket;
    conn st = conn::down;
    coord::endpoint endpoint;
    int64_t retry_at_ms = 0;
    int64_t backoff_ms = 0;
    int64_t deadline_ms = 0;
    request_kind in_flight = request_kind::none;
    int32_t correlation_id = 0;
    std::map<topic_partition, sent_partition> sent;
    std::map<topic_partition, follow_entry> entries;
    int64_t last_warn_ms = INT64_MIN / 2;
    uint64_t failures_unreported = 0;
    bool no_endpoint_logged = false;
};

}  // namespace

// The fetcher thread's state and loop (the pimpl of replica_fetcher).
//
// Concurrency: update()/request_stop()/stats() from any thread; all else on the thread
// that runs run().
class fetcher_loop {
public:
    explicit fetcher_loop(server& srv) : _srv(srv), _cfg(read_settings(srv.config())) {
        _wake_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        SLUICE_ASSERT(_wake_fd >= 0, "eventfd: {}", errno);
    }
    ~fetcher_loop() { ::close(_wake_fd); }

    void update(std::shared_ptr<const coord::cluster_snapshot> snap) {
        {
            std::lock_guard g(_mu);
            _pending = std::move(snap);
        }
        wake();
    }
    void request_stop() {
        _stopping.store(true);
        wake();
    }
    replica_fetcher::counters stats() const {
        return {_fetches.load(), _bytes.load(), _batches.load(), _truncations.load(), _conn_failures.load()};
    }
    void run();

private:
    void wake() {
        uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(_wake_fd, &one, sizeof(one));
    }
    void adopt_pending();
    void adopt(std::shared_ptr<const coord::cluster_snapshot> snap);
    void drive(link_state& l, int64_t now);
    void connect(link_state& l, int64_t now);
    void fail(link_state& l, int64_t now, const std::string& what);
    void issue_request(link_state& l, int64_t now);
    void run_become(link_state& l, int64_t now);
    bool send_fetch(link_state& l, int64_t now);
    bool send_list_offsets(link_state& l, int64_t now, phase which);
    bool send(link_state& l, std::vector<uint8_t> frame, request_kind kind, int32_t corr, int64_t now);
    void on_readable(link_state& l, int64_t now);
    void handle_fetch(link_state& l, std::shared_ptr<std::vector<uint8_t>> frame, int64_t now);
    void handle_list_offsets(link_state& l, std::span<const uint8_t> frame, phase which, int64_t now);
    void partition_error(follow_entry& e, int16_t code, int64_t now);
    void note_outcome(follow_entry& e, const log_position& pos, int64_t now, const char* what);
    int poll_timeout_ms(int64_t now) const;

    using owner_work = std::pair<topic_partition, std::function<log_position(shard&)>>;
    // Runs each work item on its partition's owner shard (one post per shard) and waits,
    // bounded by shard_wait_ms and cut short by stop(). nullopt: no answer in time.
    std::vector<std::optional<log_position>> on_owners(std::vector<owner_work> work);

    server& _srv;
    const settings _cfg;
    int _wake_fd = -1;
    std::atomic<bool> _stopping{false};
    std::mutex _mu;
    std::shared_ptr<const coord::cluster_snapshot> _pending;  // guarded by _mu
    std::shared_ptr<const coord::cluster_snapshot> _snap;
    std::map<int32_t, std::unique_ptr<link_state>> _links;
    std::atomic<uint64_t> _fetches{0}, _bytes{0}, _batches{0}, _truncations{0}, _conn_failures{0};
};

std::vector<std::optional<log_position>> fetcher_loop::on_owners(std::vector<owner_work> work) {
    struct batch {
        std::vector<size_t> index;
        std::vector<std::function<log_position(shard&)>> fns;
    };
    std::map<unsigned, batch> by_shard;
    for (size_t i = 0; i < work.size(); ++i) {
        auto& b = by_shard[_srv.shard_of(work[i].first.topic, work[i].first.partition)];
        b.index.push_back(i);
        b.fns.push_back(std::move(work[i].second));
    }
    std::vector<std::pair<std::vector<size_t>, std::future<std::vector<log_position>>>> waits;
    for (auto& [id, b] : by_shard) {
        auto done = std::make_shared<std::promise<std::vector<log_position>>>();
        waits.emplace_back(std::move(b.index), done->get_future());
        shard* sh = &_srv.shard_at(id);
        sh->post([sh, done, fns = std::move(b.fns)]() {
            std::vector<log_position> out;
            out.reserve(fns.size());
            for (const auto& fn : fns) out.push_back(fn(*sh));
            done->set_value(std::move(out));
        });
    }
    std::vector<std::optional<log_position>> out(work.size());
    int64_t deadline = steady_ms() + shard_wait_ms;
    for (auto& [index, fut] : waits) {
        while (fut.wait_for(std::chrono::milliseconds(20)) != std::future_status::ready) {
            if (_stopping.load()) return out;
            if (steady_ms() > deadline) {
                log::warn("replication", "no answer from a shard within {} ms; retrying later", shard_wait_ms);
                return out;
            }
        }
        auto results = fut.get();
        for (size_t k = 0; k < index.size(); ++k) out[index[k]] = results[k];
    }
    return out;
}

void fetcher_loop::run() {
    log::info("replication", "replica fetcher started (replica.fetch.wait.max.ms={}, replica.fetch.max.bytes={}, "
                             "replica.fetch.response.max.bytes={})",
              _cfg.max_wait_ms, _cfg.partition_max_bytes, _cfg.max_bytes);
    if (int64_t n = configs::broker_long(_srv.config().raw, "num.replica.fetchers", 1); n != 1)
        log::info("replication", "num.replica.fetchers={} accepted: one thread serves every leader here (one "
                                 "connection each, multiplexed)", n);
    while (!_stopping.load()) {
        adopt_pending();
        int64_t now = steady_ms();
        for (auto& [id, l] : _links) {
            if (_stopping.load()) break;
            drive(*l, now);
        }
        std::vector<pollfd> fds{{_wake_fd, POLLIN, 0}};
        std::vector<link_state*> owners{nullptr};
        for (auto& [id, l] : _links) {
            if (l->st == link_state::conn::connecting) fds.push_back({l->socket.fd(), POLLOUT, 0});
            else if (l->st == link_state::conn::awaiting) fds.push_back({l->socket.fd(), POLLIN, 0});
            else continue;
            owners.push_back(l.get());
        }
        int rc = ::poll(fds.data(), fds.size(), poll_timeout_ms(steady_ms()));
        if (rc <= 0) continue;
        if (fds[0].revents & POLLIN) {
            uint64_t v;
            [[maybe_unused]] auto n = ::read(_wake_fd, &v, sizeof(v));
        }
        now = steady_ms();
        for (size_t i = 1; i < fds.size() && !_stopping.load(); ++i) {
            if (fds[i].revents == 0) continue;
            link_state& l = *owners[i];
            if (l.st == link_state::conn::connecting) {
                if (auto ec = l.socket.finish_connect()) {
                    fail(l, now, "connect: " + ec.message());
                    continue;
                }
                if (l.failures_unreported > 0 || l.backoff_ms > 0)
                    log::info("replication", "connected to leader {} at {}:{}", l.leader, l.endpoint.host, l.endpoint.port);
                l.st = link_state::conn::ready;
            } else {
                on_readable(l, now);
            }
        }
    }
    for (auto& [id, l] : _links) l->socket.close();
    _links.clear();
}

int fetcher_loop::poll_timeout_ms(int64_t now) const {
    int64_t next = now + 1000;
    for (const auto& [id, l] : _links) {
        switch (l->st) {
            case link_state::conn::down:
                if (!l->entries.empty()) next = std::min(next, l->retry_at_ms);
                break;
            case link_state::conn::connecting:
            case link_state::conn::awaiting: next = std::min(next, l->deadline_ms); break;
            case link_state::conn::ready:
                for (const auto& [tp, e] : l->entries)
                    if (e.ph != phase::failed) next = std::min(next, e.retry_at_ms);
                break;
        }
    }
    return static_cast<int>(std::clamp<int64_t>(next - now, 0, 1000));
}

void fetcher_loop::adopt_pending() {
    std::shared_ptr<const coord::cluster_snapshot> snap;
    {
        std::lock_guard g(_mu);
        snap = std::move(_pending);
        _pending.reset();
    }
    if (snap) adopt(std::move(snap));
}

void fetcher_loop::adopt(std::shared_ptr<const coord::cluster_snapshot> snap) {
    _snap = std::move(snap);
    auto plan = partitions_to_follow(*_snap, _cfg.me);
    for (auto it = _links.begin(); it != _links.end();) {
        auto& l = *it->second;
        auto want = plan.find(l.leader);
        std::map<topic_partition, followed_partition> next;
        if (want != plan.end())
            for (const auto& f : want->second) next.emplace(f.tp, f);
        for (auto e = l.entries.begin(); e != l.entries.end();) {
            auto n = next.find(e->first);
            if (n != next.end() && n->second == e->second.id) {
                ++e;
                continue;
            }
            log::info("replication", "{}-{}: stops following broker {} (leader epoch {}){}", e->first.topic,
                      e->first.partition, l.leader, e->second.id.leader_epoch,
                      n != next.end() ? fmt::format(": leader epoch now {}", n->second.leader_epoch) : "");
            e = l.entries.erase(e);
        }
        for (const auto& [tp, f] : next)
            if (!l.entries.count(tp)) l.entries.emplace(tp, follow_entry{f});
        // The leader re-registered elsewhere (a restart on another port): reconnect.
        auto b = _snap->brokers.find(l.leader);
        auto ep = b == _snap->brokers.end() ? std::nullopt : leader_endpoint(b->second, _cfg.endpoints);
        if (l.st != link_state::conn::down && (!ep || !(*ep == l.endpoint))) {
            l.socket.close();
            l.st = link_state::conn::down;
            l.retry_at_ms = 0;
        }
        if (l.entries.empty()) {
            it = _links.erase(it);
            continue;
        }
        if (want != plan.end()) plan.erase(want);
        ++it;
    }
    for (const auto& [leader, parts] : plan) {
        auto l = std::make_unique<link_state>();
        l->leader = leader;
        for (const auto& f : parts) l->entries.emplace(f.tp, follow_entry{f});
        _links.emplace(leader, std::move(l));
    }
}

void fetcher_loop::drive(link_state& l, int64_t now) {
    switch (l.st) {
        case link_state::conn::down:
            if (!l.entries.empty() && now >= l.retry_at_ms) connect(l, now);
            break;
        case link_state::conn::connecting:
            if (now > l.deadline_ms) fail(l, now, "connect timed out");
            break;
        case link_state::conn::awaiting:
            if (now > l.deadline_ms) fail(l, now, fmt::format("no response within {} ms", _cfg.socket_timeout_ms));
            break;
        case link_state::conn::ready: issue_request(l, now); break;
    }
}

void fetcher_loop::connect(link_state& l, int64_t now) {
    std::optional<coord::endpoint> ep;
    if (_snap)
        if (auto b = _snap->brokers.find(l.leader); b != _snap->brokers.end()) ep = leader_endpoint(b->second, _cfg.endpoints);
    if (!ep || ep->security_protocol != "PLAINTEXT") {
        if (!l.no_endpoint_logged)
            log::warn("replication", "leader {} has no {} endpoint this broker can fetch from{}; its partitions "
                                     "are not replicated here",
                      l.leader, _cfg.endpoints.inter_broker_listener.empty() ? "PLAINTEXT" : _cfg.endpoints.inter_broker_listener,
                      ep ? " (SSL between brokers is not supported)" : "");
        l.no_endpoint_logged = true;
        l.retry_at_ms = now + 5000;  // re-checked when a snapshot brings new endpoints
        return;
    }
    l.no_endpoint_logged = false;
    l.endpoint = *ep;
    if (auto ec = l.socket.connect(ep->host, ep->port)) return fail(l, now, "connect: " + ec.message());
    l.st = link_state::conn::connecting;
    l.deadline_ms = now + std::min<int64_t>(_cfg.socket_timeout_ms, 5000);
}

void fetcher_loop::fail(link_state& l, int64_t now, const std::string& what) {
    l.socket.close();
    l.st = link_state::conn::down;
    l.in_flight = request_kind::none;
    l.sent.clear();
    l.backoff_ms = std::clamp<int64_t>(l.backoff_ms * 2, 200, 2000);
    l.retry_at_ms = now + l.backoff_ms;
    ++_conn_failures;
    ++l.failures_unreported;
    // One line per leader per warn_interval_ms: a dead leader must not flood the log.
    if (now - l.last_warn_ms >= warn_interval_ms) {
        log::warn("replication", "leader {} at {}:{}: {} ({} failure{} since the last report); retrying every {} ms at most",
                  l.leader, l.endpoint.host, l.endpoint.port, what, l.failures_unreported,
                  l.failures_unreported == 1 ? "" : "s", l.backoff_ms);
        l.last_warn_ms = now;
        l.failures_unreported = 0;
    }
}

void fetcher_loop::issue_request(link_state& l, int64_t now) {
    run_become(l, now);
    if (_stopping.load() || l.st != link_state::conn::ready) return;
    if (send_list_offsets(l, now, phase::latest)) return;
    if (send_list_offsets(l, now, phase::earliest)) return;
    send_fetch(l, now);
}

void fetcher_loop::run_become(link_state& l, int64_t now) {
    std::vector<owner_work> work;
    std::vector<follow_entry*> who;
    for (auto& [tp, e] : l.entries) {
        if (e.ph != phase::become || e.retry_at_ms > now) continue;
        work.push_back({tp, [id = e.id](shard& sh) { return become_follower(sh, id); }});
        who.push_back(&e);
    }
    if (work.empty()) return;
    auto results = on_owners(std::move(work));
    for (size_t i = 0; i < who.size(); ++i) {
        auto& e = *who[i];
        if (!results[i]) {
            e.retry_at_ms = now + _cfg.backoff_ms;
            continue;
        }
        note_outcome(e, *results[i], now, "becoming a follower");
        if (results[i]->status != op_status::ok) continue;
        e.ph = phase::fetch;
        log::info("replication", "{}-{}: follows broker {} (leader epoch {}) from offset {} (log start {}){}",
                  e.id.tp.topic, e.id.tp.partition, e.id.leader, e.id.leader_epoch, e.fetch_offset, e.log_start,
                  results[i]->truncated > 0
                      ? fmt::format("; truncated {} offsets past the high watermark", results[i]->truncated)
                      : "");
    }
}

// Records what a shard operation left in the log, or backs the partition off.
void fetcher_loop::note_outcome(follow_entry& e, const log_position& pos, int64_t now, const char* what) {
    switch (pos.status) {
        case op_status::ok:
            e.fetch_offset = pos.log_end;
            e.log_start = pos.log_start;
            if (pos.truncated > 0) {
                ++_truncations;
                e.applied_high_watermark = -1;  // truncation may have lowered the high watermark
            }
            return;
        case op_status::stale: e.retry_at_ms = now + stale_retry_ms; return;
        case op_status::not_hosted:
            e.retry_at_ms = now + _cfg.backoff_ms;
            return;
        case op_status::invalid:
            log::warn("replication", "{}-{}: {}: the leader's batches were refused ({}); retrying in {} ms",
                      e.id.tp.topic, e.id.tp.partition, what, pos.error.message(), _cfg.backoff_ms);
            e.retry_at_ms = now + _cfg.backoff_ms;
            return;
        case op_status::storage_error:
            log::error("replication", "{}-{}: {}: storage error ({}); not fetched until its leadership changes",
                       e.id.tp.topic, e.id.tp.partition, what, pos.error.message());
            e.ph = phase::failed;
            return;
    }
}

bool fetcher_loop::send(link_state& l, std::vector<uint8_t> frame, request_kind kind, int32_t corr, int64_t now) {
    if (auto ec = l.socket.send_frame(frame, static_cast<int>(_cfg.socket_timeout_ms), _stopping)) {
        fail(l, now, "send: " + ec.message());
        return false;
    }
    l.in_flight = kind;
    l.correlation_id = corr;
    l.st = link_state::conn::awaiting;
    l.deadline_ms = now + _cfg.socket_timeout_ms;
    return true;
}

bool fetcher_loop::send_fetch(link_state& l, int64_t now) {
    proto::fetch_request m;
    m.replica_id = _cfg.me;
    m.max_wait_ms = _cfg.max_wait_ms;
    m.min_bytes = _cfg.min_bytes;
    m.max_bytes = _cfg.max_bytes;
    m.isolation_level = 0;
    m.session_id = 0;  // no fetch sessions: every request is a full fetch
    m.session_epoch = -1;
    l.sent.clear();
    for (auto& [tp, e] : l.entries) {
        if (e.ph != phase::fetch || e.retry_at_ms > now) continue;
        if (m.topics.empty() || m.topics.back().topic != tp.topic) m.topics.push_back({tp.topic, {}, {}});
        proto::fetch_request::fetch_partition p;
        p.partition = tp.partition;
        p.current_leader_epoch = e.id.leader_epoch;
        p.fetch_offset = e.fetch_offset;
        p.log_start_offset = e.log_start;
        p.partition_max_bytes = _cfg.partition_max_bytes;
        m.topics.back().partitions.push_back(p);
        l.sent.emplace(tp, sent_partition{e.id, e.fetch_offset});
    }
    if (l.sent.empty()) return false;
    int32_t corr = l.socket.next_correlation_id();
    if (!send(l, encode_request(m, fetch_version, corr, _cfg.client_id), request_kind::fetch, corr, now)) return false;
    ++_fetches;
    return true;
}

bool fetcher_loop::send_list_offsets(link_state& l, int64_t now, phase which) {
    proto::list_offsets_request m;
    m.replica_id = _cfg.me;
    m.isolation_level = 0;
    l.sent.clear();
    for (auto& [tp, e] : l.entries) {
        if (e.ph != which || e.retry_at_ms > now) continue;
        if (m.topics.empty() || m.topics.back().name != tp.topic) m.topics.push_back({tp.topic, {}});
        proto::list_offsets_request::list_offsets_partition p;
        p.partition_index = tp.partition;
        p.current_leader_epoch = e.id.leader_epoch;
        p.timestamp = which == phase::latest ? -1 : -2;
        m.topics.back().partitions.push_back(p);
        l.sent.emplace(tp, sent_partition{e.id, e.fetch_offset});
    }
    if (l.sent.empty()) return false;
    int32_t corr = l.socket.next_correlation_id();
    auto kind = which == phase::latest ? request_kind::latest : request_kind::earliest;
    return send(l, encode_request(m, list_offsets_version, corr, _cfg.client_id), kind, corr, now);
}

void fetcher_loop::on_readable(link_state& l, int64_t now) {
    auto got = l.socket.read_some(response_bytes_max);
    if (!got) return fail(l, now, "receive: " + got.error().message());
    if (!*got) return;
    auto frame = l.socket.take_frame();
    auto kind = l.in_flight;
    l.in_flight = request_kind::none;
    l.st = link_state::conn::ready;
    if (kind == request_kind::fetch) handle_fetch(l, std::move(frame), now);
    else handle_list_offsets(l, *frame, kind == request_kind::latest ? phase::latest : phase::earliest, now);
    l.sent.clear();
}

// The entry a response partition belongs to, if it is still the one the request was for.
static follow_entry* current_entry(link_state& l, const topic_partition& tp, phase expected) {
    auto s = l.sent.find(tp);
    auto e = l.entries.find(tp);
    if (s == l.sent.end() || e == l.entries.end()) return nullptr;
    if (!(e->second.id == s->second.id) || e->second.ph != expected || e->second.fetch_offset != s->second.fetch_offset)
        return nullptr;
    return &e->second;
}

void fetcher_loop::partition_error(follow_entry& e, int16_t code, int64_t now) {
    if (code == proto::to_wire(error_code::offset_out_of_range)) {
        log::info("replication", "{}-{}: offset {} is out of range on broker {}; asking for its log end",
                  e.id.tp.topic, e.id.tp.partition, e.fetch_offset, e.id.leader);
        e.ph = phase::latest;
        return;
    }
    // NOT_LEADER_OR_FOLLOWER, FENCED/UNKNOWN_LEADER_EPOCH, UNKNOWN_TOPIC_OR_PARTITION:
    // the leader's view and ours differ, usually because one of us has not seen the
    // latest ZooKeeper state yet. Retried after replica.fetch.backoff.ms; the next
    // snapshot that changes the partition replaces this entry anyway.
    e.retry_at_ms = now + _cfg.backoff_ms;
    if (e.logged_error == code) return;
    e.logged_error = code;
    log::info("replication", "{}-{}: broker {} answered {} (leader epoch {}); retrying every {} ms", e.id.tp.topic,
              e.id.tp.partition, e.id.leader, name_of(code), e.id.leader_epoch, _cfg.backoff_ms);
}

void fetcher_loop::handle_fetch(link_state& l, std::shared_ptr<std::vector<uint8_t>> frame, int64_t now) {
    std::string why;
    auto resp = decode_response<proto::fetch_response>(*frame, fetch_version, l.correlation_id, why);
    if (!resp) return fail(l, now, "undecodable Fetch response: " + why);
    l.backoff_ms = 0;  // the connection works; the next failure backs off from 200 ms again
    if (resp->error_code != 0) {
        for (auto& [tp, s] : l.sent)
            if (auto* e = current_entry(l, tp, phase::fetch)) partition_error(*e, resp->error_code, now);
        return;
    }
    std::vector<owner_work> work;
    std::vector<follow_entry*> who;
    for (const auto& t : resp->responses) {
        for (const auto& p : t.partitions) {
            follow_entry* e = current_entry(l, {t.topic, p.partition_index}, phase::fetch);
            if (e == nullptr) continue;
            if (p.error_code != 0) {
                partition_error(*e, p.error_code, now);
                continue;
            }
            e->logged_error = 0;
            if (p.records.view.empty() && p.high_watermark == e->applied_high_watermark &&
                p.log_start_offset == e->applied_leader_log_start)
                continue;
            e->applied_high_watermark = p.high_watermark;
            e->applied_leader_log_start = p.log_start_offset;
            fetched_partition f{e->id, frame, p.records.view, p.high_watermark, p.log_start_offset};
            work.push_back({e->id.tp, [f = std::move(f), ms = wall_ms()](shard& sh) { return apply_fetched(sh, f, ms); }});
            who.push_back(e);
        }
    }
    if (work.empty()) return;
    auto results = on_owners(std::move(work));
    for (size_t i = 0; i < who.size(); ++i) {
        if (!results[i] || results[i]->status != op_status::ok) who[i]->applied_high_watermark = -1;  // post again
        if (!results[i]) continue;
        note_outcome(*who[i], *results[i], now, "append");
        _bytes += results[i]->bytes;
        _batches += static_cast<uint64_t>(results[i]->batches);
    }
}

void fetcher_loop::handle_list_offsets(link_state& l, std::span<const uint8_t> frame, phase which, int64_t now) {
    std::string why;
    auto resp = decode_response<proto::list_offsets_response>(frame, list_offsets_version, l.correlation_id, why);
    if (!resp) return fail(l, now, "undecodable ListOffsets response: " + why);
    std::vector<owner_work> work;
    std::vector<std::pair<follow_entry*, int64_t>> who;
    for (const auto& t : resp->topics) {
        for (const auto& p : t.partitions) {
            follow_entry* e = current_entry(l, {t.name, p.partition_index}, which);
            if (e == nullptr) continue;
            if (p.error_code != 0) {
                partition_error(*e, p.error_code, now);
                continue;
            }
            if (which == phase::latest && p.offset < e->fetch_offset) {
                // Our log runs past the leader's: those records were never committed.
                work.push_back({e->id.tp, [id = e->id, to = p.offset](shard& sh) { return truncate_follower(sh, id, to); }});
                who.push_back({e, p.offset});
            } else if (which == phase::latest) {
                e->ph = phase::earliest;
            } else if (p.offset > e->fetch_offset) {
                // Our log ends below the leader's log start: nothing to keep.
                work.push_back({e->id.tp, [id = e->id](shard& sh) { return empty_follower(sh, id); }});
                who.push_back({e, p.offset});
            } else {
                e->ph = phase::fetch;  // in range by now (the leader's log moved): fetch again
                e->retry_at_ms = now + _cfg.backoff_ms;
            }
        }
    }
    if (work.empty()) return;
    auto results = on_owners(std::move(work));
    for (size_t i = 0; i < who.size(); ++i) {
        auto& [e, leader_offset] = who[i];
        if (!results[i]) {
            e->retry_at_ms = now + _cfg.backoff_ms;
            continue;
        }
        note_outcome(*e, *results[i], now, which == phase::latest ? "truncation" : "emptying the log");
        if (results[i]->status != op_status::ok) continue;
        e->ph = phase::fetch;
        if (which == phase::latest) {
            log::info("replication", "{}-{}: truncated {} offsets: our log ran past broker {}'s end {}; fetching from {}",
                      e->id.tp.topic, e->id.tp.partition, results[i]->truncated, e->id.leader, leader_offset,
                      e->fetch_offset);
        } else {
            log::info("replication", "{}-{}: emptied the log ({} offsets): it ended below broker {}'s log start {}; "
                                     "fetching from there",
                      e->id.tp.topic, e->id.tp.partition, results[i]->truncated, e->id.leader, leader_offset);
            e->fetch_offset = leader_offset;
        }
    }
}

replica_fetcher::replica_fetcher(server& srv) : _loop(std::make_unique<fetcher_loop>(srv)) {}

replica_fetcher::~replica_fetcher() { stop(); }

void replica_fetcher::start() {
    SLUICE_ASSERT(!_started, "replica fetcher started twice");
    _started = true;
    _thread = std::thread([this] { _loop->run(); });
    ::pthread_setname_np(_thread.native_handle(), "sluice-fetcher");
}

void replica_fetcher::update(std::shared_ptr<const coord::cluster_snapshot> snap) { _loop->update(std::move(snap)); }

void replica_fetcher::stop() {
    if (_stopped) return;
    _stopped = true;
    _loop->request_stop();
    if (_thread.joinable()) _thread.join();
    if (!_started) return;
    auto s = stats();
    log::info("replication", "replica fetcher stopped: {} fetches, {} batches ({} bytes) replicated, {} truncations, "
                             "{} connection failures",
              s.fetches, s.batches_replicated, s.bytes_replicated, s.truncations, s.connection_failures);
}

replica_fetcher::counters replica_fetcher::stats() const { return _loop->stats(); }

}  // namespace sluice::broker::replication
