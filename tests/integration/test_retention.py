"""Retention, removed peers and backups (issue 11, section 6): contents are
purged while the signed record stays verifiable and says what was purged;
purged bytes leave the peer's quota; the daemon applies Retain by itself; a
removed peer's history stays exportable; `backup` copies a running station
consistently and refuses to expose its keys."""

import json
import os
import sqlite3
import stat
import subprocess
import threading
import time

from station import HOTLINE_BIN, scaled, wait_for

DELIVER = scaled(30)
FUTURE = "2999-01-01"


def verify(tmp_path, rec, a, b):
    cards = []
    for st in (a, b):
        path = tmp_path / f"{st.name}.card"
        path.write_text(st.card_text())
        cards.append(str(path))
    return subprocess.run([HOTLINE_BIN, "record", "verify", str(rec), "--card", cards[0],
                           "--card", cards[1]], capture_output=True, text=True,
                          timeout=scaled(60))


def store_rows(st, sql, args=()):
    db = sqlite3.connect(f"file:{os.path.join(st.dir, 'store.db')}?mode=ro", uri=True,
                         timeout=10)
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def write_conf(st, text):
    """Replaces station.conf as an operator's editor would (the daemon
    re-reads it by itself)."""
    path = os.path.join(st.dir, "station.conf")
    with open(path + ".new", "w") as f:
        f.write(text)
    os.chmod(path + ".new", 0o600)
    os.rename(path + ".new", path)


def files_under(d):
    out = []
    for root, _, names in os.walk(d):
        out += [os.path.join(root, n) for n in names]
    return sorted(out)


def test_purge_keeps_the_record_verifiable_and_says_what_was_purged(net, tmp_path):
    a, b, _ = net.pair()
    doc = tmp_path / "annex.bin"
    doc.write_bytes(os.urandom(50000))
    out_ids = [a.send("pyongyang", "first secret", subject="one"),
               a.send("pyongyang", "with a file", subject="two", attach=[str(doc)])]
    in_ids = [b.send("washington", "their secret", subject="three", attach=[str(doc)])]
    a.wait_delivered(out_ids, DELIVER)
    b.wait_delivered(in_ids, DELIVER)
    assert files_under(os.path.join(a.dir, "in")) and files_under(os.path.join(a.dir, "out"))
    # Nothing is purged without confirmation.
    p = a.cmd("purge", "--before", FUTURE, check=False, input="")
    assert p.returncode == 1 and "not on a terminal" in p.stderr, p.stderr
    p = a.cmd("purge", "--before", FUTURE, "--dry-run")
    assert "would purge the contents of 3 message(s)" in p.stdout, p.stdout
    assert all(m["body"] for m in a.inbox() + a.outbox())
    # Retain is not set: purge by configuration has nothing to do.
    assert "no Retain is set" in a.cmd("purge", "--yes").stdout

    p = a.cmd("purge", "--before", FUTURE, "--yes")
    assert "purged the contents of 3 message(s)" in p.stdout and "2 file(s) removed" in p.stdout, \
        p.stdout
    for m in a.inbox() + a.outbox():
        assert m["body"] is None and m["subject"] == "" and m["purged_at"], m
        assert m["attachments"] == [] or m["attachments"][0]["size"] == 50000   # the item's word
    assert files_under(os.path.join(a.dir, "in")) == []
    assert files_under(os.path.join(a.dir, "out")) == []
    shown = a.cmd("read", in_ids[0]).stdout
    assert "Subject:    (purged at" in shown and "(file purged)" in shown, shown
    assert "secret" not in shown
    # A second purge finds nothing.
    assert "would purge the contents of 0 message(s)" in a.cmd(
        "purge", "--before", FUTURE, "--dry-run").stdout
    # The bytes are gone from the store file too (secure_delete, checkpoint).
    with open(os.path.join(a.dir, "store.db"), "rb") as f:
        assert b"their secret" not in f.read()

    # The record: version 2, it verifies, and it says what was purged.
    rec = tmp_path / "a.rec"
    out = a.cmd("record", "export", "pyongyang", "-o", rec).stdout
    assert "3 message(s) purged" in out, out
    assert rec.read_bytes()[8] == 2
    v = verify(tmp_path, rec, a, b)
    assert v.returncode == 0, v.stderr
    assert "3 of them purged by washington" in v.stdout, v.stdout
    assert "contents purged by washington under its retention" in v.stdout, v.stdout
    show = subprocess.run([HOTLINE_BIN, "record", "show", str(rec)], capture_output=True,
                          text=True, timeout=scaled(60))
    assert show.returncode == 0, show.stdout
    assert show.stdout.count("(purged by washington at") == 3, show.stdout
    assert "secret" not in show.stdout
    # --only a purged message: a clear refusal.
    p = a.cmd("record", "export", "pyongyang", "-o", tmp_path / "x.rec", "--only", in_ids[0],
              check=False)
    assert p.returncode == 1 and "was purged" in p.stderr, p.stderr
    # The peer, which purged nothing, still writes version 1, as before.
    brec = tmp_path / "b.rec"
    b.cmd("record", "export", "washington", "-o", brec)
    assert brec.read_bytes()[8] == 1
    assert verify(tmp_path, brec, a, b).returncode == 0
    # Messages flow on, and a purged id is never taken twice.
    again = b.send("washington", "after the purge")
    a.wait_in_inbox([again], DELIVER)


def test_a_forged_purge_note_fails_verification(net, tmp_path):
    """The purged section is sealed like the rest: changing a purge time, or
    naming a receipt as purged, is caught."""
    a, b, _ = net.pair()
    mid = b.send("washington", "to be purged")
    b.wait_delivered([mid], DELIVER)
    a.cmd("purge", "--before", FUTURE, "--yes")
    rec = tmp_path / "a.rec"
    a.cmd("record", "export", "pyongyang", "-o", rec)
    data = bytearray(rec.read_bytes())
    assert verify(tmp_path, rec, a, b).returncode == 0
    # the purged section: count(4) chain(1) seq(8) purged_at(8), just before the 64-byte seal
    at = len(data) - 64 - 8
    data[at + 7] ^= 1
    forged = tmp_path / "forged.rec"
    forged.write_bytes(bytes(data))
    v = verify(tmp_path, forged, a, b)
    assert v.returncode == 1 and "seal does not verify" in v.stderr, v.stderr


def test_purged_bytes_leave_the_peers_quota(net, tmp_path):
    a, b, _ = net.pair(PeerQuota="100K")
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(60 * 1024))
    first = b.send("washington", "one", attach=[str(doc)])
    a.wait_in_inbox([first], DELIVER)
    second = b.send("washington", "two", attach=[str(doc)])
    # Over the quota: refused for now (code 7), offered again every 5 s.
    wait_for(lambda: "quota" in json.dumps(b.peer_status("washington")["delivery"]) or
             "quota" in a.log_text(), scaled(20), "the quota refusal")
    assert second not in {m["id"] for m in a.inbox()}
    a.cmd("purge", "--before", FUTURE, "--peer", "pyongyang", "--yes")
    a.wait_in_inbox([second], scaled(40))


def test_the_daemon_applies_retain(net):
    a, b, _ = net.pair()
    old = b.send("washington", "old news")
    a.wait_in_inbox([old], DELIVER)
    kept = a.send("pyongyang", "ours")
    a.wait_delivered([kept], DELIVER)
    time.sleep(scaled(1.5))
    # Retain for the station, but "forever" for pyongyang's [Peer]: nothing goes.
    path = os.path.join(a.dir, "station.conf")
    text = open(path).read()
    text = text.replace("[Station]\n", "[Station]\nRetain = 1s\n", 1)
    # (the line itself, not the example in init's comments)
    text = text.replace("\nName = pyongyang\n", "\nName = pyongyang\nRetain = forever\n", 1)
    write_conf(a, text)
    time.sleep(scaled(4))
    assert all(m["purged_at"] is None for m in a.inbox() + a.outbox())
    # Now the station's 1s applies to pyongyang too: the daemon purges both.
    write_conf(a, text.replace("\nRetain = forever\n", "\n"))
    wait_for(lambda: all(m["purged_at"] for m in a.inbox() + a.outbox()), scaled(20),
             "the daemon to purge what Retain allows")
    assert "purged the contents of" in a.log_text()
    assert store_rows(a, "SELECT count(*) FROM unlink_queue") == [(0,)]


def test_removed_peer_history_stays_exportable(net, tmp_path):
    a, b, _ = net.pair()
    ids = [a.send("pyongyang", "before the break"), b.send("washington", "noted")]
    a.wait_delivered(ids[:1], DELIVER)
    b.wait_delivered(ids[1:], DELIVER)
    fp = b.cmd("card", "--fingerprint").stdout.strip()
    a.stop()
    out = a.cmd("peer", "remove", "pyongyang").stdout
    assert "record export pyongyang" in out, out
    assert a.cmd("peer", "list").stdout == ""
    assert a.cmd("peer", "list", "--removed").stdout == f"pyongyang\t{fp}\tremoved\n"
    rec = tmp_path / "a.rec"
    p = a.cmd("record", "export", "pyongyang", "-o", rec)
    assert "no longer pinned" in p.stderr, p.stderr
    v = verify(tmp_path, rec, a, b)
    assert v.returncode == 0, v.stderr
    assert "2 items of washington" in v.stdout or "items of washington" in v.stdout, v.stdout
    # Named by its fingerprint too; its messages can still be purged.
    a.cmd("record", "export", fp, "-o", tmp_path / "b.rec")
    assert "purged the contents of 2" in a.cmd("purge", "--before", FUTURE, "--peer",
                                               "pyongyang", "--yes").stdout
    assert verify(tmp_path, rec, a, b).returncode == 0
    p = a.cmd("record", "export", "nobody", "-o", rec, check=False)
    assert p.returncode == 1 and "no peer named 'nobody', pinned or removed" in p.stderr


def test_backup_refuses_to_expose_the_keys(net, tmp_path):
    a = net.station("washington")
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o755)
    os.chmod(open_dir, 0o755)
    p = a.cmd("backup", open_dir, check=False)
    assert p.returncode == 1 and "read or written by others" in p.stderr, p.stderr
    assert os.listdir(open_dir) == []
    full = tmp_path / "full"
    full.mkdir(mode=0o700)
    (full / "x").write_text("x")
    p = a.cmd("backup", full, check=False)
    assert p.returncode == 1 and "not empty" in p.stderr, p.stderr
    assert os.listdir(full) == ["x"]
    dest = tmp_path / "new"
    a.cmd("backup", dest)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o700
    for f in files_under(dest):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
    p = a.cmd("backup", dest, check=False)
    assert p.returncode == 1 and "not empty" in p.stderr


def test_backup_while_messages_flow_is_consistent(net, tmp_path):
    a, b, _ = net.pair()
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(300 * 1024))
    stop = threading.Event()
    sent = {"a": [], "b": []}
    errors = []

    def flow(st, peer, key):
        i = 0
        while not stop.is_set():
            try:
                attach = [str(doc)] if i % 3 == 0 else []
                sent[key].append(st.send(peer, f"flow {key} {i}", attach=attach))
            except AssertionError as exc:
                errors.append(exc)
                return
            i += 1
    threads = [threading.Thread(target=flow, args=(a, "pyongyang", "a")),
               threading.Thread(target=flow, args=(b, "washington", "b"))]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(sent["a"]) > 5 and len(sent["b"]) > 5, scaled(30), "traffic")
        dest = tmp_path / "backup"
        out = a.cmd("backup", dest, timeout=scaled(120)).stdout
        assert "backup of station washington" in out, out
        wait_for(lambda: len(sent["a"]) > 12 and len(sent["b"]) > 12, scaled(30), "more traffic")
    finally:
        stop.set()
        for t in threads:
            t.join(scaled(60))
    assert not errors, errors
    # The copy: a station directory whose store names only files it holds,
    # whole, and whose record verifies.
    copy = net.station("washington", init=False, dir=str(dest), port=a.port)
    rows = store_rows(copy, "SELECT a.path, a.size, a.done, m.dir, m.state FROM attachments a"
                      " JOIN messages m ON m.id = a.msg_id WHERE m.purged_at = 0")
    assert rows
    for path, size, done, d, state in rows:
        full = os.path.join(str(dest), path)
        if d == 0 or state == 11:
            assert os.path.getsize(full) == size, path
        else:
            part = full + ".part"
            assert not done or os.path.getsize(part if os.path.exists(part) else full) >= done
    rec = tmp_path / "copy.rec"
    copy.cmd("record", "export", "pyongyang", "-o", rec)
    v = verify(tmp_path, rec, a, b)
    assert v.returncode == 0, v.stderr
    for m in copy.inbox():
        assert m["body"] is not None


def test_restore_from_a_backup_and_continue(net, tmp_path):
    """Back up a station while messages flow; later restore the copy in its
    place: it gets back the items of its own chain its peer holds (so it
    never signs a second item at a position the peer has), the peer sends
    again what the copy lacks, and messages flow on, each once, with both
    records verifying and no equivocation."""
    a, b, _ = net.pair()
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(200 * 1024))
    stop = threading.Event()
    sent = {"a": [], "b": []}

    def flow(st, peer, key):
        i = 0
        while not stop.is_set():
            sent[key].append(st.send(peer, f"flow {key} {i}",
                                     attach=[str(doc)] if i % 4 == 0 else []))
            i += 1
    threads = [threading.Thread(target=flow, args=(a, "pyongyang", "a"), daemon=True),
               threading.Thread(target=flow, args=(b, "washington", "b"), daemon=True)]
    for t in threads:
        t.start()
    try:
        wait_for(lambda: len(sent["a"]) > 3 and len(sent["b"]) > 3, scaled(30), "traffic")
        dest = tmp_path / "backup"
        a.cmd("backup", dest, timeout=scaled(120))
        # The station goes on after the backup: its peer holds more than the copy.
        n = (len(sent["a"]), len(sent["b"]))
        wait_for(lambda: len(sent["a"]) > n[0] + 3 and len(sent["b"]) > n[1] + 3, scaled(30),
                 "traffic after the backup")
    finally:
        stop.set()
        for t in threads:
            t.join(scaled(60))
    a.wait_delivered(sent["a"], DELIVER)
    b.wait_delivered(sent["b"], DELIVER)
    a.stop()                               # the station is lost; the copy takes its place
    copy = net.station("washington", init=False, dir=str(dest), port=a.port)
    # Before it has heard from its peer, the copy signs nothing for it.
    p = copy.cmd("send", "pyongyang", "too early", check=False)
    assert p.returncode == 1 and "restored from a backup" in p.stderr, p.stderr
    copy.start()
    wait_for(lambda: "resynchronised after a restore" in copy.log_text(), scaled(30),
             "the copy to resynchronise")
    # It was behind on both chains: its own items came back from the peer,
    # and the peer sent again what the copy no longer held.
    assert "back from it" in copy.log_text()
    assert "sending them again" in b.log_text()
    after = [copy.send("pyongyang", "from the restored station"),
             b.send("washington", "to the restored station")]
    copy.wait_delivered(after[:1], DELIVER)
    b.wait_delivered(after[1:], DELIVER)
    # Every message of the peer's is in the copy's inbox once; the copy's own
    # sent after the backup came back as signed items (their texts stayed at
    # the peer), and the peer holds each of ours once.
    inbox = [m["id"] for m in copy.inbox()]
    assert sorted(inbox) == sorted(set(inbox))
    assert set(sent["b"]) | {after[1]} <= set(inbox)
    theirs = [m["id"] for m in b.inbox()]
    assert sorted(theirs) == sorted(set(theirs))
    assert set(sent["a"]) | {after[0]} <= set(theirs)
    assert b.peer_status("washington")["check"]["equivocations"] == 0
    assert "EQUIVOCATION" not in b.log_text()
    # Both records verify.
    for st, peer, name in ((copy, "pyongyang", "copy.rec"), (b, "washington", "b.rec")):
        rec = tmp_path / name
        st.cmd("record", "export", peer, "-o", rec)
        v = verify(tmp_path, rec, copy, b)
        assert v.returncode == 0, (name, v.stderr)
        assert "EQUIVOCATION" not in v.stdout


def test_restore_from_a_backup_taken_mid_transfer(net, tmp_path):
    """A backup taken while a document from the peer was still arriving
    holds that message incomplete; the original then got it whole and
    receipted it.  Restored, the copy lists it in its RESUME: the peer,
    which has it as delivered, sends its parts again, the copy makes it
    visible without a second receipt, and the messages behind it in the
    same precedence follow."""
    p, w, proxy = net.pair("pyongyang", "washington", via_proxy=True, rate=400_000)
    doc = os.urandom(3 * 1024 * 1024)
    (tmp_path / "doc.bin").write_bytes(doc)
    big = p.send("washington", "the document", attach=[str(tmp_path / "doc.bin")])
    wait_for(lambda: w.peer_status("pyongyang")["delivery"]["incoming_partial"] >= 1,
             scaled(30), "the document to start arriving")
    dest = tmp_path / "backup"
    w.cmd("backup", dest, timeout=scaled(120))
    assert w.peer_status("pyongyang")["delivery"]["incoming_partial"] >= 1, \
        "the document arrived whole before the backup: nothing was tested"
    behind = p.send("washington", "behind the document")
    p.wait_delivered([big, behind], scaled(60))
    w.stop()                               # the station is lost; the copy takes its place
    copy = net.station("washington", init=False, dir=str(dest), port=w.port)
    copy.start()
    wait_for(lambda: "resynchronised after a restore" in copy.log_text(), scaled(30),
             "the copy to resynchronise")
    after = p.send("washington", "to the restored station")
    p.wait_delivered([after], DELIVER)
    copy.wait_in_inbox([big, behind, after], DELIVER)
    assert "sending their parts again" in p.log_text()
    save = tmp_path / "saved"
    save.mkdir()
    copy.cmd("read", big, "--save", save)
    assert (save / "doc.bin").read_bytes() == doc
    inbox = [m["id"] for m in copy.inbox()]
    assert sorted(inbox) == sorted(set(inbox))
    assert copy.peer_status("pyongyang")["delivery"]["incoming_partial"] == 0
    # No second receipt: the peer refused nothing and saw no equivocation.
    assert "receipt acknowledges" not in p.log_text()
    assert p.peer_status("washington")["check"]["equivocations"] == 0
    for st, peer, name in ((copy, "pyongyang", "copy.rec"), (p, "washington", "p.rec")):
        rec = tmp_path / name
        st.cmd("record", "export", peer, "-o", rec)
        v = verify(tmp_path, rec, copy, p)
        assert v.returncode == 0, (name, v.stderr)
