// kafkajs admin API sweep: every call kafkajs's admin client makes against one topic,
// with the answers printed as one JSON object for pytest to check.
// argv: bootstrap topic group. The topic must not exist; the group must have no members.
const { Kafka, logLevel, ConfigResourceTypes } = require('kafkajs');

const HOUR_MS = 3600 * 1000;

async function errorOf(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    const inner = (e.errors && e.errors[0]) || (e.groups && e.groups[0] && e.groups[0].error);
    return (inner && inner.type) || e.type || e.name;
  }
}

async function main() {
  const [bootstrap, topic, groupId] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'itest-admin-sweep', brokers: [bootstrap], logLevel: logLevel.NOTHING,
                            retry: { retries: 3 } });
  const admin = kafka.admin();
  await admin.connect();
  const out = {};
  try {
    out.created = await admin.createTopics({
      topics: [{ topic, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '7200000' }] }],
      waitForLeaders: true,
    });
    out.createdAgain = await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });

    // Ten records on partition 0 with timestamps one second apart, ending an hour ago.
    const base = Date.now() - HOUR_MS - 10 * 1000;
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 10 }, (_, i) => ({
        partition: 0, key: `k${i}`, value: `v${i}`, timestamp: String(base + i * 1000),
      })),
    });
    await producer.disconnect();
    out.base = base;

    out.listTopics = await admin.listTopics();
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    out.metadata = md.topics.map((t) => ({ name: t.name, partitions: t.partitions.map((p) => [p.partitionId, p.leader]) }));
    out.cluster = await admin.describeCluster();
    out.offsets = await admin.fetchTopicOffsets(topic);
    out.offsetsAtTs = await admin.fetchTopicOffsetsByTimestamp(topic, base + 4500);
    out.offsetsBeforeAll = await admin.fetchTopicOffsetsByTimestamp(topic, base - HOUR_MS);

    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms', 'cleanup.policy'] }],
    });
    out.topicConfigs = described.resources[0].configEntries.map((c) => [c.configName, c.configValue, c.configSource]);
    const broker = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.BROKER, name: String(out.cluster.brokers[0].nodeId) }],
    });
    out.brokerConfigNames = broker.resources[0].configEntries.map((c) => c.configName);
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'retention.ms', value: '3600000' }] }],
    });
    const after = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
    });
    out.alteredRetention = after.resources[0].configEntries[0].configValue;
    out.alterUnknownKey = await errorOf(admin.alterConfigs({
      validateOnly: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'no.such.key', value: '1' }] }],
    }));

    // Group offsets: set (a group with no members), read back, reset to earliest.
    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '4' }, { partition: 1, offset: '0' }] });
    out.fetchedOffsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    await admin.resetOffsets({ groupId, topic, earliest: true });
    out.resetOffsets = await admin.fetchOffsets({ groupId, topics: [topic] });
    out.groups = (await admin.listGroups()).groups;
    out.describedGroups = (await admin.describeGroups([groupId])).groups
      .map((g) => ({ groupId: g.groupId, state: g.state, protocolType: g.protocolType, members: g.members.length }));

    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
    out.partitionsAfterGrow = (await admin.fetchTopicOffsets(topic)).map((p) => p.partition);
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '3' }] });
    out.offsetsAfterDelete = await admin.fetchTopicOffsets(topic);
    out.deleteBeyondEnd = await errorOf(admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '99' }] }));

    out.deletedGroups = await admin.deleteGroups([groupId]);
    out.deleteUnknownGroup = await errorOf(admin.deleteGroups([`${groupId}-never`]));
    await admin.deleteTopics({ topics: [topic] });
    out.topicsAfterDelete = await admin.listTopics();
  } finally {
    await admin.disconnect();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
