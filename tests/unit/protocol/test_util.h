#pragma once
// Helpers shared by the protocol tests.
#include "base/out_message.h"

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::proto::test {

// Malformed hex gives wrong bytes, which the checks on the decoded values then catch.
std::vector<uint8_t> unhex(std::string_view hex);
std::string hex(const std::vector<uint8_t>& bytes);
// The in-memory bytes of a message built without file slices.
std::vector<uint8_t> bytes_of(const out_message& m);

}  // namespace sluice::proto::test
