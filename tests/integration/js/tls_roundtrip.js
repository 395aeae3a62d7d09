// kafkajs 2.2.4 over TLS, for test_tls.py.
// Usage: node tls_roundtrip.js BROKER TOPIC CA_FILE COUNT
// Creates TOPIC, produces COUNT messages (value "tls-<i>", key "k<i>") over SSL, then reads
// them back with a consumer group (its FindCoordinator/JoinGroup/Fetch all go over SSL)
// until COUNT were seen (bounded by 60 s). Prints {"values": [...]} on stdout.
'use strict';
const fs = require('fs');
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic, caFile, countText] = process.argv.slice(2);
  const count = Number(countText);
  const kafka = new Kafka({
    brokers: [broker],
    clientId: 'itest-tls',
    ssl: { ca: [fs.readFileSync(caFile, 'utf8')] },
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    retry: { retries: 8, initialRetryTime: 200 },
  });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic, numPartitions: 2, replicationFactor: 1 }], waitForLeaders: true });
  await admin.disconnect();

  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const messages = [];
  for (let i = 0; i < count; ++i) messages.push({ key: `k${i}`, value: `tls-${i}` });
  await producer.send({ topic, acks: -1, messages });
  await producer.disconnect();

  const consumer = kafka.consumer({ groupId: `${topic}-group`, sessionTimeout: 10000, heartbeatInterval: 1000 });
  const values = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      values.push(message.value.toString());
      if (values.length >= count) done();
    },
  });
  const timer = setTimeout(done, 60000);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  process.stdout.write(JSON.stringify({ values }) + '\n');
}
main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
