"""Who may touch a station (src/conf/perms.c, src/daemon/privs.c).

- A station that someone else could change is refused, like OpenSSH's
  StrictModes: `run`, `send` and `status` exit 1 naming the path, and the
  fix the message gives works. Cases: the station directory writable by its
  group or by everyone, station.conf belonging to another user, identity.key
  readable by others, station.conf a symbolic link, a folder above the
  station writable by others (a sticky one like /tmp is fine).
- The daemon re-reads station.conf by itself: each reload is logged, and a
  station.conf renamed into a directory that became group-writable is not
  taken (the running configuration stays).
- A daemon started as root drops every capability (CapEff, CapPrm and
  CapBnd 0, NoNewPrivs 1 in /proc/PID/status) and still serves: status
  answers and a pinned peer links; with `User = nobody` it also becomes
  nobody, and the files it creates are nobody's.
"""

import os
import re
import shutil
import subprocess
import tempfile

import pytest

from station import HOTLINE_BIN, bin_for_user, scaled, wait_for

NOBODY = 65534
ROOT_ONLY = pytest.mark.skipif(
    os.geteuid() != 0,
    reason="SKIPPED LOUDLY: needs root (chown to another user, a daemon started as root)")


def proc_status(pid):
    with open(f"/proc/{pid}/status") as f:
        return dict(line.split(":\t", 1) for line in f.read().splitlines() if ":\t" in line)


def station_in(stations, root, name):
    """A station under ROOT whose daemon the `stations` fixture stops."""
    return stations.station(name, dir=os.path.join(str(root), name))


def as_nobody(st):
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", st.dir], check=True)
    st.cmd_prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                     "--"]
    st.bin = bin_for_user(NOBODY)


def refused(st, path, *commands):
    """Each command exits 1 naming PATH; returns the last stderr."""
    err = ""
    for args in commands:
        p = st.cmd(*args, check=False, timeout=scaled(20))
        assert p.returncode == 1, f"{args}: exit {p.returncode}\n{p.stderr}"
        assert path in p.stderr, f"{args}: {path} not named:\n{p.stderr}"
        err = p.stderr
    return err


def fix_command(err):
    """The command after 'Fix:' (or 'fix:'), up to ', or' / ' (or'."""
    m = re.search(r"[Ff]ix(?: \(as root\))?: (.+?)(?: \(or |, or |$)", err.strip())
    assert m, f"no fix named in: {err}"
    return m.group(1)


def apply_fix(err):
    cmd = fix_command(err)
    subprocess.run(["sh", "-c", cmd], check=True, timeout=30)
    return cmd


COMMANDS = (("run",), ("send", "nobody-here", "hello"), ("status",))


def works(st):
    # no daemon runs: status prints the offline status and exits 3
    p = st.cmd("status", check=False)
    assert p.returncode == 3 and "daemon not running" in p.stdout, (p.returncode, p.stderr)
    st.cmd("card")


def test_group_writable_dir_refused_and_fixed(stations):
    st = stations("alpha")
    os.chmod(st.dir, 0o770)
    err = refused(st, st.dir, *COMMANDS)
    assert "writable by its group" in err and "mode 0770" in err
    assert apply_fix(err) == f"chmod go-w '{st.dir}'"
    works(st)


def test_world_writable_dir_refused(stations):
    st = stations("alpha")
    os.chmod(st.dir, 0o707)
    err = refused(st, st.dir, *COMMANDS)
    assert "writable by everyone" in err
    apply_fix(err)
    works(st)


def test_world_readable_identity_refused_and_fixed(stations):
    st = stations("alpha")
    key = os.path.join(st.dir, "identity.key")
    os.chmod(key, 0o644)
    err = refused(st, key, *COMMANDS)
    assert "private keys" in err and "readable by its group" in err
    assert apply_fix(err) == f"chmod 600 '{key}'"
    assert os.stat(key).st_mode & 0o777 == 0o600
    works(st)


def test_group_writable_conf_refused(stations):
    st = stations("alpha")
    os.chmod(st.conf_path, 0o620)
    err = refused(st, st.conf_path, *COMMANDS)
    apply_fix(err)
    works(st)


@ROOT_ONLY
def test_conf_of_another_user_refused_and_fixed(stations):
    st = stations("alpha")
    os.chown(st.conf_path, NOBODY, -1)
    err = refused(st, st.conf_path, *COMMANDS)
    assert "belongs to nobody (uid 65534)" in err
    assert apply_fix(err) == f"chown root '{st.conf_path}'"
    works(st)


@ROOT_ONLY
def test_station_of_another_user_refused_for_root(stations):
    """Root running commands on nobody's station: refused (root's files
    in it would lock its owner out), saying how to run them as nobody."""
    st = stations("alpha")
    subprocess.run(["chown", "-R", f"{NOBODY}:{NOBODY}", st.dir], check=True)
    err = refused(st, st.dir, ("send", "x", "y"), ("status",))
    assert "sudo -u nobody hotline" in err


def test_symlinked_conf_refused(stations):
    st = stations("alpha")
    real = os.path.join(os.path.dirname(st.dir), "elsewhere.conf")
    shutil.move(st.conf_path, real)
    os.symlink(real, st.conf_path)
    err = refused(st, st.conf_path, *COMMANDS)
    assert "symbolic link" in err


def test_writable_parent_refused_sticky_accepted(stations, tmp_path):
    parent = tmp_path / "shared"
    parent.mkdir()
    st = station_in(stations, str(parent), "alpha")
    try:
        os.chmod(parent, 0o777)
        err = refused(st, str(parent), ("status",), ("send", "x", "y"))
        assert "a folder above the station directory" in err and "chmod +t" in err
        os.chmod(parent, 0o1777)     # sticky, like /tmp: fine
        works(st)
    finally:
        os.chmod(parent, 0o755)


def test_init_refuses_a_writable_directory(tmp_path, stations):
    st = stations("alpha", init=False)
    os.makedirs(st.dir, mode=0o700)
    os.chmod(st.dir, 0o775)
    p = st.cmd("init", "alpha", "--listen", st.listen, check=False)
    assert p.returncode == 1 and st.dir in p.stderr, p.stderr
    assert not os.path.exists(os.path.join(st.dir, "identity.key"))


# ------------------------------------------------------------------ reload

def test_each_reload_is_logged(stations):
    st = stations("alpha")
    st.start()
    st.set_option("Keepalive", "20s")
    wait_for(lambda: "station.conf reloaded" in st.log_text(), scaled(10), "the reload logged")


def test_conf_renamed_into_a_group_writable_dir_is_not_taken(stations):
    """The attack: someone who can write the directory renames a new
    station.conf into it; the daemon re-reads it by itself.  It must refuse
    it, say why, and keep the running configuration."""
    a, b = stations("alpha"), stations("beta")
    a.start()
    os.chmod(a.dir, 0o770)
    with open(a.conf_path) as f:
        text = f.read()
    tmp = os.path.join(a.dir, "new.conf")
    with open(tmp, "w") as f:
        f.write(text + "\n[Peer]\nName = beta\n"
                f"NoiseKey = {b.card()['NoiseKey']}\nSigningKey = {b.card()['SigningKey']}\n")
    os.chmod(tmp, 0o600)
    os.rename(tmp, a.conf_path)
    wait_for(lambda: "not reloaded" in a.log_text(), scaled(10), "the refused reload logged")
    line = [l for l in a.log_lines() if "not reloaded" in l][-1]
    assert a.dir in line and "writable by its group" in line, line
    os.chmod(a.dir, 0o700)
    # the daemon still runs the old configuration (status comes from it)
    peers = [p["name"] for p in a.status().get("peers") or []]
    assert peers == [], peers
    a.assert_alive()


# --------------------------------------------------------------- privileges

def wait_linked(a, b):
    a.wait_connected(b.name)
    b.wait_connected(a.name)


@ROOT_ONLY
def test_root_daemon_drops_every_capability_and_serves(stations):
    a, b, _ = stations.pair("alpha", "beta")   # started as root, linked
    for st in (a, b):
        s = proc_status(st.proc.pid)
        assert s["Uid"].split()[0] == "0"
        for field in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
            assert int(s[field], 16) == 0, f"{st.name}: {field} {s[field]}"
        assert s["NoNewPrivs"].strip() == "1"
        assert "started as root: dropped every capability" in st.log_text()
    wait_linked(a, b)
    mid = a.cmd("send", "beta", f"--wait={int(scaled(20))}", "still serving").stdout.split()[0]
    assert mid[:12] in b.cmd("inbox").stdout


@ROOT_ONLY
def test_root_daemon_becomes_user(stations):
    root = tempfile.mkdtemp(prefix="hotline-perms-")   # tmp_path is closed to nobody
    os.chmod(root, 0o755)
    try:
        st = station_in(stations, root, "alpha")
        as_nobody(st)
        # root's daemon on nobody's station without User: refused, saying how
        p = subprocess.run([HOTLINE_BIN, "-d", st.dir, "run"], capture_output=True, text=True,
                           timeout=scaled(20))
        assert p.returncode == 1 and "User = 65534" in p.stderr, p.stderr
        st.set_option("User", "nobody")
        st.start()
        s = proc_status(st.proc.pid)
        assert s["Uid"].split() == [str(NOBODY)] * 4 and s["Gid"].split() == [str(NOBODY)] * 4
        assert s["Groups"].split() == [str(NOBODY)]
        for field in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
            assert int(s[field], 16) == 0, f"{field} {s[field]}"
        assert s["NoNewPrivs"].strip() == "1"
        assert "now running as nobody (uid 65534)" in st.log_text()
        for name in os.listdir(st.dir):   # store, lock, socket: all nobody's
            assert os.lstat(os.path.join(st.dir, name)).st_uid == NOBODY, name
        assert st.status()["daemon"] is True       # run as nobody, like every command
        st.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


@ROOT_ONLY
def test_root_daemon_user_must_match_the_owner(stations):
    st = stations("alpha")
    st.set_option("User", "nobody")     # the station is root's
    p = st.cmd("run", check=False, timeout=scaled(20))
    assert p.returncode == 1 and "chown -R 65534:65534" in p.stderr, p.stderr


@ROOT_ONLY
def test_root_daemon_refuses_a_user_who_cannot_run_its_programs(stations):
    """hotline in a folder only root can search (a build tree in /root):
    once nobody, the daemon could not run itself or hotline-mail for the
    email path, mail pickup and retention.  It says so at start, naming the
    program, and exits 1, rather than failing every five seconds later."""
    root = tempfile.mkdtemp(prefix="hotline-perms-")
    os.chmod(root, 0o755)
    hidden = tempfile.mkdtemp(prefix="hotline-bin-")      # 0700, root's
    try:
        build = os.path.dirname(os.path.abspath(HOTLINE_BIN))
        for prog in ("hotline", "hotline-daemon", "hotline-mail"):
            if os.path.exists(os.path.join(build, prog)):
                shutil.copy2(os.path.join(build, prog), hidden)
        st = station_in(stations, root, "alpha")
        as_nobody(st)
        st.set_option("User", "nobody")
        p = subprocess.run([os.path.join(hidden, "hotline"), "-d", st.dir, "run"],
                           capture_output=True, text=True, timeout=scaled(20))
        assert p.returncode == 1, (p.returncode, p.stderr)
        assert "now running as nobody (uid 65534), the daemon cannot run " + hidden in p.stderr, \
            p.stderr
        assert "make install" in p.stderr, p.stderr
        # the same programs where nobody can reach them: it runs
        os.chmod(hidden, 0o755)
        p = subprocess.Popen([os.path.join(hidden, "hotline"), "-d", st.dir, "run"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: st.cmd("status", check=False).returncode == 0, scaled(20),
                     "the daemon running as nobody")
        finally:
            p.terminate()
            p.wait(timeout=scaled(20))
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(hidden, ignore_errors=True)
