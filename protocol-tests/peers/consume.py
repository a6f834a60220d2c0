"""Read topics back with a real Kafka client, CRC checking on, and print every record as
a JSON line: partition, offset, key, value, headers, timestamp.

The brokers we test against do not verify CRCs on produce, so this consumer is what
catches a batch whose CRC strait got wrong. Exits 2 on any consumer error.
"""
import argparse
import json
import sys

import security
import time


def hexed(b):
    return None if b is None else b.hex()


# Every address the client held for a broker (with --brokers-seen).
BROKERS_SEEN = set()


def confluent(args):
    from confluent_kafka import Consumer, TopicPartition
    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group or "strait-test-reader",
        "enable.auto.commit": False,
        "check.crcs": True,
        "isolation.level": args.isolation,
        "auto.offset.reset": "earliest",
        **security.client_config(args),
    }
    if args.brokers_seen:
        conf["statistics.interval.ms"] = 100
        conf["stats_cb"] = lambda stats: BROKERS_SEEN.update(
            b["nodename"] for b in json.loads(stats)["brokers"].values() if b["nodeid"] >= 0)
    c = Consumer(conf)
    if args.group:
        c.subscribe(args.topic)
        return c
    # A topic may appear a little later (a replicator creates it): wait within --idle.
    deadline = time.time() + args.idle
    meta = c.list_topics(timeout=20)
    while any(t not in meta.topics for t in args.topic) and time.time() < deadline:
        time.sleep(0.3)
        meta = c.list_topics(timeout=20)
    assignment = []
    for topic in args.topic:
        if topic not in meta.topics:
            print(json.dumps({"error": f"topic {topic} not found"}), flush=True)
            sys.exit(2)
        assignment += [TopicPartition(topic, p, 0) for p in meta.topics[topic].partitions]
    c.assign(assignment)
    return c


def kafka_python(args):
    """Joins --group with kafka-python and prints records until --expect or --idle."""
    from kafka import KafkaConsumer
    # kafka-python 3.0 fails to bootstrap against the mock cluster unless told a version.
    c = KafkaConsumer(*args.topic, bootstrap_servers=args.bootstrap.split(","), group_id=args.group,
                      auto_offset_reset="earliest", enable_auto_commit=False, isolation_level=args.isolation,
                      api_version=(2, 3))
    seen = 0
    last = time.time()
    while time.time() - last < args.idle and (args.expect == 0 or seen < args.expect):
        for batch in c.poll(timeout_ms=200).values():
            for m in batch:
                seen += 1
                last = time.time()
                print(json.dumps({
                    "topic": m.topic, "p": m.partition, "offset": m.offset,
                    "key": hexed(m.key), "value": hexed(m.value),
                    "headers": [[k, hexed(v)] for k, v in m.headers],
                    "ts": m.timestamp, "ts_type": m.timestamp_type + 1,
                }), flush=True)
    c.close()


def main():
    ap = argparse.ArgumentParser()
    security.add_arguments(ap)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", action="append", default=[])
    ap.add_argument("--list", action="store_true", help="print the cluster's topic names as JSON and stop")
    ap.add_argument("--expect", type=int, default=0, help="stop once this many records arrived")
    ap.add_argument("--idle", type=float, default=5.0, help="stop after this long without records")
    ap.add_argument("--isolation", default="read_committed")

    ap.add_argument("--group", help="join this consumer group (subscribe) instead of assigning partitions")
    ap.add_argument("--brokers-seen", action="store_true",
                    help="end with a line listing every broker address the client used")
    ap.add_argument("--client", choices=["confluent", "kafka-python"], default="confluent",
                    help="kafka-python needs --group")
    args = ap.parse_args()
    if args.client == "kafka-python":
        return kafka_python(args)
    if args.list:
        from confluent_kafka.admin import AdminClient
        meta = AdminClient({"bootstrap.servers": args.bootstrap, **security.client_config(args)}).list_topics(timeout=10)
        brokers = sorted(f"{b.host}:{b.port}" for b in meta.brokers.values())
        print(json.dumps({"topics": sorted(meta.topics), "brokers": brokers}), flush=True)
        return
    c = confluent(args)
    seen = 0
    last = time.time()
    while time.time() - last < args.idle and (args.expect == 0 or seen < args.expect):
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            if m.error().code() == -191:  # partition EOF
                continue
            print(json.dumps({"error": str(m.error())}), flush=True)
            sys.exit(2)
        seen += 1
        last = time.time()
        ts_type, ts = m.timestamp()
        print(json.dumps({
            "topic": m.topic(), "p": m.partition(), "offset": m.offset(),
            "key": hexed(m.key()), "value": hexed(m.value()),
            "headers": [[k, hexed(v)] for k, v in (m.headers() or [])],
            "ts": ts, "ts_type": ts_type,
        }), flush=True)
    c.close()
    if args.brokers_seen:
        print(json.dumps({"brokers": sorted(BROKERS_SEEN)}), flush=True)


if __name__ == "__main__":
    main()
