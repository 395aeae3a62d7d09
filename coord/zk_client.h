#pragma once
// Thin RAII wrapper over one libzookeeper-mt handle using the synchronous API.
// Concurrency: a zk_client is used by exactly one thread (the coordinator's session
// thread); its synchronous calls block only that thread. Watch callbacks run on the
// library's own completion thread and must only hand events over (never call back in).
// Return codes are ZooKeeper's (ZOK, ZNONODE, ZNODEEXISTS, ZBADVERSION, ...).
// The synchronous API is declared only for the multi-threaded library.
#ifndef THREADED
#define THREADED
#endif
#include <zookeeper/zookeeper.h>

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

namespace sluice::coord {

std::string zk_error_name(int rc);

struct zk_node {
    std::optional<std::string> data;  // nullopt for null data
    Stat stat{};
};

class zk_client {
public:
    zk_client() = default;
    ~zk_client() { close(); }
    zk_client(const zk_client&) = delete;
    zk_client& operator=(const zk_client&) = delete;

    // Starts connecting (asynchronously); the session watcher sees ZOO_CONNECTED_STATE.
    bool open(const std::string& hosts, int32_t session_timeout_ms, watcher_fn session_watcher, void* ctx);
    void close();  // ends the session: its ephemeral znodes go at once
    zhandle_t* handle() const { return _zh; }
    bool is_open() const { return _zh != nullptr; }
    int64_t session_id() const;
    int32_t negotiated_timeout_ms() const;

    // watcher == nullptr: no watch. Otherwise a one-shot watch with (watcher, ctx).
    int get(const std::string& path, zk_node& out, watcher_fn watcher = nullptr, void* ctx = nullptr);
    int exists(const std::string& path, Stat* stat, watcher_fn watcher = nullptr, void* ctx = nullptr);
    int children(const std::string& path, std::vector<std::string>& out, watcher_fn watcher = nullptr,
                 void* ctx = nullptr);
    int create(const std::string& path, const std::optional<std::string>& data, int flags = 0);
    int set(const std::string& path, const std::optional<std::string>& data, int version, Stat* stat = nullptr);
    int remove(const std::string& path, int version = -1);
    // Creates every missing ancestor and the path itself (persistent, null data).
    int create_recursive(const std::string& path);
    // Reads many znodes (no watches) with every request in flight at once (zoo_aget), so
    // N reads cost about one round trip instead of N -- Kafka's controller pipelines its
    // reads the same way. rcs[i] / out[i] belong to paths[i]; returns the first error
    // other than ZNONODE (ZOK when each read either succeeded or found no node).
    int get_many(const std::vector<std::string>& paths, std::vector<int>& rcs, std::vector<zk_node>& out);

private:
    zhandle_t* _zh = nullptr;
};

// One atomic multi-op transaction. Owns the strings the C ops point into.
class zk_txn {
public:
    void check(std::string path, int version);
    void create(std::string path, std::optional<std::string> data, int flags = 0);
    void set(std::string path, std::optional<std::string> data, int version);
    void remove(std::string path, int version = -1);
    size_t size() const { return _ops.size(); }
    // rc of the whole multi; results()[i].err tells which op failed.
    int commit(zk_client& zk);
    const std::vector<zoo_op_result_t>& results() const { return _results; }
    const Stat& stat(size_t i) const { return _stats[i]; }

private:
    struct op {
        enum kind { check_op, create_op, set_op, remove_op } k;
        std::string path;
        std::optional<std::string> data;
        int version = -1;
        int flags = 0;
    };
    std::vector<op> _ops;
    std::vector<zoo_op_result_t> _results;
    std::deque<Stat> _stats;
    std::deque<std::string> _path_buffers;
};

}  // namespace sluice::coord
