"""Write the benchmark's data set with confluent-kafka and time it.

Every contender must copy identical data, so records are a pure function of their
number: ~1 KB each (key, 2 headers, a JSON-like value that compresses about as much as
typical event data), record i to partition i % partitions, timestamp BASE_TS + i.
Prints one JSON line: records, payload bytes, seconds from first send to last ack, and
librdkafka's average batch size (bytes, records) over the last statistics window.
"""
import argparse
import json
import random
import sys
import time

BASE_TS = 1_700_000_000_000
RECORD_BYTES = 1024
POOL = 8192  # distinct value bodies; 8 MB, larger than any batch, so no batch repeats one


def pool():
    rnd = random.Random(7)
    words = ["".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(3, 10))) for _ in range(400)]
    bodies = []
    for _ in range(POOL):
        fields = []
        while sum(map(len, fields)) < RECORD_BYTES:
            k = rnd.choice(words)
            v = rnd.choice([f'"{rnd.choice(words)} {rnd.choice(words)}"', str(rnd.randint(0, 10**9)),
                            f'"{rnd.getrandbits(64):016x}"', f"{rnd.random():.6f}"])
            fields.append(f'"{k}":{v}')
        bodies.append(",".join(fields))
    return bodies


def records(count, start=0):
    """Yields (i, key, value, headers, ts); key + value + header names and values = 1024 bytes."""
    bodies = pool()
    for i in range(start, start + count):
        key = b"key-%08d" % i
        headers = [("trace", b"%016x" % (i * 2654435761 % 2**64)), ("origin", b"bench")]
        head = b'{"seq":%d,' % i
        room = RECORD_BYTES - len(key) - sum(len(k) + len(v) for k, v in headers) - len(head) - 1
        value = head + bodies[i % POOL].encode()[:room] + b"}"
        yield i, key, value, headers, BASE_TS + i


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", default="bench")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--compression", default="lz4")
    args = ap.parse_args()
    from confluent_kafka import Producer
    stats = {}
    p = Producer({"bootstrap.servers": args.bootstrap, "acks": "all", "enable.idempotence": True,
                  "compression.type": args.compression, "linger.ms": 50,
                  "queue.buffering.max.kbytes": 262144, "statistics.interval.ms": 1000,
                  "stats_cb": lambda s: stats.update(json.loads(s)["topics"].get(args.topic, {}))})
    failures = []
    report = lambda err, _msg: failures.append(str(err)) if err else None
    data = list(records(args.count))  # built before the clock starts
    size = sum(len(k) + len(v) + sum(len(a) + len(b) for a, b in h) for _, k, v, h, _ in data)
    p.list_topics(args.topic, timeout=20)
    t0 = time.monotonic()
    for i, key, value, headers, ts in data:
        while True:
            try:
                p.produce(args.topic, value, key, partition=i % args.partitions, headers=headers,
                          timestamp=ts, on_delivery=report)
                break
            except BufferError:
                p.poll(0.05)
        p.poll(0)
    left = p.flush(120)
    seconds = time.monotonic() - t0
    batch = {k: stats[k]["avg"] for k in ("batchsize", "batchcnt") if k in stats}  # last stats window
    print(json.dumps({"records": args.count, "bytes": size, "seconds": seconds, "batch": batch,
                      "failures": failures[:3] + (["unflushed %d" % left] if left else [])}), flush=True)
    sys.exit(1 if failures or left else 0)


if __name__ == "__main__":
    main()
