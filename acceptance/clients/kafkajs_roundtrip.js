// Produce and consume through Sluice with kafkajs.
// usage: node kafkajs_roundtrip.js BOOTSTRAP TOPIC GROUP
// Produces three records and consumes them in a consumer group; prints
// one JSON line; exits non-zero on failure or after 60 s.
const { Kafka, logLevel } = require("kafkajs");

const [bootstrap, topic, group] = process.argv.slice(2);
const kafka = new Kafka({ clientId: "sluice-test", brokers: [bootstrap], logLevel: logLevel.ERROR });
const timer = setTimeout(() => { console.error("timed out"); process.exit(2); }, 60000);

(async () => {
  const producer = kafka.producer();
  await producer.connect();
  await producer.send({ topic, acks: 1, messages: [0, 1, 2].map((i) => ({ key: `k${i}`, value: `kafkajs-${i}` })) });
  await producer.disconnect();
  const consumer = kafka.consumer({ groupId: group });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const seen = [];
  await new Promise((resolve) => {
    consumer.run({
      eachMessage: async ({ message }) => {
        seen.push(message.value.toString());
        if (seen.length === 3) resolve();
      },
    });
  });
  await consumer.disconnect();
  seen.sort();
  if (JSON.stringify(seen) !== JSON.stringify(["kafkajs-0", "kafkajs-1", "kafkajs-2"])) {
    throw new Error(`unexpected records ${seen}`);
  }
  console.log(JSON.stringify({ client: "kafkajs", first: seen }));
  clearTimeout(timer);
})().catch((e) => { console.error(e); process.exit(1); });
