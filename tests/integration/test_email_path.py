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

from helpers import scaled, wait_for
from mailutil import mailserver  # noqa: F401  (the fixture)

import pytest


def inbox(st):
    return json.loads(st.cmd("inbox", "--json").stdout)


def outbox(st):
    return json.loads(st.cmd("outbox", "--json").stdout)


def add_email(st, srv, user, peer_user):
    """Gives ST's single [Peer] an Email and adds an [Email] section.
    station.conf ends with that [Peer] section (pin appended it)."""
    with open(st.conf_path) as f:
        text = f.read()
    assert text.rstrip().splitlines()[-1].split("=")[0].strip() in (
        "NoiseKey", "SigningKey", "Address", "Name"), text
    text = text.rstrip("\n") + f"\nEmail = {srv.address(peer_user)}\n"
    text += (f"\n[Email]\nSMTP = {srv.url}\nFrom = {srv.address(user)}\n"
             f"Maildir = {srv.maildir(user)}\n")
    with open(st.conf_path, "w") as f:
        f.write(text)


@pytest.fixture
def mailpair(stations, mailserver):  # noqa: F811
    a, b = stations.pair("alpha", "beta", start=False)
    srv = mailserver("alpha", "beta")
    add_email(a, srv, "alpha", "beta")
    add_email(b, srv, "beta", "alpha")
    return a, b, srv


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
    assert [m["id"] for m in inbox(b)] == [mid]


def test_bundle_mail_needs_email_config(stations):
    a, b = stations.pair("alpha", "beta", start=False)
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
    a, b = stations.pair("alpha", "beta", start=False)
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
