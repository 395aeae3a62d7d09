#pragma once
// Value types shared by every generated message: uuid and the records field.
//
// Concurrency: plain values; a records view borrows the request frame it was decoded
// from, so it must not outlive that frame (handlers finish with a request before the
// connection reuses its buffer).
#include "base/out_message.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <span>
#include <variant>
#include <vector>

namespace sluice::proto {

// Kafka's uuid: 16 raw bytes on the wire (most significant long first).
using uuid = std::array<uint8_t, 16>;

// A RECORDS field: on the wire a (compact) nullable bytes whose content is one or more
// record batches. The codec never looks inside.
//  - decoding (requests): `view` points into the request frame; no copy.
//  - encoding (responses): if `pieces` is non-empty they are written in order, each
//    either owned bytes or a slice of a segment file (sent zero-copy by net/); the
//    length prefix is their total. Otherwise `view` is written.
struct records {
    using piece = std::variant<std::vector<uint8_t>, file_slice>;

    bool is_null = true;
    std::span<const uint8_t> view;
    std::vector<piece> pieces;

    static records of(std::span<const uint8_t> bytes) { return records{false, bytes, {}}; }

    uint64_t size() const {
        if (pieces.empty()) return view.size();
        uint64_t n = 0;
        for (const auto& p : pieces) {
            if (auto* b = std::get_if<std::vector<uint8_t>>(&p)) n += b->size();
            else n += std::get<file_slice>(p).length;
        }
        return n;
    }
    void append(std::vector<uint8_t> bytes) {
        is_null = false;
        pieces.emplace_back(std::move(bytes));
    }
    void append(file_slice slice) {
        is_null = false;
        pieces.emplace_back(std::move(slice));
    }

    // Compares content for in-memory records (tests, round trips); file slices compare
    // by identity (same file, range).
    bool operator==(const records& o) const {
        if (is_null != o.is_null) return false;
        if (pieces.empty() && o.pieces.empty())
            return std::ranges::equal(view, o.view);
        if (pieces.size() != o.pieces.size()) return false;
        for (size_t i = 0; i < pieces.size(); ++i) {
            const auto& a = pieces[i];
            const auto& b = o.pieces[i];
            if (a.index() != b.index()) return false;
            if (a.index() == 0) {
                if (std::get<0>(a) != std::get<0>(b)) return false;
            } else {
                const auto& x = std::get<1>(a);
                const auto& y = std::get<1>(b);
                if (x.file != y.file || x.position != y.position || x.length != y.length) return false;
            }
        }
        return true;
    }
};

}  // namespace sluice::proto
