#pragma once
// Private: the coordinator's session-thread machinery. Split over coordinator.cc
// (thread, session, registration), metadata_reader.cc (watches -> model),
// controller.cc (election, reconciliation, deletion) and topic_admin.cc.
//
// Concurrency: fields under "shared" are guarded by _mutex; everything under
// "session thread" is touched only by _thread (and by start() before it exists).
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "coord/connect_string.h"
#include "coord/coordinator.h"
#include "coord/zk_client.h"

namespace sluice::coord {

using clock = std::chrono::steady_clock;

class coordinator::impl {
public:
    impl(zk_config cfg, snapshot_fn on_snapshot);
    ~impl();

    std::optional<std::string> start();
    void stop();
    std::shared_ptr<const cluster_snapshot> snapshot() const;
    void post(std::function<void()> run, std::function<void()> cancel);
    session_credentials credentials() const;
    bool is_controller() const { return _is_controller_flag.load(); }

    // Commands, run on the session thread (topic_admin.cc).
    struct create_request {
        std::string name;
        int32_t partitions = 0;  // used when assignment is empty
        int16_t replication_factor = 0;
        std::map<int32_t, std::vector<int32_t>> assignment;  // explicit, or empty
        std::map<std::string, std::string> configs;
        bool validate_only = false;
    };
    void create_topic_now(const create_request& req, const admin_fn& cb);
    void delete_topic_now(const std::string& name, const admin_fn& cb);
    struct add_partitions_request {
        std::string name;
        int32_t total = 0;  // the partition count wanted
        std::optional<std::vector<std::vector<int32_t>>> assignments;  // one per added partition
        bool validate_only = false;
    };
    bool update_isr_now(const std::string& topic, int32_t partition, const partition_state& next);  // partition_admin.cc
    void add_partitions_now(const add_partitions_request& req, const admin_fn& cb);  // partition_admin.cc
    void alter_topic_configs_now(const std::string& name, const config_edit_fn& edit, const admin_fn& cb,
                                 bool validate_only);

private:
    // Watch context, one per ZooKeeper handle: events carry its generation so that
    // late events of a closed handle are ignored. Immutable once created; kept until
    // the impl dies because the C client may still hold the pointer.
    struct watch_ctx {
        impl* self;
        uint64_t generation;
    };
    struct zk_event {
        uint64_t generation;
        int type;
        int state;
        std::string path;
    };
    struct command {
        std::function<void()> run;
        std::function<void()> cancel;
    };

    static void session_watcher(zhandle_t* zh, int type, int state, const char* path, void* ctx);
    static void node_watcher(zhandle_t* zh, int type, int state, const char* path, void* ctx);
    void push_event(uint64_t generation, int type, int state, const char* path);
    void* wctx() { return _ctx; }

    // coordinator.cc: lifecycle and session
    void run(std::promise<std::optional<std::string>> started);
    std::optional<std::string> startup();
    std::optional<std::string> open_session(const std::string& hosts, bool quiet = false);
    bool wait_connected(clock::time_point deadline);
    std::optional<std::string> ensure_paths();
    std::optional<std::string> ensure_cluster_id();
    std::optional<std::string> register_broker(bool wait_for_lingering);
    bool wait_for_path_event(const std::string& path, clock::time_point deadline);
    bool stop_requested();
    void loop();
    void dispatch(const zk_event& ev);
    void renew_session();
    void publish_if_changed();
    void retry_soon(std::chrono::milliseconds delay = std::chrono::milliseconds(500));

    // metadata_reader.cc: ZooKeeper -> _model, re-arming watches as it reads
    void mark_all_dirty();
    void refresh();
    bool read_brokers();
    bool read_controller();
    bool read_topic_list();
    bool read_delete_markers();
    bool read_topic(const std::string& name);
    void set_topic(const std::string& name, std::shared_ptr<const topic_info> t);

    // controller.cc
    void try_elect();
    void resign(const char* why);
    void reconcile();
    bool write_states(const topic_info& t, const std::map<int32_t, partition_state>& creates,
                      const std::map<int32_t, partition_state>& updates);
    bool delete_topic_znodes(const std::string& name);
    bool delete_marker(const std::string& name);
    bool assign_topic_id(const topic_info& t);
    bool commit_fenced(zk_txn& tx, const char* what);
    std::set<int32_t> live_brokers() const;

    // --- immutable after construction
    const zk_config _cfg;
    const snapshot_fn _on_snapshot;
    std::optional<connect_string> _connect;

    // --- shared (guarded by _mutex)
    mutable std::mutex _mutex;
    std::condition_variable _cv;
    std::deque<zk_event> _events;
    std::deque<command> _commands;
    bool _stop_requested = false;
    bool _started = false;
    std::shared_ptr<const cluster_snapshot> _published;
    session_credentials _credentials;
    std::atomic<bool> _is_controller_flag{false};
    std::thread _thread;

    // --- session thread only
    zk_client _zk;
    std::deque<watch_ctx> _watch_ctxs;
    watch_ctx* _ctx = nullptr;
    bool _connected = false;
    bool _expired = false;
    bool _registered = false;
    clock::time_point _retry_at = clock::time_point::max();
    cluster_snapshot _model;
    bool _changed = false;
    // dirty flags: what to re-read from ZooKeeper on the next pass
    bool _need_brokers = false, _need_controller = false, _need_topic_list = false, _need_markers = false;
    std::set<std::string> _need_topics;
    std::set<std::string> _delete_markers;
    std::map<std::string, int32_t> _topic_zk_versions;  // of /brokers/topics/<t>, for the topic-id backfill
    // controller
    bool _is_controller = false;
    int32_t _controller_epoch = 0;
    int32_t _epoch_zk_version = 0;
    bool _need_reconcile = false;
    std::map<int32_t, int64_t> _known_broker_epochs;  // as of the last successful reconcile
};

}  // namespace sluice::coord
