"""Records with headers, codecs and producer guarantees, for record policies.

usage: records.py COMMAND BOOTSTRAP ARGS...
  produce TOPIC JSON       confluent-kafka: produce each of JSON's "values"
                           (strings) one at a time (flushed in between, so
                           each is its own batch) or, with "batch": true, all
                           at once; optional "headers" {k: v} on every
                           record, "compression" (none, gzip, snappy, lz4,
                           zstd), "idempotent" (with retries),
                           "transactional_id" (begins a transaction and
                           leaves it open: tansu has no EndTxn)
  consume TOPIC GROUP      confluent-kafka: read partition 0 from GROUP's
                           committed offset (or the start) to its end, then
                           commit the position; the committed offset
  read TOPIC               kafka-python: every record of partition 0 (no
                           group), with headers
Prints one JSON line (values and headers as text, errors with Kafka's error
name and message). Bounded: 30 s per wait.
"""
import json
import sys
import time

command, bootstrap, *args = sys.argv[1:]
WAIT = 30


def report(**fields):
    print(json.dumps(fields))


def text(b):
    return None if b is None else b.decode("utf-8", "replace")


if command == "produce":
    from confluent_kafka import Producer

    topic, spec = args
    spec = json.loads(spec)
    config = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "message.timeout.ms": WAIT * 1000,
        "compression.type": spec.get("compression", "none"),
        "linger.ms": 50,
    }
    if spec.get("idempotent"):
        config.update({"enable.idempotence": True, "retries": 5})
    if spec.get("transactional_id"):
        config["transactional.id"] = spec["transactional_id"]
    results = []

    def delivered(err, msg):
        results.append({
            "value": text(msg.value()),
            "offset": msg.offset() if err is None else None,
            "error": None if err is None else err.name(),
            "message": None if err is None else err.str(),
        })

    p = Producer(config)
    if spec.get("transactional_id"):
        p.init_transactions(WAIT)
        p.begin_transaction()
    headers = list(spec.get("headers", {}).items())
    for value in spec["values"]:
        p.produce(topic, value=value.encode(), headers=headers, on_delivery=delivered)
        if not spec.get("batch"):
            p.flush(WAIT)
    p.flush(WAIT)
    report(results=results)
elif command == "consume":
    from confluent_kafka import OFFSET_STORED, Consumer, KafkaError, TopicPartition

    topic, group = args
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    # From the group's committed offset (the start when it has none).
    c.assign([TopicPartition(topic, 0, OFFSET_STORED)])
    records, errors = [], []
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                break
            errors.append(m.error().name())
            if len(errors) > 20:
                break
            continue
        records.append({
            "offset": m.offset(),
            "value": text(m.value()),
            "headers": {k: text(v) for k, v in (m.headers() or [])},
        })
    # What the consumer would commit: its position (past every record the
    # answers covered, shown or not).
    position = c.position([TopicPartition(topic, 0)])[0].offset
    c.commit(offsets=[TopicPartition(topic, 0, position)], asynchronous=False)
    (committed,) = c.committed([TopicPartition(topic, 0)], timeout=WAIT)
    c.close()
    report(records=records, errors=sorted(set(errors)), position=position,
           committed=committed.offset)
elif command == "read":
    from kafka import KafkaConsumer, TopicPartition as TP

    (topic,) = args
    c = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                      consumer_timeout_ms=3000, request_timeout_ms=WAIT * 1000)
    tp = TP(topic, 0)
    c.assign([tp])
    c.seek_to_beginning(tp)
    end = c.end_offsets([tp])[tp]
    records = []
    deadline = time.monotonic() + WAIT
    while c.position(tp) < end and time.monotonic() < deadline:
        for batch in c.poll(timeout_ms=500).values():
            for m in batch:
                records.append({
                    "offset": m.offset,
                    "value": text(m.value),
                    "headers": {k: text(v) for k, v in m.headers},
                })
    report(records=records, position=c.position(tp), end=end)
    c.close()
else:
    sys.exit(f"unknown command {command}")
