// ApiVersions (key 18). The response header is always v0 (proto::begin_response knows).
// A version we do not know gets the v0 body with UNSUPPORTED_VERSION and only our own
// ApiVersions range, without parsing the body, so clients that start high (librdkafka
// v3, kafkajs v2) step down (KIP-511).
#include "broker/api_table.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {

void handle_api_versions(request_ptr req) {
    proto::api_versions_request body;
    auto r = req->body_reader();
    // v3+ carries client software name/version; a malformed body is answered with
    // INVALID_REQUEST like Kafka rather than a closed connection.
    proto::api_versions_response resp;
    if (!body.decode(r, req->version())) {
        resp.error_code = static_cast<int16_t>(proto::error_code::invalid_request);
    }
    for (const auto& e : api_table())
        resp.api_keys.push_back({e.key, e.min_version, e.max_version});
    req->respond(resp);
}

void handle_api_versions_unsupported(request_ptr req) {
    proto::api_versions_response resp;
    resp.error_code = static_cast<int16_t>(proto::error_code::unsupported_version);
    const api_entry* self = find_api_entry(proto::api_versions_key);
    resp.api_keys.push_back({self->key, self->min_version, self->max_version});
    out_message msg;
    proto::writer w(msg);
    size_t at = w.begin_frame();
    proto::encode_response_header(w, req->header().correlation_id, 0);
    resp.encode(w, 0);
    w.end_frame(at);
    req->send(std::move(msg));
}

}  // namespace sluice::broker
