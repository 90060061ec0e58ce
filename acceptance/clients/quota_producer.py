"""A confluent-kafka producer for quota tests: produces for a fixed time,
optionally paced, and reports what was delivered and the throttles the
gateway signalled.

usage: quota_producer.py BOOTSTRAP TOPIC CLIENT_ID SECONDS PACE [WARMUP]
  PACE     bytes per second to offer (0: as fast as the producer goes)
  WARMUP   seconds at the start left out of `window_rate` (default 0)
Prints one JSON line: delivered bytes, the rate over the whole run and
over the window after WARMUP (by delivery time), throttle events from
throttle_cb with the largest throttle_time, and delivery errors. Records
are 10 KiB. Bounded: SECONDS, then at most 30 s to flush.
"""
import json
import sys
import time

from confluent_kafka import Producer

bootstrap, topic, client_id, seconds, pace, *rest = sys.argv[1:]
seconds, pace = float(seconds), float(pace)
warmup = float(rest[0]) if rest else 0.0
SIZE = 10 * 1024
payload = b"q" * SIZE

throttles = []
deliveries = []
errors = []


def on_throttle(event):
    throttles.append(event.throttle_time * 1000.0)


def on_delivery(err, msg):
    if err is not None:
        errors.append(f"{err.name()}: {err.str()}")
    else:
        deliveries.append((time.monotonic(), len(msg.value())))


producer = Producer(
    {
        "bootstrap.servers": bootstrap,
        "client.id": client_id,
        "acks": "all",
        "linger.ms": 5,
        "batch.size": 64 * 1024,
        "queue.buffering.max.kbytes": 512,
        "message.timeout.ms": 60000,
        "throttle_cb": on_throttle,
    }
)
start = time.monotonic()
end = start + seconds
offered = 0
while True:
    now = time.monotonic()
    if now >= end:
        break
    if pace > 0 and offered >= pace * (now - start):
        producer.poll(0.005)
        continue
    try:
        producer.produce(topic, payload, on_delivery=on_delivery)
        offered += SIZE
    except BufferError:
        producer.poll(0.01)
        continue
    producer.poll(0)
left = producer.flush(30)
delivered = sum(n for _, n in deliveries)
in_window = sum(n for t, n in deliveries if start + warmup <= t <= end)
print(
    json.dumps(
        {
            "delivered_bytes": delivered,
            "rate": sum(n for t, n in deliveries if t <= end) / seconds,
            "window_rate": in_window / max(seconds - warmup, 0.001),
            "throttle_events": len(throttles),
            "max_throttle_ms": max(throttles, default=0.0),
            "errors": errors[:5],
            "undelivered": left,
        }
    )
)
