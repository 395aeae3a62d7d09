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
void handle_delete_topics(request_ptr req);
void handle_init_producer_id(request_ptr req);
void handle_describe_cluster(request_ptr req);

}  // namespace sluice::broker
