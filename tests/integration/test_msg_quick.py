"""`hotline send` through the running daemon (the control request "send",
docs/protocol.md section 6): the daemon queues a text message inside its
group commit and answers once it is durable; without an answer the command
queues the message itself under the same id, never twice.
"""
import json
import os
import socket
import threading
import time

import station
from station import scaled

DELIVER = scaled(30)


def control_lines(station_dir, request, want, timeout=None):
    """Sends REQUEST (a dict) on the control socket; returns the first WANT
    response lines, parsed."""
    dirfd = os.open(station_dir, os.O_PATH | os.O_DIRECTORY)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout or scaled(20))
    try:
        s.connect(f"/proc/self/fd/{dirfd}/control.sock")
        s.sendall(json.dumps(request).encode() + b"\n")
        buf, out = b"", []
        while len(out) < want:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            while b"\n" in buf and len(out) < want:
                line, buf = buf.split(b"\n", 1)
                out.append(json.loads(line))
        return out
    finally:
        s.close()
        os.close(dirfd)


def ids_of(station):
    return [m["id"] for m in station.outbox()]


def test_send_is_queued_by_the_daemon_and_delivered(net):
    a, b, _ = net.pair()
    # The daemon holds the identity: with it running, `send` of a text
    # message does not read identity.key (the direct path must).
    key = os.path.join(a.dir, "identity.key")
    os.rename(key, key + ".away")
    try:
        mid = a.send("pyongyang", "quick", "note", subject="s1", precedence="flash")
        assert station.ID_RE.match(mid)
        # durable when the id is printed: the store has it already
        assert a.outbox_states()[mid] in ("queued", "sent", "delivered")
        p = a.send("pyongyang", "again", wait=int(DELIVER), check=False)
        assert p.returncode == 0, p.stderr
        mid2 = p.stdout.split()[0]
        assert a.outbox_states()[mid2] == "delivered"   # --wait returned: receipt in
    finally:
        os.rename(key + ".away", key)
    a.wait_delivered([mid], DELIVER)
    got = {m["id"]: m for m in b.inbox()}
    assert got[mid]["body"] == "quick note" and got[mid]["subject"] == "s1"
    assert got[mid]["precedence"] == "flash"
    assert got[mid2]["body"] == "again"
    # what the daemon refuses is refused as before, with the direct path's words
    p = a.send("nobody", "hi", check=False)
    assert p.returncode == 1 and "no peer named 'nobody'" in p.stderr
    p = a.send("pyongyang", input=b"bad \xff body", binary=True, check=False)
    assert p.returncode == 1 and b"not UTF-8" in p.stderr
    assert sorted(ids_of(a)) == sorted([mid, mid2])


def test_control_send_request(net):
    a, b, _ = net.pair()
    mid = os.urandom(16).hex()
    req = {"cmd": "send", "peer": "pyongyang", "id": mid, "body": "by hand",
           "subject": "subj", "precedence": "immediate", "wait": True}
    r = control_lines(a.dir, req, 2)
    assert r[0] == {"ok": True, "id": mid}
    # with "wait", the same connection streams events: the receipt's comes
    assert r[1]["event"] == "delivered" and r[1]["id"] == mid, r
    m = {x["id"]: x for x in a.outbox()}[mid]
    assert (m["body"], m["subject"], m["precedence"], m["state"]) == \
        ("by hand", "subj", "immediate", "delivered")

    # the same id again: refused, nothing queued twice
    r = control_lines(a.dir, dict(req, wait=False), 1)
    assert r[0]["ok"] is False and r[0]["error"]
    bad = [
        {"cmd": "send", "peer": "pyongyang", "body": "x"},                          # no id
        {"cmd": "send", "peer": "pyongyang", "id": "zz" * 16, "body": "x"},         # not hex
        {"cmd": "send", "peer": "pyongyang", "id": mid[:30], "body": "x"},          # short
        {"cmd": "send", "id": os.urandom(16).hex(), "body": "x"},                   # no peer
        {"cmd": "send", "peer": "nobody", "id": os.urandom(16).hex(), "body": "x"},
        {"cmd": "send", "peer": "pyongyang", "id": os.urandom(16).hex()},           # no body
        {"cmd": "send", "peer": "pyongyang", "id": os.urandom(16).hex(), "body": "x",
         "precedence": "urgent"},
        {"cmd": "send", "peer": "pyongyang", "id": os.urandom(16).hex(), "body": "x",
         "subject": "a\u0000b"},
        {"cmd": "send", "peer": "pyongyang", "id": os.urandom(16).hex(), "body": "x",
         "wait": "yes"},
        {"cmd": "send", "peer": "pyongyang", "id": os.urandom(16).hex(),
         "body": "x" * (1 << 15), "subject": "s" * 5000},                            # subject too long
    ]
    for q in bad:
        r = control_lines(a.dir, q, 1)
        assert r[0]["ok"] is False and r[0]["error"], (q, r)
    assert ids_of(a) == [mid]
    assert {m["id"] for m in b.inbox()} == {mid}
    a.assert_alive()


class FakeDaemon:
    """A control socket that accepts and then does ANSWER(conn, request):
    stands in for a daemon that is stuck or says no."""

    def __init__(self, station_dir, answer):
        self.dirfd = os.open(station_dir, os.O_PATH | os.O_DIRECTORY)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(f"/proc/self/fd/{self.dirfd}/control.sock")
        self.sock.listen(8)
        self.answer = answer
        self.requests = []
        self.conns = []
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)
            buf = b""
            while b"\n" not in buf:
                chunk = c.recv(65536)
                if not chunk:
                    break
                buf += chunk
            if buf:
                req = json.loads(buf.split(b"\n", 1)[0])
                self.requests.append(req)
                if req.get("cmd") == "send":   # a poke is not waited for
                    self.answer(c, req)

    def close(self):
        # Stop the thread before the descriptor is closed: closed first, its
        # number can be reused by the next FakeDaemon's socket while this
        # thread is about to call accept() on it, and it would take (and
        # answer) the next test's connection.  shutdown() wakes accept().
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(10)
        assert not self.thread.is_alive()
        self.sock.close()
        for c in self.conns:
            c.close()
        os.unlink(f"/proc/self/fd/{self.dirfd}/control.sock")
        os.close(self.dirfd)


def test_send_queues_itself_when_the_daemon_does_not_answer(net):
    a, b, _ = net.pair(start=False)
    answers = [
        ("silent", lambda c, req: None),
        ("says no", lambda c, req: c.sendall(b'{"ok":false,"error":"no"}\n')),
        ("wrong id", lambda c, req: c.sendall(b'{"ok":true,"id":"' + b"0" * 32 + b'"}\n')),
        ("hangs up", lambda c, req: c.close()),
    ]
    for what, answer in answers:
        fake = FakeDaemon(a.dir, answer)
        try:
            t0 = time.monotonic()
            mid = a.send("pyongyang", "via", "fallback", what)
            took = time.monotonic() - t0
        finally:
            fake.close()
        sends = [r for r in fake.requests if r.get("cmd") == "send"]
        assert len(sends) == 1 and sends[0]["id"] == mid, (what, fake.requests)
        assert sends[0]["body"] == f"via fallback {what}"
        if what == "silent":
            assert took >= 4.5, took   # it waited for an answer, then went on
        assert ids_of(a).count(mid) == 1, what
    # and the daemon, once running, sends them all
    b.start()
    a.start()
    ids = ids_of(a)
    assert len(ids) == len(answers)
    a.wait_delivered(ids, DELIVER)
