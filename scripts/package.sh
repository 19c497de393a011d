#!/usr/bin/env bash
# Builds the desktop app's .deb and .rpm with the Tauri bundler (tauri-cli from crates.io).
# Usage: scripts/package.sh [--debug]
#   --debug  package the debug build (what CI tests: it reuses the test build); default release.
# Prints the paths of the packages it wrote. Each holds:
#   /usr/bin/clusterlab-desktop (the window), /usr/bin/clusterlab (CLI), /usr/bin/clusterlab-broker,
#   /usr/share/clusterlab/drills/*.toml, /usr/share/clusterlab/lessons/*.toml, a desktop entry and icons; it depends on WebKitGTK 4.1,
#   GTK 3 and zlib, which apt/dnf install with it.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clusterlab/target}"

# The debug package reuses the test build exactly: the same workspace-wide selection, so cargo's
# feature unification picks the same features and nothing is compiled twice.
profile=release
cargo_build=(--release --workspace --bins)
tauri_profile=()
if [ "${1:-}" = "--debug" ]; then
  profile=debug; cargo_build=(--workspace --all-targets); tauri_profile=(--debug)
elif [ -n "${1:-}" ]; then
  echo "usage: scripts/package.sh [--debug]" >&2; exit 2
fi

if ! cargo tauri --version >/dev/null 2>&1; then
  echo "package: installing tauri-cli 2 from crates.io (once; a few minutes)"
  cargo install tauri-cli --version "^2" --locked
fi
if [ ! -f ui/dist/index.html ]; then
  (cd ui && npm ci --no-audit --no-fund --loglevel=error && npm run build)
fi

echo "package: building the window, the CLI and the broker ($profile)"
cargo build "${cargo_build[@]}"
bin="$CARGO_TARGET_DIR/$profile"

# The CLI, the broker, the drills and the lessons go into the package as plain files: the installed CLI and
# window find them beside themselves (labs::paths). The paths are absolute, so this overlay is
# written per build rather than kept in src-tauri/tauri.conf.json.
overlay="$(mktemp --suffix=.json)"
trap 'rm -f "$overlay"' EXIT
files="$(node -e '
  const [bin, drills, lessons] = process.argv.slice(1);
  const fs = require("fs");
  const files = { "/usr/bin/clusterlab": `${bin}/clusterlab`, "/usr/bin/clusterlab-broker": `${bin}/clusterlab-broker` };
  for (const f of fs.readdirSync(drills).filter((f) => f.endsWith(".toml")).sort()) files[`/usr/share/clusterlab/drills/${f}`] = `${drills}/${f}`;
  for (const f of fs.readdirSync(lessons).filter((f) => f.endsWith(".toml")).sort()) files[`/usr/share/clusterlab/lessons/${f}`] = `${lessons}/${f}`;
  process.stdout.write(JSON.stringify(files));
' "$bin" "$root/labs/drills" "$root/labs/lessons")"
cat > "$overlay" <<EOF
{
  "bundle": {
    "active": true,
    "targets": ["deb", "rpm"],
    "linux": {
      "deb": { "depends": ["zlib1g"], "files": $files },
      "rpm": { "depends": ["zlib"], "files": $files }
    }
  }
}
EOF

echo "package: bundling"
# `tauri bundle` packages the binaries built above; `tauri build` would build the window again
# with its own package selection (other features, so another compile of half the workspace).
(cd src-tauri && cargo tauri bundle "${tauri_profile[@]}" --bundles deb,rpm --config "$overlay" --ci)
find "$bin/bundle" -name '*.deb' -o -name '*.rpm' | sort
