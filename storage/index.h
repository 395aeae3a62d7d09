#pragma once
// The two sparse per-segment indexes, in Kafka's file formats so kafka-dump-log and
// operators recognise them. Both are files of fixed-size big-endian entries, mmapped
// read-write, preallocated to log.index.size.max.bytes (rounded down to whole entries)
// while their segment is active and trimmed to the entries in use when it is sealed.
//
//   <base>.index      8-byte entries: relative offset u32, position u32
//                     "the batch whose last offset is base+rel starts at position"
//   <base>.timeindex 12-byte entries: timestamp i64, relative offset u32
//                     "the largest maxTimestamp up to offset base+rel is timestamp"
//
// Entries are strictly increasing in every field. An untrimmed file left by a crash
// ends in zero entries; open() cuts that tail (position 0 is never indexed: the first
// batch of a segment is found without the index) and the owner checks the rest
// (sanity checks, or a rebuild during recovery).
//
// No descriptor stays open: an index is its mapping (a mapping keeps the file alive even
// after unlink/rename), so an idle partition costs one fd (its active .log), not three.
//
// Concurrency: owned by one segment, used by its owner's thread only.
#include "base/result.h"

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace sluice::storage {

// How an existing index file is opened.
enum class index_open_mode {
    // Count the entries already in the file (a binary search for the zero tail).
    load,
    // The owner rebuilds the index from the log right away (recovery): the file is cut to
    // zero length first, so neither stale entries nor the pages of a preallocated file
    // left by a crash are ever read -- an unclean start of a mostly-empty log then costs
    // two ftruncates, not page faults across a 10 MiB sparse file.
    discard,
};

// A preallocated mmapped file of fixed-size entries (Kafka's AbstractIndex).
class index_file {
public:
    index_file() = default;
    index_file(index_file&& o) noexcept { *this = std::move(o); }
    index_file& operator=(index_file&& o) noexcept;
    index_file(const index_file&) = delete;
    index_file& operator=(const index_file&) = delete;
    ~index_file();

    // Opens or creates the file. active: grow it to max_bytes so appends fit; else map
    // only what is there. Entries already in the file count, minus a zero tail.
    static result<index_file> open(const std::filesystem::path& path, size_t entry_size,
                                   size_t max_bytes, bool active,
                                   index_open_mode mode = index_open_mode::load);

    size_t entries() const { return _entries; }
    size_t max_entries() const { return _max_entries; }
    size_t entry_size() const { return _entry_size; }
    bool full() const { return _entries >= _max_entries; }
    const uint8_t* entry(size_t i) const { return _map + i * _entry_size; }
    const std::filesystem::path& path() const { return _path; }
    // After the owner renamed the file (resize() reopens it by this name).
    void set_path(std::filesystem::path p) { _path = std::move(p); }

    // A slot for one more entry; the caller fills it. Asserts !full(). nullptr when the
    // disk has no room for the slot's page (the caller skips the entry).
    uint8_t* append_slot();
    void truncate_entries(size_t n);

    // Shrink the file to the entries in use (sealing) / grow it back to max (reactivating).
    std::error_code trim();
    std::error_code grow();
    std::error_code flush();
    std::error_code remove();
    // Unmaps the pages from this process (they stay in the page cache): an idle index
    // then costs no resident memory.
    void release_memory();

private:
    std::error_code map(size_t file_bytes);
    // Reopens the file by path, sets its size, maps it again and closes the descriptor.
    std::error_code resize(size_t bytes);
    bool reserve(size_t end);
    void unmap();

    std::filesystem::path _path;
    int _fd = -1;  // only while opening or resizing: the mapping holds the file otherwise
    uint8_t* _map = nullptr;
    size_t _map_bytes = 0;
    size_t _entry_size = 0;
    size_t _entries = 0;
    size_t _max_entries = 0;
    size_t _max_bytes = 0;
    size_t _reserved_bytes = 0;  // file bytes known to have blocks allocated
};

struct offset_position {
    int64_t offset = 0;
    uint32_t position = 0;
};

struct timestamp_offset {
    int64_t timestamp = -1;
    int64_t offset = 0;
};

// <base>.index: offset -> file position.
class offset_index {
public:
    static constexpr size_t entry_bytes = 8;

    static result<offset_index> open(const std::filesystem::path& path, int64_t base_offset,
                                     size_t max_bytes, bool active,
                                     index_open_mode mode = index_open_mode::load);

    // Largest entry with offset <= target, or {base_offset, 0} when there is none.
    offset_position lookup(int64_t target) const;
    // Largest entry with position <= position, or {base_offset, 0}.
    offset_position floor_by_position(uint64_t position) const;
    offset_position entry(size_t i) const;
    size_t entries() const { return _file.entries(); }
    bool full() const { return _file.full(); }
    size_t free_entries() const { return _file.max_entries() - _file.entries(); }
    // Asserts offsets and positions strictly increase (pair assertion before writing).
    void append(int64_t offset, uint32_t position);
    // Drops entries at or after position.
    void truncate_to_position(uint64_t position);
    void clear() { _file.truncate_entries(0); }
    index_file& file() { return _file; }
    const index_file& file() const { return _file; }

private:
    index_file _file;
    int64_t _base_offset = 0;
};

// <base>.timeindex: timestamp -> offset.
class time_index {
public:
    static constexpr size_t entry_bytes = 12;

    static result<time_index> open(const std::filesystem::path& path, int64_t base_offset,
                                   size_t max_bytes, bool active,
                                   index_open_mode mode = index_open_mode::load);

    // Largest entry with timestamp < target, or {-1, base_offset} when there is none.
    timestamp_offset lookup_before(int64_t target) const;
    timestamp_offset entry(size_t i) const;
    timestamp_offset last() const;  // {-1, base_offset} when empty
    size_t entries() const { return _file.entries(); }
    // One slot stays free for the entry written when the segment is sealed (Kafka does
    // the same), so "full" comes one entry early.
    bool full() const { return _file.entries() + 1 >= _file.max_entries(); }
    size_t free_entries() const {
        return full() ? 0 : _file.max_entries() - _file.entries() - 1;
    }
    // Appends when timestamp is larger than the last entry's (and skip_full or room).
    void maybe_append(int64_t timestamp, int64_t offset, bool skip_full_check = false);
    // Drops entries whose offset >= offset.
    void truncate_to_offset(int64_t offset);
    void clear() { _file.truncate_entries(0); }
    index_file& file() { return _file; }
    const index_file& file() const { return _file; }

private:
    index_file _file;
    int64_t _base_offset = 0;
};

}  // namespace sluice::storage
