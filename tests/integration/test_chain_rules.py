"""The chain rules hold on arrival, on every path (docs/items.md section 3,
docs/messages.md section 4).

A pinned peer with valid keys (hlpeer.py) signs items that break one rule
of the chain each: a sequence number far beyond what is contiguous, a
`prev` that does not link, a repeated `class_seq`, receipts that name a
wrong hash, go backwards, acknowledge what is not a message or acknowledge
one message twice.  Each case runs twice: over the live link and through a
courier bundle (`bundle import`).  Whatever the peer sends, afterwards:
  * the item was refused whole (a tombstone, or refused for now: nothing
    stored), or, where it proves the peer signed two different things, kept
    as equivocation evidence, never stored as a normal entry;
  * nothing is half-stored (no message item without its message row);
  * `record export` and `record verify` exit 0;
  * on the link, the session goes on: a good message after it arrives.
"""
import os


import hlpeer
from station import db, held, scaled

T = scaled(10)
FAR = 1 << 40


# ----------------------------------------------------------------- the store

def ours(st):
    """ST's own chain: {seq: (hash, encoded)}."""
    with db(st) as con:
        rows = con.execute("SELECT seq, hash, encoded FROM items WHERE dir = 0"
                           " ORDER BY seq").fetchall()
    return {s: (bytes(h), bytes(e)) for s, h, e in rows}


def evidence_count(st):
    with db(st) as con:
        return con.execute("SELECT count(*) FROM equivocations").fetchone()[0]


def half_stored(st):
    """Message items with no message row (acknowledged, never delivered)."""
    with db(st) as con:
        return con.execute("SELECT i.seq FROM items i WHERE i.dir = 1 AND i.kind = 1"
                           " AND NOT EXISTS (SELECT 1 FROM messages m WHERE"
                           " m.peer_id = i.peer_id AND m.dir = 1 AND m.seq = i.seq)"
                           ).fetchall()


def export_and_verify(drv):
    """`record export` then `record verify` exit 0; returns verify's stdout."""
    st, net = drv.st, drv.net
    rec = os.path.join(net.root, "link.rec")
    p = st.cmd("record", "export", drv.peer.me.name, "-o", rec, check=False)
    assert p.returncode == 0, f"record export failed: {p.stderr}"
    cards = []
    for name, text in (("a", st.card_text()), ("b", drv.peer.me.card())):
        path = os.path.join(net.root, f"{name}.card")
        with open(path, "w") as f:
            f.write(text)
        cards.append(path)
    p = st.cmd("record", "verify", rec, "--card", cards[0], "--card", cards[1], check=False)
    assert p.returncode == 0, f"record verify failed: {p.stdout}{p.stderr}"
    assert half_stored(st) == [], "message items stored without their message"
    return p.stdout


def send_ours(drv, n):
    """The station authors N messages to the peer; returns its chain."""
    for i in range(n):
        drv.st.send(drv.peer.me.name, f"ours {i}")
    return ours(drv.st)


# -------------------------------------------------------------------- cases

def test_far_sequence_number_signed(chain):
    first = chain.peer.compose("first", "x")
    far = chain.peer.compose("far away", "y", seq=FAR)
    assert chain.deliver([first, far]) == 0
    assert held(chain.st, FAR) is None, "an item far beyond the contiguous head was stored"
    if chain.name == "link":
        assert chain.refusal(FAR) == hlpeer.REFUSE_QUOTA, chain.peer.refusals
    export_and_verify(chain)
    chain.goes_on()
    export_and_verify(chain)


def test_far_sequence_number_undecodable(chain):
    first = chain.peer.compose("first", "x")
    junk = chain.peer.append_raw(FAR, hlpeer.undecodable_item(
        chain.peer.me.sign_pk, chain.st.signing_key, FAR, chain.peer.me.sign))
    rc = chain.deliver([first, junk])
    assert held(chain.st, FAR) is None, "a tombstone far beyond the contiguous head"
    if chain.name == "link":
        assert chain.refusal(FAR) is not None
    else:
        assert rc != 0, "a bundle with an undecodable item was imported"
    export_and_verify(chain)
    chain.goes_on()


def test_far_sequence_number_just_past_record_limits(chain):
    """2^21 positions ahead: verify used to fail (too many ABSENT)."""
    first = chain.peer.compose("first", "x")
    far = chain.peer.compose("far", "y", seq=(1 << 21) + 5)
    chain.deliver([first, far])
    assert held(chain.st, (1 << 21) + 5) is None
    export_and_verify(chain)


def test_prev_not_linking_to_our_copy_is_equivocation(chain):
    first = chain.peer.compose("first", "x")
    chain.deliver([first])
    forked = chain.peer.compose("forked", "y", prev=os.urandom(32))
    assert chain.deliver([forked]) == 0
    assert held(chain.st, forked.seq) is None, "an item that does not link was stored"
    assert evidence_count(chain.st) == 1, "the fork was not kept as evidence"
    if chain.name == "link":
        assert chain.refusal(forked.seq) == hlpeer.REFUSE_MALFORMED
    out = export_and_verify(chain)
    assert "EQUIVOCATION" in out, out
    # the position stays open for the item that does link
    chain.peer.head_seq, chain.peer.head_hash = first.seq, first.hash
    good = chain.peer.compose("linked", "z")
    assert good.seq == forked.seq
    assert chain.deliver([good]) == 0
    assert held(chain.st, good.seq) == (1, good.hash)
    export_and_verify(chain)


def test_prev_of_the_next_item_contradicts(chain):
    """Item 3 is held first; then an item 2 whose hash is not item 3's prev."""
    first = chain.peer.compose("first", "x")
    second = chain.peer.compose("second, held back", "y")
    third = chain.peer.compose("third", "z", precedence=hlpeer.FLASH)
    chain.deliver([first, third])
    other = chain.peer.compose("another second", "w", seq=2, prev=first.hash, class_seq=2)
    assert other.hash != second.hash
    chain.deliver([other])
    assert held(chain.st, 2) is None
    assert evidence_count(chain.st) == 1
    out = export_and_verify(chain)
    assert "EQUIVOCATION" in out, out
    chain.deliver([second])
    assert held(chain.st, 2) == (1, second.hash)
    export_and_verify(chain)


def test_prev_not_linking_to_a_tombstone(chain):
    """Over a refused position the link cannot prove a fork: refused."""
    first = chain.peer.compose("first", "x")
    reused = chain.peer.compose("id reused", "y", mid=hlpeer.decode_item(first.encoded).id)
    chain.deliver([first, reused])
    assert held(chain.st, 2)[0] == 0
    nolink = chain.peer.compose("third", "z", prev=os.urandom(32))
    chain.deliver([nolink])
    h = held(chain.st, 3)
    assert h is None or h[0] == 0, "an item that does not link was stored"
    assert evidence_count(chain.st) == 0
    export_and_verify(chain)


def test_repeated_class_seq(chain):
    first = chain.peer.compose("first", "x")
    again = chain.peer.compose("again", "y", class_seq=first_class(first))
    assert chain.deliver([first, again]) == 0
    h = held(chain.st, again.seq)
    assert h is not None and h[0] == 0, f"repeated class_seq not refused: {h}"
    if chain.name == "link":
        assert chain.refusal(again.seq) == hlpeer.REFUSE_MALFORMED
    export_and_verify(chain)
    chain.goes_on()


def first_class(oi):
    return hlpeer.decode_item(oi.encoded).class_seq


def test_class_seq_going_back(chain):
    a = chain.peer.compose("one", "x", class_seq=5)
    b = chain.peer.compose("two", "y", class_seq=3)
    chain.deliver([a, b])
    assert held(chain.st, b.seq)[0] == 0
    export_and_verify(chain)


def _receipt_case(chain, build):
    mine = send_ours(chain, 2)
    bad = build(chain, mine)
    assert chain.deliver([bad]) == 0
    h = held(chain.st, bad.seq)
    assert h is None or h[0] == 0, f"a receipt that breaks the rules was stored: {h}"
    if chain.name == "link":
        assert chain.refusal(bad.seq) == hlpeer.REFUSE_MALFORMED, chain.peer.refusals
    export_and_verify(chain)
    chain.goes_on()
    export_and_verify(chain)


def test_receipt_with_a_wrong_hash(chain):
    _receipt_case(chain, lambda c, mine: c.peer.author_receipt(
        [(1, os.urandom(32))], peer_seq=2, peer_hash=mine[2][0]))


def test_receipt_with_a_wrong_peer_hash(chain):
    _receipt_case(chain, lambda c, mine: c.peer.author_receipt(
        [(1, mine[1][0])], peer_seq=2, peer_hash=os.urandom(32)))


def test_receipt_naming_a_position_we_never_authored(chain):
    _receipt_case(chain, lambda c, mine: c.peer.author_receipt(
        [(1, mine[1][0])], peer_seq=7, peer_hash=os.urandom(32)))


def test_receipt_peer_seq_going_backwards(chain):
    def build(c, mine):
        ok = c.peer.author_receipt([(1, mine[1][0])], peer_seq=2, peer_hash=mine[2][0])
        assert c.deliver([ok]) == 0
        assert held(c.st, ok.seq)[0] == 2
        return c.peer.author_receipt([(2, mine[2][0])], peer_seq=1, peer_hash=mine[1][0])
    _receipt_case(chain, build)


def test_receipt_acknowledging_a_receipt(chain):
    def build(c, mine):
        # the peer's message makes the station author a receipt (its seq 3)
        m = c.peer.compose("for a receipt", "x")
        c.deliver([m])
        theirs = ours(c.st)
        kinds = {s for s in theirs if hlpeer.decode_item(theirs[s][1]).kind == "receipt"}
        assert kinds, "the station authored no receipt"
        r = min(kinds)
        head = max(theirs)
        return c.peer.author_receipt([(r, theirs[r][0])], peer_seq=head,
                                     peer_hash=theirs[head][0])
    _receipt_case(chain, build)


def test_receipt_acknowledging_one_message_twice(chain):
    def build(c, mine):
        ok = c.peer.author_receipt([(1, mine[1][0])], peer_seq=2, peer_hash=mine[2][0])
        assert c.deliver([ok]) == 0
        assert held(c.st, ok.seq)[0] == 2
        return c.peer.author_receipt([(1, mine[1][0])], peer_seq=2, peer_hash=mine[2][0])
    _receipt_case(chain, build)


def test_receipt_repeating_an_entry(chain):
    _receipt_case(chain, lambda c, mine: c.peer.author_receipt(
        [(1, mine[1][0]), (1, mine[1][0])], peer_seq=2, peer_hash=mine[2][0]))
