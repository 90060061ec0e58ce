// kafkajs with SASL (plain, scram-sha-256, scram-sha-512) over plaintext.
// usage: node kafkajs_sasl.js roundtrip|metadata BOOTSTRAP MECHANISM USERNAME PASSWORD [TOPIC GROUP]
// metadata: connects an admin client (which authenticates) and reads the
// cluster's brokers. roundtrip: produces three records and consumes them
// in a consumer group. Prints one JSON line and exits 0 — {"brokers": [...],
// "consumed": [...]} — or exits 1 with {"error", "name"} (no retries:
// a refused login fails at once); exits 2 after 60 s.
const { Kafka, logLevel } = require("kafkajs");

const [mode, bootstrap, mechanism, username, password, topic, group] = process.argv.slice(2);
const kafka = new Kafka({
  clientId: "sluice-auth-test",
  brokers: [bootstrap],
  sasl: { mechanism, username, password },
  connectionTimeout: 5000,
  retry: { retries: mode === "metadata" ? 0 : 5 },
  logLevel: logLevel.NOTHING,
});
const timer = setTimeout(() => { console.log(JSON.stringify({ error: "timed out" })); process.exit(2); }, 60000);

async function brokers() {
  const admin = kafka.admin();
  await admin.connect();
  const cluster = await admin.describeCluster();
  await admin.disconnect();
  return cluster.brokers.map((b) => `${b.host}:${b.port}`).sort();
}

(async () => {
  const seenBrokers = await brokers();
  if (mode === "metadata") {
    console.log(JSON.stringify({ brokers: seenBrokers }));
    clearTimeout(timer);
    return;
  }
  const sent = [0, 1, 2].map((i) => `kafkajs-auth-${i}`);
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: 1, messages: sent.map((value) => ({ value })) });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value.toString());
        if (sent.every((v) => seen.includes(v))) resolve();
      },
    });
  });
  await consumer.disconnect();
  console.log(JSON.stringify({ brokers: seenBrokers, consumed: seen }));
  clearTimeout(timer);
})().catch((e) => {
  console.log(JSON.stringify({ error: e.message, name: e.name }));
  process.exit(1);
});
