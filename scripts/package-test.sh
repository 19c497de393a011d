#!/usr/bin/env bash
# Installs a Cluster Lab .deb, uses it with no source tree in sight, and removes it again.
# Usage: scripts/package-test.sh FILE.deb
#   As root with apt: a real `apt-get install ./FILE.deb`, then `apt-get purge`, then a check that
#   every file the package put down is gone. Otherwise: `dpkg -x` into a temporary root.
# In between, from an empty working directory and with private XDG dirs: the installed CLI lists
# its drills and runs one, then a guided lesson, on clusters of installed brokers, `clusterlab runs`
# shows the drill run, and the installed window starts a cluster of the installed brokers (under
# Xvfb when present).
set -euo pipefail
deb="$(realpath "${1:?usage: scripts/package-test.sh FILE.deb}")"
step() { echo "== $* ($(date +%T))"; }
work="$(mktemp -d /tmp/clusterlab-package-test.XXXXXX)"
pkg="$(dpkg-deb -f "$deb" Package)"
mode=extract
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then mode=apt; fi
prefix="$work/root/usr"
installed=false
cleanup() {
  if [ "$mode" = apt ] && $installed; then apt-get purge -y -qq "$pkg" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ "$mode" = apt ]; then
  if dpkg -s "$pkg" >/dev/null 2>&1; then
    echo "package $pkg is installed already (from an earlier run?): purging it first"
    apt-get purge -y -qq "$pkg" >/dev/null
  fi
  step "apt-get install $deb"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb" >/dev/null
  installed=true
  prefix=/usr
  dpkg -L "$pkg" > "$work/files"
else
  step "dpkg -x $deb (not root: no real install)"
  dpkg -x "$deb" "$work/root"
fi
for f in bin/clusterlab bin/clusterlab-broker bin/clusterlab-desktop share/clusterlab/drills/seed-leader-crash.toml \
  share/clusterlab/lessons/leader-crash.toml; do
  [ -e "$prefix/$f" ] || { echo "FAIL: the package has no $prefix/$f" >&2; exit 1; }
done
entry="$(dpkg-deb -c "$deb" | grep -o 'usr/share/applications/.*\.desktop$' | sed -n 1p)"
[ -n "$entry" ] || { echo "FAIL: the package has no desktop entry" >&2; exit 1; }
desktop_entry="${prefix%/usr}/$entry"
grep -q '^Exec=clusterlab-desktop' "$desktop_entry" || { echo "FAIL: $desktop_entry does not start clusterlab-desktop" >&2; exit 1; }
ls "$prefix"/share/icons/hicolor/*/apps/*.png >/dev/null
echo "files: $(dpkg-deb -c "$deb" | wc -l) entries; depends: $(dpkg-deb -f "$deb" Depends)"

# No source tree: an empty working directory, and no variable pointing into one.
mkdir -p "$work/cwd" "$work/xdg/data" "$work/xdg/config"
cd "$work/cwd"
export XDG_DATA_HOME="$work/xdg/data" XDG_CONFIG_HOME="$work/xdg/config"
unset CLUSTERLAB_DRILLS CLUSTERLAB_BROKER_BIN
step "installed CLI: drill list"
# To a file, then its head: `| head` would end the pipe early and, with pipefail, fail the
# script with SIGPIPE (exit 141) whenever the list outgrows what the pipe holds at once.
"$prefix/bin/clusterlab" drill list > "$work/drills"
head -3 "$work/drills"
[ "$(grep -c . "$work/drills")" -ge 10 ] || { echo "FAIL: the installed CLI lists too few drills" >&2; exit 1; }
step "installed CLI: drill run seed-leader-crash (installed brokers)"
timeout -k 10 240 "$prefix/bin/clusterlab" drill run seed-leader-crash
step "installed CLI: lesson run leader-crash (the installed lesson catalog)"
"$prefix/bin/clusterlab" lesson list > "$work/lessons"
[ "$(grep -c . "$work/lessons")" -ge 6 ] || { echo "FAIL: the installed CLI lists too few lessons" >&2; exit 1; }
timeout -k 10 240 "$prefix/bin/clusterlab" lesson run leader-crash
step "installed CLI: runs list"
"$prefix/bin/clusterlab" runs list | tee "$work/runs"
grep -q -- '-drill-seed-leader-crash .*complete' "$work/runs" || { echo "FAIL: the drill run is not in runs list" >&2; exit 1; }

if command -v xvfb-run >/dev/null; then
  step "installed window: starts a cluster of installed brokers"
  log="$work/desktop.log"
  setsid xvfb-run -a "$prefix/bin/clusterlab-desktop" --start > "$log" 2>&1 &
  app=$!
  brokers() { pgrep -f "^$prefix/bin/clusterlab-broker .*$XDG_DATA_HOME" | wc -l; }
  for _ in $(seq 1 120); do [ "$(brokers)" -ge 3 ] && break; sleep 0.5; done
  n="$(brokers)"
  # SIGTERM to the app alone (ours: in the session setsid made): it stops its cluster before
  # it exits (src-tauri/src/lib.rs). Then the rest of the session (xvfb-run, Xvfb); bounded.
  pkill -TERM -s "$app" -f "^$prefix/bin/clusterlab-desktop" 2>/dev/null || true
  for _ in $(seq 1 60); do [ "$(brokers)" -eq 0 ] && break; sleep 0.5; done
  kill -TERM -- "-$app" 2>/dev/null || true
  sleep 1
  kill -KILL -- "-$app" 2>/dev/null || true
  [ "$n" -ge 3 ] || { echo "FAIL: the installed window started $n brokers; its log:" >&2; cat "$log" >&2; exit 1; }
  [ "$(brokers)" -eq 0 ] || { echo "FAIL: brokers of the installed window outlived it" >&2; exit 1; }
  echo "the installed window ran 3 installed brokers and stopped them"
fi
cd /

if [ "$mode" = apt ]; then
  step "apt-get purge $pkg"
  apt-get purge -y -qq "$pkg" >/dev/null
  installed=false
  left=0
  while read -r f; do
    # Directories shared with other packages (/usr, /usr/bin, ...) stay; our files must not.
    if [ -e "$f" ] && [ ! -d "$f" ]; then echo "left behind: $f"; left=$((left + 1)); fi
  done < "$work/files"
  for d in /usr/share/clusterlab; do [ -e "$d" ] && { echo "left behind: $d"; left=$((left + 1)); }; done
  dpkg -s "$pkg" >/dev/null 2>&1 && { echo "FAIL: $pkg still installed" >&2; exit 1; }
  [ "$left" -eq 0 ] || { echo "FAIL: $left files left behind" >&2; exit 1; }
  echo "purged: none of the package's $(grep -c . "$work/files") paths remain"
fi
echo "PASS: package $pkg installed ($mode), used without a source tree, removed"
