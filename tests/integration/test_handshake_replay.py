"""test_handshake_replay.py — the link survives a replaying eavesdropper
(docs/protocol.md sections 2 and 5).

Anyone who once captured a handshake message 1 of a pinned peer can send it
again, from connections of its own, as often as it likes.  A replay
authenticates nothing, so it must never displace or delay the real peer's
handshake: the real peer reconnects every time while its captured message 1
is replayed about 100 times a second, and so does the link when both
directions are captured and replayed.

The stations dial each other through recording proxies (station.Proxy)
that keep the first frame of every connection (a message 1), add a 100 ms
round trip (a long line: the real handshake waits that long for its HELLO),
and can cut every connection they carry, as a lost line would.  The replays come from
the same source address as the real peer (127.0.0.1): an eavesdropper
behind the peer's own address must not lock it out either.
"""

import time

import hlpeer
from station import Replayer, scaled, wait_for

OPTIONS = {"HandshakeTimeout": "2s", "Keepalive": "1s", "KeepaliveTimeout": "10s"}
RECONNECTS = 8
RATE = 100          # replays a second, per direction
DELAY = 0.05        # one-way delay of the line through the proxies: a 100 ms round trip


def sessions(st, peer):
    p = st.peer_status(peer)
    return p["sessions"] if p.get("state") == "connected" else None


def reconnect_times(a, b, proxies, rounds, bound):
    """Cuts the line ROUNDS times (every proxy in PROXIES) and returns, for
    each round, the seconds until both stations counted a new session (None
    when that took longer than BOUND)."""
    took = []
    for _ in range(rounds):
        before_a = a.peer_status(b.name)["sessions"]
        before_b = b.peer_status(a.name)["sessions"]
        start = time.monotonic()
        for p in proxies:
            p.drop_all()

        def back():
            sa, sb = sessions(a, b.name), sessions(b, a.name)
            return sa is not None and sb is not None and sa > before_a and sb > before_b
        try:
            wait_for(back, bound, "the link back after a cut", interval=0.05)
            took.append(round(time.monotonic() - start, 2))
        except AssertionError:
            took.append(None)
    return took


def assert_every_time(took, what):
    missed = [i for i, t in enumerate(took) if t is None]
    assert not missed, f"{what}: the link did not come back in rounds {missed} " \
                       f"(seconds per round: {took})"


def test_real_peer_reconnects_every_time_while_its_message1_is_replayed(stations):
    """B dials A (A does not dial B) through a proxy; an eavesdropper replays
    B's first message 1 to A about 100 times a second and holds each
    connection open; B's line is cut 8 times and B must get back every time."""
    a = stations("washington", **OPTIONS)
    b = stations("pyongyang", **OPTIONS)
    a.pin(b, dial=False)
    a.start()
    proxy = stations.proxy(a.port, delay=DELAY)
    try:
        b.pin(a, address=proxy.address)
        b.start()
        a.wait_connected("pyongyang")
        b.wait_connected("washington")
        wait_for(lambda: proxy.first_frames, scaled(5), "B's message 1 at the proxy")
        captured = proxy.first_frames[0]
        assert len(captured) >= hlpeer.MSG1_LEN

        with Replayer(a.port, [captured], rate=RATE) as rep:
            time.sleep(1.5)     # the replays are in flight before the first cut
            took = reconnect_times(a, b, [proxy], RECONNECTS, scaled(10))
        assert rep.sent >= RATE, f"only {rep.sent} replays sent"
        assert_every_time(took, f"{rep.sent} replays ({rep.answered} answered)")
        # The replays were refused, and never by answering them.
        assert rep.answered == 0, f"A answered {rep.answered} of {rep.sent} replays"
    finally:
        b.stop()
        proxy.close()


def test_link_survives_replays_in_both_directions(stations):
    """Both stations dial, each through its own proxy; the first message 1
    of each direction is replayed to its station about 100 times a second;
    the line (both proxies) is cut 8 times and the link must come back every
    time."""
    a = stations("washington", **OPTIONS)
    b = stations("pyongyang", **OPTIONS)
    to_a = stations.proxy(a.port, delay=DELAY)
    to_b = stations.proxy(b.port, delay=DELAY)
    try:
        a.pin(b, address=to_b.address)
        b.pin(a, address=to_a.address)
        a.start()
        b.start()
        a.wait_connected("pyongyang")
        b.wait_connected("washington")
        # Only one station dials while the other's dial is still to come;
        # after a cut both do.
        def both_captured():
            if to_a.first_frames and to_b.first_frames:
                return True
            to_a.drop_all()
            to_b.drop_all()
            time.sleep(1)
            return False
        wait_for(both_captured, scaled(20), "a message 1 each way at the proxies")
        a.wait_connected("pyongyang")
        b.wait_connected("washington")
        from_b, from_a = to_a.first_frames[0], to_b.first_frames[0]

        with Replayer(a.port, [from_b], rate=RATE) as rep_a, \
                Replayer(b.port, [from_a], rate=RATE) as rep_b:
            time.sleep(1.5)
            took = reconnect_times(a, b, [to_a, to_b], RECONNECTS, scaled(10))
        assert_every_time(took, f"replays to A {rep_a.sent} ({rep_a.answered} answered), "
                                f"to B {rep_b.sent} ({rep_b.answered} answered)")
        assert rep_a.answered == 0 and rep_b.answered == 0, (rep_a.answered, rep_b.answered)
    finally:
        a.stop()
        b.stop()
        to_a.close()
        to_b.close()
