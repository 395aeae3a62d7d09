#include "storage/log_cleaner.h"

#include "base/assert.h"
#include "base/log.h"
#include "storage/compression.h"
#include "storage/errors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>
#include <string>
#include <unordered_map>

namespace sluice::storage {

namespace fs = std::filesystem;

namespace {

using key_map = std::unordered_map<std::string, int64_t>;

std::string key_of(const record_view& r) {
    return r.key ? std::string(r.key->begin(), r.key->end()) : std::string();
}

// Batches the cleaner leaves alone (see the header).
bool keep_whole(const batch_header& h) { return h.is_transactional() || h.is_control(); }

// The batch as the cleaner reads its records: `b` itself when uncompressed, else the
// equivalent uncompressed batch (compression.h) in `scratch`. nullopt when the payload does
// not decompress (corrupt, or past the size cap): such a batch is kept whole and gives the
// key map nothing, which can only keep more records, never lose the latest of a key.
std::optional<std::span<const uint8_t>> plain_records(const batch_header& h, std::span<const uint8_t> b,
                                                      std::vector<uint8_t>& scratch, bool warn) {
    if (h.codec() == compression::none) return b;
    auto plain = decompress_batch(b);
    if (!plain) {
        if (warn)
            log::warn("storage", "cleaner keeps {} batch at offset {} whole: {}", compression_name(h.codec()),
                      h.base_offset, plain.error().message());
        return std::nullopt;
    }
    scratch = std::move(*plain);
    return std::span<const uint8_t>(scratch);
}

// Calls fn(header, bytes) for every batch of a sealed segment, in order.
template <typename Fn>
std::error_code for_each_batch(const segment& seg, uint64_t size, Fn&& fn) {
    std::vector<uint8_t> buf;
    for (uint64_t pos = 0; pos < size;) {
        auto h = seg.header_at(pos);
        if (!h) return h.error();
        if (h->size_bytes() > size - pos) return log_errc::corrupt_message;
        buf.resize(h->size_bytes());
        if (auto ec = seg.read_bytes(pos, buf.size(), buf.data())) return ec;
        if (auto ec = fn(*h, std::span<const uint8_t>(buf))) return ec;
        pos += h->size_bytes();
    }
    return {};
}

// key -> last offset over the dirty segments; stops at a segment boundary when the map
// would grow past max_keys. Returns the offset the map covers up to.
result<int64_t> build_key_map(const clean_task& t, key_map& map) {
    int64_t covered = t.first_dirty;
    std::vector<uint8_t> scratch;
    for (size_t i = 0; i < t.segments.size(); ++i) {
        const auto& seg = *t.segments[i];
        int64_t seg_end = i + 1 < t.segments.size() ? t.segments[i + 1]->base_offset() : t.end_offset;
        if (seg_end <= t.first_dirty) continue;
        if (map.size() >= t.max_map_keys && covered > t.first_dirty) break;
        auto ec = for_each_batch(seg, t.sizes[i], [&](const batch_header& h, std::span<const uint8_t> b) {
            if (keep_whole(h) || h.last_offset() < t.first_dirty) return std::error_code{};
            auto plain = plain_records(h, b, scratch, false);
            if (!plain) return std::error_code{};
            auto records = decode_records(*plain);
            if (!records) return records.error();
            for (auto& r : *records) {
                int64_t off = h.base_offset + r.offset_delta;
                if (off < t.first_dirty || !r.key) continue;
                auto& slot = map[key_of(r)];
                slot = std::max(slot, off);
            }
            return std::error_code{};
        });
        if (ec) return ec;
        covered = seg_end;
    }
    return covered;
}

struct segment_filter {
    const key_map& map;
    bool drop_tombstones;
    clean_stats& stats;

    bool keep(int64_t offset, const record_view& r) {
        if (r.key) {
            auto it = map.find(key_of(r));
            if (it != map.end() && it->second > offset) {
                stats.records_removed++;
                return false;
            }
        }
        if (!r.value && drop_tombstones) {
            stats.tombstones_removed++;
            stats.records_removed++;
            return false;
        }
        return true;
    }
};

// The surviving batches of one segment, back to back; nullopt when nothing changes.
result<std::optional<std::vector<uint8_t>>> filter_segment(const segment& seg, uint64_t size,
                                                           segment_filter& f,
                                                           const std::atomic<bool>* stop) {
    std::vector<uint8_t> out;
    std::vector<uint8_t> scratch;
    bool changed = false;
    auto ec = for_each_batch(seg, size, [&](const batch_header& h, std::span<const uint8_t> b) {
        if (stop && stop->load(std::memory_order_relaxed))
            return std::make_error_code(std::errc::operation_canceled);
        auto plain = keep_whole(h) ? std::nullopt : plain_records(h, b, scratch, true);
        if (!plain) {
            out.insert(out.end(), b.begin(), b.end());
            return std::error_code{};
        }
        auto kept = filter_records(*plain, [&](int64_t off, const record_view& r) { return f.keep(off, r); });
        if (!kept) return kept.error();
        if (kept->size() == plain->size()) {  // nothing removed: the original bytes, codec and all
            out.insert(out.end(), b.begin(), b.end());
            return std::error_code{};
        }
        changed = true;
        if (kept->empty()) {
            f.stats.batches_removed++;
            return std::error_code{};
        }
        if (h.codec() != compression::none) {
            // Kafka's cleaner re-compresses the survivors with the batch's own codec.
            auto packed = compress_batch(*kept, h.codec());
            if (!packed) return packed.error();
            *kept = std::move(*packed);
        }
        out.insert(out.end(), kept->begin(), kept->end());
        return std::error_code{};
    });
    if (ec) return ec;
    if (!changed) return std::optional<std::vector<uint8_t>>{};
    return std::optional<std::vector<uint8_t>>{std::move(out)};
}

fs::path with_suffix(const fs::path& dir, int64_t base, std::string_view ext, std::string_view suffix) {
    return dir / (segment_file_name(base, ext) + std::string(suffix));
}

void remove_cleaned_files(const fs::path& dir, int64_t base) {
    std::error_code ignored;
    for (auto ext : {".log", ".index", ".timeindex"})
        fs::remove(with_suffix(dir, base, ext, cleaned_suffix), ignored);
}

// Writes <base>.*.cleaned holding `batches`: appended through a segment object so the
// indexes are built exactly as for a live segment, then sealed and fsynced.
std::error_code write_cleaned(const clean_task& t, int64_t base, std::span<const uint8_t> batches) {
    auto seg = segment::create(t.dir, base, t.cfg, t.now_ms, cleaned_suffix);
    if (!seg) return seg.error();
    // One append per batch keeps index entries as sparse as log.index.interval.bytes says.
    for (size_t off = 0; off < batches.size();) {
        batch_header h = parse_batch_header(batches.data() + off);
        if (auto ec = (*seg)->append(batches.subspan(off, h.size_bytes()))) return ec;
        off += h.size_bytes();
    }
    if (auto ec = (*seg)->seal()) return ec;
    return (*seg)->flush();
}

}  // namespace

result<clean_result> run_cleaning(const clean_task& t, const std::atomic<bool>* stop) {
    SLUICE_ASSERT(t.segments.size() == t.sizes.size(), "{} segments, {} sizes", t.segments.size(),
                  t.sizes.size());
    clean_result r;
    r.dir = t.dir;
    key_map map;
    auto covered = build_key_map(t, map);
    if (!covered) return covered.error();
    r.end_offset = *covered;
    r.stats.keys = map.size();
    for (size_t i = 0; i < t.segments.size(); ++i) {
        const auto& seg = t.segments[i];
        if (seg->base_offset() >= r.end_offset) break;
        // Tombstones go once their segment's newest record is delete.retention.ms old.
        int64_t newest = seg->max_timestamp().timestamp;
        bool drop_tombstones = newest >= 0 && t.now_ms - newest > t.cfg.delete_retention_ms;
        segment_filter f{map, drop_tombstones, r.stats};
        auto kept = filter_segment(*seg, t.sizes[i], f, stop);
        std::error_code ec = kept ? std::error_code{} : kept.error();
        if (!ec && *kept) ec = write_cleaned(t, seg->base_offset(), **kept);
        if (ec) {
            remove_cleaned_files(t.dir, seg->base_offset());
            discard_cleaned(r);
            return ec;
        }
        r.stats.bytes_before += t.sizes[i];
        uint64_t after = *kept ? (*kept)->size() : t.sizes[i];
        r.stats.bytes_after += after;
        if (*kept) r.segments.push_back({seg->base_offset(), seg, t.sizes[i], t.sizes[i], after});
    }
    return r;
}

void discard_cleaned(const clean_result& r) {
    for (auto& s : r.segments) remove_cleaned_files(r.dir, s.base_offset);
}

result<int> finish_interrupted_cleaning(const fs::path& dir) {
    std::error_code ec;
    std::vector<fs::path> cleaned, swapped, deleted;
    for (auto& e : fs::directory_iterator(dir, ec)) {
        std::string name = e.path().filename().string();
        if (name.ends_with(cleaned_suffix)) cleaned.push_back(e.path());
        else if (name.ends_with(swap_suffix)) swapped.push_back(e.path());
        else if (name.ends_with(deleted_suffix)) deleted.push_back(e.path());
    }
    if (ec) return ec;
    int changed = 0;
    for (auto* list : {&cleaned, &deleted}) {
        for (auto& p : *list) {
            log::warn("storage", "{}: removing leftover {}", dir.string(), p.filename().string());
            if (fs::remove(p, ec); ec) return ec;
            ++changed;
        }
    }
    std::sort(swapped.begin(), swapped.end());
    for (auto& p : swapped) {
        fs::path live = p.parent_path() / p.stem();  // "<base>.log.swap" -> "<base>.log"
        if (live.extension() == ".log") {
            // A finished rewrite of this log whose index was not yet swapped: the live
            // index describes the old file, so drop it and let recovery rebuild it.
            for (auto ext : {".index", ".timeindex"}) {
                fs::path idx = fs::path(live).replace_extension(ext);
                if (!fs::exists(fs::path(idx.string() + std::string(swap_suffix)))) fs::remove(idx, ec);
            }
        }
        log::warn("storage", "{}: completing interrupted swap of {}", dir.string(), live.filename().string());
        if (::rename(p.c_str(), live.c_str()) != 0) return errno_code(errno);
        ++changed;
    }
    return changed;
}

// ---- log_cleaner -----------------------------------------------------------------------

log_cleaner::log_cleaner() : _thread([this] { run(); }) {}

log_cleaner::~log_cleaner() { stop(); }

void log_cleaner::submit(clean_task task, done_fn done) {
    {
        std::lock_guard g(_mutex);
        if (!_stop.load()) {
            _queue.emplace_back(std::move(task), std::move(done));
            _cv.notify_one();
            return;
        }
    }
    done(std::make_error_code(std::errc::operation_canceled));
}

size_t log_cleaner::queued() const {
    std::lock_guard g(_mutex);
    return _queue.size();
}

void log_cleaner::stop() {
    std::deque<std::pair<clean_task, done_fn>> dropped;
    {
        std::lock_guard g(_mutex);
        _stop.store(true);
        dropped.swap(_queue);
        _cv.notify_all();
    }
    if (_thread.joinable()) _thread.join();
    for (auto& [task, done] : dropped) done(std::make_error_code(std::errc::operation_canceled));
}

void log_cleaner::run() {
    for (;;) {
        std::pair<clean_task, done_fn> job;
        {
            std::unique_lock g(_mutex);
            _cv.wait(g, [&] { return _stop.load() || !_queue.empty(); });
            if (_stop.load()) return;
            job = std::move(_queue.front());
            _queue.pop_front();
        }
        auto r = run_cleaning(job.first, &_stop);
        if (r) {
            log::info("storage", "{}: compacted to offset {}: {} keys, {} records ({} tombstones) removed, "
                      "{} -> {} bytes", job.first.dir.string(), r->end_offset, r->stats.keys,
                      r->stats.records_removed, r->stats.tombstones_removed, r->stats.bytes_before,
                      r->stats.bytes_after);
        } else {
            log::warn("storage", "{}: compaction failed: {}", job.first.dir.string(), r.error().message());
        }
        _completed.fetch_add(1, std::memory_order_relaxed);
        job.second(std::move(r));
    }
}

}  // namespace sluice::storage
