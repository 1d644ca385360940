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
  tools.py flow-summary < STATUS_JSON
      one line about each peer's flow control (`hotline status --json`,
      delivery.flow: the window, the measured rate and round trip).
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


def flow_summary():
    try:
        st = json.load(sys.stdin)
    except ValueError:
        print("no status")
        return 0
    parts = []
    for p in st.get("peers", []):
        f = (p.get("delivery") or {}).get("flow")
        if not f:
            continue
        parts.append(f"{p.get('name', '?')}: window {f.get('window', 0) / 1e3:.0f} kB, "
                     f"ahead {f.get('ahead', 0) / 1e3:.1f} kB, rate {f.get('rate', 0) / 1e6:.2f} MB/s, "
                     f"min round trip {f.get('rtt_us', 0) / 1e3:.1f} ms")
    print("; ".join(parts) if parts else "no flow figures")
    return 0


# name -> (unit, what it measures); the order of the report.
FIGURES = [
    ("transfer.hotline", "MB/s", "a 1 GiB document, from the start of `hotline send -a FILE --wait` until it is durable at the receiver and its receipt is back at the sender"),
    ("transfer.scp_chacha", "MB/s", "scp of the same file to a second sshd on a loopback port, `-c chacha20-poly1305@openssh.com` (no hashing of the whole file, no fsync)"),
    ("transfer.nncp", "MB/s", "nncp-file + nncp-call + nncp-toss of the same file between two NNCP nodes on loopback (`-onlinedeadline 1`)"),
    ("limit.aead", "MB/s", "one core, ChaCha20-Poly1305 (IETF) as the daemon's transport runs it: libcrypto's EVP, packets of 65,519 bytes"),
    ("limit.aead_libsodium", "MB/s", "one core, libsodium ChaCha20-Poly1305 (IETF) encrypting 64 KiB buffers (the transport's cipher before libcrypto)"),
    ("limit.sha256", "MB/s", "one core, SHA-256 (libcrypto, SHA extensions), the document hash, over 64 KiB buffers"),
    ("limit.blake2b", "MB/s", "one core, libsodium BLAKE2b-256 over 64 KiB buffers (the document hash before SHA-256)"),
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
    ("memory.per_linked_peer", "KiB", "the same daemon's resident memory per peer pinned and linked: with its 1,000 sessions idle, beside the daemon with no peer"),
    ("record.verify", "entries/s", "`hotline record verify` of a record with 100,000 entries"),
    ("slow.lossy_flash_idle_p50", "ms", "`send -p flash --wait` over the lossy long path (200 ms ± 50 ms one way, 10 % loss, 1 % duplication, 1 % reordering), idle link (median)"),
    ("slow.lossy_flash_idle_p95", "ms", "the same, 95th percentile"),
    ("slow.lossy_flash_loaded_p50", "ms", "the same while a 20 MiB ROUTINE document is in flight (median)"),
    ("slow.lossy_flash_loaded_p95", "ms", "the same while the document is in flight, 95th percentile"),
    ("slow.fat_tcp", "MB/s", "plain TCP: 20 MiB over the clean long path (200 ms one way), from connect to the receiver's answer"),
    ("slow.fat_hotline", "MB/s", "hotline: `send -a --wait` of a 20 MiB document over the same path, until its receipt is back"),
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
    """(description, hotline figure, bound, op, met) for each target (issues 6, 14 and 15)."""
    def g(k):
        return r.get(k, float("nan"))
    t = []
    t.append(("transfer.hotline ≥ 1.0 × transfer.scp_chacha",
              g("transfer.hotline"), 1.0 * g("transfer.scp_chacha"), ">="))
    t.append(("transfer.hotline ≥ 4 × transfer.nncp",
              g("transfer.hotline"), 4 * g("transfer.nncp"), ">="))
    t.append(("transfer.hotline ≥ 0.8 × limit.disk_write (the aim)",
              g("transfer.hotline"), 0.8 * g("limit.disk_write"), ">="))
    t.append(("messages.hotline_cli ≥ 5 × messages.nncp_cli",
              g("messages.hotline_cli"), 5 * g("messages.nncp_cli"), ">="))
    t.append(("messages.hotline_stream ≥ 0.6 × limit.ed25519_verify",
              g("messages.hotline_stream"), 0.6 * g("limit.ed25519_verify"), ">="))
    t.append(("latency.flash_loaded_p95 ≤ 3 × latency.flash_idle_p95",
              g("latency.flash_loaded_p95"), 3 * g("latency.flash_idle_p95"), "<="))
    t.append(("latency.flash_idle_p50 ≤ 20 × limit.fsync_p50",
              g("latency.flash_idle_p50"), 20 * g("limit.fsync_p50"), "<="))
    t.append(("handshakes.hotline ≥ 0.6 × limit.x25519 / 5",
              g("handshakes.hotline"), 0.6 * g("limit.x25519") / 5, ">="))
    t.append(("memory.per_idle_link ≤ 64",
              g("memory.per_idle_link"), 64.0, "<="))
    t.append(("record.verify ≥ 0.9 × limit.ed25519_verify",
              g("record.verify"), 0.9 * g("limit.ed25519_verify"), ">="))
    t.append(("slow.lossy_flash_loaded_p95 ≤ 2 × slow.lossy_flash_idle_p95",
              g("slow.lossy_flash_loaded_p95"), 2 * g("slow.lossy_flash_idle_p95"), "<="))
    t.append(("slow.fat_hotline ≥ 0.8 × slow.fat_tcp",
              g("slow.fat_hotline"), 0.8 * g("slow.fat_tcp"), ">="))
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


# figure -> (what it is compared with, function of the results giving that
# reference): the "ratio" column of the report.
RATIOS = {
    "transfer.hotline": ("limit.disk_write", lambda r: r.get("limit.disk_write")),
    "transfer.scp_chacha": ("limit.disk_write", lambda r: r.get("limit.disk_write")),
    "transfer.nncp": ("limit.disk_write", lambda r: r.get("limit.disk_write")),
    "limit.aead_libsodium": ("limit.aead", lambda r: r.get("limit.aead")),
    "limit.blake2b": ("limit.sha256", lambda r: r.get("limit.sha256")),
    "messages.hotline_cli": ("messages.nncp_cli", lambda r: r.get("messages.nncp_cli")),
    "messages.hotline_stream": ("limit.ed25519_verify", lambda r: r.get("limit.ed25519_verify")),
    "latency.flash_idle_p50": ("limit.fsync_p50", lambda r: r.get("limit.fsync_p50")),
    "latency.flash_idle_p95": ("limit.fsync_p50", lambda r: r.get("limit.fsync_p50")),
    "latency.flash_loaded_p50": ("latency.flash_idle_p50", lambda r: r.get("latency.flash_idle_p50")),
    "latency.flash_loaded_p95": ("latency.flash_idle_p95", lambda r: r.get("latency.flash_idle_p95")),
    "handshakes.hotline": ("limit.x25519 / 5",
                           lambda r: r["limit.x25519"] / 5 if "limit.x25519" in r else None),
    "memory.per_idle_link": ("64 KiB", lambda r: 64.0),
    "record.verify": ("limit.ed25519_verify", lambda r: r.get("limit.ed25519_verify")),
    "slow.lossy_flash_loaded_p50": ("slow.lossy_flash_idle_p50", lambda r: r.get("slow.lossy_flash_idle_p50")),
    "slow.lossy_flash_loaded_p95": ("slow.lossy_flash_idle_p95", lambda r: r.get("slow.lossy_flash_idle_p95")),
    "slow.fat_hotline": ("slow.fat_tcp", lambda r: r.get("slow.fat_tcp")),
}


def ratio(r, name):
    """"0.63 × limit.disk_write" for NAME, or "" when it has no reference."""
    if name not in RATIOS or math.isnan(r.get(name, float("nan"))):
        return ""
    label, f = RATIOS[name]
    ref = f(r)
    if ref is None or math.isnan(ref) or ref == 0:
        return ""
    return f"{r[name] / ref:.2f} × {label}"


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
    lines.append("| name | value | unit | ratio | what |")
    lines.append("|---|---:|---|---|---|")
    for name, unit, what in FIGURES:
        lines.append(f"| `{name}` | {fmt(r.get(name, float('nan')))} | {unit} | {ratio(r, name)} | {what} |")
    extra = [k for k in r if k not in {n for n, _, _ in FIGURES}]
    for k in extra:
        lines.append(f"| `{k}` | {fmt(r[k])} | | | (additional) |")
    lines.append("")
    lines.append("Sizes used in this run: " + ", ".join(
        f"{k}={v}" for k, v in params.items()
        if k not in ("DATE", "COMMIT", "ELAPSED", "NOTES", "QUICK")) + ".")
    lines.append("")
    lines.append("## How each figure is taken")
    lines.append("")
    lines.append(HOW)
    lines.append("")
    lines.append("## Where the time goes")
    lines.append("")
    lines.append(PROFILES)
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
  `send` is still copying (staging). Each side hashes every byte with SHA-256 (the sender
  signs the hash, the receiver checks it; see `limit.sha256`), and the daemons encrypt and
  decrypt with libcrypto's ChaCha20-Poly1305 (`limit.aead`).
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
  built on hotline's own session state machine (`src/session`), dials one daemon with pinned
  keys (1,000 peers in its `station.conf`, no Address, so the daemon only answers). The
  memory figure is the daemon's VmRSS after 1,000 sessions are confirmed and idle for 2 s,
  minus its VmRSS with the same 1,000 peers pinned and no session, divided by 1,000.
  Handshakes: 16 connections at a time, each dials, completes IK, exchanges HELLOs, sends
  CLOSE and dials again; the client itself uses about the same CPU per handshake as the
  daemon, on the same two cores.
- `slow.*`: two stations in two network namespaces, joined by `build/bench/bench_netem`,
  a bridge of TUN devices that passes every IP packet through a seeded path model
  (`bench/impair/impair.h`: loss, duplication, a bottleneck, delay with jitter,
  reordering; this kernel has no `tc netem`), so each station's TCP sees the path's real
  round trip and losses. The lossy path is 200 ms ± 50 ms each way, 10 % loss, 1 %
  duplication, 1 % of the packets held 20 ms longer (reordered); the fat path is 200 ms
  each way and clean. FLASH samples are `send -p flash --wait` round trips, as for
  `latency.*`, first on the idle link, then while a 20 MiB ROUTINE document (sent once,
  without `--wait`) is arriving. `slow.fat_tcp` is bench_netem's own sender and sink
  over the same path (one connection, 20 MiB, until the sink answers).
- `limit.*`: `build/bench/bench_limits` (libsodium, libcrypto and POSIX calls, one
  thread). `limit.aead` and `limit.sha256` are the primitives the bulk path uses now
  (libcrypto's ChaCha20-Poly1305 in the daemon's transport, SHA-256 for documents);
  `limit.aead_libsodium` and `limit.blake2b` are the ones it used before, kept for
  comparison. The ratio column divides each figure by the limit or baseline it is
  judged against (for latencies: how many times it)."""


# Written by hand, not measured by this script: where the time goes for the
# targets that a quiet run may still miss, from profiles taken on this
# machine (perf, callgrind, each process's CPU time), and what was done.
PROFILES = """\
Profiles taken by hand (issue 15), not by this script; CPU times per item on this
machine, loaded by other jobs, so ratios matter more than the figures.

- **A document** (`transfer.*`): a 256 MiB document cost 2.0-2.3 s of CPU in all
  (`send`, both daemons) before libcrypto and 1.0-1.1 s after, measured one after the
  other in one sitting: `send` 0.6 -> 0.3 s (SHA-256 instead of BLAKE2b), the receiving
  daemon 1.0 -> 0.5 s (ChaCha20-Poly1305 through EVP, SHA-256), the sending daemon 0.4 ->
  0.27 s (EVP, and no copy of what the kernel takes at once). In the receiving daemon SHA-256
  (SHA-NI) is now 28 % of the samples, ChaCha20-Poly1305 14 %, copies 8 %; the next bound is
  the disk (`limit.disk_write`): the receiver writes with O_DIRECT and fdatasyncs every 1/64.
- **The message stream** (`messages.hotline_stream`, 0.6 x `limit.ed25519_verify` wanted):
  for 20,000 messages of 200 bytes, about 40 us of CPU a message in `send --lines`
  (Ed25519 signing, salted BLAKE2b, SQLite inserts), 41 us in the sending daemon (reading
  each item back from the store: SQLite with a WAL read lock per statement, 4 % of that
  daemon in fcntl, 3.6 % in SQLite's mutexes, malloc; encryption about 1 us) and 80 us in
  the receiving daemon (Ed25519 verification about 40 us, on two threads; the rest the
  SQLite inserts of items and messages with their indexes, and the receipts). About 160 us
  of CPU a message on two cores bounds the stream near 12,000 a second; 0.6 x 26,500 needs
  126 us. Unchanged by this round (same CPU within noise, A/B): the receiving path and the
  store were being reworked elsewhere at the same time. Next: one read transaction around
  the sending daemon's pump, SQLITE_OPEN_NOMUTEX, fewer statements per received message.
- **Handshakes** (0.6 x `limit.x25519` / 5 wanted): in the daemon, X25519 is about 42 % of
  the samples, the kernel (accept, epoll, socket reads and writes, close) about 15 %,
  BLAKE2b 3 %, malloc 2.5 %. Done: a peer's lookup by NoiseKey was a scan of the 1,000
  pinned peers (4.6 % of the samples) and is a hash index; a statement compiled at each
  session is cached: 2.16 M -> 2.05 M instructions per handshake in the daemon (callgrind,
  same sitting). The client runs on the same two cores and costs about as much.
- **The record** (`record.verify`): Ed25519 verification was nine tenths of it; it now runs
  on every core, so the figure can pass the one-core limit.
- **A FLASH message under load on loopback** (`latency.flash_loaded_p95`): three commits
  (the sender's, the receiver's, the receipt's), each an fsync on the disk the documents are
  written to, and CPU shared with two busy daemons and the copying `send` on two cores;
  what sits ahead of it in the sockets is now the flow-control window, about 440 kB on
  loopback (the old fixed 524,000 bytes). Documents moved about 50 % faster during the
  samples than before; the quantiles on this loaded machine did not settle enough to say
  more."""


def main(argv):
    if len(argv) >= 2:
        cmd = argv[1]
        if cmd == "wait-events" and len(argv) == 6:
            return wait_events(argv[2], argv[3], int(argv[4]), float(argv[5]))
        if cmd == "percentiles" and len(argv) == 3:
            return percentiles(argv[2])
        if cmd == "busy-fraction" and len(argv) == 3:
            return busy_fraction(argv[2])
        if cmd == "flow-summary" and len(argv) == 2:
            return flow_summary()
        if cmd == "report" and len(argv) == 6:
            return report(argv[2], argv[3], argv[4], argv[5])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
