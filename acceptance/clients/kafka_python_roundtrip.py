"""Produce and consume through Sluice with kafka-python.

usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC GROUP
Same checks as confluent_roundtrip.py, with a pure-Python client.
"""
import json
import sys

from kafka import KafkaConsumer, KafkaProducer

bootstrap, topic, group = sys.argv[1:4]

producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1)
for i in range(3):
    producer.send(topic, key=f"k{i}".encode(), value=f"python-{i}".encode()).get(timeout=30)


def consume(count):
    c = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20000,
    )
    seen = []
    for m in c:
        seen.append(m.value.decode())
        c.commit()
        if len(seen) == count:
            break
    c.close()
    return seen


first = consume(3)
assert sorted(first) == [f"python-{i}" for i in range(3)], first
producer.send(topic, value=b"after-commit").get(timeout=30)
producer.close()
second = consume(1)
assert second == ["after-commit"], f"committed offsets lost: {second}"
print(json.dumps({"client": "kafka-python", "first": first, "second": second}))
