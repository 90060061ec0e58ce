"""Produce and consume over TLS with confluent-kafka (librdkafka 2.x),
checking the server's certificate and host name against CA_FILE.

usage: confluent_tls_roundtrip.py BOOTSTRAP TOPIC GROUP CA_FILE [CERT_FILE KEY_FILE]
With CERT_FILE and KEY_FILE the client presents that certificate (mTLS).
Prints one JSON line: the records consumed and the brokers the cluster's
metadata named (host:port), so a test can see which names it was given.
"""
import json
import sys
import time

from confluent_kafka import Consumer, Producer

bootstrap, topic, group, ca = sys.argv[1:5]
tls = {
    "bootstrap.servers": bootstrap,
    "security.protocol": "SSL",
    "ssl.ca.location": ca,
    "ssl.endpoint.identification.algorithm": "https",
}
if len(sys.argv) > 6:
    tls["ssl.certificate.location"], tls["ssl.key.location"] = sys.argv[5:7]
deadline = time.monotonic() + 60

producer = Producer({**tls, "acks": "1"})
for i in range(3):
    producer.produce(topic, value=f"tls-{i}".encode())
assert producer.flush(30) == 0, "records not delivered"
brokers = sorted(f"{b.host}:{b.port}" for b in producer.list_topics(timeout=30).brokers.values())

consumer = Consumer({**tls, "group.id": group, "auto.offset.reset": "earliest"})
consumer.subscribe([topic])
seen = []
while len(seen) < 3 and time.monotonic() < deadline:
    m = consumer.poll(1.0)
    if m is None or m.error():
        continue
    seen.append(m.value().decode())
consumer.close()
assert len(seen) == 3, f"consumed {seen}"
print(json.dumps({"consumed": seen, "brokers": brokers}))
