"""The key holder (docs/keyholder.md): the process `hotline run` starts that
alone holds the station's private keys.

- No other hotline process holds a private key: with live sessions, messages
  sent and received, a bundle imported and a mail picked up, the memory of
  every mapping of every hotline process but the holder is read
  (/proc/PID/mem) and neither key is in it, in any of its forms (the X25519
  private key, the Ed25519 seed, the 64-byte Ed25519 secret key); the same
  search finds them in the holder.  identity.key is moved away once the
  daemon runs: the commands and the mail pickup never need it.
- A compromised network process (tests/tools/holder_attack.c, talking to the
  real holder) cannot make the station sign two items at one position, nor
  anything that is not an item of ours; malformed and oversized frames end
  that connection only; every refusal is in the log; the station carries on.
- When the holder dies, the daemon stops at once, exits 1, and nothing that
  was acknowledged is lost once the station runs again.
- Without a daemon a command starts a key holder of its own over the same
  journal of heads: a `bundle import` of a courier bundle (hostile bytes)
  holds neither key in its own memory and parses under its sandbox
  (Seccomp 2, NoNewPrivs 1); the journal refuses the same things, and an
  item the journal says was signed but the store lost is taken back byte for
  byte (with its text) before anything new is signed.
"""
import base64
import os
import re
import signal
import sqlite3
import subprocess
import time
from email.message import EmailMessage

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from station import HOTLINE_BIN, SANITIZE, scaled, wait_for

ATTACK = os.path.join(os.path.dirname(HOTLINE_BIN), "tests", "holder_attack")


# ---------------------------------------------------------------- helpers

def secret_forms(st, which=("",)):
    """The private keys of station ST as bytes to look for: its X25519
    private key, its Ed25519 seed, and libsodium's 64-byte secret key
    (seed || public key); WHICH: the pairs of identity.key ("" the current
    one, "Next", "Previous": docs/rotation.md)."""
    keys = {}
    with open(os.path.join(st.dir, "identity.key")) as f:
        for line in f:
            m = re.match(r"\s*(\w+)\s*=\s*(\S+)", line)
            if m and m.group(1).endswith("PrivateKey"):
                keys[m.group(1)] = base64.b64decode(m.group(2))
    forms = {}
    for w in which:
        seed, x = keys[f"{w}SigningPrivateKey"], keys[f"{w}NoisePrivateKey"]
        pk = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert len(x) == 32 and len(seed) == 32
        name = f"{st.name} {w or 'current'}"
        forms.update({f"{name} X25519 private key": x, f"{name} Ed25519 seed": seed,
                      f"{name} Ed25519 secret key (64 bytes)": seed + pk})
    return forms


def hotline_pids(stations):
    """Every running process of the stations' hotline binaries: pid -> comm."""
    dirs = [st.dir for st in stations]
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read().decode("utf-8", "replace")
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if os.path.basename(exe).startswith("hotline") and any(d in cmdline for d in dirs):
            out[int(pid)] = comm
    return out


def read_memory(pid):
    """The bytes of every readable mapping of PID (a generator of chunks).
    Huge mappings with nothing behind them (a sanitizer's shadow) are left
    out."""
    with open(f"/proc/{pid}/maps") as maps:
        regions = [l.split() for l in maps]
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for r in regions:
            start, end = (int(x, 16) for x in r[0].split("-"))
            name = r[5] if len(r) > 5 else ""
            if "r" not in r[1] or name in ("[vvar]", "[vsyscall]") or end - start > (1 << 30):
                continue
            try:
                mem.seek(start)
                yield mem.read(end - start)
            except OSError:
                continue


def keys_in_memory(pid, secrets):
    """The names of the SECRETS found in PID's memory."""
    found = set()
    tail = b""
    for chunk in read_memory(pid):
        data = tail + chunk
        for what, value in secrets.items():
            if value in data:
                found.add(what)
        tail = chunk[-64:]
    return found


def holder_pid(st):
    pids = [p for p, comm in hotline_pids([st]).items() if comm == "hotline-keys"]
    assert len(pids) == 1, f"{st.name}: key holder processes {pids}"
    return pids[0]


def assert_keys_only_in_holders(stations, secrets=None):
    if secrets is None:
        secrets = {}
        for st in stations:
            secrets.update(secret_forms(st))
    procs = hotline_pids(stations)
    holders = {p for p, comm in procs.items() if comm == "hotline-keys"}
    assert len(holders) == len(stations), f"a key holder per station: {procs}"
    for pid, comm in sorted(procs.items()):
        try:
            found = keys_in_memory(pid, secrets)
        except PermissionError:
            pytest.skip("cannot read another process's memory here (needs root or "
                        "CAP_SYS_PTRACE)")
        if pid in holders:
            # the search works: the holder has its own station's keys
            assert any("X25519" in w for w in found), (pid, found)
        else:
            assert not found, f"{comm} (pid {pid}) holds {sorted(found)}"
    return procs


def bundle_mail(st, peer, tmp_path, text):
    """A message from ST to PEER, exported as a bundle and wrapped in a
    mail; (id, mail bytes)."""
    mid = st.send(peer, text)
    path = tmp_path / f"{mid}.bundle"
    st.cmd("bundle", "export", peer, "-o", str(path))
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "b@hotline.test", "a@hotline.test", "hotline bundle"
    m.set_content("a bundle\n")
    m.add_attachment(path.read_bytes(), maintype="application", subtype="x-hotline-bundle",
                     filename="hotline.bundle")
    return mid, m.as_bytes()


def with_maildir(st, tmp_path):
    md = str(tmp_path / f"{st.name}-Maildir")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(md, sub))
    with open(st.conf_path, "a") as f:
        f.write(f"\n[Email]\nSMTP = smtp://127.0.0.1:9\nFrom = {st.name}@hotline.test\n"
                f"Maildir = {md}\n")
    return md


def inbox_ids(st):
    return {m["id"] for m in st.inbox()}


def attack(*args):
    if not os.access(ATTACK, os.X_OK):
        pytest.fail(f"{ATTACK} is missing: build with the tests (make check)")
    return subprocess.run([ATTACK, *args], capture_output=True, text=True,
                          timeout=scaled(60))


# ---------------------------------------------------------------- tests

def test_no_private_key_outside_the_holder(net, tmp_path):
    a, b, _ = net.pair(start=False)
    md = with_maildir(a, tmp_path)
    b.start()
    a.start()
    a.wait_connected("pyongyang")
    # live sessions, messages both ways with their receipts
    a.send("pyongyang", "from washington", wait=int(scaled(20)))
    b.send("washington", "from pyongyang", wait=int(scaled(20)))
    assert_keys_only_in_holders([a, b])

    # From here on identity.key is not there: the commands and the pickup
    # child reach the holder (it read the file at start).
    key = os.path.join(a.dir, "identity.key")
    os.rename(key, key + ".away")
    net.on_teardown(lambda: os.path.exists(key + ".away") and os.rename(key + ".away", key))
    a.send("pyongyang", "without identity.key", wait=int(scaled(20)))
    assert "fingerprint" in a.cmd("status").stdout
    # a bundle imported by `bundle import` while the daemon runs
    b.stop()
    mid = b.send("washington", "by courier")
    bundle = tmp_path / "courier.bundle"
    b.cmd("bundle", "export", "washington", "-o", str(bundle))
    a.cmd("bundle", "import", str(bundle))
    assert mid in inbox_ids(a)
    # a mail picked up by the daemon's pickup child
    mid2, data = bundle_mail(b, "washington", tmp_path, "by mail")
    with open(os.path.join(md, "tmp", "1.mail"), "wb") as f:
        f.write(data)
    os.rename(os.path.join(md, "tmp", "1.mail"), os.path.join(md, "new", "1.mail"))
    wait_for(lambda: mid2 in inbox_ids(a), scaled(30), "the mail picked up")
    b.start()
    a.wait_connected("pyongyang")
    a.send("pyongyang", "after all that", wait=int(scaled(20)))
    os.rename(key + ".away", key)
    b_secrets = secret_forms(b)
    assert b_secrets  # b's keys are looked for in a's processes too
    assert_keys_only_in_holders([a, b])


def proc_fds(pid):
    out = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                out.add(os.readlink(f"/proc/{pid}/fd/{fd}"))
            except OSError:
                pass
    except OSError:
        pass
    return out


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(l.split(":", 1) for l in f.read().splitlines() if ":" in l)


@pytest.mark.parametrize("path", ["file", "maildir"])
def test_bundle_import_without_daemon_holds_no_key(net, tmp_path, path):
    """A courier bundle, or a mail, is the adversary's bytes.  Imported with
    no daemon running (`bundle import FILE`, `bundle import --maildir`), the
    command starts a key holder of its own: caught half-way (the store's
    writer lock held by the test, so the import waits for it), the command's
    memory holds neither key (its holder's does), and it parses under its
    sandbox."""
    a, b, _ = net.pair(start=False)
    if path == "maildir":
        md = with_maildir(a, tmp_path)
        mid, data = bundle_mail(b, "washington", tmp_path, "by mail, no daemon anywhere")
        with open(os.path.join(md, "new", "1.mail"), "wb") as f:
            f.write(data)
        args = ["--maildir"]
    else:
        mid = b.send("washington", "by courier, no daemon anywhere")
        bundle = tmp_path / "courier.bundle"
        b.cmd("bundle", "export", "washington", "-o", str(bundle))
        args = [str(bundle)]
    a.inbox()  # the store exists
    db = sqlite3.connect(os.path.join(a.dir, "store.db"), isolation_level=None)
    db.execute("BEGIN IMMEDIATE")  # the import waits for the writer lock
    p = subprocess.Popen([a.bin, "-d", a.dir, "bundle", "import", *args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stopped = False
    try:
        store = os.path.join(a.dir, "store.db")
        wait_for(lambda: store in proc_fds(p.pid) or p.poll() is not None, scaled(20),
                 "the import to open the store")
        assert p.poll() is None, p.communicate()
        # the store is open, so the keys are (old code: in this process)
        try:
            wait_for(lambda: proc_status(p.pid)["Seccomp"].strip() == "2", scaled(5),
                     "the import to enter its sandbox", interval=0.01)
        except AssertionError:
            pass  # asserted below, after the search for the keys
        os.kill(p.pid, signal.SIGSTOP)
        stopped = True
        secrets = secret_forms(a)
        try:
            found = keys_in_memory(p.pid, secrets)
        except PermissionError:
            pytest.skip("cannot read another process's memory here (needs root or "
                        "CAP_SYS_PTRACE)")
        assert not found, f"bundle import (pid {p.pid}) holds {sorted(found)}"
        holders = [q for q, comm in hotline_pids([a]).items() if comm == "hotline-keys"]
        assert len(holders) == 1, hotline_pids([a])
        assert any("X25519" in w for w in keys_in_memory(holders[0], secrets))
        st = proc_status(p.pid)
        assert st["Seccomp"].strip() == "2" and st["NoNewPrivs"].strip() == "1", st
    finally:
        db.execute("ROLLBACK")
        db.close()
        if stopped:
            os.kill(p.pid, signal.SIGCONT)
        out, err = p.communicate(timeout=scaled(60))
    # whatever that import made of the wait, the bundle goes in, and the
    # command's holder is gone with it
    a.cmd("bundle", "import", *args)
    assert mid in inbox_ids(a)
    assert not [q for q, c in hotline_pids([a]).items() if c == "hotline-keys"]


def test_commands_without_daemon_take_turns(net):
    """Commands run at once with no daemon each start a key holder; the
    holders take keyholder.lock in turn, every command succeeds, each
    message has its own position, and no holder outlives its command."""
    a, b, _ = net.pair(start=False)
    procs = [subprocess.Popen([a.bin, "-d", a.dir, "send", "pyongyang", f"at once {i}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    ids = []
    for p in procs:
        out, err = p.communicate(timeout=scaled(120))
        assert p.returncode == 0, err
        ids.append(out.strip())
    db = sqlite3.connect(os.path.join(a.dir, "store.db"))
    seqs = [r[0] for r in db.execute("SELECT seq FROM items WHERE dir = 0 ORDER BY seq")]
    db.close()
    assert len(seqs) == len(set(seqs)) and len(seqs) >= 4, seqs
    assert not [q for q, c in hotline_pids([a]).items() if c == "hotline-keys"]
    a.start()
    b.start()
    a.wait_delivered(ids, scaled(30))


def test_command_killed_takes_its_holder(net, tmp_path):
    """A command killed while its holder runs: the holder goes with it
    (PR_SET_PDEATHSIG), the lock with the holder, and the next command
    starts one of its own."""
    a, b, _ = net.pair(start=False)
    mid = b.send("washington", "courier")
    bundle = tmp_path / "c.bundle"
    b.cmd("bundle", "export", "washington", "-o", str(bundle))
    a.inbox()
    db = sqlite3.connect(os.path.join(a.dir, "store.db"), isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    p = subprocess.Popen([a.bin, "-d", a.dir, "bundle", "import", str(bundle)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: [q for q, c in hotline_pids([a]).items() if c == "hotline-keys"],
                 scaled(20), "the import's key holder")
        p.kill()
        p.communicate(timeout=scaled(20))
        wait_for(lambda: not [q for q, c in hotline_pids([a]).items() if c == "hotline-keys"],
                 scaled(20), "the key holder to go with its command")
    finally:
        db.execute("ROLLBACK")
        db.close()
    a.cmd("bundle", "import", str(bundle))
    assert mid in inbox_ids(a)


def test_compromised_network_process(net):
    a, b, _ = net.pair()
    a.send("pyongyang", "one", wait=int(scaled(20)))
    p = attack(a.dir, "pyongyang")
    assert p.returncode == 0, p.stdout + p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) >= 9 and all(l.startswith("ok ") for l in lines), p.stdout
    log = a.log_text()
    assert re.search(r"key holder: sign request from pid \d+ refused: a different item at "
                     r"position \d+, already signed", log), log
    assert "refused: an item at position" in log and "does not follow" in log, log
    assert re.search(r"sign request from pid \d+ refused: a malformed request|"
                     r"refused: item 0 of the run is not an item", log), log
    assert "a frame of 0 bytes" in log and "a frame of 2147483647 bytes" in log, log
    # the station carries on, and signed nothing twice
    a.assert_alive()
    a.send("pyongyang", "two", wait=int(scaled(20)))
    assert b.read_json(a.outbox()[0]["id"]) is not None


def test_holder_killed_receiver(net):
    a, b, _ = net.pair()
    ids = a.send_lines("pyongyang", [f"before {i}" for i in range(200)])
    # the receiver's holder dies while the stream arrives
    stream = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "send", "pyongyang", "--lines"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    os.kill(holder_pid(b), signal.SIGKILL)
    out, _ = stream.communicate("".join(f"during {i}\n" for i in range(3000)),
                                timeout=scaled(120))
    assert stream.returncode == 0
    ids += out.split()
    wait_for(lambda: not b.alive(), scaled(10), "pyongyang's daemon to stop")
    assert b.proc.returncode == 1, b.log_tail()
    assert re.search(r"the key holder \(pid \d+\) is gone: stopping", b.log_text()), b.log_tail()
    b.proc = None
    b.start()
    a.wait_delivered(ids, scaled(120))
    got = [m["id"] for m in b.inbox()]
    assert sorted(got) == sorted(ids), "each message once"


def test_holder_killed_sender(net):
    a, b, _ = net.pair()
    stream = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "send", "pyongyang", "--lines"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    # the first commits are acknowledged (their ids printed), then the
    # sender's holder dies
    for i in range(2500):
        stream.stdin.write(f"line {i}\n")
    stream.stdin.flush()
    first = stream.stdout.readline().strip()
    os.kill(holder_pid(a), signal.SIGKILL)
    try:
        for i in range(2500, 6000):
            stream.stdin.write(f"line {i}\n")
        stream.stdin.close()
    except BrokenPipeError:
        pass
    rest = stream.stdout.read()
    stream.wait(timeout=scaled(60))
    assert stream.returncode != 0, "send --lines carried on without its key holder"
    acknowledged = [first] + rest.split()
    wait_for(lambda: not a.alive(), scaled(10), "washington's daemon to stop")
    assert a.proc.returncode == 1
    a.proc = None
    a.start()
    a.wait_delivered(acknowledged, scaled(120))
    got = [m["id"] for m in b.inbox()]
    assert len(got) == len(set(got)) and set(acknowledged) <= set(got)


def test_in_process_holder_uses_the_same_journal(net):
    a, b, _ = net.pair()
    a.send("pyongyang", "signed by the holder process", wait=int(scaled(20)))
    b.stop()
    lost_id = a.send("pyongyang", "lost by the store", subject="the lost one")
    a.stop()
    # without a daemon: the same refusals, from the journal the process wrote
    p = attack("--local", a.dir, "pyongyang")
    assert p.returncode == 0, p.stdout + p.stderr
    assert all(l.startswith("ok ") for l in p.stdout.splitlines()), p.stdout

    # The store loses the last item the holder signed (as if the process
    # had died between the holder's answer and its commit).
    db = sqlite3.connect(os.path.join(a.dir, "store.db"))
    seq, enc = db.execute("SELECT seq, encoded FROM items WHERE dir = 0 "
                          "ORDER BY seq DESC LIMIT 1").fetchone()
    db.execute("DELETE FROM messages WHERE dir = 0 AND seq = ?", (seq,))
    db.execute("DELETE FROM items WHERE dir = 0 AND seq = ?", (seq,))
    db.commit()
    db.close()

    # A command signs through a holder of its own: it takes that position back as signed
    # (text and all) and signs the new one after it.
    new_id = a.send("pyongyang", "after the loss")
    db = sqlite3.connect(os.path.join(a.dir, "store.db"))
    rows = db.execute("SELECT seq, encoded FROM items WHERE dir = 0 AND seq >= ? "
                      "ORDER BY seq", (seq,)).fetchall()
    db.close()
    assert rows[0] == (seq, enc) and rows[1][0] == seq + 1, rows
    out = {m["id"]: m for m in a.outbox()}
    assert out[lost_id]["subject"] == "the lost one"
    a.start()
    b.start()
    a.wait_delivered([lost_id, new_id], scaled(30))
    texts = {m["id"]: m for m in b.inbox()}
    assert texts[lost_id]["subject"] == "the lost one"
    assert b.read_json(lost_id)["body"] == "lost by the store"


def test_rotation_in_the_holder(net):
    """A key rotation while the daemon runs is the key holder's: afterwards
    no other process holds any of the station's private keys (the ones
    rotated away from, the new current ones, the new next ones), the holder
    does not hold the next ones either, and a compromised network process
    can have no rotation signed to keys the station never committed to, nor
    rotate the keys itself."""
    a, b, _ = net.pair()
    a.send("pyongyang", "before", wait=int(scaled(20)))
    before = secret_forms(a, ("", "Next"))
    r = a.cmd("key", "rotate")
    assert "rotat" in r.stdout.lower(), r.stdout + r.stderr
    after = secret_forms(a, ("", "Next", "Previous"))
    # identity.key moved as docs/rotation.md says: the next keys are current
    assert after["washington current X25519 private key"] == \
        before["washington Next X25519 private key"]
    assert after["washington Previous Ed25519 seed"] == before["washington current Ed25519 seed"]
    a.send("pyongyang", "after the rotation", wait=int(scaled(30)))
    b.send("washington", "back, after it", wait=int(scaled(30)))
    secrets = {**after, **secret_forms(b)}
    procs = assert_keys_only_in_holders([a, b], secrets)
    # the holder wiped the next keys once it had their hash
    holder = holder_pid(a)
    found = keys_in_memory(holder, {k: v for k, v in after.items() if " Next " in k})
    assert not found, f"the key holder (pid {holder}) holds {sorted(found)}"
    assert procs

    p = attack(a.dir, "pyongyang")
    assert p.returncode == 0, p.stdout + p.stderr
    assert "ok a rotation to keys the station never committed to: refused" in p.stdout, p.stdout
    assert "ok a rotation of the station's keys asked over the socket: refused" in p.stdout
    log = a.log_text()
    assert re.search(r"key holder: sign request from pid \d+ refused: a rotation to keys "
                     r"that are not the ones the station committed to", log), log
    assert re.search(r"key holder: sign request from pid \d+ refused: a rotation that commits "
                     r"to next keys the station does not hold", log), log
    assert re.search(r"key holder: rotate request from pid \d+ refused: a rotation of the "
                     r"station's keys, asked by another than the daemon", log), log
    a.assert_alive()
    mid = a.send("pyongyang", "and still", wait=int(scaled(30)))
    wait_for(lambda: mid in inbox_ids(b), scaled(30), "the message after the attack")
