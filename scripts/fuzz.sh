#!/usr/bin/env bash
# fuzz.sh — runs every libFuzzer target in DIR for SECONDS each, starting from
# the seed corpus in fuzz/corpus/NAME/ (kept in git) and a scratch corpus under
# build-fuzz/corpus/NAME/ (not kept).  FUZZ_JOBS targets (default 2, one per
# core) run at a time.  Exits non-zero on the first crash: the other running
# targets are stopped and the crashed target's log tail is printed.
set -euo pipefail
dir=${1:?usage: fuzz.sh DIR SECONDS}
secs=${2:?usage: fuzz.sh DIR SECONDS}
jobs=${FUZZ_JOBS:-2}
top=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
targets=("$dir"/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz targets in $dir" >&2
  exit 1
fi

declare -A running=()    # pid -> target name

# Waits for one running target; prints its last stats line, or on failure
# stops the others, prints its log tail and exits 1.
reap() {
  local pid rc=0 name log
  wait -n -p pid "${!running[@]}" || rc=$?
  name=${running[$pid]}
  unset "running[$pid]"
  log="$top/build-fuzz/$name.log"
  if [ "$rc" -ne 0 ]; then
    for p in "${!running[@]}"; do kill "$p" 2>/dev/null || true; done
    wait "${!running[@]}" 2>/dev/null || true
    tail -n 40 "$log" >&2
    echo "fuzz: $name FAILED, exit status $rc (log: build-fuzz/$name.log)" >&2
    exit 1
  fi
  echo "fuzz: $name $(grep -E '^#[0-9]+.*DONE' "$log" | tail -n 1 || true)"
}

for t in "${targets[@]}"; do
  [ ${#running[@]} -ge "$jobs" ] && reap
  name=$(basename "$t")
  seeds="$top/fuzz/corpus/$name"
  work="$top/build-fuzz/corpus/$name"
  mkdir -p "$work" "$seeds"
  echo "fuzz: $name for ${secs}s"
  "$t" -max_total_time="$secs" -print_final_stats=0 -timeout=10 \
    -artifact_prefix="$top/build-fuzz/$name-" "$work" "$seeds" \
    >"$top/build-fuzz/$name.log" 2>&1 &
  running[$!]=$name
done
while [ ${#running[@]} -gt 0 ]; do reap; done
