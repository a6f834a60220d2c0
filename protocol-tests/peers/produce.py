"""Write a numbered, deterministic stream of records with a real Kafka client.

Records carry what a replicator must preserve: keys (some null), values (some empty,
some null tombstones), headers (duplicate keys, null values), explicit timestamps.
Record i goes to partition i % partitions. Prints one JSON line summarising what was
written, including which record numbers belong to aborted transactions.
"""
import argparse
import json
import sys

import security

BASE_TS = 1_700_000_000_000
# Every address the client held for a broker (confluent client, with --brokers-seen).
BROKERS_SEEN = set()


def record(i, client, pad=0):
    key = None if i % 7 == 3 else f"k{i}".encode()
    value = None if i % 11 == 5 else (f"v{i}-" * (i % 13)).encode() + b"p" * pad
    headers = [("seq", str(i).encode()), ("dup", b"a"), ("dup", b"b")]
    if client == "confluent" and i % 5 == 0:
        headers.append(("nullh", None))
    if client == "kafka-python" and key is None and value is None:
        value = b""  # kafka-python refuses a record with neither key nor value
    return key, value, headers, BASE_TS + i * 1000


def confluent(args, plan):
    from confluent_kafka import Producer
    conf = {
        "bootstrap.servers": args.bootstrap,
        "compression.type": args.compression,
        "linger.ms": 20,
        "enable.idempotence": args.acks == "all",
        "acks": args.acks,
        "message.timeout.ms": args.timeout_ms,
        **security.client_config(args),
    }
    if args.brokers_seen:
        conf["statistics.interval.ms"] = 100
        conf["stats_cb"] = lambda stats: BROKERS_SEEN.update(
            b["nodename"] for b in json.loads(stats)["brokers"].values() if b["nodeid"] >= 0)
    if args.txn:
        conf["transactional.id"] = f"produce-{args.topic}"
    p = Producer(conf)
    failures = []
    report = lambda err, msg: failures.append(str(err)) if err else None
    if args.txn:
        p.init_transactions(30)
    i = args.start
    aborted = []
    for outcome, count in plan:
        if outcome:
            p.begin_transaction()
        for _ in range(count):
            key, value, headers, ts = record(i, "confluent", args.pad)
            p.produce(args.topic, key=key, value=value, headers=headers, timestamp=ts,
                      partition=i % args.partitions, on_delivery=report)
            if outcome == "abort":
                aborted.append(i)
            i += 1
            p.poll(0)
        # Flush first, so that aborted records really reach the log and a replicator
        # has to leave them out.
        p.flush(60)
        if outcome == "commit":
            p.commit_transaction(30)
        elif outcome == "abort":
            p.abort_transaction(30)
    p.flush(60)
    return failures, aborted


def kafka_python(args, plan):
    from kafka import KafkaProducer
    p = KafkaProducer(bootstrap_servers=args.bootstrap.split(","), compression_type=None if args.compression == "none" else args.compression,
                      linger_ms=20, api_version=(2, 3))
    failures = []
    i = args.start
    for _, count in plan:
        for _ in range(count):
            key, value, headers, ts = record(i, "kafka-python")
            fut = p.send(args.topic, key=key, value=value, headers=headers, timestamp_ms=ts, partition=i % args.partitions)
            fut.add_errback(lambda e: failures.append(str(e)))
            i += 1
    p.flush(60)
    p.close()
    return failures, []


def create_topic(args):
    from confluent_kafka.admin import AdminClient, NewTopic
    admin = AdminClient({"bootstrap.servers": args.bootstrap, **security.client_config(args)})
    for future in admin.create_topics([NewTopic(args.topic, args.partitions, 1)]).values():
        try:
            future.result(30)
        except Exception as e:  # an existing topic is fine
            if "TOPIC_ALREADY_EXISTS" not in str(e):
                raise


def main():
    ap = argparse.ArgumentParser()
    security.add_arguments(ap)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=0)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--compression", default="none")
    ap.add_argument("--client", choices=["confluent", "kafka-python"], default="confluent")
    ap.add_argument("--acks", default="all", help="all, 1 or 0 (confluent client only)")

    ap.add_argument("--timeout-ms", type=int, default=60000, help="delivery timeout (confluent client only)")
    ap.add_argument("--txn", help="transactions in order, e.g. commit:100,abort:50,commit:100")
    ap.add_argument("--create", action="store_true", help="create the topic first (brokers without auto-creation)")
    ap.add_argument("--pad", type=int, default=0, help="bytes added to each non-null value (confluent client only)")
    ap.add_argument("--brokers-seen", action="store_true",
                    help="report every broker address the client used (confluent client only)")
    args = ap.parse_args()
    if args.create:
        create_topic(args)
    plan = [(None, args.count)]
    if args.txn:
        plan = [(o, int(n)) for o, n in (part.split(":") for part in args.txn.split(","))]
    run = confluent if args.client == "confluent" else kafka_python
    failures, aborted = run(args, plan)
    written = sum(n for _, n in plan)
    print(json.dumps({"written": written, "failures": failures[:5], "aborted": aborted,
                      "brokers": sorted(BROKERS_SEEN)}), flush=True)
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
