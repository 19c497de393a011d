#!/usr/bin/env bash
# Installs what Cluster Lab needs on a fresh Debian/Ubuntu machine, skipping what is present.
# Usage: scripts/install-deps.sh [run|test]
#   run  - what building and running the desktop app needs (Rust, Node, GTK/WebKit for Tauri)
#   test - also the stock Kafka clients the tests drive (kcat, kafka-python), Debian's chromium
#          for the browser tests, and WebKitWebDriver + Xvfb for the real-window test
set -euo pipefail
purpose="${1:-run}"
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

need_apt=()
want() { dpkg -s "$1" >/dev/null 2>&1 || need_apt+=("$1"); }
# Building librdkafka (bundled by rdkafka-sys) and the broker.
for p in build-essential pkg-config zlib1g-dev curl ca-certificates; do want "$p"; done
command -v python3 >/dev/null 2>&1 || want python3
command -v node >/dev/null 2>&1 || want nodejs
command -v npm >/dev/null 2>&1 || want npm
if [ "$purpose" = "test" ]; then
  want kcat
  # Browser tests of the web UI drive Debian's chromium (no browser downloads).
  [ -x /usr/bin/chromium ] || want chromium
  python3 -m pip --version >/dev/null 2>&1 || want python3-pip
fi
# Tauri 2 on Linux (webkit2gtk 4.1): the desktop app is a workspace member, so every build needs it.
for p in libwebkit2gtk-4.1-dev libgtk-3-dev libssl-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev; do want "$p"; done
if [ "$purpose" = "test" ]; then
  # What src-tauri/tests-window needs to drive a real window.
  for p in webkit2gtk-driver xvfb xauth; do want "$p"; done
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-deps: apt packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "install-deps: installing the Rust toolchain with rustup"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
  # shellcheck disable=SC1091
  . "$HOME/.cargo/env"
fi

if [ "$purpose" = "test" ]; then
  if ! python3 -c 'import kafka' >/dev/null 2>&1; then
    echo "install-deps: pip kafka-python"
    python3 -m pip install -q kafka-python==2.2.21 2>/dev/null \
      || python3 -m pip install -q --break-system-packages kafka-python==2.2.21
  fi
fi
