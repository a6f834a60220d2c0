"""Request latency on one connection, under a moderate background load.

Sends --count requests one after another on one raw socket to a bootstrap address and
prints JSON with percentiles in microseconds, per request kind: ApiVersions v0 (passed
through by the proxy as bytes) and Metadata v1 for one topic (decoded and rewritten by
the proxy). Meanwhile a librdkafka producer writes --load-rate 1 KB records per second
through the same address, so the path is busy but not saturated.
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


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", required=True)
    ap.add_argument("--count", type=int, default=5000)
    ap.add_argument("--load-rate", type=int, default=2000, help="background 1 KB records per second")
    args = ap.parse_args()
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
