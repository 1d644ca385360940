"""The email path with daemons (docs/bundle.md, "By email"): the direct
link is down (alpha's daemon is not running); beta's daemon picks up the
bundle mail alpha sent through the real mail server (mailutil.py) by
itself, within seconds, with no command run at beta; beta's receipts go
back by email; then alpha's daemon starts, the link comes up, and the next
message goes by TCP.  Nothing lost, nothing duplicated."""

import json
import os

from station import scaled, wait_for
from mailutil import add_email


def test_daemon_picks_up_mail_then_link_returns(mailserver, stations):
    a, b, _ = stations.pair("alpha", "beta", start=False)
    srv = mailserver("alpha", "beta")
    srv.adopt(a)
    srv.adopt(b)    # its mail is delivered as nobody: the station is nobody's
    add_email(a, srv, "alpha", "beta")
    add_email(b, srv, "beta", "alpha")
    b.start()

    ids = [a.cmd("send", "beta", "-s", f"m{i}", f"by mail {i}").stdout.strip()
           for i in range(3)]
    a.cmd("bundle", "mail", "beta")
    got = wait_for(lambda: sorted(m["id"] for m in b.inbox()) == sorted(ids) and b.inbox(),
                   scaled(30), "beta's daemon to pick up the mail")
    assert len(got) == 3
    wait_for(lambda: not srv.new_mail("beta"), scaled(10), "the mail to leave new/")
    assert len(os.listdir(os.path.join(srv.maildir("beta"), "cur"))) == 1
    assert "1 imported" in b.log_text()

    # receipts back by email; alpha has no daemon: its command picks up
    b.cmd("bundle", "mail", "alpha")
    wait_for(lambda: srv.new_mail("alpha"), scaled(20), "beta's receipts at alpha")
    a.cmd("bundle", "import", "--maildir")
    assert {m["id"]: m["state"] for m in a.outbox()} == {i: "delivered" for i in ids}

    # the link returns: the next message goes by TCP, nothing twice
    a.start()
    a.wait_connected("beta")
    tcp = a.cmd("send", "beta", "--wait=%d" % scaled(20), "by the link").stdout.split()[0]
    wait_for(lambda: len(b.inbox()) == 4, scaled(20), "the TCP message at beta")
    assert sorted(m["id"] for m in b.inbox()) == sorted(ids + [tcp])
    assert srv.new_mail("beta") == []
    b.stop()
    assert sorted(m["id"] for m in b.inbox()) == sorted(ids + [tcp])
