#pragma once
// Always-on assertions for programmer errors (never for bad input: that gets a
// Kafka error code or a std::error_code). Logs file:line and the message, then traps.
#include <fmt/format.h>

namespace sluice::detail {
[[noreturn]] void assert_fail(const char* file, int line, const char* cond, const std::string& msg);
}

#define SLUICE_ASSERT(cond, ...)                                                            \
    do {                                                                                    \
        if (__builtin_expect(!(cond), 0)) {                                                 \
            ::sluice::detail::assert_fail(__FILE__, __LINE__, #cond,                        \
                                          ::fmt::format("" __VA_ARGS__));                   \
        }                                                                                   \
    } while (0)
