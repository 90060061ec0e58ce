"""kafka-python over TLS (or plaintext), with the server's host name checked.

usage: kafka_python_tls.py roundtrip|metadata BOOTSTRAP [options]
  --ca FILE          trust this CA and speak TLS (without it: PLAINTEXT)
  --cert FILE --key FILE   present this client certificate (mTLS)
  --no-check-hostname      do not check the certificate's names (SNI is
                           still sent: to reach a name no certificate has)
  --topic T --group G      for roundtrip

roundtrip: produces three records and consumes (in a group) until it has
read them back.
metadata: only bootstraps and reads the cluster's metadata.
Either prints one JSON line (the records consumed, and the brokers the
metadata named as host:port) and exits 0, or prints the error and exits 1
(a refused client fails within seconds: no retries past the timeouts).
"""
import argparse
import json
import sys
import time

from kafka import KafkaConsumer, KafkaProducer

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["roundtrip", "metadata"])
p.add_argument("bootstrap")
p.add_argument("--ca")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--no-check-hostname", action="store_true")
p.add_argument("--topic")
p.add_argument("--group")
a = p.parse_args()

common = {
    "bootstrap_servers": a.bootstrap,
    "request_timeout_ms": 10000,
    "bootstrap_timeout_ms": 8000,
}
if a.ca:
    common.update(
        security_protocol="SSL",
        ssl_cafile=a.ca,
        ssl_check_hostname=not a.no_check_hostname,
    )
    if a.cert:
        common.update(ssl_certfile=a.cert, ssl_keyfile=a.key)


def brokers(consumer):
    consumer.topics()
    return sorted(f"{b.host}:{b.port}" for b in consumer._client.cluster.brokers())


try:
    if a.mode == "metadata":
        c = KafkaConsumer(**common)
        seen_brokers = brokers(c)
        c.close()
        print(json.dumps({"brokers": seen_brokers}))
        sys.exit(0)

    producer = KafkaProducer(acks=1, **common)
    sent = [f"kp-tls-{i}" for i in range(3)]
    for v in sent:
        producer.send(a.topic, value=v.encode()).get(timeout=30)
    producer.close()
    c = KafkaConsumer(
        a.topic,
        group_id=a.group,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20000,
        **common,
    )
    # The topic may hold other clients' records: read until ours are in.
    seen = []
    deadline = time.monotonic() + 60
    for m in c:
        seen.append(m.value.decode())
        if set(sent) <= set(seen) or time.monotonic() > deadline:
            break
    seen_brokers = brokers(c)
    c.close()
    assert set(sent) <= set(seen), f"consumed {seen}"
    print(json.dumps({"consumed": seen, "brokers": seen_brokers}))
except Exception as e:  # noqa: BLE001 - the test reads the reason
    print(f"error: {type(e).__name__}: {e}")
    sys.exit(1)
