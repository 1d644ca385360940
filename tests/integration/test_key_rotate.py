"""Key rotation end to end (docs/rotation.md), between two real stations:

  * messages flow before, during and after `hotline key rotate` (the
    daemon running), in both directions; the peer takes the rotation by
    itself, its status shows the new fingerprint and its AlarmCommand is
    told; the link comes back after restarts on the new keys; a second
    rotation follows the first's commitment; both stations' records verify
    with the ORIGINAL cards (the ones pinned before any rotation);
  * a forged rotation — to keys the card never committed to, signed with
    the station's real current key, as a thief with only that key would
    make it (made here with hashlib and python3-cryptography, independently
    of hotline) — is refused by the peer, alarmed (`rotation_refused`), and
    the link goes on under the old keys;
  * `hotline key rotate` killed (SIGKILL, through strace's fault injection)
    at each of its fsyncs and renames leaves a station whose identity.key
    is the old one or the new one, whose daemon starts (completing the
    rotation if the chains were not told), and whose link works; both
    records still verify with the original cards.
"""

import base64
import hashlib
import os
import shutil
import sqlite3
import struct
import subprocess
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives import serialization

from checks_util import alarm_script, alarms, wait_alarm
from station import scaled, wait_for

RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def fingerprint(st):
    return st.cmd("card", "--fingerprint").stdout.strip()


def save_card(st, path):
    st._card = None
    text = st.card_text()
    with open(path, "w") as f:
        f.write(text)
    return path


def verify_records(tmp_path, a, b, card_a, card_b, tag):
    """Both stations export their record of the link; each verifies with
    the two original cards."""
    for st, peer in ((a, b), (b, a)):
        out = os.path.join(str(tmp_path), f"{st.name}-{tag}.rec")
        st.cmd("record", "export", peer.name, "-o", out)
        p = st.cmd("record", "verify", out, "--card", card_a, "--card", card_b, check=False)
        assert p.returncode == 0, f"{st.name}'s record ({tag}):\n{p.stdout}\n{p.stderr}"
    return p.stdout


def ping_pong(a, b, tag):
    """A message each way, delivered."""
    id_a = a.send(b.name, f"{tag} from {a.name}")
    id_b = b.send(a.name, f"{tag} from {b.name}")
    a.wait_delivered([id_a], scaled(30), f"{tag}: {a.name} to {b.name}")
    b.wait_delivered([id_b], scaled(30), f"{tag}: {b.name} to {a.name}")


def test_rotation_end_to_end(net, tmp_path):
    script, out = alarm_script(tmp_path)
    a, b, _ = net.pair(start=False)
    b.set_option("AlarmCommand", script)
    card_a = save_card(a, os.path.join(str(tmp_path), "a-original.card"))
    card_b = save_card(b, os.path.join(str(tmp_path), "b-original.card"))
    fp0 = fingerprint(a)
    b.start()
    a.start()
    a.wait_connected(b.name)
    b.wait_connected(a.name)

    ping_pong(a, b, "before")

    # during: messages keep being queued at both ends while A rotates
    stop = threading.Event()
    sent = {a.name: [], b.name: []}

    def chatter(src, dst):
        n = 0
        while not stop.is_set():
            sent[src.name].append(src.send(dst.name, f"during {n} from {src.name}"))
            n += 1
            time.sleep(0.05)

    threads = [threading.Thread(target=chatter, args=(a, b)),
               threading.Thread(target=chatter, args=(b, a))]
    for t in threads:
        t.start()
    try:
        time.sleep(0.3)
        p = a.cmd("key", "rotate")
        time.sleep(0.3)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert "Rotated the station's keys" in p.stdout, p.stdout
    fp1 = fingerprint(a)
    assert fp1 != fp0 and f"Fingerprint: {fp1}" in p.stdout, (fp0, fp1, p.stdout)
    assert sent[a.name] and sent[b.name]
    a.wait_delivered(sent[a.name], scaled(60), "A's messages during the rotation")
    b.wait_delivered(sent[b.name], scaled(60), "B's messages during the rotation")

    # the peer took it: status shows the new fingerprint, the operator is told
    wait_for(lambda: (b.peer_status(a.name).get("keys") or {}).get("fingerprint") == fp1,
             scaled(20), "B's status to show A's new fingerprint")
    keys = b.peer_status(a.name)["keys"]
    assert keys["reason"] == "routine" and keys["rotated_at_seq"] >= 2, keys
    human = b.cmd("status").stdout
    assert fp1 in human, human
    got = wait_alarm(out, "rotated")
    assert fp1 in got[0]["HOTLINE_DETAIL"], got
    assert not [x for x in alarms(out) if x.get("HOTLINE_ALARM") == "rotation_refused"]
    assert a.status()["station"]["fingerprint"] == fp1

    ping_pong(a, b, "after")

    # new handshakes on the new keys: each side restarted in turn
    for st, other in ((b, a), (a, b)):
        st.kill9()
        st.start()
        st.wait_connected(other.name)
        other.wait_connected(st.name)
        ping_pong(a, b, f"after restarting {st.name}")

    verify_records(tmp_path, a, b, card_a, card_b, "one")

    # a second rotation, of the other station, then of A again
    b.cmd("key", "rotate", "--reason", "compromise")
    a.cmd("key", "rotate")
    fp2 = fingerprint(a)
    wait_for(lambda: (b.peer_status(a.name).get("keys") or {}).get("fingerprint") == fp2,
             scaled(20), "B's status to show A's second new fingerprint")
    wait_for(lambda: (a.peer_status(b.name).get("keys") or {}).get("reason") == "compromise",
             scaled(20), "A's status to show B's rotation")
    ping_pong(a, b, "after two")
    report = verify_records(tmp_path, a, b, card_a, card_b, "two")
    assert report.count("rotated its keys") >= 3, report
    assert not a.sanitizer_reports() and not b.sanitizer_reports()


# ---- a forged rotation: a thief with the current key only ----

def identity_seed(st):
    """The current Ed25519 seed from ST's identity.key."""
    with open(os.path.join(st.dir, "identity.key")) as f:
        for line in f:
            k, sep, v = line.partition("=")
            if sep and k.strip() == "SigningPrivateKey":
                return base64.b64decode(v.strip())
    raise AssertionError("no SigningPrivateKey")


def forge_rotation(a, b):
    """A rotation item of A's chain with B to fresh keys nobody committed to:
    new_sig by the fresh key, sig by A's real current key (docs/items.md
    2.8), appended to A's store as A's next item (its daemon sends it)."""
    cur = Ed25519PrivateKey.from_private_bytes(identity_seed(a))
    new = Ed25519PrivateKey.generate()
    noise = X25519PrivateKey.generate().public_key().public_bytes(*RAW)
    sign = new.public_key().public_bytes(*RAW)
    db = sqlite3.connect(os.path.join(a.dir, "store.db"), timeout=30)
    try:
        db.execute("BEGIN IMMEDIATE")
        (pid,) = db.execute("SELECT id FROM peers WHERE signing_key = ?",
                            (b.signing_key,)).fetchone()
        seq, prev = db.execute("SELECT seq, hash FROM items WHERE peer_id = ? AND dir = 0 "
                               "ORDER BY seq DESC LIMIT 1", (pid,)).fetchone()
        body = (b"hotline/1 rotation\0" + a.signing_key + b.signing_key +
                struct.pack(">Q", seq + 1) + prev + struct.pack(">Q", int(time.time() * 1000)) +
                noise + sign + hashlib.blake2b(b"whatever", digest_size=32).digest() + b"\1")
        new_sig = new.sign(b"hotline/1 rotation new key\0" + body)
        signed = body + new_sig
        item = signed + cur.sign(signed)
        h = hashlib.blake2b(item, digest_size=32).digest()
        db.execute("INSERT INTO items (peer_id, dir, seq, kind, hash, encoded, precedence, "
                   "acked, stored_at) VALUES (?, 0, ?, 8, ?, ?, 3, 0, ?)",
                   (pid, seq + 1, h, item, int(time.time() * 1000)))
        db.commit()
    finally:
        db.close()
    return seq + 1


def test_forged_rotation_refused_and_alarmed(net, tmp_path):
    script, out = alarm_script(tmp_path)
    a, b, _ = net.pair(start=False)
    b.set_option("AlarmCommand", script)
    fp_a = fingerprint(a)
    b.start()
    a.start()
    a.wait_connected(b.name)
    ping_pong(a, b, "before")
    seq = forge_rotation(a, b)
    a.cmd("send", b.name, "--", "poke")   # the daemon looks at its store at once
    got = wait_alarm(out, "rotation_refused")
    assert got[0]["HOTLINE_SEQ"] == str(seq), got
    assert got[0]["HOTLINE_PEER"] == a.name, got
    # run by the sandboxed daemon's spawner, which passes only the alarm
    # variables it knows (daemon/spawn_proto.c) and sets HOTLINE_DIR itself
    assert got[0]["HOTLINE_DIR"] == b.dir and got[0]["HOTLINE_STATION"] == b.name, got
    assert "sandbox (network)" in b.log_text(), b.log_text()
    assert "REFUSED its key rotation" in b.log_text() and "not committed" in b.log_text()
    # nothing changed: A keeps its keys at B, the link goes on
    assert (b.peer_status(a.name).get("keys") or {}).get("fingerprint") in (None, fp_a)
    assert not [x for x in alarms(out) if x.get("HOTLINE_ALARM") == "rotated"]
    ping_pong(a, b, "after the forgery")
    rows = sqlite3.connect(os.path.join(b.dir, "store.db")).execute(
        "SELECT kind, refused FROM items WHERE dir = 1 AND seq = ?", (seq,)).fetchall()
    assert rows == [(0, 8)], rows   # a tombstone, REFUSE code 8


# ---- kill -9 during `key rotate` ----

def strace_kill(st, nth, calls="fsync,fdatasync,rename,renameat,renameat2"):
    """`hotline key rotate` at ST (no daemon), killed by SIGKILL at the NTH
    of CALLS (in the command or in the key holder it starts, which does the
    rotation); returns (killed, completed process)."""
    argv = ["strace", "-f", "-qq", "-o", "/dev/null", "-e", f"trace={calls}",
            "-e", f"inject={calls}:signal=KILL:when={nth}",
            st.bin, "-d", st.dir, "key", "rotate"]
    # LeakSanitizer cannot run under ptrace (a sanitizer build's exit would fail)
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    p = subprocess.run(argv, capture_output=True, text=True, timeout=scaled(60), env=env)
    # -9: the command itself was killed; 1: the key holder it started was,
    # and the command said so
    assert p.returncode in (0, -9) or (
        p.returncode == 1 and "key holder" in p.stderr), (nth, p.returncode, p.stderr)
    return p.returncode != 0, p


@pytest.mark.skipif(shutil.which("strace") is None, reason="needs strace")
def test_kill9_during_rotate_leaves_a_working_station(net, tmp_path):
    a, b, _ = net.pair(start=False)
    card_a = save_card(a, os.path.join(str(tmp_path), "a.card"))
    card_b = save_card(b, os.path.join(str(tmp_path), "b.card"))
    b.start()
    a.start()
    a.wait_connected(b.name)
    ping_pong(a, b, "before")
    fps = [fingerprint(a)]
    rotated = 0
    for nth in range(1, 40):
        a.stop()
        before = open(os.path.join(a.dir, "identity.key")).read()
        killed, p = strace_kill(a, nth)
        after = open(os.path.join(a.dir, "identity.key")).read()
        # one whole identity: the old or the new, never neither
        assert after == before or "RotatedAt" in after, (nth, p.stderr)
        assert a.cmd("card", check=False).returncode == 0, (nth, p.stderr)
        a._card = None
        a.start()
        a.wait_connected(b.name)
        ping_pong(a, b, f"after a kill at {nth}")
        fp = fingerprint(a)
        if fp != fps[-1]:
            fps.append(fp)
            rotated += 1
        wait_for(lambda: (b.peer_status(a.name).get("keys") or {}).get(
            "fingerprint", fps[0]) == fps[-1], scaled(20), f"B to follow A ({nth})")
        if not killed:
            break
    else:
        raise AssertionError("`key rotate` never ran to its end under strace")
    assert nth > 2, "the rotation should have been killed at least twice"
    assert rotated >= 2, fps   # one completed by the daemon's start, the last by itself
    # a kill between the identity's rename and the chains' commit: the
    # daemon's start completed that rotation
    assert "completed the key rotation of washington" in a.log_text(), a.log_tail()
    verify_records(tmp_path, a, b, card_a, card_b, "kills")


# ---- bundles across a rotation ----

def test_bundles_across_a_rotation(net, tmp_path):
    """Courier bundles in flight across A's rotation: one B sealed to A's
    old NoiseKey before it opens at A after the rotation (the grace of
    docs/rotation.md section 4); the one A makes after it, sealed with the
    old static key B still pins, carries the rotation, and B takes it from
    the bundle alone; then the link comes up on the new keys."""
    a, b, _ = net.pair()
    card_a = save_card(a, os.path.join(str(tmp_path), "a.card"))
    card_b = save_card(b, os.path.join(str(tmp_path), "b.card"))
    ping_pong(a, b, "before")
    a.stop()
    b.stop()
    b2a = os.path.join(str(tmp_path), "b2a.bundle")
    mid_b = b.send(a.name, "sealed to the old key")
    b.cmd("bundle", "export", a.name, "-o", b2a)
    a.cmd("key", "rotate")
    fp1 = fingerprint(a)
    a.cmd("bundle", "import", b2a)
    assert mid_b in {m["id"] for m in a.inbox()}
    a2b = os.path.join(str(tmp_path), "a2b.bundle")
    mid_a = a.send(b.name, "after the rotation, by courier")
    a.cmd("bundle", "export", b.name, "-o", a2b)
    b.cmd("bundle", "import", a2b)
    assert mid_a in {m["id"] for m in b.inbox()}
    b.start()
    a.start()
    a.wait_connected(b.name)
    b.wait_connected(a.name)
    assert (b.peer_status(a.name).get("keys") or {}).get("fingerprint") == fp1
    ping_pong(a, b, "after")
    a.wait_delivered([mid_a], scaled(30))
    b.wait_delivered([mid_b], scaled(30))
    verify_records(tmp_path, a, b, card_a, card_b, "bundles")
