#pragma once
// Kafka's Uuid text form and generation (org.apache.kafka.common.Uuid).
#include <optional>
#include <string>
#include <string_view>

#include "coord/types.h"

namespace sluice::coord {

// URL-safe base64 ('-' and '_') without padding: always 22 characters.
std::string uuid_to_base64(const uuid& id);
// Inverse of uuid_to_base64; nullopt unless exactly 22 valid characters.
std::optional<uuid> uuid_from_base64(std::string_view text);
// A version-4 random uuid. Like Uuid.randomUuid it re-rolls the reserved ids (all-zero,
// 0..01 = the metadata topic id) and ids whose text starts with '-', which would
// look like a command-line flag.
uuid random_uuid();
bool is_zero(const uuid& id);

}  // namespace sluice::coord
