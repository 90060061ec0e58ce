"""kafka-python with SASL (PLAIN, SCRAM-SHA-256/512) over plaintext.

usage: kafka_python_sasl.py roundtrip|metadata BOOTSTRAP MECHANISM USERNAME PASSWORD [--topic T --group G]
                            [--ignore-scram-refusal]

--ignore-scram-refusal: a hostile client that carries on whatever the
server's last SCRAM message says (RFC 5802 lets a server refuse a proof
there, as `e=invalid-proof`, instead of with an error code), to see
whether a refused login is served anyway.

metadata: bootstraps and reads the cluster's metadata.
roundtrip: produces three records, then consumes them in a consumer group.
Prints one JSON line and exits 0 — {"brokers": [...], "consumed": [...]} —
or exits 1 with {"error": ...} within about 15 s (kafka-python logs the
broker's refusal on stderr).
"""
import argparse
import json
import logging
import sys
import time

from kafka import KafkaConsumer, KafkaProducer

logging.basicConfig(level=logging.ERROR, stream=sys.stderr)

p = argparse.ArgumentParser()
p.add_argument("mode", choices=["roundtrip", "metadata"])
p.add_argument("bootstrap")
p.add_argument("mechanism")
p.add_argument("username")
p.add_argument("password")
p.add_argument("--topic")
p.add_argument("--group")
p.add_argument("--ignore-scram-refusal", action="store_true")
a = p.parse_args()

if a.ignore_scram_refusal:
    from kafka.net.sasl import scram

    def carry_on(self, server_final_message):
        print(f"server-final ignored: {server_final_message!r}", file=sys.stderr)

    scram.ScramClient.process_server_final_message = carry_on

common = {
    "bootstrap_servers": a.bootstrap,
    "security_protocol": "SASL_PLAINTEXT",
    "sasl_mechanism": a.mechanism,
    "sasl_plain_username": a.username,
    "sasl_plain_password": a.password,
    "request_timeout_ms": 10000,
    "bootstrap_timeout_ms": 8000,
}


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
    sent = [f"kp-sasl-{i}" for i in range(3)]
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
    seen = []
    deadline = time.monotonic() + 40
    for m in c:
        seen.append(m.value.decode())
        if set(sent) <= set(seen) or time.monotonic() > deadline:
            break
    seen_brokers = brokers(c)
    c.close()
    assert set(sent) <= set(seen), f"consumed {seen}"
    print(json.dumps({"brokers": seen_brokers, "consumed": seen}))
except Exception as e:  # noqa: BLE001 - the test reads the reason
    print(json.dumps({"error": f"{type(e).__name__}: {e}"}))
    sys.exit(1)
