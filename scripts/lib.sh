# scripts/lib.sh — shell helpers shared by demo.sh and bench.sh (sourced).
# The caller sets WAIT (seconds), keeps the ports it has handed out in the
# associative array `port`, and names itself in ME for messages.

# A TCP port on 127.0.0.1 that nothing listens on (bash's /dev/tcp: a
# refused connect means free), chosen below Linux's ephemeral range and not
# already handed out in `port`.
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
  echo "$ME: no free port found" >&2
  return 1
}

wait_until() {   # wait_until WHAT COMMAND...: polls COMMAND for $WAIT seconds
  local what=$1; shift
  local i
  for i in $(seq 1 $((WAIT * 20))); do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.05
  done
  echo "$ME: timed out waiting for $what" >&2
  return 1
}
