#include "broker/replication/leader.h"
#include "broker/groups/group_manager.h"

#include "base/log.h"
#include "broker/groups/hash.h"
#include "broker/groups/records.h"
#include "broker/protocol/errors.h"
#include "broker/server.h"
#include "broker/shard.h"
#include "broker/topics.h"
#include "storage/record_batch.h"

#include <unistd.h>

#include <chrono>
#include <cstring>

namespace sluice::broker::groups {
namespace {

using proto::error_code;
constexpr int16_t err(error_code e) { return static_cast<int16_t>(e); }

int64_t raw_int(const broker_config& cfg, const char* key, int64_t fallback) {
    auto it = cfg.raw.find(key);
    if (it == cfg.raw.end()) return fallback;
    try {
        return std::stoll(it->second);
    } catch (...) {
        log::warn("groups", "ignoring invalid {}={}", key, it->second);
        return fallback;
    }
}

topic_partition offsets_tp(int32_t p) { return {std::string(offsets_topic), p}; }

// The bytes of a slice of a segment (mapped when the mapping covers it, else pread).
std::vector<uint8_t> slice_bytes(const file_slice& s) {
    std::vector<uint8_t> out(s.length);
    const uint8_t* m = s.file->mapped();
    if (m != nullptr && s.position + s.length <= s.file->mapped_size()) {
        std::memcpy(out.data(), m + s.position, s.length);
        return out;
    }
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(s.file->fd(), out.data() + done, out.size() - done,
                            static_cast<off_t>(s.position + done));
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    out.resize(done);
    return out;
}

}  // namespace

group_config group_config_from(const broker_config& cfg) {
    group_config g;
    g.initial_rebalance_delay_ms = raw_int(cfg, "group.initial.rebalance.delay.ms", g.initial_rebalance_delay_ms);
    g.min_session_timeout_ms =
        static_cast<int32_t>(raw_int(cfg, "group.min.session.timeout.ms", g.min_session_timeout_ms));
    g.max_session_timeout_ms =
        static_cast<int32_t>(raw_int(cfg, "group.max.session.timeout.ms", g.max_session_timeout_ms));
    g.max_size = static_cast<int32_t>(raw_int(cfg, "group.max.size", g.max_size));
    g.offsets_retention_ms = raw_int(cfg, "offsets.retention.minutes", 10080) * 60000;
    g.retention_check_interval_ms =
        raw_int(cfg, "offsets.retention.check.interval.ms", g.retention_check_interval_ms);
    g.offset_metadata_max_bytes =
        static_cast<int32_t>(raw_int(cfg, "offset.metadata.max.bytes", g.offset_metadata_max_bytes));
    return g;
}

int32_t offsets_partition_count(const coord::cluster_snapshot& snap, const broker_config& cfg) {
    auto t = find_topic(snap, std::string(offsets_topic));
    if (t != nullptr && !t->assignment.empty()) return static_cast<int32_t>(t->assignment.size());
    return cfg.offsets_topic_num_partitions;
}

group_manager::group_manager(shard& sh)
    : _shard(sh), _config(group_config_from(sh.srv().config())), _random(std::random_device{}()) {}

group_manager::~group_manager() {
    // Destroyed with the shard after every reactor thread stopped: nobody can be
    // answered any more, and the groups' timers die with the reactor.
    shards_stopping.store(true);
    _groups.clear();
}

// ---- group_host -------------------------------------------------------------------

int64_t group_manager::now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

uint64_t group_manager::schedule(int64_t delay_ms, std::function<void()> fn) {
    return _shard.reactor().add_timer(std::chrono::milliseconds(std::max<int64_t>(delay_ms, 0)), std::move(fn));
}

void group_manager::cancel(uint64_t timer) {
    if (timer != 0) _shard.reactor().cancel_timer(timer);
}

std::string group_manager::new_member_id(const std::string& client_id) {
    // client id + "-" + a random UUID, as Kafka names members.
    uint64_t hi = _random(), lo = _random();
    hi = (hi & ~0xf000ull) | 0x4000ull;
    lo = (lo & 0x3fffffffffffffffull) | 0x8000000000000000ull;
    return fmt::format("{}-{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", client_id, hi >> 32, (hi >> 16) & 0xffff,
                       hi & 0xffff, lo >> 48, lo & 0xffffffffffffull);
}

void group_manager::store_group(group& g, std::function<void(int16_t error)> done) {
    proto::group_metadata_value v;
    v.protocol_type = g.protocol_type().value_or("");
    v.generation = g.generation();
    v.protocol = g.protocol_name();
    v.leader = g.leader().empty() ? std::nullopt : std::optional<std::string>(g.leader());
    v.current_state_timestamp = g.state_timestamp();
    for (const auto& [id, m] : g.members()) {
        proto::group_metadata_value::member_metadata mm;
        mm.member_id = id;
        mm.group_instance_id = m.group_instance_id;
        mm.client_id = m.client_id;
        mm.client_host = m.client_host;
        mm.rebalance_timeout = m.rebalance_timeout_ms;
        mm.session_timeout = m.session_timeout_ms;
        if (const auto* md = m.metadata_for(g.protocol_name().value_or(""))) mm.subscription = *md;
        mm.assignment = m.assignment;
        v.members.push_back(std::move(mm));
    }
    int16_t e = append(g.offsets_partition(), {{encode_group_key(g.id()), encode_group_value(v)}});
    done(e);
}

// ---- Persistence ------------------------------------------------------------------

void group_manager::when_replicated(int32_t p, std::function<void(int16_t)> done) {
    partition* part = _shard.find(offsets_tp(p));
    if (part == nullptr) return done(err(error_code::not_coordinator));
    // The waiter owns its liveness token: it lives until the high watermark arrives or
    // leadership goes, both of which answer it.
    auto token = std::make_shared<int>(0);
    replication::wait_for_ack(*part, part->log->log_end_offset(), 1, token,
                              [token, done = std::move(done)](int16_t e) {
                                  done(e == 0 ? int16_t{0} : err(error_code::not_coordinator));
                              });
}

int16_t group_manager::append(int32_t p, const std::vector<record>& records) {
    partition* part = _shard.find(offsets_tp(p));
    if (part == nullptr || coordinator_error(p) != 0) return err(error_code::not_coordinator);
    int64_t now = now_ms();
    storage::batch_builder b(now);
    auto view = [](const std::vector<uint8_t>& v) {
        return std::string_view(reinterpret_cast<const char*>(v.data()), v.size());
    };
    for (const auto& [key, value] : records)
        b.add(view(key), value ? std::optional<std::string_view>(view(*value)) : std::nullopt, now);
    auto bytes = b.build(0);
    auto r = part->log->append(bytes, part->leader_epoch, now);
    if (r.error != storage::log_errc::ok) {
        log::error("groups", "append to {}-{} failed: {}", offsets_topic, p,
                   r.error == storage::log_errc::storage_error ? r.io_error.message()
                                                               : storage::make_error_code(r.error).message());
        int16_t k = storage::kafka_error_code(r.error);
        if (k == err(error_code::message_too_large) || k == err(error_code::record_list_too_large))
            return err(error_code::invalid_commit_offset_size);
        return err(error_code::coordinator_not_available);
    }
    // Committed offsets are answered once written here (acks=1 semantics; Kafka waits for
    // the ISR, offsets.commit.required.acks=-1); followers still copy them.
    replication::after_append(*part);
    return 0;
}

// ---- Partition load / unload --------------------------------------------------------

void group_manager::on_snapshot() {
    if (!_expiry_scheduled) schedule_expiry();
    const auto& snap = *_shard.metadata();
    const auto& cfg = _shard.srv().config();
    std::map<int32_t, int32_t> lead;  // partition -> leader epoch
    if (const auto* t = find_topic(snap, std::string(offsets_topic))) {
        for (const auto& [index, replicas] : t->assignment) {
            if (_shard.srv().shard_of(offsets_topic, index) != _shard.id()) continue;
            auto st = t->partitions.find(index);
            if (st == t->partitions.end() || st->second.leader != cfg.broker_id) continue;
            if (_shard.find(offsets_tp(index)) == nullptr) continue;
            lead[index] = st->second.leader_epoch;
        }
    }
    std::vector<int32_t> lost;
    for (const auto& [p, st] : _partitions) {
        auto it = lead.find(p);
        if (it == lead.end() || it->second != st.leader_epoch) lost.push_back(p);
    }
    for (int32_t p : lost) unload(p);
    for (const auto& [p, epoch] : lead)
        if (!_partitions.count(p)) start_load(p, epoch);
}

void group_manager::start_load(int32_t p, int32_t leader_epoch) {
    auto& st = _partitions[p];
    st.leader_epoch = leader_epoch;
    st.status = load_status::loading;
    st.position = _shard.find(offsets_tp(p))->log->log_start_offset();
    st.loading = std::make_unique<load_state>();
    st.loading->started_ms = now_ms();
    _shard.post([this, p, leader_epoch]() { load_step(p, leader_epoch); });
}

void group_manager::load_step(int32_t p, int32_t leader_epoch) {
    auto it = _partitions.find(p);
    if (it == _partitions.end() || it->second.leader_epoch != leader_epoch ||
        it->second.status != load_status::loading)
        return;
    auto& st = it->second;
    partition* part = _shard.find(offsets_tp(p));
    if (part == nullptr) return unload(p);
    const auto& log = *part->log;
    if (st.position < log.log_start_offset()) st.position = log.log_start_offset();
    if (st.position >= log.log_end_offset()) return finish_load(p);
    auto r = log.read(st.position, load_slice_bytes, true, log.log_end_offset());
    if (r.error != storage::log_errc::ok || r.slices.empty()) {
        if (r.error != storage::log_errc::ok)
            log::error("groups", "loading {}-{} at offset {}: {}", offsets_topic, p, st.position,
                       storage::make_error_code(r.error).message());
        return finish_load(p);
    }
    int64_t next = st.position;
    for (const auto& s : r.slices) {
        auto bytes = slice_bytes(s);
        size_t at = 0;
        while (at + storage::batch_header_size <= bytes.size()) {
            auto h = storage::parse_batch_header(bytes.data() + at);
            if (h.size_bytes() < storage::batch_header_size || at + h.size_bytes() > bytes.size()) break;
            load_batch(*st.loading, {bytes.data() + at, h.size_bytes()});
            next = std::max(next, h.last_offset() + 1);
            at += h.size_bytes();
        }
    }
    if (next == st.position) {
        log::error("groups", "loading {}-{}: no progress at offset {}; stopping the load there", offsets_topic, p,
                   st.position);
        return finish_load(p);
    }
    st.position = next;
    _shard.post([this, p, leader_epoch]() { load_step(p, leader_epoch); });
}

void group_manager::load_batch(load_state& st, std::span<const uint8_t> batch) {
    auto h = storage::parse_batch_header(batch.data());
    // Recovery checked the log tail only; a damaged batch further back must not turn
    // into committed offsets.
    if (storage::compute_batch_crc(batch) != h.crc) {
        log::error("groups", "skipping a batch with a bad CRC at offset {} of {}", h.base_offset, offsets_topic);
        return;
    }
    if (h.is_control()) return;
    if (h.codec() != storage::compression::none) {
        log::warn("groups", "skipping a compressed batch at offset {} of {} (not written by Sluice)", h.base_offset,
                  offsets_topic);
        return;
    }
    auto records = storage::decode_records(batch);
    if (!records) return;
    for (const auto& rec : *records) {
        if (!rec.key) continue;
        auto key = decode_key(*rec.key);
        if (!key) continue;
        ++st.records;
        if (key->type == record_key::kind::group) {
            if (!rec.value) {
                st.groups[key->group] = std::nullopt;
                continue;
            }
            auto v = decode_group_value(*rec.value);
            if (v) st.groups[key->group] = std::move(*v);
            continue;
        }
        auto k = std::make_tuple(key->group, key->offset.topic, key->offset.partition);
        if (!rec.value) {
            st.offsets[k] = std::nullopt;
            continue;
        }
        auto v = decode_offset_value(*rec.value);
        if (!v) continue;
        st.offsets[k] = committed_offset{v->offset, v->leader_epoch, v->metadata, v->commit_timestamp,
                                         v->expire_timestamp};
    }
}

void group_manager::finish_load(int32_t p) {
    auto& st = _partitions[p];
    auto loaded = std::move(st.loading);
    st.status = load_status::ready;
    size_t groups = 0, offsets = 0;
    for (auto& [id, v] : loaded->groups) {
        if (!v) continue;
        auto g = get_or_create(p, id);
        std::vector<group::loaded_member> members;
        for (auto& m : v->members)
            members.push_back({m.member_id, m.group_instance_id, m.client_id, m.client_host, m.session_timeout,
                               m.rebalance_timeout, std::move(m.subscription), std::move(m.assignment)});
        g->restore(v->protocol_type, v->generation, v->protocol, v->leader, v->current_state_timestamp,
                   std::move(members));
        ++groups;
    }
    for (auto& [k, v] : loaded->offsets) {
        if (!v) continue;
        auto g = get_or_create(p, std::get<0>(k));
        g->offsets[{std::get<1>(k), std::get<2>(k)}] = *v;
        ++offsets;
    }
    log::info("groups", "loaded {}-{}: {} groups, {} committed offsets from {} records in {} ms", offsets_topic, p,
              groups, offsets, loaded->records, now_ms() - loaded->started_ms);
}

void group_manager::unload(int32_t p) {
    std::vector<std::string> ids;
    for (const auto& [id, g] : _groups)
        if (g->offsets_partition() == p) ids.push_back(id);
    for (const auto& id : ids) remove_group(id);
    _partitions.erase(p);
    log::info("groups", "no longer coordinating groups of {}-{}", offsets_topic, p);
}

int16_t group_manager::coordinator_error(int32_t p) const {
    auto it = _partitions.find(p);
    if (it == _partitions.end()) return err(error_code::not_coordinator);
    if (it->second.status == load_status::loading) return err(error_code::coordinator_load_in_progress);
    return 0;
}

std::shared_ptr<group> group_manager::find_group(const std::string& id) const {
    auto it = _groups.find(id);
    return it == _groups.end() ? nullptr : it->second;
}

std::shared_ptr<group> group_manager::get_or_create(int32_t p, const std::string& id) {
    auto& g = _groups[id];
    if (!g) g = std::make_shared<group>(*this, id, p);
    return g;
}

void group_manager::remove_group(const std::string& id) {
    auto it = _groups.find(id);
    if (it == _groups.end()) return;
    auto g = it->second;
    _groups.erase(it);
    g->shut_down(err(error_code::not_coordinator));
}

// ---- Group operations -----------------------------------------------------------------

void group_manager::join(int32_t p, const std::string& group_id, join_request req, join_callback cb) {
    auto fail = [&](int16_t e) {
        join_result r;
        r.error = e;
        r.member_id = req.member_id;
        cb(std::move(r));
    };
    if (group_id.empty()) return fail(err(error_code::invalid_group_id));
    if (int16_t e = coordinator_error(p)) return fail(e);
    auto g = find_group(group_id);
    if (!g) {
        if (!req.member_id.empty()) return fail(err(error_code::unknown_member_id));
        g = get_or_create(p, group_id);
    }
    g->join(std::move(req), std::move(cb));
}

void group_manager::sync(int32_t p, const std::string& group_id, sync_request req, sync_callback cb) {
    auto fail = [&](int16_t e) {
        sync_result r;
        r.error = e;
        cb(std::move(r));
    };
    if (group_id.empty()) return fail(err(error_code::invalid_group_id));
    if (int16_t e = coordinator_error(p)) return fail(e);
    auto g = find_group(group_id);
    if (!g) return fail(err(error_code::unknown_member_id));
    g->sync(std::move(req), std::move(cb));
}

int16_t group_manager::heartbeat(int32_t p, const std::string& group_id, int32_t generation,
                                 const std::string& member_id, const std::optional<std::string>& instance_id) {
    if (group_id.empty()) return err(error_code::invalid_group_id);
    if (int16_t e = coordinator_error(p)) return e;
    auto g = find_group(group_id);
    if (!g) return err(error_code::unknown_member_id);
    return g->heartbeat(generation, member_id, instance_id);
}

std::vector<int16_t> group_manager::leave(
    int32_t p, const std::string& group_id,
    const std::vector<std::pair<std::string, std::optional<std::string>>>& members) {
    int16_t e = group_id.empty() ? err(error_code::invalid_group_id) : coordinator_error(p);
    auto g = e == 0 ? find_group(group_id) : nullptr;
    if (e == 0 && !g) e = err(error_code::unknown_member_id);
    std::vector<int16_t> out;
    for (const auto& [member_id, instance_id] : members) out.push_back(e != 0 ? e : g->leave(member_id, instance_id));
    return out;
}

std::vector<int16_t> group_manager::commit(int32_t p, const std::string& group_id, int32_t generation,
                                           const std::string& member_id,
                                           const std::optional<std::string>& instance_id,
                                           std::vector<commit_entry> entries) {
    auto all = [&](int16_t e) { return std::vector<int16_t>(entries.size(), e); };
    if (group_id.empty()) return all(err(error_code::invalid_group_id));
    if (int16_t e = coordinator_error(p)) return all(e);
    auto g = find_group(group_id);
    if (!g) {
        // No such group: only a commit outside group management may create it.
        if (generation >= 0) return all(err(error_code::illegal_generation));
        g = get_or_create(p, group_id);
    }
    if (int16_t e = g->validate_commit(generation, member_id, instance_id)) return all(e);
    std::vector<int16_t> out(entries.size(), 0);
    std::vector<record> records;
    int64_t now = now_ms();
    for (size_t i = 0; i < entries.size(); ++i) {
        auto& e = entries[i];
        if (static_cast<int64_t>(e.value.metadata.size()) > _config.offset_metadata_max_bytes) {
            out[i] = err(error_code::offset_metadata_too_large);
            continue;
        }
        if (e.value.commit_timestamp < 0) e.value.commit_timestamp = now;
        proto::offset_commit_value v;
        v.offset = e.value.offset;
        v.leader_epoch = e.value.leader_epoch;
        v.metadata = e.value.metadata;
        v.commit_timestamp = e.value.commit_timestamp;
        records.push_back({encode_offset_key(group_id, e.topic, e.partition), encode_offset_value(v)});
    }
    if (records.empty()) return out;
    int16_t stored = append(p, records);
    for (size_t i = 0; i < entries.size(); ++i) {
        if (out[i] != 0) continue;
        if (stored != 0) {
            out[i] = stored;
            continue;
        }
        g->offsets[{entries[i].topic, entries[i].partition}] = entries[i].value;
    }
    return out;
}

std::pair<std::vector<fetched_offset>, int16_t> group_manager::fetch_offsets(
    int32_t p, const std::string& group_id,
    const std::optional<std::vector<std::pair<std::string, std::vector<int32_t>>>>& wanted) {
    std::vector<fetched_offset> out;
    if (int16_t e = coordinator_error(p)) return {out, e};
    auto g = find_group(group_id);
    if (!wanted) {
        if (g)
            for (const auto& [tp, o] : g->offsets) out.push_back({tp.first, tp.second, o});
        return {out, 0};
    }
    for (const auto& [topic, parts] : *wanted)
        for (int32_t part : parts) {
            fetched_offset f{topic, part, std::nullopt};
            if (g) {
                auto it = g->offsets.find({topic, part});
                if (it != g->offsets.end()) f.value = it->second;
            }
            out.push_back(std::move(f));
        }
    return {out, 0};
}

proto::describe_groups_response::described_group group_manager::describe(int32_t p, const std::string& group_id) {
    proto::describe_groups_response::described_group d;
    d.group_id = group_id;
    if (int16_t e = coordinator_error(p)) {
        d.error_code = e;
        return d;
    }
    auto g = find_group(group_id);
    if (!g) {
        d.group_state = std::string(state_name(group_state::dead));
        return d;
    }
    d.group_state = std::string(state_name(g->state()));
    d.protocol_type = g->protocol_type().value_or("");
    bool stable = g->state() == group_state::stable;
    if (stable) d.protocol_data = g->protocol_name().value_or("");
    for (const auto& [id, m] : g->members()) {
        proto::describe_groups_response::described_group_member dm;
        dm.member_id = id;
        dm.group_instance_id = m.group_instance_id;
        dm.client_id = m.client_id;
        dm.client_host = m.client_host;
        if (stable) {
            if (const auto* md = m.metadata_for(g->protocol_name().value_or(""))) dm.member_metadata = *md;
            dm.member_assignment = m.assignment;
        }
        d.members.push_back(std::move(dm));
    }
    return d;
}

std::pair<std::vector<group_listing>, int16_t> group_manager::list() const {
    std::vector<group_listing> out;
    int16_t e = 0;
    for (const auto& [p, st] : _partitions)
        if (st.status == load_status::loading) e = err(error_code::coordinator_load_in_progress);
    for (const auto& [id, g] : _groups)
        if (g->state() != group_state::dead) out.push_back({id, g->protocol_type().value_or(""), g->state()});
    return {out, e};
}

int16_t group_manager::delete_group(int32_t p, const std::string& group_id) {
    if (group_id.empty()) return err(error_code::invalid_group_id);
    if (int16_t e = coordinator_error(p)) return e;
    auto g = find_group(group_id);
    if (!g || g->state() == group_state::dead) return err(error_code::group_id_not_found);
    if (g->state() != group_state::empty) return err(error_code::non_empty_group);
    std::vector<record> tombstones;
    for (const auto& [tp, o] : g->offsets)
        tombstones.push_back({encode_offset_key(group_id, tp.first, tp.second), std::nullopt});
    tombstones.push_back({encode_group_key(group_id), std::nullopt});
    if (int16_t e = append(p, tombstones)) return e;
    log::info("groups", "group {} deleted ({} committed offsets)", group_id, g->offsets.size());
    remove_group(group_id);
    return 0;
}

std::pair<int16_t, std::vector<int16_t>> group_manager::delete_offsets(
    int32_t p, const std::string& group_id, const std::vector<std::pair<std::string, int32_t>>& tps) {
    std::vector<int16_t> out(tps.size(), 0);
    if (group_id.empty()) return {err(error_code::invalid_group_id), out};
    if (int16_t e = coordinator_error(p)) return {e, out};
    auto g = find_group(group_id);
    if (!g || g->state() == group_state::dead) return {err(error_code::group_id_not_found), out};
    std::vector<record> tombstones;
    std::vector<size_t> deleting;
    for (size_t i = 0; i < tps.size(); ++i) {
        if (g->state() != group_state::empty && g->is_subscribed(tps[i].first)) {
            out[i] = err(error_code::group_subscribed_to_topic);
            continue;
        }
        if (!g->offsets.count(tps[i])) continue;
        tombstones.push_back({encode_offset_key(group_id, tps[i].first, tps[i].second), std::nullopt});
        deleting.push_back(i);
    }
    if (!tombstones.empty()) {
        if (int16_t e = append(p, tombstones)) return {e, out};
        for (size_t i : deleting) g->offsets.erase(tps[i]);
    }
    return {0, out};
}

// ---- Offset expiry (offsets.retention.minutes) ---------------------------------------

void group_manager::schedule_expiry() {
    _expiry_scheduled = true;
    schedule(_config.retention_check_interval_ms, [this]() {
        expire_offsets();
        schedule_expiry();
    });
}

void group_manager::expire_offsets() {
    int64_t now = now_ms();
    std::vector<std::string> dead;
    for (auto& [id, g] : _groups)
        if (coordinator_error(g->offsets_partition()) == 0 && expire_group(*g, now)) dead.push_back(id);
    for (const auto& id : dead) remove_group(id);
}

// Kafka's rule: offsets of a group nobody uses expire retention after the group became
// empty (consumer groups) or after the commit (groups used only for commits); an
// explicit expire timestamp (OffsetCommit v2-4) wins. True when the group is gone.
bool group_manager::expire_group(group& g, int64_t now) {
    if (g.state() != group_state::empty) return false;
    std::vector<record> tombstones;
    std::vector<std::pair<std::string, int32_t>> expired;
    for (const auto& [tp, o] : g.offsets) {
        int64_t base = g.protocol_type() ? std::max(g.state_timestamp(), o.commit_timestamp) : o.commit_timestamp;
        bool gone = o.expire_timestamp >= 0 ? now >= o.expire_timestamp : now >= base + _config.offsets_retention_ms;
        if (!gone) continue;
        tombstones.push_back({encode_offset_key(g.id(), tp.first, tp.second), std::nullopt});
        expired.push_back(tp);
    }
    bool drop_group = g.offsets.size() == expired.size();
    if (drop_group) tombstones.push_back({encode_group_key(g.id()), std::nullopt});
    if (tombstones.empty()) return false;
    if (int16_t e = append(g.offsets_partition(), tombstones)) {
        log::warn("groups", "group {}: expiring offsets failed: error {}", g.id(), e);
        return false;
    }
    for (const auto& tp : expired) g.offsets.erase(tp);
    log::info("groups", "group {}: {} committed offsets expired{}", g.id(), expired.size(),
              drop_group ? "; group removed" : "");
    return drop_group;
}

}  // namespace sluice::broker::groups
