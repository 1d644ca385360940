"""Two stations linking up: status on both sides, reconnection after a
crash, one session when both dial at once, re-handshake while the link stays
up (docs/protocol.md sections 2 and 4)."""

import time

import pytest

from station import Gate, scaled, wait_for


def test_two_stations_link_up(daemons):
    a, b, _ = daemons.pair()
    pa, pb = a.peer_status("bravo"), b.peer_status("alpha")
    for p in (pa, pb):
        assert p["state"] == "connected"
        assert p["since"] and p["since"].endswith("Z")
        assert p["sessions"] >= 1
    # One session, seen from both ends: one dialed it, the other took it.
    assert {pa["dialed_by"], pb["dialed_by"]} == {"us", "them"}
    # The first PING's round trip is known at once.
    wait_for(lambda: a.peer_status("bravo")["rtt_ms"] is not None, scaled(5), "an RTT")
    st = a.status()
    assert st["daemon"] is True
    assert st["station"]["name"] == "alpha"
    assert st["station"]["listen"] == a.listen
    assert st["station"]["pid"] == a.proc.pid
    # The human form: one line per peer with its state.
    out = a.cmd("status").stdout
    assert "daemon running" in out
    line = [l for l in out.splitlines() if l.startswith("bravo")]
    assert len(line) == 1 and "connected" in line[0], out


def test_kill9_and_restart_reconnects(daemons):
    a, b, _ = daemons.pair()
    first = b.peer_status("alpha")["sessions"]
    a.kill9()
    b.wait_not_connected("alpha")
    assert b.peer_status("alpha")["last_error"], "B should say why the link went down"
    a.start()
    a.wait_state("bravo", "connected")
    p = b.wait_state("alpha", "connected")
    assert p["sessions"] > first


def test_simultaneous_dial_keeps_one_session(daemons):
    # Neither station dials at first; then each is given an Address that
    # leads through a gate which holds both dials until both have arrived,
    # so the two handshakes truly cross.
    a, b, _ = daemons.pair(a_dials=False, b_dials=False, start=False)
    a.start()
    b.start()
    assert a.peer_status("bravo")["state"] == "idle"
    gate = Gate(2)
    to_b = daemons.proxy(b.port, gate=gate)
    to_a = daemons.proxy(a.port, gate=gate)
    try:
        a.cmd("peer", "remove", "bravo")
        b.cmd("peer", "remove", "alpha")
        a.pin(b, dial=False, address=to_b.address)
        b.pin(a, dial=False, address=to_a.address)
        assert gate.released.wait(scaled(10)), "both dials should reach the gate"
        pa = a.wait_state("bravo", "connected")
        pb = b.wait_state("alpha", "connected")
        # Both kept the same session: the one the lower NoiseKey dialed.
        lower_is_a = a.noise_key < b.noise_key
        want_a = "us" if lower_is_a else "them"
        want_b = "them" if lower_is_a else "us"
        settled = wait_for(lambda: (a.peer_status("bravo")["dialed_by"] == want_a and
                                    b.peer_status("alpha")["dialed_by"] == want_b),
                           scaled(5), "both to keep the lower key's session")
        assert settled
        # The loser was dropped with CLOSE "replaced"; nothing churns after.
        time.sleep(scaled(2))
        pa, pb = a.peer_status("bravo"), b.peer_status("alpha")
        assert pa["state"] == pb["state"] == "connected"
        s_a, s_b = pa["sessions"], pb["sessions"]
        time.sleep(scaled(2))
        assert a.peer_status("bravo")["sessions"] == s_a
        assert b.peer_status("alpha")["sessions"] == s_b
        assert s_a <= 2 and s_b <= 2
        # And the two handshakes did meet: a duplicate was resolved.
        logs = a.log_text() + b.log_text()
        assert ("replaces the previous one" in logs or "keeping the session" in logs
                or "replaced by a newer session" in logs), logs
    finally:
        to_a.close()
        to_b.close()


def test_rehandshake_renews_sessions_while_up(daemons):
    a, b, _ = daemons.pair(b_dials=False, Rehandshake="2s")
    first_a = a.peer_status("bravo")
    first_b = b.peer_status("alpha")
    assert first_a["dialed_by"] == "us"
    down = []
    deadline = time.monotonic() + 6.5
    while time.monotonic() < deadline:
        for st, name in ((a, "bravo"), (b, "alpha")):
            p = st.peer_status(name)
            if p["state"] != "connected":
                down.append((st.name, p))
        time.sleep(0.1)
    pa, pb = a.peer_status("bravo"), b.peer_status("alpha")
    # About one new session every 1.8 s (9/10 of Rehandshake).
    assert pa["sessions"] - first_a["sessions"] >= 2, pa
    assert pb["sessions"] - first_b["sessions"] >= 2, pb
    assert not down, f"the link went down during re-handshakes: {down[:3]}"
    # The link has been up all along: its state's "since" did not move.
    assert pa["since"] == first_a["since"]
    assert pb["since"] == first_b["since"]
    assert pa["dialed_by"] == "us" and pb["dialed_by"] == "them"
