"""The email fallback without a mail server (daemon/failover.c): what
`status` says about each path, a mail server that cannot be reached (the
email path goes "down" with the error, the daemon retries and nothing is
lost), `bundle mail --if-items` mailing nothing when nothing waits, and
FallbackAfter's errors naming station.conf:LINE.  No root needed: the SMTP
URL points at a port where nothing listens."""

import os
import socket
import subprocess

from station import scaled, wait_for


def dead_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def add_email(st, smtp, me, peer):
    path = os.path.join(st.dir, "station.conf")
    with open(path) as f:
        text = f.read().rstrip("\n")
    text += f"\nEmail = {peer}@hotline.test\n"   # pin() left the [Peer] last
    text += (f"\n[Email]\nSMTP = smtp://127.0.0.1:{smtp}\nFrom = {me}@hotline.test\n"
             f"Maildir = {st.dir}/Maildir\n")
    with open(path, "w") as f:
        f.write(text)
    for d in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(st.dir, "Maildir", d), exist_ok=True)


def email_path(st, peer):
    return st.peer_status(peer)["paths"]["email"]


def test_unreachable_mail_server_is_reported_and_retried(net):
    # beta is pinned but never runs: alpha's link stays down
    a, b, _ = net.pair("alpha", "beta", start=False, FallbackAfter="1s")
    add_email(a, dead_port(), "alpha", "beta")
    a.start()
    ids = [a.send("beta", f"waiting {i}") for i in range(2)]
    p = wait_for(lambda: (lambda e: e if e["state"] == "down" else None)(email_path(a, "beta")),
                 scaled(20), "the email path down")
    assert p["configured"] is True and p["active"] is True
    assert p["mails"] == 0 and p["last_success"] is None
    assert p["last_error"] and p["last_error_at"] and p["last_attempt"]
    assert p["queued"] == 2 and p["unmailed"] == 2
    tcp = a.peer_status("beta")["paths"]["tcp"]
    assert tcp["state"] == "down" and tcp["queued"] == 2 and tcp["last_success"] is None
    log = a.log_text()
    assert "mailing failed (retrying in 5 s)" in log, log[-2000:]
    # a retry happens, later (5 s, then 10 s ...), not every second
    wait_for(lambda: a.log_text().count("mailing failed") >= 2, scaled(20), "a retry")
    assert a.log_text().count("mailing failed") <= 3
    human = a.cmd("status").stdout
    assert "email  down (fallback active)" in human and "last error" in human, human
    # nothing lost: both still queued, and the link delivers them later
    assert {m["id"]: m["state"] for m in a.outbox()} == {i: "queued" for i in ids}
    b.start()
    a.wait_connected("beta")
    a.wait_delivered(ids, scaled(20))
    assert sorted(m["id"] for m in b.inbox()) == sorted(ids)
    p = email_path(a, "beta")
    assert p["active"] is False and p["queued"] == 0


def test_status_paths_without_email_and_without_daemon(net):
    a, b, _ = net.pair("alpha", "beta")
    p = a.peer_status("beta")["paths"]
    assert p["tcp"]["state"] == "up" and p["tcp"]["queued"] == 0
    assert p["email"]["configured"] is False and p["email"]["state"] == "off"
    assert p["email"]["last_attempt"] is None
    assert a.status()["station"]["email"] == {"configured": False}
    b.stop()
    a.send("beta", "one for later")
    wait_for(lambda: a.peer_status("beta")["paths"]["tcp"]["queued"] == 1, scaled(10),
             "one item queued")
    a.stop()
    off = a.status()
    assert off["daemon"] is False
    paths = off["peers"][0]["paths"]
    assert paths["tcp"]["queued"] == 1 and paths["tcp"]["state"] is None
    assert paths["email"]["configured"] is False
    r = a.cmd("status", check=False)
    assert r.returncode == 3, r.stderr   # the daemon is not running
    assert "1 item unacknowledged" in r.stdout, r.stdout


def test_bundle_mail_if_items_sends_nothing_when_nothing_waits(net):
    a, b, _ = net.pair("alpha", "beta", start=False)
    add_email(a, dead_port(), "alpha", "beta")
    # a bundle left by a `bundle mail` that was killed goes at the next one
    gone = subprocess.Popen(["true"])
    gone.wait()
    mine = os.path.join(a.dir, f"mail-out-{os.getpid()}.bundle")   # a live process's
    for name in (f"mail-out-{gone.pid}.bundle", f"mail-out-{gone.pid}.bundle.tmp-{gone.pid}"):
        with open(os.path.join(a.dir, name), "wb") as f:
            f.write(b"hotline/1 bundle")
    with open(mine, "wb") as f:
        f.write(b"hotline/1 bundle")
    r = a.cmd("bundle", "mail", "beta", "--if-items")
    assert r.stdout.strip() == "nothing to send to beta"
    assert [f for f in os.listdir(a.dir) if f.startswith("mail-out-")] == [os.path.basename(mine)]
    os.unlink(mine)
    # with something to send it does try the (unreachable) server
    a.send("beta", "x")
    r = a.cmd("bundle", "mail", "beta", "--if-items", check=False)
    assert r.returncode == 1 and "failed" in r.stderr
    # --after past everything: nothing new
    r = a.cmd("bundle", "mail", "beta", "--if-items", "--after", "1000")
    assert r.stdout.strip() == "nothing to send to beta"
    for bad in ("-1", "x", "1x", "99999999999999999999"):
        r = a.cmd("bundle", "mail", "beta", "--after", bad, check=False)
        assert r.returncode == 2 and "--after" in r.stderr, (bad, r.stderr)
    r = a.cmd("bundle", "export", "beta", "-o", "x", "--if-items", check=False)
    assert r.returncode == 2


def test_fallback_after_errors_name_the_line(net):
    a = net.station("alpha")
    path = os.path.join(a.dir, "station.conf")
    with open(path) as f:
        good = f.read()
    line = good.splitlines().index("[Station]") + 2   # the key goes right below
    for value, words in (("0s", "more than 0"), ("soon", "bad FallbackAfter 'soon'"),
                         ("25h", "at most 24h")):
        with open(path, "w") as f:
            f.write(good.replace("[Station]\n", f"[Station]\nFallbackAfter = {value}\n", 1))
        r = a.cmd("status", check=False)
        assert r.returncode == 1 and f"station.conf:{line}:" in r.stderr and words in r.stderr, \
            r.stderr
