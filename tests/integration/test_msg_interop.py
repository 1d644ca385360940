"""hotline against hlpeer.py, an independent implementation of the messages
protocol written from the documents (docs/protocol.md, docs/items.md,
docs/messages.md).  Both directions, honest behaviour only (hostile input is
in test_msg_badinput.py):

  * what a hotline daemon sends verifies under the documents: signatures,
    chain links, class order, content and attachment hashes, receipts;
  * what hlpeer sends reaches hotline's inbox and is receipted correctly;
  * the outbox states queued -> sent -> delivered follow the peer's ACK
    and receipt;
  * a resend (same session or a new one) never makes a duplicate.
"""
import json
import os
import time

import hlpeer
from hlpeer import Attachment
from station import scaled, wait_for

T = scaled(30)


def test_hotline_messages_verify_independently(net, tmp_path):
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a)
    doc = tmp_path / "doc.pdf"
    doc_data = os.urandom(1_500_000)
    doc.write_bytes(doc_data)
    big = "z" * 40_000
    ids = [a.send("hlpeer", "first routine", subject="r1"),
           a.send("hlpeer", "flash one", subject="f1", precedence="flash"),
           a.send("hlpeer", subject="r2 with parts", attach=[str(doc)], input=big),
           a.send("hlpeer", "second routine after parts", subject="r3")]
    a.start()
    net.accept_hlpeer(a, peer, lst)
    peer.wait(lambda: len(peer.visible_messages()) == 4, T, "4 messages at hlpeer")
    assert peer.violations == [], peer.violations
    got = {m.id_hex: m for m in peer.visible_messages()}
    assert set(got) == set(ids), "message ids differ from what send printed"
    assert got[ids[0]].body == b"first routine" and got[ids[0]].subject == b"r1"
    assert got[ids[2]].body == big.encode()
    assert got[ids[2]].item.attachments[0][0] == b"doc.pdf"
    assert got[ids[2]].attachment_data(0) == doc_data
    # class order: routine 1, 2, 3 and flash 1, whatever the chain positions
    cls = {i: (got[i].item.precedence, got[i].item.class_seq) for i in ids}
    assert cls == {ids[0]: (0, 1), ids[1]: (3, 1), ids[2]: (0, 2), ids[3]: (0, 3)}
    # every chain position up to the head is held and links to the one before
    seqs = sorted(peer.in_items)
    assert seqs == list(range(1, len(seqs) + 1))
    # the receipts hlpeer authored make hotline say delivered
    a.wait_delivered(ids, T)
    # and hotline ACKs hlpeer's receipts (items of hlpeer's chain)
    peer.wait(lambda: peer.head_seq in peer.acked, T, "hotline's ACK of hlpeer's receipts")


def test_outbox_states_follow_ack_then_receipt(net):
    """queued until the ITEM went out, sent until a receipt covers it, then
    delivered (docs/messages.md section 3)."""
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a, auto_receipt=False)
    mid = a.send("hlpeer", "watch my state")
    assert a.outbox_states()[mid] == "queued"
    a.start()
    net.accept_hlpeer(a, peer, lst)
    peer.wait(lambda: len(peer.visible_messages()) == 1, T, "the message at hlpeer")
    seq = peer.visible_messages()[0].item.seq
    # ACKed (auto_ack) but no receipt: sent, not delivered
    wait_for(lambda: a.outbox_states()[mid] == "sent", scaled(10),
             "outbox state 'sent' once the ITEM went out and was ACKed")
    peer.poll(1.0)
    assert a.outbox_states()[mid] == "sent", "delivered without a receipt"
    oi = peer.author_receipt([(seq, peer.in_items[seq].hash)])
    peer.send_item(oi.seq)
    wait_for(lambda: a.outbox_states()[mid] == "delivered", scaled(10),
             "outbox state 'delivered' after the receipt")


def test_hlpeer_messages_reach_the_inbox_with_receipts(net):
    b = net.station("pyongyang")
    peer = net.hlpeer_pinned(b)
    b.start()
    net.connect_hlpeer(b, peer)
    first = peer.ack_records[0]
    assert first == (0, []), f"a fresh station's first ACK should be base 0, no ranges: {first}"
    att = [Attachment("a.bin", os.urandom(300_000)), Attachment("empty", b""),
           Attachment("ναί.txt", "text ✓".encode())]
    msgs = [peer.compose("plain", "inline body"),
            peer.compose("big body", os.urandom(50_000).hex()),          # 100 KB: part 0
            peer.compose("parts", "with attachments", attachments=att, precedence=hlpeer.PRIORITY),
            peer.compose("flash", "urgent", precedence=hlpeer.FLASH)]
    for m in msgs:
        peer.send_message(m)
    want = {m.seq for m in msgs}
    peer.wait(lambda: want <= set(peer.delivered), T, "receipts for every message")
    peer.wait(lambda: want <= peer.acked, T, "ACK of every message")
    assert peer.violations == [], peer.violations
    for r in peer.receipts:
        # a receipt is an item of b's chain on this link, signed by b, for us
        assert r.author == b.signing_key and r.counterpart == peer.me.sign_pk
        # peer_seq/peer_hash: the head of our chain as b holds it
        if r.peer_seq:
            assert peer.out[r.peer_seq].hash == r.peer_hash
    inbox = {m["id"]: m for m in b.inbox()}
    assert set(inbox) == {m.id.hex() for m in msgs}
    m3 = inbox[msgs[2].id.hex()]
    assert m3["precedence"] == "priority" and m3["peer"] == "hlpeer"
    assert [(x["name"], x["size"], x["hash"]) for x in m3["attachments"]] == \
        [(x.name.decode(), len(x.data), x.hash.hex()) for x in att]
    assert inbox[msgs[1].id.hex()]["body"] == msgs[1].parts[0].decode()
    for m in msgs:
        r = b.read_json(m.id.hex())
        assert r["verified"]["signature"] is True and r["verified"]["content"] is True, r["verified"]


def test_resends_never_duplicate(net):
    b = net.station("pyongyang")
    peer = net.hlpeer_pinned(b)
    b.start()
    net.connect_hlpeer(b, peer)
    m1 = peer.compose("once", "only once", attachments=[Attachment("x.bin", os.urandom(200_000))])
    m2 = peer.compose("twice", "inline")
    for _ in range(2):                        # the same ITEMs and CHUNKs twice in a session
        peer.send_message(m1)
        peer.send_message(m2)
    peer.wait(lambda: {1, 2} <= set(peer.delivered), T, "receipts")
    peer.close()
    # a new session: hotline's ACK at the start already covers both
    net.connect_hlpeer(b, peer)
    base, _ = peer.ack_records[-1]
    assert base >= 2, f"the new session's ACK base is {base}, want 2"
    peer.send_message(m1)                     # a resend after reconnecting
    n = len(peer.ack_records)
    peer.wait(lambda: len(peer.ack_records) > n, T, "ACK of the resend")
    ids = [m["id"] for m in b.inbox()]
    assert sorted(ids) == sorted([m1.id.hex(), m2.id.hex()]), f"inbox {ids}"
    assert len(peer.receipts) >= 1
    covered = [s for r in peer.receipts for s, _ in r.entries]
    assert sorted(covered) == [1, 2], f"each message is receipted once; receipts cover {covered}"


def _check_in_background(st, *args):
    import subprocess
    import station
    return subprocess.Popen([station.HOTLINE_BIN, "-d", st.dir, "check", "hlpeer", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_line_check_verifies_and_hlpeer_answer_settles_it(net):
    """`hotline check` sends a check item (docs/items.md 2.3) that verifies
    independently; hlpeer's answer (2.4, by the station) settles it."""
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a)
    a.start()
    net.accept_hlpeer(a, peer, lst)
    proc = _check_in_background(a, "--timeout", str(int(scaled(10))), "--json")
    net.on_teardown(proc.kill)
    try:
        peer.wait(lambda: any(i.kind == "check" for i in peer.in_other), T, "the check item")
        out, err = proc.communicate(timeout=T)
    finally:
        proc.kill()
    assert proc.returncode == 0, f"check exited {proc.returncode}: {err}"
    assert peer.violations == []
    chk = [i for i in peer.in_other if i.kind == "check"][0]
    assert chk.mode == 0 and chk.link == 1 and chk.peer_seq == 0
    res = json.loads(out)
    assert res["id"] == chk.id.hex(), "check --json names another check than the one sent"
    assert res["result"] == "ok" and res["peer"] == "hlpeer", res
    peer.wait(lambda: peer.head_seq in peer.acked, T, "hotline's ACK of the answer")


def test_line_check_without_answer_fails(net):
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a, auto_answer=False)
    a.start()
    net.accept_hlpeer(a, peer, lst)
    proc = _check_in_background(a, "--timeout", "2")
    net.on_teardown(proc.kill)
    try:
        peer.wait(lambda: any(i.kind == "check" for i in peer.in_other), T, "the check item")
        deadline = time.monotonic() + T
        while proc.poll() is None and time.monotonic() < deadline:
            peer.poll(0.1)            # keep the link alive, but do not answer
        out, err = proc.communicate(timeout=5)
    finally:
        proc.kill()
    assert proc.returncode == 1, f"check without an answer exited {proc.returncode}"
    assert len([l for l in err.splitlines() if l.strip()]) == 1, err


def test_outbox_says_sent_once_the_peer_acknowledged_the_item(net):
    """docs/messages.md section 3: "A message is `queued` until the peer has
    acknowledged holding its item (an ACK ...), `sent` until a receipt covers
    it".  hlpeer here neither ACKs nor receipts until told to."""
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a, auto_ack=False, auto_receipt=False)
    mid = a.send("hlpeer", "in flight")
    a.start()
    net.accept_hlpeer(a, peer, lst)
    peer.wait(lambda: any(m.id_hex == mid for m in peer.in_msgs.values()), T, "the ITEM")
    time.sleep(scaled(0.5))
    assert a.outbox_states()[mid] == "queued", "sent before the peer acknowledged the item"
    peer.send_ack()
    wait_for(lambda: a.outbox_states()[mid] == "sent", scaled(5),
             "outbox state 'sent' once the peer ACKed the item (no receipt yet)")
