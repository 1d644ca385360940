"""The sandbox of the processes that read what the other side sends
(docs/sandbox.md): the running daemon, its mail pickup child, and the key
holder (which reads what a compromised network process could send it).

From the outside, as anyone on the machine would look: /proc/PID/status
shows seccomp in filter mode and no_new_privs, and /proc/PID/mem cannot be
opened by a process of the same user without CAP_SYS_PTRACE (the process is
not dumpable), while the same reader opens that file of a control process
with the same credentials.  The pickup child is held mid-run by the store's
write lock (as in test_hostile_maildir), looked at, then killed with
SIGKILL: the daemon notices, shows it in `status`, and the next run
imports the mail.  The spawner killed: the daemon says so and stops with
an error; started again, it has lost nothing.  `Sandbox = off` turns it
off, and says so.

The key holder: Seccomp 2 and NoNewPrivs 1 while the daemon runs, and the
station works end to end through it: messages both ways, `hotline key
rotate` (the holder writes the new identity.key beside the old one and
renames it over it), and a rotation of its journal's segment
(keyholder.heads passes 8 MiB with large messages, whose text the journal
holds: it becomes keyholder.heads.old and a new segment is written and
renamed into place), all without the holder being stopped (the same pid,
no SIGSYS line in the log).  `Sandbox = off` leaves it out too.

What the sandbox refuses, call by call, is tests/unit/test_sandbox.c's
(the same function, applied in a test program); that the station still does
everything under it is the whole integration suite's, whose logs fail a
test when they hold the SIGSYS handler's line.
"""
import os
import signal
import sqlite3
import subprocess
import sys

from station import scaled, wait_for
from mailutil import deliver, email_station, good_mail, pickup_status


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def reader_prefix():
    """argv prefix for a process with our uid and no capability at all."""
    if os.geteuid() != 0:
        return []
    return ["setpriv", "--inh-caps=-all", "--bounding-set=-all", "--"]


def mem_opens(pid):
    """Whether a capless process of our uid can open /proc/PID/mem."""
    code = ("import sys\ntry:\n open(f'/proc/{sys.argv[1]}/mem','rb').close()\n"
            "except PermissionError:\n sys.exit(3)\n")
    r = subprocess.run(reader_prefix() + [sys.executable, "-c", code, str(pid)],
                       capture_output=True, text=True, timeout=scaled(30))
    assert r.returncode in (0, 3), r.stderr
    return r.returncode == 0


def assert_sandboxed(pid, what):
    st = proc_status(pid)
    assert st["Seccomp"] == "2", f"{what}: {st['Seccomp']}"
    assert st["NoNewPrivs"] == "1", f"{what}: {st['NoNewPrivs']}"
    assert not mem_opens(pid), f"{what}: /proc/{pid}/mem opened: the process is dumpable"


def children_of(pid):
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                out += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            pass
    return out


def child_named(daemon_pid, comm):
    for c in children_of(daemon_pid):
        with open(f"/proc/{c}/comm") as f:
            if f.read().strip() == comm:
                return c
    return None


def spawner_of(daemon_pid):
    return child_named(daemon_pid, "hotline-spawner")


def holder_of(daemon_pid):
    return child_named(daemon_pid, "hotline-keys")


def pickup_pid(daemon_pid):
    s = spawner_of(daemon_pid)
    for c in children_of(s) if s else []:
        try:
            with open(f"/proc/{c}/cmdline", "rb") as f:
                if b"--maildir" in f.read().split(b"\0"):
                    return c
        except FileNotFoundError:
            pass
    return None


def test_control_process_is_readable():
    """The oracle works: a dumpable process of the same credentials is."""
    p = subprocess.Popen(reader_prefix() + ["sleep", "60"])
    try:
        wait_for(lambda: open(f"/proc/{p.pid}/comm").read().strip() == "sleep", scaled(10),
                 "sleep to run")
        assert mem_opens(p.pid)
        assert proc_status(p.pid)["Seccomp"] == "0"
    finally:
        p.kill()
        p.wait()


def test_daemon_is_sandboxed(net):
    a, b, _ = net.pair()
    for st in (a, b):
        assert_sandboxed(st.pid, f"{st.name}'s daemon")
        assert "sandbox (network): not dumpable, no_new_privs" in st.log_text()
    # the link works under it: a message and its receipt
    mid = a.cmd("send", "pyongyang", "under the sandbox").stdout.strip()
    wait_for(lambda: any(m["id"] == mid for m in b.inbox()), scaled(20), "the message")
    # the spawner is outside: it runs AlarmCommand and hotline-mail
    s = spawner_of(a.pid)
    assert s, "no spawner among the daemon's children"
    assert proc_status(s)["Seccomp"] == "0"


def test_pickup_child_is_sandboxed_and_survives_kill9(net, tmp_path):
    a, b, md = email_station(net, tmp_path)
    b.start()
    db = sqlite3.connect(os.path.join(b.dir, "store.db"), timeout=30, isolation_level=None)
    db.execute("BEGIN IMMEDIATE")   # the pickup's import waits for the store
    try:
        mid, data = good_mail(a, tmp_path, "while the pickup is held")
        deliver(md, "2000.good.host", data)
        pid = wait_for(lambda: pickup_pid(b.pid), scaled(20), "the pickup child")
        # it has entered its sandbox before it waits for the store
        wait_for(lambda: proc_status(pid)["Seccomp"] == "2", scaled(10), "the pickup sandboxed")
        assert_sandboxed(pid, "the pickup child")
        os.kill(pid, signal.SIGKILL)
        st = wait_for(lambda: pickup_status(b) if "signal 9" in
                      (pickup_status(b).get("last_error") or "") else None,
                      scaled(20), "status to show the killed pickup")
        assert st["state"] == "failing" and st["failures"] >= 1, st
        assert b.alive()
    finally:
        db.execute("ROLLBACK")
        db.close()
    # the mail was not lost: the next run takes it
    wait_for(lambda: mid in b.inbox_ids(), scaled(30), "the mail after the kill")
    wait_for(lambda: pickup_status(b)["state"] == "ok", scaled(10), "the pickup back to ok")
    assert os.listdir(os.path.join(md, "new")) == []


def test_spawner_killed_stops_the_daemon_cleanly(net):
    a, b, _ = net.pair()
    mid = a.cmd("send", "pyongyang", "before").stdout.strip()
    wait_for(lambda: any(m["id"] == mid for m in b.inbox()), scaled(20), "the first message")
    s = spawner_of(b.pid)
    os.kill(s, signal.SIGKILL)
    proc = b.proc
    proc.wait(timeout=scaled(20))
    assert proc.returncode == 1, proc.returncode
    log = b.log_text()
    assert f"the spawner (pid {s}) is gone: the daemon stops" in log, b.log_tail()
    # started again, it has everything, and the link carries on
    b.proc = None
    b.start()
    b.wait_connected("washington")
    assert any(m["id"] == mid for m in b.inbox())
    mid2 = a.cmd("send", "pyongyang", "after").stdout.strip()
    wait_for(lambda: any(m["id"] == mid2 for m in b.inbox()), scaled(20), "the next message")


def test_sandbox_off(net):
    a = net.station("alpha", Sandbox="off")
    a.start()
    assert proc_status(a.pid)["Seccomp"] == "0"
    assert "Sandbox = off in station.conf" in a.log_text()
    holder = holder_of(a.pid)
    assert holder, "no key holder among the daemon's children"
    assert proc_status(holder)["Seccomp"] == "0"
    assert "sandbox (holder)" not in a.log_text()


def test_key_holder_is_sandboxed(net):
    a, b, _ = net.pair()
    holders = {}
    for st in (a, b):
        holders[st.name] = holder_of(st.pid)
        assert holders[st.name], f"{st.name}: no key holder among the daemon's children"
        assert_sandboxed(holders[st.name], f"{st.name}'s key holder")
        assert "sandbox (holder): not dumpable, no_new_privs" in st.log_text(), st.log_tail()
    # messages both ways: items signed, journal appended and fdatasync'd,
    # DHs for the handshakes, receipts
    a.send("pyongyang", "to pyongyang, signed by a sandboxed holder", wait=int(scaled(30)))
    b.send("washington", "and back", wait=int(scaled(30)))
    # a key rotation: identity.key.new written, fsync'd, renamed, the
    # folder fsync'd, all by the holder
    before = a.fingerprint
    r = a.cmd("key", "rotate")
    assert "rotat" in r.stdout.lower(), r.stdout + r.stderr
    a.forget_card()
    assert a.fingerprint != before
    assert not os.path.exists(os.path.join(a.dir, "identity.key.new"))
    a.send("pyongyang", "after the rotation", wait=int(scaled(30)))
    b.send("washington", "back, after it", wait=int(scaled(30)))
    # the journal's segment rotates: three messages of 3 MiB of text pass
    # 8 MiB, the fourth's records start a new segment
    big = "x" * (3 << 20)
    ids = [a.send("pyongyang", input=big) for _ in range(3)]
    ids.append(a.send("pyongyang", "the segment after"))
    a.wait_delivered(ids, scaled(120))
    assert os.path.getsize(os.path.join(a.dir, "keyholder.heads.old")) > (8 << 20)
    # the new segment: its heads, then the 1 MiB of zeros ahead of them
    assert os.path.getsize(os.path.join(a.dir, "keyholder.heads")) < (1 << 20) + (64 << 10)
    a.send("pyongyang", "in the new segment", wait=int(scaled(30)))
    # the same holders, still confined, never stopped by their sandbox
    for st in (a, b):
        st.assert_alive()
        assert holder_of(st.pid) == holders[st.name], f"{st.name}'s key holder changed"
        assert proc_status(holders[st.name])["Seccomp"] == "2"
        assert "hotline: sandbox: system call" not in st.log_text(), st.log_tail()
