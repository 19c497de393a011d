#!/usr/bin/env bash
# Installs what is missing, builds, and starts a Cluster Lab broker node on loopback
# (Kafka on 127.0.0.1:9092, telemetry on http://127.0.0.1:9644/state). Ctrl-C stops it cleanly.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clusterlab/target}"
cargo build --release -p broker
data="${CLUSTERLAB_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/clusterlab/node1}"
mkdir -p "$data"
exec "$CARGO_TARGET_DIR/release/clusterlab-broker" --node-id 1 --data-dir "$data" \
  --kafka-listen 127.0.0.1:9092 --http-listen 127.0.0.1:9644 --fsync always "$@"
