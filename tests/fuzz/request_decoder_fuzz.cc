// libFuzzer target: the request decoder (header + body) for every api key/version.
//
// Input: byte 0 picks the mode.
//   even: the rest is a whole request frame body (header, then body), as the
//         dispatcher sees it after the size prefix.
//   odd:  byte 1 picks an API from api_table, byte 2 a version in its range, and the
//         rest is the body, so every api/version is reached without guessing keys.
// Oracle, besides the sanitizers: whatever decodes must re-encode, and that encoding
// must decode and re-encode to the same bytes; reader errors must not be empty.
#include "broker/protocol/header.h"

#include <cstdint>
#include <cstdlib>
#include <span>

using namespace sluice;
using namespace sluice::proto;

namespace {

template <typename T>
std::vector<uint8_t> encode_bytes(const T& msg, int16_t version) {
    out_message m;
    writer w(m);
    msg.encode(w, version);
    auto b = m.memory_bytes();
    return {b.begin(), b.end()};
}

template <typename T>
void decode_body(std::span<const uint8_t> body, int16_t version) {
    reader r(body);
    T msg;
    if (!msg.decode(r, version)) {
        if (r.error().empty()) __builtin_trap();
        return;
    }
    auto first = encode_bytes(msg, version);
    reader again(first);
    T copy;
    if (!copy.decode(again, version) || again.remaining() != 0) __builtin_trap();
    if (encode_bytes(copy, version) != first) __builtin_trap();
}

void decode_request(int16_t key, int16_t version, std::span<const uint8_t> body) {
    visit_api(key, [&]<typename Req, typename Resp>(std::type_identity<Req>, std::type_identity<Resp>) {
        if (version < Req::min_version || version > Req::max_version) return;
        decode_body<Req>(body, version);
        decode_body<Resp>(body, version);  // responses too: the broker decodes none, tests do
    });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    std::span<const uint8_t> in(data + 1, size - 1);
    if ((data[0] & 1) == 0) {
        reader r(in);
        request_header h;
        if (!decode_request_header(r, h)) return 0;
        decode_request(h.api_key, h.api_version, r.rest());
        return 0;
    }
    if (in.size() < 2) return 0;
    const api_info& api = api_table[in[0] % api_table.size()];
    auto version = static_cast<int16_t>(api.min_version + in[1] % (api.max_version - api.min_version + 1));
    decode_request(api.key, version, in.subspan(2));
    return 0;
}
