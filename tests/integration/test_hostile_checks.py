"""Operator checks from a hostile peer (docs/items.md 2.4).

A pinned peer may ask for a person as often as it signs CHECK items.  Each is
answered by the station at once (the protocol), but only a few may wait for
a person at a time: otherwise `status` grows without bound and one `hotline
answer` signs thousands of "a person answered" items nobody read.  And
`answer` says what it is about to sign, and asks, before it signs.
"""
import json
import os
import pty
import subprocess

import hlpeer
from station import HOTLINE_BIN, scaled

WAITING_MAX = 8          # docs/items.md 2.4: operator checks of a peer waiting for a person


def test_thousands_of_operator_checks_leave_few_waiting(net):
    b = net.station("pyongyang")
    peer = net.hlpeer_pinned(b)
    b.start()
    net.connect_hlpeer(b, peer)
    n = 3000
    checks = [peer.author_check(mode=1, timeout_ms=3600 * 1000) for _ in range(n)]
    recs = [(hlpeer.T_ITEM, hlpeer.rec_item(c.encoded)) for c in checks]
    for i in range(0, n, 500):
        peer.session.send_records(recs[i:i + 500])
    # Every one is stored and answered by the station (the protocol)...
    peer.wait(lambda: checks[-1].seq in peer.acked, scaled(120), "the ACK of every check")
    peer.wait(lambda: len([i for i in peer.in_other if i.kind == "answer"]) >= n,
              scaled(120), "the station's answer to every check")
    answers = [i for i in peer.in_other if i.kind == "answer"]
    assert all(a.by == hlpeer.BY_STATION for a in answers)
    # ...but only a few wait for a person.
    st = b.status()
    me = [p for p in st["peers"] if p["name"] == "hlpeer"][0]
    waiting = me["check"]["pending_answer"]
    assert len(waiting) <= WAITING_MAX, f"{len(waiting)} checks wait for a person"
    assert me["check"]["pending_more"] is False
    assert len(json.dumps(st)) < 64 * 1024
    text = b.cmd("status").stdout
    assert text.count("LINE CHECK") <= WAITING_MAX and len(text.splitlines()) < 60, text[:2000]
    # `answer --yes` signs only what waits, and says which.
    out = b.cmd("answer", "--yes", "--json").stdout
    signed = json.loads(out)
    assert 1 <= len(signed) <= WAITING_MAX
    assert {c["id"] for c in signed} == {w["id"] for w in waiting}
    # The log says the rest were not offered to a person, without a line each.
    log = b.log_text()
    assert log.count("waits for a person") <= WAITING_MAX + 2, log.count("waits for a person")
    assert "not offered to a person" in log
    assert len(log.splitlines()) < 400, len(log.splitlines())
    assert b.alive()


def test_answer_says_what_it_signs_and_asks(net):
    b = net.station("pyongyang")
    peer = net.hlpeer_pinned(b)
    b.start()
    net.connect_hlpeer(b, peer)
    c = peer.author_check(mode=1, timeout_ms=600 * 1000)
    peer.send_item(c.seq)
    peer.wait(lambda: c.seq in peer.acked, scaled(10), "the ACK of the check")
    cid = c.encoded[len(hlpeer.CTX_CHECK) + 1 + 32 + 32 + 8 + 32 + 8:][:16].hex()
    # Not a terminal and no --yes: nothing is signed, and it says why.
    p = b.cmd("answer", check=False)
    assert p.returncode != 0 and "--yes" in p.stderr, p
    assert b.status()["peers"][0]["check"]["pending_answer"][0]["id"] == cid
    # On a terminal: the list first, then the question; "n" signs nothing.
    for reply, signs in ((b"n\n", False), (b"y\n", True)):
        master, slave = pty.openpty()
        proc = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "answer"], stdin=slave,
                                stdout=slave, stderr=slave)
        os.close(slave)
        seen = b""
        while b"[y/N]" not in seen:
            chunk = os.read(master, 4096)
            assert chunk, seen
            seen += chunk
        assert cid.encode() in seen and b"hlpeer" in seen, seen
        assert b"a person answered" in seen, seen
        os.write(master, reply)
        proc.wait(timeout=scaled(20))
        try:
            while os.read(master, 4096):
                pass
        except OSError:
            pass
        os.close(master)
        pend = b.status()["peers"][0]["check"]["pending_answer"]
        assert (pend == []) == signs, (reply, pend)
        assert proc.returncode == (0 if signs else 1), proc.returncode
