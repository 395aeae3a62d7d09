#include "base/log.h"

#include "base/assert.h"

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <ctime>

namespace sluice::log {
namespace {
std::atomic<int> g_level{static_cast<int>(level::info)};
constexpr const char* level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
}  // namespace

void set_level(level l) { g_level.store(static_cast<int>(l), std::memory_order_relaxed); }
bool enabled(level l) { return static_cast<int>(l) >= g_level.load(std::memory_order_relaxed); }

void write(level l, std::string_view subsystem, std::string_view message) {
    using namespace std::chrono;
    auto now = system_clock::now();
    auto secs = system_clock::to_time_t(now);
    auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
    std::tm tm{};
    gmtime_r(&secs, &tm);
    auto line = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z {} [{}] {}\n",
                            tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
                            tm.tm_sec, ms, level_names[static_cast<int>(l)], subsystem, message);
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
        ssize_t n = ::write(STDERR_FILENO, p, left);
        if (n <= 0) break;
        p += n;
        left -= static_cast<size_t>(n);
    }
}

}  // namespace sluice::log

namespace sluice::detail {
void assert_fail(const char* file, int line, const char* cond, const std::string& msg) {
    log::write(log::level::error, "assert",
               fmt::format("{}:{}: assertion `{}` failed: {}", file, line, cond, msg));
    __builtin_trap();
}
}  // namespace sluice::detail
