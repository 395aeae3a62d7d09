#include "storage/log_config.h"

namespace sluice::storage {

std::optional<uint8_t> parse_cleanup_policy(std::string_view s) {
    uint8_t bits = 0;
    while (!s.empty()) {
        size_t comma = s.find(',');
        std::string_view word = s.substr(0, comma);
        while (!word.empty() && word.front() == ' ') word.remove_prefix(1);
        while (!word.empty() && word.back() == ' ') word.remove_suffix(1);
        if (word == "delete") bits |= cleanup_delete;
        else if (word == "compact") bits |= cleanup_compact;
        else return std::nullopt;
        if (comma == std::string_view::npos) break;
        s.remove_prefix(comma + 1);
    }
    if (bits == 0) return std::nullopt;
    return bits;
}

}  // namespace sluice::storage
