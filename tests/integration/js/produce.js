// kafkajs 2.2.4 driver for test_kafkajs.py.
//
// Usage: node produce.js SPEC.json
// SPEC: { brokers: ["127.0.0.1:p"], topic, numPartitions, sends: [
//           { acks, compression: "none"|"gzip",
//             messages: [{ partition, key, value, headers: {name: value} }] } ] }
// key/value/header values are base64 strings, or null for a null key/value.
// Prints one JSON object on stdout: { created, createdAgain, partitions, results: [RecordMetadata[]] }.
// Logs go to stderr so stdout stays machine-readable.
'use strict';

const fs = require('fs');
const { Kafka, CompressionTypes, logLevel } = require('kafkajs');

function toBuffer(b64) {
  return b64 === null ? null : Buffer.from(b64, 'base64');
}

function toMessage(m) {
  const headers = {};
  for (const [name, value] of Object.entries(m.headers || {})) headers[name] = toBuffer(value);
  return { partition: m.partition, key: toBuffer(m.key), value: toBuffer(m.value), headers };
}

const stderrLogger = () => ({ namespace, level, log }) => {
  process.stderr.write(`[kafkajs ${level}] ${namespace}: ${JSON.stringify(log)}\n`);
};

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const kafka = new Kafka({
    clientId: 'sluice-itest-kafkajs',
    brokers: spec.brokers,
    logLevel: logLevel.WARN,
    logCreator: stderrLogger,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { retries: 8, initialRetryTime: 200 },
  });

  const admin = kafka.admin();
  await admin.connect();
  const topicSpec = { topic: spec.topic, numPartitions: spec.numPartitions, replicationFactor: 1 };
  const created = await admin.createTopics({ topics: [topicSpec], waitForLeaders: true, timeout: 20000 });
  const createdAgain = await admin.createTopics({ topics: [topicSpec], waitForLeaders: true, timeout: 20000 });
  const md = await admin.fetchTopicMetadata({ topics: [spec.topic] });
  const partitions = md.topics[0].partitions.map((p) => ({ id: p.partitionId, leader: p.leader }));
  await admin.disconnect();

  const producer = kafka.producer({ allowAutoTopicCreation: false, idempotent: false });
  await producer.connect();
  const results = [];
  for (const send of spec.sends) {
    const compression = send.compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None;
    results.push(await producer.send({
      topic: spec.topic,
      acks: send.acks,
      compression,
      messages: send.messages.map(toMessage),
    }));
  }
  await producer.disconnect();
  process.stdout.write(JSON.stringify({ created, createdAgain, partitions, results }) + '\n');
}

main().catch((e) => {
  process.stderr.write(`kafkajs driver failed: ${e && e.stack ? e.stack : e}\n`);
  process.exit(1);
});
