// fd_budget against real partition logs in a temporary directory: the descriptors it
// counts are the ones the segments really hold open.
#include "broker/maintenance/fd_budget.h"
#include "storage/record_batch.h"

#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

using namespace sluice;
using namespace sluice::broker;

namespace {

struct temp_dir {
    std::filesystem::path path;
    temp_dir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "fd_budget_test.XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

struct fixture {
    temp_dir dir;
    std::vector<std::unique_ptr<partition>> parts;
    fd_budget budget;

    // Opens n partitions the way shard::open_partition does: each one is counted (and
    // may trigger an eviction) right after it opens.
    fixture(size_t n, size_t share)
        : budget(share, [this](const std::function<void(partition&)>& fn) {
              for (auto& p : parts) fn(*p);
          }) {
        storage::log_config cfg;
        cfg.segment_bytes = 1 << 20;
        for (size_t i = 0; i < n; ++i) {
            auto p = std::make_unique<partition>();
            p->id = {"t", static_cast<int32_t>(i)};
            auto log = storage::partition_log::open(dir.path / ("t-" + std::to_string(i)), cfg);
            REQUIRE(log);
            p->log = std::move(log).value();
            REQUIRE(p->log->open_fds() == 1);  // a fresh log holds its active segment's descriptor
            parts.push_back(std::move(p));
            budget.note_use(*parts.back());
            CHECK(budget.open_count() == really_open());
            CHECK(budget.open_count() <= share);
        }
    }
    size_t really_open() const {
        size_t n = 0;
        for (const auto& p : parts) n += p->log->open_fds();
        return n;
    }
    void append(partition& p) {
        auto bytes = storage::batch_builder(1000).add("key", "value").build();
        auto r = p.log->append(bytes, 0, 1000);
        REQUIRE(r.error == storage::log_errc::ok);
    }
};

}  // namespace

TEST_CASE("fd_budget: opening many partitions stays within the share, newest kept") {
    fixture f(12, 4);  // the constructor checks the count after every open
    for (auto& p : f.parts) {
        f.budget.note_use(*p);
        CHECK(f.budget.open_count() == f.really_open());
        CHECK(f.budget.open_count() <= 4);
    }
    // The most recently used partitions are the ones still holding descriptors.
    CHECK(f.parts.back()->log->open_fds() == 1);
    CHECK(f.parts.front()->log->open_fds() == 0);
    CHECK(f.budget.released_total() >= 8);
    CHECK(f.budget.evictions() > 0);
}

TEST_CASE("fd_budget: appends reopen a released partition and evict the least recently used") {
    fixture f(6, 4);
    partition& cold = *f.parts[0];
    REQUIRE(cold.log->open_fds() == 0);
    f.append(cold);  // storage reopens the descriptor on demand
    CHECK(cold.log->open_fds() == 1);
    f.budget.note_use(cold);
    CHECK(f.budget.open_count() == f.really_open());
    CHECK(f.budget.open_count() <= 4);
    CHECK(cold.log->open_fds() == 1);  // just used: not the one evicted
    // The data is still readable after its descriptor came and went.
    auto r = cold.log->read(0, 1 << 20, true);
    CHECK(r.error == storage::log_errc::ok);
    CHECK(r.total_bytes > 0);
}

TEST_CASE("fd_budget: a descriptor a reader reopened is counted and marks the partition used") {
    fixture f(6, 4);
    partition& cold = *f.parts[1];
    REQUIRE(cold.log->open_fds() == 0);
    // What a zero-copy fetch does: the sender asks the segment for its descriptor.
    CHECK(cold.log->segments().back()->fd() >= 0);
    size_t before = f.budget.open_count();
    f.budget.sweep();
    CHECK(f.budget.open_count() == f.really_open());
    CHECK(f.budget.open_count() <= 4);
    CHECK(before <= f.budget.open_count() + 1);
    // Reopened since the last sweep counts as a use: it survives the eviction.
    CHECK(cold.log->open_fds() == 1);
}

TEST_CASE("fd_budget: a segment held by a file_slice keeps its descriptor") {
    fixture f(3, 1);
    f.append(*f.parts[0]);
    auto held = f.parts[0]->log->read(0, 1 << 20, true);
    REQUIRE(held.slices.size() == 1);
    for (auto& p : f.parts) f.budget.note_use(*p);
    f.budget.note_use(*f.parts[2]);
    // parts[0] is the oldest but a slice holds its segment: release_idle_fds skips it.
    CHECK(f.parts[0]->log->open_fds() == 1);
    CHECK(f.budget.open_count() == f.really_open());
    held.slices.clear();
    f.append(*f.parts[2]);  // reopens parts[2]: over the share again
    f.budget.note_use(*f.parts[2]);
    CHECK(f.parts[0]->log->open_fds() == 0);
    CHECK(f.budget.open_count() == f.really_open());
}

TEST_CASE("fd_budget: forget removes a partition's descriptors from the count") {
    fixture f(2, 8);
    CHECK(f.budget.open_count() == 2);
    f.budget.forget(*f.parts[1]);
    f.parts.pop_back();
    CHECK(f.budget.open_count() == 1);
    CHECK(f.budget.open_count() == f.really_open());
}
