#pragma once
// Test key material made in-process with OpenSSL: a CA, certificates it signs (with
// subjectAltName IP:127.0.0.1, DNS:localhost), PEM and PKCS12 encodings; and a blocking
// TLS client over a loopback socket driven through net::tls_session (the same BIO glue
// the broker uses, client side).
#include "net/tls.h"
#include "net_test_util.h"

#include <doctest/doctest.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <string>

namespace sluice::net::test {

struct test_identity {
    std::shared_ptr<EVP_PKEY> key;
    std::shared_ptr<X509> cert;
};

inline void add_ext(X509* cert, X509* issuer, int nid, const char* value) {
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
    X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
    REQUIRE(ext != nullptr);
    X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
}

// issuer == nullptr: a self-signed CA.
inline test_identity make_identity(const char* cn, const test_identity* issuer) {
    static long serial = 1;
    test_identity id;
    id.key.reset(EVP_EC_gen("P-256"), EVP_PKEY_free);
    REQUIRE(id.key);
    X509* x = X509_new();
    id.cert.reset(x, X509_free);
    X509_set_version(x, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, id.key.get());
    X509_NAME* name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(cn), -1, -1, 0);
    X509* issuer_cert = issuer ? issuer->cert.get() : x;
    X509_set_issuer_name(x, X509_get_subject_name(issuer_cert));
    if (issuer == nullptr) {
        add_ext(x, x, NID_basic_constraints, "critical,CA:TRUE");
        add_ext(x, x, NID_key_usage, "critical,keyCertSign,cRLSign");
    } else {
        add_ext(x, issuer_cert, NID_basic_constraints, "CA:FALSE");
        add_ext(x, issuer_cert, NID_subject_alt_name, "IP:127.0.0.1,DNS:localhost");
    }
    REQUIRE(X509_sign(x, issuer ? issuer->key.get() : id.key.get(), EVP_sha256()) > 0);
    return id;
}

inline std::string bio_string(BIO* b) {
    char* data = nullptr;
    long n = BIO_get_mem_data(b, &data);
    std::string s(data, static_cast<size_t>(n));
    BIO_free(b);
    return s;
}

inline std::string cert_pem(const test_identity& id) {
    BIO* b = BIO_new(BIO_s_mem());
    PEM_write_bio_X509(b, id.cert.get());
    return bio_string(b);
}

// PKCS#8; encrypted with AES-256 when a password is given (Kafka's PEM key format).
inline std::string key_pem(const test_identity& id, const std::string& password = "") {
    BIO* b = BIO_new(BIO_s_mem());
    if (password.empty()) {
        PEM_write_bio_PKCS8PrivateKey(b, id.key.get(), nullptr, nullptr, 0, nullptr, nullptr);
    } else {
        PEM_write_bio_PKCS8PrivateKey(b, id.key.get(), EVP_aes_256_cbc(), password.data(),
                                      static_cast<int>(password.size()), nullptr, nullptr);
    }
    return bio_string(b);
}

inline std::string pkcs12_der(const test_identity& id, const test_identity& ca, const std::string& password) {
    STACK_OF(X509)* chain = sk_X509_new_null();
    sk_X509_push(chain, ca.cert.get());
    PKCS12* p12 = PKCS12_create(password.c_str(), "sluice", id.key.get(), id.cert.get(), chain, 0, 0, 0, 0, 0);
    sk_X509_free(chain);
    REQUIRE(p12 != nullptr);
    BIO* b = BIO_new(BIO_s_mem());
    i2d_PKCS12_bio(b, p12);
    PKCS12_free(p12);
    return bio_string(b);
}

// A file in a fresh temp dir, removed at scope exit.
struct temp_file {
    std::string path;
    explicit temp_file(const std::string& contents) {
        char tmpl[] = "/tmp/sluice_tls_test_XXXXXX";
        int fd = ::mkstemp(tmpl);
        REQUIRE(fd >= 0);
        path = tmpl;
        REQUIRE(::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size()));
        ::close(fd);
    }
    ~temp_file() { ::unlink(path.c_str()); }
};

template <typename V>
std::shared_ptr<const tls_context> expect_context(V created) {
    if (auto* e = std::get_if<tls_error>(&created)) FAIL_CHECK("tls context: " << e->setting << ": " << e->message);
    REQUIRE(std::holds_alternative<std::shared_ptr<const tls_context>>(created));
    return std::get<std::shared_ptr<const tls_context>>(created);
}

// A blocking TLS client on a loopback socket (timeouts from connect_to bound every read).
class tls_client {
public:
    tls_client(int port, std::shared_ptr<const tls_context> ctx) : _fd(connect_to(port)), _tls(std::move(ctx), "127.0.0.1") {}
    ~tls_client() { ::close(_fd); }

    // True once established; false on a TLS failure or EOF (failure() says which).
    bool handshake() {
        _tls.start();
        for (int i = 0; i < 100 && _tls.current() == tls_session::state::handshaking; ++i) {
            if (!flush() || !pump()) return false;
        }
        flush();
        return _tls.established();
    }
    bool send(const void* data, size_t n) {
        if (!_tls.encrypt(std::span<const uint8_t>(static_cast<const uint8_t*>(data), n))) return false;
        return flush();
    }
    // Reads exactly n plaintext bytes.
    bool read_plain(std::string& out, size_t n) {
        for (int i = 0; out.size() < n && i < 1000000; ++i) {
            if (_plain.size() > 0) {
                size_t take = std::min(n - out.size(), _plain.size());
                out.append(_plain, 0, take);
                _plain.erase(0, take);
                continue;
            }
            if (!pump()) return false;
        }
        return out.size() == n;
    }
    bool read_frame(std::string& body) {
        std::string size;
        if (!read_plain(size, 4)) return false;
        uint32_t be;
        std::memcpy(&be, size.data(), 4);
        return read_plain(body, ntohl(be));
    }
    std::string failure() const { return _tls.failure().empty() ? _eof_reason : _tls.failure(); }
    tls_session& session() { return _tls; }
    int fd() const { return _fd; }

private:
    bool flush() {
        std::vector<uint8_t> out;
        _tls.take_output(out);
        return out.empty() || write_all(_fd, out.data(), out.size());
    }
    bool pump() {
        uint8_t buf[65536];
        ssize_t r = ::recv(_fd, buf, sizeof buf, 0);
        if (r <= 0) {
            _eof_reason = r == 0 ? "connection closed by the server" : std::string("recv: ") + strerror(errno);
            return false;
        }
        auto st = _tls.receive(std::span<const uint8_t>(buf, static_cast<size_t>(r)), [&](std::span<const uint8_t> p) {
            _plain.append(reinterpret_cast<const char*>(p.data()), p.size());
            return true;
        });
        flush();  // post-handshake messages, alerts
        return st != tls_session::state::failed && st != tls_session::state::closed;
    }

    int _fd;
    tls_session _tls;
    std::string _plain;
    std::string _eof_reason;
};

}  // namespace sluice::net::test
