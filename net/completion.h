#pragma once
// The object an io_uring operation's user_data points at.
//
// Concurrency: owned by whoever submitted the operation (a connection, a listener, the
// reactor itself) and touched only on the reactor thread. The owner must keep it alive
// until the operation's last CQE has been delivered: for a multishot operation that is
// the first CQE without IORING_CQE_F_MORE. The reactor copies (completion*, res, flags)
// out of the CQ in a batch and calls complete() later from its ready list, so
// complete() never runs inside another completion and never touches the CQ ring.
#include <cstdint>

namespace sluice::net {

class completion {
public:
    // res: the CQE's result (bytes, fd, or -errno). flags: IORING_CQE_F_* bits.
    virtual void complete(int32_t res, uint32_t flags) = 0;
    // Named in stall reports ("recv", "accept", "splice_out", ...).
    const char* name() const { return _name; }

protected:
    explicit completion(const char* name) : _name(name) {}
    ~completion() = default;
    completion(const completion&) = delete;
    completion& operator=(const completion&) = delete;

private:
    const char* _name;
};

}  // namespace sluice::net
