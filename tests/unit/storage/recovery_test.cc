// Recovery after unclean shutdowns: torn and corrupted tails, lost or garbage indexes,
// a process killed mid-append, and a full disk.
#include "storage/partition_log.h"

#include "test_util.h"

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <fstream>
#include <algorithm>
#include <random>

using namespace sluice::storage;
using namespace sluice::storage::test;
namespace fs = std::filesystem;

namespace {

log_config small_config() {
    log_config cfg;
    cfg.segment_bytes = 8192;
    cfg.index_interval_bytes = 512;
    cfg.index_max_bytes = 4096;
    return cfg;
}

struct written {
    std::vector<record_kv> model;
    std::vector<std::pair<int64_t, int64_t>> batch_ranges;  // [base, last] per batch
};

written write_log(const fs::path& dir, int batches, uint32_t seed) {
    written w;
    auto log = partition_log::open(dir, small_config());
    REQUIRE(log.has_value());
    std::mt19937 rng(seed);
    for (int i = 0; i < batches; ++i) {
        int first = static_cast<int>((*log)->log_end_offset());
        int n = 1 + static_cast<int>(rng() % 4);
        size_t pad = rng() % 300;
        auto b = make_batch(first, n, 1000 + first, pad);
        REQUIRE((*log)->append(b, 0, 0).error == log_errc::ok);
        for (int k = 0; k < n; ++k)
            w.model.push_back({first + k, "k" + std::to_string(first + k),
                               "v" + std::to_string(first + k) + std::string(pad, 'x')});
        w.batch_ranges.push_back({first, first + n - 1});
    }
    REQUIRE(!(*log)->close());
    return w;
}

std::vector<fs::path> files_with(const fs::path& dir, std::string_view ext) {
    std::vector<fs::path> out;
    for (auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ext) out.push_back(e.path());
    std::sort(out.begin(), out.end());
    return out;
}

std::unique_ptr<partition_log> reopen(const fs::path& dir, bool clean,
                                      std::optional<int64_t> recovery_point = std::nullopt) {
    return open_after_stop(dir, small_config(), clean, recovery_point);
}

// The log holds exactly a prefix of whole batches of the model, and is writable after.
void check_prefix(partition_log& log, const written& w) {
    int64_t end = log.log_end_offset();
    bool boundary = end == 0;
    for (auto& [base, last] : w.batch_ranges) boundary = boundary || last + 1 == end;
    CHECK(boundary);
    auto got = records_of(slice_bytes(log.read(0, INT32_MAX, true)));
    REQUIRE(got.size() == static_cast<size_t>(end));
    for (size_t i = 0; i < got.size(); ++i) REQUIRE(got[i] == w.model[i]);
    // Index lookups work for every offset after the rebuild.
    for (int64_t off = 0; off < end; off += 3) {
        auto r = log.read(off, 1, true);
        REQUIRE(r.error == log_errc::ok);
        auto h = parse_batch_header(slice_bytes(r).data());
        CHECK(h.base_offset <= off);
        CHECK(h.last_offset() >= off);
    }
    auto more = make_batch(static_cast<int>(end), 2);
    auto r = log.append(more, 0, 0);
    CHECK(r.error == log_errc::ok);
    CHECK(r.base_offset == end);
}

}  // namespace

TEST_CASE("recovery: torn tail at random byte positions is cut at the last whole batch") {
    std::mt19937 rng(1234);
    for (int round = 0; round < 25; ++round) {
        temp_dir dir;
        auto path = dir.path() / "t-0";
        auto w = write_log(path, 60, round);
        auto logs = files_with(path, ".log");
        REQUIRE(logs.size() >= 2);
        auto last = logs.back();
        auto size = fs::file_size(last);
        auto cut = rng() % size;
        CAPTURE(round);
        CAPTURE(cut);
        fs::resize_file(last, cut);
        auto log = reopen(path, false);
        CHECK(log->log_end_offset() <= static_cast<int64_t>(w.model.size()));
        check_prefix(*log, w);
    }
}

TEST_CASE("recovery: a flipped byte truncates from its batch on, later segments go too") {
    std::mt19937 rng(99);
    for (int round = 0; round < 25; ++round) {
        temp_dir dir;
        auto path = dir.path() / "t-0";
        auto w = write_log(path, 60, 100 + round);
        auto logs = files_with(path, ".log");
        REQUIRE(logs.size() >= 3);
        auto victim = logs[logs.size() - 2 - rng() % 2];  // not necessarily the last
        auto size = fs::file_size(victim);
        auto at = rng() % size;
        CAPTURE(round);
        CAPTURE(victim.filename().string());
        CAPTURE(at);
        {
            std::fstream f(victim, std::ios::in | std::ios::out | std::ios::binary);
            f.seekg(static_cast<std::streamoff>(at));
            char c;
            f.read(&c, 1);
            c = static_cast<char>(c ^ (1 << (rng() % 8)));
            f.seekp(static_cast<std::streamoff>(at));
            f.write(&c, 1);
        }
        auto log = reopen(path, false, 0);
        // Every batch before the damaged one survives; the damaged one does not.
        int64_t victim_base = std::stoll(victim.stem().string());
        CHECK(log->log_end_offset() >= victim_base);
        CHECK(log->log_end_offset() < static_cast<int64_t>(w.model.size()));
        CHECK(log->segments().back()->base_offset() == victim_base);
        check_prefix(*log, w);
    }
}

TEST_CASE("recovery: a clean start trusts indexes; missing or garbage ones are rebuilt") {
    temp_dir dir;
    auto path = dir.path() / "t-0";
    auto w = write_log(path, 80, 5);
    auto indexes = files_with(path, ".index");
    REQUIRE(indexes.size() >= 3);
    SUBCASE("missing .index") { fs::remove(indexes[1]); }
    SUBCASE("missing .timeindex") { fs::remove(files_with(path, ".timeindex")[0]); }
    SUBCASE("garbage .index") {
        std::ofstream f(indexes[1], std::ios::binary | std::ios::trunc);
        std::mt19937 rng(3);
        for (int i = 0; i < 64; ++i) f.put(static_cast<char>(rng()));
    }
    SUBCASE("index pointing at the wrong batch") {
        std::fstream f(indexes.back(), std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(0);
        f.write("\0\0\0\1\0\0\0\7", 8);
    }
    auto log = reopen(path, true);
    CHECK(log->log_end_offset() == static_cast<int64_t>(w.model.size()));
    check_prefix(*log, w);
    for (auto& seg : log->segments()) CHECK(seg->sanity_check());
}

TEST_CASE("recovery: a process killed mid-run leaves untrimmed indexes and no data loss") {
    temp_dir dir;
    auto path = dir.path() / "t-0";
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Child: append, then die without closing (no index trim, no marker).
        auto log = partition_log::open(path, small_config());
        if (!log) ::_exit(2);
        for (int i = 0; i < 100; ++i) {
            auto b = make_batch(i * 3, 3);
            if ((*log)->append(b, 0, 0).error != log_errc::ok) ::_exit(3);
        }
        ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    // The active segment's index is still preallocated.
    auto indexes = files_with(path, ".index");
    CHECK(fs::file_size(indexes.back()) == 4096);
    // No marker in the parent dir: the default is an unclean start.
    auto log = partition_log::open(path, small_config());
    REQUIRE(log.has_value());
    CHECK((*log)->log_end_offset() == 300);
    auto got = records_of(slice_bytes((*log)->read(0, INT32_MAX, true)));
    REQUIRE(got.size() == 300);
    CHECK(got[299].value == "v299");
}

namespace {

// Appends 4 KiB batches until one fails; returns the failure's errno.
std::error_code fill_until_failure(partition_log& log, std::vector<record_kv>& model) {
    for (int i = 0; i < 100000; ++i) {
        int first = static_cast<int>(log.log_end_offset());
        auto b = make_batch(first, 1, 0, 4000);
        auto r = log.append(b, 0, 0);
        if (r.error != log_errc::ok) {
            CHECK(r.error == log_errc::storage_error);
            return r.io_error;
        }
        model.push_back({first, "k" + std::to_string(first),
                         "v" + std::to_string(first) + std::string(4000, 'x')});
    }
    FAIL("the disk never filled up");
    return {};
}

void check_after_failure(partition_log& log, const std::vector<record_kv>& model) {
    CHECK(log.log_end_offset() == static_cast<int64_t>(model.size()));
    auto got = records_of(slice_bytes(log.read(0, INT32_MAX, true)));
    CHECK(got == model);
    // The failed write left nothing behind in the file.
    CHECK(fs::file_size(log.segments().back()->log_path()) == log.segments().back()->size_bytes());
}

}  // namespace

TEST_CASE("recovery: ENOSPC on a tiny tmpfs fails the append, the log stays consistent") {
    temp_dir dir;
    auto mnt = dir.path() / "small";
    fs::create_directories(mnt);
    if (::geteuid() != 0 || ::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=256k") != 0) {
        MESSAGE("not root or mount(2) not permitted: tmpfs ENOSPC test skipped "
                "(the RLIMIT_FSIZE test below still covers failed writes)");
        return;
    }
    std::vector<record_kv> model;
    {
        auto cfg = small_config();
        cfg.segment_bytes = 1 << 20;  // one segment: the disk fills before a roll
        auto log = partition_log::open(mnt / "t-0", cfg);
        REQUIRE(log.has_value());
        auto ec = fill_until_failure(**log, model);
        CHECK(ec == std::errc::no_space_on_device);
        check_after_failure(**log, model);
        CHECK(model.size() > 10);
    }
    ::umount2(mnt.c_str(), MNT_DETACH);
}

TEST_CASE("recovery: a file size limit (EFBIG) fails the append, the log stays consistent") {
    temp_dir dir;
    rlimit old{};
    REQUIRE(::getrlimit(RLIMIT_FSIZE, &old) == 0);
    auto cfg = small_config();
    cfg.segment_bytes = 1 << 20;
    auto log = partition_log::open(dir.path() / "t-0", cfg);
    REQUIRE(log.has_value());
    std::vector<record_kv> model;
    // Without SIGXFSZ ignored the kernel would kill the test process.
    auto old_handler = ::signal(SIGXFSZ, SIG_IGN);
    rlimit tiny = old;
    tiny.rlim_cur = 200 * 1024 + 100;  // not a multiple of the batch size: a short write first
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &tiny) == 0);
    auto ec = fill_until_failure(**log, model);
    REQUIRE(::setrlimit(RLIMIT_FSIZE, &old) == 0);
    ::signal(SIGXFSZ, old_handler);
    CHECK(ec == std::errc::file_too_large);
    check_after_failure(**log, model);
    CHECK(model.size() > 10);
    // Once space is back, appends continue at the same offset.
    auto more = make_batch(static_cast<int>(model.size()), 1);
    auto r = (*log)->append(more, 0, 0);
    CHECK(r.error == log_errc::ok);
    CHECK(r.base_offset == static_cast<int64_t>(model.size()));
}
