"""The automatic email fallback (docs/bundle.md, "By email"; daemon/failover.c)
through a real mail server (mailutil.py: a private Postfix on 127.0.0.1).

alpha dials beta through a proxy the test controls (beta never dials), both
daemons run, both have [Email] and FallbackAfter = 2s.  The test:

1. sends one message over the live link (TCP);
2. cuts the link (the proxy drops every connection and refuses new ones):
   alpha's messages go to beta by email with no command run, beta's
   receipts come back by email, each side's daemon picking up its mail;
3. a FLASH message while the link is down reaches beta by email within
   seconds, and so does a message from beta to alpha (whose receipt comes
   back by email as well);
4. `status` shows each path: tcp down, email up and active, mails counted;
5. the link returns (alpha's Address points at beta again): traffic goes by
   TCP, no mail leaves either station while the session is up;
6. nothing is lost and nothing duplicated: inbox and outbox ids and states
   on both sides, checked again with the daemons stopped.
"""

import os
import re
import time

from mailutil import add_email, email_pair, inbox_ids
from station import scaled, wait_for


def set_peer_address(st, address):
    """Replaces the Address line of ST's one [Peer] section (the daemon
    reloads station.conf by itself)."""
    path = os.path.join(st.dir, "station.conf")
    with open(path) as f:
        text = f.read()
    new, n = re.subn(r"(?m)^(\[Peer\][^\[]*?^)Address = .*$", rf"\g<1>Address = {address}",
                     text)
    assert n == 1, text
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.rename(tmp, path)


def paths(st, peer):
    p = st.peer_status(peer)
    assert "paths" in p, p
    return p["paths"]


def mails_sent(st, peer):
    return paths(st, peer)["email"]["mails"]


def cur_count(srv, user):
    d = os.path.join(srv.maildir(user), "cur")
    return len(os.listdir(d))


def test_email_failover_and_back(net, mailserver):
    a, b, proxy, srv = email_pair(net, mailserver, "2s")

    # 1. the live link carries the first message; no mail goes out
    first = a.send("beta", "over the link", wait=int(scaled(20)))
    p = paths(a, "beta")
    assert p["tcp"]["state"] == "up" and p["email"]["configured"] is True
    assert p["email"]["state"] == "up" and p["email"]["active"] is False
    assert p["email"]["mails"] == 0

    # 2. the cable is cut
    proxy.refuse_new = True
    proxy.drop_all()
    wait_for(lambda: paths(a, "beta")["tcp"]["state"] == "down", scaled(15), "alpha: link down")
    wait_for(lambda: paths(b, "alpha")["tcp"]["state"] == "down", scaled(15), "beta: link down")
    cut_at = time.monotonic()
    by_mail = [a.send("beta", f"by mail {i}", subject=f"m{i}") for i in range(3)]
    wait_for(lambda: set(by_mail) <= set(inbox_ids(b)), scaled(40),
             "alpha's messages at beta by email")
    assert time.monotonic() - cut_at >= 2.0    # not before FallbackAfter (routine messages)
    wait_for(lambda: all(a.outbox_states()[i] == "delivered" for i in by_mail), scaled(40),
             "beta's receipts at alpha by email")
    assert mails_sent(a, "beta") >= 1 and mails_sent(b, "alpha") >= 1
    assert cur_count(srv, "beta") >= 1 and cur_count(srv, "alpha") >= 1
    assert proxy.accepted == 1, "the link must have stayed down"
    assert "mailing a bundle" in a.log_text() and "mailing a bundle" in b.log_text()

    # 3. FLASH while the link is down goes at once; beta writes back
    t0 = time.monotonic()
    flash = a.send("beta", "urgent", precedence="flash", subject="FLASH")
    wait_for(lambda: flash in inbox_ids(b), scaled(30), "the FLASH message at beta")
    flash_secs = time.monotonic() - t0
    reply = b.send("alpha", "reply by mail", subject="reply")
    wait_for(lambda: reply in inbox_ids(a), scaled(40), "beta's reply at alpha by email")
    wait_for(lambda: b.outbox_states().get(reply) == "delivered", scaled(40),
             "alpha's receipt for the reply at beta")
    wait_for(lambda: a.outbox_states().get(flash) == "delivered", scaled(40),
             "the FLASH message's receipt at alpha")
    # a mail's trip (Postfix, then the 1 s pickup poll) is the floor here
    assert flash_secs < scaled(15), f"FLASH took {flash_secs:.1f}s by email"

    # 4. status shows the paths
    p = paths(a, "beta")
    assert p["tcp"]["state"] == "down" and p["tcp"]["last_success"] is not None
    assert p["email"]["state"] == "up" and p["email"]["active"] is True
    assert p["email"]["last_success"] is not None and p["email"]["last_error"] is None
    assert p["email"]["fallback_after_ms"] == 2000
    human = a.cmd("status").stdout
    assert re.search(r"tcp +down", human) and re.search(r"email +up \(fallback active\)", human), human
    assert a.status()["station"]["email"]["configured"] is True

    # 5. the link returns: TCP again, no more mail
    wait_for(lambda: paths(a, "beta")["email"]["queued"] == 0 and
             paths(b, "alpha")["email"]["queued"] == 0 and
             not paths(a, "beta")["email"]["mailing"] and
             not paths(b, "alpha")["email"]["mailing"], scaled(40),
             "both sides with nothing unacknowledged")
    set_peer_address(a, b.listen)
    a.wait_connected("beta", timeout=scaled(20))
    b.wait_connected("alpha", timeout=scaled(20))
    sent_a, sent_b = mails_sent(a, "beta"), mails_sent(b, "alpha")
    cur_a, cur_b = cur_count(srv, "alpha"), cur_count(srv, "beta")
    after = [a.send("beta", f"back on tcp {i}", wait=int(scaled(20))) for i in range(3)]
    back = b.send("alpha", "tcp too", wait=int(scaled(20)))
    time.sleep(3)   # longer than FallbackAfter: a mail would have gone by now
    assert mails_sent(a, "beta") == sent_a and mails_sent(b, "alpha") == sent_b
    assert srv.new_mail("alpha") == [] and srv.new_mail("beta") == []
    assert (cur_count(srv, "alpha"), cur_count(srv, "beta")) == (cur_a, cur_b)
    p = paths(a, "beta")
    assert p["tcp"]["state"] == "up" and p["email"]["active"] is False

    # 6. nothing lost, nothing duplicated
    a_out = [first] + by_mail + [flash] + after
    b_out = [reply, back]
    for st in (a, b):
        st.stop()
    assert sorted(inbox_ids(b)) == sorted(a_out)
    assert sorted(inbox_ids(a)) == sorted(b_out)
    assert a.outbox_states() == {i: "delivered" for i in a_out}
    assert b.outbox_states() == {i: "delivered" for i in b_out}
    assert len(a.outbox()) == len(a_out) and len(b.outbox()) == len(b_out)
    # without a daemon, status tells what the store knows
    off = a.status()
    assert off["daemon"] is False
    pa = off["peers"][0]["paths"]
    assert pa["tcp"]["queued"] == 0 and pa["email"]["configured"] is True


def log_seconds(line):
    """The time of day (s) of a daemon log line."""
    hms = line.split("T", 1)[1].split("Z", 1)[0]
    h, m, s = hms.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def mail_pauses(st):
    """The pauses (s) between the end of one mail of ST's daemon (its
    "mailed to" line, logged when the mail exits) and the start of the next
    ("mailing a bundle").  The resend interval runs from the end of a mail,
    and the daemon looks every second, so a pause is the interval plus up to
    about a second: measured from start to start, a mail's own duration and
    the tick would blur one doubling into the next."""
    pauses, ended = [], None
    for line in st.log_text().splitlines():
        if "mailing a bundle" in line and ended is not None:
            pauses.append(log_seconds(line) - ended)
            ended = None
        elif ": mail: mailed to " in line:
            ended = log_seconds(line)
    return pauses


def test_resend_backs_off_then_stops(mailserver, net):
    """Nobody picks up alpha's mail at first: alpha mails everything again,
    after longer and longer pauses.  Then beta's daemon runs (the link
    still cut): it imports every copy, stores the message once, mails its
    receipt back, and once each side has acknowledged the other no more
    mail goes either way."""
    a, b, proxy = net.pair("alpha", "beta", via_proxy=True, start=False, FallbackAfter="1s")
    proxy.refuse_new = True
    srv = mailserver("alpha", "beta")
    srv.adopt(a)
    srv.adopt(b)
    add_email(a, srv, "alpha", "beta")
    add_email(b, srv, "beta", "alpha")
    a.start()
    mid = a.send("beta", "is anyone there?")
    wait_for(lambda: len(srv.new_mail("beta")) >= 4, scaled(30), "four copies at beta")
    # FallbackAfter, then twice that, then four times (failover.c, rule 5):
    # a constant interval would resend after about a second each time
    pauses = mail_pauses(a)
    assert len(pauses) >= 3, pauses
    assert pauses[0] >= 0.95 and pauses[1] >= 1.95 and pauses[2] >= 3.95, pauses
    assert "resending what is still unacknowledged" in a.log_text()

    b.start()
    wait_for(lambda: [m["id"] for m in b.inbox()] == [mid], scaled(30), "the message at beta")
    wait_for(lambda: a.outbox_states() == {mid: "delivered"}, scaled(30), "the receipt at alpha")
    wait_for(lambda: paths(a, "beta")["email"]["queued"] == 0 and
             paths(b, "alpha")["email"]["queued"] == 0 and
             not paths(a, "beta")["email"]["mailing"] and
             not paths(b, "alpha")["email"]["mailing"] and
             not srv.new_mail("alpha") and not srv.new_mail("beta"), scaled(30),
             "everything acknowledged both ways")
    counts = (mails_sent(a, "beta"), mails_sent(b, "alpha"))
    time.sleep(4)
    assert (mails_sent(a, "beta"), mails_sent(b, "alpha")) == counts
    assert srv.new_mail("alpha") == [] and srv.new_mail("beta") == []
    assert [m["id"] for m in b.inbox()] == [mid]
    assert proxy.accepted == 0
