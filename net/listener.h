#pragma once
// A listening TCP socket with one multishot accept armed in the reactor's ring.
//
// Concurrency: owned by its reactor, reactor thread only. The accept completion lives as
// long as the listener, which the reactor destroys only after its ring is torn down.
#include "base/result.h"
#include "net/completion.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace sluice::net {

class connection;
class reactor;
class tls_context;

class listener final : public completion {
public:
    using accept_fn = std::function<void(std::shared_ptr<connection>)>;

    // Binds host:port with SO_REUSEADDR + SO_REUSEPORT. host: numeric IPv4/IPv6, "" or
    // "0.0.0.0" for any, or a name (resolved once, at startup). `tls`: accepted connections
    // speak TLS with this (server) context; nullptr: plaintext.
    static result<std::unique_ptr<listener>> open(reactor& r, const std::string& host,
                                                  uint16_t port, accept_fn on_accept,
                                                  std::shared_ptr<const tls_context> tls = nullptr);
    ~listener();

    int port() const { return _port; }
    void arm();
    void close();  // cancels the accept and closes the socket; idempotent
    void complete(int32_t res, uint32_t flags) override;

private:
    listener(reactor& r, int fd, int port, accept_fn on_accept, std::shared_ptr<const tls_context> tls);
    void accepted(int fd);

    reactor& _reactor;
    int _fd;
    int _port;
    accept_fn _on_accept;
    std::shared_ptr<const tls_context> _tls;
    bool _armed = false;
    bool _closed = false;
};

}  // namespace sluice::net
