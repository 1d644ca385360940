"""The email tests' real mail server (mailutil.py) works: a private Postfix
on a free 127.0.0.1 port takes a mail by SMTP (Python's smtplib) and
delivers it into the addressed mailbox's Maildir/new, and only there; a
recipient it does not know is refused at RCPT time, delivering nothing."""

import smtplib
import uuid
from email import message_from_bytes
from email.message import EmailMessage

import pytest

from station import scaled, wait_for


def test_mail_reaches_the_right_maildir(mailserver):
    srv = mailserver("alpha", "beta")
    assert srv.new_mail("alpha") == [] and srv.new_mail("beta") == []
    token = uuid.uuid4().hex
    m = EmailMessage()
    m["From"] = srv.address("alpha")
    m["To"] = srv.address("beta")
    m["Subject"] = f"harness {token}"
    m.set_content(f"body {token}\n")
    srv.send(m)
    files = wait_for(lambda: srv.new_mail("beta"), scaled(20), "the mail in beta's Maildir/new")
    assert len(files) == 1
    with open(files[0], "rb") as f:
        got = message_from_bytes(f.read())
    assert got["Subject"] == f"harness {token}"
    assert token in got.get_payload()
    assert srv.new_mail("alpha") == []


def test_unknown_recipient_refused(mailserver):
    srv = mailserver("alpha", "beta")
    m = EmailMessage()
    m["From"] = srv.address("alpha")
    m["To"] = "nobody-here@hotline.test"
    m["Subject"] = "nowhere"
    m.set_content("x\n")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        srv.send(m)
    assert srv.new_mail("alpha") == [] and srv.new_mail("beta") == []
