#include "storage/index.h"

#include "base/assert.h"
#include "storage/endian.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace sluice::storage {

// ---- index_file ------------------------------------------------------------------------

index_file& index_file::operator=(index_file&& o) noexcept {
    if (this == &o) return *this;
    unmap();
    if (_fd >= 0) ::close(_fd);
    _path = std::move(o._path);
    _fd = std::exchange(o._fd, -1);
    _map = std::exchange(o._map, nullptr);
    _map_bytes = std::exchange(o._map_bytes, 0);
    _entry_size = o._entry_size;
    _entries = o._entries;
    _max_entries = o._max_entries;
    _reserved_bytes = o._reserved_bytes;
    _max_bytes = o._max_bytes;
    return *this;
}

index_file::~index_file() {
    unmap();
    if (_fd >= 0) ::close(_fd);
}

void index_file::unmap() {
    if (_map) ::munmap(_map, _map_bytes);
    _map = nullptr;
    _map_bytes = 0;
}

std::error_code index_file::map(size_t file_bytes) {
    unmap();
    if (file_bytes == 0) return {};
    void* p = ::mmap(nullptr, file_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, _fd, 0);
    if (p == MAP_FAILED) return errno_code(errno);
    // No read-around: a fault on one page of a preallocated (sparse) index would otherwise
    // pull megabytes of zero pages into the page cache and map 16 of them -- for 10,000
    // partitions, gigabytes after an unclean start. Lookups touch single pages anyway.
    ::madvise(p, file_bytes, MADV_RANDOM);
    _map = static_cast<uint8_t*>(p);
    _map_bytes = file_bytes;
    return {};
}

namespace {
bool all_zero(const uint8_t* p, size_t n) {
    return std::all_of(p, p + n, [](uint8_t b) { return b == 0; });
}
}  // namespace

result<index_file> index_file::open(const std::filesystem::path& path, size_t entry_size,
                                    size_t max_bytes, bool active, index_open_mode mode) {
    SLUICE_ASSERT(entry_size > 0 && max_bytes >= entry_size, "entry {} max {}", entry_size, max_bytes);
    index_file f;
    f._path = path;
    f._entry_size = entry_size;
    f._max_bytes = max_bytes / entry_size * entry_size;
    f._fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (f._fd < 0) return errno_code(errno);
    struct stat st {};
    if (::fstat(f._fd, &st) != 0) return errno_code(errno);
    // A file without allocated blocks reads as zeros: nothing stale to cut (and no
    // journalled truncate for every idle partition of an unclean start).
    if (mode == index_open_mode::discard && st.st_blocks > 0) {
        if (::ftruncate(f._fd, 0) != 0) return errno_code(errno);
        st.st_size = 0;
    }
    size_t existing = static_cast<size_t>(st.st_size) / entry_size * entry_size;
    size_t file_bytes = static_cast<size_t>(st.st_size);
    if (active && file_bytes < f._max_bytes) {
        if (::ftruncate(f._fd, static_cast<off_t>(f._max_bytes)) != 0) return errno_code(errno);
        file_bytes = f._max_bytes;
    }
    if (auto ec = f.map(file_bytes)) return ec;
    f._max_entries = std::max(file_bytes, f._max_bytes) / entry_size;
    if (!active) f._max_entries = file_bytes / entry_size;
    // Entries are non-zero then (after a crash) zero: binary search the first zero one.
    size_t lo = 0, hi = existing / entry_size;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (all_zero(f._map + mid * entry_size, entry_size))
            hi = mid;
        else
            lo = mid + 1;
    }
    f._entries = lo;
    f._reserved_bytes = (lo * entry_size + 4095) / 4096 * 4096;  // pages holding entries exist
    // The mapping is all the entries need; the descriptor goes so that 10,000 idle
    // partitions do not hold 20,000 index fds (trim/grow reopen the file by path).
    ::close(f._fd);
    f._fd = -1;
    return f;
}

uint8_t* index_file::append_slot() {
    SLUICE_ASSERT(_entries < _max_entries && (_entries + 1) * _entry_size <= _map_bytes,
                  "index {} full: {} of {}", _path.string(), _entries, _max_entries);
    size_t end = (_entries + 1) * _entry_size;
    if (end > _reserved_bytes && !reserve(end)) return nullptr;
    return _map + _entries++ * _entry_size;
}

bool index_file::reserve(size_t end) {
    // The preallocated file is sparse: storing into a hole of a full filesystem through
    // the mapping would raise SIGBUS. Allocate blocks ahead (64 KiB at a time) first, and
    // on ENOSPC skip the entry -- a sparse index tolerates a missing entry.
    constexpr size_t chunk = 64 * 1024;
    size_t want = std::min(_map_bytes, (end + chunk - 1) / chunk * chunk);
    int fd = ::open(_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) return false;
    int rc = ::fallocate(fd, FALLOC_FL_KEEP_SIZE, static_cast<off_t>(_reserved_bytes),
                         static_cast<off_t>(want - _reserved_bytes));
    int err = errno;
    ::close(fd);
    if (rc != 0 && err != EOPNOTSUPP) return false;
    _reserved_bytes = want;
    return true;
}

void index_file::release_memory() {
    // Shared file mapping: dirty pages go back to the page cache, nothing is lost; the
    // next access faults the page in again.
    if (_map) ::madvise(_map, _map_bytes, MADV_DONTNEED);
}

void index_file::truncate_entries(size_t n) {
    if (n >= _entries) return;
    // Zero the dropped slots: a crash must not resurrect them as a non-zero tail.
    std::fill(_map + n * _entry_size, _map + _entries * _entry_size, uint8_t{0});
    _entries = n;
}

std::error_code index_file::resize(size_t bytes) {
    unmap();
    _fd = ::open(_path.c_str(), O_RDWR | O_CLOEXEC);
    if (_fd < 0) return errno_code(errno);
    std::error_code ec;
    if (::ftruncate(_fd, static_cast<off_t>(bytes)) != 0) ec = errno_code(errno);
    if (!ec) ec = map(bytes);
    ::close(_fd);
    _fd = -1;
    // Pages past the entries may be holes now (a grow after a trim).
    _reserved_bytes = std::min(bytes, (_entries * _entry_size + 4095) / 4096 * 4096);
    return ec;
}

std::error_code index_file::trim() {
    size_t bytes = _entries * _entry_size;
    if (auto ec = resize(bytes)) return ec;
    _max_entries = _entries;
    return {};
}

std::error_code index_file::grow() {
    size_t bytes = std::max(_max_bytes, _entries * _entry_size);
    if (auto ec = resize(bytes)) return ec;
    _max_entries = bytes / _entry_size;
    return {};
}

std::error_code index_file::flush() {
    if (_map && ::msync(_map, _map_bytes, MS_SYNC) != 0) return errno_code(errno);
    return {};
}

std::error_code index_file::remove() {
    if (::unlink(_path.c_str()) != 0 && errno != ENOENT) return errno_code(errno);
    return {};
}

// ---- offset_index ----------------------------------------------------------------------

result<offset_index> offset_index::open(const std::filesystem::path& path, int64_t base_offset,
                                        size_t max_bytes, bool active, index_open_mode mode) {
    auto f = index_file::open(path, entry_bytes, max_bytes, active, mode);
    if (!f) return f.error();
    offset_index idx;
    idx._file = std::move(*f);
    idx._base_offset = base_offset;
    return idx;
}

offset_position offset_index::entry(size_t i) const {
    const uint8_t* p = _file.entry(i);
    return {_base_offset + load_be32(p), load_be32(p + 4)};
}

offset_position offset_index::lookup(int64_t target) const {
    // First entry with offset > target, then step back.
    size_t lo = 0, hi = entries();
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry(mid).offset <= target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? offset_position{_base_offset, 0} : entry(lo - 1);
}

offset_position offset_index::floor_by_position(uint64_t position) const {
    size_t lo = 0, hi = entries();
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry(mid).position <= position)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? offset_position{_base_offset, 0} : entry(lo - 1);
}

void offset_index::append(int64_t offset, uint32_t position) {
    SLUICE_ASSERT(offset > _base_offset || (offset == _base_offset && position > 0),
                  "index offset {} below base {}", offset, _base_offset);
    SLUICE_ASSERT(offset - _base_offset <= INT32_MAX, "relative offset overflow {}", offset);
    if (entries() > 0) {
        auto last = entry(entries() - 1);
        SLUICE_ASSERT(offset > last.offset && position > last.position,
                      "index not increasing: ({}, {}) after ({}, {})", offset, position,
                      last.offset, last.position);
    }
    uint8_t* p = _file.append_slot();
    if (p == nullptr) return;  // no disk space for the page: the entry is skipped
    store_be32(p, static_cast<uint32_t>(offset - _base_offset));
    store_be32(p + 4, position);
}

void offset_index::truncate_to_position(uint64_t position) {
    size_t lo = 0, hi = entries();
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry(mid).position < position)
            lo = mid + 1;
        else
            hi = mid;
    }
    _file.truncate_entries(lo);
}

// ---- time_index ------------------------------------------------------------------------

result<time_index> time_index::open(const std::filesystem::path& path, int64_t base_offset,
                                    size_t max_bytes, bool active, index_open_mode mode) {
    auto f = index_file::open(path, entry_bytes, max_bytes, active, mode);
    if (!f) return f.error();
    time_index idx;
    idx._file = std::move(*f);
    idx._base_offset = base_offset;
    return idx;
}

timestamp_offset time_index::entry(size_t i) const {
    const uint8_t* p = _file.entry(i);
    return {static_cast<int64_t>(load_be64(p)), _base_offset + load_be32(p + 8)};
}

timestamp_offset time_index::last() const {
    return entries() == 0 ? timestamp_offset{-1, _base_offset} : entry(entries() - 1);
}

timestamp_offset time_index::lookup_before(int64_t target) const {
    size_t lo = 0, hi = entries();
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry(mid).timestamp < target)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? timestamp_offset{-1, _base_offset} : entry(lo - 1);
}

void time_index::maybe_append(int64_t timestamp, int64_t offset, bool skip_full_check) {
    if (timestamp < 0) return;
    if (entries() > 0 && timestamp <= last().timestamp) return;
    if (!skip_full_check && full()) return;
    if (_file.full()) return;
    SLUICE_ASSERT(offset >= _base_offset && offset - _base_offset <= INT32_MAX,
                  "time index offset {} base {}", offset, _base_offset);
    SLUICE_ASSERT(entries() == 0 || offset >= last().offset, "time index offset {} < {}", offset,
                  last().offset);
    uint8_t* p = _file.append_slot();
    if (p == nullptr) return;
    store_be64(p, static_cast<uint64_t>(timestamp));
    store_be32(p + 8, static_cast<uint32_t>(offset - _base_offset));
}

void time_index::truncate_to_offset(int64_t offset) {
    size_t lo = 0, hi = entries();
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (entry(mid).offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    _file.truncate_entries(lo);
}

}  // namespace sluice::storage
