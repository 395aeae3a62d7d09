// frame_pool: reuse of large frame buffers, and a connection receiving into a recycled one.
#include "net/frame_pool.h"
#include "net_test_util.h"

#include <doctest/doctest.h>

using namespace sluice;
using namespace sluice::net;
using namespace sluice::net::test;

TEST_CASE("frame_pool: small frames are not pooled; a released buffer is reused, smallest fit first") {
    frame_pool pool;
    CHECK(pool.acquire(100).capacity() == 0);
    frame big(2 * 1024 * 1024, 1);
    frame mid(256 * 1024, 2);
    const uint8_t* big_data = big.data();
    const uint8_t* mid_data = mid.data();
    pool.release(std::move(big));
    pool.release(std::move(mid));
    pool.release(frame(100, 3));  // too small to keep
    CHECK(pool.size() == 2);
    frame a = pool.acquire(200 * 1024);
    CHECK(a.empty());
    CHECK(a.data() == mid_data);  // the smallest buffer that fits
    frame b = pool.acquire(1024 * 1024);
    CHECK(b.data() == big_data);
    CHECK(pool.acquire(1024 * 1024).capacity() == 0);  // nothing left
    CHECK(pool.reused() == 2);
}

TEST_CASE("frame_pool: a full pool keeps the larger buffers") {
    frame_pool pool;
    for (size_t i = 0; i < frame_pool::max_buffers; ++i) pool.release(frame(128 * 1024));
    frame large(4 * 1024 * 1024);
    const uint8_t* large_data = large.data();
    pool.release(std::move(large));
    CHECK(pool.size() == frame_pool::max_buffers);
    CHECK(pool.acquire(3 * 1024 * 1024).data() == large_data);
}

TEST_CASE("connection: a recycled frame buffer receives the next large frame") {
    std::vector<const uint8_t*> seen;
    std::vector<size_t> sizes;
    std::vector<uint8_t> last_byte;
    running_reactor rr(reactor_config{}, [&](std::shared_ptr<connection> c) {
        connection* raw = c.get();
        c->set_frame_handler([&, raw](frame f) {
            seen.push_back(f.data());
            sizes.push_back(f.size());
            last_byte.push_back(f.back());
            raw->recycle_frame(std::move(f));
        });
    });
    int fd = connect_to(rr.port);
    for (char fill : {'a', 'b'}) {
        auto f = make_frame(std::string(512 * 1024, fill));
        REQUIRE(write_all(fd, f.data(), f.size()));
        size_t want = fill == 'a' ? 1 : 2;
        REQUIRE(rr.wait_until([&](reactor&) { return seen.size() == want; }));
    }
    rr.call([&] {
        REQUIRE(seen.size() == 2);
        CHECK(seen[0] == seen[1]);  // the same, already faulted memory
        CHECK(sizes[1] == 512 * 1024);
        CHECK(last_byte[1] == 'b');
        return 0;
    });
    CHECK(rr.stats().frames_reused == 1);
    ::close(fd);
}
