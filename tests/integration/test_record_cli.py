"""The record (docs/record.md) end to end: two real stations exchange
messages over their daemons, each exports its record of the link, and a
third party with no station checks each with both cards.  The files are
also read by an independent reader written here from docs/record.md
(Python's hashlib and cryptography, not hotline's code): it checks the
seal and every item's signature, and that the two stations' records hold
the same signed items.
"""

import base64
import hashlib
import os
import struct
import subprocess

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from station import HOTLINE_BIN, parse_card, scaled

SEAL_CTX = b"hotline/1 record seal\x00"
ITEM, REFUSED, ABSENT = 1, 2, 3


# ------------------------------------------------------- an independent reader

class Reader:
    def __init__(self, data):
        self.d = data
        self.o = 0

    def take(self, n):
        assert self.o + n <= len(self.d), f"cut short at byte {self.o}"
        b = self.d[self.o:self.o + n]
        self.o += n
        return b

    def u(self, n):
        return int.from_bytes(self.take(n), "big")


def read_record(data):
    """The record as dicts, per docs/record.md section 2; asserts the layout."""
    r = Reader(data)
    assert r.take(8) == b"HLRECORD"
    assert r.u(1) == 1 and r.u(1) == 0
    rec = {"exported_at": r.u(8), "cards": [], "chains": [], "contents": [],
           "attachments": [], "evidence": []}
    for _ in range(2):
        rec["cards"].append(parse_card(r.take(r.u(2)).decode()))
    for _ in range(2):
        entries = []
        for _ in range(r.u(4)):
            t = r.u(1)
            if t == ITEM:
                entries.append((ITEM, r.take(r.u(2))))
            elif t == REFUSED:
                entries.append((REFUSED, r.take(32), r.u(1)))
            else:
                assert t == ABSENT, f"entry type {t}"
                entries.append((ABSENT,))
        rec["chains"].append(entries)
    for _ in range(r.u(4)):
        chain, seq, salt = r.u(1), r.u(8), r.take(32)
        subject = r.take(r.u(2))
        body = r.take(r.u(4))
        rec["contents"].append((chain, seq, salt, subject, body))
    for _ in range(r.u(4)):
        chain, seq, index, size = r.u(1), r.u(8), r.u(1), r.u(8)
        rec["attachments"].append((chain, seq, index, r.take(size)))
    for _ in range(r.u(4)):
        chain = r.u(1)
        rec["evidence"].append((chain, r.take(r.u(2))))
    rec["signed_len"] = r.o
    rec["seal"] = r.take(64)
    assert r.o == len(data), "bytes after the seal"
    return rec


def signing_key(card):
    return base64.b64decode(card["SigningKey"], validate=True)


def item_fields(item):
    """Context, author, counterpart, seq, prev of an encoded item (items.md)."""
    nul = item.index(b"\x00")
    p = nul + 1
    return (item[:nul].decode(), item[p:p + 32], item[p + 32:p + 64],
            int.from_bytes(item[p + 64:p + 72], "big"), item[p + 72:p + 104])


def message_id(item):
    ctx, *_ = item_fields(item)
    assert ctx == "hotline/1 message"
    p = len(ctx) + 1 + 32 + 32 + 8 + 32 + 8
    return item[p:p + 16].hex()


def attachments_of(item):
    """(name, size, hash) of each attachment a message item declares."""
    ctx, *_ = item_fields(item)
    p = len(ctx) + 1 + 32 + 32 + 8 + 32 + 8 + 16 + 1 + 8 + 32 + 32 + 8
    out = []
    for _ in range(item[p]):
        p += 1
        n = item[p]
        name = item[p + 1:p + 1 + n]
        p += 1 + n
        out.append((name.decode(), int.from_bytes(item[p:p + 8], "big"), item[p + 8:p + 40]))
        p += 39
    return out


def check_independently(data, card_a, card_b):
    """Seal, signatures, positions and links, checked without hotline."""
    rec = read_record(data)
    keys = [signing_key(c) for c in rec["cards"]]
    assert sorted(keys) == sorted([signing_key(card_a), signing_key(card_b)])
    msg = SEAL_CTX + hashlib.blake2b(data[:rec["signed_len"]], digest_size=32).digest()
    Ed25519PublicKey.from_public_bytes(keys[0]).verify(rec["seal"], msg)
    for c, entries in enumerate(rec["chains"]):
        prev = b"\x00" * 32
        for k, e in enumerate(entries, 1):
            if e[0] == ITEM:
                item = e[1]
                ctx, author, counterpart, seq, p = item_fields(item)
                assert (author, counterpart, seq) == (keys[c], keys[1 - c], k)
                if prev is not None:
                    assert p == prev, f"chain {c} entry {k} does not link"
                Ed25519PublicKey.from_public_bytes(author).verify(item[-64:], item[:-64])
                prev = hashlib.blake2b(item, digest_size=32).digest()
            elif e[0] == REFUSED:
                prev = e[1]
            else:
                prev = None
    return rec


# ------------------------------------------------------------------- helpers

def third_party(*args, tmp_path, check=None):
    """`hotline ARGS` as a third party: no station directory exists."""
    env = dict(os.environ)
    env["HOTLINE_DIR"] = str(tmp_path / "no-station-here")
    p = subprocess.run([HOTLINE_BIN] + [str(a) for a in args], capture_output=True,
                       text=True, env=env, cwd=str(tmp_path), timeout=scaled(60))
    if check is not None:
        assert p.returncode == check, f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    assert not os.path.exists(env["HOTLINE_DIR"])
    return p


def write_cards(tmp_path, *stations):
    paths = []
    for st in stations:
        path = tmp_path / f"{st.name}.card"
        path.write_text(st.card_text())
        paths.append(path)
    return paths


def send(st, peer, *args):
    p = st.cmd("send", peer, "--wait=%d" % int(scaled(30)), *args)
    return p.stdout.splitlines()[0]   # the id; then "delivered to ..."


def exchange(tmp_path, a, b):
    """A small history: messages both ways, one with an attachment, each
    acknowledged, so both stations end up holding both chains whole."""
    doc = tmp_path / "treaty.txt"
    doc.write_bytes(b"Article 1. The line stays open.\n" * 50)
    ids = {
        "a1": send(a, b.name, "-p", "flash", "-s", "Proposal", "Talks on the 28th."),
        "b1": send(b, a.name, "-s", "Reply", "Considering it."),
        "a2": send(a, b.name, "-s", "Treaty text", "-a", str(doc), "See attached."),
        "b2": send(b, a.name, "-p", "immediate", "-s", "Accepted", "The 28th it is."),
        "a3": send(a, b.name, "-s", "Private", "A note for the record only."),
    }
    return ids, doc


# --------------------------------------------------------------------- tests

def test_export_verify_show_at_both_stations(stations, tmp_path):
    a, b, _ = stations.pair()
    ids, doc = exchange(tmp_path, a, b)
    card_a, card_b = write_cards(tmp_path, a, b)
    rec_a, rec_b = tmp_path / "a.rec", tmp_path / "b.rec"
    out = a.cmd("record", "export", b.name, "-o", rec_a, "--with-attachments").stdout
    assert "1 attachment(s)" in out, out
    b.cmd("record", "export", a.name, "-o", rec_b)
    assert oct(os.stat(rec_a).st_mode & 0o777) == "0o600"

    for path, exporter in ((rec_a, a), (rec_b, b)):
        for cards in ((card_a, card_b), (card_b, card_a)):
            p = third_party("record", "verify", path, "--card", cards[0], "--card", cards[1],
                            tmp_path=tmp_path, check=0)
            assert f"verified: exported by {exporter.name}" in p.stdout, p.stdout
            assert "5 message(s) disclosed, 0 withheld" in p.stdout, p.stdout

    ra = check_independently(rec_a.read_bytes(), a.card(), b.card())
    rb = check_independently(rec_b.read_bytes(), b.card(), a.card())
    # The two records hold the same signed items: A's chain in A's record is
    # A's chain in B's record, item for item, and the other way round.
    assert ra["chains"][0] == rb["chains"][1]
    assert ra["chains"][1] == rb["chains"][0]
    assert len(ra["chains"][0]) >= 3 and len(rb["chains"][0]) >= 2
    sent_by_a = {message_id(e[1]) for e in ra["chains"][0]
                 if e[0] == ITEM and item_fields(e[1])[0] == "hotline/1 message"}
    assert sent_by_a == {ids["a1"], ids["a2"], ids["a3"]}
    # The attachment's bytes are in A's record (asked for), not in B's.
    data = doc.read_bytes()
    assert [x[3] for x in ra["attachments"]] == [data]
    assert rb["attachments"] == []

    show = third_party("record", "show", rec_a, tmp_path=tmp_path, check=0).stdout
    for want in ("Record of the link between washington and pyongyang",
                 "Checked against the two cards inside it",
                 f"washington -> pyongyang  #1  message FLASH  {ids['a1']}",
                 "Subject:  Proposal", "| Talks on the 28th.",
                 "Receipt:  pyongyang's #", "pyongyang -> washington",
                 "message IMMEDIATE", "Subject:  Accepted",
                 "Attached: treaty.txt (1600 bytes", "receipt: acknowledges"):
        assert want in show, f"show lacks {want!r}:\n{show}"
    # A's receipts name B's messages: every message of B shows its receipt.
    assert show.count("Receipt:  none in this record") <= 1, show
    # A third party checks the disclosed document with standard tools: its
    # SHA-256, as sha256sum prints it, is the hash in the signed item (read
    # here without hotline) and the one `record show` prints.
    digest = subprocess.run(["sha256sum", str(doc)], capture_output=True, text=True,
                            check=True).stdout.split()[0]
    declared = [a for e in ra["chains"][0] if e[0] == ITEM and
                item_fields(e[1])[0] == "hotline/1 message" for a in attachments_of(e[1])]
    assert declared == [("treaty.txt", len(data), bytes.fromhex(digest))]
    assert f"Attached: treaty.txt (1600 bytes, sha256 {digest})" in show, show


def test_only_discloses_the_chosen_messages(stations, tmp_path):
    a, b, _ = stations.pair()
    ids, _ = exchange(tmp_path, a, b)
    card_a, card_b = write_cards(tmp_path, a, b)
    rec = tmp_path / "only.rec"
    # One of A's own and one of B's, the second by a prefix.
    a.cmd("record", "export", b.name, "-o", rec, "--only", ids["a1"], ids["b2"][:10])
    p = third_party("record", "verify", rec, "--card", card_a, "--card", card_b,
                    tmp_path=tmp_path, check=0)
    assert "2 message(s) disclosed, 3 withheld" in p.stdout, p.stdout
    data = rec.read_bytes()
    r = check_independently(data, a.card(), b.card())
    disclosed = set()
    for chain, seq, _salt, subject, body in r["contents"]:
        disclosed.add(message_id(r["chains"][chain][seq - 1][1]))
    assert disclosed == {ids["a1"], ids["b2"]}
    for text in (b"Considering it.", b"See attached.", b"A note for the record only.",
                 b"Treaty text", b"Private"):
        assert text not in data, text
    show = third_party("record", "show", rec, tmp_path=tmp_path, check=0).stdout
    assert show.count("Subject:  (withheld)") == 3, show
    assert "Subject:  Accepted" in show and "| The 28th it is." in show

    # --only with nothing named discloses nothing, and still verifies.
    none = tmp_path / "none.rec"
    a.cmd("record", "export", b.name, "-o", none, "--only")
    p = third_party("record", "verify", none, "--card", card_a, "--card", card_b,
                    tmp_path=tmp_path, check=0)
    assert "0 message(s) disclosed, 5 withheld" in p.stdout, p.stdout

    # An id that is not on this link, or no id at all, is refused.
    p = a.cmd("record", "export", b.name, "-o", tmp_path / "x.rec", "--only", "0" * 32,
              check=False)
    assert p.returncode == 1 and "no message with id" in p.stderr, p.stderr
    assert not (tmp_path / "x.rec").exists()
    assert [f for f in os.listdir(tmp_path) if ".tmp-" in f] == []


def test_changed_byte_wrong_card_and_usage(stations, tmp_path):
    a, b, _ = stations.pair()
    send(a, b.name, "-s", "Hello", "One message.")
    c = stations("moscow")
    card_a, card_b, card_c = write_cards(tmp_path, a, b, c)
    rec = tmp_path / "a.rec"
    a.cmd("record", "export", b.name, "-o", rec)
    third_party("record", "verify", rec, "--card", card_a, "--card", card_b,
                tmp_path=tmp_path, check=0)

    # Any changed byte fails; sample positions across the file (the unit
    # tests change every byte of a record).
    data = rec.read_bytes()
    bad = tmp_path / "bad.rec"
    for pos in sorted({0, 9, 17, 40, len(data) // 3, len(data) // 2, len(data) - 65,
                       len(data) - 1}):
        forged = bytearray(data)
        forged[pos] ^= 0x01
        bad.write_bytes(bytes(forged))
        p = third_party("record", "verify", bad, "--card", card_a, "--card", card_b,
                        tmp_path=tmp_path, check=1)
        assert p.stderr.startswith("hotline record verify: "), p.stderr
        assert len(p.stderr.strip().splitlines()) == 1, p.stderr

    # A wrong card, whichever place it takes.
    p = third_party("record", "verify", rec, "--card", card_a, "--card", card_c,
                    tmp_path=tmp_path, check=1)
    assert "match neither card given" in p.stderr, p.stderr
    third_party("record", "verify", rec, "--card", card_c, "--card", card_b,
                tmp_path=tmp_path, check=1)

    # show works without a station, and fails (after printing) on a forgery.
    forged = bytearray(data)
    forged[len(data) // 2] ^= 0x01
    bad.write_bytes(bytes(forged))
    p = third_party("record", "show", bad, tmp_path=tmp_path, check=1)
    assert "WARNING: this record does NOT verify" in p.stdout

    # Usage errors exit 2; --help exits 0.
    third_party("record", "verify", rec, "--card", card_a, tmp_path=tmp_path, check=2)
    third_party("record", "frobnicate", tmp_path=tmp_path, check=2)
    third_party("record", "show", tmp_path=tmp_path, check=2)
    assert "record verify FILE" in third_party("record", "--help", tmp_path=tmp_path,
                                               check=0).stdout
    third_party("record", "show", tmp_path / "missing.rec", tmp_path=tmp_path, check=1)
    p = a.cmd("record", "export", "nobody", "-o", tmp_path / "n.rec", check=False)
    assert p.returncode == 1 and "no peer named 'nobody'" in p.stderr


def test_record_before_any_exchange(stations, tmp_path):
    a, b, _ = stations.pair(start=False)
    card_a, card_b = write_cards(tmp_path, a, b)
    rec = tmp_path / "empty.rec"
    out = a.cmd("record", "export", b.name, "-o", rec).stdout
    assert "0 entries of washington, 0 of pyongyang" in out, out
    third_party("record", "verify", rec, "--card", card_b, "--card", card_a,
                tmp_path=tmp_path, check=0)
    show = third_party("record", "show", rec, tmp_path=tmp_path, check=0).stdout
    assert "exchanged nothing" in show


def test_checks_and_agreements_in_the_record(stations, tmp_path):
    import json

    from station import wait_for

    a, b, _ = stations.pair()
    card_a, card_b = write_cards(tmp_path, a, b)
    assert a.cmd("check", b.name, "--timeout", str(int(scaled(20)))).returncode == 0
    doc = tmp_path / "treaty.txt"
    doc.write_bytes(b"Article 1. The line is tested twice a day.\n" * 100)
    aid = a.cmd("agree", "propose", b.name, doc).stdout.strip()

    def listed(st):
        return {g["id"]: g for g in json.loads(st.cmd("agree", "list", "--json").stdout)}
    wait_for(lambda: listed(b).get(aid, {}).get("document") == "here", scaled(15),
             "the proposal and its document at pyongyang")
    b.cmd("agree", "sign", aid, "--yes")
    wait_for(lambda: listed(a)[aid]["state"] == "signed_by_both", scaled(15),
             "washington to hold pyongyang's countersign")

    for st, other, card_x, card_y in ((a, b, card_a, card_b), (b, a, card_b, card_a)):
        rec = tmp_path / f"{st.name}.rec"
        st.cmd("record", "export", other.name, "-o", rec, "--with-attachments")
        p = third_party("record", "verify", rec, "--card", card_y, "--card", card_x,
                        tmp_path=tmp_path, check=0)
        assert f"exported by {st.name}" in p.stdout, p.stdout
        check_independently(rec.read_bytes(), st.card(), other.card())
    show = third_party("record", "show", tmp_path / "washington.rec", tmp_path=tmp_path,
                       check=0).stdout
    for want in ("line check", "machine mode; the link was up when it was made",
                 "Answer:   pyongyang's #", "(by the station)",
                 f"agreement proposed  {aid}", "Document: treaty.txt (4300 bytes",
                 "Countersigned by pyongyang: #", "countersign of washington's agreement #",
                 "Attached: treaty.txt (4300 bytes"):
        assert want in show, f"show lacks {want!r}:\n{show}"


def test_a_third_party_needs_no_home_at_all(tmp_path):
    """`record verify` and `record show` by someone with no station, no
    HOTLINE_DIR and no HOME; commands that need a station say so (exit 2)."""
    golden = os.path.join(os.path.dirname(__file__), "..", "golden", "record")
    env = {k: v for k, v in os.environ.items() if k not in ("HOME", "HOTLINE_DIR")}

    def run(*args):
        return subprocess.run([HOTLINE_BIN] + list(args), capture_output=True, text=True,
                              env=env, cwd=golden, timeout=scaled(60))

    ok = run("record", "verify", "golden.rec", "--card", "washington.card",
             "--card", "pyongyang.card")
    assert ok.returncode == 0, ok.stderr
    bad = run("record", "verify", "forged-byte.rec", "--card", "washington.card",
              "--card", "pyongyang.card")
    assert bad.returncode == 1, bad.stderr
    assert run("record", "show", "golden.rec").returncode == 0
    for args in (["inbox"], ["record", "export", "pyongyang"]):
        p = run(*args)
        assert p.returncode == 2 and "HOTLINE_DIR" in p.stderr, (args, p.stderr)
