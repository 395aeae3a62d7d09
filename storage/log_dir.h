#pragma once
// Helpers for one log directory (an entry of log.dirs), in Kafka's formats:
//
//   <dir>/<topic>-<partition>/       one partition_log each; the topic may itself
//                                    contain '-' and '.', so the name splits at the LAST '-'
//   <dir>/.kafka_cleanshutdown       present only after a clean shutdown (empty file)
//   <dir>/recovery-point-offset-checkpoint, log-start-offset-checkpoint,
//   <dir>/replication-offset-checkpoint, cleaner-offset-checkpoint   text:  "0\n" (version) "<count>\n" then
//                                    "<topic> <partition> <offset>\n" per partition
//   <dir>/meta.properties            Java properties: version=0, broker.id=N, cluster.id=...
//
// Startup order (KAFKA-10471): consume_clean_shutdown_marker() -- read and remove the
// marker -- BEFORE loading any log, so a crash while loading counts as unclean next time;
// write_clean_shutdown_marker() only after every log is flushed and closed.
//
// Concurrency: plain functions doing blocking file I/O; call them at startup/shutdown
// or from a background thread, never on a reactor's hot path.
#include "base/result.h"

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::storage {

struct topic_partition {
    std::string topic;
    int32_t partition = 0;
    bool operator==(const topic_partition&) const = default;
    auto operator<=>(const topic_partition&) const = default;
};

inline constexpr std::string_view clean_shutdown_file = ".kafka_cleanshutdown";
inline constexpr std::string_view recovery_point_checkpoint_file = "recovery-point-offset-checkpoint";
inline constexpr std::string_view log_start_checkpoint_file = "log-start-offset-checkpoint";
inline constexpr std::string_view replication_checkpoint_file = "replication-offset-checkpoint";
// Compaction progress (partition_log::cleaner_checkpoint), same format as the others.
inline constexpr std::string_view cleaner_checkpoint_file = "cleaner-offset-checkpoint";
inline constexpr std::string_view meta_properties_file = "meta.properties";

// "<topic>-<partition>"
std::string partition_dir_name(const topic_partition& tp);
// Splits at the last '-'; nullopt for names that are not partition dirs (no '-', a
// non-numeric partition, Kafka's "...-delete" / "...-future" / "...-stray" dirs).
std::optional<topic_partition> parse_partition_dir_name(std::string_view name);
// The partition dirs under dir, sorted.
result<std::vector<topic_partition>> scan_log_dir(const std::filesystem::path& dir);

bool has_clean_shutdown_marker(const std::filesystem::path& dir);
// Returns whether the marker was there, and removes it (fsyncing the directory).
result<bool> consume_clean_shutdown_marker(const std::filesystem::path& dir);
std::error_code write_clean_shutdown_marker(const std::filesystem::path& dir);

struct checkpoint_entry {
    topic_partition tp;
    int64_t offset = 0;
    bool operator==(const checkpoint_entry&) const = default;
};

// A missing file reads as empty; a malformed one is corrupt_message.
result<std::vector<checkpoint_entry>> read_offset_checkpoint(const std::filesystem::path& file);
// Writes <file>.tmp, fsyncs it, renames it over file and fsyncs the directory.
std::error_code write_offset_checkpoint(const std::filesystem::path& file,
                                        const std::vector<checkpoint_entry>& entries);

struct meta_properties {
    int version = 0;
    int32_t broker_id = -1;
    std::string cluster_id;
};

// nullopt when the file does not exist.
result<std::optional<meta_properties>> read_meta_properties(const std::filesystem::path& dir);
std::error_code write_meta_properties(const std::filesystem::path& dir, const meta_properties& m);
// First start: writes meta.properties. Later: checks it and fails with broker_id_mismatch
// or cluster_id_mismatch (logging both values) when the directory belongs to another
// broker or cluster. An empty expected cluster_id accepts any; the stored one is returned.
result<meta_properties> ensure_meta_properties(const std::filesystem::path& dir,
                                               int32_t broker_id,
                                               const std::string& cluster_id);

// Makes everything written under dir durable with one syncfs(2) of its filesystem
// (data, index trims, new and removed files, directories): the fast clean stop, instead
// of an fdatasync per partition. Call it after partition_log::close() of every log in
// dir and before writing the checkpoints and the clean-shutdown marker. An error means
// some data may not be on disk: do not write the marker (the next start recovers).
std::error_code sync_log_dir(const std::filesystem::path& dir);

// Durable small-file replacement used by the writers above (tmp + fsync + rename + dir fsync).
std::error_code write_file_atomically(const std::filesystem::path& file, std::string_view contents);

}  // namespace sluice::storage
