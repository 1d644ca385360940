#!/usr/bin/env bash
# demo.sh — shows hotline working end to end on one machine: two stations,
# `washington` and `pyongyang`, on 127.0.0.1 in a temporary folder.
#
# Usage: scripts/demo.sh [PATH-TO-HOTLINE]     (make demo passes build/hotline)
#
# Steps: create both stations; exchange cards, checking fingerprints as two
# operators would over the telephone; start both daemons; wait for the link;
# show each station's status; its processes (who holds the keys, which run
# under seccomp); messages, a document; by phone (a voice message and a
# short call, from espeak-ng speech); the record; a key rotation
# (docs/rotation.md) that the peer follows by itself; the email
# fallback (the direct link is cut, messages go by email one way and
# receipts the other through a private Postfix on 127.0.0.1, then the link
# returns and TCP carries the rest; skipped, saying why, without root or
# Postfix); stop everything.  Whatever happens, a trap stops every daemon
# (and the mail server) this script started and removes the folders.
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
# Files this script writes (station.conf edits) must not be group-writable,
# whatever umask it was given: hotline refuses a station whose station.conf
# others could change.
umask 022

# How long to wait for a daemon or the link before giving up (seconds).
WAIT=${DEMO_WAIT:-20}

work=$(mktemp -d "${TMPDIR:-/tmp}/hotline-demo.XXXXXX")
declare -A pid=()     # station -> daemon pid
declare -A port=()    # station -> TCP port
declare -A fp=()      # station -> fingerprint, as `init` printed it
mailroot=             # the private Postfix's folder, once made

cleanup() {
  local st status=$?
  if [ -n "$mailroot" ] && [ -d "$mailroot" ]; then
    local master i
    master=$(cat "$mailroot/queue/pid/master.pid" 2>/dev/null | tr -d ' ' || true)
    postfix -c "$mailroot/conf" stop >/dev/null 2>&1 || true
    for i in $(seq 1 100); do   # its master exits within seconds
      [ -n "$master" ] && kill -0 "$master" 2>/dev/null || break
      sleep 0.1
    done
    rm -rf "$mailroot"
  fi
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
as_user=()           # a prefix for commands once the stations are nobody's (step 8)
hl() { local st=$1; shift; "${as_user[@]}" "$bin" -d "$work/$st" "$@"; }
run() { show "$@"; hl "$@" | indent; }   # shows the command, runs it, indents its output
indent() { sed 's/^/     /'; }

ME=demo.sh
# free_port, wait_until
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

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
    # Washington keeps the audio of its calls for the record (docs/voice.md)
    [ "$st" = washington ] && sed -i 's/^\[Station\]$/[Station]\nCallRecording = on/' "$work/$st/station.conf"
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
    hl "$st" card 2>&1 > "$work/$st.card" | indent   # the fingerprint, on stderr
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
    start_daemon "$st"
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

proc_line() {   # proc_line PID: its name, Seccomp and NoNewPrivs (from /proc), and its role
  local p=$1 name sec nnp role
  name=$(cat "/proc/$p/comm" 2>/dev/null) || return 0
  sec=$(awk '/^Seccomp:/ {print $2}' "/proc/$p/status")
  nnp=$(awk '/^NoNewPrivs:/ {print $2}' "/proc/$p/status")
  case $name in
    hotline-keys) role="the private keys, in locked memory" ;;
    hotline-spawner) role="runs the daemon's children (alarms, mail)" ;;
    *) role="network, store, commands: session keys only" ;;
  esac
  printf '%-8s %-16s %-8s %-11s %s\n' "$p" "$name" "$sec" "$nnp" "$role"
}

step_processes() {
  step "5. Who holds the keys: Washington's processes (docs/keyholder.md, docs/sandbox.md)"
  say "hotline run forks a key holder before it opens the store or the network: only"
  say "it holds the private keys. A spawner runs the daemon's children; the network"
  say "process holds session keys only. The holder and the network process each run"
  say "under a seccomp list of their own (2 = filter) and no_new_privs."
  local d=${pid[washington]} c
  printf '     %-8s %-16s %-8s %-11s %s\n' PID NAME SECCOMP NONEWPRIVS ROLE
  {
    proc_line "$d"
    for c in $(cat "/proc/$d/task/"*/children 2>/dev/null); do proc_line "$c"; done
  } | indent
  say "(the numbers come from /proc/PID/status; a scan of every process's memory"
  say " but the key holder's for the key bytes is a test: tests/integration/test_keyholder.py)"
}

step_message() {
  step "6. Washington sends a FLASH message; Pyongyang reads it"
  say "send exits once the message is on disk; --wait also waits for the receipt,"
  say "which Pyongyang signs only once the message is on its own disk."
  local id out
  show washington send pyongyang -p flash -s "Line test" --wait=$WAIT \
    "This is Washington. Please acknowledge."
  out=$(hl washington send pyongyang -p flash -s "Line test" --wait=$WAIT \
    "This is Washington. Please acknowledge.")
  id=$(printf '%s\n' "$out" | sed -n 1p)
  say "  message id: $id"
  say "  $(printf '%s\n' "$out" | sed -n 2p)"
  run washington outbox
  run pyongyang inbox
  say "Reading it shows who signed it and that the signature verifies:"
  run pyongyang read "$id"
}

delivered() {   # delivered STATION ID: the outbox says the receipt is in
  hl "$1" outbox | grep -q "^${2:0:12} .* delivered "
}

step_document() {
  step "7. Pyongyang replies with a large document; a FLASH message overtakes it"
  say "Documents travel in chunks interleaved by precedence: a FLASH message sent"
  say "while a document is in flight does not wait for it."
  head -c 128M /dev/urandom > "$work/annex.bin"
  local doc flash
  show pyongyang send washington -s "Annex" -a annex.bin "The full text, 128 MiB."
  doc=$(hl pyongyang send washington -s "Annex" -a "$work/annex.bin" "The full text, 128 MiB.")
  say "  message id: $doc (queued; the transfer starts at once)"
  show pyongyang send washington -p flash -s "Correction" --wait=$WAIT "Disregard paragraph 4 of the annex."
  flash=$(hl pyongyang send washington -p flash -s "Correction" --wait=$WAIT \
    "Disregard paragraph 4 of the annex." | sed -n 1p)
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

# ---------------------------------------------------------------- by phone

ringing() {   # ringing STATION: a call rings there
  hl "$1" status --json | grep -q '"state": *"ringing_in"'
}

in_inbox() {  # in_inbox STATION ID
  hl "$1" inbox | grep -q "^${2:0:12}"
}

step_phone() {
  step "8. By phone: a voice message, then a call that both stations sign"
  if ! command -v espeak-ng >/dev/null 2>&1; then
    say "skipped: espeak-ng, which speaks for the operators here, is not installed"
    say "(scripts/deps.sh demo installs it)"
    return 0
  fi
  say "Washington's operator records a voice message (espeak-ng speaks for them)"
  say "and sends it: Opus, 16 kb/s, an ordinary message with a recording attached."
  espeak-ng -w "$work/note.wav" "This is Washington. The exercise planned for Monday is cancelled. Please confirm." 2>/dev/null
  show washington voice send pyongyang -p immediate note.wav
  local id
  id=$(hl washington voice send pyongyang -p immediate "$work/note.wav")
  say "  $id"
  if ! wait_until "the voice message at Pyongyang" in_inbox pyongyang "$id"; then
    show_log_tail pyongyang
    return 1
  fi
  run pyongyang inbox
  show pyongyang voice play "${id:0:12}" -o heard.wav
  hl pyongyang voice play "${id:0:12}" -o "$work/heard.wav" 2>&1 | indent
  say "  heard.wav: $(( ($(stat -c %s "$work/heard.wav") - 44) / 96000 )) s of 48 kHz audio, decoded at Pyongyang"

  say ""
  say "Washington calls Pyongyang (FLASH). A call is keyed by its own X25519"
  say "exchange over the link; its media go by UDP, 128-byte packets every 20 ms"
  say "whether anyone speaks or not. WAV files stand in for the handsets here."
  espeak-ng -w "$work/washington-says.wav" "Pyongyang, this is Washington on the direct line. Do you hear me?" 2>/dev/null
  espeak-ng -w "$work/pyongyang-says.wav" "Washington, Pyongyang here. We hear you clearly." 2>/dev/null
  show washington call pyongyang -p flash --input washington-says.wav --output washington-hears.wav --seconds 5
  "$bin" -d "$work/washington" call pyongyang -p flash --input "$work/washington-says.wav"     --output "$work/washington-hears.wav" --seconds 5 > "$work/call.out" 2> "$work/call.err" &
  local caller=$!
  if ! wait_until "the ring at Pyongyang" ringing pyongyang; then
    kill "$caller" 2>/dev/null || true
    show_log_tail washington pyongyang
    return 1
  fi
  run pyongyang status
  show pyongyang call answer --input pyongyang-says.wav --output pyongyang-hears.wav
  hl pyongyang call answer --input "$work/pyongyang-says.wav" --output "$work/pyongyang-hears.wav" 2>&1 | indent
  wait "$caller" || { cat "$work/call.err" >&2; return 1; }
  indent < "$work/call.err"
  say "Each station now signs an account of the call in its chain; Washington,"
  say "which has CallRecording = on, first sends the recording of what it said."
}

agreement_arrived() {   # the proposal and its document are at STATION
  hl "$1" agree list | grep -q "$2"
}

step_record() {
  step "9. A line check, a co-signed agreement, and the record (with the call) for a third party"
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
  say "Pyongyang's operator sees what they sign (name, size, hash, proposer) and confirms;"
  say "on a terminal 'agree sign' asks, here --yes answers for them:"
  run pyongyang agree sign "$agr" --yes
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

step_backup() {
  step "10. Washington backs up its station while it runs"
  say "A consistent copy: the store in one snapshot, then exactly the files it names;"
  say "the copy holds the private keys, so it is made mode 0700/0600."
  run washington backup "$work/washington-backup"
  say "Contents can be purged after a time (Retain in station.conf, or by hand); the"
  say "signed items stay, so the record still verifies.  What a purge would take now:"
  run washington purge --older-than 1s --dry-run
}

peer_rotated() {   # peer_rotated STATION PEER: STATION's status shows PEER's new keys
  hl "$1" status | grep -q "keys   rotated"
}

step_rotate() {
  step "11. Washington rotates its keys; Pyongyang follows by itself"
  say "Each card committed to the hash of its station's next keys (NextKeyHash, inside"
  say "the fingerprint); a rotation reveals those keys, signed by the old and the new one."
  run washington key rotate
  if ! wait_until "Pyongyang to take the rotation" peer_rotated pyongyang washington; then
    return 1
  fi
  run pyongyang status
  say "The link goes on; the record still verifies with the cards pinned at the start:"
  hl washington send pyongyang --wait=$WAIT -s "New keys" "Signed with the new key." 2>&1 | indent
  hl washington record export pyongyang -o "$work/link2.rec" 2>&1 | indent
  "$bin" record verify "$work/link2.rec" --card "$work/washington.card" \
    --card "$work/pyongyang.card" 2>&1 | indent
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

# ------------------------------------------------- the email fallback (step 8)

# A private Postfix in a temporary folder, as tests/integration/mailutil.py
# runs it: one SMTP listener on 127.0.0.1:$1, virtual(8) delivering
# USER@hotline.test into $mailroot/mail/USER/Maildir.  Postfix's master must
# start as root.
start_postfix() {
  local smtp_port=$1 u d
  mailroot=$(mktemp -d "${TMPDIR:-/tmp}/hotline-demo-mail.XXXXXX") || return 1
  [ -n "$mailroot" ] && [ -d "$mailroot" ] || return 1
  chmod 755 "$mailroot"
  mkdir -p "$mailroot/conf" "$mailroot/queue" "$mailroot/data" "$mailroot/mail"
  chown postfix "$mailroot/data"
  {
    echo "compatibility_level = 3.6"
    echo "queue_directory = $mailroot/queue"
    echo "data_directory = $mailroot/data"
    echo "daemon_directory = /usr/lib/postfix/sbin"
    echo "command_directory = /usr/sbin"
    echo "meta_directory = /etc/postfix"
    echo "mail_owner = postfix"
    echo "setgid_group = postdrop"
    echo "myhostname = mail.hotline.test"
    echo "mydestination ="
    echo "inet_interfaces = 127.0.0.1"
    echo "inet_protocols = ipv4"
    echo "mynetworks = 127.0.0.0/8"
    echo "alias_maps ="
    echo "alias_database ="
    echo "local_recipient_maps ="
    echo "virtual_mailbox_domains = hotline.test"
    echo "virtual_mailbox_base = $mailroot/mail"
    echo "virtual_mailbox_maps = texthash:$mailroot/conf/vmailbox"
    echo "virtual_uid_maps = static:65534"
    echo "virtual_gid_maps = static:65534"
    echo "virtual_mailbox_limit = 0"
    echo "message_size_limit = 104857600"
    echo "maillog_file = $mailroot/maillog"
    echo "maillog_file_prefixes = $mailroot"
    echo "smtputf8_enable = no"
    echo "biff = no"
  } > "$mailroot/conf/main.cf"
  {
    echo "127.0.0.1:$smtp_port inet n - n - - smtpd"
    echo "cleanup unix n - n - 0 cleanup"
    echo "qmgr unix n - n 300 1 qmgr"
    echo "rewrite unix - - n - - trivial-rewrite"
    echo "bounce unix - - n - 0 bounce"
    echo "defer unix - - n - 0 bounce"
    echo "trace unix - - n - 0 bounce"
    echo "verify unix - - n - 1 verify"
    echo "flush unix n - n 1000? 0 flush"
    echo "proxymap unix - - n - - proxymap"
    echo "error unix - - n - - error"
    echo "retry unix - - n - - error"
    echo "discard unix - - n - - discard"
    echo "virtual unix - n n - - virtual"
    echo "anvil unix - - n - 1 anvil"
    echo "scache unix - - n - 1 scache"
    echo "postlog unix-dgram n - n - 1 postlogd"
  } > "$mailroot/conf/master.cf"
  : > "$mailroot/conf/vmailbox"
  for u in washington pyongyang; do
    echo "$u@hotline.test $u/Maildir/" >> "$mailroot/conf/vmailbox"
    for d in new cur tmp; do mkdir -p "$mailroot/mail/$u/Maildir/$d"; done
  done
  chown -R 65534:65534 "$mailroot/mail"
  postfix -c "$mailroot/conf" check && postfix -c "$mailroot/conf" start >/dev/null 2>&1
}

smtp_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Why the email step cannot run here (nothing when it can).
email_skip_reason() {
  if [ "$(id -u)" -ne 0 ]; then
    echo "Postfix's master must start as root, and this demo does not run as root"
    return 0
  fi
  if [ ! -x /usr/sbin/postfix ]; then
    "$(dirname "$0")/deps.sh" demo >&2 || true
  fi
  if [ ! -x /usr/sbin/postfix ]; then
    echo "Postfix is not installed and scripts/deps.sh demo could not install it"
  fi
}

# conf_edit STATION SED-SCRIPT: edits station.conf as an operator would
# (replaced whole; the daemon re-reads it by itself).
conf_edit() {
  local f="$work/$1/station.conf"
  sed -e "$2" "$f" > "$f.new" && mv "$f.new" "$f"
}

add_email_conf() {   # add_email_conf STATION PEER SMTP-PORT
  local st=$1 other=$2
  conf_edit "$st" "/^\[Station\]/a FallbackAfter = 3s"
  conf_edit "$st" "/^Name = $other\$/a Email = $other@hotline.test"
  printf '\n[Email]\nSMTP = smtp://127.0.0.1:%s\nFrom = %s@hotline.test\nMaildir = %s\n' \
    "$3" "$st" "$mailroot/mail/$st/Maildir" >> "$work/$st/station.conf"
}

start_daemon() {   # start_daemon STATION: hotline run in the background, as root
  "$bin" -d "$work/$1" run 2>>"$work/$1.log" >>"$work/$1.log" &
  pid[$1]=$!
}

# The mail server delivers as nobody (Postfix never delivers as root), and
# a daemon started as root drops every capability, so it cannot read
# another user's mail: as in a real deployment, each station now belongs
# to the user its mail is delivered to, and its daemon becomes that user.
give_stations_to_nobody() {
  local st
  say "Mail is delivered as the user nobody here, and a daemon started as root"
  say "drops every capability, so it could not read nobody's mail.  As on a real"
  say "system, each station now belongs to the user its mail goes to, and"
  say "station.conf says User = nobody: the daemon, started as root, becomes"
  say "nobody; the operator's commands run as nobody too."
  for st in washington pyongyang; do stop_daemon "$st"; done
  chmod 711 "$work"
  # The daemon, once nobody, runs its own programs (the email path): a
  # build tree nobody cannot reach (a clone in root's 0700 home) would
  # stop it at start.  As `make install` would, put them where it can.
  if ! setpriv --reuid=65534 --regid=65534 --clear-groups -- test -x "$bin"; then
    say "nobody cannot reach $(dirname "$bin"), so the programs are copied"
    say "into $work/bin, as \`make install\` would put them in PREFIX/bin."
    mkdir -p "$work/bin"
    local p
    for p in hotline hotline-daemon hotline-mail hotline-voice; do
      [ -x "$(dirname "$bin")/$p" ] && cp "$(dirname "$bin")/$p" "$work/bin/"
    done
    chmod 755 "$work/bin" "$work"/bin/*
    bin=$work/bin/hotline
  fi
  for st in washington pyongyang; do
    conf_edit "$st" "/^\[Station\]/a User = nobody"
    chown -R 65534:65534 "$work/$st"
  done
  as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups --)
  for st in washington pyongyang; do
    start_daemon "$st"
    if ! wait_until "the $st daemon" daemon_ready "$st"; then
      show_log_tail "$st"
      return 1
    fi
  done
  grep -h "now running as" "$work/washington.log" | tail -n 1 | indent
}

mails_of() {   # mails_of STATION: mails its daemon's fallback has sent
  hl "$1" status --json | tr -d ' \n' | sed -n 's/.*"mails":\([0-9]*\).*/\1/p'
}

in_inbox() { hl "$1" inbox | grep -q "^${2:0:12} "; }

step_email() {
  step "12. The direct link is cut: messages go by email, receipts come back by email"
  local why smtp_port dead id2 flash tcp m_w m_p n
  why=$(email_skip_reason)
  if [ -n "$why" ]; then
    say "SKIPPED: this step needs a real mail server: $why."
    say "(Run 'make demo' as root on Debian 12 to see it.)"
    return 0
  fi
  smtp_port=$(free_port)
  port[smtp]=$smtp_port
  if ! start_postfix "$smtp_port" || ! wait_until "the mail server" smtp_up "$smtp_port"; then
    say "SKIPPED: the private Postfix did not start (its log: ${mailroot:-?}/maillog)."
    return 0
  fi
  say "A private Postfix listens on 127.0.0.1:$smtp_port and delivers"
  say "washington@hotline.test and pyongyang@hotline.test into Maildirs."
  give_stations_to_nobody
  say "Each operator adds the email path to station.conf (the daemon re-reads it):"
  add_email_conf washington pyongyang "$smtp_port"
  add_email_conf pyongyang washington "$smtp_port"
  say "  [Station] FallbackAfter = 3s     (mail after 3 s without a link; default 60s)"
  say "  [Peer]    Email = pyongyang@hotline.test"
  say "  [Email]   SMTP = smtp://127.0.0.1:$smtp_port"
  say "            From = washington@hotline.test"
  say "            Maildir = $mailroot/mail/washington/Maildir"
  sleep 1
  say ""
  say "Now the cable is cut: each station's Address for the other points at a"
  say "port where nothing listens, and both daemons restart, dropping the session"
  say "(a daemon watches a new Maildir from its next start: its sandbox lets it"
  say "see only the Maildir it started with).  Neither side can reach the other"
  say "by TCP."
  dead=$(free_port)
  conf_edit washington "s/^Address = 127.0.0.1:${port[pyongyang]}\$/Address = 127.0.0.1:$dead/"
  conf_edit pyongyang "s/^Address = 127.0.0.1:${port[washington]}\$/Address = 127.0.0.1:$dead/"
  stop_daemon pyongyang
  stop_daemon washington
  start_daemon washington
  start_daemon pyongyang
  if ! wait_until "the washington daemon" daemon_ready washington ||
     ! wait_until "the pyongyang daemon" daemon_ready pyongyang ||
     ! wait_until "washington to see the link down" not_linked washington; then
    show_log_tail washington pyongyang
    return 1
  fi
  say "Washington sends two ROUTINE messages; nobody runs a mail command."
  show washington send pyongyang -s "Minutes" "The minutes of the session."
  hl washington send pyongyang -s "Minutes" "The minutes of the session." | indent
  show washington send pyongyang -s "Schedule" "Next session: Thursday 10:00."
  id2=$(hl washington send pyongyang -s "Schedule" "Next session: Thursday 10:00.")
  say "  $id2"
  say "After FallbackAfter (3 s) without a link, Washington's daemon mails a"
  say "sealed bundle of everything Pyongyang has not acknowledged; Pyongyang's"
  say "daemon picks it up from its Maildir and mails the receipts back."
  if ! wait_until "the messages at Pyongyang" in_inbox pyongyang "$id2" ||
     ! wait_until "the receipts at Washington" delivered washington "$id2"; then
    show_log_tail washington pyongyang
    return 1
  fi
  run pyongyang inbox
  run washington outbox
  say "A FLASH message does not wait for FallbackAfter: while the link is down"
  say "it goes by email at once."
  show washington send pyongyang -p flash -s "Urgent" "Please call on the telephone line."
  flash=$(hl washington send pyongyang -p flash -s "Urgent" "Please call on the telephone line.")
  say "  $flash"
  if ! wait_until "the FLASH message at Pyongyang" in_inbox pyongyang "$flash" ||
     ! wait_until "its receipt at Washington" delivered washington "$flash"; then
    show_log_tail washington pyongyang
    return 1
  fi
  say "Status shows each path: TCP down, email up with the fallback active."
  run washington status
  say "Washington's daemon log says what it mailed, and why:"
  grep -E "mailing a bundle|mail: mailed" "$work/washington.log" | sed 's/^/     /' | tail -n 6
  say ""
  say "The cable is repaired: the Addresses point at the stations again.  The"
  say "link comes back and carries the rest by TCP; no more mail goes out."
  conf_edit washington "s/^Address = 127.0.0.1:$dead\$/Address = 127.0.0.1:${port[pyongyang]}/"
  conf_edit pyongyang "s/^Address = 127.0.0.1:$dead\$/Address = 127.0.0.1:${port[washington]}/"
  if ! wait_until "the link" linked washington || ! wait_until "the link" linked pyongyang; then
    show_log_tail washington pyongyang
    return 1
  fi
  m_w=$(mails_of washington)
  m_p=$(mails_of pyongyang)
  show washington send pyongyang --wait=$WAIT -s "Back on the line" "The cable is repaired."
  tcp=$(hl washington send pyongyang --wait=$WAIT -s "Back on the line" "The cable is repaired." |
    sed -n 1p)
  say "  $tcp (its receipt came back over TCP)"
  sleep 4
  if [ "$(mails_of washington)" != "$m_w" ] || [ "$(mails_of pyongyang)" != "$m_p" ]; then
    say "a mail went out while the link was up: that is a bug"
    return 1
  fi
  say "Mails sent by the fallback: washington $m_w, pyongyang $m_p; none since the"
  say "link returned.  Pyongyang holds every message once, whatever path it took:"
  run pyongyang inbox
  n=$(hl pyongyang inbox --json | grep -o '"id": *"[0-9a-f]*"' | sort | uniq -d | wc -l)
  say "  duplicates in Pyongyang's inbox: $n"
  [ "$n" -eq 0 ]
}

step_stop() {
  step "13. Washington's daemon stops: it tells Pyongyang it is shutting down"
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
  step_processes
  step_message
  step_document
  step_phone
  step_record
  step_backup
  step_rotate
  step_email
  step_stop
  step "Done: everything started has stopped; the temporary folder is removed."
}

main
