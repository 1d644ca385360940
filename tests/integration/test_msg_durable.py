"""Durable before acknowledged (docs/messages.md, principle 1), shown from the
receiving daemon's system calls.

The receiver `hotline run` runs under strace (-f -yy -xx: every socket read
and write with its bytes, every fsync/fdatasync with the path of its
descriptor).  The sender is hlpeer.py, so the plaintext of every record on
the link is known to the test: the k-th transport frame the daemon reads
from hlpeer's connection is the k-th record hlpeer sent, and the k-th frame
the daemon writes is the k-th record hlpeer received (frame lengths are
checked to match, so the correspondence cannot drift silently).  Traffic is
encrypted, but the framing (2-byte length, then the Noise message) is not,
so the frames can be cut out of the daemon's socket reads and writes.

The check, for every record the daemon sends that acknowledges something:
  * an ACK that newly covers item seq S: between the end of the socket read
    that completed S's ITEM frame and the start of the socket write that
    carries the ACK frame, an fsync or fdatasync of the store
    (store.db-wal or store.db) began and ended;
  * a receipt (an ITEM of the daemon's chain) that covers message S: the
    same, after the last frame of S (its ITEM and every CHUNK) was read;
    and when S has attachments, also an fsync of the attachment file under
    in/<id>/ and of its directory in/<id>, in that window;
  * every receipt: the key holder's write of it to its journal
    (keyholder.heads, docs/keyholder.md section 5) ended, and then, before
    the socket write that carries it, either an fdatasync of the journal
    began and ended, or the holder's push of the journal to the disk
    (sync_file_range) began and ended and then an fsync or fdatasync of the
    store began and ended (its flush of the disk's cache covers the
    journal's records): no signature leaves before the holder can never
    sign another item at its position.
"Between" is in the order strace observed the events (line order of its
output, with a syscall split by another thread's counted from its first line
to its last), which is stricter than wall-clock time.
"""
import bisect
import os
import random
import re
import shutil

import pytest

import hlpeer
from hlpeer import Attachment
from station import scaled

T = scaled(60)
READS = {"read", "readv", "recvfrom", "recvmsg"}
WRITES = {"write", "writev", "pwrite64", "sendto", "sendmsg"}
SYNCS = {"fsync", "fdatasync", "sync_file_range"}
FLUSHES = {"fsync", "fdatasync"}
LINE = re.compile(r"^(\d+)\s+(\d\d:\d\d:\d\d\.\d+)\s+(.*)$")
# fd<annotation>: a socket "TCP:[a->b]", or a hex-escaped path, which -yy may
# follow with "<char 1:9>" for a device
CALL = re.compile(r"^(\w+)\((\d+)<((?:TCP|TCPv6|UDP|UDPv6)?:?\[[^\]]*\]|(?:[^<>]|<[^<>]*>)*)>(.*)"
                  r"\)\s+=\s+(-?\d+)(?:\s.*)?$")
HEXSTR = re.compile(r'"((?:\\x[0-9a-f]{2})*)"(\.\.\.)?')


class Event:
    def __init__(self, name, fd, path, data, ret):
        self.name, self.fd, self.path, self.data, self.ret = name, fd, path, data, ret
        self.start = self.end = None

    def __repr__(self):
        return f"<{self.name} {self.path} ret={self.ret} lines {self.start}-{self.end}>"


def unhex(s):
    return bytes.fromhex(s.replace("\\x", ""))


def parse_call(text):
    m = CALL.match(text)
    if not m:
        return None
    name, fd, path, args, ret = m.groups()
    if name not in READS | WRITES | SYNCS:
        return None
    if "\\x" in path and not path.startswith(("TCP", "UDP", "[")):
        path = unhex(path.split("<", 1)[0]).decode("utf-8", "replace")
    data = b""
    ret = int(ret)
    # a file's reads are not looked at (the key holder reads its journal,
    # zeros ahead and all, when it opens it: more than -s shows)
    socket = path.startswith(("TCP", "UDP", "["))
    if name not in SYNCS and ret > 0 and (socket or name in WRITES):
        parts = HEXSTR.findall(args)
        if any(trunc for _, trunc in parts):
            raise AssertionError(f"strace truncated the data of {name}: raise -s")
        data = b"".join(unhex(p) for p, _ in parts)[:ret]
        if len(data) != ret:
            raise AssertionError(f"strace shows {len(data)} of {ret} bytes of {name}")
    return Event(name, int(fd), path, data, ret)


def parse_strace(lines):
    """Events (reads, writes, syncs) with START/END line indices; a call
    split into '<unfinished ...>' and '<... resumed>' is joined."""
    pending, events = {}, []
    for idx, raw in enumerate(lines):
        m = LINE.match(raw.rstrip("\n"))
        if not m:
            continue
        pid, _, rest = m.groups()
        if rest.startswith(("+++", "---")):
            continue
        if rest.endswith("<unfinished ...>"):
            pending[pid] = (idx, rest[:-len("<unfinished ...>")].rstrip())
            continue
        rm = re.match(r"^<\.\.\. (\w+) resumed>(.*)$", rest)
        start = idx
        if rm:
            if pid not in pending:
                continue
            start, head = pending.pop(pid)
            rest = head + rm.group(2)
        ev = parse_call(rest)
        if ev is None:
            continue
        ev.start, ev.end = start, idx
        events.append(ev)
    return events


def cut_frames(events):
    """Frames of one direction of a connection from its events in order.
    Each frame: (ciphertext length, start line of the event holding its
    first byte, end line of the event holding its last byte)."""
    offsets, evs, buf = [], [], bytearray()
    for ev in events:
        offsets.append(len(buf))
        evs.append(ev)
        buf += ev.data
    out, pos = [], 0
    while pos + 2 <= len(buf):
        n = int.from_bytes(buf[pos:pos + 2], "big")
        if pos + 2 + n > len(buf):
            break
        first = evs[bisect.bisect_right(offsets, pos) - 1]
        last = evs[bisect.bisect_right(offsets, pos + 2 + n - 1) - 1]
        out.append((n, first.start, last.end))
        pos += 2 + n
    return out


def check_durable(events, conn_match, sent_log, recv_log, attachments_of):
    """The check of the module docstring.  CONN_MATCH(path) picks the
    connection's socket; SENT_LOG/RECV_LOG are hlpeer's frame logs;
    ATTACHMENTS_OF[seq] is (id hex, attachment sizes) of a message with
    attachments.
    Returns (violations, stats)."""
    sock = [e for e in events if conn_match(e.path)]
    rframes = cut_frames([e for e in sock if e.name in READS])
    wframes = cut_frames([e for e in sock if e.name in WRITES])
    problems = []
    assert rframes and wframes, "no frames of the connection in the trace"
    # frame 0 each way is the handshake; then frame k <-> log[k-1]
    for k, (rtype, body, clen) in enumerate(sent_log[:len(rframes) - 1], 1):
        assert rframes[k][0] == clen, f"read frame {k}: {rframes[k][0]} bytes, hlpeer sent {clen}"
    for k, (rtype, body, clen) in enumerate(recv_log[:len(wframes) - 1], 1):
        assert wframes[k][0] == clen, f"written frame {k}: {wframes[k][0]} bytes, hlpeer got {clen}"
    store_syncs = [e for e in events if e.name in FLUSHES and
                   (e.path.endswith("/store.db-wal") or e.path.endswith("/store.db"))]
    journal = [e for e in events if e.path.endswith("/keyholder.heads")]
    journal_writes = [e for e in journal if e.name in WRITES]
    journal_syncs = [e for e in journal if e.name in FLUSHES]
    journal_pushes = [e for e in journal if e.name == "sync_file_range"]
    all_syncs = [e for e in events if e.name in SYNCS]

    # the frames of each of hlpeer's seqs, with the line where the daemon had read them
    frames_of = {}
    for k, (rtype, body, _) in enumerate(sent_log[:len(rframes) - 1], 1):
        if rtype == hlpeer.T_ITEM:
            item, _ = hlpeer.parse_item_rec(body)
            seq = int.from_bytes(item[len(hlpeer.CTX_MESSAGE) + 1 + 64:][:8], "big")
            frames_of.setdefault(seq, []).append(("item", rframes[k][2]))
        elif rtype == hlpeer.T_CHUNK:
            seq = int.from_bytes(body[:8], "big")
            frames_of.setdefault(seq, []).append(("chunk", rframes[k][2]))

    def synced_between(after, before, syncs, pred=lambda e: True):
        return any(e.start > after and e.end < before and pred(e) for e in syncs)

    stats = {"acks": 0, "acked_items": 0, "receipts": 0, "receipted": 0, "attachments": 0}
    acked = set()
    for k, (rtype, body, _) in enumerate(recv_log[:len(wframes) - 1], 1):
        w = wframes[k][1]
        if rtype == hlpeer.T_ACK:
            base, ranges = hlpeer.parse_ack(body)
            now = set(range(1, base + 1))
            for a, b in ranges:
                now.update(range(a, b + 1))
            new = now - acked
            acked |= now
            if new:
                stats["acks"] += 1
            for s in sorted(new):
                reads = [line for kind, line in frames_of.get(s, []) if kind == "item" and line < w]
                if not reads:
                    problems.append(f"ACK (written frame {k}) covers seq {s} before its ITEM was read")
                    continue
                stats["acked_items"] += 1
                if not synced_between(max(reads), w, store_syncs):
                    problems.append(f"ACK (written frame {k}, line {w}) covers seq {s} (ITEM read at "
                                    f"line {max(reads)}) with no store fsync/fdatasync in between")
        elif rtype == hlpeer.T_ITEM:
            item, _ = hlpeer.parse_item_rec(body)
            it = hlpeer.decode_item(item)
            if it.kind != "receipt":
                continue
            stats["receipts"] += 1
            jw = [e.end for e in journal_writes if item in e.data and e.end < w]
            if not jw:
                problems.append(f"receipt (written frame {k}, line {w}) left before the key "
                                f"holder wrote it to its journal")
            elif not (synced_between(min(jw), w, journal_syncs) or
                      any(synced_between(p.end, w, store_syncs) for p in journal_pushes
                          if p.start > min(jw) and p.end < w)):
                problems.append(f"receipt (written frame {k}, line {w}) left with no fdatasync "
                                f"of the key holder's journal after its write (line {min(jw)}), "
                                f"nor a push of it followed by a store fdatasync")
            else:
                stats["journaled"] = stats.get("journaled", 0) + 1
            for s, _ in it.entries:
                reads = [line for _, line in frames_of.get(s, []) if line < w]
                if not reads:
                    problems.append(f"receipt (written frame {k}) covers seq {s} before it was read")
                    continue
                stats["receipted"] += 1
                last = max(reads)
                if not synced_between(last, w, store_syncs):
                    problems.append(f"receipt (written frame {k}, line {w}) covers seq {s} (last frame "
                                    f"read at line {last}) with no store fsync/fdatasync in between")
                idhex, sizes = attachments_of.get(s, (None, None))
                if idhex:
                    stats["attachments"] += 1
                    if not synced_between(last, w, all_syncs, lambda e: f"/in/{idhex}/" in e.path):
                        problems.append(f"receipt (line {w}) covers seq {s} with no fsync of its "
                                        f"attachment file under in/{idhex}/ after its last chunk "
                                        f"(attachment sizes {sizes})")
                    if not synced_between(last, w, all_syncs,
                                          lambda e: e.path.rstrip("/").endswith(f"/in/{idhex}")):
                        problems.append(f"receipt (line {w}) covers seq {s} with no fsync of the "
                                        f"directory in/{idhex} (attachment sizes {sizes})")
    return problems, stats


# ---------------------------------------------------------------- the checker

def _frame(n, fill=b"\0"):
    return n.to_bytes(2, "big") + fill * n


def test_checker_finds_an_ack_without_fsync():
    """The checker itself: a trace where the ACK goes out before any fsync
    must be reported, and the same trace with an fdatasync of the WAL
    between the read and the write must pass."""
    me, them = hlpeer.Identity(), hlpeer.Identity()
    p = hlpeer.Peer(me, them.sign_pk)
    oi = p.compose("s", "b")
    item_rec = hlpeer.rec_item(oi.encoded, oi.rest)
    sent_log = [(hlpeer.T_HELLO, b"", 24), (hlpeer.T_ITEM, item_rec, len(item_rec) + 2 + 16)]
    ack = hlpeer.rec_ack(1)
    recv_log = [(hlpeer.T_HELLO, b"", 24), (hlpeer.T_ACK, ack, len(ack) + 2 + 16)]
    tcp = "TCP:[127.0.0.1:7100->127.0.0.1:40000]"
    wal = "/st/store.db-wal"

    def trace(with_sync):
        lines = [
            f'9 10:00:00.000001 read(5<{tcp}>, "{_hex(_frame(96))}", 65536) = 98',
            f'9 10:00:00.000002 write(5<{tcp}>, "{_hex(_frame(48))}", 50) = 50',
            f'9 10:00:00.000003 read(5<{tcp}>, "{_hex(_frame(24) + _frame(sent_log[1][2]))}", 65536) = '
            f'{26 + 2 + sent_log[1][2]}',
            f'9 10:00:00.000004 write(5<{tcp}>, "{_hex(_frame(24))}", 26) = 26',
        ]
        if with_sync:
            lines.append(f'9 10:00:00.000005 fdatasync(7<{_hex(wal.encode())}>) = 0')
        lines.append(f'9 10:00:00.000006 write(5<{tcp}>, "{_hex(_frame(recv_log[1][2]))}", '
                     f'{2 + recv_log[1][2]}) = {2 + recv_log[1][2]}')
        return parse_strace(lines)

    def match(path):
        return path == tcp
    bad, stats = check_durable(trace(False), match, sent_log, recv_log, {})
    assert stats["acked_items"] == 1 and len(bad) == 1 and "no store fsync" in bad[0], bad
    good, stats = check_durable(trace(True), match, sent_log, recv_log, {})
    assert good == [] and stats["acks"] == 1


def _hex(b):
    return "".join(f"\\x{c:02x}" for c in b)


def test_parser_joins_unfinished_calls():
    lines = ['7 10:00:00.1 read(3<TCP:[1.2.3.4:1->5.6.7.8:2]>,  <unfinished ...>',
             '8 10:00:00.2 fsync(4<\\x2f\\x61>) = 0',
             '7 10:00:00.3 <... read resumed>"\\x00\\x01\\x41", 65536) = 3']
    evs = parse_strace(lines)
    assert [(e.name, e.start, e.end) for e in evs] == [("fsync", 1, 1), ("read", 0, 2)]
    assert evs[1].data == b"\x00\x01\x41" and evs[0].path == "/a"
    dev = parse_strace(['7 10:00:00.4 write(3<\\x2f\\x64<char 1:9>>, "\\x41", 1) = 1',
                        '7 10:00:00.5 read(3<\\x2f\\x64<char 1:9>>, "\\x41", 1) = 1'])
    assert dev[0].path == "/d" and dev[0].data == b"A"
    assert dev[1].path == "/d" and dev[1].data == b""  # a file's reads are not looked at


# ------------------------------------------------------------------ the trace

@pytest.mark.slow
@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed")
def test_every_ack_and_receipt_follows_an_fsync_of_the_store(net, tmp_path):
    b = net.station("pyongyang")
    peer = net.hlpeer_pinned(b)
    trace = tmp_path / "receiver.strace"
    # -s: the whole of every read (the daemon reads up to 4 x 65,537 bytes)
    b.start(wrapper=["strace", "-f", "-tt", "-yy", "-xx", "-s", "270000",
                     "-e", "trace=" + ",".join(sorted(READS | WRITES | SYNCS)),
                     "-o", str(trace)],
            env=dict(os.environ, ASAN_OPTIONS="detect_leaks=0"))
    net.connect_hlpeer(b, peer, wait=True)
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    with_atts = {}
    for burst in range(30):
        items = []
        for i in range(rng.randint(1, 12)):
            atts = []
            if rng.random() < 0.15:
                # some empty: an empty attachment file must be durable too
                size = rng.choice([0, rng.randint(1, 200_000), rng.randint(1, 200_000)])
                atts = [Attachment(f"f{burst}-{i}.bin", os.urandom(size))]
            oi = peer.compose(f"burst {burst} #{i}", "x" * rng.randint(0, 3000), attachments=atts,
                              precedence=rng.randrange(4))
            if atts:
                with_atts[oi.seq] = (oi.id.hex(), [len(a.data) for a in atts])
            items.append(oi)
        peer.send_burst(items)
        peer.wait(lambda: all(o.seq in peer.acked and o.seq in peer.delivered for o in items),
                  T, f"ACK and receipts of burst {burst}")
    assert peer.violations == []
    port = peer.session.sock.getsockname()[1]
    sent_log, recv_log = list(peer.session.sent_log), list(peer.session.recv_log)
    peer.close()
    b.stop()
    with open(trace, errors="replace") as f:
        events = parse_strace(f)
    problems, stats = check_durable(events, lambda p: p.startswith("TCP") and
                                    p.endswith(f"->127.0.0.1:{port}]"),
                                    sent_log, recv_log, with_atts)
    n = max(peer.out)
    assert stats["acked_items"] >= n - 1, f"only {stats['acked_items']} of {n} ACKed items checked"
    assert stats["receipted"] >= n - 1, f"only {stats['receipted']} of {n} receipted items checked"
    assert stats.get("journaled", 0) >= 1, stats
    assert problems == [], f"{len(problems)} acknowledgements not preceded by an fsync:\n" + \
        "\n".join(problems[:20]) + f"\nstats {stats}"
