#pragma once
// One consumer group under the classic group protocol, as Kafka's GroupCoordinator runs
// it (states Empty, PreparingRebalance, CompletingRebalance, Stable, Dead):
//
//   Empty --join--> PreparingRebalance --all joined / rebalance timeout--> CompletingRebalance
//   CompletingRebalance --leader's SyncGroup stored--> Stable
//   Stable/CompletingRebalance --join of a new or changed member, leave, session expiry--> PreparingRebalance
//   PreparingRebalance --nobody rejoined--> Empty;  Empty --offsets expired / DeleteGroups--> Dead
//
// JoinGroup and SyncGroup answers are parked as callbacks in the member and run when the
// rebalance step completes. Timers (session, rebalance, initial delay) and persistence
// come from a group_host, so the state machine runs unchanged under a test clock.
//
// Concurrency: a group lives on the shard owning its __consumer_offsets partition and is
// touched only on that shard's thread. Callbacks run on that thread too, possibly inline
// from the call that completes them.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::broker::groups {

enum class group_state { empty, preparing_rebalance, completing_rebalance, stable, dead };
// Kafka's names: "Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead".
std::string_view state_name(group_state s);

struct group_config {
    int64_t initial_rebalance_delay_ms = 3000;   // group.initial.rebalance.delay.ms
    int32_t min_session_timeout_ms = 6000;       // group.min.session.timeout.ms
    int32_t max_session_timeout_ms = 1800000;    // group.max.session.timeout.ms
    int32_t max_size = INT32_MAX;                // group.max.size
    int64_t offsets_retention_ms = 10080LL * 60000;   // offsets.retention.minutes
    int64_t retention_check_interval_ms = 600000;     // offsets.retention.check.interval.ms
    int32_t offset_metadata_max_bytes = 4096;          // offset.metadata.max.bytes
};

struct protocol_entry {
    std::string name;
    std::vector<uint8_t> metadata;
};

struct join_result {
    int16_t error = 0;
    int32_t generation_id = -1;
    std::optional<std::string> protocol_type;
    std::optional<std::string> protocol_name;
    std::string leader;
    std::string member_id;
    bool skip_assignment = false;
    struct member {
        std::string member_id;
        std::optional<std::string> group_instance_id;
        std::vector<uint8_t> metadata;
    };
    std::vector<member> members;  // only for the leader
};

struct sync_result {
    int16_t error = 0;
    std::optional<std::string> protocol_type;
    std::optional<std::string> protocol_name;
    std::vector<uint8_t> assignment;
};

using join_callback = std::function<void(join_result)>;
using sync_callback = std::function<void(sync_result)>;

struct join_request {
    std::string member_id;  // "" for a new member
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::string protocol_type;
    std::vector<protocol_entry> protocols;
    bool require_known_member_id = false;  // JoinGroup v4+ (KIP-394)
    bool supports_skip_assignment = false; // JoinGroup v9 (KIP-814)
};

struct sync_request {
    int32_t generation_id = -1;
    std::string member_id;
    std::optional<std::string> group_instance_id;
    std::optional<std::string> protocol_type;  // v5, checked when present
    std::optional<std::string> protocol_name;
    std::map<std::string, std::vector<uint8_t>> assignments;  // leader only
};

struct member_state {
    std::string id;
    std::optional<std::string> group_instance_id;
    std::string client_id;
    std::string client_host;
    int32_t session_timeout_ms = 0;
    int32_t rebalance_timeout_ms = 0;
    std::string protocol_type;
    std::vector<protocol_entry> protocols;
    std::vector<uint8_t> assignment;
    join_callback awaiting_join;
    sync_callback awaiting_sync;
    uint64_t heartbeat_timer = 0;
    bool supports_skip_assignment = false;

    const std::vector<uint8_t>* metadata_for(const std::string& protocol) const;
};

struct committed_offset {
    int64_t offset = -1;
    int32_t leader_epoch = -1;
    std::string metadata;
    int64_t commit_timestamp = 0;
    int64_t expire_timestamp = -1;  // explicit retention (OffsetCommit v2-4), else -1
};

class group;

// What a group needs from the shard it lives on.
class group_host {
public:
    virtual ~group_host() = default;
    virtual int64_t now_ms() = 0;
    virtual uint64_t schedule(int64_t delay_ms, std::function<void()> fn) = 0;
    virtual void cancel(uint64_t timer) = 0;
    virtual const group_config& config() const = 0;
    virtual std::string new_member_id(const std::string& client_id) = 0;
    // Writes the group's metadata record as it is now; done(kafka error) afterwards
    // (may run inline).
    virtual void store_group(group& g, std::function<void(int16_t error)> done) = 0;
};

class group : public std::enable_shared_from_this<group> {
public:
    group(group_host& host, std::string id, int32_t offsets_partition);
    ~group();
    group(const group&) = delete;
    group& operator=(const group&) = delete;

    const std::string& id() const { return _id; }
    int32_t offsets_partition() const { return _offsets_partition; }
    group_state state() const { return _state; }
    int32_t generation() const { return _generation; }
    const std::optional<std::string>& protocol_type() const { return _protocol_type; }
    const std::optional<std::string>& protocol_name() const { return _protocol_name; }
    const std::string& leader() const { return _leader; }
    int64_t state_timestamp() const { return _state_timestamp; }
    const std::map<std::string, member_state>& members() const { return _members; }
    size_t pending_member_count() const { return _pending.size(); }
    bool has_member(const std::string& id) const { return _members.count(id) > 0; }

    // Committed offsets, keyed by (topic, partition); the group_manager maintains them.
    std::map<std::pair<std::string, int32_t>, committed_offset> offsets;

    void join(join_request req, join_callback cb);
    void sync(sync_request req, sync_callback cb);
    int16_t heartbeat(int32_t generation_id, const std::string& member_id,
                      const std::optional<std::string>& group_instance_id);
    int16_t leave(const std::string& member_id, const std::optional<std::string>& group_instance_id);
    // The checks Kafka applies before storing a commit; refreshes the member's session.
    int16_t validate_commit(int32_t generation_id, const std::string& member_id,
                            const std::optional<std::string>& group_instance_id);
    // Topics the members subscribed to (consumer protocol only; for OffsetDelete).
    std::set<std::string> subscribed_topics() const;
    bool is_subscribed(const std::string& topic) const;

    // Loading from __consumer_offsets: members come back as a Stable group (Empty when
    // none) with fresh session timers.
    struct loaded_member {
        std::string id;
        std::optional<std::string> group_instance_id;
        std::string client_id, client_host;
        int32_t session_timeout_ms = 0, rebalance_timeout_ms = 0;
        std::vector<uint8_t> subscription, assignment;
    };
    void restore(std::string protocol_type, int32_t generation, std::optional<std::string> protocol,
                 std::optional<std::string> leader, int64_t state_timestamp, std::vector<loaded_member> members);
    // Dead: answers every parked request with `error` and stops every timer.
    void shut_down(int16_t error);
    // Empty and no offsets left: DeleteGroups / expiry turn it Dead.
    void mark_dead() { shut_down(16); }

private:
    int16_t check_join(const join_request& req) const;
    void join_new_member(join_request req, join_callback cb);
    void join_known_member(join_request req, join_callback cb);
    void add_member_and_rebalance(join_request req, std::string member_id, join_callback cb);
    void update_member_and_rebalance(member_state& m, join_request req, join_callback cb);
    void replace_static_member(join_request req, const std::string& old_id, join_callback cb);
    void prepare_rebalance(std::string_view reason);
    void initial_delay_expired(int64_t remaining_ms);
    void try_complete_join();
    void complete_join();
    void complete_sync(int32_t generation, std::map<std::string, std::vector<uint8_t>> assignments);
    void sync_deadline_expired(int32_t generation);
    void remove_member(const std::string& id, int16_t error_for_parked);
    void schedule_heartbeat(member_state& m);
    void heartbeat_expired(const std::string& member_id);
    void add_pending_member(const std::string& id, int32_t session_timeout_ms);
    void respond_join(member_state& m, int16_t error);
    void fail_syncs(int16_t error);
    bool all_members_joined() const;
    bool protocols_match(const member_state& m, const join_request& req) const;
    bool supports_protocols(const join_request& req) const;
    std::string select_protocol() const;
    int32_t max_rebalance_timeout_ms() const;
    void transition(group_state to);
    int16_t check_fenced(const std::string& member_id, const std::optional<std::string>& instance_id) const;
    std::weak_ptr<group> weak() { return weak_from_this(); }

    group_host& _host;
    std::string _id;
    int32_t _offsets_partition;
    group_state _state = group_state::empty;
    int64_t _state_timestamp = 0;
    int32_t _generation = 0;
    std::optional<std::string> _protocol_type;
    std::optional<std::string> _protocol_name;
    std::string _leader;
    std::map<std::string, member_state> _members;
    std::map<std::string, std::string> _static_members;  // group.instance.id -> member id
    std::map<std::string, uint64_t> _pending;            // MEMBER_ID_REQUIRED ids -> expiry timer
    std::set<std::string> _synced;                       // members that sent SyncGroup this generation
    bool _new_member_added = false;
    bool _initial_delay_active = false;
    uint64_t _rebalance_timer = 0;
    uint64_t _sync_timer = 0;
};

}  // namespace sluice::broker::groups
