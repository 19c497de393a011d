#!/usr/bin/env bash
# Installs what is missing, then runs every test of the workspace, then every drill.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh test
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
# Builds are cached outside the checkout so that a fresh clone (CI) reuses them; cargo's
# fingerprints make that safe.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clusterlab/target}"
# The desktop app embeds the built web UI, so the UI is built first. `npm install` (from the
# lock file) rather than `npm ci`: vite lists a Windows-only optional package that the registry
# does not serve, and `npm ci` refuses a lock without it.
(cd ui && npm install --no-audit --no-fund --loglevel=error && npm run build)
cargo build --workspace --all-targets
# Unit tests and the single-node suite: two at a time keeps a 2-core machine honest.
cargo test --workspace --lib --bins -- --test-threads=2
cargo test -p broker --test node -- --test-threads=2
# Three-node clusters run one at a time: elections have timeouts, and six brokers on two cores
# would test the scheduler instead of the broker.
cargo test -p broker --test cluster -- --test-threads=1
# Every drill of the catalog, headless; the exit code says whether each met its expectation.
"$CARGO_TARGET_DIR/debug/clusterlab" drill run --all --drills labs/drills
# The web UI: unit tests (reducers, timeline maths), then the browser test against a real lab.
(cd ui && npm test && CLUSTERLAB_BIN="$CARGO_TARGET_DIR/debug/clusterlab" npm run e2e)
# The desktop app in a real window (Xvfb + tauri-driver + WebKitWebDriver): start, kill, close.
src-tauri/tests-window/run.sh
