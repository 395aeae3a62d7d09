// The topic/broker config table: validation messages, effective values and sources,
// synonyms in Kafka's order, and the edits AlterConfigs / IncrementalAlterConfigs make.
#include "broker/configs/alter.h"
#include "broker/configs/config_table.h"
#include "broker/protocol/errors.h"

#include <doctest/doctest.h>

using namespace sluice::broker;
using namespace sluice::broker::configs;

namespace {
const described_config& find(const std::vector<described_config>& v, const std::string& name) {
    for (const auto& d : v)
        if (d.name == name) return d;
    FAIL("missing config " << name);
    return v.front();
}
}  // namespace

TEST_CASE("topic config validation: unknown keys, types, ranges, enums, lists") {
    CHECK(validate_topic_config("retention.ms", "86400000") == std::nullopt);
    CHECK(validate_topic_config("retention.ms", "-1") == std::nullopt);
    CHECK(*validate_topic_config("retention.ms", "-2") ==
          "Invalid value -2 for configuration retention.ms: Value must be at least -1");
    CHECK(*validate_topic_config("retention.ms", "abc") ==
          "Invalid value abc for configuration retention.ms: Not a number of type LONG");
    CHECK(*validate_topic_config("no.such.key", "1") == "Unknown topic config name: no.such.key");
    CHECK(*validate_topic_config("segment.bytes", "13") ==
          "Invalid value 13 for configuration segment.bytes: Value must be at least 14");
    CHECK(validate_topic_config("segment.bytes", "3000000000").has_value());  // beyond INT
    CHECK(validate_topic_config("message.timestamp.type", "LogAppendTime") == std::nullopt);
    CHECK(*validate_topic_config("message.timestamp.type", "Wall") ==
          "Invalid value Wall for configuration message.timestamp.type: String must be one of: CreateTime, "
          "LogAppendTime");
    CHECK(validate_topic_config("cleanup.policy", "compact,delete") == std::nullopt);
    CHECK(validate_topic_config("cleanup.policy", "compact, bogus").has_value());
    CHECK(validate_topic_config("min.cleanable.dirty.ratio", "0.25") == std::nullopt);
    CHECK(validate_topic_config("min.cleanable.dirty.ratio", "1.5").has_value());
    CHECK(validate_topic_config("unclean.leader.election.enable", "TRUE") == std::nullopt);
    CHECK(validate_topic_config("unclean.leader.election.enable", "yes").has_value());
    CHECK(validate_topic_config("flush.messages", "0").has_value());
    CHECK(validate_topic_config("min.insync.replicas", "0").has_value());
    // Relations between keys.
    CHECK(validate_topic_configs({{"min.compaction.lag.ms", "10"}, {"max.compaction.lag.ms", "5"}}).has_value());
    CHECK(validate_topic_configs({{"min.compaction.lag.ms", "5"}, {"max.compaction.lag.ms", "10"}}) == std::nullopt);
}

TEST_CASE("broker keys of server.properties are validated with the same table") {
    CHECK(validate_broker_keys({{"log.retention.hours", "24"}, {"log.cleanup.policy", "compact"}}) == std::nullopt);
    CHECK(validate_broker_keys({{"log.retention.hours", "x"}}).has_value());
    CHECK(validate_broker_keys({{"log.retention.check.interval.ms", "0"}}).has_value());
    CHECK(validate_broker_keys({{"unrelated.key", "whatever"}}) == std::nullopt);
}

TEST_CASE("effective values: override, then broker synonym (scaled), then default") {
    std::map<std::string, std::string> broker = {{"log.retention.hours", "2"}, {"log.segment.bytes", "1048576"}};
    auto eff = effective_topic_configs({}, broker);
    CHECK(eff["retention.ms"] == "7200000");
    CHECK(eff["segment.bytes"] == "1048576");
    CHECK(eff["cleanup.policy"] == "delete");
    // log.retention.ms wins over hours; the override wins over both.
    broker["log.retention.ms"] = "1000";
    CHECK(effective_topic_configs({}, broker)["retention.ms"] == "1000");
    CHECK(effective_topic_configs({{"retention.ms", "5"}}, broker)["retention.ms"] == "5");

    auto s = make_partition_settings({{"retention.bytes", "4096"}, {"message.timestamp.type", "LogAppendTime"},
                                      {"flush.messages", "10"}},
                                     broker);
    CHECK(s.log.retention_ms == 1000);
    CHECK(s.log.retention_bytes == 4096);
    CHECK(s.log.segment_bytes == 1048576);
    CHECK(s.log.message_timestamp_type == sluice::storage::timestamp_type::log_append_time);
    CHECK(s.log.flush_interval_messages == 10);
    CHECK(s.log.flush_interval_ms == INT64_MAX);
    // A bad stored value falls back to the default instead of breaking the log.
    CHECK(make_partition_settings({{"segment.bytes", "oops"}}, {}).log.segment_bytes == 1073741824);
}

TEST_CASE("partition settings: compaction, delayed delete and flush keys reach storage") {
    using sluice::storage::cleanup_compact;
    using sluice::storage::cleanup_delete;
    // Kafka's defaults when nothing is set.
    auto d = make_partition_settings({}, {}).log;
    CHECK(d.cleanup_policy == cleanup_delete);
    CHECK(d.delete_retention_ms == 86400000);
    CHECK(d.min_cleanable_dirty_ratio == doctest::Approx(0.5));
    CHECK(d.min_compaction_lag_ms == 0);
    CHECK(d.max_compaction_lag_ms == INT64_MAX);
    CHECK(d.file_delete_delay_ms == 60000);
    CHECK(d.flush_interval_messages == INT64_MAX);
    CHECK(d.flush_interval_ms == INT64_MAX);

    // Broker-level fallbacks (server.properties names).
    std::map<std::string, std::string> broker = {
        {"log.cleanup.policy", "compact"},          {"log.cleaner.delete.retention.ms", "1000"},
        {"log.cleaner.min.cleanable.ratio", "0.25"}, {"log.cleaner.min.compaction.lag.ms", "5"},
        {"log.cleaner.max.compaction.lag.ms", "9000"}, {"log.segment.delete.delay.ms", "77"},
        {"log.flush.interval.messages", "3"},        {"log.flush.interval.ms", "400"},
    };
    auto b = make_partition_settings({}, broker).log;
    CHECK(b.cleanup_policy == cleanup_compact);
    CHECK(b.compacted());
    CHECK(!b.deletes());
    CHECK(b.delete_retention_ms == 1000);
    CHECK(b.min_cleanable_dirty_ratio == doctest::Approx(0.25));
    CHECK(b.min_compaction_lag_ms == 5);
    CHECK(b.max_compaction_lag_ms == 9000);
    CHECK(b.file_delete_delay_ms == 77);
    CHECK(b.flush_interval_messages == 3);
    CHECK(b.flush_interval_ms == 400);

    // Topic overrides win over the broker keys.
    auto t = make_partition_settings({{"cleanup.policy", "compact,delete"},
                                      {"delete.retention.ms", "10"},
                                      {"min.cleanable.dirty.ratio", "0.01"},
                                      {"min.compaction.lag.ms", "20"},
                                      {"max.compaction.lag.ms", "30"},
                                      {"file.delete.delay.ms", "40"},
                                      {"flush.messages", "50"},
                                      {"flush.ms", "60"}},
                                     broker)
                 .log;
    CHECK(t.cleanup_policy == (cleanup_compact | cleanup_delete));
    CHECK(t.delete_retention_ms == 10);
    CHECK(t.min_cleanable_dirty_ratio == doctest::Approx(0.01));
    CHECK(t.min_compaction_lag_ms == 20);
    CHECK(t.max_compaction_lag_ms == 30);
    CHECK(t.file_delete_delay_ms == 40);
    CHECK(t.flush_interval_messages == 50);
    CHECK(t.flush_interval_ms == 60);

    // Unparseable stored values fall back to the topic default.
    auto bad = make_partition_settings({{"cleanup.policy", "shred"}, {"min.cleanable.dirty.ratio", "lots"}}, {}).log;
    CHECK(bad.cleanup_policy == cleanup_delete);
    CHECK(bad.min_cleanable_dirty_ratio == doctest::Approx(0.5));
}

TEST_CASE("broker keys of the duties: defaults and parsing") {
    CHECK(broker_long({}, "log.cleaner.backoff.ms", -1) == 15000);
    CHECK(broker_long({{"log.cleaner.backoff.ms", "200"}}, "log.cleaner.backoff.ms", -1) == 200);
    CHECK(broker_long({}, "log.max.open.files", -1) == 0);
    CHECK(broker_bool({}, "log.cleaner.enable", false));
    CHECK(!broker_bool({{"log.cleaner.enable", "FALSE"}}, "log.cleaner.enable", true));
    CHECK(broker_bool({{"log.cleaner.enable", "maybe"}}, "log.cleaner.enable", false));  // table default
    CHECK(validate_broker_keys({{"log.max.open.files", "-3"}}).has_value());
    CHECK(!validate_broker_keys({{"log.cleaner.threads", "2"}}).has_value());
}

TEST_CASE("describe topic: sources and synonyms in Kafka's order") {
    std::map<std::string, std::string> broker = {{"log.segment.bytes", "1048576"}, {"log.retention.hours", "1"}};
    auto all = describe_topic({{"segment.bytes", "2048"}}, broker, std::nullopt);
    CHECK(all.size() == topic_configs().size());

    const auto& seg = find(all, "segment.bytes");
    CHECK(seg.value == "2048");
    CHECK(seg.source == config_source::dynamic_topic);
    CHECK(!seg.read_only);
    CHECK(seg.type == config_type::int32);
    REQUIRE(seg.synonyms.size() == 3);
    CHECK(seg.synonyms[0] == synonym_entry{"segment.bytes", "2048", config_source::dynamic_topic});
    CHECK(seg.synonyms[1] == synonym_entry{"log.segment.bytes", "1048576", config_source::static_broker});
    CHECK(seg.synonyms[2] == synonym_entry{"log.segment.bytes", "1073741824", config_source::default_config});

    // retention.ms comes from log.retention.hours, which is not the primary synonym
    // (log.retention.ms): Kafka lists no synonyms and reports DEFAULT_CONFIG.
    const auto& ret = find(all, "retention.ms");
    CHECK(ret.value == "3600000");
    CHECK(ret.source == config_source::default_config);
    CHECK(ret.synonyms.empty());

    const auto& policy = find(all, "cleanup.policy");
    CHECK(policy.value == "delete");
    CHECK(policy.source == config_source::default_config);
    REQUIRE(policy.synonyms.size() == 1);
    CHECK(policy.synonyms[0].name == "log.cleanup.policy");

    auto some = describe_topic({}, broker, std::vector<std::string>{"retention.bytes", "nope"});
    REQUIRE(some.size() == 1);
    CHECK(some[0].name == "retention.bytes");
    CHECK(some[0].source == config_source::default_config);
}

TEST_CASE("describe broker: static keys, defaults, read-only") {
    auto all = describe_broker({{"broker.id", "7"}, {"log.retention.hours", "5"}}, std::nullopt);
    const auto& id = find(all, "broker.id");
    CHECK(id.value == "7");
    CHECK(id.source == config_source::static_broker);
    CHECK(id.read_only);
    const auto& hours = find(all, "log.retention.hours");
    CHECK(hours.value == "5");
    CHECK(hours.type == config_type::int32);
    const auto& check = find(all, "log.retention.check.interval.ms");
    CHECK(check.value == "300000");
    CHECK(check.source == config_source::default_config);
    const auto& ms = find(all, "log.retention.ms");
    CHECK(!ms.value.has_value());  // null default, as Kafka reports it
    CHECK(broker_long({{"log.retention.check.interval.ms", "250"}}, "log.retention.check.interval.ms", 1) == 250);
    CHECK(broker_long({}, "log.retention.check.interval.ms", 1) == 300000);
}

TEST_CASE("AlterConfigs replaces every override; validation refuses before writing") {
    std::map<std::string, std::string> current = {{"retention.ms", "1000"}, {"segment.bytes", "4096"}};
    auto edit = replace_all_edit({{"retention.bytes", std::string("100")}});
    CHECK(!edit(current).has_value());
    CHECK(current == std::map<std::string, std::string>{{"retention.bytes", "100"}});

    auto bad = replace_all_edit({{"retention.bytes", std::string("x")}});
    auto r = bad(current);
    REQUIRE(r.has_value());
    CHECK(r->first == static_cast<int16_t>(sluice::proto::error_code::invalid_config));
    CHECK(current == std::map<std::string, std::string>{{"retention.bytes", "100"}});  // untouched

    auto null_value = replace_all_edit({{"retention.bytes", std::nullopt}});
    REQUIRE(null_value(current).has_value());
}

TEST_CASE("IncrementalAlterConfigs: set, delete, append, subtract") {
    std::map<std::string, std::string> current = {{"retention.ms", "1000"}};
    auto edit = incremental_edit({{"segment.bytes", 0, std::string("2048")},
                                  {"retention.ms", 1, std::nullopt},
                                  {"cleanup.policy", 2, std::string("compact")}});
    CHECK(!edit(current).has_value());
    CHECK(current ==
          std::map<std::string, std::string>{{"segment.bytes", "2048"}, {"cleanup.policy", "delete,compact"}});
    auto sub = incremental_edit({{"cleanup.policy", 3, std::string("delete")}});
    CHECK(!sub(current).has_value());
    CHECK(current.at("cleanup.policy") == "compact");

    CHECK(precheck_incremental({{"retention.ms", 2, std::string("5")}})->error_code ==
          static_cast<int16_t>(sluice::proto::error_code::invalid_config));  // append on a LONG
    CHECK(precheck_incremental({{"retention.ms", 9, std::string("5")}})->error_code ==
          static_cast<int16_t>(sluice::proto::error_code::invalid_request));
    CHECK(precheck_incremental({{"a.b", 0, std::string("5")}})->error_code ==
          static_cast<int16_t>(sluice::proto::error_code::invalid_config));
    CHECK(precheck_incremental({{"retention.ms", 0, std::string("5")}, {"retention.ms", 1, std::nullopt}})
              ->error_code == static_cast<int16_t>(sluice::proto::error_code::invalid_request));
    CHECK(!precheck_incremental({{"retention.ms", 0, std::string("5")}}).has_value());
}

TEST_CASE("broker resources cannot be altered dynamically") {
    CHECK(alter_broker(1, "1", {}).error_code == 0);
    CHECK(alter_broker(1, "", {}).error_code == 0);
    auto r = alter_broker(1, "1", {"log.retention.hours"});
    CHECK(r.error_code == static_cast<int16_t>(sluice::proto::error_code::invalid_request));
    CHECK(alter_broker(1, "2", {}).error_code == static_cast<int16_t>(sluice::proto::error_code::invalid_request));
}
