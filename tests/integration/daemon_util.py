"""daemon_util.py — helpers for the daemon's integration tests
(test_daemon_*.py): station directories, `hotline run` daemons that are
always killed at teardown, `status --json`, raw control-socket requests and
a TCP relay that holds connections back to force simultaneous dials.

Self-contained (standard library and pytest only), so these tests do not
depend on the shared helpers.  Every wait is bounded; bounds are scaled up
for sanitizer builds.
"""

import base64
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time

import pytest

import helpers

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("HOTLINE_BIN") or os.path.join(HERE, "..", "..", "build", "hotline")
SANITIZE = os.environ.get("HOTLINE_SANITIZE", "").strip().upper() in ("1", "ON", "TRUE", "YES")
SCALE = 4.0 if SANITIZE else 1.0
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:",
                   "hotline: sandbox: system call")   # src/daemon/sandbox.c stopped a process


def scaled(seconds):
    return seconds * SCALE


def free_port():
    # one picker for every fixture stack: below the ephemeral range, free
    # for TCP and UDP (helpers.free_port says why)
    return helpers.free_port()


def wait_for(pred, timeout, what, interval=0.05):
    """Polls PRED until it returns something truthy; fails after TIMEOUT."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
        except AssertionError as exc:
            last = exc
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}"
                                 + (f" (last: {last})" if last else ""))
        time.sleep(interval)


class Station:
    def __init__(self, root, name, registry, dirname=None):
        self.name = name
        self.dir = os.path.join(str(root), dirname or name)
        self.port = free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(str(root), f"{name}.log")
        self.proc = None
        self.registry = registry

    def cmd(self, *args, input=None, check=True, timeout=None):
        argv = [BIN, "-d", self.dir] + [str(a) for a in args]
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           timeout=timeout or scaled(30))
        if check and p.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {p.returncode}\n"
                                 f"stdout: {p.stdout}\nstderr: {p.stderr}")
        return p

    def init(self):
        self.cmd("init", self.name, "--listen", self.listen)
        return self

    def card(self, address=True):
        text = self.cmd("card").stdout
        if not address:
            text = "".join(l for l in text.splitlines(True)
                           if not l.strip().startswith("Address"))
        return text

    def card_field(self, key):
        for line in self.card().splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip() == key:
                return v.strip()
        raise AssertionError(f"no {key} in the card of {self.name}")

    @property
    def noise_key(self):
        return base64.b64decode(self.card_field("NoiseKey"))

    def pin(self, other, dial=True, address=None):
        """Pins OTHER's card; DIAL False drops its Address (we never dial)."""
        args = ["peer", "add", "-", "--trust-without-checking"]
        if address:
            args += ["--address", address]
        return self.cmd(*args, input=other.card(address=dial))

    @property
    def conf_path(self):
        return os.path.join(self.dir, "station.conf")

    def set_option(self, key, value):
        """KEY = VALUE in [Station] (settings no command exposes)."""
        with open(self.conf_path) as f:
            lines = f.read().splitlines()
        out = []
        for line in lines:
            if line.split("=", 1)[0].strip() == key:
                continue
            out.append(line)
            if line.strip() == "[Station]":
                out.append(f"{key} = {value}")
        self.write_conf("\n".join(out) + "\n")

    def write_conf(self, text):
        """Replaces station.conf the way hotline does: a temporary, renamed."""
        tmp = self.conf_path + ".test-tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.conf_path)

    # -- daemon

    def start(self, wait=True, verbose=True):
        assert self.proc is None
        log = open(self.log_path, "ab")
        argv = [BIN, "-d", self.dir, "run"] + (["--verbose"] if verbose else [])
        try:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=log, start_new_session=True)
        finally:
            log.close()
        helpers.keep_priority(self.proc.pid)
        self.registry.append(self)
        if wait:
            self.wait_ready()
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name}: daemon exited {self.proc.returncode}:\n"
                                 + self.log_tail())

    def wait_ready(self, timeout=None):
        def ready():
            self.assert_alive()
            st = self.status()
            return st if st.get("daemon") else None
        return wait_for(ready, timeout or scaled(15), f"{self.name} daemon ready")

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals the daemon, waits; returns its exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout=timeout or scaled(10))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"{self.name}: daemon ignored signal {sig}")
        return proc.returncode

    def kill9(self):
        return self.stop(signal.SIGKILL)

    # -- status

    def status(self):
        # Exit 3: the daemon is not running (the status is printed all the same).
        p = self.cmd("status", "--json", check=False)
        assert p.returncode in (0, 3), f"status --json exited {p.returncode}: {p.stderr}"
        return json.loads(p.stdout)

    def peer(self, name):
        for p in self.status()["peers"]:
            if p["name"] == name:
                return p
        raise AssertionError(f"{self.name}: no peer {name} in status")

    def wait_state(self, name, state, timeout=None):
        def check():
            self.assert_alive()
            p = self.peer(name)
            return p if p["state"] == state else None
        return wait_for(check, timeout or scaled(15), f"{self.name}: {name} {state}")

    def wait_not_connected(self, name, timeout=None):
        def check():
            p = self.peer(name)
            return p if p["state"] != "connected" else None
        return wait_for(check, timeout or scaled(15), f"{self.name}: {name} not connected")

    # -- log

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_log(self, needle, timeout=None):
        return wait_for(lambda: needle in self.log_text(), timeout or scaled(10),
                        f"{self.name} log to say {needle!r}")


class Stations:
    """Makes stations in tmp_path; kills every daemon at teardown and fails
    the test when a daemon's log holds a sanitizer report."""

    def __init__(self, root):
        self.root = root
        self.started = []
        self.made = []

    def __call__(self, name, init=True, dirname=None):
        st = Station(self.root, name, self.started, dirname=dirname)
        if init:
            st.init()
        self.made.append(st)
        return st

    def pair(self, a="alpha", b="bravo", a_dials=True, b_dials=True, start=True, **opts):
        sa, sb = self(a), self(b)
        for st in (sa, sb):
            for k, v in opts.items():
                st.set_option(k, v)
        sa.pin(sb, dial=a_dials)
        sb.pin(sa, dial=b_dials)
        if start:
            sa.start()
            sb.start()
            sa.wait_state(b, "connected")
            sb.wait_state(a, "connected")
        return sa, sb

    def teardown(self):
        """SIGTERM first, so that a clean exit (and, in sanitizer builds,
        the leak check at exit) is part of every test; SIGKILL if needed."""
        bad = []
        for st in self.started:
            proc, st.proc = st.proc, None
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                rc = proc.wait(timeout=scaled(10))
                if rc != 0:
                    bad.append(f"{st.name}: daemon exited {rc} on SIGTERM")
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                bad.append(f"{st.name}: daemon ignored SIGTERM")
        for st in self.made:
            lines = [l for l in st.log_text().splitlines()
                     if any(m in l for m in SANITIZER_MARKS)]
            if lines:
                bad.append(f"{st.name}: sanitizer report:\n" + "\n".join(lines[:10]))
        return bad


@pytest.fixture
def daemons(tmp_path, request):
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"HOTLINE_BIN {BIN!r} is not an executable")
    factory = Stations(tmp_path)
    failed_before = request.session.testsfailed
    try:
        yield factory
    finally:
        bad = factory.teardown()
        # The call phase's failure is counted before teardown runs.
        if request.session.testsfailed > failed_before:
            for st in factory.made:
                print(f"----- {st.name} log -----\n{st.log_tail(60)}")
        if bad:
            pytest.fail("\n".join(bad))


# ---- the control socket, spoken directly

def control_path(dirfd):
    return f"/proc/self/fd/{dirfd}/control.sock"


def control_raw(station_dir, payload, timeout=None, shutdown=True):
    """Sends PAYLOAD (bytes) on the control socket; returns all bytes the
    daemon sends back before closing."""
    dirfd = os.open(station_dir, os.O_PATH | os.O_DIRECTORY)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout or scaled(10))
        try:
            s.connect(control_path(dirfd))
            if payload:
                s.sendall(payload)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
            chunks = []
            while True:
                try:
                    b = s.recv(65536)
                except ConnectionResetError:
                    break
                if not b:
                    break
                chunks.append(b)
            return b"".join(chunks)
        finally:
            s.close()
    finally:
        os.close(dirfd)


def control(station_dir, request):
    """One JSON request; the parsed response."""
    out = control_raw(station_dir, json.dumps(request).encode() + b"\n")
    assert out.endswith(b"\n") and out.count(b"\n") == 1, out
    return json.loads(out)


# ---- a relay that holds dials back, to make two of them meet

class GateRelay:
    """Listens on N ports; each accepted connection is held (nothing
    relayed) until connections have arrived on every port, then each is
    connected to its target and relayed both ways at the same moment."""

    def __init__(self, targets):
        self.targets = targets                 # [(host, port)] one per listener
        self.listeners = []
        self.ports = []
        for _ in targets:
            ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            ls.bind(("127.0.0.1", 0))
            ls.listen(8)
            self.listeners.append(ls)
            self.ports.append(ls.getsockname()[1])
        self.held = [None] * len(targets)
        self.stop = threading.Event()
        self.released = threading.Event()
        self.threads = []
        self.sockets = []
        t = threading.Thread(target=self._accept, daemon=True)
        t.start()
        self.threads.append(t)

    def _accept(self):
        while not self.stop.is_set() and not all(self.held):
            r, _, _ = select.select([l for i, l in enumerate(self.listeners)
                                     if self.held[i] is None], [], [], 0.05)
            for ls in r:
                i = self.listeners.index(ls)
                c, _ = ls.accept()
                self.held[i] = c
                self.sockets.append(c)
        if self.stop.is_set():
            return
        ups = []
        for i, c in enumerate(self.held):
            up = socket.create_connection(self.targets[i])
            self.sockets.append(up)
            ups.append(up)
        self.released.set()
        for c, up in zip(self.held, ups):
            for a, b in ((c, up), (up, c)):
                t = threading.Thread(target=self._pipe, args=(a, b), daemon=True)
                t.start()
                self.threads.append(t)

    def _pipe(self, a, b):
        try:
            while not self.stop.is_set():
                r, _, _ = select.select([a], [], [], 0.05)
                if not r:
                    continue
                data = a.recv(65536)
                if not data:
                    break
                b.sendall(data)
        except OSError:
            pass
        try:
            b.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=2)
        for s in self.sockets + self.listeners:
            try:
                s.close()
            except OSError:
                pass
