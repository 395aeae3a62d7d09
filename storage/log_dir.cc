#include "storage/log_dir.h"

#include "base/log.h"
#include "storage/errors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <charconv>
#include <chrono>
#include <fmt/format.h>
#include <fstream>
#include <sstream>

namespace sluice::storage {

namespace fs = std::filesystem;

namespace {

template <typename T>
std::optional<T> parse_int(std::string_view s) {
    T v{};
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || s.empty()) return std::nullopt;
    return v;
}

std::error_code fsync_path(const fs::path& p, int flags) {
    int fd = ::open(p.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    return rc == 0 ? std::error_code{} : errno_code(err);
}

result<std::optional<std::string>> read_small_file(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    if (!in) {
        std::error_code ec;
        if (!fs::exists(file, ec)) return std::optional<std::string>{};
        return errno_code(EIO);
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return std::optional<std::string>{ss.str()};
}

std::vector<std::string_view> split_lines(std::string_view s) {
    std::vector<std::string_view> lines;
    while (!s.empty()) {
        size_t nl = s.find('\n');
        std::string_view line = s.substr(0, nl);
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        lines.push_back(line);
        if (nl == std::string_view::npos) break;
        s.remove_prefix(nl + 1);
    }
    return lines;
}

}  // namespace

std::string partition_dir_name(const topic_partition& tp) {
    return fmt::format("{}-{}", tp.topic, tp.partition);
}

std::optional<topic_partition> parse_partition_dir_name(std::string_view name) {
    size_t dash = name.rfind('-');
    if (dash == std::string_view::npos || dash == 0) return std::nullopt;
    auto partition = parse_int<int32_t>(name.substr(dash + 1));
    if (!partition || *partition < 0) return std::nullopt;
    return topic_partition{std::string(name.substr(0, dash)), *partition};
}

result<std::vector<topic_partition>> scan_log_dir(const fs::path& dir) {
    std::vector<topic_partition> out;
    std::error_code ec;
    for (auto& entry : fs::directory_iterator(dir, ec)) {
        if (!entry.is_directory()) continue;
        if (auto tp = parse_partition_dir_name(entry.path().filename().string()))
            out.push_back(std::move(*tp));
    }
    if (ec) return ec;
    std::sort(out.begin(), out.end());
    return out;
}

bool has_clean_shutdown_marker(const fs::path& dir) {
    std::error_code ec;
    return fs::exists(dir / clean_shutdown_file, ec);
}

result<bool> consume_clean_shutdown_marker(const fs::path& dir) {
    std::error_code ec;
    bool present = fs::exists(dir / clean_shutdown_file, ec);
    if (ec) return ec;
    if (!present) return false;
    fs::remove(dir / clean_shutdown_file, ec);
    if (ec) return ec;
    if (auto err = fsync_path(dir, O_RDONLY | O_DIRECTORY)) return err;
    return true;
}

std::error_code write_clean_shutdown_marker(const fs::path& dir) {
    return write_file_atomically(dir / clean_shutdown_file, "");
}

std::error_code write_file_atomically(const fs::path& file, std::string_view contents) {
    fs::path tmp = file;
    tmp += ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return errno_code(errno);
    for (size_t done = 0; done < contents.size();) {
        ssize_t n = ::write(fd, contents.data() + done, contents.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            int err = n < 0 ? errno : EIO;
            ::close(fd);
            return errno_code(err);
        }
        done += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0) {
        int err = errno;
        ::close(fd);
        return errno_code(err);
    }
    ::close(fd);
    if (::rename(tmp.c_str(), file.c_str()) != 0) return errno_code(errno);
    return fsync_path(file.parent_path().empty() ? fs::path(".") : file.parent_path(),
                      O_RDONLY | O_DIRECTORY);
}

result<std::vector<checkpoint_entry>> read_offset_checkpoint(const fs::path& file) {
    auto text = read_small_file(file);
    if (!text) return text.error();
    std::vector<checkpoint_entry> out;
    if (!*text) return out;
    auto lines = split_lines(**text);
    auto bad = [&](std::string_view why) {
        log::error("storage", "{}: malformed checkpoint: {}", file.string(), why);
        return make_error_code(log_errc::corrupt_message);
    };
    if (lines.size() < 2 || lines[0] != "0") return bad("version line is not 0");
    auto count = parse_int<int64_t>(lines[1]);
    if (!count || *count < 0 || static_cast<size_t>(*count) > lines.size() - 2)
        return bad("bad entry count");
    for (int64_t i = 0; i < *count; ++i) {
        std::string_view line = lines[2 + i];
        // "<topic> <partition> <offset>"; topics never contain spaces.
        size_t a = line.find(' ');
        size_t b = a == std::string_view::npos ? a : line.find(' ', a + 1);
        if (b == std::string_view::npos) return bad(fmt::format("line {}", i + 3));
        auto partition = parse_int<int32_t>(line.substr(a + 1, b - a - 1));
        auto offset = parse_int<int64_t>(line.substr(b + 1));
        if (!partition || !offset) return bad(fmt::format("line {}", i + 3));
        out.push_back({{std::string(line.substr(0, a)), *partition}, *offset});
    }
    for (size_t i = 2 + static_cast<size_t>(*count); i < lines.size(); ++i)
        if (!lines[i].empty()) return bad("more lines than the count");
    return out;
}

std::error_code write_offset_checkpoint(const fs::path& file,
                                        const std::vector<checkpoint_entry>& entries) {
    std::string text = fmt::format("0\n{}\n", entries.size());
    for (auto& e : entries) text += fmt::format("{} {} {}\n", e.tp.topic, e.tp.partition, e.offset);
    return write_file_atomically(file, text);
}

result<std::optional<meta_properties>> read_meta_properties(const fs::path& dir) {
    auto text = read_small_file(dir / meta_properties_file);
    if (!text) return text.error();
    if (!*text) return std::optional<meta_properties>{};
    meta_properties m;
    bool have_broker = false;
    for (auto line : split_lines(**text)) {
        if (line.empty() || line[0] == '#' || line[0] == '!') continue;
        size_t eq = line.find('=');
        if (eq == std::string_view::npos) continue;
        auto key = line.substr(0, eq);
        auto value = line.substr(eq + 1);
        if (key == "version") {
            m.version = parse_int<int>(value).value_or(-1);
        } else if (key == "broker.id" || key == "node.id") {
            auto id = parse_int<int32_t>(value);
            if (!id) return make_error_code(log_errc::corrupt_message);
            m.broker_id = *id;
            have_broker = true;
        } else if (key == "cluster.id") {
            m.cluster_id = std::string(value);
        }
    }
    if (m.version != 0 || !have_broker) {
        log::error("storage", "{}: meta.properties needs version=0 and broker.id", dir.string());
        return make_error_code(log_errc::corrupt_message);
    }
    return std::optional<meta_properties>{m};
}

std::error_code write_meta_properties(const fs::path& dir, const meta_properties& m) {
    auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
    std::string text = fmt::format("#\n#{}", std::ctime(&now));
    if (!m.cluster_id.empty()) text += fmt::format("cluster.id={}\n", m.cluster_id);
    text += fmt::format("version={}\nbroker.id={}\n", m.version, m.broker_id);
    return write_file_atomically(dir / meta_properties_file, text);
}

result<meta_properties> ensure_meta_properties(const fs::path& dir, int32_t broker_id,
                                               const std::string& cluster_id) {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return ec;
    auto existing = read_meta_properties(dir);
    if (!existing) return existing.error();
    if (!*existing) {
        meta_properties m{0, broker_id, cluster_id};
        if (auto err = write_meta_properties(dir, m)) return err;
        return m;
    }
    const meta_properties& m = **existing;
    if (m.broker_id != broker_id) {
        log::error("storage",
                   "{}: meta.properties has broker.id={} but this broker is configured with "
                   "broker.id={}; the log dir belongs to another broker",
                   dir.string(), m.broker_id, broker_id);
        return make_error_code(log_errc::broker_id_mismatch);
    }
    if (!cluster_id.empty() && !m.cluster_id.empty() && m.cluster_id != cluster_id) {
        log::error("storage",
                   "{}: meta.properties has cluster.id={} but the cluster's id is {}; the log "
                   "dir belongs to another cluster",
                   dir.string(), m.cluster_id, cluster_id);
        return make_error_code(log_errc::cluster_id_mismatch);
    }
    if (m.cluster_id.empty() && !cluster_id.empty()) {
        meta_properties updated = m;
        updated.cluster_id = cluster_id;
        if (auto err = write_meta_properties(dir, updated)) return err;
        return updated;
    }
    return m;
}

}  // namespace sluice::storage

namespace sluice::storage {

std::error_code sync_log_dir(const std::filesystem::path& dir) {
    int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return errno_code(errno);
    // syncfs writes back every dirty inode of the filesystem and commits the journal once;
    // since Linux 5.8 it also reports writeback errors of the filesystem.
    int rc = ::syncfs(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) {
        log::error("storage", "{}: syncfs: {}", dir.string(), std::strerror(err));
        return errno_code(err);
    }
    return {};
}

}  // namespace sluice::storage
