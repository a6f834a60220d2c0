#!/usr/bin/env bash
# Renders deploy/grafana/strait.json into docs/dashboard.png from a real run of strait.
#
# Grafana is not available here (it cannot be installed from the package registries
# this project uses), so this script renders the dashboard's own queries instead: it
# runs strait against two librdkafka mock clusters, scrapes it with a real Prometheus,
# then asks Prometheus' HTTP API (query_range) for EXACTLY the PromQL of each panel of
# strait.json (template variables replaced by their All value, `.*`) and draws the
# answers with matplotlib on the dashboard's own grid (render.py draw).
#
# The run (DURATION seconds, 240 by default):
#   - source and target: librdkafka mock clusters of 3 brokers each
#     (protocol-tests/peers/mock_cluster.py), topics clicks (6 partitions) and
#     orders (4 partitions) made on both;
#   - `strait mirror` copies both topics from source to target (flow edge-to-core);
#   - `strait proxy` stands in front of the source (proxy edge);
#   - render.py load: clicks produced straight to the source at about 300 records/s,
#     orders produced and consumed (a consumer group) through the proxy at 80/s;
#     a 15 s burst of clicks at 4000/s at 20 % of the run; at 45 % the heartbeat
#     partition and half the clicks partitions of the target move to broker 2, which
#     then goes down for OUTAGE seconds (20); at 72 % a 12 s burst of orders at 1500/s;
#   - Prometheus (Debian's package) scrapes both /metrics endpoints every 2 s.
#
# Usage: deploy/grafana/render.sh [OUT.png]     (default docs/dashboard.png)
#        REDRAW_FROM=/tmp/strait-dashboard-run.XXXXXX deploy/grafana/render.sh [OUT.png]
#        draws again from a finished run's Prometheus data, without running anything.
# Needs: cargo, python3 with venv, the repo's .venv (scripts/setup.sh makes it), and
# apt-get for prometheus when it is missing. matplotlib goes into its own venv under /tmp.
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
here="$repo/deploy/grafana"
out=${1:-"$repo/docs/dashboard.png"}
duration=${DURATION:-240}
outage=${OUTAGE:-20}
flow=edge-to-core
draw_venv=${DRAW_VENV:-/tmp/strait-dashboard-venv}
kafka_py="$repo/.venv/bin/python"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-"$repo/target"}

log() { echo "[render] $(date +%H:%M:%S) $*"; }

[ -x "$kafka_py" ] || { echo "no $kafka_py: run scripts/setup.sh first" >&2; exit 1; }
if ! command -v prometheus >/dev/null; then
    log "installing prometheus"
    apt-get update -qq && apt-get install -y -qq prometheus >/dev/null
fi
if [ ! -x "$draw_venv/bin/python" ] || ! "$draw_venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "making $draw_venv with matplotlib"
    python3 -m venv "$draw_venv"
    "$draw_venv/bin/pip" install -q -r "$here/requirements.txt"
fi

free_port() { "$kafka_py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

wait_port() {
    for _ in $(seq 200); do
        (echo >"/dev/tcp/${1%:*}/${1#*:}") 2>/dev/null && return 0
        sleep 0.1
    done
    echo "nothing listens on $1" >&2; exit 1
}

pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

# Prometheus on a run's folder; sets $prom.
start_prometheus() {
    prom=127.0.0.1:$(free_port)
    prometheus --config.file="$1/prometheus.yml" --storage.tsdb.path="$1/tsdb" \
        --web.listen-address="$prom" >>"$1/prometheus.log" 2>&1 &
    pids+=($!)
    wait_port "$prom"
}

# Every panel of strait.json, queried from Prometheus for a run's time range.
draw() {
    local run=$1
    read -r start end <"$run/range"
    mkdir -p "$(dirname "$out")"
    "$draw_venv/bin/python" "$here/render.py" draw --prometheus "http://$prom" --dashboard "$here/strait.json" \
        --start "$start" --end "$end" --step 2 --scrape 2 \
        --var datasource=prometheus --var 'flow=.*' --var 'topic=.*' --var 'proxy=.*' \
        --events "$run/events.json" --out "$out"
    log "wrote $out"
}

if [ -n "${REDRAW_FROM:-}" ]; then
    start_prometheus "$REDRAW_FROM"
    draw "$REDRAW_FROM"
    exit 0
fi

log "building strait"
(cd "$repo" && cargo build --release --quiet)
strait="$CARGO_TARGET_DIR/release/strait"

work=$(mktemp -d /tmp/strait-dashboard-run.XXXXXX)
trap 'cleanup; log "logs and data of the run stay in $work"' EXIT

# A mock cluster reading commands from a fifo that this shell keeps open, so that
# render.py can steer it too. Sets $bootstrap.
start_mock() {
    local name=$1 fd=$2
    mkfifo "$work/$name.ctl"
    eval "exec $fd<>\"$work/$name.ctl\""
    "$kafka_py" "$repo/protocol-tests/peers/mock_cluster.py" 3 <&"$fd" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    for _ in $(seq 100); do
        grep -q '^BOOTSTRAP ' "$work/$name.out" 2>/dev/null && break
        sleep 0.1
    done
    bootstrap=$(sed -n 's/^BOOTSTRAP //p' "$work/$name.out")
    [ -n "$bootstrap" ] || { echo "mock cluster $name did not start" >&2; exit 1; }
}

# Sends a command to a mock cluster and waits for its OK.
mock() {
    local name=$1; shift
    local before; before=$(wc -l <"$work/$name.out")
    echo "$*" >"$work/$name.ctl"
    for _ in $(seq 100); do
        [ "$(wc -l <"$work/$name.out")" -gt "$before" ] && break
        sleep 0.05
    done
    [ "$(sed -n "$((before + 1))p" "$work/$name.out")" = OK ] || { echo "mock $name: $* failed" >&2; exit 1; }
}

start_mock source 7; source=$bootstrap
start_mock target 8; target=$bootstrap
for c in source target; do
    mock "$c" topic clicks 6
    mock "$c" topic orders 4
done
log "source $source, target $target"

mirror_metrics=127.0.0.1:$(free_port)
proxy_metrics=127.0.0.1:$(free_port)
proxy_listen=127.0.0.1:$(free_port)
proxy_base=$("$kafka_py" -c '
import socket
for base in range(21000, 29000, 10):
    try:
        for i in range(1, 4):
            socket.socket().bind(("127.0.0.1", base + i))
        print(base); break
    except OSError:
        pass')

STRAIT_LOG=info "$strait" mirror --source "$source" --target "$target" --topics 'clicks|orders' \
    --name "$flow" --metrics "$mirror_metrics" 2>"$work/mirror.log" &
pids+=($!)
STRAIT_LOG=info "$strait" proxy --upstream "$source" --listen "$proxy_listen" --advertise 127.0.0.1 \
    --port-base "$proxy_base" --name edge --metrics "$proxy_metrics" 2>"$work/proxy.log" &
pids+=($!)
wait_port "$mirror_metrics"
wait_port "$proxy_listen"
log "strait mirror metrics on $mirror_metrics, strait proxy on $proxy_listen (metrics $proxy_metrics)"

cat >"$work/prometheus.yml" <<EOF
global:
  scrape_interval: 2s
  evaluation_interval: 2s
scrape_configs:
  - job_name: strait-mirror
    static_configs: [{targets: ["$mirror_metrics"]}]
  - job_name: strait-proxy
    static_configs: [{targets: ["$proxy_metrics"]}]
EOF
start_prometheus "$work"
log "prometheus on $prom, scraping every 2 s"

start=$(date +%s)
log "running the traffic for $duration s"
"$kafka_py" "$here/render.py" load --source "$source" --proxy "$proxy_listen" \
    --target-control "$work/target.ctl" --target-replies "$work/target.out" --flow "$flow" \
    --duration "$duration" --outage "$outage" --events "$work/events.json"
# Let the last samples settle into Prometheus.
sleep 10
echo "$start $(date +%s)" >"$work/range"
log "warnings and errors the mirror logged: $(grep -c -i 'warn\|error' "$work/mirror.log" || true)"
draw "$work"
