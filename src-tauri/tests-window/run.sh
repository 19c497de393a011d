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
  (cd ui && npm install --no-audit --no-fund && npm run build)
fi
if ! command -v tauri-driver >/dev/null; then
  step "installing tauri-driver 2.1.0 (3.x on crates.io are alphas)"
  cargo install tauri-driver --version 2.1.0 --locked
fi
step "cargo build -p broker -p clusterlab-desktop"
start=$SECONDS
cargo build -p broker -p clusterlab-desktop
echo "build took $((SECONDS - start))s"

target="$(cargo metadata --format-version 1 --no-deps | node -pe 'JSON.parse(require("fs").readFileSync(0)).target_directory')"
# A private data dir: the app's run dirs land there, which is how the test finds its own brokers.
data="$(mktemp -d /tmp/clusterlab-window.XXXXXX)"
trap 'rm -rf "$data"' EXIT
step "window test"
start=$SECONDS
# xvfb-run starts and stops its own Xvfb; the screen must hold the 1400x900 window.
CLUSTERLAB_DRILLS="$root/labs/drills" APP="$target/debug/clusterlab-desktop" TAURI_DRIVER="$(command -v tauri-driver)" \
  SHOT="$root/docs/screenshots/desktop.png" XDG_DATA_HOME="$data" \
  timeout -k 10 300 xvfb-run -a -s "-screen 0 1400x900x24" node "$here/window.test.mjs"
echo "window test took $((SECONDS - start))s"
