// Runs the real sluice-dump-log binary (path from $SLUICE_DUMP_LOG, set by meson) on a
// log written by partition_log, then on a damaged copy.
#include "storage/partition_log.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>

using namespace sluice::storage;
using namespace sluice::storage::test;
namespace fs = std::filesystem;

namespace {

struct run_result {
    int status = -1;
    std::string out;
};

run_result run(const std::string& args) {
    const char* tool = std::getenv("SLUICE_DUMP_LOG");
    REQUIRE(tool != nullptr);
    std::string cmd = std::string(tool) + " " + args + " 2>&1";
    run_result r;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
    int st = ::pclose(p);
    r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    return r;
}

fs::path write_sample(const fs::path& dir) {
    log_config cfg;
    cfg.segment_bytes = 4096;
    cfg.index_interval_bytes = 256;
    auto log = partition_log::open(dir, cfg);
    REQUIRE(log.has_value());
    for (int i = 0; i < 30; ++i) {
        batch_builder b(1700000000000 + i);
        b.add("k" + std::to_string(i), "value-" + std::to_string(i) + std::string(i * 4, 'x'), -1,
              {{"h", "x"}});
        if (i == 0) b.producer(1000, 2, 0);
        auto bytes = b.build();
        REQUIRE((*log)->append(bytes, 3, 0).error == log_errc::ok);
    }
    REQUIRE(!(*log)->close());
    return dir / "00000000000000000000";
}

}  // namespace

TEST_CASE("sluice-dump-log: batches, records and index entries of a healthy log") {
    if (!std::getenv("SLUICE_DUMP_LOG")) {
        MESSAGE("SLUICE_DUMP_LOG not set (run through meson test): skipped");
        return;
    }
    temp_dir dir;
    auto base = write_sample(dir.path() / "t-0");
    auto r = run("--print-data-log " + base.string() + ".log");
    CHECK(r.status == 0);
    CHECK(r.out.find("Log starting offset: 0") != std::string::npos);
    CHECK(r.out.find("baseOffset: 0 lastOffset: 0 count: 1 baseSequence: 0 lastSequence: 0 "
                     "producerId: 1000 producerEpoch: 2 partitionLeaderEpoch: 3") != std::string::npos);
    CHECK(r.out.find("compresscodec: none") != std::string::npos);
    CHECK(r.out.find("isvalid: true") != std::string::npos);
    CHECK(r.out.find("isvalid: false") == std::string::npos);
    CHECK(r.out.find("| offset: 1 CreateTime: 1700000000001 keySize: 2 valueSize: 11 sequence: -1 "
                     "headerKeys: [h] key: k1 payload: value-1xxxx") != std::string::npos);
    auto idx = run("--files " + base.string() + ".index," + base.string() + ".timeindex");
    CHECK(idx.status == 0);
    CHECK(idx.out.find("offset: ") != std::string::npos);
    CHECK(idx.out.find("position: ") != std::string::npos);
    CHECK(idx.out.find("timestamp: 17000000000") != std::string::npos);
    CHECK(idx.out.find("Mismatches") == std::string::npos);
    CHECK(run("--bogus").status == 2);
}

TEST_CASE("sluice-dump-log: reports a corrupt batch and a wrong index entry") {
    if (!std::getenv("SLUICE_DUMP_LOG")) {
        MESSAGE("SLUICE_DUMP_LOG not set (run through meson test): skipped");
        return;
    }
    temp_dir dir;
    auto base = write_sample(dir.path() / "t-0");
    {
        std::fstream f(base.string() + ".log", std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(200);
        f.put('\x7f');
        std::fstream i(base.string() + ".index", std::ios::in | std::ios::out | std::ios::binary);
        i.seekp(0);
        i.write("\0\0\0\x63", 4);  // relative offset 99 at the first entry's position
    }
    auto r = run(base.string() + ".log");
    CHECK(r.status == 1);
    CHECK(r.out.find("isvalid: false") != std::string::npos);
    auto idx = run(base.string() + ".index");
    CHECK(idx.status == 1);
    CHECK(idx.out.find("Mismatches in :") != std::string::npos);
    CHECK(idx.out.find("Index offset: 99, log offset: ") != std::string::npos);
}
