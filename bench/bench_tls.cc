#include "bench/bench_tls.h"

#include "base/assert.h"
#include "bench/bench_util.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <cerrno>

namespace sluice::bench {

namespace {

constexpr size_t read_buffer_bytes = 256 * 1024;

std::string openssl_error() {
    unsigned long e = ERR_get_error();
    ERR_clear_error();  // keep the thread's queue empty, so SSL_get_error stays truthful
    if (e == 0) return "no OpenSSL error recorded";
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    return text;
}

std::error_code io_errno(int e) {
    if (e == EAGAIN || e == EWOULDBLOCK) return std::make_error_code(std::errc::timed_out);
    return errno_code(e);
}

// The broker's context defaults (net/tls.cc): same protocols, no renegotiation or
// compression, read-ahead; the server picks the suite.
SSL_CTX* new_context(bool server) {
    SSL_CTX* ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == nullptr) return nullptr;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    SSL_CTX_set_read_ahead(ctx, 1);
    // With read-ahead, one read() fills this much of OpenSSL's input buffer: many 16 KiB
    // records per syscall instead of one (the broker gets the same from its 64 KiB+ recvs).
    SSL_CTX_set_default_read_buffer_len(ctx, read_buffer_bytes);
    return ctx;
}

// An EC P-256 key and a self-signed certificate for it, valid for a day.
bool use_self_signed(SSL_CTX* ctx, std::string& why) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(EVP_EC_gen("P-256"), &EVP_PKEY_free);
    std::unique_ptr<X509, decltype(&X509_free)> cert(X509_new(), &X509_free);
    if (!key || !cert) {
        why = "cannot make a key: " + openssl_error();
        return false;
    }
    X509_set_version(cert.get(), 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
    X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
    X509_NAME* name = X509_get_subject_name(cert.get());
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("sluice-bench"), -1, -1,
                               0);
    X509_set_issuer_name(cert.get(), name);
    bool ok = X509_set_pubkey(cert.get(), key.get()) == 1 && X509_sign(cert.get(), key.get(), EVP_sha256()) > 0 &&
              SSL_CTX_use_certificate(ctx, cert.get()) == 1 && SSL_CTX_use_PrivateKey(ctx, key.get()) == 1;
    if (!ok) why = "cannot make a self-signed certificate: " + openssl_error();
    return ok;
}

bool is_ip_address(const std::string& host) {
    in6_addr a6;
    in_addr a4;
    return inet_pton(AF_INET, host.c_str(), &a4) == 1 || inet_pton(AF_INET6, host.c_str(), &a6) == 1;
}

}  // namespace

result<std::shared_ptr<const tls_context>> tls_context::client(const std::string& ca_file, std::string& why) {
    ERR_clear_error();
    SSL_CTX* ctx = new_context(false);
    if (ctx == nullptr) {
        why = "SSL_CTX_new: " + openssl_error();
        return std::errc::not_enough_memory;
    }
    bool verify = !ca_file.empty();
    if (verify && SSL_CTX_load_verify_locations(ctx, ca_file.c_str(), nullptr) != 1) {
        why = fmt::format("cannot load CA file {}: {}", ca_file, openssl_error());
        SSL_CTX_free(ctx);
        return std::errc::invalid_argument;
    }
    SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    return std::shared_ptr<const tls_context>(new tls_context(ctx, false, verify));
}

result<std::shared_ptr<const tls_context>> tls_context::self_signed_server(std::string& why) {
    ERR_clear_error();
    SSL_CTX* ctx = new_context(true);
    if (ctx == nullptr) {
        why = "SSL_CTX_new: " + openssl_error();
        return std::errc::not_enough_memory;
    }
    if (!use_self_signed(ctx, why)) {
        SSL_CTX_free(ctx);
        return std::errc::invalid_argument;
    }
    // No session tickets: nothing but the measured bytes crosses the connection after the handshake.
    SSL_CTX_set_num_tickets(ctx, 0);
    return std::shared_ptr<const tls_context>(new tls_context(ctx, true, false));
}

tls_context::~tls_context() { SSL_CTX_free(_ctx); }

result<std::unique_ptr<tls_stream>> tls_stream::handshake(std::shared_ptr<const tls_context> ctx, int fd,
                                                          const std::string& host, size_t write_buffer_bytes,
                                                          std::string& why) {
    SLUICE_ASSERT(write_buffer_bytes >= 16 * 1024, "write buffer {}", write_buffer_bytes);
    ERR_clear_error();
    SSL* ssl = SSL_new(ctx->native());
    BIO* socket_bio = ssl ? BIO_new_socket(fd, BIO_NOCLOSE) : nullptr;
    BIO* buffer_bio = socket_bio ? BIO_new(BIO_f_buffer()) : nullptr;
    if (buffer_bio == nullptr || BIO_set_write_buffer_size(buffer_bio, static_cast<long>(write_buffer_bytes)) != 1) {
        why = "cannot set up TLS: " + openssl_error();
        BIO_free(buffer_bio);
        BIO_free(socket_bio);
        SSL_free(ssl);
        return std::errc::not_enough_memory;
    }
    // Reads straight from the socket BIO, writes through the buffer in front of it: the
    // socket BIO is referenced twice (as rbio, and as the next BIO of the chain).
    BIO_up_ref(socket_bio);
    BIO_push(buffer_bio, socket_bio);
    SSL_set_bio(ssl, socket_bio, buffer_bio);
    std::unique_ptr<tls_stream> s(new tls_stream(ctx, ssl, buffer_bio));
    if (!ctx->is_server() && !host.empty()) {
        bool ip = is_ip_address(host);
        if (!ip) SSL_set_tlsext_host_name(ssl, host.c_str());
        if (ctx->verifies_peer()) {
            int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str()) : SSL_set1_host(ssl, host.c_str());
            if (ok != 1) {
                why = fmt::format("cannot check the certificate for '{}': {}", host, openssl_error());
                return std::errc::invalid_argument;
            }
        }
    }
    int ret = ctx->is_server() ? SSL_accept(ssl) : SSL_connect(ssl);
    if (ret != 1) {
        auto ec = s->fail(ret);
        long verify = SSL_get_verify_result(ssl);
        why = fmt::format("TLS handshake failed: {}{}", s->_failure.empty() ? ec.message() : s->_failure,
                          verify != X509_V_OK ? fmt::format(" (certificate: {})", X509_verify_cert_error_string(verify))
                                              : "");
        return ec;
    }
    return s;
}

tls_stream::~tls_stream() { SSL_free(_ssl); }

std::error_code tls_stream::fail(int ret) {
    int saved_errno = errno;
    int kind = SSL_get_error(_ssl, ret);
    _failure.clear();
    switch (kind) {
    case SSL_ERROR_ZERO_RETURN:
        return std::make_error_code(std::errc::connection_aborted);
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:  // a blocking socket only says this when its timeout expired
        return std::make_error_code(std::errc::timed_out);
    case SSL_ERROR_SYSCALL:
        if (ERR_peek_error() != 0) break;
        return saved_errno == 0 ? std::make_error_code(std::errc::connection_aborted) : io_errno(saved_errno);
    default:
        break;
    }
    _failure = openssl_error();
    // OpenSSL 3 reports a peer that closed without close_notify as an SSL error.
    if (_failure.find("unexpected eof") != std::string::npos) return std::make_error_code(std::errc::connection_aborted);
    return std::make_error_code(std::errc::protocol_error);
}

std::error_code tls_stream::read_some(void* into, size_t max, size_t& got) {
    if (SSL_read_ex(_ssl, into, max, &got) == 1) return {};
    return fail(0);
}

std::error_code tls_stream::write_all(const void* buf, size_t n) {
    size_t written = 0;
    // SSL_write_ex without partial writes takes all of buf or fails.
    if (n > 0 && SSL_write_ex(_ssl, buf, n, &written) != 1) return fail(0);
    if (BIO_flush(_write_bio) != 1) {
        int e = errno;
        _failure = openssl_error();
        return BIO_should_retry(_write_bio) ? std::make_error_code(std::errc::timed_out) : io_errno(e ? e : EPIPE);
    }
    return {};
}

std::string tls_stream::describe() const {
    const SSL_CIPHER* c = SSL_get_current_cipher(_ssl);
    return fmt::format("{} {}", SSL_get_version(_ssl), c ? SSL_CIPHER_standard_name(c) : "?");
}

std::error_code socket_io::read_some(void* into, size_t max, size_t& got) const {
    if (tls) return tls->read_some(into, max, got);
    while (true) {
        ssize_t n = ::read(fd, into, max);
        if (n > 0) {
            got = static_cast<size_t>(n);
            return {};
        }
        if (n == 0) return std::make_error_code(std::errc::connection_aborted);
        if (errno != EINTR) return io_errno(errno);
    }
}

std::error_code socket_io::read_exact(void* into, size_t n) const {
    auto* p = static_cast<uint8_t*>(into);
    while (n > 0) {
        size_t got = 0;
        if (auto ec = read_some(p, n, got)) return ec;
        p += got;
        n -= got;
    }
    return {};
}

std::error_code socket_io::write_all(const void* buf, size_t n) const {
    if (tls) return tls->write_all(buf, n);
    auto ec = bench::write_all(fd, buf, n);
    return ec == std::errc::resource_unavailable_try_again ? std::make_error_code(std::errc::timed_out) : ec;
}

}  // namespace sluice::bench
