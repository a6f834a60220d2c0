"""Start librdkafka's in-memory mock cluster, keep it alive, and inject faults on demand.

Prints `BOOTSTRAP host:port,...` once the cluster listens. Then reads one command per
line on stdin and answers `OK` or `ERR <why>` on stdout; it lives until stdin closes.
The cluster is made and steered through librdkafka's own C API (the mock cluster's
fault-injection functions, `rd_kafka_mock_*`), from the library confluent-kafka ships:

    leader TOPIC PARTITION BROKER   move a partition's leader
    down BROKER / up BROKER         take a broker off the network and back
    rtt BROKER MS                   add round-trip latency to a broker
    errors APIKEY CODE COUNT        the next COUNT requests of APIKEY fail with CODE
    topic NAME PARTITIONS           create a topic with that many partitions
    delete NAME                     delete a topic (with `topic`, it comes back bigger)
    coordinator GROUP BROKER        make a broker the coordinator of a consumer group
"""
import ctypes
import glob
import os
import sys

import confluent_kafka


def load():
    libs = os.path.join(os.path.dirname(confluent_kafka.__file__), os.pardir, "confluent_kafka.libs")
    lib = ctypes.CDLL(glob.glob(os.path.join(libs, "librdkafka*.so*"))[0])
    lib.rd_kafka_conf_new.restype = ctypes.c_void_p
    lib.rd_kafka_conf_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_new.restype = ctypes.c_void_p
    lib.rd_kafka_new.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t]
    lib.rd_kafka_handle_mock_cluster.restype = ctypes.c_void_p
    lib.rd_kafka_handle_mock_cluster.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_cluster_bootstraps.restype = ctypes.c_char_p
    lib.rd_kafka_mock_cluster_bootstraps.argtypes = [ctypes.c_void_p]
    lib.rd_kafka_mock_partition_set_leader.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
    lib.rd_kafka_mock_broker_set_down.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.rd_kafka_mock_broker_set_up.argtypes = [ctypes.c_void_p, ctypes.c_int32]
    lib.rd_kafka_mock_broker_set_rtt.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.c_int]
    lib.rd_kafka_mock_topic_create.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int]
    lib.rd_kafka_mock_coordinator_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int32]
    lib.rd_kafka_mock_topic_delete.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    lib.rd_kafka_mock_push_request_errors_array.argtypes = [
        ctypes.c_void_p, ctypes.c_int16, ctypes.c_size_t, ctypes.POINTER(ctypes.c_int)]
    lib.rd_kafka_mock_push_request_errors_array.restype = None
    return lib


def start(lib, brokers):
    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    if lib.rd_kafka_conf_set(conf, b"test.mock.num.brokers", str(brokers).encode(), errstr, 512) != 0:
        sys.exit(f"ERROR {errstr.value.decode()}")
    rk = lib.rd_kafka_new(0, conf, errstr, 512)
    if not rk:
        sys.exit(f"ERROR {errstr.value.decode()}")
    return rk, lib.rd_kafka_handle_mock_cluster(rk)


def run(lib, mc, words):
    name, args = words[0], words[1:]
    if name == "leader":
        return lib.rd_kafka_mock_partition_set_leader(mc, args[0].encode(), int(args[1]), int(args[2]))
    if name == "down":
        return lib.rd_kafka_mock_broker_set_down(mc, int(args[0]))
    if name == "up":
        return lib.rd_kafka_mock_broker_set_up(mc, int(args[0]))
    if name == "rtt":
        return lib.rd_kafka_mock_broker_set_rtt(mc, int(args[0]), int(args[1]))
    if name == "errors":
        key, code, count = map(int, args)
        lib.rd_kafka_mock_push_request_errors_array(mc, key, count, (ctypes.c_int * count)(*[code] * count))
        return 0

    if name == "coordinator":
        return lib.rd_kafka_mock_coordinator_set(mc, b"group", args[0].encode(), int(args[1]))
    if name == "delete":
        return lib.rd_kafka_mock_topic_delete(mc, args[0].encode())
    if name == "topic":
        return lib.rd_kafka_mock_topic_create(mc, args[0].encode(), int(args[1]), 1)
    raise ValueError(f"unknown command {name}")


def main():
    brokers = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    lib = load()
    rk, mc = start(lib, brokers)
    print(f"BOOTSTRAP {lib.rd_kafka_mock_cluster_bootstraps(mc).decode()}", flush=True)
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            err = run(lib, mc, words)
            print("OK" if not err else f"ERR librdkafka error {err}", flush=True)
        except (ValueError, IndexError) as e:
            print(f"ERR {e}", flush=True)
    del rk


if __name__ == "__main__":
    main()
