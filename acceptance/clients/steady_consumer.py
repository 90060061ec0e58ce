"""A consumer that stays connected through configuration changes.

usage: steady_consumer.py BOOTSTRAP TOPIC GROUP
Prints "ready" once it has its first record, then consumes until it reads
the record "last"; prints one JSON line with the records, every client
error librdkafka reported, and per broker how many connections librdkafka
attempted and how many were closed under it (its statistics; a silent
reconnect shows up as a disconnect).
"""
import json
import sys
import time

from confluent_kafka import Consumer

bootstrap, topic, group = sys.argv[1:4]
errors = []
connects = {}
disconnects = {}


def on_stats(text):
    for name, broker in json.loads(text).get("brokers", {}).items():
        if broker.get("nodeid", -1) >= 0 or broker.get("connects", 0) > 0:
            connects[name] = max(connects.get(name, 0), broker.get("connects", 0))
            disconnects[name] = max(disconnects.get(name, 0), broker.get("disconnects", 0))


consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "error_cb": lambda e: errors.append(str(e)),
    "statistics.interval.ms": 100,
    "stats_cb": on_stats,
})
consumer.subscribe([topic])
seen = []
deadline = time.monotonic() + 90
while time.monotonic() < deadline:
    m = consumer.poll(0.5)
    if m is None or m.error():
        continue
    value = m.value().decode()
    seen.append(value)
    if len(seen) == 1:
        print("ready", flush=True)
    if value == "last":
        break
# One more statistics round after the last record.
end = time.monotonic() + 0.3
while time.monotonic() < end:
    consumer.poll(0.1)
consumer.close()
print(json.dumps({"seen": seen, "errors": errors, "connects": connects,
                  "disconnects": disconnects}), flush=True)
sys.exit(0 if seen and seen[-1] == "last" else 1)
