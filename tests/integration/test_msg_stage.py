"""Staging (docs/messages.md, "Staging"): a large attachment's bytes travel
while `hotline send` is still copying and hashing it into out/, and the
receiver adopts them when the signed ITEM comes.  Real daemons."""
import os
import signal
import subprocess
import time

import pytest

from msgutil import net, scaled, wait_for  # noqa: F401  (fixture)
from test_msg_transfer import make_file, inbox_entry

MiB = 1 << 20


def staged(st, peer):
    return st.peer_state(peer)["delivery"]["staged"]


def staging_files(st):
    d = os.path.join(st.dir, "in", ".staging")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_a_large_document_is_staged_while_copied(net, tmp_path):
    size = 128 * MiB + 12345
    a, b, _ = net.pair()
    doc = tmp_path / "doc.bin"
    digest = make_file(doc, size)
    mid = a.send("pyongyang", "the document", subject="document", attach=[str(doc)],
                 wait=int(scaled(120)))
    d = inbox_entry(b, mid)
    assert d is not None and d["attachments"][0]["hash"] == digest
    assert d["attachments"][0]["size"] == size
    with open(os.path.join(b.dir, "in", mid, "0"), "rb") as f:
        got = f.read()
    assert len(got) == size and got == doc.read_bytes()
    assert [m["id"] for m in b.inbox()].count(mid) == 1
    sa, sb = staged(a, "pyongyang"), staged(b, "washington")
    print(f"sender staged {sa['out_bytes'] / MiB:.1f} MiB, receiver adopted "
          f"{sb['adopted_bytes'] / MiB:.1f} MiB")
    assert sa["out_bytes"] > 0, "nothing was staged"
    assert sb["adopted_bytes"] > 0 and sb["adopted_bytes"] <= sb["in_bytes"]
    assert sb["adopted_bytes"] < size
    assert "staged bytes adopted" in b.log_text()
    assert staging_files(b) == []


def test_no_staging_when_turned_off(net, tmp_path):
    size = 16 * MiB
    a, b, _ = net.pair()
    doc = tmp_path / "doc.bin"
    digest = make_file(doc, size)
    env = dict(os.environ, HOTLINE_NO_STAGE="1")
    p = a.cmd("send", "pyongyang", "-a", str(doc), f"--wait={int(scaled(60))}", "text", env=env)
    mid = p.stdout.split()[0]
    assert inbox_entry(b, mid)["attachments"][0]["hash"] == digest
    assert staged(a, "pyongyang")["out_bytes"] == 0
