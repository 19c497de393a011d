#!/usr/bin/env bash
# Installs what is missing, builds, and opens the Cluster Lab desktop app: a window that
# supervises a local three-node cluster, started as the window opens (closing the window stops it).
# Without a display it says so; `clusterlab up` / `clusterlab serve --ui-dir ui/dist` then give the
# same lab in a browser.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh run
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clusterlab/target}"
(cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
cargo build --release -p broker -p labs -p clusterlab-desktop
# The catalog lives in the repository; the binary may be built elsewhere (CARGO_TARGET_DIR).
export CLUSTERLAB_DRILLS="${CLUSTERLAB_DRILLS:-$PWD/labs/drills}"
# --start: the window opens on a running three-node cluster.
exec "$CARGO_TARGET_DIR/release/clusterlab-desktop" --start "$@"
