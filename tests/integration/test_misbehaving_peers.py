"""test_misbehaving_peers.py — bad input never hurts: the station
refuses it and goes on serving its other peers.

Station A (washington) and its real pinned peer B (pyongyang) run and are
linked.  Each test attacks A from the network: an unpinned key, garbage,
truncated, oversized and empty frames, a flood of idle connections, a
replayed handshake message 1, a stalled handshake, and an authenticated peer
that breaks the record rules (the replays of a real peer's message 1 that
matter most are in test_handshake_replay.py, floods in
test_handshake_flood.py).  After each, A must still serve B: the A–B
session is the same one (connected on both sides, with the same `since`,
`sessions` count and `session_since`) and a new
connection from a legitimate pinned initiator (a dissononce "probe" whose key
A pinned) still completes its handshake and answers a PING.  Floods must not
flood A's log (rate limiting, docs/protocol.md section 5).

A's HandshakeTimeout is 2 s so the timeout tests are quick; both stations
ping every second so a wedged event loop would show as a dead link.
"""

import os
import socket
import struct
import time

import pytest

import hlpeer
from station import PROBED_OPTIONS, SINCE_RESOLUTION, scaled, session_of, wait_for

HANDSHAKE_TIMEOUT = 2.0  # seconds, written into both station.conf files
OPTIONS = PROBED_OPTIONS
MAX_UNAUTH = 64          # docs/protocol.md section 5


def send_and_expect_silent_close(port, data, timeout=None, shut_write=False):
    """Connects to PORT, sends DATA, and returns the seconds until A closed
    the connection; fails if A sent any byte."""
    sock = hlpeer.connect(port)
    try:
        if data:
            sock.sendall(data)
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        got, took = hlpeer.read_until_close(sock, timeout or HANDSHAKE_TIMEOUT + scaled(5))
        assert got == b"", f"A answered {len(got)} bytes: {got[:32].hex()}"
        return took
    finally:
        sock.close()


def key_ids(key):
    """Ways a log line may identify a 32-byte key: a prefix of its base64 or
    hex, or its full encodings."""
    b = hlpeer.base64.b64encode(key).decode("ascii")
    x = key.hex()
    return [b, b.rstrip("="), x, b[:10], x[:12]]


def lines_naming(lines, key):
    ids = key_ids(key)
    return [l for l in lines if any(i in l for i in ids)]


# ------------------------------------------------------------ unpinned keys

def test_unpinned_initiator_gets_no_reply_and_is_logged_once(probed):
    mallory = hlpeer.Identity("mallory")
    before = probed.log_count()
    m1 = hlpeer.Initiator(mallory, probed.a.noise_key).message1()
    send_and_expect_silent_close(probed.a.port, struct.pack(">H", len(m1)) + m1)
    # The same key again: refused again, but not logged again (once an hour).
    m1 = hlpeer.Initiator(mallory, probed.a.noise_key).message1()
    send_and_expect_silent_close(probed.a.port, struct.pack(">H", len(m1)) + m1)

    def logged():
        return lines_naming(probed.a.log_lines()[before:], mallory.noise_key)
    wait_for(logged, scaled(5), "a log line naming the unpinned key")
    time.sleep(scaled(0.5))
    assert len(logged()) == 1, logged()
    probed.assert_serves_b()


def test_unpinned_key_flood_is_logged_rate_limited(probed):
    before = probed.log_count()
    keys = []
    for i in range(200):
        mallory = hlpeer.Identity(f"mallory{i}")
        keys.append(mallory.noise_key)
        m1 = hlpeer.Initiator(mallory, probed.a.noise_key).message1()
        s = hlpeer.connect(probed.a.port)
        s.sendall(struct.pack(">H", len(m1)) + m1)
        s.close()
    time.sleep(scaled(1))
    grown = probed.a.log_lines()[before:]
    assert len(grown) < 100, f"{len(grown)} log lines for 200 unknown keys:\n" + \
        "\n".join(grown[:20])
    assert any(lines_naming(grown, k) for k in keys), "no unknown key was logged at all"
    probed.assert_serves_b()


# ---------------------------------------------------------- malformed bytes

@pytest.mark.parametrize("garbage", [
    pytest.param(lambda: os.urandom(4096), id="random-4k"),
    pytest.param(lambda: struct.pack(">H", 96) + os.urandom(96), id="random-message1"),
    pytest.param(lambda: b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="http"),
    pytest.param(lambda: bytes.fromhex("160301") + os.urandom(200), id="tls-like"),
])
def test_garbage_bytes(probed, garbage):
    send_and_expect_silent_close(probed.a.port, garbage())
    probed.assert_serves_b()


def test_truncated_frame_then_close(probed):
    sock = hlpeer.connect(probed.a.port)
    sock.sendall(struct.pack(">H", 96) + os.urandom(40))
    sock.close()
    # And one that half-closes and waits to see A close too.
    send_and_expect_silent_close(probed.a.port, struct.pack(">H", 96) + os.urandom(40),
                                 shut_write=True)
    probed.assert_serves_b()


def test_max_length_frame_of_junk(probed):
    send_and_expect_silent_close(probed.a.port, b"\xff\xff" + os.urandom(65535))
    probed.assert_serves_b()


def test_zero_length_frame_closes_at_once(probed):
    took = send_and_expect_silent_close(probed.a.port, b"\x00\x00")
    # Malformed framing closes the connection now, not at the handshake timeout.
    assert took < HANDSHAKE_TIMEOUT * 0.75, f"closed after {took:.2f}s"
    probed.assert_serves_b()


def test_garbage_flood_log_is_rate_limited(probed):
    before = probed.log_count()
    for i in range(500):
        s = hlpeer.connect(probed.a.port)
        if i % 2:
            s.sendall(b"\x00\x00")
        else:
            s.sendall(struct.pack(">H", 96) + os.urandom(96))
        s.close()
    time.sleep(scaled(1))
    grown = probed.a.log_lines()[before:]
    assert len(grown) < 100, f"{len(grown)} log lines for 500 bad connections:\n" + \
        "\n".join(grown[:20])
    probed.assert_serves_b()


# ------------------------------------------------------- resource exhaustion

def test_idle_connection_flood(probed):
    idle = []
    try:
        for _ in range(100):
            idle.append(hlpeer.connect(probed.a.port))
        # While they are all held open, a pinned initiator still gets through
        # (the oldest unauthenticated connections make room).
        sess = hlpeer.dial(probed.a.port, probed.probe, probed.a.noise_key)
        sess.ping()
        sess.close()

        # A holds at most 64 unauthenticated connections: of our 100 (plus
        # the probe), at least 37 are closed well before the handshake timeout.
        need = 100 + 1 - MAX_UNAUTH
        closed = set()

        def enough_closed():
            for i, s in enumerate(idle):
                if i not in closed and hlpeer.is_closed_now(s):
                    closed.add(i)
            return len(closed) >= need
        wait_for(enough_closed, HANDSHAKE_TIMEOUT * 0.75,
                   f"{need} idle connections closed to respect the cap")
        # The oldest goes first.
        assert 0 in closed, sorted(closed)[:10]

        # And every one is closed by the handshake timeout.
        def all_closed():
            enough_closed()
            return len(closed) == len(idle)
        wait_for(all_closed, HANDSHAKE_TIMEOUT + scaled(5),
                   "every idle connection closed by the handshake timeout")
    finally:
        for s in idle:
            s.close()
    probed.assert_serves_b()


def test_stalled_handshake_times_out(probed):
    m1 = hlpeer.Initiator(probed.probe, probed.a.noise_key).message1()
    frame = struct.pack(">H", len(m1)) + m1
    took = send_and_expect_silent_close(probed.a.port, frame[:2 + len(m1) // 2],
                                        timeout=HANDSHAKE_TIMEOUT + scaled(5))
    assert took >= HANDSHAKE_TIMEOUT * 0.5, f"closed after {took:.2f}s, before the timeout"
    probed.assert_serves_b()


def test_handshake_without_key_confirmation_times_out(probed):
    """A pinned initiator that completes the handshake but never sends its
    HELLO is closed at the handshake timeout and never counted connected."""
    sess = hlpeer.dial(probed.a.port, probed.probe, probed.a.noise_key, hello=False)
    try:
        assert probed.a.peer_status("probe")["state"] != "connected"
        got, took = hlpeer.read_until_close(sess.sock, HANDSHAKE_TIMEOUT + scaled(5))
        assert probed.a.peer_status("probe")["state"] != "connected"
    finally:
        sess.sock.close()
    probed.assert_serves_b()


# ------------------------------------------------------------------ replays

def test_replayed_message1_of_pinned_probe(probed):
    # An earlier, complete connection whose message 1 an attacker recorded.
    sock = hlpeer.connect(probed.a.port)
    ini = hlpeer.Initiator(probed.probe, probed.a.noise_key)
    captured = ini.message1()
    hlpeer.send_frame(sock, captured)
    send_cs, recv_cs, _ = ini.read_message2(hlpeer.recv_frame(sock))
    old = hlpeer.Session(sock, send_cs, recv_cs)
    old.send_record(hlpeer.T_HELLO, hlpeer.hello_body())
    old.recv_type(hlpeer.T_HELLO)
    old.close()

    # The probe's live session.
    live = hlpeer.dial(probed.a.port, probed.probe, probed.a.noise_key)
    try:
        live_session = session_of(probed.a.wait_connected("probe"))
        time.sleep(SINCE_RESOLUTION)
        # The replay: A may answer with a message 2 (the key is pinned), but
        # nobody can confirm that session.
        r = hlpeer.connect(probed.a.port)
        try:
            hlpeer.send_frame(r, captured)
            got, took = hlpeer.read_until_close(r, HANDSHAKE_TIMEOUT + scaled(5))
            assert len(got) in (0, 2 + hlpeer.MSG2_LEN), len(got)
        finally:
            r.close()
        live.ping()
        p = probed.a.peer_status("probe")
        assert session_of(p) == live_session, p
    finally:
        live.close()
    probed.assert_serves_b()


def test_replayed_message1_of_real_peer_does_not_displace_link(stations):
    """B dials A through a recording proxy (A does not dial B), so the test
    holds B's real message 1 and replays it straight to A."""
    a = stations("washington", **OPTIONS)
    b = stations("pyongyang", **OPTIONS)
    probe = hlpeer.Identity("probe")
    a.pin(b, dial=False)
    a.pin(probe)
    a.start()
    proxy = stations.proxy(a.port)
    try:
        b.pin(a, address=proxy.address)
        b.start()
        a_session = session_of(a.wait_connected("pyongyang"))
        b_session = session_of(b.wait_connected("washington"))
        time.sleep(SINCE_RESOLUTION)
        assert a.peer_status("pyongyang")["dialed_by"] == "them"
        wait_for(lambda: proxy.first_frames, scaled(5), "B's message 1 at the proxy")
        captured = proxy.first_frames[0]
        assert len(captured) >= hlpeer.MSG1_LEN

        for attempt in range(2):
            r = hlpeer.connect(a.port)
            try:
                hlpeer.send_frame(r, captured)
                if attempt == 1:
                    # Junk as the "transport" message, in case A answered.
                    hlpeer.send_frame(r, os.urandom(64))
                # A replay gets no message 2 at all (docs/protocol.md section
                # 2.1), and is closed long before the handshake timeout.
                got, took = hlpeer.read_until_close(r, HANDSHAKE_TIMEOUT + scaled(5))
                assert got == b"", f"A answered a replay with {len(got)} bytes"
                assert took < HANDSHAKE_TIMEOUT / 2, f"closed after {took:.2f}s"
            finally:
                r.close()
            pa = a.peer_status("pyongyang")
            pb = b.peer_status("washington")
            assert session_of(pa) == a_session, pa
            assert session_of(pb) == b_session, pb
            assert len(proxy.first_frames) == 1, "B had to reconnect"

        sess = hlpeer.dial(a.port, probe, a.noise_key)
        sess.ping()
        sess.close()
    finally:
        b.stop()
        proxy.close()


# ---------------------------------------------- authenticated, but wrong

def expect_session_closed(sess, confirmed=True):
    """Reads until A closes the session.  On a confirmed session a CLOSE that A
    sends must give reason 4 (protocol error); on one never confirmed A sends
    nothing at all."""
    deadline = time.monotonic() + scaled(5)
    while True:
        try:
            version, rtype, body = sess.recv_raw(timeout=deadline - time.monotonic())
        except TimeoutError:   # a subclass of OSError: first
            raise AssertionError("A kept a session open after a protocol violation")
        except (hlpeer.Closed, OSError):
            return
        assert confirmed, f"A sent record type {rtype:#x} on a session it never confirmed"
        assert version == 1
        # Keepalive, the close itself, or the messages protocol (0x10-0x3f,
        # docs/messages.md), which a station speaks on every session.
        assert rtype in (hlpeer.T_PING, hlpeer.T_PONG, hlpeer.T_CLOSE) or 0x10 <= rtype <= 0x3f, hex(rtype)
        if rtype == hlpeer.T_CLOSE:
            assert body[:1] == bytes([hlpeer.CLOSE_PROTOCOL]), body


# What the probe sends instead of (first-*) or after (the rest) its HELLO.
# Before confirmation A must close without a word; after, with at most a
# CLOSE (reason 4).
VIOLATIONS = {
    "first-short-hello": lambda s: s.send_record(hlpeer.T_HELLO, b"\x01\x01\x00"),
    "first-hello-min-above-max": lambda s: s.send_record(hlpeer.T_HELLO, hlpeer.hello_body(min_version=2, max_version=1)),
    "first-hello-without-v1": lambda s: s.send_record(hlpeer.T_HELLO, hlpeer.hello_body(min_version=2, max_version=3)),
    "first-not-hello": lambda s: s.send_record(hlpeer.T_PING, os.urandom(8)),
    "version-2": lambda s: s.send_record(hlpeer.T_PING, os.urandom(8), version=2),
    "type-0x80": lambda s: s.send_record(0x80, b""),
    "type-0xff": lambda s: s.send_record(0xff, os.urandom(32)),
    "record-1-byte": lambda s: s.send_raw(b"\x01"),
    "record-empty": lambda s: s.send_raw(b""),
    "ping-7-bytes": lambda s: s.send_record(hlpeer.T_PING, os.urandom(7)),
    "pong-9-bytes": lambda s: s.send_record(hlpeer.T_PONG, os.urandom(9)),
    "close-text-201-bytes": lambda s: s.send_record(hlpeer.T_CLOSE, b"\x01" + b"x" * 201),
    "bad-tag": lambda s: hlpeer.send_frame(s.sock, os.urandom(40)),
    "short-ciphertext": lambda s: hlpeer.send_frame(s.sock, os.urandom(15)),
    "empty-frame": lambda s: s.sock.sendall(b"\x00\x00"),
}


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
def test_authenticated_protocol_violation_closes_session(probed, violation):
    first = violation.startswith("first-")
    sess = hlpeer.dial(probed.a.port, probed.probe, probed.a.noise_key, hello=not first)
    try:
        if not first:
            probed.a.wait_connected("probe")
        VIOLATIONS[violation](sess)
        expect_session_closed(sess, confirmed=not first)
        if first:
            assert probed.a.peer_status("probe")["state"] != "connected"
        else:
            probed.a.wait_not_connected("probe")
    finally:
        sess.sock.close()
    probed.assert_serves_b()


def pending_handshake(probed, payload=None):
    """A connection whose message 1 (from the probe's key: PAYLOAD None for
    a fresh timestamp, b"" for none) A accepted: message 2 read, no HELLO."""
    s = hlpeer.connect(probed.a.port)
    hlpeer.send_frame(s, hlpeer.Initiator(probed.probe, probed.a.noise_key).message1(payload))
    assert len(hlpeer.recv_frame(s)) == hlpeer.MSG2_LEN
    return s


def test_pinned_key_handshake_flood_is_capped(probed):
    """Handshakes with empty payloads that name a pinned key but never
    confirm are bounded per peer (docs/protocol.md section 2.1): with 9
    pending, the oldest is closed at once, long before the handshake
    timeout."""
    pending = []
    try:
        for _ in range(9):
            pending.append(pending_handshake(probed, payload=b""))
        got, took = hlpeer.read_until_close(pending[0], HANDSHAKE_TIMEOUT * 0.75)
        assert got == b""
        # The 8 newer ones are within the cap: open until their timeout.
        still_open = [not hlpeer.is_closed_now(s) for s in pending[1:]]
        assert all(still_open), still_open
        assert probed.a.peer_status("probe")["state"] != "connected"
    finally:
        for s in pending:
            s.close()
    probed.assert_serves_b()


def test_newer_timestamp_supersedes_pending_handshakes(probed):
    """A message 1 with a newer timestamp is the peer's latest attempt: it
    closes the key's handshakes still waiting for their HELLO, timestamped
    or not; one with an empty payload never closes a timestamped one."""
    plain = [pending_handshake(probed, payload=b"") for _ in range(2)]
    first = pending_handshake(probed)
    second = None
    try:
        for s in plain:
            got, _ = hlpeer.read_until_close(s, HANDSHAKE_TIMEOUT * 0.75)
            assert got == b""
        # Nine more with empty payloads: the cap closes their own oldest,
        # never the timestamped handshake.
        plain = [pending_handshake(probed, payload=b"") for _ in range(9)]
        got, _ = hlpeer.read_until_close(plain[0], HANDSHAKE_TIMEOUT * 0.75)
        assert not hlpeer.is_closed_now(first), "an empty payload closed a timestamped handshake"
        second = pending_handshake(probed)
        got, took = hlpeer.read_until_close(first, HANDSHAKE_TIMEOUT * 0.75)
        assert got == b""
        for s in plain[1:]:
            hlpeer.read_until_close(s, HANDSHAKE_TIMEOUT * 0.75)
        assert not hlpeer.is_closed_now(second)
    finally:
        for s in plain + [first] + ([second] if second else []):
            s.close()
    probed.assert_serves_b()


def test_unknown_optional_record_type_is_ignored(probed):
    sess = hlpeer.dial(probed.a.port, probed.probe, probed.a.noise_key)
    try:
        live_session = session_of(probed.a.wait_connected("probe"))
        for rtype in (0x00, 0x05, 0x0f, 0x40, 0x7f):
            sess.send_record(rtype, os.urandom(16))
        sess.send_record(hlpeer.T_PONG, os.urandom(8))   # answers no PING: ignored
        sess.ping()
        assert session_of(probed.a.peer_status("probe")) == live_session
    finally:
        sess.close()
    probed.assert_serves_b()


def test_close_from_peer_ends_session(probed):
    sess = hlpeer.dial(probed.a.port, probed.probe, probed.a.noise_key)
    probed.a.wait_connected("probe")
    sess.send_record(hlpeer.T_CLOSE, bytes([hlpeer.CLOSE_SHUTDOWN]) + b"bye \x1b[31mred\x1b[0m")
    try:
        hlpeer.read_until_close(sess.sock, scaled(5))
    finally:
        sess.sock.close()
    probed.a.wait_not_connected("probe")
    # The peer's text is logged sanitised: no escape character reaches the log.
    assert "\x1b" not in probed.a.log_text()
    probed.assert_serves_b()
