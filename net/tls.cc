// tls_context (key material, protocols, ciphers -> SSL_CTX) and tls_session (the BIO glue).
#include "net/tls.h"

#include "base/assert.h"

#include <fmt/format.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

namespace sluice::net {

// ---- the BIO between OpenSSL and the connection's buffers ----

// A source/sink BIO whose read side is the span the connection received (tls_session::_in)
// and whose write side appends to tls_session::_out. It never blocks and never fails a
// write; an empty read side is "retry later", which OpenSSL reports as SSL_ERROR_WANT_READ.
struct tls_bio_glue {
    static int write(BIO* b, const char* data, int len) {
        auto* s = static_cast<tls_session*>(BIO_get_data(b));
        if (s == nullptr || len < 0) return -1;
        s->_out.insert(s->_out.end(), reinterpret_cast<const uint8_t*>(data),
                       reinterpret_cast<const uint8_t*>(data) + len);
        return len;
    }
    static int read(BIO* b, char* data, int len) {
        auto* s = static_cast<tls_session*>(BIO_get_data(b));
        BIO_clear_retry_flags(b);
        if (s == nullptr || len <= 0) return 0;
        if (s->_in.empty()) {
            BIO_set_retry_read(b);
            return -1;
        }
        size_t n = std::min(s->_in.size(), static_cast<size_t>(len));
        std::memcpy(data, s->_in.data(), n);
        s->_in = s->_in.subspan(n);
        return static_cast<int>(n);
    }
    static long ctrl(BIO*, int cmd, long, void*) {
        // FLUSH must succeed (OpenSSL flushes after each flight); everything else (ktls,
        // pending counts, EOF) has a "no/none" answer of 0.
        return cmd == BIO_CTRL_FLUSH ? 1 : 0;
    }
    static int create(BIO* b) {
        BIO_set_init(b, 1);
        return 1;
    }
    static const BIO_METHOD* method() {
        static BIO_METHOD* m = [] {
            BIO_METHOD* bm = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "sluice-reactor");
            SLUICE_ASSERT(bm != nullptr, "BIO_meth_new failed");
            BIO_meth_set_write(bm, &tls_bio_glue::write);
            BIO_meth_set_read(bm, &tls_bio_glue::read);
            BIO_meth_set_ctrl(bm, &tls_bio_glue::ctrl);
            BIO_meth_set_create(bm, &tls_bio_glue::create);
            return bm;
        }();
        return m;
    }
};

namespace {

// The most specific OpenSSL error on this thread's queue, then clears it.
std::string openssl_error(std::string_view fallback = "unknown error") {
    unsigned long last = 0;
    unsigned long e;
    while ((e = ERR_get_error()) != 0) last = e;
    if (last == 0) return std::string(fallback);
    const char* reason = ERR_reason_error_string(last);
    return reason != nullptr ? reason : fmt::format("error {:#x}", last);
}

struct bio_deleter {
    void operator()(BIO* b) const { BIO_free(b); }
};
struct pkey_deleter {
    void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
struct x509_deleter {
    void operator()(X509* x) const { X509_free(x); }
};
struct ctx_deleter {
    void operator()(SSL_CTX* c) const { SSL_CTX_free(c); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;
using x509_ptr = std::unique_ptr<X509, x509_deleter>;
using ctx_ptr = std::unique_ptr<SSL_CTX, ctx_deleter>;

std::optional<std::string> read_file(const std::string& path, std::string& why) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        why = fmt::format("cannot read {}: {}", path, std::strerror(errno));
        return std::nullopt;
    }
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// Kafka accepts inline PEM whose line breaks were lost (a properties value continued with
// `\` keeps its lines joined by spaces). Rebuilds each BEGIN/END block with the base64 body
// wrapped at 64 columns; blocks with headers (legacy "Proc-Type:") are kept as they are.
std::string normalize_pem(const std::string& text) {
    std::string out;
    size_t pos = 0;
    while (true) {
        size_t begin = text.find("-----BEGIN ", pos);
        if (begin == std::string::npos) break;
        size_t label_end = text.find("-----", begin + 11);
        if (label_end == std::string::npos) break;
        std::string label = text.substr(begin + 11, label_end - begin - 11);
        std::string end_marker = "-----END " + label + "-----";
        size_t body_at = label_end + 5;
        size_t end = text.find(end_marker, body_at);
        if (end == std::string::npos) break;
        std::string body = text.substr(body_at, end - body_at);
        out += "-----BEGIN " + label + "-----\n";
        if (body.find(':') != std::string::npos) {
            out += body;
        } else {
            std::string b64;
            for (char c : body)
                if (!std::isspace(static_cast<unsigned char>(c))) b64 += c;
            for (size_t i = 0; i < b64.size(); i += 64) out += b64.substr(i, 64) + "\n";
        }
        out += end_marker + "\n";
        pos = end + end_marker.size();
    }
    return out;
}

bio_ptr memory_bio(const std::string& text) {
    return bio_ptr(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
}

std::vector<x509_ptr> parse_certificates(const std::string& text) {
    std::vector<x509_ptr> certs;
    bio_ptr bio = memory_bio(text);
    // Other PEM blocks (a private key in the same file) are skipped.
    while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) certs.emplace_back(x);
    ERR_clear_error();  // the loop ends on "no start line"
    return certs;
}

// Every certificate in PEM text, in order (leaf first for a chain).
std::vector<x509_ptr> read_certificates(const std::string& text) {
    auto certs = parse_certificates(text);
    if (certs.empty()) certs = parse_certificates(normalize_pem(text));
    return certs;
}

struct password_source {
    const std::string* password;
    bool asked = false;
};

// Never the default callback: it would prompt on the terminal for an encrypted key.
int password_callback(char* buf, int size, int, void* u) {
    auto* src = static_cast<password_source*>(u);
    src->asked = true;
    if (src->password->empty() || static_cast<int>(src->password->size()) > size) return -1;
    std::memcpy(buf, src->password->data(), src->password->size());
    return static_cast<int>(src->password->size());
}

// The private key in PEM text (PKCS#8, encrypted PKCS#8, or traditional RSA/EC keys).
std::variant<pkey_ptr, tls_error> read_private_key(const std::string& text, const std::string& password,
                                                   const char* setting) {
    password_source src{&password};
    for (int attempt = 0; attempt < 2; ++attempt) {
        std::string normalized = attempt == 0 ? text : normalize_pem(text);
        bio_ptr bio = memory_bio(normalized);
        src.asked = false;
        EVP_PKEY* k = PEM_read_bio_PrivateKey(bio.get(), nullptr, password_callback, &src);
        if (k != nullptr) {
            ERR_clear_error();
            return pkey_ptr(k);
        }
        if (src.asked) {
            ERR_clear_error();
            return tls_error{"key.password",
                             password.empty() ? "the private key is encrypted and ssl.key.password is not set"
                                              : "cannot decrypt the private key: wrong ssl.key.password"};
        }
        ERR_clear_error();
    }
    return tls_error{setting, "no PEM private key found"};
}

struct key_material {
    pkey_ptr key;
    std::vector<x509_ptr> chain;  // leaf first
};

std::variant<key_material, tls_error> load_pkcs12(const std::string& bytes, const tls_settings& s) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    PKCS12* p12 = d2i_PKCS12(nullptr, &p, static_cast<long>(bytes.size()));
    if (p12 == nullptr) {
        ERR_clear_error();
        return tls_error{"keystore.location", fmt::format("{} is not a PKCS12 file", s.keystore_location)};
    }
    EVP_PKEY* key = nullptr;
    X509* cert = nullptr;
    STACK_OF(X509)* ca = nullptr;
    bool ok = PKCS12_parse(p12, s.keystore_password.c_str(), &key, &cert, &ca) == 1;
    if (!ok && !s.key_password.empty() && s.key_password != s.keystore_password) {
        ERR_clear_error();
        ok = PKCS12_parse(p12, s.key_password.c_str(), &key, &cert, &ca) == 1;
    }
    PKCS12_free(p12);
    if (!ok) {
        std::string why = openssl_error();
        return tls_error{"keystore.password",
                         fmt::format("cannot open PKCS12 keystore {}: {} (wrong ssl.keystore.password?)",
                                     s.keystore_location, why)};
    }
    key_material m;
    m.key.reset(key);
    if (cert != nullptr) m.chain.emplace_back(cert);
    for (int i = 0; ca != nullptr && i < sk_X509_num(ca); ++i) m.chain.emplace_back(sk_X509_value(ca, i));
    sk_X509_free(ca);  // the certificates now belong to m.chain
    if (!m.key || m.chain.empty())
        return tls_error{"keystore.location",
                         fmt::format("PKCS12 keystore {} holds no private key with a certificate", s.keystore_location)};
    return m;
}

// A store's type as configured, or (empty) guessed from its first bytes the way Kafka
// users would expect: PEM text, a DER PKCS12 file, or a Java KeyStore (magic FEEDFEED).
std::string store_type(const std::string& configured, const std::string& bytes) {
    if (!configured.empty()) return configured;
    if (bytes.size() >= 4 && static_cast<uint8_t>(bytes[0]) == 0xFE && static_cast<uint8_t>(bytes[1]) == 0xED &&
        static_cast<uint8_t>(bytes[2]) == 0xFE && static_cast<uint8_t>(bytes[3]) == 0xED)
        return "JKS";
    if (!bytes.empty() && bytes[0] == 0x30) return "PKCS12";
    return "PEM";
}

constexpr const char* jks_refused =
    "JKS stores are not supported: use PEM or PKCS12 (keytool -importkeystore -deststoretype PKCS12 converts one)";

// ssl.keystore.*: the key and certificate chain this side presents. nullopt: none configured.
std::variant<std::optional<key_material>, tls_error> load_keystore(const tls_settings& s) {
    bool inline_pem = !s.keystore_key.empty() || !s.keystore_certificate_chain.empty();
    if (s.keystore_location.empty() && !inline_pem) return std::optional<key_material>{};
    std::string why;
    std::optional<std::string> file;
    if (!s.keystore_location.empty()) {
        file = read_file(s.keystore_location, why);
        if (!file) return tls_error{"keystore.location", why};
    }
    std::string type = store_type(s.keystore_type, file ? *file : std::string());
    if (type == "JKS") return tls_error{"keystore.type", jks_refused};
    if (type == "PKCS12") {
        if (!file) return tls_error{"keystore.location", "a PKCS12 keystore needs ssl.keystore.location"};
        auto m = load_pkcs12(*file, s);
        if (auto* e = std::get_if<tls_error>(&m)) return *e;
        return std::optional<key_material>(std::move(std::get<key_material>(m)));
    }
    if (type != "PEM")
        return tls_error{"keystore.type", fmt::format("unsupported keystore type '{}' (use PEM or PKCS12)", type)};
    std::string key_text, chain_text;
    const char* key_setting = "keystore.location";
    const char* chain_setting = "keystore.location";
    if (file) {
        key_text = chain_text = *file;
    } else {
        if (s.keystore_key.empty())
            return tls_error{"keystore.key", "ssl.keystore.certificate.chain is set but ssl.keystore.key is not"};
        if (s.keystore_certificate_chain.empty())
            return tls_error{"keystore.certificate.chain",
                             "ssl.keystore.key is set but ssl.keystore.certificate.chain is not"};
        key_text = s.keystore_key;
        chain_text = s.keystore_certificate_chain;
        key_setting = "keystore.key";
        chain_setting = "keystore.certificate.chain";
    }
    auto key = read_private_key(key_text, s.key_password, key_setting);
    if (auto* e = std::get_if<tls_error>(&key)) {
        if (e->setting == key_setting && !s.keystore_location.empty())
            e->message = fmt::format("no PEM private key found in {}", s.keystore_location);
        return *e;
    }
    key_material m;
    m.key = std::move(std::get<pkey_ptr>(key));
    m.chain = read_certificates(chain_text);
    if (m.chain.empty())
        return tls_error{chain_setting, s.keystore_location.empty()
                                            ? std::string("no PEM certificate found")
                                            : fmt::format("no PEM certificate found in {}", s.keystore_location)};
    return std::optional<key_material>(std::move(m));
}

// ssl.truststore.*: the CA certificates that verify the peer. Empty: none configured.
std::variant<std::vector<x509_ptr>, tls_error> load_truststore(const tls_settings& s) {
    std::vector<x509_ptr> certs;
    std::string why;
    if (!s.truststore_location.empty()) {
        auto bytes = read_file(s.truststore_location, why);
        if (!bytes) return tls_error{"truststore.location", why};
        std::string type = store_type(s.truststore_type, *bytes);
        if (type == "JKS") return tls_error{"truststore.type", jks_refused};
        if (type == "PKCS12") {
            const auto* p = reinterpret_cast<const unsigned char*>(bytes->data());
            PKCS12* p12 = d2i_PKCS12(nullptr, &p, static_cast<long>(bytes->size()));
            EVP_PKEY* key = nullptr;
            X509* cert = nullptr;
            STACK_OF(X509)* ca = nullptr;
            bool ok = p12 != nullptr && PKCS12_parse(p12, s.truststore_password.c_str(), &key, &cert, &ca) == 1;
            if (p12 != nullptr) PKCS12_free(p12);
            if (!ok) {
                std::string e = openssl_error("not a PKCS12 file");
                return tls_error{"truststore.location",
                                 fmt::format("cannot open PKCS12 truststore {}: {} (wrong ssl.truststore.password?)",
                                             s.truststore_location, e)};
            }
            EVP_PKEY_free(key);
            if (cert != nullptr) certs.emplace_back(cert);
            for (int i = 0; ca != nullptr && i < sk_X509_num(ca); ++i) certs.emplace_back(sk_X509_value(ca, i));
            sk_X509_free(ca);
        } else if (type == "PEM") {
            certs = read_certificates(*bytes);
        } else {
            return tls_error{"truststore.type", fmt::format("unsupported truststore type '{}' (use PEM or PKCS12)",
                                                            type)};
        }
        if (certs.empty())
            return tls_error{"truststore.location", fmt::format("no certificate found in {}", s.truststore_location)};
    } else if (!s.truststore_certificates.empty()) {
        certs = read_certificates(s.truststore_certificates);
        if (certs.empty()) return tls_error{"truststore.certificates", "no PEM certificate found"};
    }
    return certs;
}

std::optional<int> protocol_version(const std::string& name) {
    if (name == "TLSv1.2") return TLS1_2_VERSION;
    if (name == "TLSv1.3") return TLS1_3_VERSION;
    return std::nullopt;
}

std::optional<tls_error> apply_protocols(SSL_CTX* ctx, const tls_settings& s) {
    int lo = 0, hi = 0;
    for (const auto& p : s.enabled_protocols) {
        auto v = protocol_version(p);
        if (!v)
            return tls_error{"enabled.protocols",
                             fmt::format("unsupported protocol '{}' (supported: TLSv1.2, TLSv1.3)", p)};
        lo = lo == 0 ? *v : std::min(lo, *v);
        hi = std::max(hi, *v);
    }
    if (lo == 0) return tls_error{"enabled.protocols", "no protocol enabled"};
    SSL_CTX_set_min_proto_version(ctx, lo);
    SSL_CTX_set_max_proto_version(ctx, hi);
    return std::nullopt;
}

// Kafka names suites the Java (IANA) way: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 for
// TLSv1.2, TLS_AES_128_GCM_SHA256 for TLSv1.3. OpenSSL takes its own names for <= 1.2
// ("ECDHE-RSA-AES128-GCM-SHA256") and IANA names for 1.3. Both spellings are accepted.
std::optional<tls_error> apply_cipher_suites(SSL_CTX* ctx, const tls_settings& s) {
    if (s.cipher_suites.empty()) return std::nullopt;
    std::unique_ptr<SSL, decltype(&SSL_free)> probe(SSL_new(ctx), &SSL_free);
    SSL_set_cipher_list(probe.get(), "ALL:COMPLEMENTOFALL");
    STACK_OF(SSL_CIPHER)* all = SSL_get_ciphers(probe.get());
    std::string tls12, tls13;
    for (const auto& name : s.cipher_suites) {
        const SSL_CIPHER* found = nullptr;
        for (int i = 0; all != nullptr && i < sk_SSL_CIPHER_num(all) && found == nullptr; ++i) {
            const SSL_CIPHER* c = sk_SSL_CIPHER_value(all, i);
            const char* std_name = SSL_CIPHER_standard_name(c);
            if (name == SSL_CIPHER_get_name(c) || (std_name != nullptr && name == std_name)) found = c;
        }
        if (found == nullptr)
            return tls_error{"cipher.suites", fmt::format("unknown cipher suite '{}'", name)};
        std::string& list = std::string_view(SSL_CIPHER_get_version(found)) == "TLSv1.3" ? tls13 : tls12;
        if (!list.empty()) list += ':';
        list += SSL_CIPHER_get_name(found);
    }
    ERR_clear_error();
    // As in Kafka, the list restricts every enabled protocol: a protocol left without a
    // suite is turned off.
    if (SSL_CTX_set_ciphersuites(ctx, tls13.c_str()) != 1)
        return tls_error{"cipher.suites", fmt::format("OpenSSL refused the TLSv1.3 suites: {}", openssl_error())};
    if (tls12.empty()) {
        SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    } else if (SSL_CTX_set_cipher_list(ctx, tls12.c_str()) != 1) {
        return tls_error{"cipher.suites", fmt::format("OpenSSL refused the suites: {}", openssl_error())};
    }
    if (tls13.empty()) SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_get_min_proto_version(ctx) > SSL_CTX_get_max_proto_version(ctx) &&
        SSL_CTX_get_max_proto_version(ctx) != 0)
        return tls_error{"cipher.suites", "no listed suite is usable with ssl.enabled.protocols"};
    return std::nullopt;
}

std::optional<tls_error> apply_keystore(SSL_CTX* ctx, const tls_settings& s, bool required) {
    auto loaded = load_keystore(s);
    if (auto* e = std::get_if<tls_error>(&loaded)) return *e;
    auto& km = std::get<std::optional<key_material>>(loaded);
    if (!km) {
        if (required)
            return tls_error{"keystore.location",
                             "an SSL listener needs a keystore: set ssl.keystore.location (or ssl.keystore.key "
                             "and ssl.keystore.certificate.chain)"};
        return std::nullopt;
    }
    std::string source = s.keystore_location.empty() ? "the inline keystore" : s.keystore_location;
    const char* setting = s.keystore_location.empty() ? "keystore.certificate.chain" : "keystore.location";
    if (SSL_CTX_use_certificate(ctx, km->chain.front().get()) != 1)
        return tls_error{setting, fmt::format("OpenSSL refused the certificate in {}: {}", source, openssl_error())};
    for (size_t i = 1; i < km->chain.size(); ++i)
        if (SSL_CTX_add1_chain_cert(ctx, km->chain[i].get()) != 1)
            return tls_error{setting, fmt::format("OpenSSL refused a chain certificate in {}: {}", source,
                                                  openssl_error())};
    if (SSL_CTX_use_PrivateKey(ctx, km->key.get()) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        ERR_clear_error();
        return tls_error{s.keystore_location.empty() ? "keystore.key" : "keystore.location",
                         fmt::format("the private key in {} does not match its certificate", source)};
    }
    return std::nullopt;
}

std::optional<tls_error> apply_truststore(SSL_CTX* ctx, const tls_settings& s, bool server) {
    auto loaded = load_truststore(s);
    if (auto* e = std::get_if<tls_error>(&loaded)) return *e;
    auto& certs = std::get<std::vector<x509_ptr>>(loaded);
    if (certs.empty()) {
        // Kafka (Java) falls back to the platform's trust store; so do we.
        SSL_CTX_set_default_verify_paths(ctx);
        return std::nullopt;
    }
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    for (auto& c : certs) {
        X509_STORE_add_cert(store, c.get());
        // Servers name the CAs they accept in the CertificateRequest.
        if (server) SSL_CTX_add_client_CA(ctx, c.get());
    }
    ERR_clear_error();  // duplicate certificates are not an error
    return std::nullopt;
}

}  // namespace

std::variant<std::shared_ptr<const tls_context>, tls_error> tls_context::build(const tls_settings& s, bool server) {
    ERR_clear_error();
    ctx_ptr ctx(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
    if (!ctx) return tls_error{"", fmt::format("SSL_CTX_new failed: {}", openssl_error())};
    SSL_CTX* c = ctx.get();
    // Renegotiation is a DoS lever and Kafka clients never use it; compression leaks (CRIME).
    SSL_CTX_set_options(c, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                               (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    // Idle connections give their 2 x ~34 KiB record buffers back.
    SSL_CTX_set_mode(c, SSL_MODE_RELEASE_BUFFERS);
    // Pull whole reads from the BIO instead of a header then a body per record.
    SSL_CTX_set_read_ahead(c, 1);
    if (auto e = apply_protocols(c, s)) return *e;
    if (auto e = apply_cipher_suites(c, s)) return *e;
    if (auto e = apply_keystore(c, s, server)) return *e;
    bool verify = server ? s.client_auth != tls_client_auth::none : s.verify_peer;
    if (verify || !s.truststore_location.empty() || !s.truststore_certificates.empty())
        if (auto e = apply_truststore(c, s, server)) return *e;
    int mode = SSL_VERIFY_NONE;
    if (server && s.client_auth == tls_client_auth::requested) mode = SSL_VERIFY_PEER;
    if (server && s.client_auth == tls_client_auth::required) mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
    if (!server && s.verify_peer) mode = SSL_VERIFY_PEER;
    SSL_CTX_set_verify(c, mode, nullptr);
    if (server) {
        // Needed for session resumption together with client certificates.
        static const unsigned char id[] = "sluice";
        SSL_CTX_set_session_id_context(c, id, sizeof id - 1);
    }
    ERR_clear_error();
    return std::shared_ptr<const tls_context>(new tls_context(ctx.release(), server));
}

std::variant<std::shared_ptr<const tls_context>, tls_error> tls_context::create_server(const tls_settings& s) {
    return build(s, true);
}

std::variant<std::shared_ptr<const tls_context>, tls_error> tls_context::create_client(const tls_settings& s) {
    return build(s, false);
}

tls_context::~tls_context() { SSL_CTX_free(_ctx); }

// ---- tls_session ----

tls_session::tls_session(std::shared_ptr<const tls_context> ctx, const std::string& server_name) {
    SLUICE_ASSERT(ctx != nullptr, "tls_session without a context");
    _ssl = SSL_new(ctx->native());
    SLUICE_ASSERT(_ssl != nullptr, "SSL_new failed: {}", openssl_error());
    BIO* bio = BIO_new(tls_bio_glue::method());
    SLUICE_ASSERT(bio != nullptr, "BIO_new failed");
    BIO_set_data(bio, this);
    SSL_set_bio(_ssl, bio, bio);  // one BIO both ways: one reference, owned by _ssl
    if (ctx->is_server()) {
        SSL_set_accept_state(_ssl);
    } else {
        SSL_set_connect_state(_ssl);
        if (!server_name.empty()) {
            in6_addr ip{};
            bool is_ip = ::inet_pton(AF_INET, server_name.c_str(), &ip) == 1 ||
                         ::inet_pton(AF_INET6, server_name.c_str(), &ip) == 1;
            if (is_ip) {
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(_ssl), server_name.c_str());
            } else {
                SSL_set_tlsext_host_name(_ssl, server_name.c_str());
                SSL_set1_host(_ssl, server_name.c_str());
            }
        }
    }
}

tls_session::~tls_session() { SSL_free(_ssl); }

void tls_session::start() {
    if (SSL_is_server(_ssl)) return;
    ERR_clear_error();
    int rc = SSL_do_handshake(_ssl);
    if (rc != 1 && SSL_get_error(_ssl, rc) != SSL_ERROR_WANT_READ) fail(openssl_error());
}

void tls_session::fail(std::string what) {
    _state = state::failed;
    long verify = SSL_get_verify_result(_ssl);
    if (verify != X509_V_OK && !SSL_is_server(_ssl))
        what += fmt::format(" ({})", X509_verify_cert_error_string(verify));
    if (_saw_first_byte && _first_byte != 0x16 && SSL_is_server(_ssl) && !SSL_is_init_finished(_ssl))
        what += " (the first byte is not a TLS handshake: a PLAINTEXT client on an SSL listener?)";
    _failure = std::move(what);
}

size_t tls_session::read_some(uint8_t* scratch, size_t size) {
    ERR_clear_error();
    if (_state == state::handshaking) {
        int rc = SSL_do_handshake(_ssl);
        if (rc != 1) {
            int err = SSL_get_error(_ssl, rc);
            if (err == SSL_ERROR_WANT_READ) return 0;
            fail(err == SSL_ERROR_SYSCALL || err == SSL_ERROR_ZERO_RETURN
                     ? std::string("unexpected end of stream")
                     : openssl_error());
            return 0;
        }
        _state = state::established;
    }
    size_t got = 0;
    int rc = SSL_read_ex(_ssl, scratch, size, &got);
    if (rc == 1) return got;
    int err = SSL_get_error(_ssl, rc);
    if (err == SSL_ERROR_WANT_READ) return 0;
    if (err == SSL_ERROR_ZERO_RETURN) {
        _state = state::closed;
        return 0;
    }
    fail(err == SSL_ERROR_SYSCALL ? std::string("unexpected end of stream") : openssl_error());
    return 0;
}

bool tls_session::encrypt(std::span<const uint8_t> plain) {
    SLUICE_ASSERT(_state == state::established, "encrypt before the handshake finished");
    if (plain.empty()) return true;
    ERR_clear_error();
    size_t written = 0;
    // Our BIO takes every byte, so OpenSSL writes it all (as records of <= 16 KiB) or fails.
    if (SSL_write_ex(_ssl, plain.data(), plain.size(), &written) != 1 || written != plain.size()) {
        fail(fmt::format("encrypt failed: {}", openssl_error()));
        return false;
    }
    return true;
}

void tls_session::take_output(std::vector<uint8_t>& into) {
    SLUICE_ASSERT(into.empty(), "take_output into a buffer that still holds {} bytes", into.size());
    std::swap(into, _out);
}

void tls_session::trim_output(size_t keep_capacity) {
    if (_out.empty() && _out.capacity() > keep_capacity) std::vector<uint8_t>().swap(_out);
}

std::string tls_session::describe() const {
    if (!SSL_is_init_finished(_ssl)) return "handshaking";
    return fmt::format("{} {}", SSL_get_version(_ssl), SSL_get_cipher_name(_ssl));
}

bool tls_session::peer_certificate_present() const {
    X509* peer = SSL_get1_peer_certificate(_ssl);
    X509_free(peer);
    return peer != nullptr;
}

}  // namespace sluice::net
