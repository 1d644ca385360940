#!/usr/bin/env bash
# fuzz.sh — runs every libFuzzer target in DIR for SECONDS each, starting from
# the seed corpus in fuzz/corpus/NAME/ (kept in git) and a scratch corpus under
# build-fuzz/corpus/NAME/ (not kept).  Exits non-zero on the first crash.
set -euo pipefail
dir=${1:?usage: fuzz.sh DIR SECONDS}
secs=${2:?usage: fuzz.sh DIR SECONDS}
top=$(cd "$(dirname "$0")/.." && pwd)
shopt -s nullglob
targets=("$dir"/fuzz_*)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz.sh: no fuzz targets in $dir" >&2
  exit 1
fi
for t in "${targets[@]}"; do
  name=$(basename "$t")
  seeds="$top/fuzz/corpus/$name"
  work="$top/build-fuzz/corpus/$name"
  mkdir -p "$work" "$seeds"
  echo "fuzz: $name for ${secs}s"
  if ! "$t" -max_total_time="$secs" -print_final_stats=0 -timeout=10 \
       -artifact_prefix="$top/build-fuzz/" "$work" "$seeds" >"$top/build-fuzz/$name.log" 2>&1; then
    tail -n 40 "$top/build-fuzz/$name.log" >&2
    echo "fuzz: $name FAILED (log: build-fuzz/$name.log)" >&2
    exit 1
  fi
  grep -E '^#[0-9]+.*DONE' "$top/build-fuzz/$name.log" | tail -n 1 || true
done
