#!/usr/bin/env bash
# Makes a Docker engine answer, for the container test: installs Debian's docker.io if
# there is no dockerd, and starts one if none answers. Prints the pid of a dockerd it
# started, so the caller can stop it again; prints nothing if one was answering. Only
# that pid goes to stdout: everything else goes to stderr.
set -euo pipefail
docker info >/dev/null 2>&1 && exit 0
if ! command -v dockerd >/dev/null; then
  echo "docker-engine: installing docker.io from Debian" >&2
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io >&2
  # Where an init system runs, the package starts an engine of its own.
  docker info >/dev/null 2>&1 && exit 0
fi
# The tests use the host's network only, so the engine makes no bridge and touches no
# firewall rules; vfs storage works on any file system, overlay support or not.
log=$(mktemp /tmp/dockerd.XXXXXX.log)
dockerd --iptables=false --ip6tables=false --bridge=none --storage-driver=vfs >"$log" 2>&1 &
pid=$!
for _ in $(seq 1 100); do
  if docker info >/dev/null 2>&1; then
    echo "$pid"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "docker-engine: dockerd exited; its log, $log:" >&2
    tail -20 "$log" >&2
    exit 1
  fi
  sleep 0.2
done
kill "$pid"
echo "docker-engine: dockerd did not answer within 20 s and was stopped; its log, $log:" >&2
tail -20 "$log" >&2
exit 1
