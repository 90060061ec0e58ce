"""Produce and consume through Sluice with confluent-kafka (librdkafka 2.x).

usage: confluent_roundtrip.py BOOTSTRAP TOPIC GROUP
Produces three records, consumes them in a consumer group and commits,
then a second consumer of the same group must start after the commit.
Prints one JSON line with what it saw; exits non-zero on any failure.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer

bootstrap, topic, group = sys.argv[1:4]
deadline = time.monotonic() + 60

producer = Producer({"bootstrap.servers": bootstrap, "acks": "1"})
for i in range(3):
    producer.produce(topic, key=f"k{i}".encode(), value=f"confluent-{i}".encode())
assert producer.flush(30) == 0, "records not delivered"


def consume(count):
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    c.subscribe([topic])
    seen = []
    while len(seen) < count and time.monotonic() < deadline:
        m = c.poll(1.0)
        if m is None or m.error():
            continue
        seen.append(m.value().decode())
        c.commit(message=m, asynchronous=False)
    c.close()
    return seen


first = consume(3)
assert sorted(first) == [f"confluent-{i}" for i in range(3)], first
producer.produce(topic, value=b"after-commit")
assert producer.flush(30) == 0
second = consume(1)
assert second == ["after-commit"], f"committed offsets lost: {second}"
print(json.dumps({"client": "confluent-kafka", "first": first, "second": second}))
