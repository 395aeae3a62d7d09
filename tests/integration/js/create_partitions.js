// kafkajs admin.createPartitions: grows a topic, then reports the partition ids Metadata
// shows and the error a shrinking request gets. argv: bootstrap topic.
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [bootstrap, topic] = process.argv.slice(2);
  const kafka = new Kafka({ clientId: 'itest-partitions', brokers: [bootstrap], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const out = {};
  try {
    out.created = await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] });
    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    out.partitions = md.topics[0].partitions.map((p) => ({ id: p.partitionId, leader: p.leader }));
    try {
      await admin.createPartitions({ topicPartitions: [{ topic, count: 2 }] });
      out.shrinkError = null;
    } catch (e) {
      out.shrinkError = (e.errors && e.errors[0] && e.errors[0].type) || e.type || e.message;
    }
  } finally {
    await admin.disconnect();
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => { console.error(e); process.exit(1); });
