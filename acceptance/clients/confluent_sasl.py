"""confluent-kafka (librdkafka) with client authentication: SASL (PLAIN,
SCRAM) over plaintext or TLS, a client certificate, or nothing.

usage: confluent_sasl.py roundtrip|metadata BOOTSTRAP [options]
  --mechanism M --username U --password P   SASL (PLAIN, SCRAM-SHA-256, ...)
  --ca FILE                                 speak TLS, trusting this CA (host name checked)
  --cert FILE --key FILE                    present this client certificate
  --topic T --group G                       for roundtrip

security.protocol follows: SASL_SSL (SASL and --ca), SASL_PLAINTEXT,
SSL (--ca only) or PLAINTEXT.

metadata: bootstraps and reads the cluster's metadata.
roundtrip: produces three records, then consumes them in a consumer group.
Prints one JSON line and exits 0 — {"brokers": [...], "consumed": [...]} —
or exits 1 with {"error": ..., "errors": [...]} (the client's error
callbacks in order) within about 15 s: an authentication error ends it at
once, without the client's reconnect loop.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["roundtrip", "metadata"])
p.add_argument("bootstrap")
p.add_argument("--mechanism")
p.add_argument("--username", default="")
p.add_argument("--password", default="")
p.add_argument("--ca")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--topic")
p.add_argument("--group")
a = p.parse_args()

config = {"bootstrap.servers": a.bootstrap, "reconnect.backoff.max.ms": 1000}
protocol = ("SASL_" if a.mechanism else "") + ("SSL" if a.ca else "PLAINTEXT")
config["security.protocol"] = protocol
if a.mechanism:
    config.update({
        "sasl.mechanism": a.mechanism,
        "sasl.username": a.username,
        "sasl.password": a.password,
    })
if a.ca:
    config.update({
        "ssl.ca.location": a.ca,
        "ssl.endpoint.identification.algorithm": "https",
    })
if a.cert:
    config.update({"ssl.certificate.location": a.cert, "ssl.key.location": a.key})

errors = []


def on_error(e):
    errors.append({"code": e.name(), "message": e.str()})
    print(f"client error: {e}", file=sys.stderr)


def fail(why):
    print(json.dumps({"error": why, "errors": errors}))
    sys.exit(1)


def authentication_failed():
    return next((e for e in errors if e["code"] == "_AUTHENTICATION"), None)


def metadata(client, wait=12.0):
    """The brokers the metadata names, or fail(): an authentication error
    ends the wait at once."""
    deadline = time.monotonic() + wait
    last = None
    while time.monotonic() < deadline:
        client.poll(0)  # serves error_cb
        if (auth := authentication_failed()) is not None:
            fail(auth["message"])
        try:
            md = client.list_topics(timeout=1)
            return sorted(f"{b.host}:{b.port}" for b in md.brokers.values())
        except KafkaException as e:
            last = str(e)
    client.poll(0)
    if (auth := authentication_failed()) is not None:
        fail(auth["message"])
    fail(f"no metadata within {wait} s: {last}")


producer = Producer({**config, "acks": "1", "message.timeout.ms": 20000, "error_cb": on_error})
brokers = metadata(producer)
if a.mode == "metadata":
    print(json.dumps({"brokers": brokers, "protocol": protocol}))
    sys.exit(0)

sent = [f"confluent-auth-{i}" for i in range(3)]
for v in sent:
    producer.produce(a.topic, value=v.encode())
left = producer.flush(30)
if left:
    fail(f"{left} records not delivered")

consumer = Consumer({
    **config,
    "group.id": a.group,
    "auto.offset.reset": "earliest",
    "error_cb": on_error,
})
consumer.subscribe([a.topic])
seen = []
deadline = time.monotonic() + 40
while not set(sent) <= set(seen) and time.monotonic() < deadline:
    if (auth := authentication_failed()) is not None:
        fail(auth["message"])
    m = consumer.poll(0.5)
    if m is None:
        continue
    if m.error():
        if m.error().code() != KafkaError._PARTITION_EOF:
            print(f"consume error: {m.error()}", file=sys.stderr)
        continue
    seen.append(m.value().decode())
consumer.close()
if not set(sent) <= set(seen):
    fail(f"consumed {seen}, expected {sent}")
print(json.dumps({"brokers": brokers, "consumed": seen, "protocol": protocol}))
