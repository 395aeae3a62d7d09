#include "net_test_util.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/mman.h>

#include <atomic>

using namespace sluice;
using namespace sluice::net;
using namespace sluice::net::test;

namespace {

// A temp file filled with a position-dependent pattern, mapped read-only.
class test_file final : public sluice::file_handle {
public:
    explicit test_file(size_t size, uint64_t mapped_limit = UINT64_MAX) : _size(size) {
        char path[] = "/tmp/sluice_net_test_XXXXXX";
        _fd = ::mkstemp(path);
        REQUIRE(_fd >= 0);
        ::unlink(path);
        _expected.resize(size);
        for (size_t i = 0; i < size; ++i) _expected[i] = static_cast<uint8_t>((i * 2654435761u) >> 13);
        REQUIRE(::pwrite(_fd, _expected.data(), size, 0) == static_cast<ssize_t>(size));
        void* m = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, _fd, 0);
        REQUIRE(m != MAP_FAILED);
        _map = static_cast<const uint8_t*>(m);
        _mapped_limit = std::min<uint64_t>(mapped_limit, size);
    }
    ~test_file() override {
        ::munmap(const_cast<uint8_t*>(_map), _size);
        ::close(_fd);
    }
    int fd() const override { return _fd; }
    const uint8_t* mapped() const override { return _map; }
    uint64_t mapped_size() const override { return _mapped_limit; }
    const std::vector<uint8_t>& expected() const { return _expected; }

private:
    size_t _size;
    int _fd = -1;
    const uint8_t* _map = nullptr;
    uint64_t _mapped_limit = 0;
    std::vector<uint8_t> _expected;
};

struct slice_spec {
    uint64_t position;
    uint32_t length;
};

// Builds "HDR" + slice + "-mid-" + slice ... + "END" and the bytes it should produce.
out_message build(std::shared_ptr<test_file> file, const std::vector<slice_spec>& slices,
                  std::vector<uint8_t>& expected) {
    out_message m;
    auto mem = [&](std::string_view s) {
        m.append(s.data(), s.size());
        expected.insert(expected.end(), s.begin(), s.end());
    };
    mem("HDR");
    for (auto& s : slices) {
        m.append_file(file_slice{file, s.position, s.length});
        auto& e = file->expected();
        expected.insert(expected.end(), e.begin() + static_cast<ptrdiff_t>(s.position),
                        e.begin() + static_cast<ptrdiff_t>(s.position + s.length));
        mem("-mid-");
    }
    mem("END");
    return m;
}

uint64_t file_bytes(const reactor_stats& s, send_strategy st) {
    switch (st) {
        case send_strategy::splice: return s.bytes_sent_splice;
        case send_strategy::mmap_copy: return s.bytes_sent_mmap_copy;
        case send_strategy::buffered: return s.bytes_sent_buffered;
    }
    return 0;
}

}  // namespace

TEST_CASE("send: a 3 MiB message with file pieces arrives byte-exact with every strategy") {
    for (send_strategy st : {send_strategy::splice, send_strategy::mmap_copy, send_strategy::buffered}) {
        CAPTURE(to_string(st));
        reactor_config cfg;
        cfg.file_send = st;
        auto file = std::make_shared<test_file>(4 * 1024 * 1024);
        // Unaligned positions and lengths; three messages pipelined in one response burst.
        std::vector<std::vector<slice_spec>> messages = {
            {{1000, 1536 * 1024}, {1536 * 1024 + 7, 1536 * 1024 - 3}},
            {{5, 1}},
            {{0, 4096}, {4096 * 3 + 1, 300000}},
        };
        std::vector<uint8_t> expected;
        uint64_t expected_file_bytes = 0;
        for (auto& m : messages)
            for (auto& s : m) expected_file_bytes += s.length;
        running_reactor rr(cfg, [&](std::shared_ptr<connection> c) {
            connection* raw = c.get();
            c->set_frame_handler([&, raw](frame) {
                for (auto& m : messages) raw->send(build(file, m, expected));
            });
        });
        int fd = connect_to(rr.port);
        auto f = make_frame("fetch");
        REQUIRE(write_all(fd, f.data(), f.size()));
        REQUIRE(rr.wait_until([&](reactor&) { return !expected.empty(); }));
        size_t total = rr.call([&] { return expected.size(); });
        std::vector<uint8_t> got(total);
        REQUIRE(read_exact(fd, got.data(), got.size()));
        CHECK(got == rr.call([&] { return expected; }));
        auto s = rr.stats();
        CHECK(file_bytes(s, st) == expected_file_bytes);
        CHECK(s.bytes_sent_memory == total - expected_file_bytes);
        ::close(fd);
        CHECK(rr.wait_until([](reactor& r) { return r.stats().connections_open == 0; }));
    }
}

TEST_CASE("send: mmap_copy falls back to buffered outside the mapping") {
    reactor_config cfg;
    cfg.file_send = send_strategy::mmap_copy;
    auto file = std::make_shared<test_file>(1024 * 1024, 512 * 1024);  // half mapped
    std::vector<uint8_t> expected;
    running_reactor rr(cfg, [&](std::shared_ptr<connection> c) {
        connection* raw = c.get();
        c->set_frame_handler([&, raw](frame) {
            raw->send(build(file, {{0, 100000}, {400000, 300000}, {900000, 1000}}, expected));
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
    CHECK(s.bytes_sent_mmap_copy == 100000);
    CHECK(s.bytes_sent_buffered == 301000);
    ::close(fd);
}

TEST_CASE("send: a file slice past the end of the file closes the connection") {
    for (send_strategy st : {send_strategy::splice, send_strategy::buffered}) {
        CAPTURE(to_string(st));
        reactor_config cfg;
        cfg.file_send = st;
        auto file = std::make_shared<test_file>(64 * 1024);
        std::vector<uint8_t> expected;
        running_reactor rr(cfg, [&](std::shared_ptr<connection> c) {
            connection* raw = c.get();
            c->set_frame_handler([&, raw](frame) {
                out_message m;
                m.append_file(file_slice{file, 60 * 1024, 8 * 1024});  // 4 KiB beyond EOF
                raw->send(std::move(m));
            });
        });
        int fd = connect_to(rr.port);
        auto f = make_frame("fetch");
        REQUIRE(write_all(fd, f.data(), f.size()));
        CHECK(peer_closed(fd));
        ::close(fd);
        CHECK(rr.wait_until([](reactor& r) { return r.stats().connections_open == 0; }));
    }
}

TEST_CASE("send: client disconnecting during a large send is handled safely") {
    for (send_strategy st : {send_strategy::splice, send_strategy::mmap_copy, send_strategy::buffered}) {
        CAPTURE(to_string(st));
        reactor_config cfg;
        cfg.file_send = st;
        auto file = std::make_shared<test_file>(4 * 1024 * 1024);
        std::weak_ptr<test_file> file_alive = file;
        std::atomic<int> closes{0};
        running_reactor rr(cfg, [&](std::shared_ptr<connection> c) {
            connection* raw = c.get();
            c->set_close_handler([&](std::string_view) { closes.fetch_add(1); });
            c->set_frame_handler([&, raw](frame f) {
                if (f.size() != 3) {  // not "big": echo it
                    out_message echo;
                    uint32_t be = htonl(static_cast<uint32_t>(f.size()));
                    echo.append(&be, 4);
                    echo.append(f.data(), f.size());
                    raw->send(std::move(echo));
                    return;
                }
                for (int i = 0; i < 16; ++i) {  // 64 MiB queued
                    out_message m;
                    m.append("x", 1);
                    m.append_file(file_slice{file, 0, 4 * 1024 * 1024});
                    raw->send(std::move(m));
                }
            });
        });
        int fd = connect_to(rr.port);
        auto f = make_frame("big");
        REQUIRE(write_all(fd, f.data(), f.size()));
        std::vector<uint8_t> some(256 * 1024);
        REQUIRE(read_exact(fd, some.data(), some.size()));
        linger lg{1, 0};  // close with RST, mid-transfer
        ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        ::close(fd);
        CHECK(rr.wait_until([&](reactor& r) { return closes.load() == 1 && r.stats().connections_open == 0; }));
        // Every slice reference was released with the connection.
        file.reset();
        CHECK(rr.wait_until([&](reactor&) { return file_alive.expired(); }));
        // The reactor still serves new clients.
        int fd2 = connect_to(rr.port);
        auto g = make_frame("hello");
        REQUIRE(write_all(fd2, g.data(), g.size()));
        std::string body;
        REQUIRE(read_frame(fd2, body));
        CHECK(body == "hello");
        ::close(fd2);
    }
}

TEST_CASE("send: reactor stop with a send in flight and a connection still held") {
    reactor_config cfg;
    cfg.file_send = send_strategy::splice;
    auto file = std::make_shared<test_file>(4 * 1024 * 1024);
    std::shared_ptr<connection> held;
    int fd = -1;
    {
        running_reactor rr(cfg, [&](std::shared_ptr<connection> c) {
            held = c;
            connection* raw = c.get();
            c->set_frame_handler([&, raw](frame) {
                for (int i = 0; i < 8; ++i) {
                    out_message m;
                    m.append_file(file_slice{file, 0, 4 * 1024 * 1024});
                    raw->send(std::move(m));
                }
            });
        });
        fd = connect_to(rr.port);
        auto f = make_frame("big");
        REQUIRE(write_all(fd, f.data(), f.size()));
        std::vector<uint8_t> some(64 * 1024);
        REQUIRE(read_exact(fd, some.data(), some.size()));
        // The client stops reading; the reactor is stopped with the send blocked.
    }
    REQUIRE(held != nullptr);
    CHECK(held->is_closed());
    held.reset();
    CHECK(file.use_count() == 1);
    ::close(fd);
}
