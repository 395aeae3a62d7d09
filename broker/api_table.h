#pragma once
// The one list of APIs this broker answers: api key, the versions it honours and the
// handler. Dispatch and the ApiVersions response both derive from it; header versions
// (flexible or not) come from the generated protocol table (broker/protocol).
#include "broker/request.h"

#include <cstdint>
#include <span>

namespace sluice::broker {

using handler_fn = void (*)(request_ptr);

struct api_entry {
    int16_t key;
    int16_t min_version;
    int16_t max_version;
    handler_fn handle;
};

std::span<const api_entry> api_table();
const api_entry* find_api_entry(int16_t key);

}  // namespace sluice::broker
