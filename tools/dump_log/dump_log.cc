// sluice-dump-log: prints the batches of .log segment files and the entries of .index /
// .timeindex files, checking each index entry against its log, in the spirit of Kafka's
// kafka-dump-log.sh (same field names, so output can be compared side by side).
//
//   sluice-dump-log [--print-data-log] [--verify-index-only] FILE...
//   sluice-dump-log --files a.log,a.index            (kafka-dump-log.sh's spelling)
//
// Files left by compaction or retention (<name>.cleaned / .swap / .deleted) are read as
// the kind before the suffix.
//
// Read-only: files are read with pread into memory, nothing is created or modified.
// Exit status: 0 when every batch is valid and every index entry matches; 1 otherwise;
// 2 on usage errors or unreadable files.
#include "storage/endian.h"
#include "storage/record_batch.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fmt/format.h>
#include <optional>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace sluice::storage;

namespace {

struct options {
    bool print_data = false;
    bool verify_index_only = false;
    std::vector<fs::path> files;
};

std::optional<std::vector<uint8_t>> read_file(const fs::path& p) {
    int fd = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    struct stat st {};
    std::vector<uint8_t> out;
    if (::fstat(fd, &st) == 0) out.resize(static_cast<size_t>(st.st_size));
    size_t done = 0;
    while (done < out.size()) {
        ssize_t n = ::pread(fd, out.data() + done, out.size() - done, static_cast<off_t>(done));
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    ::close(fd);
    out.resize(done);
    return out;
}

// One batch found walking a .log file.
struct batch_at {
    uint64_t position;
    batch_header header;
    bool valid;
};

// Walks batches until the end or the first one whose frame does not fit.
std::vector<batch_at> scan_log(const std::vector<uint8_t>& bytes, uint64_t* trailing) {
    std::vector<batch_at> out;
    size_t pos = 0;
    while (bytes.size() - pos >= batch_header_size) {
        batch_header h = parse_batch_header(bytes.data() + pos);
        if (h.batch_length < static_cast<int32_t>(batch_header_size - log_overhead) ||
            h.size_bytes() > bytes.size() - pos)
            break;
        std::span<const uint8_t> b(bytes.data() + pos, h.size_bytes());
        out.push_back({pos, h, !check_stored_batch(b, b.size())});
        pos += h.size_bytes();
    }
    *trailing = bytes.size() - pos;
    return out;
}

std::string printable(std::span<const uint8_t> s) {
    std::string out;
    for (uint8_t c : s) {
        if (c >= 0x20 && c < 0x7f && c != '\\')
            out.push_back(static_cast<char>(c));
        else
            out += fmt::format("\\x{:02x}", c);
    }
    return out;
}

void print_records(std::span<const uint8_t> batch, const batch_header& h) {
    auto records = decode_records(batch);
    if (!records) {
        fmt::print("| (records not printable: {})\n",
                   h.codec() != compression::none ? "compressed" : records.error().message());
        return;
    }
    const char* ts_name = h.ts_type() == timestamp_type::log_append_time ? "LogAppendTime" : "CreateTime";
    for (auto& r : *records) {
        int64_t ts = h.ts_type() == timestamp_type::log_append_time ? h.max_timestamp
                                                                     : h.base_timestamp + r.timestamp_delta;
        int64_t seq = h.base_sequence < 0 ? -1 : h.base_sequence + r.offset_delta;
        std::string header_keys;
        for (auto& hd : r.headers) header_keys += (header_keys.empty() ? "" : ",") + printable(hd.key);
        fmt::print("| offset: {} {}: {} keySize: {} valueSize: {} sequence: {} headerKeys: [{}]",
                   h.base_offset + r.offset_delta, ts_name, ts, r.key ? static_cast<long>(r.key->size()) : -1,
                   r.value ? static_cast<long>(r.value->size()) : -1, seq, header_keys);
        fmt::print(" key: {} payload: {}\n", r.key ? printable(*r.key) : "null",
                   r.value ? printable(*r.value) : "null");
    }
}

bool dump_log(const fs::path& path, const std::vector<uint8_t>& bytes, const options& opt) {
    fmt::print("Dumping {}\n", path.string());
    fmt::print("Log starting offset: {}\n", std::stoll(path.stem().string()));
    uint64_t trailing = 0;
    auto batches = scan_log(bytes, &trailing);
    bool ok = true;
    for (auto& b : batches) {
        const auto& h = b.header;
        int64_t last_seq = h.base_sequence < 0 ? -1 : h.base_sequence + h.last_offset_delta;
        fmt::print(
            "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} "
            "producerId: {} producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} "
            "isControl: {} position: {} {}: {} size: {} magic: {} compresscodec: {} crc: {} "
            "isvalid: {}\n",
            h.base_offset, h.last_offset(), h.record_count, h.base_sequence, last_seq, h.producer_id,
            h.producer_epoch, h.partition_leader_epoch, h.is_transactional(), h.is_control(),
            b.position, h.ts_type() == timestamp_type::log_append_time ? "LogAppendTime" : "CreateTime",
            h.max_timestamp, h.size_bytes(), static_cast<int>(h.magic), compression_name(h.codec()),
            h.crc, b.valid);
        ok = ok && b.valid;
        if (opt.print_data && b.valid)
            print_records(std::span<const uint8_t>(bytes.data() + b.position, h.size_bytes()), h);
    }
    if (trailing > 0) {
        fmt::print("Found {} invalid bytes at the end of {}\n", trailing, path.filename().string());
        ok = false;
    }
    return ok;
}

// The segment file kind, looking through the suffixes compaction and retention add
// ("<base>.log.cleaned", ".swap", ".deleted").
fs::path kind_of(const fs::path& f) {
    auto ext = f.extension();
    if (ext == ".cleaned" || ext == ".swap" || ext == ".deleted") return f.stem().extension();
    return ext;
}

// Companion .log of an index file (with the same suffix), scanned.
std::optional<std::vector<batch_at>> companion_batches(const fs::path& index_path) {
    fs::path log_path = index_path;
    if (kind_of(index_path) != index_path.extension()) {
        auto suffix = index_path.extension();
        log_path = index_path.parent_path() / index_path.stem();
        log_path.replace_extension(".log");
        log_path += suffix;
    } else {
        log_path.replace_extension(".log");
    }
    auto bytes = read_file(log_path);
    if (!bytes) {
        fmt::print("No companion log {} to check against\n", log_path.string());
        return std::nullopt;
    }
    uint64_t trailing = 0;
    return scan_log(*bytes, &trailing);
}

bool dump_offset_index(const fs::path& path, const std::vector<uint8_t>& bytes, const options& opt) {
    fmt::print("Dumping {}\n", path.string());
    int64_t base = std::stoll(path.stem().string());
    auto batches = companion_batches(path);
    std::vector<std::string> mismatches;
    for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
        uint32_t rel = load_be32(bytes.data() + i);
        uint32_t pos = load_be32(bytes.data() + i + 4);
        if (i > 0 && rel == 0 && pos == 0) break;  // the preallocated, unused tail
        int64_t offset = base + rel;
        if (batches) {
            auto it = std::find_if(batches->begin(), batches->end(),
                                   [&](const batch_at& b) { return b.position == pos; });
            int64_t log_offset = it == batches->end() ? -1 : it->header.last_offset();
            if (log_offset != offset)
                mismatches.push_back(fmt::format("  Index offset: {}, log offset: {}", offset, log_offset));
        }
        if (!opt.verify_index_only) fmt::print("offset: {} position: {}\n", offset, pos);
    }
    if (!mismatches.empty()) {
        fmt::print("Mismatches in :{}\n", path.string());
        for (auto& m : mismatches) fmt::print("{}\n", m);
    }
    return mismatches.empty();
}

bool dump_time_index(const fs::path& path, const std::vector<uint8_t>& bytes, const options& opt) {
    fmt::print("Dumping {}\n", path.string());
    int64_t base = std::stoll(path.stem().string());
    auto batches = companion_batches(path);
    std::vector<std::string> problems;
    int64_t prev_ts = -1;
    for (size_t i = 0; i + 12 <= bytes.size(); i += 12) {
        auto ts = static_cast<int64_t>(load_be64(bytes.data() + i));
        int64_t offset = base + load_be32(bytes.data() + i + 8);
        if (i > 0 && ts == 0 && offset == base) break;  // unused tail
        if (ts <= prev_ts)
            problems.push_back(fmt::format("  Found out of order timestamp: {} after {}", ts, prev_ts));
        prev_ts = ts;
        if (batches) {
            // The entry claims: the largest maxTimestamp of batches up to offset is ts.
            int64_t max_ts = -1;
            bool found = false;
            for (auto& b : *batches) {
                if (b.header.last_offset() > offset) break;
                max_ts = std::max(max_ts, b.header.max_timestamp);
                found = found || b.header.last_offset() == offset;
            }
            if (!found)
                problems.push_back(fmt::format("  Indexed offset: {}, no batch ends there", offset));
            else if (max_ts != ts)
                problems.push_back(fmt::format("  Index timestamp: {}, log timestamp: {}", ts, max_ts));
        }
        if (!opt.verify_index_only) fmt::print("timestamp: {} offset: {}\n", ts, offset);
    }
    if (!problems.empty()) {
        fmt::print("Found timestamp mismatch in :{}\n", path.string());
        for (auto& m : problems) fmt::print("{}\n", m);
    }
    return problems.empty();
}

int usage() {
    fmt::print(stderr,
               "usage: sluice-dump-log [--print-data-log] [--verify-index-only] "
               "(--files F1,F2,... | FILE...)\n"
               "  prints batches of .log files and entries of .index/.timeindex files,\n"
               "  checking index entries against the companion .log\n");
    return 2;
}

std::optional<options> parse_args(int argc, char** argv) {
    options opt;
    auto add_files = [&](std::string list) {
        size_t start = 0;
        while (start <= list.size()) {
            size_t comma = list.find(',', start);
            std::string f = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            if (!f.empty()) opt.files.emplace_back(f);
            if (comma == std::string::npos) break;
            start = comma + 1;
        }
    };
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--print-data-log" || a == "--deep-iteration") {
            opt.print_data = opt.print_data || a == "--print-data-log";
        } else if (a == "--verify-index-only" || a == "--index-sanity-check") {
            opt.verify_index_only = true;
        } else if (a == "--files" && i + 1 < argc) {
            add_files(argv[++i]);
        } else if (a.starts_with("--files=")) {
            add_files(a.substr(8));
        } else if (a.starts_with("-")) {
            return std::nullopt;
        } else {
            opt.files.emplace_back(a);
        }
    }
    if (opt.files.empty()) return std::nullopt;
    return opt;
}

}  // namespace

int main(int argc, char** argv) {
    auto opt = parse_args(argc, argv);
    if (!opt) return usage();
    bool all_ok = true;
    for (auto& f : opt->files) {
        auto bytes = read_file(f);
        if (!bytes) {
            fmt::print(stderr, "cannot read {}\n", f.string());
            return 2;
        }
        auto ext = kind_of(f);
        if (ext == ".log") {
            all_ok = dump_log(f, *bytes, *opt) && all_ok;
        } else if (ext == ".index") {
            all_ok = dump_offset_index(f, *bytes, *opt) && all_ok;
        } else if (ext == ".timeindex") {
            all_ok = dump_time_index(f, *bytes, *opt) && all_ok;
        } else {
            fmt::print(stderr, "{}: not a .log, .index or .timeindex file\n", f.string());
            return 2;
        }
    }
    return all_ok ? 0 : 1;
}
