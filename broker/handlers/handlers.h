#pragma once
// One function per API; each lives in its own file under broker/handlers/.
#include "broker/request.h"

namespace sluice::broker {

void handle_produce(request_ptr req);
void handle_fetch(request_ptr req);
void handle_list_offsets(request_ptr req);
void handle_metadata(request_ptr req);
void handle_api_versions(request_ptr req);
void handle_api_versions_unsupported(request_ptr req);
void handle_create_topics(request_ptr req);
void handle_create_partitions(request_ptr req);
void handle_delete_topics(request_ptr req);
void handle_init_producer_id(request_ptr req);
void handle_describe_cluster(request_ptr req);
// Consumer groups (broker/groups).
void handle_find_coordinator(request_ptr req);
void handle_join_group(request_ptr req);
void handle_sync_group(request_ptr req);
void handle_heartbeat(request_ptr req);
void handle_leave_group(request_ptr req);
void handle_offset_commit(request_ptr req);
void handle_offset_fetch(request_ptr req);
void handle_describe_groups(request_ptr req);
void handle_list_groups(request_ptr req);
void handle_delete_groups(request_ptr req);
void handle_offset_delete(request_ptr req);
// Configs and records administration (broker/configs).
void handle_describe_configs(request_ptr req);
void handle_alter_configs(request_ptr req);
void handle_incremental_alter_configs(request_ptr req);
void handle_delete_records(request_ptr req);

}  // namespace sluice::broker
