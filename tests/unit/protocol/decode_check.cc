// Cross-check helper: reads lines "api_key req|resp version hex" from stdin (frames
// built by another implementation, see kafka_python_crosscheck.py), decodes each body
// with the generated codec, re-encodes it and prints "ok" or "FAIL ..." per line.
// Exit status 1 if any line failed.
#include "broker/protocol/messages.h"
#include "tests/unit/protocol/test_util.h"



#include <iostream>
#include <sstream>

using namespace sluice;
using namespace sluice::proto;

namespace {

template <typename T>
std::string check(const std::vector<uint8_t>& body, int16_t version) {
    reader r(body);
    T msg;
    if (!msg.decode(r, version)) return "decode: " + r.error();
    if (r.remaining() != 0) return "trailing bytes: " + std::to_string(r.remaining());
    out_message m;
    writer w(m);
    msg.encode(w, version);
    auto again = test::bytes_of(m);
    if (again != body) return "re-encoded differs: " + test::hex(again);
    return "";
}

}  // namespace

int main() {
    std::string line;
    int failed = 0, total = 0;
    while (std::getline(std::cin, line)) {
        std::istringstream in(line);
        int key, version;
        std::string kind, hex;
        if (!(in >> key >> kind >> version)) continue;
        in >> hex;  // empty for an empty body
        auto body = test::unhex(hex);
        std::string err = "unknown api";
        visit_api(static_cast<int16_t>(key), [&]<typename Req, typename Resp>(std::type_identity<Req>,
                                                                                std::type_identity<Resp>) {
            err = kind == "req" ? check<Req>(body, static_cast<int16_t>(version))
                                : check<Resp>(body, static_cast<int16_t>(version));
        });
        ++total;
        if (err.empty()) continue;
        ++failed;
        std::cout << "FAIL " << key << " " << kind << " v" << version << ": " << err << "\n";
    }
    std::cout << total - failed << "/" << total << " ok\n";
    return failed == 0 && total > 0 ? 0 : 1;
}
