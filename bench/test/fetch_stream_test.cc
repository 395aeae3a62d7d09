// fetch_stream against the whole-frame path: the same Fetch response, fed through a
// socket in a small window, must give the summaries scan_batches gives on the frame.
#include "bench/fetch_stream.h"

#include "bench/bench_util.h"
#include "bench/kafka_wire.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <vector>

using namespace sluice::bench;
using namespace sluice::bench::wire;

namespace {

struct part_spec {
    int32_t partition;
    int16_t error;
    int32_t aborted;
    std::vector<int32_t> batch_records;  // one batch per entry
    size_t cut;                          // bytes cut off the end (a partial batch)
};

// A Fetch response frame (size prefix included) of one topic, at `version` (4..11).
std::vector<uint8_t> response_frame(int16_t version, int32_t corr, const std::vector<part_spec>& parts,
                                    std::vector<std::vector<uint8_t>>& records_out) {
    std::vector<uint8_t> f;
    writer w(f);
    w.i32(0);
    w.i32(corr);
    w.i32(0);  // throttle
    if (version >= 7) {
        w.i16(0);
        w.i32(0);
    }
    w.i32(1);
    w.string("bench-topic");
    w.i32(static_cast<int32_t>(parts.size()));
    std::vector<uint8_t> value(333, 0x5a);
    for (auto& p : parts) {
        std::vector<uint8_t> records;
        int64_t base = 0;
        for (int32_t n : p.batch_records) {
            size_t at = records.size();
            append_record_batch(records, n, value, 1);
            for (int i = 0; i < 8; ++i) records[at + static_cast<size_t>(i)] = static_cast<uint8_t>(base >> (56 - 8 * i));
            base += n;
        }
        records.resize(records.size() - p.cut);
        w.i32(p.partition);
        w.i16(p.error);
        w.i64(base + 7);  // high watermark
        w.i64(base + 7);  // last stable offset
        if (version >= 5) w.i64(0);
        w.i32(p.aborted < 0 ? -1 : p.aborted);
        for (int32_t a = 0; a < p.aborted; ++a) {
            w.i64(99);
            w.i64(a);
        }
        if (version >= 11) w.i32(-1);
        w.i32(static_cast<int32_t>(records.size()));
        w.raw(records.data(), records.size());
        records_out.push_back(std::move(records));
    }
    w.patch_i32(0, static_cast<int32_t>(f.size() - 4));
    return f;
}

void check_streamed(int16_t version, size_t window) {
    std::vector<part_spec> parts = {
        {0, 0, -1, {1, 50, 700, 3}, 0},
        {3, 0, 2, {10, 10}, 100},  // a partial trailing batch
        {7, 6, 0, {}, 0},          // an error, no records
        {9, 0, 0, {2000}, 0},      // one batch larger than a small window
    };
    std::vector<std::vector<uint8_t>> records;
    auto frame = response_frame(version, 42, parts, records);
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    std::thread writer_thread([&] {
        // Two frames back to back: the stream must stop exactly at the first one's end.
        (void)write_all(fds[1], frame.data(), frame.size());
        frame[4 + 3] = 43;  // correlation id of the second frame
        (void)write_all(fds[1], frame.data(), frame.size());
    });
    fetch_stream stream(window);
    std::vector<partition_summary> got;
    int16_t top_error = -1;
    for (int32_t corr : {42, 43}) {
        REQUIRE_FALSE(stream.read_response(fds[0], version, corr, top_error, got));
        CHECK(top_error == 0);
        REQUIRE(got.size() == parts.size());
        for (size_t i = 0; i < parts.size(); ++i) {
            auto want = scan_batches(records[i], false);
            CHECK(got[i].partition == parts[i].partition);
            CHECK(got[i].error == parts[i].error);
            CHECK(got[i].scan.batches == want.batches);
            CHECK(got[i].scan.records == want.records);
            CHECK(got[i].scan.bytes == want.bytes);
            CHECK(got[i].scan.next_offset == want.next_offset);
        }
    }
    CHECK(got[0].scan.next_offset == 754);
    CHECK(got[1].scan.batches == 1);
    writer_thread.join();
    close(fds[0]);
    close(fds[1]);
}

}  // namespace

TEST_CASE("fetch_stream summarises responses like the whole-frame scan, at any window") {
    for (int16_t version : {4, 5, 7, 11})
        for (size_t window : {4096u, 65536u, 1u << 20}) {
            CAPTURE(version);
            CAPTURE(window);
            check_streamed(version, window);
        }
}

TEST_CASE("fetch_stream rejects a wrong correlation id and a truncated frame") {
    std::vector<std::vector<uint8_t>> records;
    auto frame = response_frame(11, 5, {{0, 0, -1, {3}, 0}}, records);
    int fds[2];
    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    REQUIRE_FALSE(write_all(fds[1], frame.data(), frame.size()));
    fetch_stream stream(4096);
    std::vector<partition_summary> got;
    int16_t top_error = 0;
    CHECK(stream.read_response(fds[0], 11, 6, top_error, got) == std::errc::protocol_error);
    close(fds[0]);
    close(fds[1]);

    REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0);
    frame.resize(frame.size() - 10);  // the size prefix promises 10 more bytes than follow
    REQUIRE_FALSE(write_all(fds[1], frame.data(), frame.size()));
    shutdown(fds[1], SHUT_WR);
    CHECK(stream.read_response(fds[0], 11, 5, top_error, got) == std::errc::connection_aborted);
    close(fds[0]);
    close(fds[1]);
}
