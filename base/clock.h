#pragma once
// Wall-clock milliseconds since the Unix epoch: what Kafka's timestamps, retention and
// replication lag are measured in. Not monotonic; use std::chrono::steady_clock for
// durations that must not jump.
#include <chrono>
#include <cstdint>

namespace sluice {

inline int64_t wall_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace sluice
