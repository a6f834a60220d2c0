"""A librdkafka mock cluster with the bench topics created up front, kept alive until stdin closes.

Why not protocol-tests/peers/mock_cluster.py: through confluent-kafka the mock can only
auto-create topics, always with 4 partitions, and it does not answer CreateTopics. The
exported C call rd_kafka_mock_topic_create takes a partition count, so this file drives
librdkafka (the copy bundled with confluent-kafka) through ctypes to get 8 partitions.
Usage: mock.py BROKERS TOPIC:PARTITIONS... ; prints `BOOTSTRAP host:port,...`.
"""
import ctypes
import ctypes.util
import glob
import os
import sys
import threading

import confluent_kafka


def main():
    libdir = os.path.join(os.path.dirname(confluent_kafka.__file__), "..", "confluent_kafka.libs")
    bundled = sorted(glob.glob(os.path.join(libdir, "librdkafka*.so*")))  # the wheel's copy, else the system's
    lib = ctypes.CDLL(bundled[0] if bundled else ctypes.util.find_library("rdkafka"))
    P = ctypes.c_void_p
    for name, res, args in [
        ("rd_kafka_conf_new", P, []),
        ("rd_kafka_conf_set", ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]),
        ("rd_kafka_new", P, [ctypes.c_int, P, ctypes.c_char_p, ctypes.c_size_t]),
        ("rd_kafka_mock_cluster_new", P, [P, ctypes.c_int]),
        ("rd_kafka_mock_cluster_bootstraps", ctypes.c_char_p, [P]),
        ("rd_kafka_mock_topic_create", ctypes.c_int, [P, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]),
        ("rd_kafka_poll", ctypes.c_int, [P, ctypes.c_int]),
    ]:
        getattr(lib, name).restype, getattr(lib, name).argtypes = res, args
    err = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    lib.rd_kafka_conf_set(conf, b"log_level", b"3", err, 512)  # no "no bootstrap.servers" notice
    rk = lib.rd_kafka_new(0, conf, err, 512)  # a producer handle that only owns the cluster
    brokers = int(sys.argv[1])
    mc = lib.rd_kafka_mock_cluster_new(rk, brokers)
    if not rk or not mc:
        sys.exit(f"mock cluster not created: {err.value.decode()}")
    for spec in sys.argv[2:]:
        topic, parts = spec.split(":")
        code = lib.rd_kafka_mock_topic_create(mc, topic.encode(), int(parts), min(3, brokers))
        if code:
            sys.exit(f"rd_kafka_mock_topic_create({topic}) failed: error {code}")
    print("BOOTSTRAP", lib.rd_kafka_mock_cluster_bootstraps(mc).decode(), flush=True)
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        lib.rd_kafka_poll(rk, 200)
    os._exit(0)  # the cluster dies with the process; skip librdkafka's slow teardown


if __name__ == "__main__":
    main()
