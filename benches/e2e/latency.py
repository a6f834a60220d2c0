"""Request latency on one connection under a moderate background load, or with --target,
replication latency from one cluster to another.

Request latency: sends --count requests one after another on one raw socket to a bootstrap address and
prints JSON with percentiles in microseconds, per request kind: ApiVersions v0 (passed
through by the proxy as bytes) and Metadata v1 for one topic (decoded and rewritten by
the proxy). Meanwhile a librdkafka producer writes --load-rate 1 KB records per second
through the same address, so the path is busy but not saturated.

Replication latency (--source S --target T): a consumer of the target, assigned to every
partition at its current end, waits for the records a producer then writes to the source
(acks=all, linger 0, --probe-rate 1 KB records per second for --seconds, record i to
partition i mod --partitions, each value carrying its sequence number and send time). Both
sides run in this process on one clock. Prints JSON: sent, received, duplicates, and the
send-to-receive latency p50/p99/max in ms over the records received within --grace seconds
after the last send.
"""
import argparse
import json
import socket
import struct
import threading
import time

from confluent_kafka import Producer


def request(api_key, version, correlation, body):
    header = struct.pack(">hhih", api_key, version, correlation, 3) + b"lat"
    return struct.pack(">i", len(header) + len(body)) + header + body


def read_frame(sock):
    def exact(n):
        data = b""
        while len(data) < n:
            chunk = sock.recv(n - len(data))
            if not chunk:
                raise ConnectionError("closed")
            data += chunk
        return data
    (n,) = struct.unpack(">i", exact(4))
    return exact(n)


def percentiles(samples):
    s = sorted(samples)
    at = lambda p: s[min(len(s) - 1, max(0, int(p * len(s) + 0.5) - 1))]
    return {"p50": at(0.50), "p99": at(0.99), "max": s[-1], "n": len(s)}


def measure(addr, frames, count):
    host, port = addr.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    out = {}
    for name, frame in frames.items():
        for _ in range(200):  # warm up: connections upstream, caches
            sock.sendall(frame)
            read_frame(sock)
        samples = []
        for _ in range(count):
            t = time.perf_counter_ns()
            sock.sendall(frame)
            read_frame(sock)
            samples.append((time.perf_counter_ns() - t) / 1000)
        out[name] = percentiles(samples)
    sock.close()
    return out


def load(addr, topic, rate, stop):
    p = Producer({"bootstrap.servers": addr, "linger.ms": 5, "acks": "all"})
    value, tick = b"l" * 1000, 1.0 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        p.produce(topic, value=value)
        p.poll(0)
        next_at += tick
        time.sleep(max(0.0, next_at - time.monotonic()))
    p.flush(10)


def replication(args):
    from confluent_kafka import Consumer, TopicPartition
    from confluent_kafka.admin import AdminClient, OffsetSpec
    admin = AdminClient({"bootstrap.servers": args.target})
    futures = admin.list_offsets({TopicPartition(args.topic, p): OffsetSpec.latest() for p in range(args.partitions)},
                                 request_timeout=10)
    ends = {tp.partition: f.result().offset for tp, f in futures.items()}
    # The probe's own fetches wait at most 20 ms at the broker, so they add little to what is measured.
    c = Consumer({"bootstrap.servers": args.target, "group.id": "latency-probe", "enable.auto.commit": False,
                  "enable.partition.eof": False, "fetch.wait.max.ms": 20, "fetch.queue.backoff.ms": 10})
    c.assign([TopicPartition(args.topic, p, ends[p]) for p in range(args.partitions)])
    count = int(args.probe_rate * args.seconds)
    seen, duplicates, stop = {}, [0], threading.Event()

    def receive():
        while not stop.is_set():
            for m in c.consume(1000, 0.1):
                now = time.monotonic_ns()
                if m.error() or not (m.value() or b"").startswith(b"probe "):
                    continue
                _, seq, sent, _ = m.value().split(b" ", 3)
                if int(seq) in seen:
                    duplicates[0] += 1
                else:
                    seen[int(seq)] = (now - int(sent)) / 1e6

    receiver = threading.Thread(target=receive)
    receiver.start()
    time.sleep(2)  # the consumer's first fetches are under way
    p = Producer({"bootstrap.servers": args.source, "acks": "all", "linger.ms": 0,
                  "compression.type": args.compression})
    tick, next_at = 1.0 / args.probe_rate, time.monotonic()
    for i in range(count):
        value = b"probe %d %d " % (i, time.monotonic_ns())
        p.produce(args.topic, value + b"p" * (1000 - len(value)), b"probe-%08d" % i, partition=i % args.partitions)
        p.poll(0)
        next_at += tick
        time.sleep(max(0.0, next_at - time.monotonic()))
    left = p.flush(30)
    end = time.monotonic() + args.grace
    while len(seen) < count and time.monotonic() < end:
        time.sleep(0.1)
    stop.set()
    receiver.join()
    c.close()
    out = {"sent": count, "unflushed": left, "received": len(seen), "duplicates": duplicates[0]}
    if seen:
        s = sorted(seen.values())
        at = lambda q: s[min(len(s) - 1, max(0, int(q * len(s) + 0.5) - 1))]
        out.update(p50_ms=at(0.50), p99_ms=at(0.99), max_ms=s[-1])
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", help="request latency: the address to send requests to")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--load-rate", type=int, default=2000, help="background 1 KB records per second")
    ap.add_argument("--source", help="replication latency: the cluster the probe writes to")
    ap.add_argument("--target", help="replication latency: the cluster the probe reads from")
    ap.add_argument("--partitions", type=int, default=1, help="replication latency: the topic's partitions")
    ap.add_argument("--compression", default="lz4", help="replication latency: the probe producer's codec")
    ap.add_argument("--probe-rate", type=float, default=200, help="replication latency: records per second")
    ap.add_argument("--seconds", type=float, default=10, help="replication latency: how long the probe writes")
    ap.add_argument("--grace", type=float, default=15, help="replication latency: the wait after the last send")
    args = ap.parse_args()
    if args.target:
        return replication(args)
    addr = args.bootstrap.split(",")[0]
    topic = args.topic.encode()
    frames = {
        "api_versions": request(18, 0, 1, b""),
        "metadata": request(3, 1, 2, struct.pack(">ih", 1, len(topic)) + topic),
    }
    stop = threading.Event()
    background = threading.Thread(target=load, args=(addr, args.topic, args.load_rate, stop))
    background.start()
    time.sleep(1)
    try:
        result = measure(addr, frames, args.count)
    finally:
        stop.set()
        background.join()
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
