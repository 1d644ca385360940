"""Co-signed agreements between two daemons: `agree propose` prints an id
that the peer computes alike, `agree sign` countersigns once the document
is there, `agree list` shows the states at both stations, and both chains
hold both signed items."""

import json
import os
import re

from checks_util import store_rows
from station import scaled, wait_for


def agreements(st):
    return {g["id"]: g for g in json.loads(st.cmd("agree", "list", "--json").stdout)}


def test_propose_sign_list(daemons, tmp_path):
    a, b, _ = daemons.pair()
    doc = os.path.join(str(tmp_path), "treaty.txt")
    with open(doc, "wb") as f:
        f.write(b"Article 1. The line is tested twice a day.\n" * 2000)
    p = a.cmd("agree", "propose", "bravo", doc)
    aid = p.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", aid), p.stdout
    g = agreements(a)[aid]
    assert g["state"] == "signed_by_us" and g["proposed_by"] == "us" and g["name"] == "treaty.txt"
    assert g["size"] == os.path.getsize(doc)
    # The same id at bravo, where it waits for bravo's signature.
    gb = wait_for(lambda: agreements(b).get(aid, {}).get("document") == "here" and agreements(b)[aid],
                  scaled(15), "the proposal and its document at bravo")
    assert gb["state"] == "proposed" and gb["proposed_by"] == "them" and gb["hash"] == g["hash"]
    assert "proposed" in b.cmd("agree", "list").stdout
    out = b.cmd("agree", "sign", aid[:12], "--yes").stdout
    # What is signed is shown first (name, size, hash, proposer), then the result.
    assert f"Agreement:  {aid}" in out and "by alpha" in out and g["hash"] in out, out
    last = out.splitlines()[-1]
    assert last.startswith(f"signed agreement {aid} with alpha: treaty.txt") and "signed by both" in last
    assert agreements(b)[aid]["state"] == "signed_by_both"
    wait_for(lambda: agreements(a)[aid]["state"] == "signed_by_both", scaled(10),
             "alpha to see bravo's countersign")
    assert "signed by both" in a.cmd("agree", "list").stdout
    # Signed twice: refused; a proposal of ours: refused.
    assert b.cmd("agree", "sign", aid, "--yes", check=False).returncode == 1
    assert a.cmd("agree", "sign", aid, "--yes", check=False).returncode == 1
    # Both chains, at both stations: alpha's AGREEMENT (kind 5) whose hash is
    # the id, and bravo's COUNTERSIGN (kind 6).
    for st in (a, b):
        kinds = store_rows(st, "SELECT dir, kind, hex(hash) FROM items WHERE kind IN (5, 6)")
        mine, theirs = (0, 1) if st is a else (1, 0)
        assert (mine, 5, aid.upper()) in kinds
        assert any(k[0] == theirs and k[1] == 6 for k in kinds)


def test_sign_waits_for_the_document(daemons, tmp_path):
    a, b, _ = daemons.pair(start=False)
    a.start()           # bravo is down: nothing arrives
    doc = os.path.join(str(tmp_path), "memo.txt")
    with open(doc, "w") as f:
        f.write("memo\n")
    aid = a.cmd("agree", "propose", "bravo", doc).stdout.strip()
    assert agreements(a)[aid]["state"] == "signed_by_us"
    p = b.cmd("agree", "sign", aid, "--yes", check=False)
    assert p.returncode == 1 and "no agreement" in p.stderr
    assert b.cmd("agree", "list").stdout == "no agreements\n"
    b.start()
    wait_for(lambda: aid in agreements(b) and agreements(b)[aid]["document"] == "here",
             scaled(15), "the proposal at bravo")
    b.cmd("agree", "sign", aid, "--yes")
    wait_for(lambda: agreements(a)[aid]["state"] == "signed_by_both", scaled(10), "signed by both")


def test_agree_usage(daemons):
    a = daemons("alpha")
    assert a.cmd("agree", check=False).returncode == 2
    assert a.cmd("agree", "frobnicate", check=False).returncode == 2
    assert a.cmd("agree", "--help").returncode == 0
    p = a.cmd("agree", "propose", "nobody", "/etc/hostname", check=False)
    assert p.returncode == 1 and "no peer named 'nobody'" in p.stderr
    p = a.cmd("agree", "sign", "zz", "--yes", check=False)
    assert p.returncode == 1
