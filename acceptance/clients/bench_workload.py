"""The benchmark workload, run the same way against every target.

usage: bench_workload.py BOOTSTRAP TOPIC RECORDS LATENCY_SAMPLES [CA_FILE]
Throughput: RECORDS records of 1 KiB (a JSON object), acks=1, produced as fast as
librdkafka batches them, then consumed back from the start. Latency:
LATENCY_SAMPLES sequential single-record produce round trips (send, wait
for the ack). With CA_FILE, every connection is TLS and trusts that CA.
Prints one JSON line.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
records, samples = int(sys.argv[3]), int(sys.argv[4])
tls = {"security.protocol": "SSL", "ssl.ca.location": sys.argv[5]} if len(sys.argv) > 5 else {}
# A JSON object of exactly 1 KiB (record policies that read JSON see a
# real document; everyone else sees 1 KiB).
payload = json.dumps({"id": 1, "pad": ""}).encode()
payload = json.dumps({"id": 1, "pad": "x" * (1024 - len(payload))}).encode()
assert len(payload) == 1024

producer = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 5, "queue.buffering.max.messages": 1000000, **tls})
start = time.perf_counter()
for i in range(records):
    while True:
        try:
            producer.produce(topic, value=payload)
            break
        except BufferError:
            producer.poll(0.01)
assert producer.flush(120) == 0
produce_s = time.perf_counter() - start

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{time.time()}", "auto.offset.reset": "earliest", "enable.auto.commit": False, "fetch.max.bytes": 52428800, **tls})
consumer.subscribe([topic])
got = 0
start = None
deadline = time.monotonic() + 180
while got < records and time.monotonic() < deadline:
    batch = consumer.consume(num_messages=10000, timeout=1.0)
    if batch and start is None:
        start = time.perf_counter()
    got += sum(1 for m in batch if not m.error())
consume_s = time.perf_counter() - (start or time.perf_counter())
consumer.close()
assert got >= records, f"consumed {got} of {records}"

latencies = []
single = Producer({"bootstrap.servers": bootstrap, "acks": "1", "linger.ms": 0, **tls})
single.produce(topic, value=payload)
single.flush(30)
for _ in range(samples):
    t = time.perf_counter()
    single.produce(topic, value=payload)
    single.flush(30)
    latencies.append((time.perf_counter() - t) * 1000)
latencies.sort()
mb = records * 1024 / 1e6
print(json.dumps({
    "produce_rps": records / produce_s,
    "produce_mbps": mb / produce_s,
    "consume_rps": records / max(consume_s, 1e-9),
    "consume_mbps": mb / max(consume_s, 1e-9),
    "p50_ms": latencies[len(latencies) // 2],
    "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
}))
