"""confluent-kafka (librdkafka) over TLS with the host name checked: one
metadata request or a few records produced.

usage: confluent_tls_client.py metadata|produce BOOTSTRAP CA_FILE [--cert FILE --key FILE] [--topic T VALUE...]
metadata: prints one JSON line with the brokers the metadata named
(host:port) and exits 0, or prints the error and exits 1 within 10 s.
produce: produces the VALUEs to T (acks=1) and exits 0 once all are
delivered, 1 otherwise.
"""
import argparse
import json
import sys

from confluent_kafka import KafkaException, Producer

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["metadata", "produce"])
p.add_argument("bootstrap")
p.add_argument("ca")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--topic")
p.add_argument("values", nargs="*")
a = p.parse_intermixed_args()

config = {
    "bootstrap.servers": a.bootstrap,
    "security.protocol": "SSL",
    "ssl.ca.location": a.ca,
    "ssl.endpoint.identification.algorithm": "https",
    "acks": "1",
    "message.timeout.ms": 20000,
}
if a.cert:
    config.update({"ssl.certificate.location": a.cert, "ssl.key.location": a.key})
errors = []
config["error_cb"] = lambda e: errors.append(str(e))
producer = Producer(config)
if a.mode == "metadata":
    try:
        md = producer.list_topics(timeout=10)
    except KafkaException as e:
        print(f"error: {e}; client errors: {errors}")
        sys.exit(1)
    print(json.dumps({"brokers": sorted(f"{b.host}:{b.port}" for b in md.brokers.values())}))
    sys.exit(0)
for v in a.values:
    producer.produce(a.topic, value=v.encode())
left = producer.flush(30)
if left:
    print(f"error: {left} records not delivered; client errors: {errors}")
    sys.exit(1)
print(json.dumps({"produced": a.values}))
