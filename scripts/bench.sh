#!/usr/bin/env bash
# bench.sh — hotline's benchmarks, each beside its baseline measured in the
# same run (issue 6): scp and NNCP for transfers and messages, the machine's
# own limits (ChaCha20-Poly1305, SHA-256, Ed25519, X25519, fsync, disk) for
# the rest, and slow links through an impairing bridge of its own.
#
# Usage: scripts/bench.sh [PATH-TO-HOTLINE]      (make bench passes build/hotline)
#
# Prints one line per figure, "BENCH <name> <value> <unit>", then one
# "TARGET met|NOT-met|unknown ..." line per target, and writes
# docs/PERFORMANCE.md (the machine, the figures, the targets).  Progress
# goes to stderr.  Everything runs on 127.0.0.1 in a temporary folder
# (under $TMPDIR, else /var/tmp: the stores' folder must be a disk, not
# tmpfs); whatever happens, a trap stops every process this script started
# and removes the folder.
#
# Environment:
#   BENCH_QUICK=1        small sizes, for development (the report says so)
#   BENCH_ONLY="a b"     run only these groups: limits transfer messages
#                        stream latency links slow voice  (the report then lacks the rest)
#   BENCH_REPORT=FILE    where to write the report (default docs/PERFORMANCE.md)
#   BENCH_KEEP=1         keep the temporary folder (for a post-mortem)
#
# Helpers: build/bench/bench_limits, bench_links and bench_netem (bench/*.c,
# built by `make`), bench/tools.py.
#
# The slow-link group ("slow") runs two stations in two network namespaces
# joined by bench_netem's impairing bridge (TUN devices; root only): a lossy
# long path and a clean long one.  Without root it is skipped and says so.
set -euo pipefail

bin=${1:-build/hotline}
if [ ! -x "$bin" ]; then
  echo "bench.sh: '$bin' is not an executable; run 'make' first" >&2
  exit 1
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
builddir=$(dirname "$bin")
root=$(cd "$(dirname "$0")/.." && pwd)
limits=$builddir/bench/bench_limits
links=$builddir/bench/bench_links
netem=$builddir/bench/bench_netem
tools=$root/bench/tools.py
for h in "$limits" "$links" "$netem"; do
  if [ ! -x "$h" ]; then
    echo "bench.sh: '$h' is missing; run 'make' first" >&2
    exit 1
  fi
done
for c in sshd ssh scp ssh-keygen nncp-cfgnew nncp-daemon nncp-file nncp-call nncp-toss hyperfine python3 espeak-ng sox; do
  if ! command -v "$c" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$c" ]; then
    echo "bench.sh: '$c' is missing; run 'scripts/deps.sh bench' (make bench does)" >&2
    exit 1
  fi
done

# ---------------------------------------------------------------- sizes
QUICK=${BENCH_QUICK:-0}
if [ "$QUICK" = 1 ]; then
  DOC_MIB=64        # transfer.*
  CLI_N=100         # messages.*_cli
  STREAM_N=5000     # messages.hotline_stream (and the record)
  LAT_N=50          # latency samples
  LOAD_MIB=32       # documents in flight during latency.flash_loaded
  IDLE_N=200        # memory.per_idle_link sessions
  HS_SECONDS=3      # handshakes.hotline
  DISK_MIB=256      # limit.disk_write
  CPU_SECONDS=1     # limit.aead, ed25519_verify, x25519
  SLOW_N=12         # FLASH samples on the lossy path, each state
else
  DOC_MIB=1024
  CLI_N=1000
  STREAM_N=100000
  LAT_N=300
  LOAD_MIB=256
  IDLE_N=1000
  HS_SECONDS=10
  DISK_MIB=1024
  CPU_SECONDS=3
  SLOW_N=40
fi
SLOW_MIB=20         # the document on the slow paths (the issue's 20 MiB)
# The two paths (bench_netem bridge options, the same each way).  Lossy: a
# long path that loses, duplicates and reorders packets; fat: as long, clean.
LOSSY_PATH="--delay 200 --jitter 50 --loss 10 --dup 1 --reorder 1 --reorder-gap 20"
FAT_PATH="--delay 200"
NETEM_SEED=${BENCH_SEED:-15}
NSP=hlb$$           # the namespaces' prefix: runs at the same time do not meet
FSYNC_N=300
HS_CONCURRENCY=16
MSG_BYTES=200
ONLY=${BENCH_ONLY:-limits transfer messages stream latency links slow voice}
report=${BENCH_REPORT:-$root/docs/PERFORMANCE.md}
WAIT=60            # seconds to wait for a daemon or a link

work=$(mktemp -d "${TMPDIR:-/var/tmp}/hotline-bench.XXXXXX")
results=$work/results      # the BENCH lines, as printed
notes=$work/notes          # remarks for the report
: > "$results"
: > "$notes"
declare -A bgpid=()        # name -> pid of a background process we started
declare -A port=()         # name -> TCP port
netns=()                   # network namespaces we made
started_at=$EPOCHREALTIME

# descendants PID: the pids of PID's children, grandchildren, ...
descendants() {
  local c
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
    echo "$c"
    descendants "$c"
  done
}

cleanup() {
  local name p status=$?
  for name in "${!bgpid[@]}"; do
    # A background shell loop may be waiting for a command of its own.
    for p in $(descendants "${bgpid[$name]}") "${bgpid[$name]}"; do
      kill -TERM "$p" 2>/dev/null || true
    done
  done
  for name in "${!bgpid[@]}"; do
    wait "${bgpid[$name]}" 2>/dev/null || true
  done
  for name in "${netns[@]}"; do
    ip netns del "$name" 2>/dev/null || true
  done
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    echo "bench.sh: kept $work" >&2
  else
    rm -rf "$work"
  fi
  if [ "$status" -ne 0 ]; then
    echo "bench.sh: FAILED (exit $status); figures measured so far:" >&2
    cat "$results" >&2 2>/dev/null || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf 'bench: %s\n' "$*" >&2; }
note() { printf '%s\n' "$*" >> "$notes"; }
want() { case " $ONLY " in *" $1 "*) return 0 ;; *) return 1 ;; esac; }

# bench NAME VALUE UNIT: one figure.
bench() {
  printf 'BENCH %s %s %s\n' "$1" "$2" "$3" | tee -a "$results"
}

# calc EXPR: floating-point arithmetic (awk), printed with up to 6 decimals.
calc() { awk "BEGIN { x = $1; printf \"%.6g\n\", x }"; }
# fmt1 EXPR, fmt2 EXPR: one or two decimals.
fmt1() { awk "BEGIN { printf \"%.1f\n\", $1 }"; }
fmt2() { awk "BEGIN { printf \"%.2f\n\", $1 }"; }
now() { printf '%s\n' "$EPOCHREALTIME"; }
# cpu_s PID: the CPU time (user + system, seconds) process PID has used.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f\n", ($14 + $15) / hz }' "/proc/$1/stat"; }

ME=bench.sh
# free_port, wait_until
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# start_bg NAME COMMAND...: runs COMMAND in the background, output to
# $work/NAME.log; stop_bg NAME stops it (SIGTERM, then SIGKILL after 10 s).
start_bg() {
  local name=$1; shift
  "$@" >> "$work/$name.log" 2>&1 &
  bgpid[$name]=$!
}
stop_bg() {
  local name=$1 pid=${bgpid[$1]:-} i
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  unset "bgpid[$name]"
}

# finish_bg NAME SECONDS: waits up to SECONDS for NAME to end by itself,
# then stops it and whatever it started.
finish_bg() {
  local name=$1 pid=${bgpid[$1]:-} i p
  [ -n "$pid" ] || return 0
  for i in $(seq 1 $(( $2 * 10 ))); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  for p in $(descendants "$pid"); do
    kill -TERM "$p" 2>/dev/null || true
  done
  stop_bg "$name"
}

show_log() {
  echo "--- $1 log (last lines) ---" >&2
  tail -n 20 "$work/$1.log" >&2 2>/dev/null || true
}

# ---------------------------------------------------------------- stations

hl() { local st=$1; shift; "$bin" -d "$work/$st" "$@"; }

# The daemon logs "running" once it listens and serves its control socket.
# (Not `status`: its answer outgrows the control socket's 64 KiB line with
# a few hundred peers, as the hub of bench_links has.)
daemon_ready() {
  kill -0 "${bgpid[$1]}" 2>/dev/null && grep -q ' running (pid ' "$work/$1.log"
}

linked() {
  local js
  js=$(hl "$1" status --json) && printf '%s' "$js" | grep -q '"state": *"connected"'
}

# station_init NAME: a station listening on a free port (no daemon yet).
station_init() {
  port[$1]=$(free_port)
  hl "$1" init "$1" --listen "127.0.0.1:${port[$1]}" > /dev/null
}

station_start() {
  start_bg "$1" "$bin" -d "$work/$1" run
  if ! wait_until "the $1 daemon" daemon_ready "$1"; then
    show_log "$1"
    return 1
  fi
}

# pair_up A B: two stations that pin each other, daemons running, linked.
pair_up() {
  local a=$1 b=$2
  station_init "$a"
  station_init "$b"
  hl "$a" card > "$work/$a.card"
  hl "$b" card > "$work/$b.card"
  hl "$a" peer add "$work/$b.card" --trust-without-checking > /dev/null
  hl "$b" peer add "$work/$a.card" --trust-without-checking > /dev/null
  station_start "$a"
  station_start "$b"
  if ! wait_until "the link $a-$b" linked "$a" || ! wait_until "the link $a-$b" linked "$b"; then
    show_log "$a"; show_log "$b"
    return 1
  fi
}

# pair_down A B: stops both daemons and removes their folders.
pair_down() {
  local st
  for st in "$@"; do
    stop_bg "$st"
    rm -rf "${work:?}/$st"
  done
}

# await_start NAME STATION EVENT N TIMEOUT: subscribes to STATION's events in
# the background; returns once subscribed.  await_end NAME waits for it and
# sets $await_t to the wall time of the Nth event (fails if it did not come).
await_start() {
  local name=$1
  start_bg "$name" python3 "$tools" wait-events "$work/$2" "$3" "$4" "$5"
  if ! wait_until "the event stream of $2" grep -q '^ready' "$work/$name.log"; then
    show_log "$name"
    return 1
  fi
}
await_end() {
  local name=$1 pid=${bgpid[$1]} rc=0
  wait "$pid" || rc=$?
  unset "bgpid[$name]"
  if [ "$rc" -ne 0 ]; then
    show_log "$name"
    return 1
  fi
  await_t=$(tail -n 1 "$work/$name.log")
}

# ---------------------------------------------------------------- machine

describe_machine() {
  local cpu mem fs dev
  cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)
  mem=$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)
  fs=$(df -PT "$work" | awk 'NR == 2 { print $2 " on " $1 ", " int($5 / 1048576) " GiB free" }')
  {
    echo "CPU:        ${cpu:-unknown}, $(nproc) cores online (shared with other jobs)"
    echo "Memory:     $mem"
    echo "Kernel:     $(uname -sr) $(uname -m)"
    echo "System:     $(. /etc/os-release 2>/dev/null && echo "$PRETTY_NAME")"
    echo "Stores in:  $work ($fs)"
    echo "libsodium:  $(dpkg-query -W -f='${Version}' libsodium23 2>/dev/null || echo '?')," \
         "libuv $(dpkg-query -W -f='${Version}' libuv1 2>/dev/null || echo '?')," \
         "SQLite $(dpkg-query -W -f='${Version}' libsqlite3-0 2>/dev/null || echo '?')"
    echo "Baselines:  $(ssh -V 2>&1), NNCP $(nncp-file -version 2>&1 | head -n 1 | awk '{ print $3 }'), hyperfine $(hyperfine --version | awk '{ print $2 }')"
    echo "Compiler:   $(${CC:-cc} --version 2>/dev/null | head -n 1) (CMake RelWithDebInfo: -O2 -g)"
  } > "$work/machine"
}

# ---------------------------------------------------------------- limits

bench_limits() {
  say "limits: ChaCha20-Poly1305 (libcrypto, libsodium), SHA-256, BLAKE2b, Ed25519, X25519 ($CPU_SECONDS s each), fsync, disk"
  bench limit.aead "$("$limits" aead "$CPU_SECONDS")" MB/s
  bench limit.aead_libsodium "$("$limits" aead_libsodium "$CPU_SECONDS")" MB/s
  bench limit.sha256 "$("$limits" sha256 "$CPU_SECONDS")" MB/s
  bench limit.blake2b "$("$limits" blake2b "$CPU_SECONDS")" MB/s
  bench limit.ed25519_verify "$("$limits" ed25519_verify "$CPU_SECONDS")" ops/s
  bench limit.x25519 "$("$limits" x25519 "$CPU_SECONDS")" ops/s
  local fs
  fs=$("$limits" fsync "$work" "$FSYNC_N")
  bench limit.fsync_p50 "${fs%% *}" ms
  note "- limit.fsync: p50 ${fs%% *} ms, p95 ${fs##* } ms over $FSYNC_N appends of 4 KiB."
  bench limit.disk_write "$("$limits" disk_write "$work" "$DISK_MIB")" MB/s
}

# ---------------------------------------------------------------- transfers

make_doc() {   # make_doc FILE MIB: random bytes (not compressible)
  [ -e "$1" ] && return 0
  head -c "$(( $2 * 1048576 ))" /dev/urandom > "$1"
}

# mbps BYTES T0 T1
mbps() { fmt1 "$1 / 1e6 / ($3 - $2)"; }

bench_transfer_hotline() {
  local doc=$1 bytes=$2 t0 t1
  say "transfer.hotline: $DOC_MIB MiB document, send -a --wait"
  pair_up ta tb
  local ca cb tc
  ca=$(cpu_s "${bgpid[ta]}"); cb=$(cpu_s "${bgpid[tb]}")
  t0=$(now)
  # send prints the id once the document is durable in the sender's store:
  # that moment splits the figure into its two phases.
  hl ta send tb -s "document" -a "$doc" --wait=900 "the document" |
    { read -r _; now > "$work/t-copied"; cat > /dev/null; }
  t1=$(now)
  if ! hl tb inbox | grep -q "document"; then
    echo "bench.sh: the document is not in the receiver's inbox" >&2
    return 1
  fi
  bench transfer.hotline "$(mbps "$bytes" "$t0" "$t1")" MB/s
  tc=$(cat "$work/t-copied")
  local staged
  staged=$(hl ta status --json | python3 -c 'import json, sys
s = json.load(sys.stdin)
print(sum(p.get("delivery", {}).get("staged", {}).get("out_bytes", 0) for p in s.get("peers", [])))' 2>/dev/null || echo 0)
  note "- transfer.hotline: \`send\` had the document durable in the sender's store after $(fmt1 "$tc - $t0") s ($(mbps "$bytes" "$t0" "$tc") MB/s: copy, hash, fsync); $(fmt1 "$staged / 1e6") MB of it had already travelled meanwhile (staging, docs/messages.md section 6); the rest of the transfer, the receiver's fsyncs and the receipt took $(fmt1 "$t1 - $tc") s more. CPU used by the sending daemon $(fmt1 "$(cpu_s "${bgpid[ta]}") - $ca") s, by the receiving daemon $(fmt1 "$(cpu_s "${bgpid[tb]}") - $cb") s (and by \`send\` about as long as the copy: it hashes every byte, as the receiver does)."
  pair_down ta tb
}

ssh_setup() {
  local d=$work/ssh
  mkdir -p "$d"
  chmod 700 "$d"
  ssh-keygen -q -t ed25519 -N '' -f "$d/host_key"
  ssh-keygen -q -t ed25519 -N '' -f "$d/client_key"
  cp "$d/client_key.pub" "$d/authorized_keys"
  port[sshd]=$(free_port)
  cat > "$d/sshd_config" <<EOF
Port ${port[sshd]}
ListenAddress 127.0.0.1
HostKey $d/host_key
AuthorizedKeysFile $d/authorized_keys
PidFile $d/sshd.pid
UsePAM no
StrictModes no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
Subsystem sftp internal-sftp
EOF
  # sshd run as root wants its privilege-separation directory.
  if [ "$(id -u)" -eq 0 ] && [ ! -d /run/sshd ]; then
    mkdir -p /run/sshd
    chmod 755 /run/sshd
  fi
  start_bg sshd "$(command -v sshd || echo /usr/sbin/sshd)" -D -e -f "$d/sshd_config"
  if ! wait_until "sshd" bash -c "exec 3<>/dev/tcp/127.0.0.1/${port[sshd]}"; then
    show_log sshd
    return 1
  fi
}

scp_to_loopback() {   # scp_to_loopback SRC DST
  scp -q -c chacha20-poly1305@openssh.com -P "${port[sshd]}" -i "$work/ssh/client_key" \
    -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
    -o LogLevel=ERROR "$1" "$(id -un)@127.0.0.1:$2"
}

bench_transfer_scp() {
  local doc=$1 bytes=$2 t0 t1
  say "transfer.scp_chacha: $DOC_MIB MiB to sshd on 127.0.0.1:${port[sshd]}"
  scp_to_loopback "$doc" "$work/scp-copy.bin"   # warm-up of the path: not timed
  rm -f "$work/scp-copy.bin"
  t0=$(now)
  scp_to_loopback "$doc" "$work/scp-copy.bin"
  t1=$(now)
  if [ "$(stat -c %s "$work/scp-copy.bin")" != "$bytes" ]; then
    echo "bench.sh: scp copied a file of the wrong size" >&2
    return 1
  fi
  rm -f "$work/scp-copy.bin"
  bench transfer.scp_chacha "$(mbps "$bytes" "$t0" "$t1")" MB/s
}

# NNCP: nodes na and nb, nb's nncp-daemon on a loopback port; na calls nb.
nncp_field() { sed -n "s/^ *$2: *//p" "$1" | head -n 1; }

nncp_setup() {
  local d=$work/nncp n other
  mkdir -p "$d"
  port[nncp]=$(free_port)
  for n in na nb; do
    nncp-cfgnew -nocomments > "$d/$n.raw"
    mkdir -p "$d/$n/spool" "$d/$n/incoming"
  done
  for n in na nb; do
    if [ "$n" = na ]; then other=nb; else other=na; fi
    local me=$d/$n.raw them=$d/$other.raw
    {
      echo "{"
      echo "  spool: $d/$n/spool"
      echo "  log: $d/$n/log"
      echo "  noprogress: true"
      echo "  self: {"
      for f in id exchpub exchprv signpub signprv noiseprv noisepub; do
        echo "    $f: $(nncp_field "$me" "$f")"
      done
      echo "  }"
      echo "  neigh: {"
      echo "    self: {"
      for f in id exchpub signpub noisepub; do
        echo "      $f: $(nncp_field "$me" "$f")"
      done
      echo "    }"
      echo "    $other: {"
      for f in id exchpub signpub noisepub; do
        echo "      $f: $(nncp_field "$them" "$f")"
      done
      echo "      incoming: $d/$n/incoming"
      echo "      onlinedeadline: 1"
      if [ "$n" = na ]; then
        echo "      addrs: { lo: \"127.0.0.1:${port[nncp]}\" }"
      fi
      echo "    }"
      echo "  }"
      echo "}"
    } > "$d/$n.hjson"
    chmod 600 "$d/$n.hjson"
  done
  rm -f "$d/na.raw" "$d/nb.raw"
  start_bg nncp-daemon nncp-daemon -cfg "$d/nb.hjson" -quiet -bind "127.0.0.1:${port[nncp]}"
  if ! wait_until "nncp-daemon" bash -c "exec 3<>/dev/tcp/127.0.0.1/${port[nncp]}"; then
    show_log nncp-daemon
    return 1
  fi
}

nncp_call() {   # moves everything na has queued for nb
  nncp-call -cfg "$work/nncp/na.hjson" -quiet -onlinedeadline 1 nb
}
nncp_toss() {
  nncp-toss -cfg "$work/nncp/nb.hjson" -quiet
}

bench_transfer_nncp() {
  local doc=$1 bytes=$2 t0 t1 got
  say "transfer.nncp: $DOC_MIB MiB, nncp-file + nncp-call + nncp-toss"
  t0=$(now)
  nncp-file -cfg "$work/nncp/na.hjson" -quiet "$doc" nb:doc.bin
  nncp_call
  nncp_toss
  t1=$(now)
  got=$(stat -c %s "$work/nncp/nb/incoming/doc.bin" 2>/dev/null || echo 0)
  if [ "$got" != "$bytes" ]; then
    echo "bench.sh: NNCP delivered $got bytes of $bytes" >&2
    return 1
  fi
  rm -f "$work/nncp/nb/incoming/doc.bin"
  bench transfer.nncp "$(mbps "$bytes" "$t0" "$t1")" MB/s
}

bench_transfers() {
  local doc=$work/doc.bin bytes=$(( DOC_MIB * 1048576 ))
  make_doc "$doc" "$DOC_MIB"
  bench_transfer_hotline "$doc" "$bytes"
  ssh_setup
  bench_transfer_scp "$doc" "$bytes"
  stop_bg sshd
  nncp_setup
  bench_transfer_nncp "$doc" "$bytes"
  rm -f "$doc"
}

# ---------------------------------------------------------------- messages

# A 200-byte text: LABEL, then filler.
msg_text() {
  local s="$1 "
  while [ ${#s} -lt $MSG_BYTES ]; do s+="abcdefghijklmnopqrstuvwxyz0123456789 "; done
  printf '%s' "${s:0:$MSG_BYTES}"
}

bench_messages_hotline_cli() {
  local i t0 t1 text
  say "messages.hotline_cli: $CLI_N x hotline send, one process each"
  pair_up ma mb
  local ca cb tl texts=()
  # The texts are made before the clock starts: only hotline is timed.
  for ((i = 0; i < CLI_N; i++)); do
    texts+=("$(msg_text "message $i")")
  done
  await_start await-cli ma delivered "$CLI_N" 600
  ca=$(cpu_s "${bgpid[ma]}"); cb=$(cpu_s "${bgpid[mb]}")
  t0=$(now)
  for text in "${texts[@]}"; do
    "$bin" -d "$work/ma" send mb "$text" > /dev/null
  done
  tl=$(now)
  await_end await-cli
  t1=$await_t
  bench messages.hotline_cli "$(fmt1 "$CLI_N / ($t1 - $t0)")" msg/s
  note "- messages.hotline_cli: the $CLI_N \`send\` processes took $(fmt1 "$tl - $t0") s ($(fmt2 "($tl - $t0) * 1000 / $CLI_N") ms each); the last receipt was in $(fmt2 "($t1 > $tl ? $t1 - $tl : 0) * 1000") ms after the last \`send\` exited. CPU used by the sending daemon $(fmt1 "$(cpu_s "${bgpid[ma]}") - $ca") s, by the receiving daemon $(fmt1 "$(cpu_s "${bgpid[mb]}") - $cb") s."
  pair_down ma mb
}

bench_messages_nncp_cli() {
  local i t0 t1 d=$work/nncp/files got
  say "messages.nncp_cli: $CLI_N x nncp-file, then nncp-call and nncp-toss"
  mkdir -p "$d"
  for ((i = 0; i < CLI_N; i++)); do
    msg_text "message $i" > "$d/m$i"
  done
  t0=$(now)
  for ((i = 0; i < CLI_N; i++)); do
    nncp-file -cfg "$work/nncp/na.hjson" -quiet "$d/m$i" "nb:m$i"
  done
  nncp_call
  nncp_toss
  t1=$(now)
  got=$(find "$work/nncp/nb/incoming" -name 'm*' -type f | wc -l)
  if [ "$got" != "$CLI_N" ]; then
    echo "bench.sh: NNCP delivered $got files of $CLI_N" >&2
    return 1
  fi
  bench messages.nncp_cli "$(fmt1 "$CLI_N / ($t1 - $t0)")" msg/s
}

bench_messages() {
  bench_messages_hotline_cli
  [ -d "$work/nncp" ] || nncp_setup
  bench_messages_nncp_cli
  stop_bg nncp-daemon
  rm -rf "$work/nncp"
}

# ---------------------------------------------------------------- stream and record

bench_record() {   # bench_record A B: the record of the link A-B, verified
  if ! "$bin" record --help > /dev/null 2>&1; then
    say "record.verify: this hotline has no 'record' command yet; not measured"
    note "- record.verify: not measured: this build of hotline has no \`record\` command yet."
    bench record.verify nan entries/s
    return 0
  fi
  local rec=$work/link.record t0 t1 out entries
  out=$(hl "$1" record export "$2" -o "$rec" 2>&1)
  # The number of entries as export reports it ("FILE: N entries of A, M
  # of B ..."), else the messages the stream sent (a lower bound: receipts
  # are entries too).
  entries=$(printf '%s\n' "$out" | sed -n 's/.*: \([0-9][0-9]*\) entries of [^,]*, \([0-9][0-9]*\) of .*/\1 + \2/p' | head -n 1)
  if [ -n "$entries" ]; then
    entries=$(( entries ))
  else
    entries=$STREAM_N
    note "- record.verify: \`record export\` did not say how many entries it wrote; counted the $STREAM_N messages only (receipts are entries too, so the figure is a lower bound)."
  fi
  t0=$(now)
  "$bin" record verify "$rec" --card "$work/$1.card" --card "$work/$2.card" > "$work/verify.out"
  t1=$(now)
  note "- record.verify: $entries entries ($(stat -c %s "$rec") bytes) verified in $(fmt1 "$t1 - $t0") s; verify said: $(tail -n 1 "$work/verify.out")"
  bench record.verify "$(fmt1 "$entries / ($t1 - $t0)")" entries/s
}

bench_stream() {
  local lines=$work/lines.txt t0 t1
  say "messages.hotline_stream: $STREAM_N messages through one send --lines"
  awk -v n="$STREAM_N" -v len="$MSG_BYTES" 'BEGIN {
      pad = "abcdefghijklmnopqrstuvwxyz0123456789 "
      while (length(pad) < len) pad = pad pad
      for (i = 0; i < n; i++) { s = "message " i " " pad; print substr(s, 1, len) } }' > "$lines"
  pair_up sa sb
  local ca cb tl
  await_start await-stream sa delivered "$STREAM_N" 900
  ca=$(cpu_s "${bgpid[sa]}"); cb=$(cpu_s "${bgpid[sb]}")
  t0=$(now)
  hl sa send sb --lines < "$lines" > /dev/null
  tl=$(now)
  await_end await-stream
  t1=$await_t
  bench messages.hotline_stream "$(fmt1 "$STREAM_N / ($t1 - $t0)")" msg/s
  note "- messages.hotline_stream: \`send --lines\` stored the $STREAM_N messages in $(fmt1 "$tl - $t0") s; the last receipt came at $(fmt1 "$t1 - $t0") s. CPU used by the sending daemon $(fmt1 "$(cpu_s "${bgpid[sa]}") - $ca") s, by the receiving daemon $(fmt1 "$(cpu_s "${bgpid[sb]}") - $cb") s ($(fmt1 "($(cpu_s "${bgpid[sb]}") - $cb) * 1e6 / $STREAM_N") µs a message)."
  rm -f "$lines"
  say "record.verify: the record of that link"
  bench_record sa sb
  pair_down sa sb
}

# ---------------------------------------------------------------- latency

# flash_samples NAME A B [N]: N (default LAT_N) runs of send -p flash
# --wait; prints "P50 P95 N".
flash_samples() {
  local json=$work/$1.json
  hyperfine -N --style none --warmup 3 --runs "${4:-$LAT_N}" --export-json "$json" \
    "$bin -d $work/$2 send $3 -p flash --wait=60 FLASH" > /dev/null 2>> "$work/$1.log"
  python3 "$tools" percentiles "$json"
}

# load_loop A B FILE: documents back to back until $work/stop-load exists.
load_loop() {
  while [ ! -e "$work/stop-load" ]; do
    "$bin" -d "$work/$1" send "$2" -s load -a "$3" --wait=600 "load" > /dev/null
  done
}

status_sampler() {   # status_sampler STATION OUT: status 5 times a second
  while [ ! -e "$work/stop-load" ]; do
    "$bin" -d "$work/$1" status --json | tr -d '\n' >> "$2"
    echo >> "$2"
    sleep 0.2
  done
}

incoming() {   # incoming STATION: some message is arriving
  hl "$1" status --json | grep -qE '"incoming_partial": *[1-9]'
}

bench_latency() {
  local r p50 p95 n load=$work/load.bin busy
  say "latency.flash_idle: $LAT_N x send -p flash --wait on an idle link"
  pair_up la lb
  r=$(flash_samples lat-idle la lb)
  read -r p50 p95 n <<< "$r"
  bench latency.flash_idle_p50 "$p50" ms
  bench latency.flash_idle_p95 "$p95" ms

  say "latency.flash_loaded: the same while ${LOAD_MIB} MiB documents are in flight"
  make_doc "$load" "$LOAD_MIB"
  rm -f "$work/stop-load"
  start_bg load1 load_loop la lb "$load"
  start_bg load2 load_loop la lb "$load"
  if ! wait_until "a document to be arriving" incoming lb; then
    show_log load1
    return 1
  fi
  start_bg sampler status_sampler lb "$work/load-status"
  local d0 d1 t0 t1
  d0=$(hl lb inbox | grep -c ' load' || true)
  t0=$(now)
  r=$(flash_samples lat-loaded la lb)
  t1=$(now)
  d1=$(hl lb inbox | grep -c ' load' || true)
  touch "$work/stop-load"
  read -r p50 p95 n <<< "$r"
  bench latency.flash_loaded_p50 "$p50" ms
  bench latency.flash_loaded_p95 "$p95" ms
  busy=$(python3 "$tools" busy-fraction "$work/load-status")
  note "- latency.flash_loaded: while the $LAT_N samples were taken ($(fmt1 "$t1 - $t0") s), $((d1 - d0)) documents of $LOAD_MIB MiB completed ($(fmt1 "($d1 - $d0) * $LOAD_MIB * 1048576 / 1e6 / ($t1 - $t0)") MB/s); a document was arriving in a fraction $busy of the receiver's status samples."
  # Each loop ends once its document is delivered.
  finish_bg load1 300
  finish_bg load2 300
  stop_bg sampler
  pair_down la lb
  rm -f "$load"
}

# ---------------------------------------------------------------- links

bench_links() {
  local pid key res before after n per rate ok failed empty
  say "memory.per_idle_link: $IDLE_N idle sessions against one daemon"
  station_init hub
  # the daemon with no peer, for memory.per_linked_peer: what a session
  # costs depends on what the daemon made for the peer before it came up
  station_start hub
  sleep 1
  empty=$(awk '/^VmRSS/ { print $2 }' "/proc/${bgpid[hub]}/status")
  stop_bg hub
  mv "$work/hub.log" "$work/hub-empty.log" # its "running" line is not the next one's
  "$links" keygen "$IDLE_N" p "$work/hub-keys" >> "$work/hub/station.conf"
  station_start hub
  pid=${bgpid[hub]}
  key=$(hl hub card | sed -n 's/^NoiseKey = //p')
  res=$("$links" idle "127.0.0.1:${port[hub]}" "$key" "$work/hub-keys" "$IDLE_N" "$pid" 2)
  read -r before after n per <<< "$res"
  bench memory.per_idle_link "$per" KiB
  bench memory.per_linked_peer "$(fmt1 "($after - $empty) / $n")" KiB
  note "- memory.per_idle_link, memory.per_linked_peer: the daemon's VmRSS was $empty KiB with no peer, $before KiB with $IDLE_N peers pinned and no session, $after KiB with $n sessions open and idle."

  say "handshakes.hotline: $HS_CONCURRENCY connections at a time for $HS_SECONDS s"
  local c0 c1 x k0 k1 keys
  # the key holder (docs/keyholder.md), the daemon's child, does its static DHs
  keys=$(pgrep -P "$pid" -x hotline-keys || true)
  c0=$(cpu_s "$pid")
  k0=$([ -n "$keys" ] && cpu_s "$keys" || echo 0)
  res=$("$links" handshakes "127.0.0.1:${port[hub]}" "$key" "$work/hub-keys" "$HS_SECONDS" "$HS_CONCURRENCY")
  c1=$(cpu_s "$pid")
  k1=$([ -n "$keys" ] && cpu_s "$keys" || echo 0)
  read -r rate ok failed <<< "$res"
  bench handshakes.hotline "$rate" 1/s
  x=$(awk '$2 == "limit.x25519" { print $3 }' "$results")
  note "- handshakes.hotline: $ok handshakes completed in $HS_SECONDS s, $failed failed. The daemon used $(fmt1 "$c1 - $c0") s of CPU and its key holder $(fmt1 "$k1 - $k0") s, $(fmt1 "($c1 - $c0 + $k1 - $k0) * 1e6 / $ok") µs a handshake together (so $(fmt1 "$ok / ($c1 - $c0 + $k1 - $k0)") a second on a core of their own)${x:+; five X25519 operations take $(fmt1 "5e6 / $x") µs}. The client ran on the same two cores. The daemon's VmRSS afterwards: $(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status") KiB."
  pair_down hub
}

# ---------------------------------------------------------------- slow links

# path_up NAME OPTIONS...: namespaces $NSP-NAME-a (10.201.0.1) and
# $NSP-NAME-b (10.201.0.2) joined by bench_netem's bridge with OPTIONS.
path_up() {
  local n=$1 ns=$NSP-$1; shift
  ip netns add "$ns-a" && netns+=("$ns-a")
  ip netns add "$ns-b" && netns+=("$ns-b")
  start_bg "bridge-$n" "$netem" bridge "$ns-a" "$ns-b" "$@" --seed "$NETEM_SEED"
  if ! wait_until "the bridge $n" grep -q '^ready' "$work/bridge-$n.log"; then
    show_log "bridge-$n"
    return 1
  fi
  ip -n "$ns-a" link set lo up
  ip -n "$ns-b" link set lo up
  ip -n "$ns-a" addr add 10.201.0.1 peer 10.201.0.2 dev hlnet0
  ip -n "$ns-b" addr add 10.201.0.2 peer 10.201.0.1 dev hlnet0
  ip -n "$ns-a" link set hlnet0 up
  ip -n "$ns-b" link set hlnet0 up
}

# path_down NAME: stops the bridge (its packet counts go to the notes) and
# removes the namespaces.
path_down() {
  local n=$1 ns
  stop_bg "bridge-$n"
  grep '^bench_netem: ' "$work/bridge-$n.log" | sed "s/^bench_netem: /- slow: path $n, /" >> "$notes" || true
  for ns in "$NSP-$n-a" "$NSP-$n-b"; do
    ip netns del "$ns" 2>/dev/null || true
  done
}

# path_pair NAME A B: stations A (in $NSP-NAME-a) and B (in -b), pinned to
# each other, daemons running in their namespaces, linked.
path_pair() {
  local n=$1 a=$2 b=$3
  hl "$a" init "$a" --listen 10.201.0.1:7100 > /dev/null
  hl "$b" init "$b" --listen 10.201.0.2:7100 > /dev/null
  hl "$a" card > "$work/$a.card"
  hl "$b" card > "$work/$b.card"
  hl "$a" peer add "$work/$b.card" --trust-without-checking > /dev/null
  hl "$b" peer add "$work/$a.card" --trust-without-checking > /dev/null
  start_bg "$a" ip netns exec "$NSP-$n-a" "$bin" -d "$work/$a" run
  start_bg "$b" ip netns exec "$NSP-$n-b" "$bin" -d "$work/$b" run
  if ! wait_until "the $a daemon" daemon_ready "$a" || ! wait_until "the $b daemon" daemon_ready "$b" ||
     ! wait_until "the link $a-$b" linked "$a" || ! wait_until "the link $a-$b" linked "$b"; then
    show_log "$a"; show_log "$b"
    return 1
  fi
}

part_bytes() {   # part_bytes STATION: bytes in its attachment files still arriving (staged or not)
  find "$work/$1/in" -type f \( -name '*.part' -o -path '*/.staging/*' \) -printf '%s\n' 2>/dev/null |
    awk '{ s += $1 } END { print s + 0 }'
}

bench_slow_lossy() {
  local doc=$1 r p50 p95 n t0 t1 busy
  say "slow.lossy: FLASH round trips over a lossy long path, idle then with a $SLOW_MIB MiB document in flight"
  path_up lossy $LOSSY_PATH
  path_pair lossy wa wb
  r=$(flash_samples slow-idle wa wb "$SLOW_N")
  read -r p50 p95 n <<< "$r"
  bench slow.lossy_flash_idle_p50 "$p50" ms
  bench slow.lossy_flash_idle_p95 "$p95" ms
  # The document goes without --wait; the samples are taken while it moves.
  hl wa send wb -s load -a "$doc" "load" > /dev/null
  if ! wait_until "the document to be arriving" incoming wb; then
    show_log wa
    return 1
  fi
  rm -f "$work/stop-load"
  start_bg sampler status_sampler wb "$work/slow-status"
  local b0 b1
  b0=$(part_bytes wb)
  t0=$(now)
  r=$(flash_samples slow-loaded wa wb "$SLOW_N")
  t1=$(now)
  b1=$(part_bytes wb)
  touch "$work/stop-load"
  stop_bg sampler
  read -r p50 p95 n <<< "$r"
  bench slow.lossy_flash_loaded_p50 "$p50" ms
  bench slow.lossy_flash_loaded_p95 "$p95" ms
  busy=$(python3 "$tools" busy-fraction "$work/slow-status")
  note "- slow.lossy: path \`$LOSSY_PATH\` (bench_netem, seed $NETEM_SEED). While the $SLOW_N loaded samples were taken ($(fmt1 "$t1 - $t0") s), the $SLOW_MIB MiB document was arriving in a fraction $busy of the receiver's status samples, and its file at the receiver grew by $(fmt2 "($b1 - $b0) / 1e6") MB ($(fmt1 "($b1 - $b0) / 1e3 / ($t1 - $t0)") kB/s); the sender's flow control at the end: $(hl wa status --json | python3 "$tools" flow-summary)."
  pair_down wa wb
  path_down lossy
}

bench_slow_fat() {
  local doc=$1 bytes=$2 t0 t1 secs
  say "slow.fat: a $SLOW_MIB MiB document over a clean long path, plain TCP then hotline"
  path_up fat $FAT_PATH
  start_bg sink ip netns exec "$NSP-fat-b" "$netem" tcp-sink 10.201.0.2 9000
  if ! wait_until "the TCP sink" grep -q '^listening' "$work/sink.log"; then
    show_log sink
    return 1
  fi
  secs=$(ip netns exec "$NSP-fat-a" "$netem" tcp-send 10.201.0.2 9000 "$bytes")
  finish_bg sink 10
  bench slow.fat_tcp "$(fmt2 "$bytes / 1e6 / $secs")" MB/s
  path_pair fat fa fb
  t0=$(now)
  hl fa send fb -s document -a "$doc" --wait=600 "the document" > /dev/null
  t1=$(now)
  bench slow.fat_hotline "$(mbps "$bytes" "$t0" "$t1")" MB/s
  note "- slow.fat: path \`$FAT_PATH\`: plain TCP moved the $SLOW_MIB MiB in $(fmt2 "$secs") s (connect to the sink's answer); hotline in $(fmt2 "$t1 - $t0") s (send -a --wait: copy, transfer, receipt); the sender's flow control at the end: $(hl fa status --json | python3 "$tools" flow-summary)."
  pair_down fa fb
  path_down fat
}

bench_slow() {
  if [ "$(id -u)" -ne 0 ] || ! command -v ip > /dev/null; then
    say "slow: skipped (needs root and iproute2 for the network namespaces)"
    note "- slow: not measured: it needs root (network namespaces, TUN devices)."
    return 0
  fi
  local doc=$work/slow.bin
  make_doc "$doc" "$SLOW_MIB"
  bench_slow_lossy "$doc"
  bench_slow_fat "$doc" $(( SLOW_MIB * 1048576 ))
  rm -f "$doc"
}

# ---------------------------------------------------------------- voice

# Calls through the impairment relay and voice messages: bench/voice.py
# prints its own BENCH lines (its header says what each one is).
bench_voice() {
  say "voice: calls through the relay at 50 +- 10 ms, voice messages"
  # Debian's python3: numpy and scipy are Debian packages (scripts/deps.sh)
  local py=python3
  [ -x /usr/bin/python3 ] && py=/usr/bin/python3
  "$py" "$root/bench/voice.py" "$bin" "$work/voice" | tee -a "$results"
  note "- voice.*: $([ "$QUICK" = 1 ] && echo 8 || echo 20) s calls of espeak-ng speech each way through tests/integration/relay.py (50 ms ± 10 ms one way; then 20 % random loss; then 10 % loss in Gilbert–Elliott bursts of 3 on average). Mouth-to-ear delay is the cross-correlation lag per second of speech plus the offset of the two handsets' clocks (one machine, one monotonic clock); STOI is tests/integration/stoi.py after alignment. The codec_* baselines run the same codec and jitter buffer with the same losses and no network (bench_voice_codec). CPU per end is the daemon's CPU time during the call plus half of the two handset commands', over the call's wall time. Packet gaps are those of the stations' sends in a tcpdump capture on the loopback (the kernel's timestamps), or where tcpdump cannot capture, the relay's log (its arrival times, so they include the relay's own scheduling); the run's progress says which."
}

# ---------------------------------------------------------------- main

main() {
  local g
  ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
  describe_machine
  say "working in $work$([ "$QUICK" = 1 ] && echo ' (BENCH_QUICK: small sizes)')"
  for g in $ONLY; do
    case "$g" in
      limits) bench_limits ;;
      transfer) bench_transfers ;;
      messages) bench_messages ;;
      stream) bench_stream ;;
      latency) bench_latency ;;
      links) bench_links ;;
      slow) bench_slow ;;
      voice) BENCH_VOICE_SECONDS=$([ "$QUICK" = 1 ] && echo 8 || echo 20) bench_voice ;;
      *) echo "bench.sh: unknown group '$g' in BENCH_ONLY" >&2; return 2 ;;
    esac
  done
  {
    echo "QUICK=$QUICK"
    echo "DATE=$(date -u +%Y-%m-%dT%H:%MZ)"
    echo "COMMIT=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- src 2>/dev/null || echo '+changes')"
    echo "ELAPSED=$(printf '%.0f' "$(calc "$(now) - $started_at")")"
    echo "NOTES=$notes"
    echo "document=${DOC_MIB} MiB"
    echo "cli_messages=$CLI_N"
    echo "stream_messages=$STREAM_N"
    echo "latency_samples=$LAT_N"
    echo "load_documents=${LOAD_MIB} MiB"
    echo "idle_sessions=$IDLE_N"
    echo "handshake_seconds=$HS_SECONDS"
    echo "disk_write=${DISK_MIB} MiB"
    echo "slow_samples=$SLOW_N"
    echo "slow_document=${SLOW_MIB} MiB"
  } > "$work/params"
  python3 "$tools" report "$results" "$work/machine" "$work/params" "$report"
  say "wrote $report"
}

main
