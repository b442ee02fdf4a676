#!/usr/bin/env bash
# Two airlock binaries against each other, on the same machine in the same run: is a change
# (a refactor, a dependency update) slower? Alternates A and B run by run, RUNS runs each, and
# prints median and range per side and the ratio of the medians (B / A: above 1 means B is
# slower for times, faster for requests/s).
#   1. the runner: a PLAYBOOK_TASKS-task file + copy playbook with templated content, re-run
#      (everything in place, so each task compares and changes nothing), wall time;
#   2. `airlock serve`: a 64 KiB file from the files mirror under wrk, 64 connections for
#      DURATION seconds, requests/s; both sides log their requests the same way (to a file).
#
#   bash benches/ab.sh OLD_AIRLOCK NEW_AIRLOCK
#   RUNS=7 DURATION=10 PLAYBOOK_TASKS=2000 bash benches/ab.sh target-old/release/airlock target/release/airlock
set -euo pipefail
cd "$(dirname "$0")/.."
. benches/lib.sh
A=$(realpath "$1")
B=$(realpath "$2")
RUNS=${RUNS:-5}
DURATION=${DURATION:-10}
PLAYBOOK_TASKS=${PLAYBOOK_TASKS:-2000}
command -v wrk >/dev/null || {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wrk >/dev/null
}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

# Median and range of the numbers on stdin, and the ratio line.
summary() { # LABEL UNIT A-values B-values
  python3 - "$@" <<'PY'
import statistics, sys
label, unit, a, b = sys.argv[1], sys.argv[2], [float(x) for x in sys.argv[3].split()], [float(x) for x in sys.argv[4].split()]
ma, mb = statistics.median(a), statistics.median(b)
f = lambda v: f"{v:.3f}" if v < 100 else f"{v:.0f}"
print(f"| {label} | {f(ma)} {unit} ({f(min(a))}-{f(max(a))}) | {f(mb)} {unit} ({f(min(b))}-{f(max(b))}) | {mb / ma:.3f} |")
PY
}

echo "A: $A"
echo "B: $B"
echo "RUNS=$RUNS per side, alternating; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
echo "| measure | A: median (range) | B: median (range) | B / A |"
echo "|---|---|---|---|"

# --- 1. the runner ------------------------------------------------------------------------------
for side in a b; do
  {
    echo "- hosts: localhost"
    echo "  connection: local"
    echo "  gather_facts: false"
    echo "  vars:"
    echo "    base: $work/pb-$side"
    file_copy_tasks "$PLAYBOOK_TASKS"
  } > "$work/$side.yml"
done
"$A" playbook -i localhost, "$work/a.yml" >/dev/null
"$B" playbook -i localhost, "$work/b.yml" >/dev/null
wall() { python3 -c 'import subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True); print(time.perf_counter() - t)' "$@"; }
ta=() tb=()
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2 == 0)); then
    ta+=("$(wall "$A" playbook -i localhost, "$work/a.yml")"); tb+=("$(wall "$B" playbook -i localhost, "$work/b.yml")")
  else
    tb+=("$(wall "$B" playbook -i localhost, "$work/b.yml")"); ta+=("$(wall "$A" playbook -i localhost, "$work/a.yml")")
  fi
done
summary "runner: $PLAYBOOK_TASKS-task re-run" s "${ta[*]}" "${tb[*]}"

# --- 2. airlock serve -----------------------------------------------------------------------------
mkdir -p "$work/root/misc-files"
head -c 65536 /dev/urandom > "$work/root/misc-files/small.bin"
serve() { # BINARY PORT LOG
  "$1" serve --root "$work/root" --bind 127.0.0.1 --mirrors files --files-port "$2" 2>"$3" &
  pids+=($!)
  wait_http "http://127.0.0.1:$2/small.bin"
}
pa=$(free_port); serve "$A" "$pa" "$work/a.log"
pb=$(free_port); serve "$B" "$pb" "$work/b.log"
rps() { wrk -t2 -c64 -d"$DURATION"s "$1" | awk '/Requests\/sec/ {print $2}'; }
ra=() rb=()
for ((i = 0; i < RUNS; i++)); do
  if ((i % 2 == 0)); then
    ra+=("$(rps "http://127.0.0.1:$pa/small.bin")"); rb+=("$(rps "http://127.0.0.1:$pb/small.bin")")
  else
    rb+=("$(rps "http://127.0.0.1:$pb/small.bin")"); ra+=("$(rps "http://127.0.0.1:$pa/small.bin")")
  fi
done
summary "serve: 64 KiB file, 64 connections" req/s "${ra[*]}" "${rb[*]}"
