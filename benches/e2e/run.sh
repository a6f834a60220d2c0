#!/usr/bin/env bash
# One command for the end-to-end benchmark: strait mirror (keep codec, recompress) against a
# librdkafka consume→produce peer, and strait proxy against direct access, on local
# librdkafka mock clusters, with loopback TCP (iperf3) as the ceiling. Writes
# results/e2e-<date>.md (tables) and results/e2e-<date>.png (plot).
#   benches/e2e/run.sh [--size-mb N] [--cases lz4,zstd] [--proxy-mb M] [--proxy-rounds R] [--proxy-cpus beside|split|shared] [--partitions P] [--out DIR]
# The default, 200 MiB, takes minutes on 2 cores; the issue's target size is 1 GB: --size-mb 1024.
set -euo pipefail
cd "$(dirname "$0")/../.."
export E2E_T0=$(date +%s.%N)  # the report's "whole run" includes setup and build
scripts/setup.sh
if ! command -v iperf3 >/dev/null || ! command -v socat >/dev/null; then
  echo "e2e: installing iperf3 (the TCP ceiling) and socat (the plain relay) from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 socat >/dev/null
fi
.venv/bin/python -c "import matplotlib" 2>/dev/null || .venv/bin/pip install -q --disable-pip-version-check matplotlib
echo "e2e: building strait (the static release binary)"
cargo build --release --quiet --target x86_64-unknown-linux-musl
exec .venv/bin/python benches/e2e/bench.py "$@"
