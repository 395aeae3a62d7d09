#include "storage/segment.h"

#include "base/assert.h"
#include "base/log.h"
#include "storage/errors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
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
      _next_offset(base_offset) {
    _direct.allowed = cfg.direct_append && suffix.empty();
}

segment::~segment() {
    if (_direct.fd >= 0) ::close(_direct.fd);
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
    if (_direct.fd >= 0) {
        ::close(_direct.fd);
        _direct.fd = -1;
    }
    int fd = _fd.exchange(-1, std::memory_order_acq_rel);
    if (fd < 0) return false;
    // Written data must not depend on this descriptor: the page cache keeps it, and a
    // later flush() reopens to fdatasync (which syncs the inode, not the descriptor).
    ::close(fd);
    return true;
}

void segment::release_memory() {
    drop_direct(true);  // an idle partition gives its chunks back and its O_DIRECT descriptor
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
    drop_direct(false);
    _direct.padded = false;
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
    auto ec = direct_ready(batches.size()) ? append_direct(batches) : append_buffered(batches);
    if (ec) return ec;
    for (size_t off = 0; off < batches.size();) {
        batch_header h = parse_batch_header(batches.data() + off);
        index_batch(h, start + off);
        off += h.size_bytes();
    }
    _size.store(start + batches.size(), std::memory_order_release);
    return {};
}

std::error_code segment::append_buffered(std::span<const uint8_t> batches) {
    // The chunks would miss these bytes: from here on the file serves every read until a
    // new chunk starts at the new end.
    drop_direct(false);
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
    return {};
}

// ---- direct appends (tail_cache.h) ---------------------------------------------------

void segment::drop_direct(bool close_fd) {
    _direct.chunks.clear();
    if (close_fd && _direct.fd >= 0) {
        ::close(_direct.fd);
        _direct.fd = -1;
    }
}

bool segment::direct_ready(size_t bytes) {
    if (!_direct.allowed || _direct.unavailable || bytes + direct_block > tail_chunk_bytes) return false;
    if (_direct.fd < 0) {
        _direct.fd = ::open(_log_path.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC);
        if (_direct.fd < 0) {
            // tmpfs and some file systems refuse O_DIRECT; EMFILE is the descriptor budget.
            if (errno != EMFILE && errno != ENFILE) {
                _direct.unavailable = true;
                log::warn("storage", "{}: O_DIRECT refused ({}); appending through the page cache",
                          _log_path.string(), std::strerror(errno));
            }
            return false;
        }
    }
    uint64_t end = size_bytes();
    if (!_direct.chunks.empty()) {
        const auto& cur = *_direct.chunks.back().chunk;
        if (cur.file_start + cur.fill() == end && cur.fill() + bytes <= cur.capacity()) return true;
    }
    auto chunk = tail_pool::instance().acquire();
    while (!chunk && _direct.chunks.size() > 1) {
        _direct.chunks.erase(_direct.chunks.begin());  // our oldest, if no send holds it
        chunk = tail_pool::instance().acquire();
    }
    if (!chunk) return false;
    // The new chunk starts at the block holding the end: that block is written again in
    // full, so its head (the end of the last batch) is copied in first.
    uint64_t start = end / direct_block * direct_block;
    size_t head = static_cast<size_t>(end - start);
    if (head > 0) {
        if (const tail_chunk* from = cached(start, head)) {
            std::memcpy(chunk->data(), from->mapped() + (start - from->file_start), head);
        } else if (read_bytes(start, head, chunk->data())) {
            return false;
        }
    }
    chunk->file_start = start;
    chunk->set_fill(head);
    _direct.chunks.push_back({std::move(chunk), end});
    constexpr size_t max_chunks_per_segment = 4;
    if (_direct.chunks.size() > max_chunks_per_segment) _direct.chunks.erase(_direct.chunks.begin());
    return true;
}

std::error_code segment::append_direct(std::span<const uint8_t> batches) {
    tail_chunk& c = *_direct.chunks.back().chunk;
    uint64_t fill = c.fill();
    uint64_t new_fill = fill + batches.size();
    std::memcpy(c.data() + fill, batches.data(), batches.size());
    uint64_t from = fill / direct_block * direct_block;
    uint64_t to = (new_fill + direct_block - 1) / direct_block * direct_block;
    std::memset(c.data() + new_fill, 0, to - new_fill);  // the last block's tail, past the end
    _direct.padded = true;
    for (uint64_t at = from; at < to;) {
        ssize_t n = ::pwrite(_direct.fd, c.data() + at, to - at, static_cast<off_t>(c.file_start + at));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || n % static_cast<ssize_t>(direct_block) != 0) {
            int err = n < 0 ? errno : EIO;
            uint64_t start = c.file_start + fill;
            drop_direct(true);
            if (::ftruncate(open_fd(), static_cast<off_t>(start)) != 0)
                log::error("storage", "{}: cannot truncate back a failed write to {}: {}",
                           _log_path.string(), start, std::strerror(errno));
            return errno_code(err);
        }
        at += static_cast<uint64_t>(n);
    }
    c.set_fill(new_fill);
    return {};
}

const tail_chunk* segment::cached(uint64_t position, uint64_t length) const {
    for (auto it = _direct.chunks.rbegin(); it != _direct.chunks.rend(); ++it) {
        const tail_chunk& c = *it->chunk;
        if (position >= c.file_start && position + length <= c.file_start + c.fill()) return &c;
        if (position >= c.file_start) break;
    }
    return nullptr;
}

void segment::slices_into(const std::shared_ptr<segment>& self, uint64_t position, uint64_t length,
                          std::vector<file_slice>& out) {
    uint64_t end = position + length;
    // From the file: everything before the first chunk's own bytes.
    uint64_t file_end = end;
    if (!self->_direct.chunks.empty())
        file_end = std::min(end, std::max(position, self->_direct.chunks.front().serve_from));
    if (file_end > position) out.push_back(file_slice{self, position, static_cast<uint32_t>(file_end - position)});
    for (size_t i = 0; i < self->_direct.chunks.size() && file_end < end; ++i) {
        const auto& h = self->_direct.chunks[i];
        uint64_t chunk_end = h.chunk->file_start + h.chunk->fill();
        uint64_t from = std::max(file_end, h.serve_from);
        uint64_t to = std::min(end, chunk_end);
        if (to <= from) continue;
        out.push_back(file_slice{h.chunk, from - h.chunk->file_start, static_cast<uint32_t>(to - from)});
        file_end = to;
    }
    SLUICE_ASSERT(file_end == end, "{}: slice {}+{} not covered (stopped at {})", self->_log_path.string(),
                  position, length, file_end);
}

std::error_code segment::read_bytes(uint64_t position, size_t length, uint8_t* out) const {
    if (position + length > size_bytes()) return log_errc::corrupt_message;
    if (const tail_chunk* c = cached(position, length)) {
        std::memcpy(out, c->mapped() + (position - c->file_start), length);
        return {};
    }
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
    if (const tail_chunk* c = cached(position, batch_header_size))
        p = c->mapped() + (position - c->file_start);
    else if (position + batch_header_size <= mapped_size())
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
    drop_direct(true);
    if (_direct.padded) {
        // Direct writes end on a 4 KiB boundary: cut the zeros past the last batch.
        if (auto ec = truncate_file(size_bytes())) return ec;
    }
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
