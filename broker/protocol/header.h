#pragma once
// Request and response headers (Kafka's RequestHeader.json / ResponseHeader.json).
//
//   request header v1: int16 api_key | int16 api_version | int32 correlation_id |
//                      int16-length nullable string client_id
//   request header v2: v1 + tagged fields. client_id stays an int16-length string
//                      (its schema says flexibleVersions "none"), never compact.
//   response header v0: int32 correlation_id;  v1: v0 + tagged fields.
// The header version follows the API's flexible versions, except that ApiVersions
// responses always use header v0 (KIP-511: a client that does not know the broker's
// versions must still parse the answer).
//
// Concurrency: pure functions over caller-owned readers/writers.
#include "broker/protocol/messages.h"
#include "broker/protocol/reader.h"
#include "broker/protocol/writer.h"

#include <cstdint>
#include <optional>
#include <string>

namespace sluice::proto {

inline constexpr int16_t api_versions_key = 18;

struct request_header {
    int16_t api_key = -1;
    int16_t api_version = -1;
    int32_t correlation_id = 0;
    std::optional<std::string> client_id;
    int16_t header_version = 1;  // 1 or 2

    bool operator==(const request_header&) const = default;
};

// 2 at or after the API's first flexible version, else 1. Unknown APIs: 1.
constexpr int16_t request_header_version(int16_t api_key, int16_t api_version) {
    const api_info* api = find_api(api_key);
    if (api == nullptr || api->flexible_version < 0) return 1;
    return api_version >= api->flexible_version ? 2 : 1;
}

// 1 for flexible versions, 0 otherwise and always 0 for ApiVersions.
constexpr int16_t response_header_version(int16_t api_key, int16_t api_version) {
    if (api_key == api_versions_key) return 0;
    return request_header_version(api_key, api_version) == 2 ? 1 : 0;
}

// Decodes a request header; its version comes from the api table. Also sets the
// reader's error context to the request's api key and version, so that a failure in
// the body names them. Returns r.ok().
bool decode_request_header(reader& r, request_header& out);

// Appends a request header of out.header_version (tests and tools act as clients).
void encode_request_header(writer& w, const request_header& h);

// Appends a response header: correlation id, plus empty tagged fields for v1.
void encode_response_header(writer& w, int32_t correlation_id, int16_t header_version);

// Starts a response frame: reserves the size prefix and writes the right header.
// Finish with w.end_frame(returned offset) after encoding the body.
size_t begin_response(writer& w, int32_t correlation_id, int16_t api_key, int16_t api_version);

}  // namespace sluice::proto
