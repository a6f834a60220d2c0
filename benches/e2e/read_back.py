"""Read a topic back with a confluent-kafka consumer and time it (the proxy section's consume side).

Assigns every partition from offset 0 and counts records until --expect arrived, touching
nothing else so that Python is not what limits the rate. Prints one JSON line: records,
seconds from assign to the last one.
"""
import argparse
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="bench")
    ap.add_argument("--expect", type=int, required=True)
    ap.add_argument("--timeout", type=float, default=300)
    args = ap.parse_args()
    # librdkafka stops fetching a partition for fetch.queue.backoff.ms (1 s by default) whenever its
    # local queue is over its limit, which this loop outruns only by a little: rounds of under a
    # second then took one, two or three seconds longer, and consume rates came in three levels.
    c = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "read-back", "enable.auto.commit": False,
                  "check.crcs": True, "enable.partition.eof": False, "fetch.queue.backoff.ms": 10})
    parts = c.list_topics(args.topic, timeout=20).topics[args.topic].partitions
    t0 = time.monotonic()
    c.assign([TopicPartition(args.topic, p, 0) for p in parts])
    seen = 0
    error = None
    while seen < args.expect and time.monotonic() - t0 < args.timeout and not error:
        for m in c.consume(1000, 0.5):
            if m.error():
                error = str(m.error())
                break
            seen += 1
    seconds = time.monotonic() - t0
    c.close()
    print(json.dumps({"records": seen, "seconds": seconds, "error": error}), flush=True)
    sys.exit(0 if seen == args.expect and not error else 1)


if __name__ == "__main__":
    main()
