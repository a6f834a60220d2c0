"""The peer strait is measured against: a MirrorMaker-1-style consume-then-produce loop on librdkafka.

A confluent-kafka Consumer assigned to every source partition from offset 0 hands each
record to a Producer (acks=all, idempotent, the source's codec) that writes it to the
same partition of the target with its key, value, headers and timestamp: every record is
decompressed, decoded, re-encoded and recompressed. It stops producing once it copied
--expect records, flushes, prints one JSON line, then waits for stdin to close so the
harness can read its CPU time and peak RSS from /proc first.
"""
import argparse
import json
import sys

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--topic", default="bench")
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--compression", required=True)
    args = ap.parse_args()
    c = Consumer({"bootstrap.servers": args.source, "group.id": "peer-replicator",
                  "auto.offset.reset": "earliest", "enable.partition.eof": False})
    parts = c.list_topics(args.topic, timeout=20).topics[args.topic].partitions
    c.assign([TopicPartition(args.topic, p, 0) for p in parts])
    p = Producer({"bootstrap.servers": args.target, "acks": "all", "enable.idempotence": True,
                  "compression.type": args.compression, "linger.ms": 5})
    failures = []
    report = lambda err, _msg: failures.append(str(err)) if err else None
    copied = 0
    while copied < args.expect and not failures:
        for m in c.consume(1000, 0.5):
            if m.error():
                if m.error().code() == KafkaError._PARTITION_EOF:
                    continue
                failures.append(str(m.error()))
                break
            while True:
                try:
                    p.produce(args.topic, m.value(), m.key(), partition=m.partition(), headers=m.headers(),
                              timestamp=m.timestamp()[1], on_delivery=report)
                    break
                except BufferError:
                    p.poll(0.05)
            copied += 1
        p.poll(0)
    left = p.flush(120)
    print(json.dumps({"copied": copied, "unflushed": left, "failures": failures[:3]}), flush=True)
    sys.stdin.read()
    c.close()


if __name__ == "__main__":
    main()
