#!/usr/bin/python3
"""bench/tools.py — the small pieces of scripts/bench.sh that are easier in Python.

  tools.py wait-events DIR EVENT N TIMEOUT
      subscribes to the daemon's event stream (the control socket's `watch`,
      docs/protocol.md section 6) of the station in DIR, prints "ready" once
      subscribed, then counts events of kind EVENT (e.g. "delivered") and,
      when N have come, prints the wall-clock time (seconds since the epoch,
      as bash's $EPOCHREALTIME) of the Nth and exits 0.  Exit 1 on timeout.
  tools.py percentiles HYPERFINE_JSON
      prints "P50 P95 N" in milliseconds (nearest rank) of the run times.
  tools.py busy-fraction FILE
      FILE holds one status JSON per line (`hotline status --json`); prints
      the fraction of them in which some peer had a message arriving
      (delivery.incoming_partial > 0).
  tools.py report RESULTS MACHINE PARAMS OUT
      writes docs/PERFORMANCE.md (OUT) from the BENCH lines in RESULTS, the
      machine description in MACHINE (text) and the sizes used (PARAMS,
      KEY=VALUE lines); prints one TARGET line per target on stdout.

Only the standard library."""

import json
import math
import os
import select
import socket
import sys
import time


def wait_events(directory, event, n, timeout):
    # The socket path may be longer than sun_path allows: address it through
    # a descriptor of the directory, as hotline does.
    dfd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(f"/proc/self/fd/{dfd}/control.sock")
    s.sendall(b'{"cmd":"watch"}\n')
    deadline = time.monotonic() + timeout
    buf = b""
    first = True
    count = 0
    needle = f'"event": "{event}"'.encode()
    needle2 = f'"event":"{event}"'.encode()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"tools.py: {count} of {n} '{event}' events after {timeout} s",
                  file=sys.stderr)
            return 1
        r, _, _ = select.select([s], [], [], left)
        if not r:
            continue
        chunk = s.recv(1 << 20)
        if not chunk:
            print(f"tools.py: the daemon closed the event stream after {count} events",
                  file=sys.stderr)
            return 1
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            if first:
                first = False
                if not json.loads(line).get("ok"):
                    print(f"tools.py: watch refused: {line!r}", file=sys.stderr)
                    return 1
                print("ready", flush=True)
                continue
            # Substring match keeps up with 100,000 events; the daemon's
            # encoder writes either spacing.
            if needle in line or needle2 in line:
                count += 1
                if count == n:
                    print(f"{time.time():.6f}", flush=True)
                    return 0


def nearest_rank(sorted_values, p):
    k = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[min(k, len(sorted_values)) - 1]


def percentiles(path):
    with open(path) as f:
        times = sorted(json.load(f)["results"][0]["times"])
    print(f"{nearest_rank(times, 50) * 1000:.2f} {nearest_rank(times, 95) * 1000:.2f} {len(times)}")
    return 0


def busy_fraction(path):
    total = busy = 0
    with open(path) as f:
        for line in f:
            try:
                st = json.loads(line)
            except ValueError:
                continue
            total += 1
            if any((p.get("delivery") or {}).get("incoming_partial", 0) > 0
                   for p in st.get("peers", [])):
                busy += 1
    print(f"{busy / total:.3f}" if total else "nan")
    return 0


# name -> (unit, what it measures); the order of the report.
FIGURES = [
    ("transfer.hotline", "MB/s", "a 1 GiB document, from the start of `hotline send -a FILE --wait` until it is durable at the receiver and its receipt is back at the sender"),
    ("transfer.scp_chacha", "MB/s", "scp of the same file to a second sshd on a loopback port, `-c chacha20-poly1305@openssh.com` (no hashing of the whole file, no fsync)"),
    ("transfer.nncp", "MB/s", "nncp-file + nncp-call + nncp-toss of the same file between two NNCP nodes on loopback (`-onlinedeadline 1`)"),
    ("limit.aead", "MB/s", "one core, libsodium ChaCha20-Poly1305 (IETF) encrypting 64 KiB buffers"),
    ("limit.disk_write", "MB/s", "writing 1 GiB and fdatasync in the stores' folder"),
    ("messages.hotline_cli", "msg/s", "1,000 messages of 200 bytes, one `hotline send` process each, one after another, until all receipts are back"),
    ("messages.nncp_cli", "msg/s", "1,000 files of 200 bytes, one `nncp-file` each, then nncp-call and nncp-toss"),
    ("messages.hotline_stream", "msg/s", "100,000 messages of 200 bytes through one `hotline send --lines`, until all receipts are back"),
    ("limit.ed25519_verify", "ops/s", "one core verifying Ed25519 signatures of 200-byte messages"),
    ("latency.flash_idle_p50", "ms", "`hotline send -p flash --wait` round trip on an idle link (median)"),
    ("latency.flash_idle_p95", "ms", "the same, 95th percentile"),
    ("latency.flash_loaded_p50", "ms", "the same while documents are in flight the whole time (median)"),
    ("latency.flash_loaded_p95", "ms", "the same while documents are in flight, 95th percentile"),
    ("limit.fsync_p50", "ms", "append 4 KiB + fdatasync in the stores' folder (median)"),
    ("handshakes.hotline", "1/s", "completed Noise IK handshakes with key confirmation (both HELLOs) against one daemon"),
    ("limit.x25519", "ops/s", "one core, crypto_scalarmult"),
    ("memory.per_idle_link", "KiB", "the daemon's resident memory growth per idle authenticated session, with 1,000 sessions"),
    ("record.verify", "entries/s", "`hotline record verify` of a record with 100,000 entries"),
]


def read_results(path):
    res = {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] == "BENCH":
                try:
                    res[parts[1]] = float(parts[2])
                except ValueError:
                    res[parts[1]] = float("nan")
    return res


def targets(r):
    """(description, hotline figure, bound, met) for each target of issues 6 and 14."""
    def g(k):
        return r.get(k, float("nan"))
    t = []
    t.append(("transfer.hotline ≥ 1.0 × transfer.scp_chacha",
              g("transfer.hotline"), 1.0 * g("transfer.scp_chacha"), ">="))
    t.append(("transfer.hotline ≥ 4 × transfer.nncp",
              g("transfer.hotline"), 4 * g("transfer.nncp"), ">="))
    t.append(("messages.hotline_cli ≥ 5 × messages.nncp_cli",
              g("messages.hotline_cli"), 5 * g("messages.nncp_cli"), ">="))
    t.append(("messages.hotline_stream ≥ 0.4 × limit.ed25519_verify",
              g("messages.hotline_stream"), 0.4 * g("limit.ed25519_verify"), ">="))
    t.append(("latency.flash_loaded_p95 ≤ 5 × latency.flash_idle_p95",
              g("latency.flash_loaded_p95"), 5 * g("latency.flash_idle_p95"), "<="))
    t.append(("latency.flash_idle_p50 ≤ 20 × limit.fsync_p50",
              g("latency.flash_idle_p50"), 20 * g("limit.fsync_p50"), "<="))
    t.append(("handshakes.hotline ≥ 0.4 × limit.x25519 / 5",
              g("handshakes.hotline"), 0.4 * g("limit.x25519") / 5, ">="))
    t.append(("memory.per_idle_link ≤ 64",
              g("memory.per_idle_link"), 64.0, "<="))
    t.append(("record.verify ≥ 0.7 × limit.ed25519_verify",
              g("record.verify"), 0.7 * g("limit.ed25519_verify"), ">="))
    # voice (issue 14), through the relay at 50 ms ± 10 ms
    t.append(("voice.m2e_p95 ≤ 150 ms", g("voice.m2e_p95"), 150.0, "<="))
    t.append(("voice.stoi_loss20 ≥ 0.90", g("voice.stoi_loss20"), 0.90, ">="))
    t.append(("voice.stoi_burst10 ≥ 0.85", g("voice.stoi_burst10"), 0.85, ">="))
    t.append(("voice.first_audio ≤ 300 ms", g("voice.first_audio"), 300.0, "<="))
    t.append(("voice.payload_sizes ≤ 1", g("voice.payload_sizes"), 1.0, "<="))
    t.append(("voice.gap_within_1ms ≥ 0.95 (20 ± 1 ms)", g("voice.gap_within_1ms"), 0.95, ">="))
    t.append(("voice.cpu_per_end ≤ 5 %", g("voice.cpu_per_end"), 5.0, "<="))
    t.append(("voice.message_60s ≤ 130 KB", g("voice.message_60s"), 130.0, "<="))
    t.append(("voice.kill9_lost ≤ 1 s", g("voice.kill9_lost"), 1.0, "<="))
    out = []
    for desc, val, bound, op in t:
        if math.isnan(val) or math.isnan(bound):
            met = None
        else:
            met = val >= bound if op == ">=" else val <= bound
        out.append((desc, val, bound, op, met))
    return out


def fmt(v):
    if math.isnan(v):
        return "not measured"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def report(results_path, machine_path, params_path, out_path):
    r = read_results(results_path)
    with open(machine_path) as f:
        machine = f.read().rstrip()
    params = {}
    with open(params_path) as f:
        for line in f:
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                params[k] = v
    notes_path = params.get("NOTES")
    notes = ""
    if notes_path and os.path.exists(notes_path):
        with open(notes_path) as f:
            notes = f.read().rstrip()
    quick = params.get("QUICK") == "1"
    lines = []
    lines.append("# hotline performance")
    lines.append("")
    lines.append("Written by `make bench` (`scripts/bench.sh`); do not edit by hand. Every figure")
    lines.append("below was measured in one run on the machine described here, everything on")
    lines.append("127.0.0.1, so the ratios between figures mean more than the figures themselves.")
    lines.append("The machine is shared (other jobs ran at the same time), so figures vary from")
    lines.append("run to run; compare ratios from one run, never figures from two.")
    lines.append("")
    if quick:
        lines.append("**This run used reduced sizes (`BENCH_QUICK=1`); its figures are not the")
        lines.append("benchmark's.** Run `make bench` for the real ones.")
        lines.append("")
    lines.append(f"Run: {params.get('DATE', '?')}, hotline {params.get('COMMIT', '?')}, "
                 f"took {params.get('ELAPSED', '?')} s.")
    lines.append("")
    lines.append("## Machine")
    lines.append("")
    lines.append("```")
    lines.append(machine)
    lines.append("```")
    lines.append("")
    lines.append("## Targets")
    lines.append("")
    lines.append("| target | hotline | bound | met |")
    lines.append("|---|---:|---:|---|")
    tlines = []
    for desc, val, bound, op, met in targets(r):
        m = "not measured" if met is None else ("yes" if met else "**no**")
        lines.append(f"| {desc} | {fmt(val)} | {op} {fmt(bound)} | {m} |")
        word = "unknown" if met is None else ("met" if met else "NOT-met")
        ascii = desc.replace(" ", "").replace("≥", ">=").replace("≤", "<=").replace("×", "*")
        tlines.append(f"TARGET {word} {ascii} {fmt(val).replace(',', '')} "
                      f"{op} {fmt(bound).replace(',', '')}")
    lines.append("")
    lines.append("## Figures")
    lines.append("")
    lines.append("| name | value | unit | what |")
    lines.append("|---|---:|---|---|")
    for name, unit, what in FIGURES:
        lines.append(f"| `{name}` | {fmt(r.get(name, float('nan')))} | {unit} | {what} |")
    extra = [k for k in r if k not in {n for n, _, _ in FIGURES}]
    for k in extra:
        lines.append(f"| `{k}` | {fmt(r[k])} | | (additional) |")
    lines.append("")
    lines.append("Sizes used in this run: " + ", ".join(
        f"{k}={v}" for k, v in params.items()
        if k not in ("DATE", "COMMIT", "ELAPSED", "NOTES", "QUICK")) + ".")
    lines.append("")
    lines.append("## How each figure is taken")
    lines.append("")
    lines.append(HOW)
    if notes:
        lines.append("")
        lines.append("## Notes from this run")
        lines.append("")
        lines.append(notes)
    lines.append("")
    with open(out_path, "w") as f:
        f.write("\n".join(lines))
    for t in tlines:
        print(t)
    return 0


HOW = """\
- Two stations run `hotline run` on 127.0.0.1 in a temporary folder (`$TMPDIR`, else
  `/var/tmp`: a disk, not tmpfs); each group of figures gets fresh stations. Timings are
  wall-clock, from the start of the first command to the moment the last receipt is in the
  sender's store (seen through the daemon's `watch` event stream, `delivered` events).
- `transfer.*`: the same file of random bytes for all three. hotline's figure includes
  copying the document into the sender's store, hashing it, the transfer, the receiver's
  fsyncs and hash check, and the signed receipt's return; the bytes start travelling while
  `send` is still copying (staging). Each side hashes every byte with BLAKE2b (the sender
  signs the hash, the receiver checks it): about 1.4 s of one core per GiB each, here.
  scp writes into the page cache and does not fsync. NNCP's figure is the three commands one after another; `nncp-call`
  is run with `-onlinedeadline 1` so that it hangs up 1 s after the last packet (its
  default would wait 10 s).
- `messages.*_cli`: one process per message, one after another (hotline's `send` hands
  each message to the daemon, which answers once it is durable); NNCP's files are sent to
  the spool first, then one call moves them all and `nncp-toss` delivers them into the
  incoming folder.
- `latency.*`: `hyperfine -N` runs `hotline send -p flash --wait TEXT` repeatedly (each
  run a new process: it hands the message to the running daemon over the control socket,
  the daemon commits it durably in its next group commit, answers, and streams the
  events on the same connection until the receipt is in); p50 and p95 by nearest rank. For the loaded figures, two loops keep
  sending documents back to back (each `send -a FILE --wait`) for as long as the samples
  are taken; a sampler reads the receiver's status 5 times a second to check that a
  document was arriving.
- `handshakes.hotline` and `memory.per_idle_link`: `build/bench/bench_links`, a client
  built on hotline's own link state machine (`src/link`), dials one daemon with pinned
  keys (1,000 peers in its `station.conf`, no Address, so the daemon only answers). The
  memory figure is the daemon's VmRSS after 1,000 sessions are confirmed and idle for 2 s,
  minus its VmRSS with the same 1,000 peers pinned and no session, divided by 1,000.
  Handshakes: 16 connections at a time, each dials, completes IK, exchanges HELLOs, sends
  CLOSE and dials again; the client itself uses about the same CPU per handshake as the
  daemon, on the same two cores.
- `limit.*`: `build/bench/bench_limits` (libsodium and POSIX calls, one thread)."""


def main(argv):
    if len(argv) >= 2:
        cmd = argv[1]
        if cmd == "wait-events" and len(argv) == 6:
            return wait_events(argv[2], argv[3], int(argv[4]), float(argv[5]))
        if cmd == "percentiles" and len(argv) == 3:
            return percentiles(argv[2])
        if cmd == "busy-fraction" and len(argv) == 3:
            return busy_fraction(argv[2])
        if cmd == "report" and len(argv) == 6:
            return report(argv[2], argv[3], argv[4], argv[5])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
