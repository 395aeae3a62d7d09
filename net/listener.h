#pragma once
// A listening TCP socket with one multishot accept armed in the reactor's ring.
//
// When the reactor is part of a reactor_group (net/reactor.h), an accepted socket whose
// claimed owner is another member is handed to it by post(): the owner's listener in the
// same position serves it (same TLS context, same accept callback for its own shard).
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
    bool closed() const { return _closed; }
    void arm();
    void close();  // cancels the accept and closes the socket; idempotent
    void complete(int32_t res, uint32_t flags) override;

private:
    friend class reactor;
    listener(reactor& r, int fd, int port, accept_fn on_accept, std::shared_ptr<const tls_context> tls);
    // A socket our accept returned: served here, or handed to the group member claimed.
    void accepted(int fd);
    // Makes the connection on this listener's reactor and starts it.
    void serve(int fd, std::string peer);

    reactor& _reactor;
    int _fd;
    int _port;
    size_t _slot = 0;  // position among the reactor's listeners (the same on every member)
    accept_fn _on_accept;
    std::shared_ptr<const tls_context> _tls;
    bool _armed = false;
    bool _closed = false;
};

}  // namespace sluice::net
