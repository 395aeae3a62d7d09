// DeleteTopics (key 20), controller only. Marks topics for deletion in ZooKeeper
// (/admin/delete_topics/<t>); the controller removes them and every broker deletes its
// logs when the topic leaves the snapshot. The answer waits for that, up to timeout_ms.
#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"
#include "coord/coordinator.h"

namespace sluice::broker {
namespace {

using proto::error_code;

struct delete_state {
    request_ptr req;
    proto::delete_topics_response resp;
    size_t pending = 1;
    void one_done() {
        if (--pending == 0) req->respond(resp);
    }
};

}  // namespace

void handle_delete_topics(request_ptr req) {
    proto::delete_topics_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("delete_topics", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed DeleteTopics request");
    }
    shard& sh = req->sh();
    server& srv = sh.srv();
    auto state = std::make_shared<delete_state>();
    state->req = req;
    std::vector<proto::delete_topics_request::delete_topic_state> wanted = body.topics;
    for (const auto& n : body.topic_names) wanted.push_back({n, {}});
    bool controller = sh.metadata()->controller_id == srv.config().broker_id;
    for (const auto& w : wanted) {
        proto::delete_topics_response::deletable_topic_result res;
        const coord::topic_info* t = w.name ? find_topic(*sh.metadata(), *w.name) : find_topic_by_id(*sh.metadata(), w.topic_id);
        res.name = w.name ? w.name : (t ? std::optional<std::string>(t->name) : std::nullopt);
        res.topic_id = t ? t->topic_id : w.topic_id;
        error_code e = error_code::none;
        if (!controller) e = error_code::not_controller;
        else if (!srv.config().delete_topic_enable) e = error_code::topic_deletion_disabled;
        else if (t == nullptr) e = w.name ? error_code::unknown_topic_or_partition : error_code::unknown_topic_id;
        res.error_code = static_cast<int16_t>(e);
        size_t index = state->resp.responses.size();
        state->resp.responses.push_back(std::move(res));
        if (e != error_code::none) continue;
        ++state->pending;
        std::string name = t->name;
        coord::uuid id = t->topic_id;
        int64_t timeout = body.timeout_ms;
        srv.coordinator().delete_topic(name, [state, index, &sh, name, id, timeout](int16_t error, std::string message) {
            sh.post([state, index, &sh, name, id, timeout, error, message]() {
                auto& res = state->resp.responses[index];
                if (error != 0) {
                    res.error_code = error;
                    res.error_message = message;
                    return state->one_done();
                }
                wait_for_metadata(
                    sh, timeout,
                    [&sh, name, id]() {
                        auto it = sh.metadata()->topics.find(name);
                        return it == sh.metadata()->topics.end() || it->second->topic_id != id;
                    },
                    [state, index](bool gone) {
                        if (!gone)
                            state->resp.responses[index].error_code = static_cast<int16_t>(error_code::request_timed_out);
                        state->one_done();
                    });
            });
        });
    }
    state->one_done();
}

}  // namespace sluice::broker
