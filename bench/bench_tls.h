#pragma once
// TLS for the bench programs: OpenSSL over blocking sockets, the way a Kafka client
// (librdkafka) does it, so sluice-loadgen --tls and sluice-limits' tls_* tests measure
// the same kind of TLS a user's client would negotiate. The bench does not use the
// broker's net/tls.h: a client judged against the broker should not share its code.
//
// tls_context: one SSL_CTX. Clients verify the server against a CA file, or not at all
//   (the suite's brokers use throwaway self-signed certificates). Servers (the bare
//   limits, tests) get a fresh self-signed P-256 certificate made in memory and the
//   broker's defaults: TLS 1.2-1.3, OpenSSL's cipher lists, server preference -- so the
//   bare programs negotiate the suite the broker negotiates (TLS_AES_256_GCM_SHA384
//   with OpenSSL 3.0's defaults; describe() says which, and every report prints it).
//
// tls_stream: one SSL over a connected blocking socket (the caller keeps the fd; its
//   SO_RCVTIMEO/SO_SNDTIMEO bound every call, a timeout surfaces as std::errc::timed_out).
//   Outgoing ciphertext goes through a write buffer (BIO_f_buffer) flushed at the end of
//   each write_all: OpenSSL cuts plaintext into 16 KiB records and would hand each to
//   write() on its own; buffered, a 256 KiB step leaves in one write(), which is the
//   broker's shape (it encrypts a step into memory and sends it with one SEND).
//   Incoming: read_ahead on, so a read() pulls as many records as the socket holds.
//
// socket_io: where a bench reader's bytes come from, the socket or a tls_stream over it.
//   The plaintext path is one predictable branch away from ::read/::write: no extra copy.
//
// Concurrency: a tls_context is immutable once built and shared by threads (SSL_new on
// one SSL_CTX is thread-safe). A tls_stream belongs to one thread.
#include "base/result.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <system_error>

using SSL_CTX = struct ssl_ctx_st;
using SSL = struct ssl_st;
using BIO = struct bio_st;

namespace sluice::bench {

class tls_context {
public:
    // ca_file empty: no verification of the server.
    static result<std::shared_ptr<const tls_context>> client(const std::string& ca_file, std::string& why);
    // A server with an ephemeral self-signed certificate (CN=sluice-bench, 1 day).
    static result<std::shared_ptr<const tls_context>> self_signed_server(std::string& why);
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    SSL_CTX* native() const { return _ctx; }
    bool is_server() const { return _server; }
    bool verifies_peer() const { return _verify; }

private:
    tls_context(SSL_CTX* ctx, bool server, bool verify) : _ctx(ctx), _server(server), _verify(verify) {}
    SSL_CTX* _ctx;
    bool _server;
    bool _verify;
};

class tls_stream {
public:
    static constexpr size_t default_write_buffer_bytes = 256 * 1024;

    // Runs the handshake over `fd` (client or server per ctx). host (clients): SNI, and
    // the name or IP address checked against the certificate when the context verifies.
    static result<std::unique_ptr<tls_stream>> handshake(std::shared_ptr<const tls_context> ctx, int fd,
                                                         const std::string& host, size_t write_buffer_bytes,
                                                         std::string& why);
    ~tls_stream();  // frees the SSL; the fd stays the caller's
    tls_stream(const tls_stream&) = delete;
    tls_stream& operator=(const tls_stream&) = delete;

    // Some plaintext (at least 1 byte); connection_aborted at the peer's close.
    std::error_code read_some(void* into, size_t max, size_t& got);
    // Encrypts all of buf and flushes the ciphertext to the socket.
    std::error_code write_all(const void* buf, size_t n);
    // "TLSv1.3 TLS_AES_256_GCM_SHA384"
    std::string describe() const;
    // The last OpenSSL error, one line (empty when the last failure was not OpenSSL's).
    const std::string& failure() const { return _failure; }

private:
    tls_stream(std::shared_ptr<const tls_context> ctx, SSL* ssl, BIO* write_bio)
        : _ctx(std::move(ctx)), _ssl(ssl), _write_bio(write_bio) {}
    std::error_code fail(int ret);  // maps SSL_get_error and records failure()

    std::shared_ptr<const tls_context> _ctx;
    SSL* _ssl;
    BIO* _write_bio;  // owned by _ssl
    std::string _failure;
};

// A connected socket and, when the connection speaks TLS, the session over it. Not owning.
struct socket_io {
    int fd = -1;
    tls_stream* tls = nullptr;

    // At least 1 byte; connection_aborted on EOF, timed_out when SO_RCVTIMEO expires.
    std::error_code read_some(void* into, size_t max, size_t& got) const;
    std::error_code read_exact(void* into, size_t n) const;
    std::error_code write_all(const void* buf, size_t n) const;
};

}  // namespace sluice::bench
