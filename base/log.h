#pragma once
// Logging to stderr, one line per call, prefixed by time, level and subsystem.
// Thread-safe: each line is formatted first and written with one write(2).
#include <fmt/format.h>

#include <string_view>

namespace sluice::log {

enum class level : int { debug = 0, info = 1, warn = 2, error = 3 };

void set_level(level l);
bool enabled(level l);
void write(level l, std::string_view subsystem, std::string_view message);

template <typename... Args>
void debug(std::string_view sub, fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(level::debug)) write(level::debug, sub, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void info(std::string_view sub, fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(level::info)) write(level::info, sub, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(std::string_view sub, fmt::format_string<Args...> f, Args&&... args) {
    if (enabled(level::warn)) write(level::warn, sub, fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void error(std::string_view sub, fmt::format_string<Args...> f, Args&&... args) {
    write(level::error, sub, fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace sluice::log
