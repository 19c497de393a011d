#!/usr/bin/env bash
# Installs what is missing, then runs every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# Builds are cached outside the checkout so that a fresh clone (CI) reuses them; cargo's
# fingerprints make that safe.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clusterlab/target}"
cargo build --workspace --all-targets
# Integration tests start real broker processes; two at a time keeps a 2-core machine honest.
cargo test --workspace -- --test-threads=2
