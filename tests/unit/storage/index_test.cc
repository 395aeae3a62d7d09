#include "storage/index.h"

#include "storage/endian.h"
#include "test_util.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <fstream>

using namespace sluice::storage;
using namespace sluice::storage::test;

namespace {
uint64_t size_of(const std::filesystem::path& p) { return std::filesystem::file_size(p); }
}  // namespace

TEST_CASE("offset index: append, lookup, floor by position, truncate") {
    temp_dir dir;
    auto path = dir.path() / "00000000000000000100.index";
    auto idx = offset_index::open(path, 100, 8 * 1000, true);
    REQUIRE(idx.has_value());
    CHECK(size_of(path) == 8000);  // preallocated
    CHECK(idx->lookup(150).offset == 100);
    CHECK(idx->lookup(150).position == 0);
    for (int i = 1; i <= 50; ++i) idx->append(100 + i * 10, static_cast<uint32_t>(i * 4096));
    CHECK(idx->entries() == 50);
    CHECK(idx->lookup(99).position == 0);
    CHECK(idx->lookup(109).position == 0);
    CHECK(idx->lookup(110).position == 4096);
    CHECK(idx->lookup(119).position == 4096);
    CHECK(idx->lookup(600).position == 50 * 4096);
    CHECK(idx->lookup(1000000).offset == 600);
    CHECK(idx->floor_by_position(4095).position == 0);
    CHECK(idx->floor_by_position(4096 * 3 + 5).offset == 130);
    idx->truncate_to_position(4096 * 10);
    CHECK(idx->entries() == 9);
    CHECK(idx->lookup(1000).offset == 190);

    // Bytes on disk are Kafka's: relative offset u32 BE, position u32 BE.
    const uint8_t* e = idx->file().entry(0);
    CHECK(load_be32(e) == 10);
    CHECK(load_be32(e + 4) == 4096);

    REQUIRE(!idx->file().trim());
    CHECK(size_of(path) == 9 * 8);
}

TEST_CASE("offset index: reopening an untrimmed (crashed) file drops the zero tail") {
    temp_dir dir;
    auto path = dir.path() / "00000000000000000000.index";
    {
        auto idx = offset_index::open(path, 0, 8 * 64, true);
        REQUIRE(idx.has_value());
        for (int i = 1; i <= 5; ++i) idx->append(i, static_cast<uint32_t>(i * 100));
        // no trim: as after kill -9
    }
    CHECK(size_of(path) == 8 * 64);
    auto idx = offset_index::open(path, 0, 8 * 64, false);
    REQUIRE(idx.has_value());
    CHECK(idx->entries() == 5);
    CHECK(idx->lookup(3).position == 300);
}

TEST_CASE("offset index: full, grow and max size rounding") {
    temp_dir dir;
    auto path = dir.path() / "00000000000000000000.index";
    auto idx = offset_index::open(path, 0, 8 * 3 + 5, true);  // rounds down to 3 entries
    REQUIRE(idx.has_value());
    for (int i = 1; i <= 3; ++i) idx->append(i, static_cast<uint32_t>(i));
    CHECK(idx->full());
    CHECK(idx->free_entries() == 0);
    REQUIRE(!idx->file().trim());
    REQUIRE(!idx->file().grow());
    CHECK(idx->entries() == 3);
}

TEST_CASE("time index: maybe_append keeps timestamps increasing, lookup_before") {
    temp_dir dir;
    auto path = dir.path() / "00000000000000000050.timeindex";
    auto t = time_index::open(path, 50, 12 * 100, true);
    REQUIRE(t.has_value());
    CHECK(t->last().timestamp == -1);
    t->maybe_append(1000, 55);
    t->maybe_append(900, 56);  // not larger: skipped
    t->maybe_append(1000, 57); // equal: skipped
    t->maybe_append(2000, 60);
    t->maybe_append(3000, 70);
    CHECK(t->entries() == 3);
    CHECK(t->lookup_before(1000).timestamp == -1);
    CHECK(t->lookup_before(1000).offset == 50);
    CHECK(t->lookup_before(1001).offset == 55);
    CHECK(t->lookup_before(2500).offset == 60);
    CHECK(t->lookup_before(99999).offset == 70);
    const uint8_t* e = t->file().entry(1);
    CHECK(load_be64(e) == 2000);
    CHECK(load_be32(e + 8) == 10);
    t->truncate_to_offset(60);
    CHECK(t->entries() == 1);
    CHECK(t->last().offset == 55);
}

TEST_CASE("time index: one slot is kept for the sealing entry") {
    temp_dir dir;
    auto t = time_index::open(dir.path() / "x.timeindex", 0, 12 * 3, true);
    REQUIRE(t.has_value());
    t->maybe_append(1, 1);
    t->maybe_append(2, 2);
    CHECK(t->full());
    t->maybe_append(3, 3);
    CHECK(t->entries() == 2);
    t->maybe_append(3, 3, true);
    CHECK(t->entries() == 3);
}
