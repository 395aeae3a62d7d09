#include "broker/protocol/header.h"

namespace sluice::proto {

bool decode_request_header(reader& r, request_header& out) {
    out = {};
    out.api_key = r.read_int16();
    out.api_version = r.read_int16();
    out.correlation_id = r.read_int32();
    r.set_context(out.api_key, out.api_version);
    r.read_string(out.client_id, /*compact=*/false, /*nullable=*/true);
    out.header_version = request_header_version(out.api_key, out.api_version);
    if (out.header_version >= 2) r.read_tagged_fields([](uint32_t) { return false; });
    return r.ok();
}

void encode_request_header(writer& w, const request_header& h) {
    w.write_int16(h.api_key);
    w.write_int16(h.api_version);
    w.write_int32(h.correlation_id);
    w.write_string(h.client_id, /*compact=*/false, /*nullable=*/true);
    if (h.header_version >= 2) w.write_uvarint(0);
}

void encode_response_header(writer& w, int32_t correlation_id, int16_t header_version) {
    w.write_int32(correlation_id);
    if (header_version >= 1) w.write_uvarint(0);
}

size_t begin_response(writer& w, int32_t correlation_id, int16_t api_key, int16_t api_version) {
    size_t prefix = w.begin_frame();
    encode_response_header(w, correlation_id, response_header_version(api_key, api_version));
    return prefix;
}

}  // namespace sluice::proto
