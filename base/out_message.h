#pragma once
// An outgoing frame as an ordered list of pieces: bytes we built in memory (headers,
// small fields) and slices of files (record batches straight from segment files).
// The network layer sends file pieces zero-copy (splice), one-copy (send from a
// mapping) or buffered (pread + send, and the TLS path) -- see net/send_strategy.h.
//
// Concurrency: an out_message is built on one thread and then handed, whole, to the
// connection that sends it; it is never shared.
#include "base/assert.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <span>
#include <vector>

namespace sluice {

// A file whose bytes may be sent. Holding a shared_ptr to it keeps the fd (and the
// mapping, if any) valid: a segment that is deleted or closed while a send is in
// flight stays alive until the last slice referencing it is released.
class file_handle {
public:
    virtual ~file_handle() = default;
    virtual int fd() const = 0;
    // Base of a read-only mapping of the file, or nullptr when it is not mapped.
    virtual const uint8_t* mapped() const { return nullptr; }
    // Bytes of the mapping that are backed by the file (may grow while appending).
    virtual uint64_t mapped_size() const { return 0; }
};

struct file_slice {
    std::shared_ptr<const file_handle> file;
    uint64_t position = 0;
    uint32_t length = 0;
};

class out_message {
public:
    struct piece {
        bool is_file = false;
        size_t offset = 0;  // into _bytes when !is_file
        size_t length = 0;
        file_slice slice;   // when is_file
    };

    out_message() { _bytes.reserve(256); }

    void append(const void* data, size_t n) {
        if (n == 0) return;
        size_t at = _bytes.size();
        _bytes.resize(at + n);
        std::memcpy(_bytes.data() + at, data, n);
        extend_memory_piece(at, n);
    }
    // Reserve n bytes now, fill them later (e.g. a length prefix); returns their offset.
    size_t reserve(size_t n) {
        size_t at = _bytes.size();
        _bytes.resize(at + n);
        extend_memory_piece(at, n);
        return at;
    }
    uint8_t* at(size_t offset) {
        SLUICE_ASSERT(offset < _bytes.size(), "offset {} size {}", offset, _bytes.size());
        return _bytes.data() + offset;
    }
    void append_file(file_slice s) {
        if (s.length == 0) return;
        _total += s.length;
        _pieces.push_back(piece{true, 0, s.length, std::move(s)});
    }

    size_t size() const { return _total; }
    const std::vector<piece>& pieces() const { return _pieces; }
    const uint8_t* memory(const piece& p) const { return _bytes.data() + p.offset; }
    bool has_files() const {
        for (auto& p : _pieces)
            if (p.is_file) return true;
        return false;
    }
    // Contiguous copy of the in-memory bytes; only valid when !has_files() (tests, TLS).
    std::span<const uint8_t> memory_bytes() const { return {_bytes.data(), _bytes.size()}; }

private:
    void extend_memory_piece(size_t at, size_t n) {
        _total += n;
        if (!_pieces.empty() && !_pieces.back().is_file &&
            _pieces.back().offset + _pieces.back().length == at) {
            _pieces.back().length += n;
            return;
        }
        _pieces.push_back(piece{false, at, n, {}});
    }

    std::vector<uint8_t> _bytes;
    std::vector<piece> _pieces;
    size_t _total = 0;
};

}  // namespace sluice
