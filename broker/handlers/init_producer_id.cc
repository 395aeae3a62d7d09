// InitProducerId (key 22) for idempotent producers. Transactions are not implemented:
// a transactional id is refused with TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which
// clients report at once as fatal instead of retrying forever.
//
// Producer ids come from server::next_producer_id (broker id and start time in the
// high bits, a counter below), unique without a ZooKeeper round trip; Kafka's
// /latest_producer_id_block allocation is future work.
#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"

namespace sluice::broker {

void handle_init_producer_id(request_ptr req) {
    proto::init_producer_id_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("init_producer_id", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed InitProducerId request");
    }
    proto::init_producer_id_response resp;
    if (body.transactional_id) {
        log::warn("init_producer_id", "{}: transactional id '{}' refused: transactions are not supported",
                  req->peer(), *body.transactional_id);
        resp.error_code = static_cast<int16_t>(proto::error_code::transactional_id_authorization_failed);
        resp.producer_id = -1;
        resp.producer_epoch = -1;
        return req->respond(resp);
    }
    if (body.producer_id >= 0 && body.producer_epoch >= 0 && body.producer_epoch < INT16_MAX - 1) {
        // KIP-360: an idempotent producer bumps its epoch after an error.
        resp.producer_id = body.producer_id;
        resp.producer_epoch = static_cast<int16_t>(body.producer_epoch + 1);
    } else {
        resp.producer_id = req->srv().next_producer_id();
        resp.producer_epoch = 0;
    }
    req->respond(resp);
}

}  // namespace sluice::broker
