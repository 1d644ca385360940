"""The daemon follows station.conf while it runs: peers removed and added
by `hotline peer`, addresses changed, a broken file kept at bay."""

import os

from station import control, scaled, wait_for


def test_peer_remove_drops_the_session(daemons):
    a, b, _ = daemons.pair()
    a.cmd("peer", "remove", "bravo")
    wait_for(lambda: a.status()["peers"] == [], scaled(5), "alpha to forget bravo")
    # bravo was told why (CLOSE "peer removed"), then is refused as unknown.
    b.wait_log("peer closed the session: peer removed")
    b.wait_not_connected("alpha")
    a.wait_log(b.card_field("NoiseKey"))
    assert a.alive() and b.alive()


def test_peer_add_links_up_without_restart(daemons):
    a = daemons("alpha")
    b = daemons("bravo")
    a.start()
    b.start()
    assert a.status()["peers"] == []
    a.pin(b)          # alpha now dials bravo, which refuses it: unknown
    a.wait_state("bravo", "connecting")
    b.pin(a)          # bravo dials alpha at once; both link
    a.wait_state("bravo", "connected")
    b.wait_state("alpha", "connected")


def test_address_change_is_followed(daemons):
    a, b, _ = daemons.pair(b_dials=False, start=False)
    # alpha first has a wrong address for bravo.
    conf = open(a.conf_path).read().replace(f"Address = {b.listen}",
                                            "Address = 127.0.0.1:1")
    a.write_conf(conf)
    a.start()
    b.start()
    wait_for(lambda: a.peer_status("bravo")["last_error"], scaled(5), "a failed dial")
    assert a.peer_status("bravo")["state"] != "connected"
    a.write_conf(conf.replace("Address = 127.0.0.1:1", f"Address = {b.listen}"))
    a.wait_state("bravo", "connected", timeout=scaled(5))
    assert a.peer_status("bravo")["address"] == b.listen


def test_bad_config_on_reload_keeps_the_old(daemons):
    a, b, _ = daemons.pair()
    good = open(a.conf_path).read()
    a.write_conf(good + "\n[Peer]\nName = broken\n")
    a.wait_log("station.conf not reloaded")
    r = control(a.dir, {"cmd": "reload"})
    assert r["ok"] is False and "station.conf" in r["error"], r
    assert a.peer_status("bravo")["state"] == "connected"
    assert [p["name"] for p in a.status()["peers"]] == ["bravo"]
    # Fixed again: picked up, nothing disturbed.
    a.write_conf(good)
    assert control(a.dir, {"cmd": "reload"}) == {"ok": True}
    sessions = a.peer_status("bravo")["sessions"]
    assert a.peer_status("bravo")["state"] == "connected"
    assert a.peer_status("bravo")["sessions"] == sessions


def test_key_change_replaces_the_peer(daemons):
    a, b, _ = daemons.pair()
    c = daemons("charlie")
    # bravo's [Peer] section now holds charlie's keys under the name bravo.
    conf = open(a.conf_path).read()
    conf = conf.replace(b.card_field("NoiseKey"), c.card_field("NoiseKey"))
    conf = conf.replace(b.card_field("SigningKey"), c.card_field("SigningKey"))
    a.write_conf(conf)
    b.wait_log("peer closed the session: peer removed")
    a.wait_not_connected("bravo")
    assert os.path.exists(a.conf_path)
