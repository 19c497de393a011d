#!/usr/bin/env bash
# Installs what is missing, builds, and starts a three-node Cluster Lab cluster on loopback:
#   node 1: Kafka 127.0.0.1:9092  telemetry http://127.0.0.1:9644/state  Raft 127.0.0.1:9093
#   node 2: Kafka 127.0.0.1:9192  telemetry http://127.0.0.1:9744/state  Raft 127.0.0.1:9193
#   node 3: Kafka 127.0.0.1:9292  telemetry http://127.0.0.1:9844/state  Raft 127.0.0.1:9293
# Ctrl-C stops every node gracefully (SIGTERM: hand off leadership, drain, fsync).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clusterlab/target}"
cargo build --release -p broker
bin="$CARGO_TARGET_DIR/release/clusterlab-broker"
data="${CLUSTERLAB_DATA:-${XDG_DATA_HOME:-$HOME/.local/share}/clusterlab/run}"
fsync="${CLUSTERLAB_FSYNC:-always}"

pids=()
stop() {
  echo "stopping nodes ${pids[*]}"
  kill -TERM "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
}
trap stop INT TERM EXIT
for i in 0 1 2; do
  id=$((i + 1))
  mkdir -p "$data/node$id"
  peers=()
  for j in 0 1 2; do [ "$j" != "$i" ] && peers+=(--peer "$((j + 1))=127.0.0.1:9${j}93,127.0.0.1:9${j}92"); done
  "$bin" --node-id "$id" --data-dir "$data/node$id" --fsync "$fsync" \
    --kafka-listen "127.0.0.1:9${i}92" --http-listen "127.0.0.1:9$((i + 6))44" --raft-listen "127.0.0.1:9${i}93" \
    "${peers[@]}" &
  pids+=($!)
done
echo "cluster starting: bootstrap servers 127.0.0.1:9092,127.0.0.1:9192,127.0.0.1:9292 (Ctrl-C to stop)"
wait "${pids[@]}"
