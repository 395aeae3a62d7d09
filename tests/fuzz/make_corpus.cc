// Writes a seed corpus for request_decoder_fuzz: for every API x version x seed, the
// sample request and response in the fuzzer's "odd" mode (byte 0 = 1, byte 1 = index
// in api_table, byte 2 = version offset, then the body).
//   make_corpus OUT_DIR
#include "broker/protocol/samples.h"

#include <fmt/format.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace sluice;
using namespace sluice::proto;

namespace {

template <typename T>
int write_all(const std::filesystem::path& dir, size_t index, const char* kind) {
    int written = 0;
    for (int16_t v = T::min_version; v <= T::max_version; ++v) {
        for (int seed : {1, 2}) {
            T msg;
            fill_sample(msg, v, seed);
            out_message m;
            writer w(m);
            w.write_int8(1);
            w.write_int8(static_cast<int8_t>(index));
            w.write_int8(static_cast<int8_t>(v - T::min_version));
            msg.encode(w, v);
            auto bytes = m.memory_bytes();
            std::ofstream out(dir / fmt::format("{}-{}-v{}-s{}", T::api_key, kind, v, seed), std::ios::binary);
            out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
            ++written;
        }
    }
    return written;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: make_corpus OUT_DIR\n");
        return 2;
    }
    std::filesystem::path dir(argv[1]);
    std::filesystem::create_directories(dir);
    int written = 0;
    for (size_t i = 0; i < api_table.size(); ++i) {
        visit_api(api_table[i].key, [&]<typename Req, typename Resp>(std::type_identity<Req>,
                                                                       std::type_identity<Resp>) {
            written += write_all<Req>(dir, i, "req");
            written += write_all<Resp>(dir, i, "resp");
        });
    }
    std::printf("%d seeds in %s\n", written, dir.c_str());
    return 0;
}
