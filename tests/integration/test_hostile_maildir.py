"""The daemon's mail pickup against what lands in Maildir/new (docs/bundle.md
section 8, "Receiving: pickup").

Anyone who can deliver mail to the station's Maildir, or write into it,
may leave something that is not a mail file: a FIFO (which blocked the
pickup child for ever in its open()), a socket (which cannot be opened at
all, and made the pickup rerun and log every second for ever).  Whatever it
is, it goes to the quarantine once, the next good mail is still picked up,
the log stays short, and `status` shows the pickup's trouble.  A pickup that
hangs for any other reason is stopped by the daemon after its timeout.
"""
import os
import socket
import sqlite3
import time

from mailutil import deliver, email_station, good_mail, pickup_status
from station import scaled, wait_for


def test_fifo_in_new_does_not_stop_the_pickup(net, tmp_path):
    a, b, md = email_station(net, tmp_path)
    os.mkfifo(os.path.join(md, "new", "1000.fifo.host"))
    b.start()
    mid, data = good_mail(a, tmp_path, "after the fifo")
    deliver(md, "2000.good.host", data)
    wait_for(lambda: mid in b.inbox_ids(), scaled(20), "the good mail picked up past the FIFO")
    q = os.listdir(md + ".quarantine")
    assert "1000.fifo.host" in q and "1000.fifo.host.why" in q, q
    assert os.listdir(os.path.join(md, "new")) == []
    st = wait_for(lambda: pickup_status(b) if pickup_status(b).get("quarantined") else None,
                  scaled(10), "status to count the quarantined entry")
    assert st["quarantined"] >= 1 and st["state"] == "ok", st
    # and the next one too
    mid2, data2 = good_mail(a, tmp_path, "and the next")
    deliver(md, "3000.good.host", data2)
    wait_for(lambda: mid2 in b.inbox_ids(), scaled(20), "the next good mail")


def test_entry_that_cannot_be_opened_is_quarantined_once(net, tmp_path):
    a, b, md = email_station(net, tmp_path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(md, "new", "1000.sock.host"))   # open() gives ENXIO
    net.on_teardown(sock.close)
    b.start()
    mid, data = good_mail(a, tmp_path, "after the socket")
    deliver(md, "2000.good.host", data)
    wait_for(lambda: mid in b.inbox_ids(), scaled(20), "the good mail")
    time.sleep(5)
    lines = [l for l in b.log_text().splitlines() if "1000.sock.host" in l]
    assert len(lines) <= 2, f"{len(lines)} log lines about one entry:\n" + "\n".join(lines[:10])
    assert "1000.sock.host" in os.listdir(md + ".quarantine")
    st = pickup_status(b)
    assert st["quarantined"] >= 1 and st["failures"] == 0, st


def test_hung_pickup_is_stopped_and_shown(net, tmp_path):
    a, b, md = email_station(net, tmp_path)
    env = dict(os.environ, HOTLINE_PICKUP_TIMEOUT_MS="1500")
    b.start(env=env)
    # Hold the store's write lock: the pickup's import waits for it.
    db = sqlite3.connect(os.path.join(b.dir, "store.db"), timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    try:
        mid, data = good_mail(a, tmp_path, "while the store is locked")
        deliver(md, "2000.good.host", data)
        st = wait_for(lambda: pickup_status(b) if "stopped" in
                      (pickup_status(b).get("last_error") or "") else None,
                      scaled(20), "status to show the stopped pickup")
        assert st["state"] == "failing" and st["failures"] >= 1, st
        assert st["retry_at"], st
    finally:
        db.execute("ROLLBACK")
        db.close()
    # Once the store is free the mail comes in, and the trouble clears.
    wait_for(lambda: mid in b.inbox_ids(), scaled(30), "the mail after the lock")
    wait_for(lambda: pickup_status(b)["state"] == "ok", scaled(10), "the pickup back to ok")
    assert b.alive()
