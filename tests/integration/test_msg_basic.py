"""Messages between two real stations: the everyday behaviour of `send`,
`inbox`, `outbox` and `read`: what they print, and their --json fields
(docs/json.md).

Each test starts its own pair of daemons on free 127.0.0.1 ports (the `net`
fixture stops them at teardown, pass or fail) and bounds every wait.
"""
import os
import re
import subprocess

import hlpeer
import station
from station import scaled, check_message_json, rfc3339_ms

DELIVER = scaled(30)


def by_id(msgs):
    out = {}
    for m in msgs:
        assert m["id"] not in out, f"id {m['id']} listed twice"
        out[m["id"]] = m
    return out


def test_send_both_ways_same_id_and_json_fields(net):
    a, b, _ = net.pair()
    ida = a.send("pyongyang", "the", "first", "note", subject="greeting", precedence="priority")
    idb = b.send("washington", subject="reply", precedence="flash", input="line one\nline two\n")
    assert ida != idb
    a.wait_delivered([ida], DELIVER)
    b.wait_delivered([idb], DELIVER)

    out_a, in_b = by_id(a.outbox()), by_id(b.inbox())
    out_b, in_a = by_id(b.outbox()), by_id(a.inbox())
    for m in out_a.values():
        check_message_json(m, "outbox")
    for m in in_b.values():
        check_message_json(m, "inbox")
    # the same id at both stations, with the same content
    assert set(out_a) == {ida} and set(in_b) == {ida}
    assert set(out_b) == {idb} and set(in_a) == {idb}
    sent, got = out_a[ida], in_b[ida]
    assert got["body"] == sent["body"] == "the first note"   # TEXT words joined by spaces
    assert got["subject"] == sent["subject"] == "greeting"
    assert got["precedence"] == sent["precedence"] == "priority"
    assert got["peer"] == "washington" and sent["peer"] == "pyongyang"
    assert got["sent_at"] == sent["sent_at"]               # the item's time, the same item
    assert sent["state"] == "delivered"
    assert got["size"] == sent["size"] == len("the first note")
    assert rfc3339_ms(got["received_at"]) >= rfc3339_ms(got["sent_at"]) - 1000
    assert in_a[idb]["body"] == "line one\nline two\n"       # body from stdin, kept whole
    assert in_a[idb]["precedence"] == "flash"

    # read --json: one object, the same fields, verified, and it marks the message read
    unread = {m["id"] for m in b._json("inbox", "--json", "--unread")}
    assert ida in unread
    r = b.read_json(ida)
    check_message_json(r, "inbox")
    assert r["id"] == ida and r["body"] == "the first note"
    unread = {m["id"] for m in b._json("inbox", "--json", "--unread")}
    assert ida not in unread
    # a unique prefix of 8+ digits works too, and the human form names the message
    p = b.cmd("read", ida[:10])
    assert ida in p.stdout and "greeting" in p.stdout and "the first note" in p.stdout
    p = a.cmd("outbox")
    assert ida[:12] in p.stdout and "delivered" in p.stdout
    p = b.cmd("inbox")
    assert ida[:12] in p.stdout and "greeting" in p.stdout


def test_send_wait_returns_once_delivered_and_fails_clearly_when_peer_down(net):
    a, b, _ = net.pair()
    p = a.send("pyongyang", "are", "you", "there", wait=int(DELIVER), check=False)
    assert p.returncode == 0, p.stderr
    mid = p.stdout.split()[0]
    assert station.ID_RE.match(mid)
    # --wait returned: the receipt is in (no waiting needed now)
    assert a.outbox_states()[mid] == "delivered"
    assert mid in {m["id"] for m in b.inbox()}

    b.stop()
    station.wait_for(lambda: a.peer_status("pyongyang")["state"] != "connected",
                     scaled(15), "washington to see the link down")
    p = a.send("pyongyang", "hello?", wait=2, check=False)
    assert p.returncode == 1, f"send --wait with the peer down exited {p.returncode}"
    mid2 = p.stdout.split()[0]
    assert station.ID_RE.match(mid2), f"send --wait printed no id: {p.stdout!r}"
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"want one clear line on stderr, got {p.stderr!r}"
    assert mid2 in lines[0] or mid2[:12] in lines[0], f"the line does not name the message: {lines[0]!r}"
    assert re.search(r"receipt|deliver|time", lines[0], re.I), lines[0]
    assert a.outbox_states()[mid2] in ("queued", "sent")
    # it is still delivered once the peer is back
    b.start()
    a.wait_delivered([mid2], DELIVER)


def test_send_lines_one_message_per_line_in_order(net):
    a, b, _ = net.pair()
    lines = [f"line {i:03d} " + "x" * (i % 17) for i in range(120)]
    lines[7] = "unicode: Привет, 안녕하세요, 你好 ✓"
    lines[9] = "tabs\tand  spaces  "
    ids = a.send_lines("pyongyang", lines, precedence="immediate")
    assert len(set(ids)) == len(ids)
    a.wait_delivered(ids, DELIVER)
    inbox = [m for m in b.inbox() if m["id"] in set(ids)]
    assert [m["id"] for m in inbox] == ids, "inbox order is not the order sent"
    assert [m["body"] for m in inbox] == lines
    assert {m["precedence"] for m in inbox} == {"immediate"}
    assert [m["id"] for m in a.outbox()] == ids


def test_messages_queued_while_daemons_down_go_out_when_they_start(net):
    a, b, _ = net.pair(start=False)
    # neither daemon runs: send works on the store alone
    ids = [a.send("pyongyang", f"queued {i}", precedence=p)
           for i, p in enumerate(["routine", "flash", "priority"])]
    states = a.outbox_states()
    assert [states[i] for i in ids] == ["queued"] * 3
    assert b.inbox() == []
    # the receiver comes up first, then the sender: it sends what was queued
    b.start()
    a.start()
    a.wait_delivered(ids, DELIVER)
    assert {m["id"] for m in b.inbox()} == set(ids)
    # the sender up, the receiver down: queued, then delivered when it starts
    b.stop()
    more = [a.send("pyongyang", f"while down {i}") for i in range(3)]
    assert all(a.outbox_states()[i] in ("queued", "sent") for i in more)
    b.start()
    a.wait_delivered(more, DELIVER)
    assert [m["id"] for m in b.inbox()][-3:] == more


def _files(tmp):
    d = os.path.join(tmp, "files")
    os.makedirs(d)
    spec = {
        "binary.bin": os.urandom(3 * 1024 * 1024 + 7),     # many chunks, odd tail
        "empty.dat": b"",
        "all-bytes.raw": bytes(range(256)) * 129,
        "notes.txt": "plain text ✓\n".encode(),
    }
    paths = {}
    for name, data in spec.items():
        paths[name] = os.path.join(d, name)
        with open(paths[name], "wb") as f:
            f.write(data)
    return spec, paths


def test_attachments_of_any_kind_arrive_with_matching_hashes_and_save(net, tmp_path):
    a, b, _ = net.pair()
    spec, paths = _files(str(tmp_path))
    order = ["binary.bin", "empty.dat", "all-bytes.raw", "notes.txt"]
    big_body = "y" * 100_000 + "\n"      # over the inline limit: travels in chunks
    m1 = a.send("pyongyang", subject="several", attach=[paths[n] for n in order],
                input=big_body)
    m2 = a.send("pyongyang", "only an empty file", attach=[paths["empty.dat"]])
    # the originals may change the moment send returns: the copy is what goes
    with open(paths["notes.txt"], "wb") as f:
        f.write(b"changed after send")
    a.wait_delivered([m1, m2], scaled(60))

    got = by_id(b.inbox())
    sent = by_id(a.outbox())
    g = got[m1]
    assert g["body"] == big_body
    assert [x["name"] for x in g["attachments"]] == order
    for x in g["attachments"]:
        data = spec[x["name"]]
        assert x["size"] == len(data)
        assert x["hash"] == hlpeer.doc_hash(data).hex(), f"{x['name']}: hash differs"
    assert g["attachments"] == sent[m1]["attachments"]
    assert g["size"] == len(big_body) + sum(len(spec[n]) for n in order)
    assert got[m2]["attachments"] == [{"name": "empty.dat", "size": 0,
                                       "hash": hlpeer.doc_hash(b"").hex()}]

    save = tmp_path / "saved"
    save.mkdir()
    p = b.cmd("read", m1, "--save", str(save))
    assert p.returncode == 0
    assert sorted(os.listdir(save)) == sorted(order)
    for n in order:
        assert (save / n).read_bytes() == spec[n], f"saved {n} differs"
    # A document's hash is SHA-256: the standard tool checks a saved copy
    # against the signed hash that `inbox` (and `read`) show.
    out = subprocess.run(["sha256sum", "--"] + [str(save / n) for n in order],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    listed = {x["name"]: x["hash"] for x in g["attachments"]}
    assert [line.split()[0] for line in out] == [listed[n] for n in order]
    save2 = tmp_path / "saved2"
    save2.mkdir()
    b.cmd("read", m2, "--save", str(save2))
    assert os.listdir(save2) == ["empty.dat"] and (save2 / "empty.dat").read_bytes() == b""
