"""A TLS consumer (confluent-kafka) that stays connected while the
listener's certificate changes.

usage: confluent_tls_steady_consumer.py BOOTSTRAP TOPIC GROUP CA_FILE
Writes to stderr (line by line, for the test to follow): "got VALUE" for
each record, until it reads "last"; then "done JSON" with the records,
the client errors librdkafka reported and how many connections it made to
each broker (its statistics: a reconnect shows up there). Gives up after
90 s.
"""
import json
import sys
import time

from confluent_kafka import Consumer

bootstrap, topic, group, ca = sys.argv[1:5]
errors = []
connects = {}
disconnects = {}


def on_stats(text):
    for name, broker in json.loads(text).get("brokers", {}).items():
        if broker.get("nodeid", -1) >= 0 or broker.get("connects", 0) > 0:
            connects[name] = max(connects.get(name, 0), broker.get("connects", 0))
            disconnects[name] = max(disconnects.get(name, 0), broker.get("disconnects", 0))


def say(line):
    print(line, file=sys.stderr, flush=True)


consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "security.protocol": "SSL",
    "ssl.ca.location": ca,
    "ssl.endpoint.identification.algorithm": "https",
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
    say(f"got {value}")
    if value == "last":
        break
end = time.monotonic() + 0.3
while time.monotonic() < end:
    consumer.poll(0.1)
consumer.close()
say("done " + json.dumps({"seen": seen, "errors": errors, "connects": connects,
                          "disconnects": disconnects}))
