"""The email path (docs/bundle.md, "By email") through a real mail server
(mailutil.py: a private Postfix on 127.0.0.1): stations alpha and beta, no
daemons, each with an [Email] section (the server's SMTP URL, its own
address, its Maildir) and the other's Email address.

- `bundle mail beta` at alpha sends one MIME mail that lands in beta's
  Maildir/new: Subject "hotline bundle", the sealed bundle as a base64
  application/x-hotline-bundle attachment, nothing of the message in clear;
  the bundle it carries imports at beta (`bundle import FILE`).
- station.conf's email keys: bad values are errors naming file:line.
"""

import json
import os
from email import message_from_bytes, policy

from station import scaled, wait_for

import pytest


def bundle_of(path):
    """The bundle attached to the mail at PATH, checking the MIME layout."""
    with open(path, "rb") as f:
        raw = f.read()
    m = message_from_bytes(raw, policy=policy.default)
    assert m["Subject"] == "hotline bundle"
    assert m.get_content_type() == "multipart/mixed"
    parts = [p for p in m.iter_attachments()]
    assert len(parts) == 1, [p.get_content_type() for p in parts]
    att = parts[0]
    assert att.get_content_type() == "application/x-hotline-bundle"
    assert att["Content-Transfer-Encoding"].strip().lower() == "base64"
    assert att.get_filename() == "hotline.bundle"
    return raw, att.get_content()


def test_bundle_mail_reaches_peer_maildir(mailpair, tmp_path):
    a, b, srv = mailpair
    mid = a.cmd("send", "beta", "-s", "by mail", "secret words here").stdout.strip()
    out = a.cmd("bundle", "mail", "beta").stdout
    assert "mailed to beta@hotline.test" in out and "1 item(s)" in out
    files = wait_for(lambda: srv.new_mail("beta"), scaled(20), "the bundle mail at beta")
    assert len(files) == 1 and srv.new_mail("alpha") == []
    raw, data = bundle_of(files[0])
    assert data[:16] == b"hotline/1 bundle"
    assert b"secret words" not in raw and b"secret words" not in data
    # no copy of the sealed bundle is left in alpha's directory
    assert not [f for f in os.listdir(a.dir) if f.startswith("mail-out")]
    # the bundle it carries is a good one
    p = tmp_path / "got.bundle"
    p.write_bytes(data)
    b.cmd("bundle", "import", p)
    assert [m["id"] for m in b.inbox()] == [mid]


def test_bundle_mail_needs_email_config(stations):
    a, b, _ = stations.pair("alpha", "beta", start=False)
    r = a.cmd("bundle", "mail", "beta", check=False)
    assert r.returncode == 1 and "no [Email] section" in r.stderr
    r = a.cmd("bundle", "mail", "nosuch", check=False)
    assert r.returncode == 1 and "nosuch" in r.stderr


@pytest.mark.parametrize("line,what", [
    ("Email = not an address", "bad Email 'not an address'"),
    ("Email = a@b@c", "bad Email 'a@b@c'"),
    ("Email = <a@b.c>", "bad Email '<a@b.c>'"),
])
def test_bad_peer_email_names_line(stations, line, what):
    a, b, _ = stations.pair("alpha", "beta", start=False)
    with open(a.conf_path) as f:
        text = f.read().rstrip("\n")
    n = len(text.splitlines()) + 1
    with open(a.conf_path, "w") as f:
        f.write(text + "\n" + line + "\n")
    r = a.cmd("peer", "list", check=False)
    assert r.returncode == 1
    assert f"station.conf:{n}:" in r.stderr and what in r.stderr, r.stderr


@pytest.mark.parametrize("body,what", [
    ("SMTP = http://x\nFrom = a@b.c\nMaildir = /tmp/m\n", "bad SMTP 'http://x'"),
    ("SMTP = smtp://h:25\nFrom = a@b.c\nMaildir = rel/m\n", "bad Maildir 'rel/m'"),
    ("SMTP = smtp://h:25\nFrom = a@b.c\n", "[Email] section has no Maildir"),
    ("SMTP = smtp://h:25\nFrom = a@b.c\nMaildir = /m\n[Email]\n", "a second [Email] section"),
])
def test_bad_email_section_names_line(stations, body, what):
    a = stations("alpha")
    with open(a.conf_path) as f:
        text = f.read().rstrip("\n")
    text = text + "\n\n[Email]\n" + body
    with open(a.conf_path, "w") as f:
        f.write(text)
    lines = text.splitlines()
    # the line the message must name: the bad key's, or the (second) header's
    if what.startswith("bad "):
        key = what.split()[1]
        n = next(i for i, l in enumerate(lines, 1) if l.startswith(key + " ="))
    else:
        headers = [i for i, l in enumerate(lines, 1) if l == "[Email]"]
        n = headers[-1] if what.startswith("a second") else headers[0]
    r = a.cmd("peer", "list", check=False)
    assert r.returncode == 1
    assert f"station.conf:{n}: " in r.stderr and what in r.stderr, r.stderr


def maildir_files(srv, user, sub):
    d = os.path.join(srv.maildir(user), sub)
    return sorted(os.listdir(d))


def import_maildir(st, check=True):
    return st.cmd("bundle", "import", "--maildir", check=check)


def test_email_round_trip_exactly_once(mailpair, tmp_path):
    a, b, srv = mailpair
    att = os.urandom(120_000)
    (tmp_path / "doc.bin").write_bytes(att)
    ids = [a.cmd("send", "beta", "-s", "one", "first by mail").stdout.strip(),
           a.cmd("send", "beta", "-p", "flash", "-a", tmp_path / "doc.bin",
                 "with a document").stdout.strip(),
           a.cmd("send", "beta", "third").stdout.strip()]
    assert "3 item(s)" in a.cmd("bundle", "mail", "beta").stdout
    wait_for(lambda: srv.new_mail("beta"), scaled(20), "alpha's mail at beta")

    out = import_maildir(b).stdout
    assert "1 imported, 0 quarantined, 0 left; 3 new in the inbox" in out, out
    assert sorted(m["id"] for m in b.inbox()) == sorted(ids)
    got = json.loads(b.cmd("read", ids[1], "--json").stdout)
    assert got["attachments"][0]["size"] == len(att)
    # the mail left new/ for cur/ (after the commit), marked seen
    assert maildir_files(srv, "beta", "new") == []
    cur = maildir_files(srv, "beta", "cur")
    assert len(cur) == 1 and cur[0].endswith(":2,S")

    # receipts go back by email
    out = b.cmd("bundle", "mail", "alpha").stdout
    assert "mailed to alpha@hotline.test" in out
    wait_for(lambda: srv.new_mail("alpha"), scaled(20), "beta's receipts at alpha")
    out = import_maildir(a).stdout
    assert "3 of ours delivered" in out, out
    assert {m["id"]: m["state"] for m in a.outbox()} == {i: "delivered" for i in ids}

    # The same mail delivered again (a resend, a duplicate in transit):
    # stored once.
    with open(os.path.join(srv.maildir("beta"), "cur", cur[0]), "rb") as f:
        raw = f.read()
    import smtplib
    with smtplib.SMTP("127.0.0.1", srv.port, timeout=30) as s:
        s.sendmail(srv.address("alpha"), [srv.address("beta")], raw)
    wait_for(lambda: srv.new_mail("beta"), scaled(20), "the duplicate mail at beta")
    out = import_maildir(b).stdout
    assert "1 imported" in out and "0 new in the inbox" in out, out
    assert sorted(m["id"] for m in b.inbox()) == sorted(ids)
    # a pickup with nothing new does nothing
    assert "0 mail(s)" in import_maildir(b).stdout
    # all acknowledged: alpha's next bundle carries nothing
    assert "0 item(s)" in a.cmd("bundle", "mail", "beta").stdout


def bundle_mail(srv, frm, to, data, subtype="x-hotline-bundle"):
    from email.message import EmailMessage
    m = EmailMessage()
    m["From"] = srv.address(frm)
    m["To"] = srv.address(to)
    m["Subject"] = "hotline bundle"
    m.set_content("a bundle\n")
    m.add_attachment(data, maintype="application", subtype=subtype, filename="hotline.bundle")
    return m


def test_junk_and_forged_quarantined(mailpair, stations, tmp_path):
    a, b, srv = mailpair
    from email.message import EmailMessage

    # 1. junk: a plain mail
    junk = EmailMessage()
    junk["From"], junk["To"], junk["Subject"] = "x@example.org", srv.address("beta"), "hello"
    junk.set_content("buy now\n")
    srv.send(junk)
    # 2. a real bundle from alpha, one byte flipped
    a.cmd("send", "beta", "a message")
    good = tmp_path / "good.bundle"
    a.cmd("bundle", "export", "beta", "-o", good)
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0x40
    srv.send(bundle_mail(srv, "alpha", "beta", bytes(data)))
    # 3. forged: sealed by gamma, which beta never pinned
    g = stations("gamma")
    g.pin(b)
    g.cmd("send", "beta", "forged words")
    forged = tmp_path / "forged.bundle"
    g.cmd("bundle", "export", "beta", "-o", forged)
    srv.send(bundle_mail(srv, "alpha", "beta", forged.read_bytes()))
    wait_for(lambda: len(srv.new_mail("beta")) == 3, scaled(20), "three mails at beta")

    out = import_maildir(b).stdout
    assert "3 mail(s): 0 imported, 3 quarantined, 0 left" in out, out
    assert b.inbox() == []
    assert maildir_files(srv, "beta", "new") == [] and maildir_files(srv, "beta", "cur") == []
    qdir = srv.maildir("beta") + ".quarantine"
    q = sorted(os.listdir(qdir))
    mails = [f for f in q if not f.endswith(".why")]
    assert len(mails) == 3 and sorted(f + ".why" for f in mails) == sorted(set(q) - set(mails))
    whys = []
    for f in mails:
        with open(os.path.join(qdir, f + ".why")) as fh:
            whys.append(fh.read())
    assert sum("junk:" in w for w in whys) == 1, whys
    assert sum("bundle refused" in w for w in whys) == 2, whys

    # nothing harmed: the good bundle, mailed, imports
    a.cmd("bundle", "mail", "beta")
    wait_for(lambda: srv.new_mail("beta"), scaled(20), "alpha's good mail")
    out = import_maildir(b).stdout
    assert "1 imported, 0 quarantined" in out and "1 new in the inbox" in out, out
    msgs = b.inbox()
    assert len(msgs) == 1
    assert json.loads(b.cmd("read", msgs[0]["id"], "--json").stdout)["body"] == "a message"
