"""confluent-kafka (librdkafka) with client authentication: SASL (PLAIN,
SCRAM, OAUTHBEARER) over plaintext or TLS, a client certificate, or
nothing.

usage: confluent_sasl.py roundtrip|metadata|steady BOOTSTRAP [options]
  --mechanism M --username U --password P   SASL (PLAIN, SCRAM-SHA-256, ...)
  --oauth-key PEM --kid K --sub S           OAUTHBEARER: an oauth_cb that signs
      [--iss I] [--aud A] [--lifetime N]    ES256 tokens with this key (PyJWT),
      [--next-sub S2]                       valid N seconds (default 300; a
                                            negative N gives an expired token,
                                            though librdkafka is told it lasts);
                                            tokens after the first are for S2
  --ca FILE                                 speak TLS, trusting this CA (host name checked)
  --cert FILE --key FILE                    present this client certificate
  --topic T --group G                       for roundtrip

security.protocol follows: SASL_SSL (SASL and --ca), SASL_PLAINTEXT,
SSL (--ca only) or PLAINTEXT.

metadata: bootstraps and reads the cluster's metadata.
roundtrip: produces three records, then consumes them in a consumer group.
steady: produces a record every 200 ms for --seconds (default 12) on one
producer and reports {"delivered": n, "failed": n, "tokens": n, "errors"}
(tokens: how often oauth_cb was called), exiting 0.
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
p.add_argument("mode", choices=["roundtrip", "metadata", "steady"])
p.add_argument("bootstrap")
p.add_argument("--mechanism")
p.add_argument("--username", default="")
p.add_argument("--password", default="")
p.add_argument("--ca")
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--topic")
p.add_argument("--group")
p.add_argument("--oauth-key")
p.add_argument("--kid")
p.add_argument("--sub")
p.add_argument("--next-sub")
p.add_argument("--iss", default="https://idp.sluice.test")
p.add_argument("--aud", default="sluice-gateway")
p.add_argument("--lifetime", type=int, default=300)
p.add_argument("--seconds", type=float, default=12)
a = p.parse_args()
if a.oauth_key:
    a.mechanism = "OAUTHBEARER"

config = {"bootstrap.servers": a.bootstrap, "reconnect.backoff.max.ms": 1000}
protocol = ("SASL_" if a.mechanism else "") + ("SSL" if a.ca else "PLAINTEXT")
config["security.protocol"] = protocol
tokens = []


def oauth_cb(_config):
    """A fresh token each call: (token, expiry for librdkafka, principal)."""
    import jwt  # PyJWT, only needed for OAUTHBEARER

    with open(a.oauth_key) as f:
        key = f.read()
    sub = a.next_sub if (tokens and a.next_sub) else a.sub
    now = int(time.time())
    claims = {"sub": sub, "iss": a.iss, "aud": a.aud, "iat": now, "exp": now + a.lifetime}
    token = jwt.encode(claims, key, algorithm="ES256", headers={"kid": a.kid})
    tokens.append(sub)
    # librdkafka refuses a token it knows has expired (an expired one is
    # the gateway's to catch, so it is told such a token lasts a minute);
    # it asks for a new one at 80% of the lifetime it is told.
    return token, now + (a.lifetime if a.lifetime > 0 else 60), sub


if a.mechanism == "OAUTHBEARER":
    config.update({"sasl.mechanism": "OAUTHBEARER", "oauth_cb": oauth_cb})
elif a.mechanism:
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

if a.mode == "steady":
    outcome = {"delivered": 0, "failed": 0}

    def delivered(err, _msg):
        outcome["failed" if err else "delivered"] += 1
        if err:
            print(f"delivery failed: {err}", file=sys.stderr)

    end = time.monotonic() + a.seconds
    sent = 0
    while time.monotonic() < end:
        producer.produce(a.topic, value=f"steady-{sent}".encode(), on_delivery=delivered)
        sent += 1
        producer.poll(0.2)
    producer.flush(30)
    print(json.dumps({**outcome, "sent": sent, "tokens": len(tokens), "errors": errors}))
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
