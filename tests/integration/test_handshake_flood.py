"""test_handshake_flood.py — a flood of handshake attempts from unpinned
sources does not take the station from its pinned peers (docs/protocol.md
section 5).

A flooding process (station.Flooder: bench/flood.c) keeps many connections
to station A going from many source ports: each sends a message 1 and
closes once A has: a message 1 of a pinned peer seen by an eavesdropper,
valid messages 1 of unpinned keys (each made once and sent again and
again, so the flood costs its sender no cryptography) and random bytes of
a message 1's length.
They come from other loopback addresses than the pinned peer B
(127.0.0.1): from one address, and from 64.  Meanwhile B restarts, and must
have its link back each time within a generous bound; A's sessions with
pinned peers keep answering.
"""

import os
import struct
import time

import pytest

import hlpeer
from station import Flooder, scaled, wait_for

OPTIONS = {"HandshakeTimeout": "2s", "Keepalive": "1s", "KeepaliveTimeout": "10s"}
RESTARTS = 3
BOUND = 15          # seconds for B's link to come back, scaled


def flood_frames(a, captured):
    """What the flood sends (framing included): CAPTURED, a message 1 of a
    pinned peer that an eavesdropper saw; valid messages 1 of 16 unpinned
    keys; random bytes the size of a message 1."""
    frames = [struct.pack(">H", len(captured)) + captured] * 16
    for i in range(16):
        m1 = hlpeer.Initiator(hlpeer.Identity(f"mallory{i}"), a.noise_key).message1()
        frames.append(struct.pack(">H", len(m1)) + m1)
    for _ in range(16):
        frames.append(struct.pack(">H", hlpeer.MSG1_STAMPED_LEN) + os.urandom(hlpeer.MSG1_STAMPED_LEN))
    return frames


@pytest.mark.parametrize("sources", [
    pytest.param(["127.0.0.2"], id="one-source"),
    pytest.param([f"127.0.0.{i}" for i in range(10, 74)], id="64-sources"),
])
def test_pinned_peer_gets_through_a_handshake_flood(stations, tmp_path, sources):
    a = stations("washington", **OPTIONS)
    b = stations("pyongyang", **OPTIONS)
    probe = hlpeer.Identity("probe")
    a.pin(b, dial=False)      # only B dials: its handshake is what is tested
    a.pin(probe)
    b.pin(a)
    a.start()
    b.start()
    a.wait_connected("pyongyang")
    # The probe's first session, seen by an eavesdropper; then its live one.
    first = hlpeer.dial(a.port, probe, a.noise_key)
    captured = first.message1
    first.close()
    live = hlpeer.dial(a.port, probe, a.noise_key)
    try:
        frames = flood_frames(a, captured)
        took = []
        with Flooder(a.port, sources, frames, concurrency=256, work_dir=tmp_path) as flood:
            time.sleep(2)          # the flood is at full strength
            for _ in range(RESTARTS):
                before = a.peer_status("pyongyang")["sessions"]
                b.stop()
                start = time.monotonic()
                b.start(wait=False)

                def back():
                    p = a.peer_status("pyongyang")
                    return p.get("state") == "connected" and p["sessions"] > before
                try:
                    wait_for(back, scaled(BOUND), "B's link back during the flood")
                    took.append(round(time.monotonic() - start, 2))
                except AssertionError:
                    took.append(None)
                # A session that was up all along still answers at once.
                live.ping(timeout=scaled(5))
        sent = flood.result[0]
        assert sent > 1000, f"the flood made only {sent} connections"
        assert None not in took, f"B's link did not come back within {BOUND} s in some " \
                                 f"rounds during a flood of {sent} connections: {took}"
    finally:
        live.sock.close()
