"""A consumer that stays connected through configuration changes.

usage: steady_consumer.py BOOTSTRAP TOPIC GROUP
Prints "ready" once it has its first record, then consumes until it reads
the record "last"; prints one JSON line with the records and every client
error librdkafka reported (a dropped connection shows up there).
"""
import json
import sys
import time

from confluent_kafka import Consumer

bootstrap, topic, group = sys.argv[1:4]
errors = []
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": group,
    "auto.offset.reset": "earliest",
    "error_cb": lambda e: errors.append(str(e)),
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
consumer.close()
print(json.dumps({"seen": seen, "errors": errors}), flush=True)
sys.exit(0 if seen and seen[-1] == "last" else 1)
