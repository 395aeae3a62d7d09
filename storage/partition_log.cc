#include "storage/partition_log.h"

#include "base/assert.h"
#include "base/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <limits>

namespace sluice::storage {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view clean_shutdown_marker = ".kafka_cleanshutdown";

// "<20 digits>.log" -> base offset.
std::optional<int64_t> parse_segment_name(const std::string& name, std::string_view ext) {
    if (name.size() != 20 + ext.size() || !name.ends_with(ext)) return std::nullopt;
    int64_t v = 0;
    auto [p, ec] = std::from_chars(name.data(), name.data() + 20, v);
    if (ec != std::errc() || p != name.data() + 20 || v < 0) return std::nullopt;
    return v;
}

log_errc as_log_errc(std::error_code ec) {
    if (ec.category() == log_category()) return static_cast<log_errc>(ec.value());
    return log_errc::storage_error;
}

}  // namespace

partition_log::partition_log(const fs::path& dir, const log_config& cfg) : _dir(dir), _cfg(cfg) {
    SLUICE_ASSERT(cfg.segment_bytes > batch_header_size && cfg.segment_bytes <= UINT32_MAX,
                  "segment.bytes {} must fit u32 index positions", cfg.segment_bytes);
}

partition_log::~partition_log() {
    if (!_closed) {
        if (auto ec = close()) log::warn("storage", "{}: close: {}", _dir.string(), ec.message());
    }
}

result<std::unique_ptr<partition_log>> partition_log::open(const fs::path& dir,
                                                           const log_config& cfg,
                                                           const open_options& opts) {
    std::unique_ptr<partition_log> log(new partition_log(dir, cfg));
    if (auto ec = log->load(opts)) {
        log->_closed = true;  // nothing to seal: the segments may be half loaded
        return ec;
    }
    return log;
}

std::error_code partition_log::load(const open_options& opts) {
    std::error_code ec;
    // A log found on disk starts with a synced directory; a new one (or new segment
    // files) makes it dirty until the next flush.
    _dir_dirty = fs::create_directories(_dir, ec);
    if (ec) return ec;
    bool clean = opts.clean_shutdown.value_or(
        fs::exists(_dir.parent_path() / clean_shutdown_marker, ec));
    // Before listing segments: a finished compaction swap may still have to be renamed
    // into place (log_cleaner.h).
    auto finished = finish_interrupted_cleaning(_dir);
    if (!finished) return finished.error();
    std::vector<int64_t> bases;
    for (auto& entry : fs::directory_iterator(_dir, ec)) {
        if (auto base = parse_segment_name(entry.path().filename().string(), ".log"))
            bases.push_back(*base);
    }
    if (ec) return ec;
    std::sort(bases.begin(), bases.end());
    if (bases.empty()) {
        int64_t start = opts.log_start_offset.value_or(0);
        auto seg = segment::create(_dir, start, _cfg, opts.now_ms);
        if (!seg) return seg.error();
        _segments.push_back(std::move(*seg));
        _dir_dirty = true;
    } else if (auto err = load_segments(bases, clean, opts.recovery_point.value_or(bases.front()))) {
        return err;
    }
    _log_end = _segments.back()->next_offset();
    _log_start = std::clamp(opts.log_start_offset.value_or(0), _segments.front()->base_offset(),
                            _log_end);
    _high_watermark = std::clamp(opts.high_watermark.value_or(_log_end), _log_start, _log_end);
    // After an unclean stop what was recovered may still be only in the page cache (a
    // process crash keeps it, a machine crash does not): the recovery point moves only
    // when a flush makes it durable (Kafka's LogLoader does the same).
    _recovery_point = clean ? _log_end
                            : std::clamp(opts.recovery_point.value_or(_segments.front()->base_offset()),
                                         _segments.front()->base_offset(), _log_end);
    _first_dirty = std::clamp(opts.cleaner_checkpoint.value_or(0), _segments.front()->base_offset(), _log_end);
    // Loading read the tails through the mappings; an idle partition keeps none of it.
    for (auto& seg : _segments) seg->release_memory();
    log::info("storage", "{}: loaded {} segment(s), offsets [{}, {}), {} start", _dir.string(),
              _segments.size(), _log_start, _log_end, clean ? "clean" : "unclean");
    return {};
}

std::error_code partition_log::load_segments(const std::vector<int64_t>& bases, bool clean,
                                             int64_t recovery_point) {
    // Segments from the one holding the recovery point on are re-validated after an
    // unclean stop; their indexes are rebuilt anyway, so they are not even read.
    auto holding = std::upper_bound(bases.begin(), bases.end(), recovery_point);
    size_t first_unflushed = clean ? bases.size()
                             : holding == bases.begin()
                                 ? 0
                                 : static_cast<size_t>(holding - bases.begin() - 1);
    for (size_t i = 0; i < bases.size(); ++i) {
        auto mode = i >= first_unflushed ? index_open_mode::discard : index_open_mode::load;
        auto seg = segment::open(_dir, bases[i], _cfg, i + 1 == bases.size(), mode);
        if (!seg) return seg.error();
        _segments.push_back(std::move(*seg));
    }
    for (size_t i = 0; i < first_unflushed; ++i) {
        auto& seg = *_segments[i];
        if (seg.sanity_check() && !seg.load_tail()) continue;
        log::warn("storage", "{}: index of segment {} is inconsistent; rebuilding",
                  _dir.string(), seg.base_offset());
        // Treat this segment and everything after it as unflushed.
        return recover_from(i);
    }
    return first_unflushed < _segments.size() ? recover_from(first_unflushed) : std::error_code{};
}

std::error_code partition_log::recover_from(size_t first) {
    uint64_t max_batch = std::max<uint64_t>(_cfg.segment_bytes, _cfg.max_message_bytes);
    for (size_t i = first; i < _segments.size(); ++i) {
        auto& seg = *_segments[i];
        bool last = i + 1 == _segments.size();
        if (!last) {
            if (auto ec = seg.reactivate(false)) return ec;  // room to rebuild the indexes
        }
        auto stats = seg.recover(max_batch);
        if (!stats) return stats.error();
        log::info("storage", "{}: recovered segment {}: {} batches, {} bytes", _dir.string(),
                  seg.base_offset(), stats->batches, stats->valid_bytes);
        bool truncated = stats->truncated_bytes > 0;
        if (truncated) {
            log::warn("storage", "{}: truncated {} invalid bytes at position {} of {} (next offset {})",
                      _dir.string(), stats->truncated_bytes, stats->valid_bytes,
                      seg.log_path().filename().string(), seg.next_offset());
        }
        if (truncated && !last) {
            while (_segments.size() > i + 1) {
                auto& victim = _segments.back();
                log::warn("storage", "{}: deleting segment {} after the truncation point",
                          _dir.string(), victim->base_offset());
                if (auto ec = victim->remove_files()) return ec;
                _segments.pop_back();
                _dir_dirty = true;
            }
            return seg.reactivate(true);  // seg is the active segment now; no slices exist yet
        }
        if (!last) {
            if (auto ec = seg.seal()) return ec;
        }
    }
    return {};
}

size_t partition_log::segment_index_for(int64_t offset) const {
    auto it = std::upper_bound(_segments.begin(), _segments.end(), offset,
                               [](int64_t o, const auto& s) { return o < s->base_offset(); });
    return it == _segments.begin() ? 0 : static_cast<size_t>(it - _segments.begin() - 1);
}

uint64_t partition_log::size_bytes() const {
    uint64_t total = 0;
    for (auto& s : _segments) total += s->size_bytes();
    return total;
}

void partition_log::set_high_watermark(int64_t hw) {
    _high_watermark = std::clamp(hw, _log_start, _log_end);
}

// ---- append ----------------------------------------------------------------------------

append_result partition_log::check_append(std::span<uint8_t> records, validate_origin origin,
                                          const batch_summary* validated, batch_summary* summary) const {
    append_result r;
    r.log_start_offset = _log_start;
    auto s = validated != nullptr ? result<batch_summary>(*validated) : validate_batches(records, origin);
    if (!s) {
        r.error = as_log_errc(s.error());
        return r;
    }
    if (s->max_batch_bytes > _cfg.max_message_bytes) {
        r.error = log_errc::message_too_large;
    } else if (records.size() > _cfg.segment_bytes) {
        r.error = log_errc::record_list_too_large;
    }
    *summary = *s;
    return r;
}

void partition_log::assign_offsets(std::span<uint8_t> records, int32_t leader_epoch,
                                   int64_t now_ms, append_result* r) {
    bool append_time = _cfg.message_timestamp_type == timestamp_type::log_append_time;
    int64_t next = _log_end;
    r->base_offset = next;
    for (size_t off = 0; off < records.size();) {
        uint8_t* p = records.data() + off;
        batch_header h = parse_batch_header(p);
        set_base_offset(p, next);
        set_partition_leader_epoch(p, leader_epoch);
        if (append_time) set_log_append_time(records.subspan(off, h.size_bytes()), now_ms);
        next += static_cast<int64_t>(h.last_offset_delta) + 1;
        off += h.size_bytes();
    }
    r->last_offset = next - 1;
    r->log_append_time = append_time ? now_ms : -1;
}

append_result partition_log::append(std::span<uint8_t> records, int32_t leader_epoch,
                                    int64_t now_ms, validate_origin origin,
                                    const batch_summary* validated) {
    SLUICE_ASSERT(!_closed, "append to closed log {}", _dir.string());
    batch_summary summary;
    append_result r = check_append(records, origin, validated, &summary);
    if (r.error != log_errc::ok) return r;
    int64_t last = _log_end + summary.offset_count - 1;
    if (_segments.back()->needs_roll(records.size(), summary.batch_count, last, now_ms)) {
        if (auto ec = roll(_log_end, now_ms)) {
            r.error = log_errc::storage_error;
            r.io_error = ec;
            return r;
        }
    }
    assign_offsets(records, leader_epoch, now_ms, &r);
    if (auto ec = _segments.back()->append(records)) {
        log::error("storage", "{}: append of {} bytes at offset {} failed: {}", _dir.string(),
                   records.size(), _log_end, ec.message());
        r = append_result{};
        r.error = log_errc::storage_error;
        r.io_error = ec;
        r.log_start_offset = _log_start;
        return r;
    }
    _log_end = r.last_offset + 1;
    _unflushed_messages += summary.offset_count;
    SLUICE_ASSERT(_segments.back()->next_offset() == _log_end, "segment end {} log end {}",
                  _segments.back()->next_offset(), _log_end);
    return r;
}

append_result partition_log::append_replicated(std::span<const uint8_t> records, int64_t now_ms) {
    SLUICE_ASSERT(!_closed, "append to closed log {}", _dir.string());
    append_result r;
    r.log_start_offset = _log_start;
    auto s = validate_batches(records, validate_origin::replica);
    if (!s) {
        r.error = as_log_errc(s.error());
        return r;
    }
    // Offsets come from the leader: increasing, and starting at or after our log end.
    int64_t next = _log_end;
    for (size_t off = 0; off < records.size();) {
        batch_header h = parse_batch_header(records.data() + off);
        if (h.base_offset < next) {
            r.error = log_errc::invalid_record;
            return r;
        }
        if (off == 0) r.base_offset = h.base_offset;
        next = h.last_offset() + 1;
        off += h.size_bytes();
    }
    r.last_offset = next - 1;
    auto& active = _segments.back();
    if (active->needs_roll(records.size(), s->batch_count, r.last_offset, now_ms) ||
        r.base_offset - active->base_offset() > INT32_MAX) {
        if (auto ec = roll(r.base_offset, now_ms)) {
            r.error = log_errc::storage_error;
            r.io_error = ec;
            return r;
        }
    }
    if (auto ec = _segments.back()->append(records)) {
        r.error = log_errc::storage_error;
        r.io_error = ec;
        return r;
    }
    _log_end = next;
    _unflushed_messages += s->offset_count;
    return r;
}

std::error_code partition_log::roll(int64_t next_base, int64_t now_ms) {
    auto& old = _segments.back();
    if (auto ec = old->seal()) return ec;
    auto seg = segment::create(_dir, next_base, _cfg, now_ms);
    if (!seg) {
        if (auto ec = old->reactivate(false)) log::error("storage", "reactivate: {}", ec.message());
        return seg.error();
    }
    log::debug("storage", "{}: rolled to segment {}", _dir.string(), next_base);
    // A sealed segment is read through its mapping; its descriptor comes back on demand
    // (unless a slice of it is out: then a sender may be using the descriptor).
    if (old.use_count() == 1) old->release_fd();
    _segments.push_back(std::move(*seg));
    _dir_dirty = true;
    return {};
}

// ---- read ------------------------------------------------------------------------------

read_result partition_log::read(int64_t fetch_offset, int32_t max_bytes, bool min_one,
                                int64_t max_offset) const {
    read_result r;
    r.log_start_offset = _log_start;
    r.log_end_offset = _log_end;
    r.high_watermark = _high_watermark;
    if (fetch_offset < _log_start || fetch_offset > _log_end) {
        r.error = log_errc::offset_out_of_range;
        return r;
    }
    int64_t bound = max_offset < 0 ? _log_end : std::min(max_offset, _log_end);
    uint64_t remaining = max_bytes > 0 ? static_cast<uint64_t>(max_bytes) : 0;
    if (fetch_offset >= bound || (remaining == 0 && !min_one)) return r;
    size_t first = segment_index_for(fetch_offset);
    for (size_t i = first; i < _segments.size(); ++i) {
        const auto& seg = _segments[i];
        int64_t offset = i == first ? fetch_offset : seg->base_offset();
        auto pos = seg->find_position(offset);
        if (!pos) {
            r.error = log_errc::storage_error;
            return r;
        }
        if (*pos >= seg->size_bytes()) continue;  // offset past this segment's data
        auto len = seg->slice_length(*pos, remaining, min_one && r.slices.empty(), bound);
        if (!len) {
            r.error = log_errc::storage_error;
            return r;
        }
        if (*len == 0) break;
        SLUICE_ASSERT(*pos + *len <= seg->size_bytes() && *len <= UINT32_MAX, "slice {}+{} of {}",
                      *pos, *len, seg->size_bytes());
        segment::slices_into(seg, *pos, *len, r.slices);
        r.total_bytes += *len;
        remaining = remaining > *len ? remaining - *len : 0;
        if (remaining == 0 || *pos + *len < seg->size_bytes()) break;
    }
    return r;
}

// ---- timestamps ------------------------------------------------------------------------

std::optional<timestamp_offset> partition_log::refine_by_records(const segment& s,
                                                                 const batch_header& h,
                                                                 int64_t ts) const {
    if (h.codec() != compression::none || h.ts_type() == timestamp_type::log_append_time)
        return std::nullopt;
    auto pos = s.find_position(h.base_offset);
    if (!pos) return std::nullopt;
    std::vector<uint8_t> bytes(h.size_bytes());
    if (s.read_bytes(*pos, bytes.size(), bytes.data())) return std::nullopt;
    auto records = decode_records(bytes);
    if (!records) return std::nullopt;
    for (auto& rec : *records) {
        int64_t rec_ts = h.base_timestamp + rec.timestamp_delta;
        if (rec_ts >= ts) return timestamp_offset{rec_ts, h.base_offset + rec.offset_delta};
    }
    return std::nullopt;
}

result<std::optional<timestamp_offset>> partition_log::offset_for_timestamp(int64_t ts) const {
    for (auto& seg : _segments) {
        if (seg->max_timestamp().timestamp < ts) continue;
        auto h = seg->find_by_timestamp(ts);
        if (!h) return h.error();
        if (!*h) continue;
        auto found = refine_by_records(*seg, **h, ts)
                         .value_or(timestamp_offset{(*h)->max_timestamp, (*h)->base_offset});
        found.offset = std::max(found.offset, _log_start);
        return std::optional<timestamp_offset>{found};
    }
    return std::optional<timestamp_offset>{};
}

timestamp_offset partition_log::max_timestamp() const {
    timestamp_offset best{-1, -1};
    for (auto& seg : _segments) {
        auto m = seg->max_timestamp();
        if (m.timestamp > best.timestamp) best = m;
    }
    return best;
}

// ---- maintenance -----------------------------------------------------------------------

bool partition_log::flush_needed() const { return _recovery_point < _log_end || _dir_dirty; }

std::error_code partition_log::flush() {
    // Nothing written since the last flush: no fdatasync, no msync (a clean stop of
    // 10,000 idle partitions must not pay 10,000 disk round trips).
    if (!flush_needed()) {
        _unflushed_messages = 0;
        return {};
    }
    for (size_t i = segment_index_for(_recovery_point); i < _segments.size(); ++i) {
        if (auto ec = _segments[i]->flush()) return ec;
    }
    if (auto ec = flush_dir()) return ec;
    _recovery_point = _log_end;
    _unflushed_messages = 0;
    return {};
}

result<bool> partition_log::maybe_flush(int64_t now_ms) {
    if (_last_flush_ms < 0) _last_flush_ms = now_ms;
    bool due = _unflushed_messages > 0 && (_unflushed_messages >= _cfg.flush_interval_messages ||
                                           now_ms - _last_flush_ms >= _cfg.flush_interval_ms);
    if (!due) return false;
    if (auto ec = flush()) return ec;
    _last_flush_ms = now_ms;
    return true;
}

size_t partition_log::release_idle_fds() {
    size_t closed = 0;
    for (auto& seg : _segments) {
        if (seg.use_count() == 1 && seg->release_fd()) ++closed;
        seg->release_memory();
    }
    return closed;
}

size_t partition_log::open_fds() const {
    size_t n = 0;
    for (const auto& s : _segments) n += s->open_fd_count();
    return n;
}

std::error_code partition_log::close() { return close(close_mode::seal); }

std::error_code partition_log::close(close_mode mode) {
    if (_closed) return {};
    if (mode == close_mode::flush) {
        if (auto ec = flush()) return ec;  // still open: the caller may retry or seal
    }
    _closed = true;
    return _segments.back()->seal();
}

void partition_log::synced() {
    SLUICE_ASSERT(_closed, "synced() of open log {}: use flush()", _dir.string());
    _recovery_point = _log_end;
    _dir_dirty = false;
    _unflushed_messages = 0;
}

std::error_code partition_log::truncate_to(int64_t offset) {
    SLUICE_ASSERT(!_closed, "truncate of closed log {}", _dir.string());
    if (offset >= _log_end) return {};
    if (offset < 0) return log_errc::offset_out_of_range;
    if (offset <= _segments.front()->base_offset() || offset < _log_start) {
        auto fresh = segment::create(_dir, offset, _cfg, 0);
        if (!fresh) return fresh.error();
        for (auto& seg : _segments)
            if (seg->base_offset() != offset) seg->remove_files();
        _segments.clear();
        _segments.push_back(std::move(*fresh));
        _dir_dirty = true;
        _log_start = _log_end = offset;
    } else {
        bool popped = false;
        while (_segments.back()->base_offset() >= offset) {
            if (auto ec = _segments.back()->remove_files()) return ec;
            _segments.pop_back();
            popped = true;
        }
        if (popped) {
            bool exclusive = _segments.back().use_count() == 1;  // no slice of it is out
            if (auto ec = _segments.back()->reactivate(exclusive)) return ec;
        }
        auto end = _segments.back()->truncate_to(offset);
        if (!end) return end.error();
        _log_end = *end;
    }
    log::info("storage", "{}: truncated to offset {} (log end now {})", _dir.string(), offset,
              _log_end);
    _high_watermark = std::min(_high_watermark, _log_end);
    _recovery_point = std::min(_recovery_point, _log_end);
    return {};
}

std::error_code partition_log::delete_segment_front(int64_t now_ms) {
    SLUICE_ASSERT(_segments.size() > 1, "never delete the active segment");
    auto seg = _segments.front();
    _segments.erase(_segments.begin());
    _dir_dirty = true;
    _log_start = std::max(_log_start, _segments.front()->base_offset());
    _first_dirty = std::max(_first_dirty, _log_start);
    log::info("storage", "{}: deleting segment {} (log start now {}, files removed in {} ms)",
              _dir.string(), seg->base_offset(), _log_start, _cfg.file_delete_delay_ms);
    // Kafka's order: rename to .deleted now, unlink after file.delete.delay.ms. A restart
    // in between removes the .deleted files (log_cleaner.h).
    if (_cfg.file_delete_delay_ms <= 0) return seg->remove_files();
    if (auto ec = seg->mark_deleted()) return ec;
    _pending_deletes.push_back({std::move(seg), now_ms + _cfg.file_delete_delay_ms});
    return {};
}

int partition_log::delete_expired_files(int64_t now_ms) {
    int removed = 0;
    std::erase_if(_pending_deletes, [&](const pending_delete& d) {
        if (d.due_ms > now_ms) return false;
        if (auto ec = d.seg->remove_files())
            log::warn("storage", "{}: removing deleted segment {}: {}", _dir.string(),
                      d.seg->base_offset(), ec.message());
        ++removed;
        return true;
    });
    return removed;
}

std::error_code partition_log::advance_log_start(int64_t offset, int64_t now_ms) {
    if (now_ms < 0)
        now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();
    delete_expired_files(now_ms);
    if (offset <= _log_start) return {};
    if (offset > _log_end) return log_errc::offset_out_of_range;
    _log_start = offset;
    _high_watermark = std::max(_high_watermark, _log_start);
    while (_segments.size() > 1 && _segments[1]->base_offset() <= _log_start) {
        if (auto ec = delete_segment_front(now_ms)) return ec;
    }
    return {};
}

result<int> partition_log::enforce_retention(int64_t now_ms) {
    int deleted = 0;
    delete_expired_files(now_ms);
    if (!_cfg.deletes()) return deleted;  // cleanup.policy=compact alone keeps everything
    // Only segments wholly below the high watermark: consumers may still need the rest.
    while (_segments.size() > 1 && _segments[1]->base_offset() <= _high_watermark) {
        const auto& front = *_segments.front();
        int64_t newest = front.max_timestamp().timestamp;
        bool too_old = _cfg.retention_ms >= 0 && newest >= 0 && now_ms - newest > _cfg.retention_ms;
        bool too_big = _cfg.retention_bytes >= 0 &&
                       size_bytes() - front.size_bytes() >= static_cast<uint64_t>(_cfg.retention_bytes);
        if (!too_old && !too_big) break;
        if (auto ec = delete_segment_front(now_ms)) return ec;
        ++deleted;
    }
    return deleted;
}

// ---- compaction ------------------------------------------------------------------------

// How many leading segments the cleaner may touch: sealed ones, up to the first dirty
// segment holding records younger than min.compaction.lag.ms.
size_t partition_log::cleanable_end(int64_t now_ms) const {
    size_t i = 0;
    for (; i + 1 < _segments.size(); ++i) {
        const auto& seg = *_segments[i];
        bool dirty = _segments[i + 1]->base_offset() > _first_dirty;
        int64_t newest = seg.max_timestamp().timestamp;
        if (dirty && _cfg.min_compaction_lag_ms > 0 && newest >= 0 &&
            now_ms - newest < _cfg.min_compaction_lag_ms)
            break;
    }
    return i;
}

double partition_log::dirty_ratio(int64_t now_ms) const {
    size_t end = cleanable_end(now_ms);
    uint64_t total = 0, dirty = 0;
    for (size_t i = 0; i < end; ++i) {
        total += _segments[i]->size_bytes();
        if (_segments[i + 1]->base_offset() > _first_dirty) dirty += _segments[i]->size_bytes();
    }
    return total == 0 ? 0.0 : static_cast<double>(dirty) / static_cast<double>(total);
}

std::optional<clean_task> partition_log::prepare_cleaning(int64_t now_ms) {
    if (!_cfg.compacted() || _cleaning || _closed) return std::nullopt;
    size_t end = cleanable_end(now_ms);
    if (end == 0 || _segments[end]->base_offset() <= _first_dirty) return std::nullopt;
    // max.compaction.lag.ms: the oldest dirty record waited long enough, whatever the ratio.
    bool overdue = false;
    for (size_t i = 0; i < end; ++i) {
        if (_segments[i + 1]->base_offset() <= _first_dirty || _segments[i]->empty()) continue;
        auto h = _segments[i]->header_at(0);
        overdue = h && _cfg.max_compaction_lag_ms < std::numeric_limits<int64_t>::max() &&
                  now_ms - h->base_timestamp > _cfg.max_compaction_lag_ms;
        break;
    }
    if (!overdue && dirty_ratio(now_ms) < _cfg.min_cleanable_dirty_ratio) return std::nullopt;
    clean_task t;
    t.dir = _dir;
    t.cfg = _cfg;
    t.first_dirty = _first_dirty;
    t.end_offset = _segments[end]->base_offset();
    t.now_ms = now_ms;
    for (size_t i = 0; i < end; ++i) {
        t.segments.push_back(_segments[i]);
        t.sizes.push_back(_segments[i]->size_bytes());
    }
    _cleaning = true;
    return t;
}

std::error_code partition_log::install_one(const cleaned_segment& c) {
    auto it = std::find(_segments.begin(), _segments.end(), c.original);
    auto name = [&](std::string_view ext, std::string_view suffix) {
        return _dir / (segment_file_name(c.base_offset, ext) + std::string(suffix));
    };
    if (it == _segments.end() || it + 1 == _segments.end() || (*it)->size_bytes() != c.original_size) {
        log::info("storage", "{}: segment {} changed while being compacted; dropping the result",
                  _dir.string(), c.base_offset);
        std::error_code ignored;
        for (auto ext : {".log", ".index", ".timeindex"}) fs::remove(name(ext, cleaned_suffix), ignored);
        return {};
    }
    // Pin the old file: a slice of the old segment must never reopen the new one by name.
    if ((*it)->fd() < 0) return errno_code(errno);
    // .cleaned -> .swap, the log first: recovery completes a set whose log reached .swap.
    for (auto ext : {".log", ".index", ".timeindex"}) {
        if (::rename(name(ext, cleaned_suffix).c_str(), name(ext, swap_suffix).c_str()) != 0)
            return errno_code(errno);
    }
    for (auto ext : {".index", ".timeindex", ".log"}) {
        if (::rename(name(ext, swap_suffix).c_str(), name(ext, "").c_str()) != 0) return errno_code(errno);
    }
    _dir_dirty = true;
    auto seg = segment::open(_dir, c.base_offset, _cfg, false);
    if (!seg) return seg.error();
    if (!(*seg)->sanity_check() || (*seg)->load_tail()) {
        auto stats = (*seg)->recover(std::max<uint64_t>(_cfg.segment_bytes, _cfg.max_message_bytes));
        if (!stats) return stats.error();
        if (auto ec = (*seg)->seal()) return ec;
    }
    *it = std::move(*seg);
    return {};
}

std::error_code partition_log::install_cleaned(const clean_result& r) {
    SLUICE_ASSERT(r.dir == _dir, "cleaned {} installed into {}", r.dir.string(), _dir.string());
    _cleaning = false;
    std::error_code first;
    for (const auto& c : r.segments) {
        if (auto ec = install_one(c); ec && !first) {
            log::error("storage", "{}: installing compacted segment {}: {}", _dir.string(),
                       c.base_offset, ec.message());
            first = ec;
        }
    }
    if (first) return first;
    _first_dirty = std::max(_first_dirty, r.end_offset);
    return flush_dir();
}

std::error_code partition_log::flush_dir() {
    if (!_dir_dirty) return {};
    // New, renamed or removed segment files are durable only once the directory is synced.
    int fd = ::open(_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return errno_code(err);
    _dir_dirty = false;
    return {};
}

}  // namespace sluice::storage
