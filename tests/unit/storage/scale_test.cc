// What keeps 10,000 partitions cheap: an unclean start that does not read preallocated
// indexes, a recovery point that only moves when data is durable, flushes that cost
// nothing when nothing changed, the fast clean stop (seal + one sync_log_dir), and
// descriptors that come back after release_idle_fds.
#include "storage/log_dir.h"
#include "storage/partition_log.h"

#include "test_util.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace sluice::storage;
using namespace sluice::storage::test;
namespace fs = std::filesystem;

namespace {

log_config scale_config() {
    log_config cfg;
    cfg.segment_bytes = 64 * 1024;
    cfg.index_interval_bytes = 256;
    cfg.index_max_bytes = 4 * 1024 * 1024;  // preallocated, sparse: 1024 pages
    return cfg;
}

std::unique_ptr<partition_log> open_log(const fs::path& dir, bool clean,
                                        std::optional<int64_t> recovery_point = std::nullopt) {
    return open_after_stop(dir, scale_config(), clean, recovery_point);
}

void append_n(partition_log& log, int batches) {
    for (int i = 0; i < batches; ++i) {
        int first = static_cast<int>(log.log_end_offset());
        auto b = make_batch(first, 2, 1000 + first, 100);
        REQUIRE(log.append(b, 0, 0).error == log_errc::ok);
    }
}

// Writes `batches` batches in a child process that then dies without closing anything
// (what kill -9 leaves: data in the page cache, untrimmed preallocated indexes).
void write_and_die(const fs::path& dir, int batches) {
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        open_options o;
        o.clean_shutdown = true;
        auto log = partition_log::open(dir, scale_config(), o);
        if (!log) ::_exit(2);
        for (int i = 0; i < batches; ++i) {
            int first = static_cast<int>((*log)->log_end_offset());
            auto b = make_batch(first, 2, 1000 + first, 100);
            if ((*log)->append(b, 0, 0).error != log_errc::ok) ::_exit(3);
        }
        ::_exit(0);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
}

// Pages of the file in the page cache (mincore over a fresh mapping).
size_t resident_pages(const fs::path& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    size_t size = fs::file_size(file);
    if (size == 0) {
        ::close(fd);
        return 0;
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    ::close(fd);
    REQUIRE(p != MAP_FAILED);
    size_t pages = (size + 4095) / 4096;
    std::vector<unsigned char> vec(pages);
    REQUIRE(::mincore(p, size, vec.data()) == 0);
    ::munmap(p, size);
    size_t n = 0;
    for (auto v : vec) n += v & 1;
    return n;
}

void drop_page_cache(const fs::path& file) {
    int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    REQUIRE(fd >= 0);
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
}

fs::path active_index(const fs::path& dir) {
    fs::path last;
    for (auto& e : fs::directory_iterator(dir))
        if (e.path().extension() == ".index" && (last.empty() || e.path() > last)) last = e.path();
    return last;
}

}  // namespace

TEST_CASE("scale: an unclean start rebuilds the active index without reading the preallocated file") {
    temp_dir dir;
    auto path = dir.path() / "t-0";
    write_and_die(path, 20);
    auto index = active_index(path);
    CHECK(fs::file_size(index) == scale_config().index_max_bytes);  // untrimmed
    // Stale non-zero bytes far past the real entries (a previous life of the file):
    // they must neither be read nor survive as entries.
    {
        int fd = ::open(index.c_str(), O_RDWR | O_CLOEXEC);
        REQUIRE(fd >= 0);
        std::vector<uint8_t> junk(4096, 0x5a);
        REQUIRE(::pwrite(fd, junk.data(), junk.size(), 3 * 1024 * 1024) == 4096);
        ::close(fd);
    }
    drop_page_cache(index);
    REQUIRE(resident_pages(index) == 0);

    auto log = open_log(path, false, 0);
    CHECK(log->log_end_offset() == 40);
    // The rebuild wrote a page or two of entries; the binary search for the zero tail of
    // the old code faulted ~20 pages of the 4 MiB file in.
    CHECK(resident_pages(index) <= 2);
    const auto& seg = *log->segments().back();
    CHECK(seg.index().entries() > 0);
    CHECK(seg.sanity_check());
    for (size_t i = 0; i < seg.index().entries(); ++i) {
        auto e = seg.index().entry(i);
        CHECK(e.offset < 40);
        CHECK(e.position < seg.size_bytes());
    }
    auto got = records_of(slice_bytes(log->read(0, INT32_MAX, true)));
    REQUIRE(got.size() == 40);
    CHECK(got[39].value.starts_with("v39"));
    append_n(*log, 3);
    CHECK(log->log_end_offset() == 46);
    REQUIRE(!log->close());
    log.reset();
    // Trimmed to the rebuilt entries: the stale bytes are gone for good.
    auto bytes = fs::file_size(index);
    CHECK(bytes % 8 == 0);
    CHECK(bytes < 4096);
    auto again = open_log(path, true);
    CHECK(again->log_end_offset() == 46);
    CHECK(again->segments().back()->sanity_check());
}

TEST_CASE("scale: an unclean start keeps the recovery point until a flush makes data durable") {
    temp_dir dir;
    auto path = dir.path() / "t-0";
    write_and_die(path, 10);
    auto log = open_log(path, false, 6);
    CHECK(log->log_end_offset() == 20);
    CHECK(log->recovery_point() == 6);
    CHECK(log->flush_needed());
    REQUIRE(!log->flush());
    CHECK(log->recovery_point() == 20);
    CHECK(!log->flush_needed());
    log.reset();

    // A recovery point past the end (a checkpoint newer than a truncated log) clamps.
    write_and_die(dir.path() / "t-1", 3);
    auto other = open_log(dir.path() / "t-1", false, 1000);
    CHECK(other->recovery_point() == 6);
}

TEST_CASE("scale: a clean start needs no flush; appends and new segments do") {
    temp_dir dir;
    auto path = dir.path() / "t-0";
    {
        auto log = open_log(path, true);
        CHECK(log->flush_needed());  // the directory and first segment are new
        append_n(*log, 5);
        REQUIRE(!log->flush());
        CHECK(!log->flush_needed());
        REQUIRE(!log->close());
    }
    auto log = open_log(path, true);
    CHECK(log->recovery_point() == 10);
    CHECK(!log->flush_needed());
    REQUIRE(!log->flush());  // nothing to do
    append_n(*log, 1);
    CHECK(log->flush_needed());
    REQUIRE(!log->flush());
    CHECK(log->recovery_point() == 12);
    CHECK(!log->flush_needed());
}

TEST_CASE("scale: fast clean stop: seal every log, one sync_log_dir, synced(), then a clean start") {
    temp_dir dir;
    std::vector<std::unique_ptr<partition_log>> logs;
    for (int p = 0; p < 20; ++p) {
        logs.push_back(open_log(dir.path() / ("t-" + std::to_string(p)), true));
        append_n(*logs.back(), 1 + p % 4);
    }
    for (auto& l : logs) REQUIRE(!l->close(close_mode::seal));
    for (auto& l : logs) CHECK(l->recovery_point() < l->log_end_offset());
    REQUIRE(!sync_log_dir(dir.path()));
    std::vector<checkpoint_entry> rps;
    for (int p = 0; p < 20; ++p) {
        auto& l = logs[static_cast<size_t>(p)];
        l->synced();
        CHECK(l->recovery_point() == l->log_end_offset());
        rps.push_back({{"t", p}, l->recovery_point()});
    }
    REQUIRE(!write_offset_checkpoint(dir.path() / recovery_point_checkpoint_file, rps));
    REQUIRE(!write_clean_shutdown_marker(dir.path()));
    logs.clear();
    CHECK(sync_log_dir(dir.path() / "missing"));  // an error, not a crash

    auto clean = consume_clean_shutdown_marker(dir.path());
    REQUIRE(clean.has_value());
    REQUIRE(*clean);
    for (int p = 0; p < 20; ++p) {
        auto path = dir.path() / ("t-" + std::to_string(p));
        // Sealed at close: the active index was trimmed to its entries.
        CHECK(fs::file_size(active_index(path)) < scale_config().index_max_bytes);
        auto log = open_log(path, true);
        CHECK(log->log_end_offset() == 2 * (1 + p % 4));
    }
}

TEST_CASE("scale: close(close_mode::flush) flushes then seals") {
    temp_dir dir;
    auto log = open_log(dir.path() / "t-0", true);
    append_n(*log, 4);
    REQUIRE(!log->close(close_mode::flush));
    CHECK(log->recovery_point() == 8);
    CHECK(!log->close());  // closing twice is harmless
}

TEST_CASE("scale: an idle log holds one descriptor, none after release_idle_fds, and reopens") {
    temp_dir dir;
    auto cfg = scale_config();
    cfg.segment_bytes = 4096;  // several segments
    auto log = partition_log::open(dir.path() / "t-0", cfg);
    REQUIRE(log.has_value());
    auto& l = **log;
    for (int i = 0; i < 60; ++i) {
        int first = static_cast<int>(l.log_end_offset());
        auto b = make_batch(first, 2, 1000 + first, 100);
        REQUIRE(l.append(b, 0, 0).error == log_errc::ok);
    }
    REQUIRE(l.segment_count() >= 3);
    CHECK(l.open_fds() == 1);  // sealed segments gave theirs back; indexes keep none
    CHECK(l.release_idle_fds() == 1);
    CHECK(l.open_fds() == 0);
    // Reads of a sealed and of the active segment reopen lazily, through fd() too.
    auto r = l.read(0, INT32_MAX, true);
    REQUIRE(r.error == log_errc::ok);
    auto got = records_of(slice_bytes(r));
    REQUIRE(got.size() == 120);
    CHECK(got[119].value.starts_with("v119"));
    r = {};
    l.release_idle_fds();
    CHECK(l.open_fds() == 0);
    // Appending reopens the active segment's descriptor.
    auto b = make_batch(120, 2, 5000, 0);
    REQUIRE(l.append(b, 0, 0).error == log_errc::ok);
    CHECK(l.open_fds() >= 1);
    REQUIRE(!l.flush());
    got = records_of(slice_bytes(l.read(118, INT32_MAX, true)));
    REQUIRE(got.size() == 4);
    CHECK(got.back().offset == 121);
    // A slice that is out pins its segment's descriptor.
    auto held = l.read(0, 100, true);
    REQUIRE(!held.slices.empty());
    l.release_idle_fds();
    CHECK(held.slices[0].file->fd() >= 0);
}

TEST_CASE("scale: dropping resident pages of an idle log loses nothing, dirty index pages included") {
    temp_dir dir;
    auto path = dir.path() / "t-0";
    auto log = open_log(path, true);
    append_n(*log, 200);  // index entries written through the mapping: dirty pages
    const auto& seg = *log->segments().back();
    size_t entries = seg.index().entries();
    REQUIRE(entries > 10);
    auto last = seg.index().entry(entries - 1);
    log->release_idle_fds();  // also release_memory() of every segment
    CHECK(seg.index().entries() == entries);
    CHECK(seg.index().entry(entries - 1).offset == last.offset);
    CHECK(seg.index().entry(entries - 1).position == last.position);
    for (int64_t off = 0; off < 400; off += 37) {
        auto r = log->read(off, 1, true);
        REQUIRE(r.error == log_errc::ok);
        auto got = records_of(slice_bytes(r));
        REQUIRE(!got.empty());
        CHECK(got.front().offset <= off);
        CHECK(got.back().offset >= off);
    }
    append_n(*log, 5);
    REQUIRE(!log->close());
    log.reset();
    auto again = open_log(path, true);
    CHECK(again->log_end_offset() == 410);
    CHECK(again->segments().back()->sanity_check());
    CHECK(again->segments().back()->index().entries() >= entries);
}
