#!/usr/bin/env bash
# deps.sh — installs the Debian packages that hotline's build, tests, demo and
# benchmarks need.  Every top-level make target runs it first, so a fresh
# Debian 12 machine with only git, make, gcc and cmake can build and test.
#
# Usage: scripts/deps.sh [build|demo|check|bench]
#   build  what `make` needs (compiler, libraries)
#   demo   build + postfix (the demo's email step; scripts/demo.sh asks),
#          espeak-ng (the demo's speech)
#   check  build + what the tests need (clang sanitizers/libFuzzer, cmocka,
#          pytest, dissononce, strace, postfix: the email tests' mail server;
#          espeak-ng, sox, numpy and scipy: speech and its measures in the voice tests)
#   bench  check + what the benchmarks compare against
#
# Cheap when nothing is missing: one dpkg-query call.  When something is
# missing it runs `apt-get update` once and installs it (as root); otherwise
# it prints the exact command and exits 1.
set -euo pipefail

level=${1:-build}

build_pkgs=(gcc make cmake pkg-config libsodium-dev libuv1-dev libsqlite3-dev tzdata
            libjansson-dev libcurl4-openssl-dev libssl-dev
            libopus-dev libopusfile-dev libopusenc-dev libspeexdsp-dev libasound2-dev
            libseccomp-dev)
check_pkgs=(clang libclang-rt-14-dev libcmocka-dev python3 python3-pytest postfix
            python3-dissononce python3-cryptography strace
            espeak-ng sox python3-numpy python3-scipy tcpdump)
bench_pkgs=(openssh-server openssh-client nncp hyperfine)

pkgs=("${build_pkgs[@]}")
case "$level" in
  build) ;;
  demo) pkgs+=(postfix espeak-ng) ;;
  check) pkgs+=("${check_pkgs[@]}") ;;
  bench) pkgs+=("${check_pkgs[@]}" "${bench_pkgs[@]}") ;;
  *) echo "deps.sh: unknown level '$level' (want build, demo, check or bench)" >&2; exit 2 ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  case "$status" in
    *" installed") ;;
    *) missing+=("$p") ;;
  esac
done

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "deps.sh: missing Debian packages: ${missing[*]}" >&2
  echo "deps.sh: run as root:  apt-get update && apt-get install -y --no-install-recommends ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
