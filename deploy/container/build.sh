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
roots=/etc/ssl/certs/ca-certificates.crt

if ! docker info >/dev/null 2>&1; then
  echo "container: no Docker engine answers here; the binary is $bin" >&2
  exit 1
fi
if [ ! -s "$roots" ]; then
  echo "container: no CA bundle at $roots to put in the image (Debian: apt-get install ca-certificates)" >&2
  exit 1
fi
# Without the buildx plugin, the classic builder does the same for a Dockerfile this plain.
docker buildx version >/dev/null 2>&1 || export DOCKER_BUILDKIT=0

# The build context is a folder with the binary and the CA bundle alone, not the
# repository and its target/.
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT
install -m 0755 "$bin" "$context/strait"
install -m 0644 "$roots" "$context/ca-certificates.crt"
docker build --quiet -f deploy/container/Dockerfile -t "$image" "$context"
docker run --rm "$image" --version
echo "container: built $image"
