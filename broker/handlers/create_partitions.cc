// CreatePartitions (key 37), controller only (NOT_CONTROLLER elsewhere, as Kafka's ZK
// mode; the admin clients send it to Metadata's controller_id). The longer assignment is
// written to ZooKeeper (coord::coordinator::add_partitions); the answer waits (up to
// timeout_ms) until every new partition has a leader, so a producer can use it at once.
#include "base/log.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/errors.h"
#include "broker/protocol/messages.h"
#include "broker/server.h"
#include "broker/topics.h"
#include "coord/coordinator.h"

#include <set>

namespace sluice::broker {
namespace {

using proto::error_code;

bool has_leaders(const coord::cluster_snapshot& snap, const std::string& name, int32_t count) {
    const auto* t = find_topic(snap, name);
    if (t == nullptr || int32_t(t->assignment.size()) < count) return false;
    for (const auto& [index, replicas] : t->assignment) {
        auto st = t->partitions.find(index);
        if (st == t->partitions.end() || st->second.leader < 0) return false;
    }
    return true;
}

struct grow_state {
    request_ptr req;
    proto::create_partitions_response resp;
    size_t pending = 1;  // released at the end, so early answers cannot respond twice
    void one_done() {
        if (--pending == 0) req->respond(resp);
    }
};

}  // namespace

void handle_create_partitions(request_ptr req) {
    proto::create_partitions_request body;
    auto r = req->body_reader();
    if (!body.decode(r, req->version())) {
        log::warn("create_partitions", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed CreatePartitions request");
    }
    shard& sh = req->sh();
    server& srv = sh.srv();
    auto state = std::make_shared<grow_state>();
    state->req = req;
    const bool controller = sh.metadata()->controller_id == srv.config().broker_id;
    std::multiset<std::string> names;
    for (const auto& t : body.topics) names.insert(t.name);
    for (const auto& t : body.topics) {
        size_t index = state->resp.results.size();
        auto& res = state->resp.results.emplace_back();
        res.name = t.name;
        auto fail = [&](error_code e, std::string msg) {
            res.error_code = static_cast<int16_t>(e);
            res.error_message = std::move(msg);
        };
        if (!controller) { fail(error_code::not_controller, "this broker is not the controller"); continue; }
        if (names.count(t.name) > 1) {
            fail(error_code::invalid_request, "Duplicate topic in request.");
            continue;
        }
        if (!find_topic(*sh.metadata(), t.name)) {
            fail(error_code::unknown_topic_or_partition, fmt::format("The topic '{}' does not exist.", t.name));
            continue;
        }
        std::optional<std::vector<std::vector<int32_t>>> lists;
        if (t.assignments) {
            lists.emplace();
            for (const auto& a : *t.assignments) lists->push_back(a.broker_ids);
        }
        ++state->pending;
        const int64_t timeout = body.timeout_ms;
        const bool validate_only = body.validate_only;
        const std::string name = t.name;
        const int32_t count = t.count;
        srv.coordinator().add_partitions(
            name, count, std::move(lists),
            [state, index, &sh, timeout, name, count, validate_only](int16_t error, std::string message) {
                sh.post([state, index, &sh, timeout, name, count, validate_only, error, message]() {
                    auto& res = state->resp.results[index];
                    if (error != 0 || validate_only) {
                        res.error_code = error;
                        if (error != 0) res.error_message = message;
                        return state->one_done();
                    }
                    wait_for_metadata(
                        sh, timeout, [&sh, name, count]() { return has_leaders(*sh.metadata(), name, count); },
                        [state, index](bool ready) {
                            if (!ready) {
                                auto& res = state->resp.results[index];
                                res.error_code = static_cast<int16_t>(error_code::request_timed_out);
                                res.error_message = "partitions added; leaders not elected within the timeout";
                            }
                            state->one_done();
                        });
                });
            },
            validate_only);
    }
    state->one_done();
}

}  // namespace sluice::broker
