#include "broker/groups/group.h"

#include "base/assert.h"
#include "base/log.h"
#include "broker/protocol/errors.h"

#include <algorithm>

namespace sluice::broker::groups {
namespace {

using proto::error_code;
constexpr int16_t err(error_code e) { return static_cast<int16_t>(e); }

join_result join_error(int16_t e, const std::string& member_id) {
    join_result r;
    r.error = e;
    r.member_id = member_id;
    return r;
}

sync_result sync_error(int16_t e) {
    sync_result r;
    r.error = e;
    return r;
}

}  // namespace

std::string_view state_name(group_state s) {
    switch (s) {
        case group_state::empty: return "Empty";
        case group_state::preparing_rebalance: return "PreparingRebalance";
        case group_state::completing_rebalance: return "CompletingRebalance";
        case group_state::stable: return "Stable";
        case group_state::dead: return "Dead";
    }
    return "Unknown";
}

const std::vector<uint8_t>* member_state::metadata_for(const std::string& protocol) const {
    for (const auto& p : protocols)
        if (p.name == protocol) return &p.metadata;
    return nullptr;
}

group::group(group_host& host, std::string id, int32_t offsets_partition)
    : _host(host), _id(std::move(id)), _offsets_partition(offsets_partition), _state_timestamp(host.now_ms()) {}

group::~group() {
    for (auto& [id, m] : _members) _host.cancel(m.heartbeat_timer);
    for (auto& [id, t] : _pending) _host.cancel(t);
    _host.cancel(_rebalance_timer);
    _host.cancel(_sync_timer);
}

void group::transition(group_state to) {
    _state = to;
    _state_timestamp = _host.now_ms();
}

// ---- JoinGroup --------------------------------------------------------------------

int16_t group::check_join(const join_request& req) const {
    const auto& cfg = _host.config();
    if (req.session_timeout_ms < cfg.min_session_timeout_ms || req.session_timeout_ms > cfg.max_session_timeout_ms)
        return err(error_code::invalid_session_timeout);
    if (req.protocol_type.empty() || req.protocols.empty()) return err(error_code::inconsistent_group_protocol);
    if (!supports_protocols(req)) return err(error_code::inconsistent_group_protocol);
    return 0;
}

bool group::supports_protocols(const join_request& req) const {
    if (_members.empty()) return true;
    if (_protocol_type && *_protocol_type != req.protocol_type) return false;
    // At least one of the joiner's protocols must be supported by every current member
    // (the joiner itself excepted when it is already a member).
    for (const auto& p : req.protocols) {
        bool everyone = true;
        for (const auto& [id, m] : _members)
            if (id != req.member_id && m.metadata_for(p.name) == nullptr) everyone = false;
        if (everyone) return true;
    }
    return false;
}

void group::join(join_request req, join_callback cb) {
    if (_state == group_state::dead) return cb(join_error(err(error_code::coordinator_not_available), req.member_id));
    if (int16_t e = check_join(req)) return cb(join_error(e, req.member_id));
    if (req.member_id.empty()) return join_new_member(std::move(req), std::move(cb));
    join_known_member(std::move(req), std::move(cb));
}

void group::join_new_member(join_request req, join_callback cb) {
    if (_members.size() >= static_cast<size_t>(_host.config().max_size))
        return cb(join_error(err(error_code::group_max_size_reached), ""));
    std::string new_id = _host.new_member_id(req.group_instance_id.value_or(req.client_id));
    if (req.group_instance_id) {
        auto it = _static_members.find(*req.group_instance_id);
        if (it != _static_members.end() && _members.count(it->second))
            return replace_static_member(std::move(req), it->second, std::move(cb));
        return add_member_and_rebalance(std::move(req), new_id, std::move(cb));
    }
    if (req.require_known_member_id) {
        // KIP-394: the client must come back with this id, so a client that retries a
        // timed-out join does not leave a ghost member behind.
        add_pending_member(new_id, req.session_timeout_ms);
        return cb(join_error(err(error_code::member_id_required), new_id));
    }
    add_member_and_rebalance(std::move(req), new_id, std::move(cb));
}

void group::join_known_member(join_request req, join_callback cb) {
    if (auto p = _pending.find(req.member_id); p != _pending.end()) {
        _host.cancel(p->second);
        _pending.erase(p);
        std::string id = req.member_id;
        return add_member_and_rebalance(std::move(req), id, std::move(cb));
    }
    if (int16_t e = check_fenced(req.member_id, req.group_instance_id)) return cb(join_error(e, req.member_id));
    auto it = _members.find(req.member_id);
    if (it == _members.end()) return cb(join_error(err(error_code::unknown_member_id), req.member_id));
    member_state& m = it->second;
    switch (_state) {
        case group_state::preparing_rebalance:
            return update_member_and_rebalance(m, std::move(req), std::move(cb));
        case group_state::completing_rebalance:
            if (!protocols_match(m, req)) return update_member_and_rebalance(m, std::move(req), std::move(cb));
            // A retried join: the answer it already had.
            m.awaiting_join = std::move(cb);
            return respond_join(m, 0);
        case group_state::stable:
            if (m.id == _leader || !protocols_match(m, req))
                return update_member_and_rebalance(m, std::move(req), std::move(cb));
            m.awaiting_join = std::move(cb);
            return respond_join(m, 0);
        case group_state::empty:
        case group_state::dead:
            return cb(join_error(err(error_code::unknown_member_id), req.member_id));
    }
}

bool group::protocols_match(const member_state& m, const join_request& req) const {
    if (m.protocols.size() != req.protocols.size()) return false;
    for (size_t i = 0; i < m.protocols.size(); ++i)
        if (m.protocols[i].name != req.protocols[i].name || m.protocols[i].metadata != req.protocols[i].metadata)
            return false;
    return true;
}

void group::add_member_and_rebalance(join_request req, std::string member_id, join_callback cb) {
    member_state m;
    m.id = member_id;
    m.group_instance_id = req.group_instance_id;
    m.client_id = std::move(req.client_id);
    m.client_host = std::move(req.client_host);
    m.session_timeout_ms = req.session_timeout_ms;
    m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    m.protocol_type = req.protocol_type;
    m.protocols = std::move(req.protocols);
    m.supports_skip_assignment = req.supports_skip_assignment;
    m.awaiting_join = std::move(cb);
    if (_members.empty()) _protocol_type = req.protocol_type;
    if (_leader.empty()) _leader = member_id;
    if (m.group_instance_id) _static_members[*m.group_instance_id] = member_id;
    _new_member_added = true;
    auto [it, inserted] = _members.emplace(member_id, std::move(m));
    SLUICE_ASSERT(inserted, "member {} added twice to group {}", member_id, _id);
    schedule_heartbeat(it->second);
    if (_state != group_state::preparing_rebalance) prepare_rebalance("a member joined");
    try_complete_join();
}

void group::update_member_and_rebalance(member_state& m, join_request req, join_callback cb) {
    if (m.awaiting_join) respond_join(m, err(error_code::rebalance_in_progress));
    m.protocols = std::move(req.protocols);
    m.session_timeout_ms = req.session_timeout_ms;
    m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    m.supports_skip_assignment = req.supports_skip_assignment;
    m.awaiting_join = std::move(cb);
    if (_state != group_state::preparing_rebalance) prepare_rebalance("a member rejoined");
    try_complete_join();
}

void group::replace_static_member(join_request req, const std::string& old_id, join_callback cb) {
    std::string new_id = _host.new_member_id(*req.group_instance_id);
    auto node = _members.extract(old_id);
    member_state& m = node.mapped();
    // The old incarnation is fenced: whatever it still waits for fails.
    if (m.awaiting_join) respond_join(m, err(error_code::fenced_instance_id));
    if (m.awaiting_sync) {
        auto s = std::move(m.awaiting_sync);
        m.awaiting_sync = nullptr;
        s(sync_error(err(error_code::fenced_instance_id)));
    }
    _host.cancel(m.heartbeat_timer);
    m.heartbeat_timer = 0;
    node.key() = new_id;
    m.id = new_id;
    m.client_id = std::move(req.client_id);
    m.client_host = std::move(req.client_host);
    m.protocols = std::move(req.protocols);
    m.session_timeout_ms = req.session_timeout_ms;
    m.rebalance_timeout_ms = req.rebalance_timeout_ms;
    m.supports_skip_assignment = req.supports_skip_assignment;
    if (_leader == old_id) _leader = new_id;
    _static_members[*req.group_instance_id] = new_id;
    auto it = _members.insert(std::move(node)).position;
    member_state& nm = it->second;
    schedule_heartbeat(nm);
    if (_synced.erase(old_id)) _synced.insert(new_id);
    log::info("groups", "group {}: static member {} rejoined as {}", _id, *req.group_instance_id, new_id);
    if (_state == group_state::stable && _protocol_name && select_protocol() == *_protocol_name) {
        // Nothing the assignment depends on changed: no rebalance, just persist the new id.
        nm.awaiting_join = std::move(cb);
        int32_t gen = _generation;
        return _host.store_group(*this, [w = weak(), new_id, gen](int16_t error) {
            auto g = w.lock();
            if (!g) return;
            auto mi = g->_members.find(new_id);
            if (mi == g->_members.end() || !mi->second.awaiting_join) return;
            if (error != 0 || g->_generation != gen) return g->respond_join(mi->second, error ? error : 0);
            g->respond_join(mi->second, 0);
        });
    }
    nm.awaiting_join = std::move(cb);
    if (_state == group_state::preparing_rebalance) return try_complete_join();
    prepare_rebalance("a static member rejoined with other protocols");
    try_complete_join();
}

void group::add_pending_member(const std::string& id, int32_t session_timeout_ms) {
    _pending[id] = _host.schedule(session_timeout_ms, [w = weak(), id]() {
        auto g = w.lock();
        if (!g) return;
        g->_pending.erase(id);
        g->try_complete_join();
    });
}

// ---- Rebalance ----------------------------------------------------------------------

int32_t group::max_rebalance_timeout_ms() const {
    int32_t t = 0;
    for (const auto& [id, m] : _members) t = std::max(t, m.rebalance_timeout_ms);
    return t;
}

void group::prepare_rebalance(std::string_view reason) {
    if (_state == group_state::completing_rebalance) fail_syncs(err(error_code::rebalance_in_progress));
    _host.cancel(_sync_timer);
    _sync_timer = 0;
    _host.cancel(_rebalance_timer);
    int64_t timeout = max_rebalance_timeout_ms();
    if (_state == group_state::empty) {
        // group.initial.rebalance.delay.ms: let a starting fleet of consumers join
        // before the first generation, extended while new members keep arriving.
        int64_t delay = std::min<int64_t>(_host.config().initial_rebalance_delay_ms, timeout);
        int64_t remaining = std::max<int64_t>(timeout - delay, 0);
        _initial_delay_active = true;
        _new_member_added = false;
        _rebalance_timer = _host.schedule(delay, [w = weak(), remaining]() {
            if (auto g = w.lock()) g->initial_delay_expired(remaining);
        });
    } else {
        _initial_delay_active = false;
        _rebalance_timer = _host.schedule(timeout, [w = weak()]() {
            if (auto g = w.lock()) {
                g->_rebalance_timer = 0;
                g->complete_join();
            }
        });
    }
    log::info("groups", "group {}: preparing to rebalance (generation {}): {}", _id, _generation, reason);
    transition(group_state::preparing_rebalance);
}

void group::initial_delay_expired(int64_t remaining_ms) {
    _rebalance_timer = 0;
    if (_state != group_state::preparing_rebalance) return;
    if (_new_member_added && remaining_ms > 0) {
        int64_t delay = std::min<int64_t>(_host.config().initial_rebalance_delay_ms, remaining_ms);
        int64_t rest = std::max<int64_t>(remaining_ms - delay, 0);
        _new_member_added = false;
        _rebalance_timer = _host.schedule(delay, [w = weak(), rest]() {
            if (auto g = w.lock()) g->initial_delay_expired(rest);
        });
        return;
    }
    _initial_delay_active = false;
    complete_join();
}

bool group::all_members_joined() const {
    if (!_pending.empty()) return false;
    for (const auto& [id, m] : _members)
        if (!m.awaiting_join) return false;
    return true;
}

void group::try_complete_join() {
    if (_state == group_state::preparing_rebalance && !_initial_delay_active && all_members_joined()) complete_join();
}

std::string group::select_protocol() const {
    if (_members.empty()) return "";
    const auto& first = _members.begin()->second;
    std::vector<std::string> candidates;
    for (const auto& p : first.protocols) {
        bool everyone = std::all_of(_members.begin(), _members.end(),
                                    [&](const auto& kv) { return kv.second.metadata_for(p.name) != nullptr; });
        if (everyone) candidates.push_back(p.name);
    }
    if (candidates.empty()) return first.protocols.empty() ? "" : first.protocols.front().name;
    // Each member votes for its most preferred candidate; ties go to the first member's order.
    std::map<std::string, int> votes;
    for (const auto& [id, m] : _members)
        for (const auto& p : m.protocols)
            if (std::find(candidates.begin(), candidates.end(), p.name) != candidates.end()) {
                ++votes[p.name];
                break;
            }
    std::string best = candidates.front();
    for (const auto& c : candidates)
        if (votes[c] > votes[best]) best = c;
    return best;
}

void group::complete_join() {
    if (_state != group_state::preparing_rebalance) return;
    _host.cancel(_rebalance_timer);
    _rebalance_timer = 0;
    _initial_delay_active = false;
    std::vector<std::string> gone;
    for (const auto& [id, m] : _members)
        if (!m.awaiting_join) gone.push_back(id);
    for (const auto& id : gone) {
        log::info("groups", "group {}: member {} did not rejoin in time; removed", _id, id);
        remove_member(id, err(error_code::unknown_member_id));
    }
    ++_generation;
    _synced.clear();
    if (_members.empty()) {
        _protocol_name.reset();
        _leader.clear();
        transition(group_state::empty);
        log::info("groups", "group {}: generation {} is empty", _id, _generation);
        _host.store_group(*this, [id = _id](int16_t error) {
            if (error != 0) log::warn("groups", "group {}: storing empty generation failed: error {}", id, error);
        });
        return;
    }
    if (!_members.count(_leader)) _leader = _members.begin()->first;
    _protocol_name = select_protocol();
    transition(group_state::completing_rebalance);
    log::info("groups", "group {}: generation {} with {} members, protocol {}, leader {}", _id, _generation,
              _members.size(), *_protocol_name, _leader);
    for (auto& [id, m] : _members) {
        respond_join(m, 0);
        schedule_heartbeat(m);
    }
    int32_t gen = _generation;
    _sync_timer = _host.schedule(std::max(max_rebalance_timeout_ms(), 1), [w = weak(), gen]() {
        if (auto g = w.lock()) {
            g->_sync_timer = 0;
            g->sync_deadline_expired(gen);
        }
    });
}

void group::respond_join(member_state& m, int16_t error) {
    if (!m.awaiting_join) return;
    auto cb = std::move(m.awaiting_join);
    m.awaiting_join = nullptr;
    join_result r;
    r.error = error;
    r.member_id = m.id;
    if (error == 0) {
        r.generation_id = _generation;
        r.protocol_type = _protocol_type;
        r.protocol_name = _protocol_name;
        r.leader = _leader;
        if (m.id == _leader) {
            for (const auto& [id, other] : _members) {
                const auto* md = other.metadata_for(_protocol_name.value_or(""));
                r.members.push_back({id, other.group_instance_id, md ? *md : std::vector<uint8_t>{}});
            }
            // A rejoining static leader of a Stable group keeps the current assignment.
            r.skip_assignment = _state == group_state::stable && m.supports_skip_assignment;
        }
    }
    cb(std::move(r));
}

// ---- SyncGroup ----------------------------------------------------------------------

void group::sync(sync_request req, sync_callback cb) {
    if (_state == group_state::dead) return cb(sync_error(err(error_code::coordinator_not_available)));
    if (int16_t e = check_fenced(req.member_id, req.group_instance_id)) return cb(sync_error(e));
    auto it = _members.find(req.member_id);
    if (it == _members.end()) return cb(sync_error(err(error_code::unknown_member_id)));
    if (req.generation_id != _generation) return cb(sync_error(err(error_code::illegal_generation)));
    if ((req.protocol_type && *req.protocol_type != _protocol_type.value_or("")) ||
        (req.protocol_name && *req.protocol_name != _protocol_name.value_or("")))
        return cb(sync_error(err(error_code::inconsistent_group_protocol)));
    member_state& m = it->second;
    switch (_state) {
        case group_state::empty:
        case group_state::dead:
            return cb(sync_error(err(error_code::unknown_member_id)));
        case group_state::preparing_rebalance:
            return cb(sync_error(err(error_code::rebalance_in_progress)));
        case group_state::completing_rebalance:
            m.awaiting_sync = std::move(cb);
            _synced.insert(m.id);
            schedule_heartbeat(m);
            if (m.id == _leader) complete_sync(_generation, std::move(req.assignments));
            return;
        case group_state::stable: {
            _synced.insert(m.id);
            schedule_heartbeat(m);
            sync_result r;
            r.protocol_type = _protocol_type;
            r.protocol_name = _protocol_name;
            r.assignment = m.assignment;
            return cb(std::move(r));
        }
    }
}

void group::complete_sync(int32_t generation, std::map<std::string, std::vector<uint8_t>> assignments) {
    for (auto& [id, m] : _members) {
        auto a = assignments.find(id);
        m.assignment = a == assignments.end() ? std::vector<uint8_t>{} : std::move(a->second);
    }
    _host.store_group(*this, [w = weak(), generation](int16_t error) {
        auto g = w.lock();
        if (!g || g->_state != group_state::completing_rebalance || g->_generation != generation) return;
        if (error != 0) {
            log::warn("groups", "group {}: storing generation {} failed: error {}", g->_id, generation, error);
            for (auto& [id, m] : g->_members) m.assignment.clear();
            g->fail_syncs(error);
            g->prepare_rebalance("the assignment could not be stored");
            return;
        }
        g->transition(group_state::stable);
        log::info("groups", "group {}: generation {} is stable", g->_id, generation);
        for (auto& [id, m] : g->_members) {
            if (!m.awaiting_sync) continue;
            auto cb = std::move(m.awaiting_sync);
            m.awaiting_sync = nullptr;
            sync_result r;
            r.protocol_type = g->_protocol_type;
            r.protocol_name = g->_protocol_name;
            r.assignment = m.assignment;
            cb(std::move(r));
        }
    });
}

void group::fail_syncs(int16_t error) {
    for (auto& [id, m] : _members) {
        if (!m.awaiting_sync) continue;
        auto cb = std::move(m.awaiting_sync);
        m.awaiting_sync = nullptr;
        cb(sync_error(error));
    }
}

void group::sync_deadline_expired(int32_t generation) {
    if (_generation != generation) return;
    if (_state != group_state::completing_rebalance && _state != group_state::stable) return;
    std::vector<std::string> missing;
    for (const auto& [id, m] : _members)
        if (!_synced.count(id)) missing.push_back(id);
    if (missing.empty()) return;
    for (const auto& id : missing) {
        log::info("groups", "group {}: member {} did not sync generation {} in time; removed", _id, id, generation);
        remove_member(id, err(error_code::unknown_member_id));
    }
    prepare_rebalance("members did not sync in time");
    try_complete_join();
}

// ---- Heartbeat, LeaveGroup, sessions ------------------------------------------------

int16_t group::check_fenced(const std::string& member_id, const std::optional<std::string>& instance_id) const {
    if (!instance_id) return 0;
    auto it = _static_members.find(*instance_id);
    if (it == _static_members.end()) return 0;
    return it->second == member_id ? 0 : err(error_code::fenced_instance_id);
}

int16_t group::heartbeat(int32_t generation_id, const std::string& member_id,
                         const std::optional<std::string>& group_instance_id) {
    if (_state == group_state::dead) return err(error_code::coordinator_not_available);
    if (int16_t e = check_fenced(member_id, group_instance_id)) return e;
    auto it = _members.find(member_id);
    if (it == _members.end()) return err(error_code::unknown_member_id);
    if (generation_id != _generation) return err(error_code::illegal_generation);
    schedule_heartbeat(it->second);
    if (_state == group_state::preparing_rebalance) return err(error_code::rebalance_in_progress);
    return 0;
}

int16_t group::leave(const std::string& member_id, const std::optional<std::string>& group_instance_id) {
    if (_state == group_state::dead) return err(error_code::coordinator_not_available);
    std::string id = member_id;
    if (group_instance_id) {
        auto it = _static_members.find(*group_instance_id);
        if (it == _static_members.end()) return err(error_code::unknown_member_id);
        if (!id.empty() && it->second != id) return err(error_code::fenced_instance_id);
        id = it->second;
    }
    if (auto p = _pending.find(id); p != _pending.end()) {
        _host.cancel(p->second);
        _pending.erase(p);
        try_complete_join();
        return 0;
    }
    if (!_members.count(id)) return err(error_code::unknown_member_id);
    log::info("groups", "group {}: member {} left", _id, id);
    remove_member(id, err(error_code::unknown_member_id));
    if (_state == group_state::stable || _state == group_state::completing_rebalance)
        prepare_rebalance("a member left");
    try_complete_join();
    return 0;
}

int16_t group::validate_commit(int32_t generation_id, const std::string& member_id,
                               const std::optional<std::string>& group_instance_id) {
    if (_state == group_state::dead) return err(error_code::coordinator_not_available);
    if (int16_t e = check_fenced(member_id, group_instance_id)) return e;
    // A commit outside group management (generation -1) is allowed while nobody uses
    // the group (Kafka's "simple" consumers and admin tools).
    if (generation_id < 0 && _state == group_state::empty) return 0;
    if (_state == group_state::completing_rebalance) return err(error_code::rebalance_in_progress);
    auto it = _members.find(member_id);
    if (it == _members.end()) return err(error_code::unknown_member_id);
    if (generation_id != _generation) return err(error_code::illegal_generation);
    schedule_heartbeat(it->second);
    return 0;
}

void group::schedule_heartbeat(member_state& m) {
    _host.cancel(m.heartbeat_timer);
    m.heartbeat_timer = _host.schedule(m.session_timeout_ms, [w = weak(), id = m.id]() {
        if (auto g = w.lock()) g->heartbeat_expired(id);
    });
}

void group::heartbeat_expired(const std::string& member_id) {
    auto it = _members.find(member_id);
    if (it == _members.end()) return;
    member_state& m = it->second;
    m.heartbeat_timer = 0;
    // A member parked in JoinGroup or SyncGroup is alive; the rebalance and sync
    // deadlines bound how long it may wait.
    if (m.awaiting_join || m.awaiting_sync) return schedule_heartbeat(m);
    log::info("groups", "group {}: member {} session timed out after {} ms", _id, member_id, m.session_timeout_ms);
    remove_member(member_id, err(error_code::unknown_member_id));
    if (_state == group_state::stable || _state == group_state::completing_rebalance)
        prepare_rebalance("a member's session expired");
    try_complete_join();
}

void group::remove_member(const std::string& id, int16_t error_for_parked) {
    auto it = _members.find(id);
    if (it == _members.end()) return;
    member_state& m = it->second;
    if (m.awaiting_join) respond_join(m, error_for_parked);
    if (m.awaiting_sync) {
        auto cb = std::move(m.awaiting_sync);
        m.awaiting_sync = nullptr;
        cb(sync_error(error_for_parked));
    }
    _host.cancel(m.heartbeat_timer);
    if (m.group_instance_id) {
        auto s = _static_members.find(*m.group_instance_id);
        if (s != _static_members.end() && s->second == id) _static_members.erase(s);
    }
    _members.erase(it);
    _synced.erase(id);
    if (_leader == id) _leader = _members.empty() ? "" : _members.begin()->first;
}

// ---- Subscriptions, loading, shutdown -----------------------------------------------

namespace {
// ConsumerProtocolSubscription (any version): int16 version, int32 topic count, then
// int16-length topic names; the rest (user data, owned partitions) is not needed here.
std::optional<std::vector<std::string>> subscription_topics(const std::vector<uint8_t>& b) {
    size_t at = 0;
    auto need = [&](size_t n) { return at + n <= b.size(); };
    if (!need(6)) return std::nullopt;
    at = 2;
    int32_t n = static_cast<int32_t>((b[at] << 24) | (b[at + 1] << 16) | (b[at + 2] << 8) | b[at + 3]);
    at += 4;
    if (n < 0) return std::nullopt;
    std::vector<std::string> out;
    for (int32_t i = 0; i < n; ++i) {
        if (!need(2)) return std::nullopt;
        size_t len = static_cast<size_t>((b[at] << 8) | b[at + 1]);
        at += 2;
        if (!need(len)) return std::nullopt;
        out.emplace_back(reinterpret_cast<const char*>(b.data() + at), len);
        at += len;
    }
    return out;
}
}  // namespace

std::set<std::string> group::subscribed_topics() const {
    std::set<std::string> out;
    if (_protocol_type.value_or("") != "consumer" || !_protocol_name) return out;
    for (const auto& [id, m] : _members) {
        const auto* md = m.metadata_for(*_protocol_name);
        if (md == nullptr) continue;
        if (auto topics = subscription_topics(*md))
            out.insert(topics->begin(), topics->end());
    }
    return out;
}

bool group::is_subscribed(const std::string& topic) const {
    if (_members.empty()) return false;
    if (_protocol_type.value_or("") != "consumer") return true;  // unknown protocol: assume it is used
    return subscribed_topics().count(topic) > 0;
}

void group::restore(std::string protocol_type, int32_t generation, std::optional<std::string> protocol,
                    std::optional<std::string> leader, int64_t state_timestamp, std::vector<loaded_member> members) {
    for (auto& [id, m] : _members) _host.cancel(m.heartbeat_timer);
    _members.clear();
    _static_members.clear();
    _protocol_type = protocol_type.empty() ? std::nullopt : std::optional<std::string>(std::move(protocol_type));
    _generation = generation;
    _protocol_name = std::move(protocol);
    _leader = leader.value_or("");
    for (auto& lm : members) {
        member_state m;
        m.id = lm.id;
        m.group_instance_id = lm.group_instance_id;
        m.client_id = std::move(lm.client_id);
        m.client_host = std::move(lm.client_host);
        m.session_timeout_ms = lm.session_timeout_ms;
        m.rebalance_timeout_ms = lm.rebalance_timeout_ms;
        m.protocol_type = _protocol_type.value_or("");
        if (_protocol_name) m.protocols.push_back({*_protocol_name, std::move(lm.subscription)});
        m.assignment = std::move(lm.assignment);
        if (m.group_instance_id) _static_members[*m.group_instance_id] = m.id;
        _synced.insert(m.id);
        auto it = _members.emplace(m.id, std::move(m)).first;
        schedule_heartbeat(it->second);
    }
    _state = _members.empty() ? group_state::empty : group_state::stable;
    _state_timestamp = state_timestamp > 0 ? state_timestamp : _host.now_ms();
}

void group::shut_down(int16_t error) {
    for (auto& [id, m] : _members) {
        if (m.awaiting_join) respond_join(m, error);
        if (m.awaiting_sync) {
            auto cb = std::move(m.awaiting_sync);
            m.awaiting_sync = nullptr;
            cb(sync_error(error));
        }
        _host.cancel(m.heartbeat_timer);
        m.heartbeat_timer = 0;
    }
    for (auto& [id, t] : _pending) _host.cancel(t);
    _pending.clear();
    _host.cancel(_rebalance_timer);
    _host.cancel(_sync_timer);
    _rebalance_timer = _sync_timer = 0;
    _members.clear();
    _static_members.clear();
    transition(group_state::dead);
}

}  // namespace sluice::broker::groups
