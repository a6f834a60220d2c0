"""A steady, paced producer and a tailing consumer that notes when each record arrived:
what a test needs to see whether partitions kept flowing while something else happened.

    tail_times.py produce --bootstrap B --topic T --partitions N --interval-ms MS
        Every MS milliseconds, one record to each of the N partitions: record i goes to
        partition i % N and carries i in its first header, `seq` (as produce.py's do), so
        tick k writes records k*N .. k*N+N-1. Ticks follow a fixed schedule (a late tick
        is not made up for by a burst). Stops when stdin closes (or after --max-seconds),
        waits for every delivery and prints one JSON line: how many were written, the
        failures, and the producer's own largest gaps (between ticks, and per partition
        between consecutive acknowledgements), so that a test can tell its own pauses from
        the replicator's. With --acks-out FILE it also writes `seq acknowledged_ms` per
        record there: when the source had it.

    tail_times.py tail --bootstrap B --topic T --out FILE
        Reads every partition of T from its start (CRC checks on) and writes one line per
        record to FILE: `partition seq arrival_ms`, arrival being the wall clock (ms since
        the epoch) when the consumer got it. Prints `READY` once it has its assignment, and
        stops once stdin has closed and no record came for --idle seconds. Exits 2 on a
        consumer error.
"""
import argparse
import json
import sys
import threading
import time

BASE_TS = 1_700_000_000_000


def stdin_closed():
    """An event set when stdin closes: the test's way of saying stop."""
    closed = threading.Event()

    def watch():
        for _ in sys.stdin:
            pass
        closed.set()

    threading.Thread(target=watch, daemon=True).start()
    return closed


def produce(args):
    from confluent_kafka import Producer
    p = Producer({
        "bootstrap.servers": args.bootstrap,
        "linger.ms": 2,
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": args.compression,
        "message.timeout.ms": 60000,
    })
    failures = []
    acked_at = {}
    max_ack_gap = {}

    acks = open(args.acks_out, "w") if args.acks_out else None

    def report(err, msg):
        if err:
            failures.append(str(err))
            return
        now = time.time()
        if acks:
            acks.write(f"{int(msg.key()[1:])} {int(now * 1000)}\n")
        part = msg.partition()
        if part in acked_at:
            max_ack_gap[part] = max(max_ack_gap.get(part, 0.0), now - acked_at[part])
        acked_at[part] = now

    stop = stdin_closed()
    interval = args.interval_ms / 1000.0
    start = time.time()
    i = args.start
    tick = 0
    last_tick = None
    max_tick_gap = 0.0
    while not stop.is_set() and time.time() - start < args.max_seconds:
        due = start + tick * interval
        pause = due - time.time()
        if pause > 0:
            time.sleep(pause)
        now = time.time()
        if last_tick is not None:
            max_tick_gap = max(max_tick_gap, now - last_tick)
        last_tick = now
        for _ in range(args.partitions):
            headers = [("seq", str(i).encode())]
            p.produce(args.topic, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=headers,
                      timestamp=BASE_TS + i, partition=i % args.partitions, on_delivery=report)
            i += 1
        p.poll(0)
        tick += 1
        # Skip ticks already missed: a burst would hide the pause it follows.
        behind = int((time.time() - start) / interval)
        if behind > tick:
            tick = behind
    left = p.flush(60)
    if acks:
        acks.close()
    print(json.dumps({
        "written": i - args.start,
        "ticks": tick,
        "unflushed": left,
        "failures": failures[:5],
        "max_tick_gap_ms": round(max_tick_gap * 1000, 1),
        "max_ack_gap_ms": round(max(max_ack_gap.values(), default=0.0) * 1000, 1),
        "seconds": round(time.time() - start, 2),
    }), flush=True)
    sys.exit(1 if failures or left else 0)


def tail(args):
    from confluent_kafka import Consumer, TopicPartition
    c = Consumer({
        "bootstrap.servers": args.bootstrap,
        "group.id": "strait-test-tail",
        "enable.auto.commit": False,
        "check.crcs": True,
        "isolation.level": "read_committed",
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 50,
    })
    meta = c.list_topics(args.topic, timeout=20)
    partitions = meta.topics[args.topic].partitions
    if not partitions:
        print(f"ERROR topic {args.topic} has no partitions", flush=True)
        sys.exit(2)
    c.assign([TopicPartition(args.topic, p, 0) for p in partitions])
    print("READY", flush=True)
    stop = stdin_closed()
    last = time.time()
    with open(args.out, "w") as out:
        while not (stop.is_set() and time.time() - last >= args.idle):
            m = c.poll(0.05)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # partition EOF
                    continue
                print(f"ERROR {m.error()}", file=sys.stderr, flush=True)
                sys.exit(2)
            now = time.time()
            last = now
            seq = dict(m.headers() or []).get("seq")
            out.write(f"{m.partition()} {int(seq)} {int(now * 1000)}\n")
    c.close()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="mode", required=True)
    pr = sub.add_parser("produce")
    pr.add_argument("--bootstrap", required=True)
    pr.add_argument("--topic", required=True)
    pr.add_argument("--partitions", type=int, required=True)
    pr.add_argument("--interval-ms", type=float, default=20)
    pr.add_argument("--start", type=int, default=0)
    pr.add_argument("--max-seconds", type=float, default=120)
    pr.add_argument("--compression", default="lz4")
    pr.add_argument("--acks-out", help="write `seq acknowledged_ms` per record to this file")
    tl = sub.add_parser("tail")
    tl.add_argument("--bootstrap", required=True)
    tl.add_argument("--topic", required=True)
    tl.add_argument("--out", required=True)
    tl.add_argument("--idle", type=float, default=5.0)
    args = ap.parse_args()
    produce(args) if args.mode == "produce" else tail(args)


if __name__ == "__main__":
    main()
