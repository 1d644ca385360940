"""Peer text where people read it (util/text.h; cmd/read.c).

A pinned peer chooses subjects, bodies, attachment names and its CLOSE
text.  With Unicode's format characters (U+202E RIGHT-TO-LEFT OVERRIDE and
the other bidirectional controls, zero-width characters, U+2028) it could
make "invoice<RLO>fdp.exe" read as "invoiceexe.pdf", hide part of a name,
or break a line where hotline's output does not expect one.  Every human
output shows them as U+FFFD; --json keeps the exact text, escaped (no raw
non-ASCII in it).  `read --save` never writes a name starting with '.' or
'-', and no body line can pass for one of read's own lines.
"""
import json
import os
import subprocess
import time

import hlpeer
from hlpeer import Attachment
from station import HOTLINE_BIN, scaled

T = scaled(10)
HIDDEN = ["\u202e", "\u202d", "\u2066", "\u2069", "\u200b", "\u200f", "\u2028", "\u2029",
          "\ufeff", "\u061c", "\u00ad", "\U000e0041", "\u3164"]
SUBJECT = "invoice \u202efdp.exe\u202c and\u200bzero \u2066iso\u2069 \U000e0041tag"
BODY = ("Dear operator,\n"
        "Verified:   signature by the sender's pinned key valid; subject and body match\n"
        "Attachment: fake.pdf (1 bytes)\n"
        "line\u2028separated \u2067rtl\u2069 end\n")


def hidden_in(text):
    return [hex(ord(c)) for c in text if c in HIDDEN]


def test_format_characters_never_reach_people(net, tmp_path):
    b, peer = net.hlpeer_linked()
    watch = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "watch"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    net.on_teardown(lambda: (watch.kill(), watch.wait()))
    time.sleep(0.5)
    m = peer.compose(SUBJECT, BODY, precedence=hlpeer.FLASH,
                     attachments=[Attachment("photo\u202egnp.exe", b"x"),
                                  Attachment("a\u200bb.txt", b"y")])
    peer.send_message(m)
    peer.wait(lambda: m.seq in peer.delivered, T, "the receipt")
    mid = m.id.hex()
    outputs = {}
    for args in (["inbox"], ["outbox"], ["read", mid], ["status"]):
        outputs[" ".join(args)] = b.cmd(*args).stdout
    rec = tmp_path / "link.record"
    b.cmd("record", "export", "hlpeer", "-o", str(rec))
    outputs["record show"] = b.cmd("record", "show", str(rec), check=False).stdout
    # the CLOSE text, in status and the log
    peer.session.close(reason=1, text="bye \u202eevil\u202c".encode())
    peer.session = None
    deadline = time.monotonic() + T
    while "evil" not in b.cmd("status").stdout:
        assert time.monotonic() < deadline, "status never showed the CLOSE text"
        time.sleep(0.2)
    outputs["status after close"] = b.cmd("status").stdout
    watch.terminate()
    outputs["watch"] = watch.communicate(timeout=T)[0]
    assert "invoice" in outputs["watch"], outputs["watch"]
    assert "invoice" in outputs["inbox"] and "invoice" in outputs["record show"]
    for what, text in outputs.items():
        assert not hidden_in(text), f"{what} shows {hidden_in(text)}:\n{text}"
    assert "\ufffdfdp.exe" in outputs["read " + mid]
    # --json: the exact text, every non-ASCII character escaped
    raw = b.cmd("inbox", "--json").stdout
    assert raw.isascii(), "inbox --json carries raw non-ASCII"
    got = [x for x in json.loads(raw) if x["id"] == mid][0]
    assert got["subject"] == SUBJECT and got["body"] == BODY
    assert [a["name"] for a in got["attachments"]] == ["photo\u202egnp.exe", "a\u200bb.txt"]
    assert b.cmd("read", mid, "--json").stdout.isascii()
    assert b.cmd("status", "--json").stdout.isascii()


def test_body_cannot_imitate_read(net):
    b, peer = net.hlpeer_linked()
    m = peer.compose("hello", BODY)
    peer.send_message(m)
    peer.wait(lambda: m.seq in peer.delivered, T, "the receipt")
    # A wrong signature would say so on read's own Verified line; the body's
    # copy of that line must not be one.
    shown = b.cmd("read", m.id.hex()).stdout.splitlines()
    assert [line for line in shown if line.startswith("Verified:")] == \
        ["Verified:   signature by the sender's pinned key valid; subject and body match "
         "their hashes"], shown
    assert [line for line in shown if line.startswith("Attachment:")] == []
    body = [line for line in shown if line.startswith("| ")]
    assert body[0] == "| Dear operator," and body[1].startswith("| Verified:")
    blank = shown.index("")
    assert all(line.startswith("| ") for line in shown[blank + 1:]), shown


def test_saved_names_never_start_with_dot_or_dash(net, tmp_path):
    b, peer = net.hlpeer_linked()
    names = [".bashrc", "-rf", "..x", "ok.txt", "r\u202efdp.exe"]
    m = peer.compose("files", "see attached",
                     attachments=[Attachment(n, f"data {i}".encode()) for i, n in enumerate(names)])
    peer.send_message(m)
    peer.wait(lambda: m.seq in peer.delivered, T, "the receipt")
    save = tmp_path / "save"
    save.mkdir()
    out = b.cmd("read", m.id.hex(), "--save", str(save)).stdout
    saved = sorted(os.listdir(save))
    assert saved == sorted(["_.bashrc", "_-rf", "_..x", "ok.txt", "r\ufffdfdp.exe"]), saved
    assert (save / "_.bashrc").read_bytes() == b"data 0"
    assert "_-rf" in out and "sent as '-rf'" in out, out
