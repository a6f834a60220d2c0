#!/usr/bin/env bash
# Builds the static binary and proves it is one: no dynamic loader, no shared libraries.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --target x86_64-unknown-linux-musl
bin=${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/strait
verdict=$(ldd "$bin" 2>&1 || true)
case "$verdict" in
  *"not a dynamic executable"*|*"statically linked"*) ;;
  *) echo "static-build: $bin is not static: $verdict" >&2; exit 1 ;;
esac
"$bin" --version
echo "static-build: $bin is statically linked ($(du -h "$bin" | cut -f1))"
