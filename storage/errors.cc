#include "storage/errors.h"

#include <string>

namespace sluice::storage {
namespace {

class log_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "sluice.storage"; }
    std::string message(int v) const override {
        switch (static_cast<log_errc>(v)) {
            case log_errc::ok: return "ok";
            case log_errc::corrupt_message: return "corrupt message (CRC or structure)";
            case log_errc::invalid_record: return "invalid record";
            case log_errc::unsupported_magic: return "unsupported record batch magic";
            case log_errc::unsupported_compression_type: return "unsupported compression type";
            case log_errc::message_too_large: return "record batch larger than max.message.bytes";
            case log_errc::record_list_too_large: return "record set larger than segment.bytes";
            case log_errc::offset_out_of_range: return "offset out of range";
            case log_errc::storage_error: return "storage error";
            case log_errc::invalid_timestamp: return "invalid timestamp";
            case log_errc::broker_id_mismatch: return "meta.properties broker.id mismatch";
            case log_errc::cluster_id_mismatch: return "meta.properties cluster.id mismatch";
        }
        return "unknown storage error";
    }
};

}  // namespace

const std::error_category& log_category() {
    static const log_category_impl instance;
    return instance;
}

int16_t kafka_error_code(log_errc e) {
    switch (e) {
        case log_errc::ok: return 0;
        case log_errc::corrupt_message: return 2;
        case log_errc::invalid_record: return 87;
        case log_errc::unsupported_magic: return 43;  // UNSUPPORTED_FOR_MESSAGE_FORMAT
        case log_errc::unsupported_compression_type: return 76;
        case log_errc::message_too_large: return 10;
        case log_errc::record_list_too_large: return 18;
        case log_errc::offset_out_of_range: return 1;
        case log_errc::storage_error: return 56;  // KAFKA_STORAGE_ERROR
        case log_errc::invalid_timestamp: return 32;
        case log_errc::broker_id_mismatch:
        case log_errc::cluster_id_mismatch: return -1;  // UNKNOWN_SERVER_ERROR: not a client outcome
    }
    return -1;
}

}  // namespace sluice::storage
