#!/usr/bin/env bash
# Builds what the window test needs and runs it under a private Xvfb display.
# Usage: src-tauri/tests-window/run.sh   (Debian: scripts/install-deps.sh test for the libraries)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cd "$root"
step() { echo "== $* ($(date +%T))"; }

for tool in xvfb-run WebKitWebDriver node; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run scripts/install-deps.sh test" >&2; exit 2; }
done
if [ ! -f ui/dist/index.html ]; then
  step "building ui (ui/dist missing)"
  (cd ui && npm ci --no-audit --no-fund && npm run build)
fi
if ! command -v tauri-driver >/dev/null; then
  step "installing tauri-driver 2.1.0 (3.x on crates.io are alphas)"
  cargo install tauri-driver --version 2.1.0 --locked
fi
# The test build's selection (scripts/test.sh): with the same features nothing is compiled twice.
step "cargo build --workspace --all-targets"
start=$SECONDS
cargo build --workspace --all-targets
echo "build took $((SECONDS - start))s"

target="$(cargo metadata --format-version 1 --no-deps | node -pe 'JSON.parse(require("fs").readFileSync(0)).target_directory')"
# A private data dir: the app's run dirs land there, which is how the test finds its own brokers.
data="$(mktemp -d /tmp/clusterlab-window.XXXXXX)"
trap 'rm -rf "$data"' EXIT
# Like the browser tests: docs/screenshots only when asked (CLUSTERLAB_REFRESH_SCREENSHOTS=1).
shots="$root/ui/test-results/screenshots"
[ "${CLUSTERLAB_REFRESH_SCREENSHOTS:-}" = 1 ] && shots="$root/docs/screenshots"
mkdir -p "$shots"
step "window test"
start=$SECONDS
# xvfb-run starts and stops its own Xvfb; the screen must hold the 1400x900 window.
CLUSTERLAB_DRILLS="$root/labs/drills" CLUSTERLAB_LESSONS="$root/labs/lessons" APP="$target/debug/clusterlab-desktop" TAURI_DRIVER="$(command -v tauri-driver)" \
  SHOT="$shots/desktop.png" XDG_DATA_HOME="$data" XDG_CONFIG_HOME="$data/config" \
  timeout -k 10 300 xvfb-run -a -s "-screen 0 1400x900x24" node "$here/window.test.mjs"
echo "window test took $((SECONDS - start))s"
