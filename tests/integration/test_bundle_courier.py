"""The courier path (docs/bundle.md) end to end, with no daemon: two
stations made with `hotline init` pin each other's cards; A sends messages
(one with attachments, one with a body too large to travel inline); `bundle
export` at A, `bundle import` at B; B's inbox holds each exactly once, with
the attachments intact; B's receipts travel back in a bundle B exports, and
A's outbox shows them delivered.  Then what must be refused: the same
bundle again (harmless, nothing new), any byte flipped, a truncated
bundle, a bundle sealed by an unpinned station, one addressed to another
station; after each refusal nothing has been stored.  Last, the direct link
comes up and carries a new message: nothing delivered by courier is
delivered twice.
"""

import hashlib
import json
import os
import random


from station import scaled, wait_for


def inbox(st):
    return json.loads(st.cmd("inbox", "--json").stdout)


def outbox(st):
    return json.loads(st.cmd("outbox", "--json").stdout)


def send(st, peer, *args):
    return st.cmd("send", peer, *args).stdout.strip()


def export(st, peer, path):
    return st.cmd("bundle", "export", peer, "-o", path)


def import_(st, path, check=True):
    return st.cmd("bundle", "import", path, check=check)


def doc_hash(data):
    """A document's hash: SHA-256 (docs/items.md 2.1)."""
    return hashlib.sha256(data).hexdigest()


def in_files(st):
    """Every file under the station's in/ folder (attachments received)."""
    root = os.path.join(st.dir, "in")
    found = []
    for d, _, files in os.walk(root):
        found += [os.path.join(d, f) for f in files]
    return sorted(found)


def test_courier_round_trip(pair, tmp_path):
    a, b = pair
    doc = os.urandom(150_000)
    (tmp_path / "report.bin").write_bytes(doc)
    (tmp_path / "empty.txt").write_bytes(b"")
    big_body = "B" * 40_000 + "\n"
    ids = [
        send(a, "beta", "-s", "first", "the first message"),
        send(a, "beta", "-p", "flash", "-s", "doc", "-a", tmp_path / "report.bin",
             "-a", tmp_path / "empty.txt", "see attached"),
        a.cmd("send", "beta", "-s", "big", input=big_body).stdout.strip(),
    ]
    assert all(len(i) == 32 for i in ids)
    assert {m["state"] for m in outbox(a)} == {"queued"}

    ab = tmp_path / "ab.bundle"
    export(a, "beta", ab)
    data = ab.read_bytes()
    # Nothing in clear but the magic and the recipient's key id.
    assert data[:16] == b"hotline/1 bundle"
    assert b"first message" not in data and doc[:64] not in data
    assert oct(os.stat(ab).st_mode & 0o777) == "0o600"

    out = import_(b, ab).stdout
    assert "from alpha" in out
    got = {m["id"]: m for m in inbox(b)}
    assert sorted(got) == sorted(ids)
    assert got[ids[0]]["precedence"] == "routine"
    assert got[ids[1]]["precedence"] == "flash"
    read = json.loads(b.cmd("read", ids[1], "--json").stdout)
    assert read["body"] == "see attached"
    assert {(x["name"], x["size"], x["hash"]) for x in read["attachments"]} == {
        ("report.bin", len(doc), doc_hash(doc)), ("empty.txt", 0, doc_hash(b""))}
    save = tmp_path / "saved"
    save.mkdir()
    b.cmd("read", ids[1], "--save", save)
    assert (save / "report.bin").read_bytes() == doc
    big = json.loads(b.cmd("read", ids[2], "--json").stdout)
    assert big["body"] == big_body

    # Again: harmless, nothing new.
    out = import_(b, ab).stdout
    assert "0 new in the inbox" in out
    assert sorted(m["id"] for m in inbox(b)) == sorted(ids)

    # B's receipts go back by courier.
    ba = tmp_path / "ba.bundle"
    export(b, "alpha", ba)
    out = import_(a, ba).stdout
    assert "3 of ours delivered" in out
    assert {m["id"]: m["state"] for m in outbox(a)} == {i: "delivered" for i in ids}

    # Everything acknowledged both ways: the next bundles carry no items.
    ab2, ba2 = tmp_path / "ab2.bundle", tmp_path / "ba2.bundle"
    assert "0 item(s)" in export(a, "beta", ab2).stdout
    import_(b, ab2)
    assert "0 item(s)" in export(b, "alpha", ba2).stdout

    # The direct link comes up: a new message goes by TCP, nothing twice.
    a.start()
    b.start()
    a.wait_connected("beta")
    tcp_id = a.cmd("send", "beta", "--wait=%d" % scaled(20), "by the link").stdout.split()[0]
    wait_for(lambda: len(inbox(b)) == 4, scaled(20), "the TCP message at beta")
    final = [m["id"] for m in inbox(b)]
    assert sorted(final) == sorted(ids + [tcp_id])
    # and an old bundle imported after that changes nothing
    import_(b, ab)
    assert sorted(m["id"] for m in inbox(b)) == sorted(ids + [tcp_id])


def bundle_and_target(pair, tmp_path):
    """A bundle from alpha to beta with a message and an attachment, and
    beta, which has stored nothing yet."""
    a, b = pair
    (tmp_path / "att.bin").write_bytes(os.urandom(100_000))
    send(a, "beta", "-s", "one", "hello")
    send(a, "beta", "-s", "two", "-a", tmp_path / "att.bin", "with a file")
    path = tmp_path / "good.bundle"
    export(a, "beta", path)
    return a, b, path.read_bytes()


def assert_nothing_stored(b):
    assert inbox(b) == []
    assert in_files(b) == []


def test_export_names_a_short_or_missing_attachment(pair, tmp_path):
    """An attachment whose file shrank or went after it was queued: the
    export fails and names the file (its CHUNKs are built as a session's
    are), instead of sealing a bundle whose part the peer would refuse."""
    a, b = pair
    doc = os.urandom(200_000)
    (tmp_path / "doc.bin").write_bytes(doc)
    mid = send(a, "beta", "-s", "doc", "-a", tmp_path / "doc.bin", "see attached")
    path = os.path.join(a.dir, "out", mid, "0")
    assert os.path.getsize(path) == len(doc)
    with open(path, "r+b") as f:
        f.truncate(len(doc) // 2)
    p = a.cmd("bundle", "export", "beta", "-o", tmp_path / "short.bundle", check=False)
    assert p.returncode != 0
    assert "cannot read attachment" in p.stderr and "file shorter than recorded" in p.stderr
    assert f"out/{mid}/0" in p.stderr
    os.unlink(path)
    p = a.cmd("bundle", "export", "beta", "-o", tmp_path / "gone.bundle", check=False)
    assert p.returncode != 0
    assert "cannot open attachment" in p.stderr and "No such file or directory" in p.stderr
    assert f"out/{mid}/0" in p.stderr


def test_corrupt_bundle_refused(pair, tmp_path):
    a, b, data = bundle_and_target(pair, tmp_path)
    rng = random.Random(5)
    # the header, the handshake, every region of the body, the last bytes
    positions = set(range(0, 24)) | set(range(24, 130, 7)) | {len(data) - 1, len(data) - 17}
    positions |= {rng.randrange(len(data)) for _ in range(40)}
    bad = tmp_path / "bad.bundle"
    for pos in sorted(positions):
        mutated = bytearray(data)
        mutated[pos] ^= 1 << rng.randrange(8)
        bad.write_bytes(bytes(mutated))
        p = import_(b, bad, check=False)
        assert p.returncode == 1, f"byte {pos} flipped: accepted\n{p.stdout}"
        assert "refused" in p.stderr or "not a hotline bundle" in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1
    assert_nothing_stored(b)
    # the good bundle still goes in afterwards
    import_(b, tmp_path / "good.bundle")
    assert len(inbox(b)) == 2


def test_truncated_bundle_refused(pair, tmp_path):
    a, b, data = bundle_and_target(pair, tmp_path)
    # Frame boundaries: a bundle cut after a whole frame is the subtle case.
    bounds, pos = [], 24
    while pos < len(data):
        pos += 2 + int.from_bytes(data[pos:pos + 2], "big")
        bounds.append(pos)
    assert bounds[-1] == len(data)
    cuts = set(bounds[:-1]) | {0, 10, 24, 25, 60, len(data) // 2, len(data) - 1}
    cut = tmp_path / "cut.bundle"
    for n in sorted(cuts):
        cut.write_bytes(data[:n])
        p = import_(b, cut, check=False)
        assert p.returncode == 1, f"cut at {n} of {len(data)}: accepted"
    p = import_(b, cut, check=False)
    assert "truncated" in p.stderr or "end record" in p.stderr
    cut.write_bytes(data[:bounds[-2]])
    p = import_(b, cut, check=False)
    assert p.returncode == 1 and "end record" in p.stderr, p.stderr
    # bytes appended after the end are refused too
    cut.write_bytes(data + data[-100:])
    assert import_(b, cut, check=False).returncode == 1
    assert_nothing_stored(b)


def test_unpinned_sender_refused(stations, pair, tmp_path):
    a, b = pair
    c = stations("charlie")
    c.pin(b)             # charlie knows beta; beta never pinned charlie
    send(c, "beta", "-s", "spoof", "from an unknown station")
    path = tmp_path / "c.bundle"
    export(c, "beta", path)
    p = import_(b, path, check=False)
    assert p.returncode == 1
    assert "not pinned" in p.stderr, p.stderr
    assert_nothing_stored(b)


def test_bundle_for_another_station_refused(stations, pair, tmp_path):
    a, b = pair
    c = stations("charlie")
    a.pin(c)
    c.pin(a)
    send(a, "charlie", "for charlie only")
    path = tmp_path / "ac.bundle"
    export(a, "charlie", path)
    p = import_(b, path, check=False)
    assert p.returncode == 1
    assert "addressed to another station" in p.stderr, p.stderr
    assert_nothing_stored(b)
    import_(c, path)
    assert len(inbox(c)) == 1


def test_usage(pair, tmp_path):
    a, b = pair
    assert a.cmd("bundle", "--help").returncode == 0
    assert a.cmd("bundle", "export", "beta", check=False).returncode == 2
    assert a.cmd("bundle", "import", check=False).returncode == 2
    assert a.cmd("bundle", "frobnicate", check=False).returncode == 2
    p = a.cmd("bundle", "export", "nobody", "-o", tmp_path / "x", check=False)
    assert p.returncode == 1 and "nobody" in p.stderr
    p = a.cmd("bundle", "import", tmp_path / "missing", check=False)
    assert p.returncode == 1 and "missing" in p.stderr
