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
- Without a daemon a command holds the keys in-process over the same
  journal of heads: it refuses the same things, and an item the journal says
  was signed but the store lost is taken back byte for byte (with its text)
  before anything new is signed.
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

def secret_forms(st):
    """The private keys of station ST as bytes to look for: its X25519
    private key, its Ed25519 seed, and libsodium's 64-byte secret key
    (seed || public key)."""
    keys = {}
    with open(os.path.join(st.dir, "identity.key")) as f:
        for line in f:
            m = re.match(r"\s*(\w+)\s*=\s*(\S+)", line)
            if m:
                keys[m.group(1)] = base64.b64decode(m.group(2))
    seed = keys["SigningPrivateKey"]
    pk = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert len(keys["NoisePrivateKey"]) == 32 and len(seed) == 32
    return {f"{st.name} X25519 private key": keys["NoisePrivateKey"],
            f"{st.name} Ed25519 seed": seed,
            f"{st.name} Ed25519 secret key (64 bytes)": seed + pk}


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


def assert_keys_only_in_holders(stations):
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

    # A command signs in-process: it takes that position back as signed
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
