// OffsetDelete (key 47, KIP-496): removes committed offsets of partitions the group no
// longer consumes. A partition of a topic the group's members are subscribed to gets
// GROUP_SUBSCRIBED_TO_TOPIC.
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {

void handle_offset_delete(request_ptr req) {
    auto body = std::make_shared<proto::offset_delete_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed OffsetDelete request");
    }
    std::vector<std::pair<std::string, int32_t>> tps;
    for (const auto& t : body->topics)
        for (const auto& p : t.partitions) tps.emplace_back(t.name, p.partition_index);
    shard& sh = req->sh();
    int32_t p = groups::coordinator_partition(sh, body->group_id);
    groups::on_coordinator(
        sh, p, [p, body, tps](groups::group_manager& gm) { return gm.delete_offsets(p, body->group_id, tps); },
        [req, body](std::pair<int16_t, std::vector<int16_t>> res) {
            proto::offset_delete_response resp;
            resp.error_code = res.first;
            size_t i = 0;
            if (res.first == 0) {
                for (const auto& t : body->topics) {
                    proto::offset_delete_response::offset_delete_response_topic rt;
                    rt.name = t.name;
                    for (const auto& part : t.partitions) rt.partitions.push_back({part.partition_index, res.second[i++]});
                    resp.topics.push_back(std::move(rt));
                }
            }
            req->respond(resp);
        });
}

}  // namespace sluice::broker
