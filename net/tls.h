#pragma once
// TLS for connections whose socket I/O stays with the io_uring reactor.
//
// tls_context: one OpenSSL SSL_CTX built from Kafka-style settings (PEM or PKCS12 keystore,
// PEM or PKCS12 truststore, client auth, protocols, cipher suites). One per listener,
// shared by every shard: an SSL_CTX is safe to use from many threads once configured, and
// it is never modified after create().
//
// tls_session: one SSL object per connection. OpenSSL never touches the socket: its BIO
// (a small custom BIO, the "memory BIO" pattern without the extra copy a BIO_s_mem would
// make) reads ciphertext from the span the connection just received and appends the
// ciphertext it writes to an output buffer the connection sends with io_uring. So a TLS
// connection has the same shape as a plain one: recv -> receive() -> plaintext frames;
// plaintext -> encrypt() -> output() -> SEND.
//
// Records: encrypt() hands OpenSSL whole spans; OpenSSL cuts them into records of at most
// 16 KiB (max_send_fragment), the largest TLS allows, which keeps the per-record cost
// (header, tag, one AEAD call) per GB lowest.
//
// Concurrency: a tls_session is used by one thread at a time (its connection's reactor).
// OpenSSL's error queue is per thread; every call clears it first and reads it after.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <variant>
#include <vector>

using SSL_CTX = struct ssl_ctx_st;
using SSL = struct ssl_st;

namespace sluice::net {

enum class tls_client_auth { none, requested, required };

// Kafka's ssl.* settings, already resolved for one listener (listener.name.<l>.ssl.* over
// ssl.*). Key material is named by file (…_location) or given inline as PEM text.
struct tls_settings {
    std::string keystore_type;          // PEM | PKCS12 (JKS refused); empty: guessed from the file
    std::string keystore_location;      // PEM: private key + certificate chain; or a PKCS12 file
    std::string keystore_password;      // PKCS12 file password
    std::string keystore_key;           // inline PEM private key (PEM keystores only)
    std::string keystore_certificate_chain;  // inline PEM certificate chain
    std::string key_password;           // decrypts an encrypted PEM private key
    std::string truststore_type;        // as keystore_type
    std::string truststore_location;
    std::string truststore_password;
    std::string truststore_certificates;  // inline PEM certificates
    tls_client_auth client_auth = tls_client_auth::none;
    std::vector<std::string> enabled_protocols = {"TLSv1.2", "TLSv1.3"};
    std::vector<std::string> cipher_suites;  // IANA (Java) or OpenSSL names; empty: OpenSSL's defaults
    // Client contexts only: verify the server's certificate against the truststore.
    bool verify_peer = true;
};

// What went wrong, naming the setting at fault (the tls_settings field's Kafka key suffix,
// e.g. "keystore.location" for ssl.keystore.location) so the caller can name the key it read.
struct tls_error {
    std::string setting;
    std::string message;  // one line
};

class tls_context {
public:
    static std::variant<std::shared_ptr<const tls_context>, tls_error> create_server(const tls_settings& s);
    // A client context: truststore = CAs for the server's certificate; an optional keystore
    // gives a client certificate (mutual TLS). Used by tests and the bench load generator.
    static std::variant<std::shared_ptr<const tls_context>, tls_error> create_client(const tls_settings& s);
    ~tls_context();
    tls_context(const tls_context&) = delete;
    tls_context& operator=(const tls_context&) = delete;

    SSL_CTX* native() const { return _ctx; }
    bool is_server() const { return _server; }

private:
    tls_context(SSL_CTX* ctx, bool server) : _ctx(ctx), _server(server) {}
    static std::variant<std::shared_ptr<const tls_context>, tls_error> build(const tls_settings& s, bool server);
    SSL_CTX* _ctx;
    bool _server;
};

class tls_session {
public:
    enum class state {
        handshaking,
        established,
        closed,  // the peer sent close_notify
        failed,  // fatal TLS error: failure() says why; output() may hold an alert for the peer
    };

    // server_name (clients only): sent as SNI and checked against the server certificate.
    explicit tls_session(std::shared_ptr<const tls_context> ctx, const std::string& server_name = "");
    ~tls_session();
    tls_session(const tls_session&) = delete;
    tls_session& operator=(const tls_session&) = delete;

    // Clients: writes the ClientHello into output(). Servers wait for the peer.
    void start();

    // Feeds ciphertext received from the peer, all of it: OpenSSL keeps partial records.
    // Decrypted application bytes go to on_plain in order (in pieces of at most one record);
    // on_plain returns false to stop early (the connection was closed). Handshake replies,
    // alerts and session tickets land in output().
    template <typename F>
    state receive(std::span<const uint8_t> cipher, F&& on_plain);

    // Encrypts plaintext into records appended to output(). Only once established.
    // False (and state failed) if OpenSSL refuses.
    bool encrypt(std::span<const uint8_t> plain);

    // Ciphertext waiting to be sent. take_output swaps it into `into` (which must be empty),
    // so two buffers alternate between "being sent" and "being filled" without copies.
    size_t output_size() const { return _out.size(); }
    void take_output(std::vector<uint8_t>& into);
    // Drops a large idle output buffer (an idle connection should not hold 256 KiB).
    void trim_output(size_t keep_capacity);
    // Room for n more bytes of output without reallocating (and copying) as it fills.
    void reserve_output(size_t n) { _out.reserve(_out.size() + n); }

    state current() const { return _state; }
    bool established() const { return _state == state::established; }
    const std::string& failure() const { return _failure; }
    // "TLSv1.3 TLS_AES_256_GCM_SHA384" once established, for logs.
    std::string describe() const;
    bool peer_certificate_present() const;

private:
    static constexpr size_t plain_scratch_bytes = 16 * 1024;  // one record's plaintext

    // One step of receive(): handshake if still in it, then read one record's plaintext.
    // Returns the bytes read into scratch (0: nothing more until more ciphertext arrives).
    size_t read_some(uint8_t* scratch, size_t size);
    void fail(std::string what);
    friend struct tls_bio_glue;

    SSL* _ssl = nullptr;
    state _state = state::handshaking;
    std::string _failure;
    std::span<const uint8_t> _in;  // ciphertext OpenSSL has not pulled yet
    std::vector<uint8_t> _out;
    bool _saw_first_byte = false;
    uint8_t _first_byte = 0;
};

template <typename F>
tls_session::state tls_session::receive(std::span<const uint8_t> cipher, F&& on_plain) {
    if (!cipher.empty() && !_saw_first_byte) {
        _saw_first_byte = true;
        _first_byte = cipher[0];
    }
    _in = cipher;
    uint8_t scratch[plain_scratch_bytes];
    // Bounded: a pass yields one record's plaintext (>= 1 byte, from >= 22 bytes of
    // ciphertext) or ends the loop; the slack covers records OpenSSL buffered before.
    for (size_t passes = 0; passes <= cipher.size() + 64; ++passes) {
        if (_state == state::closed || _state == state::failed) break;
        size_t n = read_some(scratch, sizeof scratch);
        if (n == 0) break;
        if (!on_plain(std::span<const uint8_t>(scratch, n))) break;
    }
    _in = {};
    return _state;
}

}  // namespace sluice::net
