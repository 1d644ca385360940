"""Self-tests of hlpeer.py, the independent Python implementation of the
messages protocol that the other message tests use as a peer.  They need no
hotline binary: two hlpeer stations talk to each other over a real TCP
connection with a real Noise IK handshake, and the item rules of
docs/items.md are checked one by one, each with a forgery that must fail.
"""
import os
import struct
import threading

import pytest

import hlpeer
from hlpeer import Attachment, ProtocolError


def pair_of_peers():
    a, b = hlpeer.Identity("alpha"), hlpeer.Identity("bravo")
    pa, pb = hlpeer.Peer(a, b.sign_pk), hlpeer.Peer(b, a.sign_pk)
    lst = hlpeer.Listener()
    got = {}

    def accept():
        got["s"] = lst.accept(b, expect_static=a.noise_pk)
    t = threading.Thread(target=accept)
    t.start()
    pa.dial(lst.port, b.noise_pk)
    t.join(10)
    lst.close()
    pb.attach(got["s"])
    return pa, pb


def pump_both(pa, pb, until, what, timeout=20):
    import time
    deadline = time.monotonic() + timeout
    while not until():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pa.poll(0.02)
        pb.poll(0.02)


def test_two_hlpeers_deliver_messages_with_parts_and_receipts():
    pa, pb = pair_of_peers()
    try:
        big_body = os.urandom(100_000)          # over the inline limit: part 0
        atts = [Attachment("empty.bin", b""), Attachment("data.bin", os.urandom(200_000)),
                Attachment("ünïcode name.txt", b"hello\n")]
        m1 = pa.compose("first", "hello", precedence=hlpeer.ROUTINE)
        m2 = pa.compose("second", big_body, attachments=atts, precedence=hlpeer.ROUTINE)
        m3 = pa.compose("flash", "urgent", precedence=hlpeer.FLASH)
        for m in (m1, m2, m3):
            pa.send_message(m)
        pump_both(pa, pb, lambda: {1, 2, 3} <= set(pa.delivered), "receipts for 3 messages")
        assert pb.violations == [] and pa.violations == []
        got = {m.item.seq: m for m in pb.visible_messages()}
        assert got[1].subject == b"first" and got[1].body == b"hello"
        assert got[2].body == big_body
        assert [got[2].attachment_data(i) for i in range(3)] == [a.data for a in atts]
        assert got[3].item.precedence == hlpeer.FLASH
        # receipts are items of B's chain, acknowledged by A
        pump_both(pa, pb, lambda: pb.head_seq in pb.acked, "A's ACK of B's receipts")
    finally:
        pa.close()
        pb.close()


def test_hlpeer_receiver_notices_forgeries():
    pa, pb = pair_of_peers()
    try:
        pa.send_message(pa.compose("ok", "x"))
        bad = pa.compose("bad sig", "y", tamper_sig=True)
        pa.send_message(bad)
        other = hlpeer.Identity("charlie")
        pa.send_message(pa.compose("not for you", "z", counterpart=other.sign_pk))
        pa.send_message(pa.compose("lying subject", "w", wire_subject=b"changed"))
        pump_both(pa, pb, lambda: len(pb.violations) >= 3, "three violations seen")
        text = " ".join(pb.violations)
        assert "signature" in text and "counterpart" in text and "subject" in text
        assert [m.item.seq for m in pb.visible_messages()] == [1]
    finally:
        pa.close()
        pb.close()


def _item(**kw):
    me, them = hlpeer.Identity(), hlpeer.Identity()
    p = hlpeer.Peer(me, them.sign_pk)
    return me, them, p.compose(**kw).encoded


def test_item_roundtrip_and_signature():
    me, them, enc = _item(subject="s", body="b", attachments=[Attachment("a.txt", b"1")])
    it = hlpeer.open_item(enc, me.sign_pk, them.sign_pk)
    assert it.kind == "message" and it.seq == 1 and it.prev == bytes(32)
    assert it.attachments[0][0] == b"a.txt"
    # every single-bit change of the signed bytes breaks the signature
    for pos in (0, 20, 60, 100, len(enc) - 65, len(enc) - 1):
        forged = bytearray(enc)
        forged[pos] ^= 0x40
        with pytest.raises(ProtocolError):
            hlpeer.open_item(bytes(forged), me.sign_pk, them.sign_pk)
    with pytest.raises(ProtocolError):
        hlpeer.open_item(enc, them.sign_pk, me.sign_pk)


@pytest.mark.parametrize("name", [b"../../etc/x", b"a/b", b".", b"..", b"", b"x\x00y",
                                  b"esc\x1b[2J", b"bell\x07", b"c1\xc2\x9b", b"\xff\xfe"])
def test_item_rejects_forbidden_attachment_names(name):
    me, them, enc = _item(subject="s", body="b", attachments=[Attachment("ok", b"1")],
                          raw_names=[name])
    with pytest.raises(ProtocolError):
        hlpeer.decode_item(enc)


def test_item_structural_rules():
    me, them = hlpeer.Identity(), hlpeer.Identity()
    p = hlpeer.Peer(me, them.sign_pk)
    enc = p.compose(subject="s", body="b").encoded
    with pytest.raises(ProtocolError):            # bytes left over
        hlpeer.decode_item(enc + b"\0")
    with pytest.raises(ProtocolError):            # truncated
        hlpeer.decode_item(enc[:-1])
    with pytest.raises(ProtocolError):            # seq 0
        hlpeer.decode_item(p.compose(subject="s", seq=0).encoded)
    with pytest.raises(ProtocolError):            # seq 1 with a prev
        hlpeer.decode_item(p.compose(subject="s", seq=1, prev=b"\1" * 32).encoded)
    with pytest.raises(ProtocolError):            # precedence 4
        bad = bytearray(enc)
        off = len(b"hotline/1 message\0") + 32 + 32 + 8 + 32 + 8 + 16
        bad[off] = 4
        hlpeer.decode_item(bytes(bad))
    with pytest.raises(ProtocolError):            # unknown context
        hlpeer.decode_item(b"hotline/1 other\0" + enc[18:])


def test_records_roundtrip():
    assert hlpeer.parse_ack(hlpeer.rec_ack(5, [(7, 9), (12, 12)])) == (5, [(7, 9), (12, 12)])
    with pytest.raises(ProtocolError):
        hlpeer.parse_ack(hlpeer.rec_ack(5, [(5, 9)]))
    with pytest.raises(ProtocolError):
        hlpeer.parse_ack(hlpeer.rec_ack(5, [(9, 7)]))
    e = [(3, 0, 65500), (3, 2, 0)]
    assert hlpeer.parse_resume(hlpeer.rec_resume(e)) == e
    r = hlpeer.rec_refuse(4, b"h" * 32, 5, b"why")
    assert hlpeer.parse_refuse(r) == (4, b"h" * 32, 5, b"why")
    c = hlpeer.rec_chunk(1, 2, 3, b"data")
    assert hlpeer.parse_chunk(c) == (1, 2, 3, b"data")
    assert struct.unpack(">Q", c[:8])[0] == 1 and len(c) == hlpeer.CHUNK_HDR_LEN + 4
    salt = os.urandom(32)
    assert hlpeer.decode_content(hlpeer.encode_content(salt, b"subj", True, b"body"), 4) == \
        (salt, b"subj", True, b"body")
    assert hlpeer.decode_content(hlpeer.encode_content(salt, b"", False), 40000) == \
        (salt, b"", False, None)
