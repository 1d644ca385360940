"""The daemon's life: one per station, a stale control socket, clean
shutdown, long station paths, status without a daemon, and what it does
with connections that never authenticate (docs/protocol.md sections 5-6)."""

import json
import os
import signal
import socket
import stat
import time

from station import control, control_raw, scaled, wait_for


def test_second_daemon_is_refused(daemons):
    a = daemons("alpha")
    a.start()
    p = a.cmd("run", check=False, timeout=scaled(10))
    assert p.returncode == 1
    assert "already running" in p.stderr and "daemon.lock" in p.stderr, p.stderr
    assert len(p.stderr.strip().splitlines()) == 1, p.stderr
    # The first one is untouched, control socket included.
    assert a.alive()
    assert a.status()["daemon"] is True


def test_sigterm_exits_0_and_removes_socket(daemons):
    a, b, _ = daemons.pair()
    sock = os.path.join(a.dir, "control.sock")
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
    assert a.stop(signal.SIGTERM) == 0
    assert not os.path.exists(sock)
    # The peer heard a CLOSE (shutdown), not just a dropped connection.
    b.wait_log("peer closed the session: shutdown")
    b.wait_not_connected("alpha")
    # SIGINT too.
    assert b.stop(signal.SIGINT) == 0
    assert not os.path.exists(os.path.join(b.dir, "control.sock"))


def test_stale_socket_is_removed(daemons):
    a = daemons("alpha")
    path = os.path.join(a.dir, "control.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()   # leaves the file, as a crashed daemon would
    assert a.cmd("status", check=False).returncode == 3   # connect refused: "not running"
    a.start()
    assert a.status()["daemon"] is True


def test_long_station_path(daemons, tmp_path):
    deep = "d" * 60 + "/" + "e" * 60
    os.makedirs(tmp_path / deep)
    a = daemons("alpha", dir=deep + "/alpha")
    b = daemons("bravo", dir=deep + "/bravo")
    assert len(os.path.join(a.dir, "control.sock")) > 107
    a.pin(b)
    b.pin(a)
    a.start()
    b.start()
    a.wait_state("bravo", "connected")
    assert b.wait_state("alpha", "connected")
    assert os.path.exists(os.path.join(a.dir, "control.sock"))
    assert a.stop() == 0
    assert not os.path.exists(os.path.join(a.dir, "control.sock"))


def test_status_without_daemon(daemons):
    a, b, _ = daemons.pair(start=False)
    p = a.cmd("status", check=False)
    assert p.returncode == 3, p.stderr   # documented: 3, the daemon is not running
    assert "daemon not running" in p.stdout.splitlines()[0]
    line = [l for l in p.stdout.splitlines() if l.startswith("bravo")]
    assert len(line) == 1 and "daemon not running" in line[0], p.stdout
    pj = a.cmd("status", "--json", check=False)
    assert pj.returncode == 3, pj.stderr
    st = json.loads(pj.stdout)
    assert st["daemon"] is False
    assert st["station"]["name"] == "alpha"
    assert [x["name"] for x in st["peers"]] == ["bravo"]
    assert st["peers"][0]["state"] is None
    assert st["peers"][0]["address"] == b.listen
    assert a.cmd("status", "--bogus", check=False).returncode == 2
    assert "usage" in a.cmd("status", "--help").stdout
    assert "usage" in a.cmd("run", "--help").stdout


def test_bad_config_fails_start(daemons):
    a = daemons("alpha")
    with open(a.conf_path, "a") as f:
        f.write("Bogus = 1\n")
    p = a.cmd("run", check=False, timeout=scaled(10))
    assert p.returncode == 1
    assert "station.conf" in p.stderr and "Bogus" in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(a.dir, "control.sock"))


def test_listen_address_taken_fails_start(daemons):
    a = daemons("alpha")
    blocker = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    blocker.bind(("127.0.0.1", a.port))
    blocker.listen(1)
    try:
        p = a.cmd("run", check=False, timeout=scaled(10))
        assert p.returncode == 1
        assert a.listen in p.stderr, p.stderr
    finally:
        blocker.close()


def test_control_requests(daemons):
    a = daemons("alpha")
    a.start()
    r = control(a.dir, {"cmd": "status"})
    assert r["ok"] is True and r["station"]["name"] == "alpha" and r["peers"] == []
    for bad in (b"nonsense\n", b"[1,2]\n", b'{"cmd": 7}\n', b'{"nocmd": 1}\n',
                b'{"cmd":"status","cmd":"reload"}\n', b'{"cmd": ""}\n', b"\xff\xfe\n"):
        out = control_raw(a.dir, bad)
        r = json.loads(out)
        assert r["ok"] is False and r["error"], (bad, r)
    r = control(a.dir, {"cmd": "launch\nmissiles"})
    assert r == {"ok": False, "error": "unknown command 'launch\nmissiles'"}
    # Over the 64 KiB cap: an error, not a hang or a crash.
    out = control_raw(a.dir, b'{"cmd":"status","pad":"' + b"x" * 70000, shutdown=False)
    r = json.loads(out)
    assert r["ok"] is False and "longer" in r["error"]
    # A request without its newline, then EOF, is still answered.
    r = json.loads(control_raw(a.dir, b'{"cmd":"status"}'))
    assert r["ok"] is True
    # Nothing sent at all: closed without fuss.
    assert control_raw(a.dir, b"") == b""
    assert a.alive()
    assert control(a.dir, {"cmd": "reload"}) == {"ok": True}


def test_unauthenticated_connections_are_bounded(daemons):
    a, b, _ = daemons.pair(b_dials=False, start=False, HandshakeTimeout="2s")
    a.start()
    # b is not running yet: fill a's table with idle connections.
    idle = [socket.create_connection(("127.0.0.1", a.port))
            for _ in range(80)]
    try:
        # The oldest 16 were closed to keep 64.
        def closed_count():
            n = 0
            for s in idle:
                s.setblocking(False)
                try:
                    if s.recv(1) == b"":
                        n += 1
                except BlockingIOError:
                    pass
                except ConnectionResetError:
                    n += 1
            return n
        wait_for(lambda: closed_count() >= 16, scaled(5), "16 evictions")
        # A pinned peer still gets through while the table is full.
        idle += [socket.create_connection(("127.0.0.1", a.port)) for _ in range(10)]
        b.start()
        b.wait_state("alpha", "connected", timeout=scaled(10))
        # And every idle connection is closed by the handshake timeout.
        wait_for(lambda: closed_count() == len(idle), scaled(10), "all idle connections closed")
    finally:
        for s in idle:
            s.close()
    assert a.alive()


def test_unknown_key_is_logged_once(daemons):
    a = daemons("alpha")
    c = daemons("charlie")
    c.pin(a)            # charlie dials alpha, which never pinned charlie
    a.start()
    c.start()
    key = c.card_field("NoiseKey")
    a.wait_log(key)
    c.wait_log("closed the connection")
    # charlie keeps retrying (0.5 s, 1 s, 2 s ...): alpha logs the key once.
    time.sleep(scaled(3))
    text = a.log_text()
    assert text.count(key) == 1, text
    assert "is not pinned" in text and "key id" in text
    assert c.peer_status("alpha")["state"] != "connected"


def test_listen_by_host_name_starts(daemons):
    # Listen may name its host; the call media socket binds that host's
    # address by itself (it used to refuse to start: "want a numeric address").
    a = daemons("alpha")
    a.set_option("Listen", f"localhost:{a.port}")
    a.start()
    assert a.status()["daemon"] is True
    assert "call media on UDP port" in a.log_text()
