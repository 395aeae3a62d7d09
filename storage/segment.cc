#include "storage/segment.h"

#include "base/assert.h"
#include "base/log.h"
#include "storage/errors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <fmt/format.h>

namespace sluice::storage {

namespace fs = std::filesystem;

std::string segment_file_name(int64_t base_offset, std::string_view ext) {
    return fmt::format("{:020d}{}", base_offset, ext);
}

segment::segment(const fs::path& dir, int64_t base_offset, const log_config& cfg,
                 std::string_view suffix)
    : _log_path(dir / (segment_file_name(base_offset, ".log") + std::string(suffix))),
      _index_path(dir / (segment_file_name(base_offset, ".index") + std::string(suffix))),
      _timeindex_path(dir / (segment_file_name(base_offset, ".timeindex") + std::string(suffix))),
      _base_offset(base_offset),
      _cfg(cfg),
      _next_offset(base_offset) {}

segment::~segment() {
    if (_map) ::munmap(const_cast<uint8_t*>(_map), _map_bytes);
    int fd = _fd.load(std::memory_order_relaxed);
    if (fd >= 0) ::close(fd);
}

std::error_code segment::map_log(uint64_t reserve) {
    if (_map) ::munmap(const_cast<uint8_t*>(_map), _map_bytes);
    _map = nullptr;
    _map_bytes = 0;
    if (reserve == 0) return {};
    // Pages past the end of the file are never touched: mapped_size() stops at _size.
    int fd = open_fd();
    if (fd < 0) return errno_code(errno);
    void* p = ::mmap(nullptr, reserve, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) return errno_code(errno);
    _map = static_cast<const uint8_t*>(p);
    _map_bytes = reserve;
    return {};
}

std::error_code segment::open_files(bool create, bool active, index_open_mode mode) {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT | O_TRUNC : 0);
    int fd = ::open(_log_path.c_str(), flags, 0644);
    if (fd < 0) return errno_code(errno);
    _fd.store(fd, std::memory_order_release);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return errno_code(errno);
    _size.store(static_cast<uint64_t>(st.st_size), std::memory_order_release);
    _created_ms = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000 + st.st_mtim.tv_nsec / 1000000;
    if (create) {
        std::error_code ignored;
        fs::remove(_index_path, ignored);
        fs::remove(_timeindex_path, ignored);
    }
    auto idx = offset_index::open(_index_path, _base_offset, _cfg.index_max_bytes, active, mode);
    if (!idx) return idx.error();
    _index = std::move(*idx);
    auto tidx = time_index::open(_timeindex_path, _base_offset, _cfg.index_max_bytes, active, mode);
    if (!tidx) return tidx.error();
    _timeindex = std::move(*tidx);
    uint64_t size = _size.load(std::memory_order_relaxed);
    return map_log(active ? std::max<uint64_t>(_cfg.segment_bytes, size) : size);
}

result<std::shared_ptr<segment>> segment::create(const fs::path& dir, int64_t base_offset,
                                                 const log_config& cfg, int64_t now_ms,
                                                 std::string_view suffix) {
    std::shared_ptr<segment> s(new segment(dir, base_offset, cfg, suffix));
    if (auto ec = s->open_files(true, true)) return ec;
    s->_created_ms = now_ms;
    return s;
}

result<std::shared_ptr<segment>> segment::open(const fs::path& dir, int64_t base_offset,
                                               const log_config& cfg, bool active,
                                               index_open_mode mode) {
    std::shared_ptr<segment> s(new segment(dir, base_offset, cfg));
    bool index_missing = mode == index_open_mode::load &&
                         (!fs::exists(s->_index_path) || !fs::exists(s->_timeindex_path));
    if (auto ec = s->open_files(false, active, mode)) return ec;
    // An empty index file was just created in place of the lost one: rebuild it.
    s->_index_lost = index_missing && !s->empty();
    // A sealed segment is read through its mapping; the descriptor comes back on demand.
    if (!active) s->release_fd();
    return s;
}

int segment::open_fd() const {
    int fd = _fd.load(std::memory_order_acquire);
    if (fd >= 0) return fd;
    // Lazily (re)opened: a sealed or idle segment holds no descriptor until it is read or
    // written. Two threads may race here; the loser closes its descriptor.
    fd = ::open(_log_path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        log::error("storage", "{}: cannot open: {}", _log_path.string(), std::strerror(errno));
        return -1;
    }
    int expected = -1;
    if (_fd.compare_exchange_strong(expected, fd, std::memory_order_acq_rel)) return fd;
    ::close(fd);
    return expected;
}

bool segment::release_fd() {
    int fd = _fd.exchange(-1, std::memory_order_acq_rel);
    if (fd < 0) return false;
    // Written data must not depend on this descriptor: the page cache keeps it, and a
    // later flush() reopens to fdatasync (which syncs the inode, not the descriptor).
    ::close(fd);
    return true;
}

void segment::release_memory() {
    uint64_t used = mapped_size();
    if (_map && used > 0) ::madvise(const_cast<uint8_t*>(_map), (used + 4095) / 4096 * 4096, MADV_DONTNEED);
    _index.file().release_memory();
    _timeindex.file().release_memory();
}

bool segment::needs_roll(uint64_t bytes, int32_t batches, int64_t last_offset,
                         int64_t now_ms) const {
    if (empty()) return false;  // an empty segment takes any append, even an oversized one
    if (size_bytes() + bytes > _cfg.segment_bytes) return true;
    if (_index.free_entries() < static_cast<size_t>(batches)) return true;
    if (_timeindex.free_entries() < static_cast<size_t>(batches)) return true;
    if (last_offset - _base_offset > INT32_MAX) return true;
    return now_ms - _created_ms > _cfg.segment_ms;
}

void segment::index_batch(const batch_header& h, uint64_t position) {
    SLUICE_ASSERT(position <= UINT32_MAX, "segment position {} overflows u32", position);
    if (h.max_timestamp > _max_timestamp) {
        _max_timestamp = h.max_timestamp;
        _offset_of_max_timestamp = h.last_offset();
    }
    if (_bytes_since_index > _cfg.index_interval_bytes) {
        if (!_index.full()) _index.append(h.last_offset(), static_cast<uint32_t>(position));
        _timeindex.maybe_append(_max_timestamp, _offset_of_max_timestamp);
        _bytes_since_index = 0;
    }
    _bytes_since_index += h.size_bytes();
    _next_offset = h.last_offset() + 1;
}

std::error_code segment::truncate_file(uint64_t size) {
    // Shrink the published size first so no new slice or sender reads past it.
    _size.store(size, std::memory_order_release);
    if (::ftruncate(open_fd(), static_cast<off_t>(size)) != 0) return errno_code(errno);
    return {};
}

std::error_code segment::append(std::span<const uint8_t> batches) {
    // Pair assertion: the caller validated and assigned offsets; check before writing.
    int64_t expect = _next_offset;
    for (size_t off = 0; off < batches.size();) {
        SLUICE_ASSERT(batches.size() - off >= batch_header_size, "partial batch at {}", off);
        batch_header h = parse_batch_header(batches.data() + off);
        SLUICE_ASSERT(h.magic == current_magic && h.base_offset >= expect &&
                          off + h.size_bytes() <= batches.size(),
                      "bad batch to append: base {} expected >= {}", h.base_offset, expect);
        expect = h.last_offset() + 1;
        off += h.size_bytes();
    }
    uint64_t start = size_bytes();
    int fd = open_fd();
    if (fd < 0) return errno_code(errno);
    for (size_t done = 0; done < batches.size();) {
        ssize_t n = ::pwrite(fd, batches.data() + done, batches.size() - done,
                             static_cast<off_t>(start + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            if (::ftruncate(fd, static_cast<off_t>(start)) != 0)
                log::error("storage", "{}: cannot truncate back a failed write to {}: {}",
                           _log_path.string(), start, std::strerror(errno));
            return errno_code(err);
        }
        done += static_cast<size_t>(n);
    }
    for (size_t off = 0; off < batches.size();) {
        batch_header h = parse_batch_header(batches.data() + off);
        index_batch(h, start + off);
        off += h.size_bytes();
    }
    _size.store(start + batches.size(), std::memory_order_release);
    return {};
}

std::error_code segment::read_bytes(uint64_t position, size_t length, uint8_t* out) const {
    if (position + length > size_bytes()) return log_errc::corrupt_message;
    if (position + length <= mapped_size()) {
        std::memcpy(out, _map + position, length);
        return {};
    }
    int fd = open_fd();
    if (fd < 0) return errno_code(errno);
    for (size_t done = 0; done < length;) {
        ssize_t n = ::pread(fd, out + done, length - done, static_cast<off_t>(position + done));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno_code(errno);
        if (n == 0) return log_errc::corrupt_message;
        done += static_cast<size_t>(n);
    }
    return {};
}

result<batch_header> segment::header_at(uint64_t position) const {
    uint8_t buf[batch_header_size];
    const uint8_t* p = buf;
    if (position + batch_header_size > size_bytes()) return make_error_code(log_errc::corrupt_message);
    if (position + batch_header_size <= mapped_size())
        p = _map + position;
    else if (auto ec = read_bytes(position, batch_header_size, buf))
        return ec;
    batch_header h = parse_batch_header(p);
    if (h.magic != current_magic ||
        h.batch_length < static_cast<int32_t>(batch_header_size - log_overhead))
        return make_error_code(log_errc::corrupt_message);
    return h;
}

result<uint64_t> segment::find_position(int64_t offset) const {
    uint64_t size = size_bytes();
    if (offset >= _next_offset) return size;
    uint64_t pos = _index.lookup(offset).position;
    while (pos < size) {
        auto h = header_at(pos);
        if (!h && pos != 0) {
            // The index named a position that holds no batch: walk from the start rather
            // than fail the read (the index is rebuilt at the next unclean start).
            log::warn("storage", "{}: index entry for offset {} points at garbage (position {})",
                      _index_path.string(), offset, pos);
            pos = 0;
            continue;
        }
        if (!h) return h.error();
        if (h->last_offset() >= offset) return pos;
        pos += h->size_bytes();
    }
    return size;
}

result<uint64_t> segment::slice_length(uint64_t position, uint64_t max_bytes, bool min_one,
                                       int64_t max_offset) const {
    uint64_t size = size_bytes();
    uint64_t pos = position;
    // Batches before an index entry that still fits are whole and below max_offset when
    // the entry's offset is: skip walking their headers.
    auto e = _index.floor_by_position(position + max_bytes);
    if (e.position > pos && e.offset < max_offset) pos = e.position;
    while (pos < size) {
        auto h = header_at(pos);
        if (!h) return h.error();
        if (h->base_offset >= max_offset) break;
        uint64_t end = pos + h->size_bytes();
        if (end > size) return make_error_code(log_errc::corrupt_message);
        if (end - position > max_bytes && !(min_one && pos == position)) break;
        pos = end;
    }
    return pos - position;
}

result<std::optional<batch_header>> segment::find_by_timestamp(int64_t ts) const {
    if (_max_timestamp < ts) return std::optional<batch_header>{};
    auto te = _timeindex.lookup_before(ts);
    uint64_t pos = _index.lookup(te.offset).position;
    uint64_t size = size_bytes();
    while (pos < size) {
        auto h = header_at(pos);
        if (!h) return h.error();
        if (h->max_timestamp >= ts) return std::optional<batch_header>{*h};
        pos += h->size_bytes();
    }
    return std::optional<batch_header>{};
}

bool segment::index_entry_matches(const offset_position& e) const {
    if (e.position == 0 || e.position >= size_bytes()) return false;
    auto h = header_at(e.position);
    return h && h->last_offset() == e.offset;
}

bool segment::sanity_check() const {
    if (empty()) return true;
    if (_index_lost) return false;
    // Like Kafka's sanity checks: the ends of each index, never every entry -- a sealed
    // 1 GiB segment's index is 2 MiB, and 10,000 partitions start in seconds only if
    // loading touches a page or two per segment. An index whose inside is damaged is
    // caught where it is used (find_position falls back to a scan and warns).
    size_t n = _index.entries();
    if (n > 0) {
        auto first = _index.entry(0);
        auto last = _index.entry(n - 1);
        if (first.offset < _base_offset || last.offset < first.offset ||
            (n > 1 && (last.offset == first.offset || last.position <= first.position)))
            return false;
        if (!index_entry_matches(first) || !index_entry_matches(last)) return false;
    } else if (size_bytes() > 2ull * _cfg.index_interval_bytes + _cfg.max_message_bytes) {
        return false;  // that much data without one index entry: the index was lost
    }
    size_t t = _timeindex.entries();
    if (t > 0) {
        auto first = _timeindex.entry(0);
        auto last = _timeindex.entry(t - 1);
        if (first.timestamp < 0 || first.offset < _base_offset || last.timestamp < first.timestamp ||
            last.offset < first.offset || (t > 1 && last.timestamp == first.timestamp))
            return false;
    }
    return true;
}

std::error_code segment::load_tail() {
    auto t = _timeindex.last();
    _max_timestamp = t.timestamp;
    _offset_of_max_timestamp = _timeindex.entries() > 0 ? t.offset : -1;
    uint64_t pos = 0;
    _next_offset = _base_offset;
    if (_index.entries() > 0) pos = _index.entry(_index.entries() - 1).position;
    uint64_t size = size_bytes();
    _bytes_since_index = 0;
    while (pos < size) {
        auto h = header_at(pos);
        if (!h) return h.error();
        if (pos + h->size_bytes() > size) return log_errc::corrupt_message;
        if (h->max_timestamp > _max_timestamp) {
            _max_timestamp = h->max_timestamp;
            _offset_of_max_timestamp = h->last_offset();
        }
        _next_offset = h->last_offset() + 1;
        _bytes_since_index += h->size_bytes();
        pos += h->size_bytes();
    }
    return {};
}

result<segment::recover_stats> segment::recover(uint64_t max_batch_bytes) {
    _index.clear();
    _timeindex.clear();
    _index_lost = false;
    _max_timestamp = -1;
    _offset_of_max_timestamp = -1;
    _bytes_since_index = 0;
    _next_offset = _base_offset;
    recover_stats stats;
    uint64_t size = size_bytes();
    uint64_t pos = 0;
    std::vector<uint8_t> buf;
    while (pos < size) {
        auto h = header_at(pos);
        if (!h || h->size_bytes() > size - pos || h->size_bytes() > max_batch_bytes) break;
        const uint8_t* p = _map + pos;
        if (pos + h->size_bytes() > mapped_size()) {
            buf.resize(h->size_bytes());
            if (read_bytes(pos, buf.size(), buf.data())) break;
            p = buf.data();
        }
        if (check_stored_batch({p, h->size_bytes()}, max_batch_bytes)) break;
        if (h->base_offset < _next_offset) break;  // offsets must increase
        index_batch(*h, pos);
        pos += h->size_bytes();
        stats.batches++;
    }
    stats.valid_bytes = pos;
    stats.truncated_bytes = size - pos;
    if (pos < size) {
        if (auto ec = truncate_file(pos)) return ec;
    }
    return stats;
}

result<int64_t> segment::truncate_to(int64_t offset) {
    auto pos = find_position(offset);
    if (!pos) return pos.error();
    if (*pos >= size_bytes()) return _next_offset;
    auto h = header_at(*pos);
    if (!h) return h.error();
    if (auto ec = truncate_file(*pos)) return ec;
    _index.truncate_to_position(*pos);
    _timeindex.truncate_to_offset(h->base_offset);
    if (auto ec = load_tail()) return ec;
    _next_offset = std::max(_next_offset, std::min(h->base_offset, offset));
    return _next_offset;
}

std::error_code segment::seal() {
    _timeindex.maybe_append(_max_timestamp, _offset_of_max_timestamp, true);
    if (auto ec = _index.file().trim()) return ec;
    return _timeindex.file().trim();
}

std::error_code segment::reactivate(bool exclusive) {
    if (auto ec = _index.file().grow()) return ec;
    if (auto ec = _timeindex.file().grow()) return ec;
    // A mapping is only replaced when no slice can be reading it (another thread may be
    // sending from it otherwise).
    if (exclusive && _map_bytes < _cfg.segment_bytes)
        return map_log(std::max<uint64_t>(_cfg.segment_bytes, size_bytes()));
    return {};
}

std::error_code segment::flush() {
    int fd = open_fd();
    if (fd < 0 || ::fdatasync(fd) != 0) return errno_code(errno);
    if (auto ec = _index.file().flush()) return ec;
    return _timeindex.file().flush();
}

std::error_code segment::remove_files() {
    std::error_code first;
    for (const auto* p : {&_log_path, &_index_path, &_timeindex_path}) {
        if (::unlink(p->c_str()) != 0 && errno != ENOENT && !first) first = errno_code(errno);
    }
    return first;
}

std::error_code segment::mark_deleted() {
    if (open_fd() < 0) return errno_code(errno);
    for (auto* p : {&_index_path, &_timeindex_path, &_log_path}) {
        fs::path to = p->string() + ".deleted";
        if (::rename(p->c_str(), to.c_str()) != 0 && errno != ENOENT) return errno_code(errno);
        *p = std::move(to);
    }
    _index.file().set_path(_index_path);
    _timeindex.file().set_path(_timeindex_path);
    return {};
}

}  // namespace sluice::storage
