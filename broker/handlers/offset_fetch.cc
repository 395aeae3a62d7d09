// OffsetFetch (key 9), v1+ (v0 read ZooKeeper-stored offsets in Kafka). v8+ may ask for
// several groups at once: each is answered by its own coordinator shard and the
// response is assembled here. Partitions without a committed offset get offset -1.
#include "base/log.h"
#include "broker/groups/route.h"
#include "broker/handlers/handlers.h"
#include "broker/protocol/messages.h"

namespace sluice::broker {
namespace {

using wanted_t = std::optional<std::vector<std::pair<std::string, std::vector<int32_t>>>>;
using fetch_result = std::pair<std::vector<groups::fetched_offset>, int16_t>;

struct group_query {
    std::string group_id;
    wanted_t wanted;
};

// Groups the flat result by topic, in the order topics first appear.
template <typename TopicT, typename PartT>
std::vector<TopicT> by_topic(const fetch_result& res, int16_t version, bool per_partition_error) {
    std::vector<TopicT> topics;
    for (const auto& f : res.first) {
        if (topics.empty() || topics.back().name != f.topic) {
            topics.emplace_back();
            topics.back().name = f.topic;
        }
        PartT pt;
        pt.partition_index = f.partition;
        pt.committed_offset = f.value ? f.value->offset : -1;
        pt.committed_leader_epoch = f.value ? f.value->leader_epoch : -1;
        pt.metadata = f.value ? f.value->metadata : std::string();
        pt.error_code = per_partition_error ? res.second : 0;
        topics.back().partitions.push_back(std::move(pt));
    }
    (void)version;
    return topics;
}

}  // namespace

void handle_offset_fetch(request_ptr req) {
    auto body = std::make_shared<proto::offset_fetch_request>();
    auto r = req->body_reader();
    if (!body->decode(r, req->version())) {
        log::warn("groups", "{}: {}", req->peer(), r.error());
        return req->close_connection("malformed OffsetFetch request");
    }
    int16_t version = req->version();
    std::vector<group_query> queries;
    auto to_wanted = [](const auto& topics) {
        wanted_t w;
        if (!topics) return w;
        w.emplace();
        for (const auto& t : *topics) w->emplace_back(t.name, t.partition_indexes);
        return w;
    };
    if (version >= 8) {
        for (const auto& g : body->groups) queries.push_back({g.group_id, to_wanted(g.topics)});
    } else {
        queries.push_back({body->group_id, to_wanted(body->topics)});
    }
    struct gather {
        request_ptr req;
        std::vector<fetch_result> results;
        std::vector<std::string> ids;
        size_t pending = 0;
    };
    auto state = std::make_shared<gather>();
    state->req = req;
    state->results.resize(queries.size());
    state->pending = queries.size();
    for (const auto& q : queries) state->ids.push_back(q.group_id);
    auto finish = [state, version]() {
        proto::offset_fetch_response resp;
        if (version >= 8) {
            for (size_t i = 0; i < state->results.size(); ++i) {
                proto::offset_fetch_response::offset_fetch_response_group g;
                g.group_id = state->ids[i];
                g.error_code = state->results[i].second;
                if (g.error_code == 0)
                    g.topics = by_topic<proto::offset_fetch_response::offset_fetch_response_topics,
                                        proto::offset_fetch_response::offset_fetch_response_partitions>(
                        state->results[i], version, false);
                resp.groups.push_back(std::move(g));
            }
        } else {
            const auto& res = state->results.front();
            // v0-1 carry errors per partition only; v2+ also (and instead) at the top.
            resp.error_code = res.second;
            resp.topics = by_topic<proto::offset_fetch_response::offset_fetch_response_topic,
                                   proto::offset_fetch_response::offset_fetch_response_partition>(res, version,
                                                                                                  version < 2);
        }
        state->req->respond(resp);
    };
    if (queries.empty()) return finish();
    shard& sh = req->sh();
    for (size_t i = 0; i < queries.size(); ++i) {
        int32_t p = groups::coordinator_partition(sh, queries[i].group_id);
        groups::on_coordinator(
            sh, p, [p, q = queries[i]](groups::group_manager& gm) { return gm.fetch_offsets(p, q.group_id, q.wanted); },
            [state, i, finish, q = queries[i]](fetch_result res) {
                // On a group-level error the requested partitions are still listed
                // (v0-1 clients read the error there).
                if (res.second != 0 && res.first.empty() && q.wanted)
                    for (const auto& [t, parts] : *q.wanted)
                        for (int32_t part : parts) res.first.push_back({t, part, std::nullopt});
                state->results[i] = std::move(res);
                if (--state->pending == 0) finish();
            });
    }
}

}  // namespace sluice::broker
