"""The two Python halves of render.sh.

    render.py load ...   the run's traffic and faults (needs confluent-kafka: the repo's .venv)
    render.py draw ...   strait.json's panels, queried from Prometheus, into one PNG
                         (needs matplotlib: the venv render.sh makes under /tmp)

`draw` reads every panel's PromQL from the dashboard itself, substitutes the template
variables, asks Prometheus' query_range API, and lays the panels out on the dashboard's
own grid (24 columns, gridPos rows), with units, thresholds and value mappings as the
dashboard declares them. Grafana cannot be installed here; this is a stand-in that
shows exactly what the dashboard's queries return for a real run.
"""
import argparse
import json
import math
import os
import random
import re
import sys
import threading
import time
import urllib.parse
import urllib.request

# ---------------------------------------------------------------------------------------
# load: the traffic and the faults of the run
# ---------------------------------------------------------------------------------------


class Events:
    """What the run did and when, for the picture's annotations."""

    def __init__(self, path):
        self.path = path
        self.items = []
        self.lock = threading.Lock()

    def add(self, text):
        with self.lock:
            self.items.append({"t": time.time(), "text": text})
            print(f"[load] {time.strftime('%H:%M:%S')} {text}", flush=True)
            with open(self.path, "w") as f:
                json.dump(self.items, f, indent=1)


def produce_paced(bootstrap, topic, partitions, plan, stop, name):
    """Produces to `topic` at the rate the plan gives for each second of the run.

    `plan(elapsed)` returns records per second. Records carry the current time as their
    timestamp, so the mirror's latency histogram measures the real copy time.
    """
    from confluent_kafka import Producer

    p = Producer({
        "bootstrap.servers": bootstrap,
        "linger.ms": 10,
        "enable.idempotence": True,
        "acks": "all",
        "compression.type": "none",
        "message.timeout.ms": 120000,
        "client.id": name,
        # Clients behind the proxy refresh metadata often, so rewrites keep happening.
        "topic.metadata.refresh.interval.ms": 10000,
    })
    failures = [0]

    def report(err, _msg):
        if err:
            failures[0] += 1

    rng = random.Random(topic)
    start = time.time()
    tick = 0.05
    owed = 0.0
    i = 0
    while not stop.is_set():
        elapsed = time.time() - start
        owed += plan(elapsed) * tick
        while owed >= 1:
            value = (f"{topic}-{i}-" + "x" * rng.randint(50, 400)).encode()
            try:
                p.produce(topic, key=f"k{i % 997}".encode(), value=value, partition=i % partitions,
                          on_delivery=report)
            except BufferError:
                p.poll(0.1)
                continue
            i += 1
            owed -= 1
        p.poll(0)
        time.sleep(max(0.0, start + elapsed + tick - time.time()))
    p.flush(60)
    print(f"[load] {name}: {i} records to {topic}, {failures[0]} failed", flush=True)


def consume_loop(bootstrap, topic, stop, name):
    """A consumer group reading `topic`, as a client behind the proxy would."""
    from confluent_kafka import Consumer

    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "dashboard-readers",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": True,
        "auto.commit.interval.ms": 1000,
        "check.crcs": True,
        "client.id": name,
        "topic.metadata.refresh.interval.ms": 10000,
    })
    c.subscribe([topic])
    seen = 0
    while not stop.is_set():
        for m in c.consume(500, 0.5):
            if not m.error():
                seen += 1
    c.close()
    print(f"[load] {name}: consumed {seen} records of {topic}", flush=True)


def list_loop(bootstrap, stop, every):
    """A monitoring tool's short visits: a fresh admin client lists the cluster."""
    from confluent_kafka.admin import AdminClient

    visits = 0
    while not stop.wait(every):
        admin = AdminClient({"bootstrap.servers": bootstrap, "client.id": "lister-via-proxy"})
        admin.list_topics(timeout=10)
        visits += 1
        del admin
    print(f"[load] lister-via-proxy: {visits} listings", flush=True)


def mock_command(control, replies, command, events, text):
    """Writes a command to a mock cluster's stdin (a fifo) and waits for its answer."""
    before = _count_lines(replies)
    with open(control, "w") as f:
        f.write(command + "\n")
    deadline = time.time() + 10
    while time.time() < deadline:
        lines = _lines(replies)
        if len(lines) > before:
            answer = lines[before].strip()
            if answer != "OK":
                sys.exit(f"mock cluster refused {command!r}: {answer}")
            events.add(text)
            return
        time.sleep(0.05)
    sys.exit(f"mock cluster did not answer {command!r}")


def _lines(path):
    with open(path) as f:
        return f.readlines()


def _count_lines(path):
    return len(_lines(path))


def load(args):
    events = Events(args.events)
    stop = threading.Event()
    d = args.duration
    # The run's script, as fractions of its duration.
    burst_clicks = (0.20 * d, 0.20 * d + 15)
    outage = (0.45 * d, 0.45 * d + args.outage)
    burst_orders = (0.72 * d, 0.72 * d + 12)

    def clicks(t):
        base = 300 + 80 * math.sin(t / 9)
        return 4000 if burst_clicks[0] <= t < burst_clicks[1] else base

    def orders(t):
        return 1500 if burst_orders[0] <= t < burst_orders[1] else 80

    threads = [
        threading.Thread(target=produce_paced, args=(args.source, "clicks", 6, clicks, stop, "clicks-producer")),
        threading.Thread(target=produce_paced, args=(args.proxy, "orders", 4, orders, stop, "orders-producer-via-proxy")),
        threading.Thread(target=consume_loop, args=(args.proxy, "orders", stop, "orders-consumer-via-proxy")),
        threading.Thread(target=list_loop, args=(args.proxy, stop, 15)),
    ]
    start = time.time()
    events.add("traffic starts: clicks direct to the source, orders through the proxy")
    for t in threads:
        t.start()

    def at(offset):
        time.sleep(max(0.0, start + offset - time.time()))

    at(burst_clicks[0])
    events.add("burst: clicks at 4000 records/s for 15 s")
    at(outage[0])
    heartbeat_topic = f"__strait_heartbeats.{args.flow}"
    broker = args.down_broker
    # Put the flow's heartbeat partition and half of the clicks partitions on the broker
    # about to fail, so the outage shows in the heartbeats as well as in the lag.
    mock_command(args.target_control, args.target_replies, f"leader {heartbeat_topic} 0 {broker}", events,
                 f"target: heartbeat partition moved to broker {broker}")
    for p in (0, 2, 4):
        mock_command(args.target_control, args.target_replies, f"leader clicks {p} {broker}", events,
                     f"target: clicks partition {p} moved to broker {broker}")
    mock_command(args.target_control, args.target_replies, f"down {broker}", events,
                 f"target broker {broker} down")
    at(outage[1])
    mock_command(args.target_control, args.target_replies, f"up {broker}", events, f"target broker {broker} up")
    at(burst_orders[0])
    events.add("burst: orders through the proxy at 1500 records/s for 12 s")
    at(d)
    stop.set()
    for t in threads:
        t.join()
    events.add("traffic stops")


# ---------------------------------------------------------------------------------------
# draw: the dashboard's panels from Prometheus
# ---------------------------------------------------------------------------------------

# Grafana's classic palette and dark theme.
PALETTE = ["#7EB26D", "#EAB839", "#6ED0E0", "#EF843C", "#E24D42", "#1F78C1", "#BA43A9", "#705DA0",
           "#508642", "#CCA300", "#447EBC", "#C15C17", "#890F02", "#0A437C", "#6D1F62", "#584477"]
NAMED = {"green": "#73BF69", "orange": "#FF9830", "red": "#F2495C", "yellow": "#FADE2A", "blue": "#5794F2"}
BG, PANEL, BORDER, TEXT, MUTED, GRID = "#111217", "#181b1f", "#2c3235", "#ccccdc", "#8e8e9e", "#2a2d33"


def color(name):
    return NAMED.get(name, name)


def substitute(expr, variables):
    """The dashboard's expression with its variables replaced, longest names first."""
    for name in sorted(variables, key=len, reverse=True):
        expr = expr.replace("${" + name + "}", variables[name]).replace("$" + name, variables[name])
    left = re.findall(r"\$\{?\w+", expr)
    if left:
        sys.exit(f"unsubstituted variables {left} in {expr}")
    return expr


def query_range(prometheus, expr, start, end, step):
    params = urllib.parse.urlencode({"query": expr, "start": start, "end": end, "step": step})
    try:
        with urllib.request.urlopen(f"{prometheus}/api/v1/query_range?{params}", timeout=30) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        sys.exit(f"Prometheus refused {expr}: {e.read().decode()}")
    if body.get("status") != "success":
        sys.exit(f"Prometheus failed {expr}: {body}")
    return body["data"]["result"]


def legend(fmt, labels):
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: labels.get(m.group(1), ""), fmt).strip()


SI = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")]
IEC = [(2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")]


def _num(v):
    return f"{v:.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3g}"


def fmt_si(v, suffix):
    for scale, prefix in SI:
        if abs(v) >= scale:
            return f"{_num(v / scale)} {prefix}{suffix}".strip()
    return f"{_num(v)} {suffix}".strip()


def fmt_value(v, unit):
    """A tick label in the dashboard's unit, as Grafana writes it."""
    if unit == "ops":
        return fmt_si(v, "ops/s")
    if unit == "reqps":
        return fmt_si(v, "req/s")
    if unit == "Bps":
        return fmt_si(v, "B/s")
    if unit == "bytes":
        for scale, name in IEC:
            if abs(v) >= scale:
                return f"{_num(v / scale)} {name}"
        return f"{_num(v)} B"
    if unit == "s":
        if v == 0:
            return "0 s"
        if abs(v) < 1:
            return f"{_num(v * 1000)} ms"
        if abs(v) < 60:
            return f"{_num(v)} s"
        return f"{_num(v / 60)} min"
    return fmt_si(v, "")


def draw(args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator
    from datetime import datetime

    with open(args.dashboard) as f:
        dash = json.load(f)
    events = []
    if args.events and os.path.exists(args.events):
        with open(args.events) as f:
            events = json.load(f)
    variables = dict(v.split("=", 1) for v in args.var)
    step = args.step
    # Grafana's $__rate_interval: max($__interval + scrape interval, 4 × scrape interval).
    variables.setdefault("__rate_interval", f"{max(step + args.scrape, 4 * args.scrape)}s")
    variables.setdefault("__interval", f"{step}s")

    panels = dash["panels"]
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    col_w, row_h, header = 0.78, 0.33, 1.3
    width, height = 24 * col_w, bottom * row_h + header
    fig = plt.figure(figsize=(width, height), dpi=args.dpi, facecolor=BG)

    def box(x, y, w, h):
        """Figure coordinates of a grid rectangle, with a small gutter."""
        g = 0.06
        left = (x * col_w + g) / width
        top = 1 - (header + y * row_h + g) / height
        return left, top - (h * row_h - 2 * g) / height, (w * col_w - 2 * g) / width, (h * row_h - 2 * g) / height

    start, end = args.start, args.end
    span = f"{datetime.fromtimestamp(start):%Y-%m-%d %H:%M:%S} to {datetime.fromtimestamp(end):%H:%M:%S}"
    fig.text(0.006, 1 - 0.35 / height, dash["title"], color=TEXT, fontsize=16, weight="bold", va="center")
    shown = "  ".join(f"{k} = {v}" for k, v in sorted(variables.items()) if not k.startswith("__"))
    fig.text(0.006, 1 - 0.78 / height,
             f"{os.path.basename(args.dashboard)}: every panel's own PromQL, run against Prometheus (query_range, step {step}s, "
             f"$__rate_interval = {variables['__rate_interval']}) for a real run of strait, {span}.\n{shown}. "
             f"Dotted lines: the run's events, numbered as listed on the right. Drawn with matplotlib because Grafana is not available here.",
             color=MUTED, fontsize=8.5, va="center")

    # The run's events, numbered on every panel as Grafana draws annotations.
    marked = [e for e in events if start <= e["t"] <= end and not e["text"].startswith("target: ")]
    fig.text(0.994, 1 - 0.55 / height,
             "\n".join(f"{n}  {datetime.fromtimestamp(e['t']):%H:%M:%S}  {e['text']}" for n, e in enumerate(marked, 1)),
             color="#5794F2", fontsize=7.5, ha="right", va="center", family="monospace")
    empty = []
    for panel in sorted(panels, key=lambda p: (p["gridPos"]["y"], p["gridPos"]["x"])):
        g = panel["gridPos"]
        if panel["type"] == "row":
            l, b, w, h = box(g["x"], g["y"], g["w"], g["h"])
            fig.text(l, b + h / 2, panel["title"], color=TEXT, fontsize=12, weight="bold", va="center")
            continue
        l, b, w, h = box(g["x"], g["y"], g["w"], g["h"])
        fig.patches.append(Rectangle((l, b), w, h, transform=fig.transFigure, facecolor=PANEL,
                                     edgecolor=BORDER, linewidth=0.8, zorder=-10))
        fig.text(l + 0.004, b + h - 0.16 / height, panel["title"], color=TEXT, fontsize=10, weight="bold", va="top")
        # Time ticks on round seconds or minutes, about one per two grid columns.
        spacing = next((c for c in (5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)
                        if (end - start) / c <= max(3, g["w"] // 2 + 1)), 3600)
        ticks = [mdates.date2num(datetime.fromtimestamp(t))
                 for t in range(int(math.ceil(start / spacing) * spacing), int(end) + 1, spacing)]
        tick_format = "%H:%M" if spacing >= 60 else "%H:%M:%S"
        defaults = panel["fieldConfig"]["defaults"]
        unit = defaults.get("unit", "short")
        custom = defaults.get("custom", {})

        series = []
        for t in panel["targets"]:
            expr = substitute(t["expr"], variables)
            for r in query_range(args.prometheus, expr, start, end, step):
                labels = r["metric"]
                xs = [datetime.fromtimestamp(float(ts)) for ts, _ in r["values"]]
                ys = [float(v) for _, v in r["values"]]
                name = legend(t.get("legendFormat", ""), labels) or expr
                series.append((name, xs, ys))
        if not series:
            empty.append(panel["title"])
        columns = 3 if len(series) > 6 else 2
        legend_rows = math.ceil(len(series) / columns) if series else 1
        legend_h = (0.17 * legend_rows + 0.12) / height
        title_h = 0.42 / height
        # The axes sits inside the panel, leaving room for tick labels, title and legend.
        ax_left = l + 0.95 / width
        ax = fig.add_axes([ax_left, b + legend_h + 0.30 / height, l + w - ax_left - 0.12 / width,
                           h - legend_h - title_h - 0.30 / height])
        ax.set_facecolor(PANEL)
        for s in ax.spines.values():
            s.set_color(BORDER)
        ax.tick_params(colors=MUTED, labelsize=7)
        ax.grid(True, color=GRID, linewidth=0.6)
        ax.set_xlim(datetime.fromtimestamp(start), datetime.fromtimestamp(end))
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_major_formatter(mdates.DateFormatter(tick_format))
        ax.yaxis.set_major_locator(MaxNLocator(5))

        mappings = {}
        for m in defaults.get("mappings", []):
            if m.get("type") == "value":
                mappings.update({float(k): v.get("text", k) for k, v in m["options"].items()})
        if mappings:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, m=mappings: m.get(float(v), "")))
            ax.set_yticks(sorted(mappings))
        else:
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _, u=unit: fmt_value(v, u)))
        if custom.get("axisLabel"):
            ax.set_ylabel(custom["axisLabel"], color=MUTED, fontsize=7.5)

        step_style = custom.get("lineInterpolation") == "stepAfter"
        for i, (name, xs, ys) in enumerate(sorted(series, key=lambda s: s[0])):
            c = PALETTE[i % len(PALETTE)]
            if step_style:
                ax.step(xs, ys, where="post", color=c, linewidth=1.3, label=name)
            else:
                ax.plot(xs, ys, color=c, linewidth=1.2, label=name)
                fill = custom.get("fillOpacity", 0) / 100
                if fill:
                    ax.fill_between(xs, ys, color=c, alpha=fill, linewidth=0)

        ymin = defaults.get("min")
        ymax = defaults.get("max")
        lo, hi = ax.get_ylim()
        if ymin is not None:
            lo = ymin
        if ymax is not None:
            hi = ymax + (0.08 if mappings else 0)
            lo = lo - (0.08 if mappings else 0)
        steps = defaults.get("thresholds", {}).get("steps", [])
        mode = custom.get("thresholdsStyle", {}).get("mode", "off")
        if mode != "off" and len(steps) > 1:
            hi = max(hi, steps[-1]["value"] * 1.15)
        ax.set_ylim(lo, hi if hi > lo else lo + 1)
        if mode != "off" and len(steps) > 1:
            for k, s in enumerate(steps):
                top = steps[k + 1]["value"] if k + 1 < len(steps) else ax.get_ylim()[1]
                bottom_v = s["value"] if s["value"] is not None else ax.get_ylim()[0]
                if "area" in mode:
                    ax.axhspan(bottom_v, top, color=color(s["color"]), alpha=0.09, linewidth=0)
                if s["value"] is not None and ("line" in mode or "dashed" in mode):
                    ax.axhline(s["value"], color=color(s["color"]), linewidth=0.9,
                               linestyle="--" if "dashed" in mode else "-")
        for n, e in enumerate(marked, 1):
            at = datetime.fromtimestamp(e["t"])
            ax.axvline(at, color="#5794F2", linewidth=0.7, linestyle=":", alpha=0.8)
            ax.text(at, 1.0, f" {n}", transform=ax.get_xaxis_transform(), color="#5794F2", fontsize=6.5,
                    va="top", ha="left")

        if series:
            leg = ax.legend(loc="upper left", bbox_to_anchor=(-(0.95 - 0.1) / width / ax.get_position().width,
                                                             -0.30 / height / ax.get_position().height),
                            ncol=columns, fontsize=7, frameon=False, labelcolor=TEXT, handlelength=1.2,
                            columnspacing=1.0, borderaxespad=0.0)
            for line in leg.get_lines():
                line.set_linewidth(2.5)
        else:
            ax.text(0.5, 0.5, "No data", transform=ax.transAxes, color=MUTED, ha="center", va="center")

    fig.savefig(args.out, facecolor=BG, dpi=args.dpi)
    print(f"[draw] {args.out}: {sum(1 for p in panels if p['type'] != 'row')} panels"
          + (f"; no data in: {', '.join(empty)}" if empty else ""), flush=True)
    if empty and args.strict:
        sys.exit(f"panels without data: {empty}")


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    lo = sub.add_parser("load")
    lo.add_argument("--source", required=True, help="the source cluster's bootstrap")
    lo.add_argument("--proxy", required=True, help="the proxy's bootstrap (in front of the source)")
    lo.add_argument("--target-control", required=True, help="the target mock cluster's stdin fifo")
    lo.add_argument("--target-replies", required=True, help="the file the target mock cluster answers into")
    lo.add_argument("--flow", required=True)
    lo.add_argument("--duration", type=float, default=240)
    lo.add_argument("--outage", type=float, default=20)
    lo.add_argument("--down-broker", type=int, default=2)
    lo.add_argument("--events", required=True)
    dr = sub.add_parser("draw")
    dr.add_argument("--prometheus", required=True)
    dr.add_argument("--dashboard", required=True)
    dr.add_argument("--start", type=float, required=True)
    dr.add_argument("--end", type=float, required=True)
    dr.add_argument("--step", type=int, default=2)
    dr.add_argument("--scrape", type=int, default=2, help="Prometheus' scrape interval, seconds")
    dr.add_argument("--var", action="append", default=[], help="NAME=VALUE for a template variable")
    dr.add_argument("--events")
    dr.add_argument("--out", required=True)
    dr.add_argument("--dpi", type=int, default=110)
    dr.add_argument("--strict", action="store_true", help="fail when a panel has no data")
    args = ap.parse_args()
    load(args) if args.cmd == "load" else draw(args)


if __name__ == "__main__":
    main()
