// kafkajs 2.2.4 consumer-group driver for test_groups.py.
// Usage: node group_consume.js BROKER TOPIC GROUP COUNT MODE   (MODE: eachMessage | eachBatch)
// Consumes until COUNT distinct values were seen (bounded by 60 s), committing as it goes,
// then prints {"values": [...]} on stdout.
'use strict';
const { Kafka, logLevel } = require('kafkajs');

async function main() {
  const [broker, topic, groupId, countText, mode] = process.argv.slice(2);
  const count = Number(countText);
  const kafka = new Kafka({ brokers: [broker], clientId: 'itest-groups', logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10000, heartbeatInterval: 1000 });
  const values = [];
  let done;
  const finished = new Promise((resolve) => { done = resolve; });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const note = (m) => { values.push(m.value.toString()); if (values.length >= count) done(); };
  if (mode === 'eachBatch') {
    await consumer.run({ eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      for (const m of batch.messages) { note(m); resolveOffset(m.offset); }
      await heartbeat();
    } });
  } else {
    await consumer.run({ eachMessage: async ({ message }) => note(message) });
  }
  const timer = setTimeout(done, 60000);
  await finished;
  clearTimeout(timer);
  await consumer.disconnect();
  process.stdout.write(JSON.stringify({ values }) + '\n');
}
main().catch((e) => { process.stderr.write(String(e.stack || e) + '\n'); process.exit(1); });
