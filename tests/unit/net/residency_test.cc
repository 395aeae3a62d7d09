// residency: mincore-based checks, the per-file cache, and the mmap_copy send path
// falling back to buffered for pages that are not in the page cache.
#include "net/residency.h"
#include "net_test_util.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>

using namespace sluice;
using namespace sluice::net;
using namespace sluice::net::test;

namespace {

constexpr size_t kib = 1024;

// A sparse temp file: the first `written` bytes hold a pattern (so their pages are in the
// page cache), the rest up to `size` is a hole that nothing has read (pages not resident,
// reads as zeros). Mapped read-only.
class sparse_file final : public sluice::file_handle {
public:
    sparse_file(size_t size, size_t written) : _size(size) {
        char path[] = "/tmp/sluice_residency_test_XXXXXX";
        _fd = ::mkstemp(path);
        REQUIRE(_fd >= 0);
        ::unlink(path);
        REQUIRE(::ftruncate(_fd, static_cast<off_t>(size)) == 0);
        _expected.assign(size, 0);
        for (size_t i = 0; i < written; ++i) _expected[i] = static_cast<uint8_t>(i * 7 + 1);
        REQUIRE(::pwrite(_fd, _expected.data(), written, 0) == static_cast<ssize_t>(written));
        void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, _fd, 0);
        REQUIRE(m != MAP_FAILED);
        _map = static_cast<const uint8_t*>(m);
    }
    ~sparse_file() override {
        ::munmap(const_cast<uint8_t*>(_map), _size);
        ::close(_fd);
    }
    int fd() const override { return _fd; }
    const uint8_t* mapped() const override { return _map; }
    uint64_t mapped_size() const override { return _size; }
    const std::vector<uint8_t>& expected() const { return _expected; }
    void write_at(size_t pos, size_t n) {
        std::vector<uint8_t> b(n, 0x5a);
        REQUIRE(::pwrite(_fd, b.data(), n, static_cast<off_t>(pos)) == static_cast<ssize_t>(n));
        std::copy(b.begin(), b.end(), _expected.begin() + static_cast<ptrdiff_t>(pos));
    }

private:
    size_t _size;
    int _fd = -1;
    const uint8_t* _map = nullptr;
    std::vector<uint8_t> _expected;
};

}  // namespace

TEST_CASE("residency: written pages are resident, an unread hole is not") {
    sparse_file f(1024 * kib, 64 * kib);
    std::vector<unsigned char> scratch;
    auto written = range_resident(f.mapped(), 0, 64 * kib, scratch);
    REQUIRE(written.has_value());
    CHECK(*written);
    auto unaligned = range_resident(f.mapped(), 1000, 60 * kib, scratch);
    REQUIRE(unaligned.has_value());
    CHECK(*unaligned);
    auto hole = range_resident(f.mapped(), 512 * kib, 100 * kib, scratch);
    REQUIRE(hole.has_value());
    CHECK_FALSE(*hole);
    // One non-resident page at the end of an otherwise resident range is enough.
    auto straddle = range_resident(f.mapped(), 60 * kib, 8 * kib, scratch);
    REQUIRE(straddle.has_value());
    CHECK_FALSE(*straddle);
    CHECK(*range_resident(f.mapped(), 12345, 0, scratch));
}

TEST_CASE("residency_cache: answers from the cache, never caches a miss, extends forward") {
    auto f = std::make_shared<sparse_file>(1024 * kib, 256 * kib);
    std::shared_ptr<const sluice::file_handle> fh = f;
    residency_cache cache(std::chrono::milliseconds(10'000));
    CHECK(cache.resident(fh, 0, 64 * kib));
    CHECK(cache.checks() == 1);
    CHECK(cache.resident(fh, 4096, 32 * kib));  // inside the known range
    CHECK(cache.cached() == 1);
    CHECK(cache.resident(fh, 64 * kib, 64 * kib));  // adjacent: checked, then merged
    CHECK(cache.checks() == 2);
    CHECK(cache.resident(fh, 10 * kib, 100 * kib));  // inside the merged range
    CHECK(cache.cached() == 2);
    CHECK_FALSE(cache.resident(fh, 600 * kib, 4 * kib));
    CHECK(cache.not_resident() == 1);
    f->write_at(600 * kib, 4 * kib);  // now resident: a miss was not remembered
    CHECK(cache.resident(fh, 600 * kib, 4 * kib));
    CHECK_FALSE(cache.resident(fh, 1020 * kib, 8 * kib));  // beyond the mapping
    std::shared_ptr<const sluice::file_handle> none;
    CHECK_FALSE(cache.resident(none, 0, 1));
}

TEST_CASE("residency_cache: entries expire after the ttl") {
    auto f = std::make_shared<sparse_file>(256 * kib, 64 * kib);
    std::shared_ptr<const sluice::file_handle> fh = f;
    residency_cache cache(std::chrono::milliseconds(0));
    CHECK(cache.resident(fh, 0, 4 * kib));
    CHECK(cache.resident(fh, 0, 4 * kib));
    CHECK(cache.checks() == 2);
    CHECK(cache.cached() == 0);
}

TEST_CASE("send: mmap_copy sends resident pages from the mapping and reads cold ones") {
    reactor_config cfg;
    cfg.file_send = send_strategy::mmap_copy;
    auto file = std::make_shared<sparse_file>(2048 * kib, 128 * kib);
    std::vector<uint8_t> expected;
    running_reactor rr(cfg, [&](std::shared_ptr<connection> c) {
        connection* raw = c.get();
        c->set_frame_handler([&, raw](frame) {
            out_message m;
            m.append("HDR", 3);
            expected.assign({'H', 'D', 'R'});
            for (auto [pos, len] : {std::pair<size_t, size_t>{100, 100 * kib}, {1024 * kib + 5, 512 * kib}}) {
                m.append_file(file_slice{file, pos, static_cast<uint32_t>(len)});
                auto& e = file->expected();
                expected.insert(expected.end(), e.begin() + static_cast<ptrdiff_t>(pos),
                                e.begin() + static_cast<ptrdiff_t>(pos + len));
            }
            raw->send(std::move(m));
        });
    });
    int fd = connect_to(rr.port);
    auto f = make_frame("fetch");
    REQUIRE(write_all(fd, f.data(), f.size()));
    REQUIRE(rr.wait_until([&](reactor&) { return !expected.empty(); }));
    std::vector<uint8_t> got(rr.call([&] { return expected.size(); }));
    REQUIRE(read_exact(fd, got.data(), got.size()));
    CHECK(got == rr.call([&] { return expected; }));
    auto s = rr.stats();
    CHECK(s.bytes_sent_mmap_copy == 100 * kib);
    CHECK(s.bytes_sent_buffered == 512 * kib);
    CHECK(s.mmap_copy_not_resident >= 1);
    CHECK(s.residency_checks >= 2);
    ::close(fd);
    CHECK(rr.wait_until([](reactor& r) { return r.stats().connections_open == 0; }));
}
