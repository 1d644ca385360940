#!/usr/bin/env bash
# demo.sh — shows hotline working end to end on one machine: two stations,
# `washington` and `pyongyang`, on 127.0.0.1 in a temporary folder.
#
# Usage: scripts/demo.sh [PATH-TO-HOTLINE]     (make demo passes build/hotline)
#
# Steps: create both stations; exchange cards, checking fingerprints as two
# operators would over the telephone; start both daemons; wait for the link;
# show each station's status; stop everything.  Whatever happens, a trap
# stops every daemon this script started and removes the folder.
#
# Later issues add steps (messages, receipts, line checks, the record); keep
# one function per step and call them from main at the bottom.
set -euo pipefail

bin=${1:-build/hotline}
if [ ! -x "$bin" ]; then
  echo "demo.sh: '$bin' is not an executable; run 'make' first" >&2
  exit 1
fi
bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")

# How long to wait for a daemon or the link before giving up (seconds).
WAIT=${DEMO_WAIT:-20}

work=$(mktemp -d "${TMPDIR:-/tmp}/hotline-demo.XXXXXX")
declare -A pid=()     # station -> daemon pid
declare -A port=()    # station -> TCP port
declare -A fp=()      # station -> fingerprint, as `init` printed it

cleanup() {
  local st status=$?
  for st in "${!pid[@]}"; do
    kill -TERM "${pid[$st]}" 2>/dev/null || true
  done
  for st in "${!pid[@]}"; do
    wait "${pid[$st]}" 2>/dev/null || true
  done
  rm -rf "$work"
  if [ "$status" -ne 0 ]; then
    echo "demo.sh: FAILED (exit $status)" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -t 1 ]; then bold=$'\033[1m' dim=$'\033[2m' plain=$'\033[0m'; else bold= dim= plain=; fi
step() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
say() { printf '   %s\n' "$*"; }
show() {  # show STATION ARGS...: the command as that station's operator types it
  local st=$1 a line=""; shift
  for a in "$@"; do
    case "$a" in *" "*) line+=" '$a'" ;; *) line+=" $a" ;; esac
  done
  printf '   %s%s$%s hotline%s\n' "$dim" "$st" "$plain" "$line"
}
hl() { local st=$1; shift; "$bin" -d "$work/$st" "$@"; }
run() { show "$@"; hl "$@" | indent; }   # shows the command, runs it, indents its output
indent() { sed 's/^/     /'; }

# A TCP port on 127.0.0.1 that nothing listens on (bash's /dev/tcp: a
# refused connect means free), chosen below Linux's ephemeral range.
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( 20000 + RANDOM % 12000 ))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      case " ${port[*]} " in *" $p "*) continue ;; esac
      echo "$p"
      return 0
    fi
  done
  echo "demo.sh: no free port found" >&2
  return 1
}

wait_until() {   # wait_until WHAT COMMAND...: polls COMMAND for $WAIT seconds
  local what=$1; shift
  local i
  for i in $(seq 1 $((WAIT * 10))); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.1
  done
  echo "demo.sh: timed out waiting for $what" >&2
  return 1
}

daemon_alive() { kill -0 "${pid[$1]}" 2>/dev/null; }

show_log_tail() {
  local st
  for st in "$@"; do
    echo "--- $st daemon log (last lines) ---" >&2
    tail -n 20 "$work/$st.log" >&2 || true
  done
}

# ---------------------------------------------------------------- the steps

step_create() {
  step "1. Each side creates its station: keys, configuration"
  say "A station holds its own keys; nothing secret ever leaves its folder."
  local st out
  for st in washington pyongyang; do
    port[$st]=$(free_port)
    show "$st" init "$st" --listen "127.0.0.1:${port[$st]}"
    out=$(hl "$st" init "$st" --listen "127.0.0.1:${port[$st]}")
    printf '%s\n' "$out" | sed -n '1,/^Fingerprint:/p' | indent
    fp[$st]=$(printf '%s\n' "$out" | sed -n 's/^Fingerprint: *//p')
    if [ -z "${fp[$st]}" ]; then
      echo "demo.sh: 'hotline init' printed no fingerprint" >&2
      return 1
    fi
  done
}

step_exchange_cards() {
  step "2. The stations exchange cards and check fingerprints by telephone"
  say "A card is public: the station's name, its two public keys, its address."
  local st
  for st in washington pyongyang; do
    show "$st" card
    hl "$st" card > "$work/$st.card"
    indent < "$work/$st.card"
  done
  say ""
  say "Over the telephone, each operator reads out their station's fingerprint:"
  say "  washington: ${fp[washington]}"
  say "  pyongyang:  ${fp[pyongyang]}"
  say "and each pins the other's card only if the fingerprint matches:"
  run washington peer add "$work/pyongyang.card" --fingerprint "${fp[pyongyang]}"
  run pyongyang peer add "$work/washington.card" --fingerprint "${fp[washington]}"
  run washington peer list
}

step_start() {
  step "3. Both daemons start (logs: the temporary folder)"
  say "Each dials the other; the Noise IK handshake admits only pinned keys."
  local st
  for st in washington pyongyang; do
    show "$st" run "&"
    "$bin" -d "$work/$st" run 2>>"$work/$st.log" >>"$work/$st.log" &
    pid[$st]=$!
  done
  for st in washington pyongyang; do
    if ! wait_until "the $st daemon" daemon_ready "$st"; then
      show_log_tail "$st"
      return 1
    fi
  done
}

daemon_ready() {
  local js
  daemon_alive "$1" && js=$(hl "$1" status --json) &&
    ! printf '%s' "$js" | grep -q '"daemon": *false'
}

linked() {   # linked STATION: its status shows a connected peer
  local js
  daemon_alive "$1" && js=$(hl "$1" status --json) &&
    printf '%s' "$js" | grep -q '"state": *"connected"'
}

step_link() {
  step "4. The link comes up"
  if ! wait_until "the link" linked washington || ! wait_until "the link" linked pyongyang; then
    show_log_tail washington pyongyang
    return 1
  fi
  say "Both stations report the other connected:"
  local st out
  for st in washington pyongyang; do
    show "$st" status
    out=$(hl "$st" status)
    printf '%s\n' "$out" | indent
  done
  if printf '%s' "$out" | grep -q refused || hl washington status | grep -q refused; then
    say "(LAST ERROR keeps the last reason a dial or a session failed, after the"
    say " link recovered too: the station that started first found the other not"
    say " yet listening, and retried with backoff.)"
  fi
}

step_message() {
  step "5. Washington sends a FLASH message; Pyongyang reads it"
  say "send exits once the message is on disk; --wait also waits for the receipt,"
  say "which Pyongyang signs only once the message is on its own disk."
  local id
  show washington send pyongyang -p flash -s "Line test" --wait=$WAIT \
    "This is Washington. Please acknowledge."
  id=$(hl washington send pyongyang -p flash -s "Line test" --wait=$WAIT \
    "This is Washington. Please acknowledge.")
  say "  message id: $id"
  run washington outbox
  run pyongyang inbox
  say "Reading it shows who signed it and that the signature verifies:"
  run pyongyang read "$id"
}

delivered() {   # delivered STATION ID: the outbox says the receipt is in
  hl "$1" outbox | grep -q "^${2:0:12} .* delivered "
}

step_document() {
  step "6. Pyongyang replies with a large document; a FLASH message overtakes it"
  say "Documents travel in chunks interleaved by precedence: a FLASH message sent"
  say "while a document is in flight does not wait for it."
  head -c 128M /dev/urandom > "$work/annex.bin"
  local doc flash
  show pyongyang send washington -s "Annex" -a annex.bin "The full text, 128 MiB."
  doc=$(hl pyongyang send washington -s "Annex" -a "$work/annex.bin" "The full text, 128 MiB.")
  say "  message id: $doc (queued; the transfer starts at once)"
  show pyongyang send washington -p flash -s "Correction" --wait=$WAIT "Disregard paragraph 4 of the annex."
  flash=$(hl pyongyang send washington -p flash -s "Correction" --wait=$WAIT \
    "Disregard paragraph 4 of the annex.")
  say "  message id: $flash (its receipt is already back)"
  run pyongyang outbox
  if ! wait_until "the document's receipt" delivered pyongyang "$doc"; then
    show_log_tail pyongyang
    return 1
  fi
  say "The document arrived after the FLASH message, whole; receipts for both:"
  run pyongyang outbox
  run washington inbox
  say "Washington checks the document against its signed hash while saving it:"
  mkdir -p "$work/saved"
  run washington read "$doc" --save "$work/saved"
  if cmp -s "$work/annex.bin" "$work/saved/annex.bin"; then
    say "  saved/annex.bin is byte for byte the file Pyongyang sent."
  else
    say "  saved/annex.bin DIFFERS from the file Pyongyang sent"
    return 1
  fi
}

agreement_arrived() {   # the proposal and its document are at STATION
  hl "$1" agree list | grep -q "$2"
}

step_record() {
  step "7. A line check, a co-signed agreement, and the record for a third party"
  say "Washington tests the line: a signed check, answered and signed by Pyongyang."
  run washington check pyongyang
  say "Washington proposes a document; Pyongyang countersigns its hash."
  printf 'Both parties agree to test the line daily at 09:00 and 17:00.\n' > "$work/accord.txt"
  show washington agree propose pyongyang accord.txt
  local agr
  agr=$(hl washington agree propose pyongyang "$work/accord.txt" | tail -n 1 | awk '{print $NF}')
  say "  agreement id: $agr (the same at both stations)"
  if ! wait_until "the proposal at Pyongyang" agreement_arrived pyongyang "${agr:0:12}"; then
    show_log_tail pyongyang
    return 1
  fi
  run pyongyang agree sign "$agr"
  if ! wait_until "the countersignature at Washington" \
       sh -c "'$bin' -d '$work/washington' agree list | grep -q 'signed by both'"; then
    show_log_tail washington
    return 1
  fi
  run washington agree list
  say "Washington exports the record of the link; a third party, with nothing"
  say "but the two stations' cards, verifies it and reads it:"
  show washington record export pyongyang -o link.rec
  hl washington record export pyongyang -o "$work/link.rec" 2>&1 | indent
  printf '   %sthird party$%s hotline record verify link.rec --card washington.card --card pyongyang.card\n' "$dim" "$plain"
  "$bin" record verify "$work/link.rec" --card "$work/washington.card" --card "$work/pyongyang.card" 2>&1 | indent
  printf '   %sthird party$%s hotline record show link.rec\n' "$dim" "$plain"
  "$bin" record show "$work/link.rec" 2>&1 | indent
  local size at
  size=$(stat -c %s "$work/link.rec")
  at=$((size * 3 / 5))
  say "Someone changes one byte of the record (byte $at of $size); verify refuses it:"
  cp "$work/link.rec" "$work/altered.rec"
  printf '\x58' | dd of="$work/altered.rec" bs=1 seek="$at" conv=notrunc status=none
  local rc=0
  printf '   %sthird party$%s hotline record verify altered.rec --card washington.card --card pyongyang.card\n' "$dim" "$plain"
  "$bin" record verify "$work/altered.rec" --card "$work/washington.card" \
    --card "$work/pyongyang.card" 2>&1 | indent || true
  "$bin" record verify "$work/altered.rec" --card "$work/washington.card" \
    --card "$work/pyongyang.card" >/dev/null 2>&1 || rc=$?
  say "  exit status $rc"
  [ "$rc" -ne 0 ]
}

stop_daemon() {   # stop_daemon STATION: SIGTERM, and it must exit 0
  local st=$1 rc=0
  printf '   %s%s$%s kill -TERM %s      # its hotline run\n' "$dim" "$st" "$plain" "${pid[$st]}"
  kill -TERM "${pid[$st]}"
  wait "${pid[$st]}" || rc=$?
  unset "pid[$st]"
  say "$st daemon exited with status $rc"
  if [ "$rc" -ne 0 ]; then
    show_log_tail "$st"
    return 1
  fi
}

not_linked() { ! linked "$1"; }

step_stop() {
  step "8. Washington's daemon stops: it tells Pyongyang it is shutting down"
  stop_daemon washington
  if ! wait_until "pyongyang to see the link down" not_linked pyongyang; then
    show_log_tail pyongyang
    return 1
  fi
  say "Pyongyang sees the line down at once, and keeps dialing with backoff:"
  run pyongyang status
  stop_daemon pyongyang
}

main() {
  echo "hotline demo: two stations on 127.0.0.1 in $work"
  step_create
  step_exchange_cards
  step_start
  step_link
  step_message
  step_document
  step_record
  step_stop
  step "Done: everything started has stopped; the temporary folder is removed."
}

main
