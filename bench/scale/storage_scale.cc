// sluice-storage-scale: the storage layer alone at N partitions, without a broker,
// ZooKeeper or clients in the way -- to profile what bench/scale/scale_partitions.py
// measures end to end (startup after a clean stop and after kill -9, clean stop).
//
//   sluice-storage-scale create <dir> <n> <records>
//       creates <dir>/scale-<i>-0 for i < n, appends <records> one-record batches to each,
//       then dies without closing anything (_exit: what kill -9 leaves behind).
//   sluice-storage-scale open <dir> <n> [--close serial|sync|crash] [--append k]
//       consumes the clean-shutdown marker and the recovery-point checkpoint, opens the
//       n logs (clean or unclean start as the marker says), prints the time, RSS and fd
//       deltas, optionally appends k more records to each, then
//         serial: flush() + close() of every log, one after another (the old shutdown);
//         sync:   close(close_mode::seal) of every log, one sync_log_dir, synced();
//         crash:  _exit without closing (the next open is unclean);
//       and, unless crash, writes the checkpoints and the clean-shutdown marker.
//
// Output: one line of "key=value" figures per phase, for bench/results/scale-*.md.
#include "base/log.h"
#include "storage/log_dir.h"
#include "storage/partition_log.h"
#include "storage/record_batch.h"

#include <dirent.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace sluice;
using namespace sluice::storage;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

long status_kb(const char* key) {
    std::ifstream in("/proc/self/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(key, 0) == 0) return std::stol(line.substr(std::strlen(key)));
    return -1;
}

int open_fd_count() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d) != nullptr) ++n;
        ::closedir(d);
    }
    return n - 3;  // ".", ".." and the DIR's own descriptor
}

long map_count() {
    std::ifstream in("/proc/self/maps");
    std::string line;
    long n = 0;
    while (std::getline(in, line)) ++n;
    return n;
}

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

log_config scale_config() {
    log_config cfg;  // Kafka's defaults: 1 GiB segments, 10 MiB indexes
    return cfg;
}

topic_partition tp_of(int i) { return {"scale-" + std::to_string(i), 0}; }

bool append_records(partition_log& log, int count) {
    for (int r = 0; r < count; ++r) {
        batch_builder b(now_ms());
        b.add("k" + std::to_string(r), "v" + std::to_string(r), now_ms());
        auto bytes = b.build();
        if (log.append(bytes, 0, now_ms()).error != log_errc::ok) return false;
    }
    return true;
}

// Opens (or creates) the n partition logs under dir; false after printing the first error.
bool open_logs(const fs::path& dir, int n, bool clean, const std::map<topic_partition, int64_t>& recovery_points,
               std::vector<std::unique_ptr<partition_log>>& logs) {
    for (int i = 0; i < n; ++i) {
        open_options o;
        o.clean_shutdown = clean;
        if (auto it = recovery_points.find(tp_of(i)); it != recovery_points.end()) o.recovery_point = it->second;
        o.now_ms = now_ms();
        auto log = partition_log::open(dir / partition_dir_name(tp_of(i)), scale_config(), o);
        if (!log) {
            std::fprintf(stderr, "open %d: %s\n", i, log.error().message().c_str());
            return false;
        }
        logs.push_back(std::move(*log));
    }
    return true;
}

int create(const fs::path& dir, int n, int records) {
    fs::create_directories(dir);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<partition_log>> logs;
    if (!open_logs(dir, n, true, {}, logs)) return 1;
    double create_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    for (auto& l : logs)
        if (!append_records(*l, records)) return 1;
    std::printf("phase=create partitions=%d create_s=%.3f append_s=%.3f fds=%d rss_kb=%ld\n", n,
                create_s, seconds_since(t0), open_fd_count(), status_kb("VmRSS:"));
    std::fflush(stdout);
    ::_exit(0);  // no close, no checkpoint, no marker: kill -9
}

int open_all(const fs::path& dir, int n, const std::string& close_how, int append) {
    long rss0 = status_kb("VmRSS:");
    long anon0 = status_kb("RssAnon:");
    long file0 = status_kb("RssFile:");
    int fds0 = open_fd_count();
    auto clean = consume_clean_shutdown_marker(dir);
    auto rp = read_offset_checkpoint(dir / recovery_point_checkpoint_file);
    std::map<topic_partition, int64_t> points;
    if (rp)
        for (auto& e : *rp) points[e.tp] = e.offset;
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::unique_ptr<partition_log>> logs;
    if (!open_logs(dir, n, clean && *clean, points, logs)) return 1;
    double open_s = seconds_since(t0);
    long rss1 = status_kb("VmRSS:");
    std::printf("phase=open start=%s partitions=%d open_s=%.3f rss_delta_kb=%ld "
                "rss_per_partition_kb=%.2f anon_kb=%ld file_kb=%ld fds=%d maps=%ld\n",
                clean && *clean ? "clean" : "unclean", n, open_s, rss1 - rss0,
                static_cast<double>(rss1 - rss0) / n, status_kb("RssAnon:") - anon0,
                status_kb("RssFile:") - file0, open_fd_count() - fds0, map_count());
    for (auto& l : logs)
        if (!append_records(*l, append)) return 1;
    if (close_how == "crash") {
        std::fflush(stdout);
        ::_exit(0);
    }
    t0 = std::chrono::steady_clock::now();
    std::vector<checkpoint_entry> rps;
    if (close_how == "serial") {
        for (auto& l : logs) {
            if (auto ec = l->flush()) std::fprintf(stderr, "flush: %s\n", ec.message().c_str());
            if (auto ec = l->close()) std::fprintf(stderr, "close: %s\n", ec.message().c_str());
        }
    } else {
        for (auto& l : logs)
            if (auto ec = l->close(close_mode::seal)) std::fprintf(stderr, "close: %s\n", ec.message().c_str());
        if (auto ec = sync_log_dir(dir)) {
            std::fprintf(stderr, "sync: %s\n", ec.message().c_str());
            return 1;
        }
        for (auto& l : logs) l->synced();
    }
    for (int i = 0; i < n; ++i) rps.push_back({tp_of(i), logs[static_cast<size_t>(i)]->recovery_point()});
    double close_s = seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    if (auto ec = write_offset_checkpoint(dir / recovery_point_checkpoint_file, rps)) return 1;
    if (auto ec = write_clean_shutdown_marker(dir)) return 1;
    std::printf("phase=close mode=%s partitions=%d close_s=%.3f checkpoint_s=%.3f\n",
                close_how.c_str(), n, close_s, seconds_since(t0));
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    log::set_level(log::level::warn);
    if (argc < 4) {
        std::fprintf(stderr, "usage: %s create <dir> <n> <records> | open <dir> <n> [--close serial|sync|crash] "
                             "[--append k]\n", argv[0]);
        return 2;
    }
    std::string cmd = argv[1];
    fs::path dir = argv[2];
    int n = std::atoi(argv[3]);
    if (cmd == "create") return create(dir, n, argc > 4 ? std::atoi(argv[4]) : 3);
    std::string close_how = "sync";
    int append = 0;
    for (int i = 4; i + 1 < argc; i += 2) {
        std::string opt = argv[i];
        if (opt == "--close") close_how = argv[i + 1];
        else if (opt == "--append") append = std::atoi(argv[i + 1]);
    }
    return open_all(dir, n, close_how, append);
}
