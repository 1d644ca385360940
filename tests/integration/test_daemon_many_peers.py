"""A station with hundreds of pinned peers: the daemon starts, and `status`
(whose answer then runs to hundreds of KiB, far over the 64 KiB request
limit of the control socket) still shows every peer, as text and as JSON."""
import json
import os
import signal
import subprocess
import time

import hlpeer
from station import HOTLINE_BIN, free_port, scaled

PEERS = 200


def hl(d, *args):
    return subprocess.run([HOTLINE_BIN, "-d", str(d)] + list(args), capture_output=True,
                          text=True, timeout=scaled(60))


def test_status_with_hundreds_of_peers(tmp_path):
    hub = tmp_path / "hub"
    assert hl(hub, "init", "hub", "--listen", f"127.0.0.1:{free_port()}").returncode == 0
    for i in range(PEERS):
        # The peers never run, so a card is all they need: made here (fresh
        # keys, the card format `hotline card` prints) rather than by two
        # more hotline processes per peer, each slow under the sanitizers.
        # The address is one where nobody listens.
        card = tmp_path / f"s{i}.card"
        card.write_text(hlpeer.Identity(f"s{i}").card("127.0.0.1:9"))
        p = hl(hub, "peer", "add", str(card), "--trust-without-checking")
        assert p.returncode == 0, p.stderr
    log = open(tmp_path / "hub.log", "w")
    d = subprocess.Popen([HOTLINE_BIN, "-d", str(hub), "run"], stderr=log)
    try:
        deadline = time.monotonic() + scaled(20)
        while True:
            p = hl(hub, "status", "--json")   # exit 3 until the daemon runs
            if p.returncode == 0 and json.loads(p.stdout).get("daemon"):
                break
            assert time.monotonic() < deadline, p.stderr
            time.sleep(0.1)
        st = json.loads(p.stdout)
        assert len(p.stdout) > 65536
        assert len(st["peers"]) == PEERS
        assert {x["name"] for x in st["peers"]} == {f"s{i}" for i in range(PEERS)}
        text = hl(hub, "status")
        assert text.returncode == 0, text.stderr
        assert "s199" in text.stdout
    finally:
        d.send_signal(signal.SIGTERM)
        assert d.wait(timeout=scaled(20)) == 0
        log.close()
