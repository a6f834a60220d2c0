#!/usr/bin/env bash
# Builds the strait image from the static binary:
#   deploy/container/build.sh [IMAGE]    default IMAGE: strait:<version>
# Then, for example:
#   docker run --rm -v "$PWD/strait.toml:/etc/strait/strait.toml:ro" -p 9464:9464 strait:0.1.0
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/static-build.sh
bin="${CARGO_TARGET_DIR:-target}/x86_64-unknown-linux-musl/release/strait"
version=$("$bin" --version | cut -d' ' -f2)
image=${1:-strait:$version}

if ! docker info >/dev/null 2>&1; then
  echo "container: no Docker engine answers here; the binary is $bin" >&2
  exit 1
fi

# The build context is a folder with the binary alone, not the repository and its target/.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
install -m 0755 "$bin" "$context/strait"
docker build -f deploy/container/Dockerfile -t "$image" "$context"
docker run --rm "$image" --version
echo "container: built $image"
