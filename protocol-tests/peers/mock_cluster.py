"""Start librdkafka's in-memory mock cluster and keep it alive.

Prints one line `BOOTSTRAP host:port,...` on stdout once the cluster listens, then
lives until stdin closes (the parent test process exits) or it is killed. The cluster
belongs to the client that created it, so this process must outlive every user of it.
"""
import logging
import re
import sys
import threading

from confluent_kafka import Producer

BOOTSTRAP = re.compile(r"bootstrap\.servers=(\S+)")


class Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.found = threading.Event()
        self.bootstrap = None

    def emit(self, record):
        match = BOOTSTRAP.search(record.getMessage())
        if match and not self.found.is_set():
            self.bootstrap = match.group(1)
            self.found.set()


def main():
    brokers = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    capture = Capture()
    logger = logging.getLogger("mock")
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    holder = Producer({
        "test.mock.num.brokers": brokers,
        "debug": "mock",
        "logger": logger,
    })
    holder.poll(0)
    if not capture.found.wait(30):
        print("ERROR mock cluster did not report its bootstrap address", flush=True)
        sys.exit(1)
    print(f"BOOTSTRAP {capture.bootstrap}", flush=True)
    # Serve until the parent goes away; poll keeps the client's background work alive.
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    while not stop.is_set():
        holder.poll(0.2)


if __name__ == "__main__":
    main()
