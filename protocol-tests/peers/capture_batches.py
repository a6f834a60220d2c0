"""Capture golden Kafka record batches written by real producer libraries.

strait decodes and re-encodes record batches. Tests built only from batches we encode
ourselves cannot catch a misreading we share with our own encoder, so this script records
what real clients put on the wire: librdkafka (via confluent-kafka) for every codec and
for a transaction with an abort, and kafka-python (whose snappy uses the Java "xerial"
framing). It produces into librdkafka's mock cluster (mock_cluster.py), reads each
partition back with a hand-written Fetch v4 request over a plain socket, and writes

    OUTDIR/<case>.bin     the partition's `records` bytes, the Fetch responses
                          concatenated in offset order (the mock returns one stored
                          batch per Fetch, exactly as the producer sent it, with only
                          baseOffset and partitionLeaderEpoch rewritten)
    OUTDIR/manifest.json  per case: producer, codec, batch headers, and the records a
                          confluent-kafka consumer sees (read_uncommitted), each with
                          an `aborted` flag; NOTES below lists the mock's quirks

Usage: python capture_batches.py OUTDIR   (exit 0 only if every case captured bytes)
Needs confluent-kafka and kafka-python; kafka-python's snappy/lz4/zstd cases also need
python-snappy, lz4 and zstandard and are skipped (with a message) without them.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

import confluent_kafka
import kafka
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from kafka import KafkaProducer
from kafka import codec as kp_codec

HERE = os.path.dirname(os.path.abspath(__file__))
CODECS = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
T0 = 1_700_000_000_000  # fixed CreateTime base so librdkafka output is reproducible
XERIAL_MAGIC = b"\x82SNAPPY\x00"

# (key, value, headers, timestamp). Two groups: each group is flushed on its own, so a
# case holds at least two batches. Covers null/empty key and value, duplicate and
# null-valued headers, binary data, and a timestamp below the batch's first one.
# Each group must compress well: both producers silently send a batch uncompressed
# when compression does not make it smaller.
GROUPS = [
    [
        (b"k1", b"hello " * 40, [("h1", b"v1")], T0),
        (None, b"no key", [], T0 + 1),
        (b"k3", None, [], T0 + 2),  # tombstone
        (b"k4", b"with headers",
         [("dup", b"a"), ("dup", b"b"), ("nullh", None), ("empty", b"")], T0 + 3),
        (b"k5", b"", [], T0 + 4),
        (b"", b"empty key", [], T0 + 5),
        (b"k7", bytes(range(0, 256, 8)), [("bin", bytes([0, 255]))], T0 + 6),
        (b"k8", b"earlier", [], T0 - 1000),  # negative timestamp delta
    ],
    [
        (b"k9", b"second batch " * 20, [], T0 + 10),
        (b"k10", b"last", [("h", b"x")], T0 + 11),
    ],
]
# Transaction: committed, aborted, committed (each: key, value, timestamp).
TXNS = [
    (True, [(b"t1", b"commit-1a", T0 + 20), (b"t2", b"commit-1b", T0 + 21)]),
    (False, [(b"t3", b"abort-2a", T0 + 22), (b"t4", b"abort-2b", T0 + 23)]),
    (True, [(b"t5", b"commit-3a", T0 + 24)]),
]


NOTES = [
    "<case>.bin = the partition's records fields from successive Fetch v4 responses "
    "(read_uncommitted), concatenated; the mock returns one stored batch per Fetch.",
    "The mock stores produced batches verbatim except baseOffset and "
    "partitionLeaderEpoch, which CRC does not cover; producer CRCs stay valid.",
    "Control batches (rdkafka_txn) are synthesized by the mock, not a producer or a "
    "real broker: CRC field 0 (crc_ok false), timestamps 0, base_sequence 0.",
    "The mock's Fetch always returns an empty aborted_transactions list and "
    "last_stable_offset = high watermark; records' `aborted` flags and "
    "aborted_transactions_from_markers are derived from the ABORT control batches.",
    "kafka-python refuses null header values, so its cases lack the 'nullh' header.",
    "Topics are auto-created by the mock with 4 partitions; only partition 0 is used.",
    "Producer ids, kafka-python gzip headers (mtime) and CRCs change between runs.",
]


# ---------------------------------------------------------------- mock cluster

def start_cluster():
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "mock_cluster.py"), "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().strip()
    if not line.startswith("BOOTSTRAP "):
        proc.kill()
        sys.exit(f"mock cluster failed to start: {line!r}")
    return proc, line.split()[1]


def stop_cluster(proc):
    proc.stdin.close()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


# ---------------------------------------------------------------- producers

def produce_rdkafka(bootstrap, topic, codec):
    p = Producer({"bootstrap.servers": bootstrap, "compression.type": codec,
                  "linger.ms": 5000, "batch.num.messages": 1000})
    for group in GROUPS:
        for key, value, headers, ts in group:
            p.produce(topic, value, key, partition=0, headers=headers, timestamp=ts)
        if p.flush(10):
            raise RuntimeError(f"{topic}: flush left messages")


def produce_rdkafka_txn(bootstrap, topic):
    p = Producer({"bootstrap.servers": bootstrap, "transactional.id": "golden-txn",
                  "linger.ms": 5000})
    p.init_transactions(10)
    for commit, records in TXNS:
        p.begin_transaction()
        for key, value, ts in records:
            p.produce(topic, value, key, partition=0, timestamp=ts)
        p.flush(10)
        (p.commit_transaction if commit else p.abort_transaction)(10)


def produce_kafka_python(bootstrap, topic, codec):
    # api_version pins ApiVersions to v2: the mock answers v3/v4 with an error reply
    # kafka-python cannot decode. (2, 3) still means record batch v2 and idempotence.
    p = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5000, api_version=(2, 3),
                      compression_type=None if codec == "none" else codec)
    for group in GROUPS:
        for key, value, headers, ts in group:
            # kafka-python's send() rejects null header values; leave those out.
            headers = [(k, v) for k, v in headers if v is not None]
            p.send(topic, value=value, key=key, headers=headers, partition=0,
                   timestamp_ms=ts)
        p.flush(10)
    p.close(10)


# ---------------------------------------------------------------- raw Fetch v4

def kstr(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


def fetch_v4(sock, topic, offset, isolation, corr):
    """One Fetch v4 for partition 0; returns (error, hw, lso, aborted, records)."""
    body = struct.pack(">hhi", 1, 4, corr) + kstr("golden-capture")
    body += struct.pack(">iiiib", -1, 100, 0, 64 << 20, isolation)
    body += struct.pack(">i", 1) + kstr(topic)
    body += struct.pack(">iiqi", 1, 0, offset, 32 << 20)
    sock.sendall(struct.pack(">i", len(body)) + body)
    buf = recv_exact(sock, struct.unpack(">i", recv_exact(sock, 4))[0])
    got_corr, _throttle, ntopics = struct.unpack_from(">iii", buf, 0)
    assert got_corr == corr and ntopics == 1, (got_corr, ntopics)
    pos = 12
    (nlen,) = struct.unpack_from(">h", buf, pos)
    pos += 2 + nlen
    nparts, _part, err, hw, lso, naborted = struct.unpack_from(">iihqqi", buf, pos)
    assert nparts == 1
    pos += 30
    aborted = []
    for _ in range(max(naborted, 0)):
        aborted.append(list(struct.unpack_from(">qq", buf, pos)))
        pos += 16
    (rlen,) = struct.unpack_from(">i", buf, pos)
    pos += 4
    records = buf[pos:pos + rlen] if rlen > 0 else b""
    return err, hw, lso, aborted, records


def recv_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("broker closed the connection")
        out += chunk
    return bytes(out)


def fetch_all(bootstrap, topic):
    """Read the whole partition (read_uncommitted); also one read_committed Fetch."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        data, offset, corr, hw = b"", 0, 1, None
        while hw is None or offset < hw:
            err, hw, _lso, _ab, records = fetch_v4(sock, topic, offset, 0, corr)
            corr += 1
            if err:
                raise RuntimeError(f"{topic}: fetch error {err} at offset {offset}")
            whole = b"".join(b["raw"] for b in split_batches(records))
            if not whole:
                break
            data += whole
            last = split_batches(whole)[-1]
            offset = last["base_offset"] + last["last_offset_delta"] + 1
        _e, _hw, lso, aborted, _r = fetch_v4(sock, topic, 0, 1, corr)
    return data, hw, lso, aborted


# ---------------------------------------------------------------- batch headers

def _crc32c_table():
    table = []
    for n in range(256):
        for _ in range(8):
            n = (n >> 1) ^ 0x82F63B78 if n & 1 else n >> 1
        table.append(n)
    return table


CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


BATCH_HEADER = struct.Struct(">qiibIhiqqqhii")  # 61 bytes, record batch v2


def split_batches(data):
    """Complete v2 batches in `data` with their header fields (a partial tail is dropped)."""
    out, pos = [], 0
    while pos + BATCH_HEADER.size <= len(data):
        (base, length, _epoch, magic, crc, attrs, lod, first_ts, max_ts, pid, pepoch,
         seq, count) = BATCH_HEADER.unpack_from(data, pos)
        end = pos + 12 + length
        if end > len(data):
            break
        assert magic == 2, f"magic {magic} at {pos}"
        out.append({
            "file_offset": pos, "size": end - pos, "base_offset": base,
            "last_offset_delta": lod, "record_count": count, "attributes": attrs,
            "codec": CODECS.get(attrs & 7, attrs & 7),
            "timestamp_type": "log_append_time" if attrs & 8 else "create_time",
            "transactional": bool(attrs & 16), "control": bool(attrs & 32),
            "producer_id": pid, "producer_epoch": pepoch, "base_sequence": seq,
            "first_timestamp": first_ts, "max_timestamp": max_ts,
            "crc": crc, "crc_ok": crc32c(data[pos + 21:end]) == crc,
            "raw": data[pos:end],
        })
        pos = end
    return out


def snappy_framing(batches):
    """Per snappy batch: 'xerial' if its records start with the xerial stream header."""
    return ["xerial" if b["raw"][61:69] == XERIAL_MAGIC else "raw"
            for b in batches if b["codec"] == "snappy"]


def varint(data, pos):
    """Zigzag varint at pos -> (value, next pos)."""
    raw, shift = 0, 0
    while True:
        byte = data[pos]
        raw |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if byte < 0x80:
            return (raw >> 1) ^ -(raw & 1), pos


def control_type(batch):
    """0 = ABORT, 1 = COMMIT: from the key of the (uncompressed) control record."""
    raw = batch["raw"]
    _len, pos = varint(raw, 61)
    pos += 1  # record attributes
    _ts_delta, pos = varint(raw, pos)
    _off_delta, pos = varint(raw, pos)
    _key_len, pos = varint(raw, pos)
    return struct.unpack_from(">hh", raw, pos)[1]


def aborted_from_markers(batches):
    """What a real broker would report, derived from the control batches:
    ([[producer_id, first_offset], ...] per aborted transaction, set of aborted offsets)."""
    open_txn, ranges, offsets = {}, [], set()
    for b in batches:
        if not b["transactional"]:
            continue
        if not b["control"]:
            open_txn.setdefault(b["producer_id"], []).append(b)
        elif b["producer_id"] in open_txn:
            data = open_txn.pop(b["producer_id"])
            if control_type(b) == 0:
                ranges.append([b["producer_id"], data[0]["base_offset"]])
                for d in data:
                    offsets.update(range(d["base_offset"],
                                         d["base_offset"] + d["last_offset_delta"] + 1))
    return ranges, offsets


# ---------------------------------------------------------------- consume back

def consume(bootstrap, topic, isolation):
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "golden-" + topic,
                  "enable.auto.commit": False, "enable.partition.eof": True,
                  "isolation.level": isolation})
    c.assign([TopicPartition(topic, 0, 0)])
    out, deadline = [], time.time() + 15
    try:
        while time.time() < deadline:
            msg = c.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    return out
                raise RuntimeError(f"{topic}: {msg.error()}")
            out.append(msg)
        raise RuntimeError(f"{topic}: timed out consuming ({isolation})")
    finally:
        c.close()


def hexornull(b):
    return None if b is None else b.hex()


def describe(msg, aborted):
    ts_type, ts = msg.timestamp()
    return {
        "offset": msg.offset(), "key": hexornull(msg.key()), "value": hexornull(msg.value()),
        "headers": [[k, hexornull(v)] for k, v in (msg.headers() or [])],
        "timestamp": ts,
        "timestamp_type": {1: "create_time", 2: "log_append_time"}.get(ts_type, ts_type),
        "aborted": aborted,
    }


# ---------------------------------------------------------------- main

def cases():
    rdk = f"librdkafka {confluent_kafka.libversion()[0]} " \
          f"(confluent-kafka {confluent_kafka.__version__})"
    kp = f"kafka-python {kafka.__version__}"
    for codec in CODECS.values():
        yield f"rdkafka_{codec}", rdk, codec, produce_rdkafka
    yield "rdkafka_txn", rdk, "none", produce_rdkafka_txn
    available = {"none": True, "gzip": True, "snappy": kp_codec.has_snappy(),
                 "lz4": kp_codec.has_lz4(), "zstd": kp_codec.has_zstd()}
    for codec, ok in available.items():
        if ok:
            yield f"kafkapython_{codec}", kp, codec, produce_kafka_python
        else:
            print(f"skip kafkapython_{codec}: codec library not installed")


def capture(bootstrap, outdir, name, producer, codec, produce):
    topic = "golden-" + name.replace("_", "-")
    if produce is produce_rdkafka_txn:
        produce(bootstrap, topic)
    else:
        produce(bootstrap, topic, codec)
    data, hw, lso, aborted = fetch_all(bootstrap, topic)
    with open(os.path.join(outdir, name + ".bin"), "wb") as f:
        f.write(data)
    batches = split_batches(data)
    everything = consume(bootstrap, topic, "read_uncommitted")
    txn = any(b["transactional"] for b in batches)
    # The mock never fills Fetch's aborted_transactions, so a read_committed consumer
    # still gets aborted records; flag them from the ABORT markers instead and keep
    # what the read_committed consumer returned for comparison.
    aborted_ranges, aborted_offsets = aborted_from_markers(batches)
    entry = {
        "case": name, "file": name + ".bin", "topic": topic, "partition": 0,
        "producer": producer, "codec": codec, "size": len(data),
        "high_watermark": hw, "last_stable_offset": lso,
        "batches": [{k: v for k, v in b.items() if k != "raw"} for b in batches],
        "records": [describe(m, m.offset() in aborted_offsets) for m in everything],
    }
    if codec == "snappy":
        entry["snappy_framing"] = snappy_framing(batches)
    if txn:
        entry["aborted_transactions"] = aborted
        entry["aborted_transactions_from_markers"] = aborted_ranges
        entry["read_committed_consumer_offsets"] = [
            m.offset() for m in consume(bootstrap, topic, "read_committed")]
    print(f"{name}: {len(data)} bytes, {len(batches)} batches, "
          f"{len(everything)} records")
    return entry


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    started = time.time()
    proc, bootstrap = start_cluster()
    try:
        todo = list(cases())
        entries = [capture(bootstrap, outdir, *c) for c in todo]
    finally:
        stop_cluster(proc)
    manifest = {
        "generated_by": "protocol-tests/peers/capture_batches.py",
        "broker": "librdkafka mock cluster (1 broker), fetched with Fetch v4",
        "fixed_timestamp_base": T0,
        "notes": NOTES,
        "cases": entries,
    }
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    empty = [e["case"] for e in entries if not e["size"]]
    print(f"done in {time.time() - started:.1f}s; empty: {empty or 'none'}")
    return 1 if empty else 0


if __name__ == "__main__":
    sys.exit(main())
