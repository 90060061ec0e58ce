"""What one tenant of a shared backend can do, with confluent-kafka.

usage: tenant.py COMMAND BOOTSTRAP [ARGS...]
  topics                      the topics the tenant sees
  create TOPIC                create a topic (1 partition)
  delete TOPIC                delete a topic
  produce TOPIC N TAG         produce N records "TAG-i"
  consume TOPIC GROUP N       consume up to N records in GROUP (to the end
                              of a one-partition topic), committing
  groups                      the consumer groups the tenant sees
  offsets GROUP TOPIC         the group's committed offset of TOPIC's partition 0
  delete-group GROUP          delete a consumer group
  describe-acls               the ACL bindings the cluster shows
  create-acls TOPIC           try to allow everyone to read TOPIC
BOOTSTRAP may be USER:PASSWORD@HOST:PORT to log in with SASL/PLAIN.
Prints one JSON line; errors are reported in it (with Kafka's error name),
never raised, so a test can assert on a refusal. Bounded: 30 s per wait.
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (
    AclBinding,
    AclBindingFilter,
    AclOperation,
    AclPermissionType,
    AdminClient,
    NewTopic,
    ResourcePatternType,
    ResourceType,
)

command, bootstrap, *args = sys.argv[1:]
base = {"bootstrap.servers": bootstrap.rpartition("@")[2]}
if "@" in bootstrap:
    user, _, password = bootstrap.rpartition("@")[0].partition(":")
    base.update({
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "PLAIN",
        "sasl.username": user,
        "sasl.password": password,
    })
# Held for the whole run: a destroyed client fails its futures (_DESTROY).
admin = AdminClient(base)
WAIT = 30


def name(error):
    """Kafka's name for an error (TOPIC_AUTHORIZATION_FAILED, ...)."""
    if isinstance(error, KafkaException):
        error = error.args[0]
    if isinstance(error, KafkaError):
        return error.name()
    return str(error)


def report(**fields):
    print(json.dumps(fields))


def consume(topic, group, count):
    c = Consumer({
        **base,
        "group.id": group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "enable.partition.eof": True,
    })
    c.subscribe([topic])
    values, errors = [], []
    deadline = time.monotonic() + WAIT
    while len(values) < count and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                break  # one-partition topics: all there is was read
            errors.append(name(m.error()))
            if m.error().fatal() or len(errors) > 20:
                break
            continue
        values.append(m.value().decode())
        c.commit(message=m, asynchronous=False)
    c.close()
    return values, sorted(set(errors))


if command == "topics":
    md = admin.list_topics(timeout=WAIT)
    report(topics=sorted(t for t in md.topics if not t.startswith("__")))
elif command == "create":
    (topic,) = args
    f = admin.create_topics([NewTopic(topic, 1, 1)], operation_timeout=WAIT)[topic]
    try:
        f.result(timeout=WAIT)
        report(error=None)
    except Exception as e:  # noqa: BLE001 - the error is the report
        report(error=name(e))
elif command == "delete":
    (topic,) = args
    f = admin.delete_topics([topic], operation_timeout=WAIT)[topic]
    try:
        f.result(timeout=WAIT)
        report(error=None)
    except Exception as e:  # noqa: BLE001
        report(error=name(e))
elif command == "produce":
    topic, count, tag = args
    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(name(err))

    p = Producer({**base, "acks": "all", "message.timeout.ms": WAIT * 1000})
    for i in range(int(count)):
        p.produce(topic, value=f"{tag}-{i}".encode(), on_delivery=delivered)
    p.flush(WAIT)
    report(delivered=int(count) - len(errors), errors=sorted(set(errors)))
elif command == "consume":
    topic, group, count = args
    values, errors = consume(topic, group, int(count))
    report(values=sorted(values), errors=errors)
elif command == "groups":
    result = admin.list_consumer_groups(request_timeout=WAIT).result(timeout=WAIT)
    report(groups=sorted(g.group_id for g in result.valid))
elif command == "offsets":
    group, topic = args
    c = Consumer({**base, "group.id": group, "enable.auto.commit": False})
    try:
        (tp,) = c.committed([TopicPartition(topic, 0)], timeout=WAIT)
        report(offset=tp.offset, error=name(tp.error) if tp.error else None)
    except Exception as e:  # noqa: BLE001
        report(offset=None, error=name(e))
    finally:
        c.close()
elif command == "delete-group":
    (group,) = args
    f = admin.delete_consumer_groups([group], request_timeout=WAIT)[group]
    try:
        f.result(timeout=WAIT)
        report(error=None)
    except Exception as e:  # noqa: BLE001
        report(error=name(e))
elif command == "describe-acls":
    any_acl = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None,
        AclOperation.ANY, AclPermissionType.ANY,
    )
    try:
        bindings = admin.describe_acls(any_acl, request_timeout=WAIT).result(timeout=WAIT)
        report(error=None, acls=sorted(
            f"{b.principal} {b.permission_type.name} {b.operation.name} "
            f"{b.restype.name}:{b.resource_pattern_type.name}:{b.name}"
            for b in bindings
        ))
    except Exception as e:  # noqa: BLE001
        report(error=name(e), message=str(e))
elif command == "create-acls":
    (topic,) = args
    binding = AclBinding(
        ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, "User:*", "*",
        AclOperation.READ, AclPermissionType.ALLOW,
    )
    f = admin.create_acls([binding], request_timeout=WAIT)[binding]
    try:
        f.result(timeout=WAIT)
        report(error=None)
    except Exception as e:  # noqa: BLE001
        report(error=name(e), message=str(e))
else:
    sys.exit(f"unknown command {command}")
