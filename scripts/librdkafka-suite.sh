#!/usr/bin/env bash
# librdkafka's own test suite against a three-node lab: a stock client's view of the broker.
#
# Usage: scripts/librdkafka-suite.sh [--ci] [TEST...]
#   (no args) every test listed in scripts/librdkafka-tests.txt
#   --ci      only the tests tagged `ci` there (a few minutes; .ci/run runs these)
#   TEST...   these tests (numbers like 0054, or full names), listed or not
#
# The test sources are the ones vendored in the rdkafka-sys crate this workspace builds (no
# download); the test runner is built once into the cache dir. Every test runs alone, in quick
# mode (-Q), without socket-emulation tests (-E), with a time limit; a summary line per test and
# a total go to stdout, each test's full log to $OUT/<test>.log. Exit code 1 if any test failed.
# Which tests are left out, and why: docs/compatibility.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/clusterlab/target}"
CACHE="${CLUSTERLAB_CACHE:-$HOME/.cache/clusterlab}"
PER_TEST_TIMEOUT_S="${LIBRDKAFKA_TEST_TIMEOUT_S:-240}"

ci=0
wanted=()
for a in "$@"; do
  case "$a" in
    --ci) ci=1 ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) wanted+=("$a") ;;
  esac
done

# The librdkafka sources rdkafka-sys vendors, found through cargo's own metadata.
manifest=$(cargo metadata --format-version 1 --locked 2>/dev/null | python3 -c '
import json, sys
pkgs = json.load(sys.stdin)["packages"]
print(next(p["manifest_path"] for p in pkgs if p["name"] == "rdkafka-sys"))')
src="$(dirname "$manifest")/librdkafka"
[ -f "$src/tests/test.c" ] || { echo "librdkafka-suite: no tests/ in $src" >&2; exit 2; }
version=$(basename "$(dirname "$manifest")")
build="$CACHE/librdkafka-tests/$version"

if [ ! -x "$build/tests/test-runner" ]; then
  echo "librdkafka-suite: building the test runner of $version in $build (once; ~5 min)"
  rm -rf "$build" && mkdir -p "$(dirname "$build")"
  cp -r "$src" "$build"
  (cd "$build" \
    && ./configure --no-download --disable-ssl --disable-gssapi --disable-curl --disable-zstd \
         --disable-lz4-ext >"$build.configure.log" 2>&1 \
    && make -j2 libs >"$build.make.log" 2>&1 \
    && cd tests && make -j2 build >>"$build.make.log" 2>&1) \
    || { echo "librdkafka-suite: build failed, see $build.configure.log and $build.make.log" >&2; exit 2; }
fi

# The test list: `<name> [ci]` per line, # comments.
list=()
while read -r name tags; do
  [ -z "$name" ] && continue
  if [ ${#wanted[@]} -gt 0 ]; then
    for w in "${wanted[@]}"; do [ "$w" = "$name" ] || [ "$w" = "${name%%_*}" ] && list+=("$name"); done
  elif [ "$ci" = 0 ] || [[ " $tags " == *" ci "* ]]; then
    list+=("$name")
  fi
done < <(sed 's/#.*//' scripts/librdkafka-tests.txt)
# A test asked for by number or name that the list leaves out runs too (the runner takes either).
for w in "${wanted[@]}"; do
  matched=0
  for name in "${list[@]}"; do [ "$w" = "$name" ] || [ "$w" = "${name%%_*}" ] && matched=1; done
  [ $matched = 1 ] || list+=("$w")
done
[ ${#list[@]} -gt 0 ] || { echo "librdkafka-suite: no test matches ${wanted[*]}" >&2; exit 2; }

cargo build -q --workspace --all-targets # the test build's selection: nothing compiled twice
OUT="${OUT:-$(mktemp -d -t clusterlab-librdkafka-XXXXXX)}"
data="$OUT/data"
mkdir -p "$data"
# The lab in its own process group, stopped (by that group) however this script ends. Four
# partitions per auto-created topic: the default of the Kafka test clusters the suite assumes.
setsid "$CARGO_TARGET_DIR/debug/clusterlab" up --data-dir "$data" --bind 127.0.0.1:0 --partitions 4 \
  >"$OUT/lab.out" 2>"$OUT/lab.err" &
lab=$!
trap 'kill -TERM -- -$lab 2>/dev/null || true; wait $lab 2>/dev/null || true' EXIT
for _ in $(seq 120); do
  grep -q '"ready"' "$OUT/lab.out" 2>/dev/null && break
  kill -0 $lab 2>/dev/null || { echo "librdkafka-suite: the lab did not start:" >&2; cat "$OUT/lab.err" >&2; exit 2; }
  sleep 0.5
done
bootstrap=$(python3 -c 'import json,sys; print(json.loads(open(sys.argv[1]).readline())["bootstrap"])' "$OUT/lab.out") \
  || { echo "librdkafka-suite: no ready line from the lab within 60 s" >&2; exit 2; }
echo "bootstrap.servers=$bootstrap" >"$build/tests/test.conf"
# 0014 stores consumer offsets in files named after its topic in the test directory, which the
# build cache keeps from run to run, and the suite's "random" topic names do come back: a CI run
# reused a name from seven hours before, its consumer resumed at that run's offset 100 of 100 and
# waited out the test's 58 s for messages that never came. Every run starts without them.
rm -f "$build/tests/"*.offset

# The Kafka version the tests expect answers from. The suite assumes 2.4 unless told; the lab
# serves Kafka 3.0's API versions (Fetch 12, ListOffsets 7, Metadata 12) and answers as 3.x does
# (e.g. UNKNOWN_TOPIC_OR_PART, not 2.4's UNKNOWN, for the configs of a missing topic), and tests
# skip what the version they are told lacks (0081's ListOffsets, offset admin and SCRAM parts).
export TEST_KAFKA_VERSION="${TEST_KAFKA_VERSION:-3.0.0}"

passed=0; failed=(); t0=$(date +%s)
for name in "${list[@]}"; do
  start=$(date +%s)
  rc=0
  # In its own bash so that a test runner's abort is reported in its log, not by this shell.
  bash -c 'cd "$1" && LD_LIBRARY_PATH=../src:../src-cpp TESTS="$2" exec timeout "$3" ./test-runner -Q -E -L' \
    _ "$build/tests" "${name%%_*}" "$PER_TEST_TIMEOUT_S" >"$OUT/$name.log" 2>&1 || rc=$?
  secs=$(( $(date +%s) - start ))
  if [ $rc = 0 ]; then
    passed=$((passed + 1)); echo "PASS $name (${secs}s)"
  else
    # `|| true`: grep -m1 stops reading early, and under pipefail sed's SIGPIPE on a long log
    # would end this script (set -e) without a summary.
    why=$(sed 's/\x1b\[[0-9;]*m//g' "$OUT/$name.log" | grep -m1 -A1 '^### Test' | tail -1 | cut -c1-160 || true)
    [ $rc = 124 ] && why="timed out after ${PER_TEST_TIMEOUT_S}s"
    failed+=("$name"); echo "FAIL $name (${secs}s, exit $rc): $why"
  fi
done
echo "librdkafka $version suite: ${passed} passed, ${#failed[@]} failed of ${#list[@]} in $(( $(date +%s) - t0 ))s; logs in $OUT"
[ ${#failed[@]} = 0 ] || { echo "failed: ${failed[*]}"; exit 1; }
