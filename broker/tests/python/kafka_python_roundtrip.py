#!/usr/bin/env python3
"""Round trip through the broker with kafka-python: produce 10, consume them in a group, list topics.

Usage: kafka_python_roundtrip.py BOOTSTRAP TOPIC GROUP
Prints one JSON line with what it saw; exits non-zero (with the reason on stderr) on any failure.
The Rust test runs it under a timeout, and every wait in here is bounded too.
"""
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

DEADLINE_S = 40


def main():
    bootstrap, topic, group = sys.argv[1], sys.argv[2], sys.argv[3]
    sent = [f"kafka-python-{i}" for i in range(10)]

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=15000)
    futures = [producer.send(topic, key=b"k%d" % i, value=v.encode()) for i, v in enumerate(sent)]
    producer.flush(timeout=20)
    acked = [f.get(timeout=20) for f in futures]
    producer.close(timeout=10)

    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=1000,
    )
    received = []
    deadline = time.monotonic() + DEADLINE_S
    while len(received) < len(sent) and time.monotonic() < deadline:
        for msg in consumer:  # stops after consumer_timeout_ms without messages
            received.append(msg.value.decode())
            if len(received) >= len(sent):
                break
    if received:
        consumer.commit()
    consumer.close()

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    topics = sorted(admin.list_topics())
    admin.close()

    print(json.dumps({"acked": len(acked), "received": received, "topics": topics}))
    problems = []
    if sorted(received) != sorted(sent):
        problems.append(f"consumed {received!r}, expected {sent!r}")
    if topic not in topics:
        problems.append(f"topic {topic} missing from list_topics() = {topics!r}")
    if problems:
        print("; ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
