#!/usr/bin/env python3
"""What kafka-python's admin client (and its consumer's offset calls) can do against a cluster.

Usage: admin_compat.py BOOTSTRAP PREFIX
Runs each operation once, in order, and prints one JSON line per operation:
  {"tool": "kafka-python", "operation": ..., "ok": true|false, "detail": ...}
An operation that raises is recorded as not ok with the exception's text; the script goes on.
Every call has its own timeout, so the whole run is bounded (the Rust test also wraps it).
"""
import json
import sys
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewPartitions, NewTopic

TIMEOUT_MS = 15000


def main():
    bootstrap, prefix = sys.argv[1], sys.argv[2]
    topic, extra, group = f"{prefix}-t", f"{prefix}-del", f"{prefix}-g"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS)

    def op(name, fn):
        try:
            detail = fn()
            print(json.dumps({"tool": "kafka-python", "operation": name, "ok": True, "detail": str(detail)[:200]}))
        except Exception as e:  # noqa: BLE001 - every failure is a row of the table
            print(json.dumps({"tool": "kafka-python", "operation": name, "ok": False, "detail": f"{type(e).__name__}: {e}"[:300]}))
        sys.stdout.flush()

    op("create topics", lambda: admin.create_topics([NewTopic(topic, 2, 3), NewTopic(extra, 1, 3)], timeout_ms=TIMEOUT_MS))
    wait_for_leaders(admin, [topic, extra])
    op("list topics", lambda: sorted(t for t in admin.list_topics() if t.startswith(prefix)))
    op("describe topics", lambda: [(t["topic"], len(t["partitions"])) for t in admin.describe_topics([topic])])
    op("describe cluster", lambda: len(admin.describe_cluster()["brokers"]))
    op("describe configs (topic)", lambda: len(admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])))
    op("describe configs (broker)", lambda: len(admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])))
    op("alter configs (topic)", lambda: admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": "3600000"})]))
    op("alter configs (broker, dynamic)", lambda: broker_config_set(admin, "background.threads", "9"))
    op("create partitions", lambda: admin.create_partitions({topic: NewPartitions(total_count=3)}, timeout_ms=TIMEOUT_MS))

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", request_timeout_ms=TIMEOUT_MS)
    stamp = int(time.time() * 1000)
    for i in range(10):
        producer.send(topic, value=b"v%d" % i, partition=0, timestamp_ms=stamp + i)
    producer.flush(timeout=20)
    producer.close(timeout=10)

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False,
                             request_timeout_ms=TIMEOUT_MS + 1000, consumer_timeout_ms=TIMEOUT_MS)
    tp = TopicPartition(topic, 0)
    op("list offsets (earliest, latest)", lambda: (consumer.beginning_offsets([tp])[tp], consumer.end_offsets([tp])[tp]))
    op("list offsets (by time)", lambda: consumer.offsets_for_times({tp: stamp + 5})[tp].offset)
    consumer.assign([tp])
    consumer.seek_to_beginning(tp)
    consumer.poll(timeout_ms=5000)
    from kafka.structs import OffsetAndMetadata
    op("commit group offsets", lambda: consumer.commit({tp: OffsetAndMetadata(5, "", -1)}))
    consumer.close()
    op("list consumer groups", lambda: [g for g in admin.list_consumer_groups() if g[0] == group])
    op("describe consumer groups", lambda: [g.group for g in admin.describe_consumer_groups([group])])
    op("list consumer group offsets", lambda: {str(k): v.offset for k, v in admin.list_consumer_group_offsets(group).items()})
    op("delete records", lambda: deleted_to(admin, bootstrap, tp, 3))
    op("delete consumer groups", lambda: groups_deleted(admin, [group]))
    op("delete topics", lambda: admin.delete_topics([extra], timeout_ms=TIMEOUT_MS))
    admin.close()


def broker_config_set(admin, name, value):
    """AlterConfigs on broker 1, then DescribeConfigs must show the value."""
    admin.alter_configs([ConfigResource(ConfigResourceType.BROKER, "1", configs={name: value})])
    described = admin.describe_configs([ConfigResource(ConfigResourceType.BROKER, "1")])
    seen = [e[1] for r in described for res in r.resources for e in res[4] if e[0] == name]
    if seen != [value]:
        raise AssertionError(f"{name} described as {seen}, expected [{value!r}]")
    return f"{name}={value}"


def deleted_to(admin, bootstrap, tp, offset):
    """DeleteRecords, then the earliest offset a fresh consumer sees must be `offset`."""
    low = admin.delete_records({tp: offset}, timeout_ms=TIMEOUT_MS)[tp]["low_watermark"]
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, request_timeout_ms=TIMEOUT_MS + 1000)
    earliest = consumer.beginning_offsets([tp])[tp]
    consumer.close()
    if (low, earliest) != (offset, offset):
        raise AssertionError(f"low watermark {low}, earliest {earliest}; expected {offset}")
    return f"low watermark {low}"


def groups_deleted(admin, groups):
    """DeleteGroups answers per group; every one must be deleted and no longer listed."""
    results = admin.delete_consumer_groups(groups)
    failed = [(g, str(e)) for g, e in results if e.errno != 0]
    listed = [g[0] for g in admin.list_consumer_groups() if g[0] in groups]
    if failed or listed:
        raise AssertionError(f"not deleted: {failed}, still listed: {listed}")
    return [g for g, _ in results]


def wait_for_leaders(admin, topics, bound_s=30):
    """Topics are usable once every partition has a leader; bounded."""
    end = time.time() + bound_s
    while time.time() < end:
        try:
            described = admin.describe_topics(topics)
            if all(p["leader"] >= 0 for t in described for p in t["partitions"]) and all(t["partitions"] for t in described):
                return
        except Exception:  # noqa: BLE001 - not there yet
            pass
        time.sleep(0.2)


if __name__ == "__main__":
    main()
