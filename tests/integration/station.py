"""station.py — the one fixture module of hotline's integration tests: the
hotline binary run against station directories, `hotline run` daemons that
are always stopped at teardown, one TCP proxy, and the `Net` that owns
everything one test started.  The one Python protocol peer (an independent
implementation of the wire protocol) is hlpeer.py; every pytest fixture is
in conftest.py; mailutil.py runs a private mail server, voiceutil.py and
checks_util.py hold what the voice and line-check tests share.  No test
file imports another.

What a test author uses
  fixtures (conftest.py)  `net` — a Net (pair() names washington/pyongyang);
                          `stations` — the same, under the name the station
                          tests use; `daemons` — a Net whose daemons run with
                          --verbose, pair() names alpha/bravo, and whose
                          teardown fails the test when a daemon exits non-zero
                          on SIGTERM; `mailserver` — private Postfix instances
                          (mailutil.py); `pair` (alpha and beta pinned, not
                          started), `mailpair`, `probed` (a ProbedPair),
                          `chain` (an hlpeer's items to a station, once per
                          ITEM_PATH), `hostile`, `staged`.
  Net                     station(name, init=True, dir=None, port=None,
                          **options) (also net(name, ...)), pair(a, b,
                          start, a_dials, b_dials, via_proxy, rate, ...) ->
                          (a, b, proxy or None), proxy(port, ...),
                          tmpfs(path, size), on_teardown(fn), and hlpeer
                          stations: hlpeer_pinned, connect_hlpeer,
                          hlpeer_linked, hlpeer_listening, accept_hlpeer.
  Station                 cmd(), init(), card()/card_text()/card_field(),
                          noise_key/signing_key/fingerprint, pin(other,
                          dial, address), add_peer(), set_option(),
                          set_peer_option(), write_conf(), start()/stop()/
                          kill9(), status(), peer_status(), wait_connected(),
                          wait_state(), wait_not_connected(), the message
                          commands (send, send_lines, inbox, inbox_ids,
                          inbox_entry, outbox, outbox_states, read_json,
                          wait_delivered, wait_in_inbox), the daemon's log
                          (log_text, log_tail, wait_log).
  Proxy                   forwards to a port; counts bytes each way, can
                          throttle (RATE), delay every piece (DELAY), keep
                          each connection's first frame (first_frames), cut
                          every connection (drop_all, refuse_new), and hold
                          connections until every proxy of a Gate has one.
  timing                  scaled(seconds): every bound, 4x in sanitizer
                          builds; wait_for(predicate, timeout, what).
  ports                   free_port(): below the ephemeral range, free for
                          TCP and UDP, never the same port twice in this
                          process, claimed with O_EXCL across processes.
  processes               keep_priority(pid), bin_for_user(uid).
  also                    control(dir, request) on a daemon's control
                          socket; db(st)/held(st, seq) read its store;
                          Replayer and Flooder replay captured handshakes;
                          make_file(); check_message_json(); rfc3339_ms().

Only the standard library and hlpeer.py are used here.
"""

import base64
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import tempfile
import threading
import time

import hlpeer

HERE = os.path.dirname(os.path.abspath(__file__))
HOTLINE_BIN = os.path.abspath(os.environ.get("HOTLINE_BIN")
                              or os.path.join(HERE, "..", "..", "build", "hotline"))

# Sanitizer builds run several times slower: every bound is scaled
# (scaled(), shared with the Python peer).
SANITIZE, SCALE, scaled = hlpeer.SANITIZE, hlpeer.SCALE, hlpeer.scaled

# Lines a sanitizer prints when it finds something; a daemon log holding one
# fails the test that started the daemon.
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:",
                   "hotline: sandbox: system call")   # src/daemon/sandbox.c stopped a process

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
ID_RE = re.compile(r"^[0-9a-f]{32}$")


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls PREDICATE until it returns something truthy and returns it;
    AssertionError naming WHAT after TIMEOUT seconds (already scaled by the
    caller).  A predicate may raise AssertionError to explain itself; the
    last one is quoted."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError as exc:
            last = exc
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}"
                                 + (f" (last: {last})" if last else ""))
        time.sleep(interval)


# ------------------------------------------------------------- processes

_BIN_FOR = {}


def bin_for_user(uid):
    """HOTLINE_BIN where user UID can run it.  A build tree that UID cannot
    reach (a clone in root's 0700 home, as in a fresh Debian root) would
    stop a daemon that becomes UID (daemon/privs.c refuses to start) and
    every command run as UID: the programs are then copied, once per test
    process, into a folder UID can search, as `make install` would."""
    if uid in _BIN_FOR:
        return _BIN_FOR[uid]
    path = HOTLINE_BIN
    ok = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                         "--", "test", "-x", path]).returncode == 0
    if not ok:
        d = tempfile.mkdtemp(prefix="hotline-bin-")
        os.chmod(d, 0o755)
        for prog in ("hotline", "hotline-daemon", "hotline-mail", "hotline-voice"):
            src = os.path.join(os.path.dirname(path), prog)
            if os.path.exists(src):
                shutil.copy2(src, d)
        path = os.path.join(d, "hotline")
    _BIN_FOR[uid] = path
    return path


def keep_priority(pid):
    """Gives process PID, just started in a session of its own, this test's
    priority.  With the kernel's autogroups (sched_autogroup_enabled) a
    process's nice ranks it only within its session; sessions share the CPU
    by their autogroup's nice, so a daemon started with start_new_session
    would otherwise compete at 0 whatever the test's own nice (the real-time
    voice tests run at -10: CMakeLists.txt, run_pytest.sh).  Best effort:
    without autogroups, or without the right to raise a priority, the
    process keeps the nice it inherited."""
    nice = os.nice(0)
    if nice == 0:
        return
    try:
        with open(f"/proc/{pid}/autogroup", "w") as f:
            f.write(str(nice))
    except OSError:
        pass


# ------------------------------------------------------------------ ports

def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


_PORTS_GIVEN = set()
_PORT_CLAIMS = os.path.join(tempfile.gettempdir(), f"hotline-test-ports-{os.getuid()}")
_PORT_CLAIM_SECONDS = 600


def _claim_port(port):
    """Claim PORT among every test process on this machine: a file made with
    O_EXCL, so two tests running in parallel never pick the same port in the
    moment between picking it and binding it.  A claim older than ten
    minutes is stale (its test is long over) and is taken over."""
    os.makedirs(_PORT_CLAIMS, exist_ok=True)
    path = os.path.join(_PORT_CLAIMS, str(port))
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return True
    except FileExistsError:
        try:
            if time.time() - os.stat(path).st_mtime < _PORT_CLAIM_SECONDS:
                return False
            os.utime(path)
            return True
        except FileNotFoundError:
            return False


def free_port():
    """A port on 127.0.0.1 that was free a moment ago for both TCP and UDP,
    for a station to listen on (Listen, MediaListen).  It is picked below
    the kernel's ephemeral range: a port from that range could be taken as
    the source port of one of the many outgoing connections tests make (in
    parallel too), or as the UDP port of a daemon whose MediaListen asks
    for any port, between now and the daemon's bind().  No port is handed
    out twice, in this process or to another test process running at the
    same time (_claim_port): two ports asked for before either is bound
    were once the same port."""
    lo, _ = _ephemeral_range()
    first = 10000
    for _ in range(400):
        if lo - first < 1000:
            break
        port = random.randrange(first, lo)
        if port in _PORTS_GIVEN:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        if not _claim_port(port):
            continue
        _PORTS_GIVEN.add(port)
        return port
    while True:     # no room below the ephemeral range: let the kernel pick
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _PORTS_GIVEN and _claim_port(port):
            _PORTS_GIVEN.add(port)
            return port


def port_open(port):
    """Something listens on PORT of the loopback: 127.0.0.1, or ::1 (a
    station whose Listen names a host, e.g. localhost, which a system may
    resolve to ::1 first, as a fresh Debian root does)."""
    for host in ("127.0.0.1", "::1"):
        try:
            socket.create_connection((host, port), timeout=1).close()
            return True
        except OSError:
            pass
    return False


# ------------------------------------------------------------------ cards

def parse_card(text):
    """The [Station] section of a card as a dict (keys as written).  Comment
    lines (# or ;) and blank lines are skipped."""
    fields = {}
    section = None
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            continue
        assert section == "Station", f"card line outside [Station]: {raw!r}"
        key, sep, value = line.partition("=")
        assert sep, f"card line without '=': {raw!r}"
        fields[key.strip()] = value.strip()
    return fields


def without_address(card):
    return "".join(l for l in card.splitlines(True) if not l.strip().startswith("Address"))


# ---------------------------------------------------------------- station

class CommandError(AssertionError):
    pass


class Station:
    """One station directory and, when started, its daemon (`hotline run`,
    output appended to LOG_PATH).  NET (the Net that made it) is told of
    every daemon started, so that teardown stops it."""

    def __init__(self, net, name, dir=None, port=None):
        self.net = net
        self.name = name
        self.dir = dir or os.path.join(net.root, name)
        self.port = port or free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(net.root, f"{name}.log")
        self.proc = None
        self.wrapped = False
        self.init_output = ""
        self._card = None
        # argv before HOTLINE_BIN for commands (not the daemon): e.g. setpriv,
        # to run them as the user the station belongs to (mailutil.py).
        self.cmd_prefix = []
        # the program commands and the daemon run (bin_for_user: another
        # user's copy)
        self.bin = HOTLINE_BIN

    # -- commands

    def cmd(self, *args, input=None, check=True, timeout=None, binary=False, env=None):
        """Runs `hotline -d DIR ARGS...`; returns the CompletedProcess.  With
        CHECK, a non-zero exit fails the test quoting its output."""
        argv = self.cmd_prefix + [self.bin, "-d", self.dir] + [str(a) for a in args]
        if isinstance(input, str) and binary:
            input = input.encode()
        p = subprocess.run(argv, input=input, capture_output=True, text=not binary,
                           timeout=timeout or scaled(60), env=env)
        if check and p.returncode != 0:
            raise CommandError(f"{' '.join(argv)} exited {p.returncode}\n"
                               f"stdout: {p.stdout!r}\nstderr: {p.stderr!r}")
        return p

    def init(self, *extra):
        self.init_output = self.cmd("init", self.name, "--listen", self.listen, *extra).stdout
        return self

    def card_text(self):
        if self._card is None:
            self._card = self.cmd("card").stdout
        return self._card

    def card(self):
        return parse_card(self.card_text())

    def card_field(self, key):
        value = self.card().get(key)
        assert value is not None, f"{self.name}: card has no {key}: {self.card_text()!r}"
        return value

    @property
    def noise_key(self):
        return base64.b64decode(self.card_field("NoiseKey"))

    @property
    def signing_key(self):
        return base64.b64decode(self.card_field("SigningKey"))

    @property
    def next_key_hash(self):
        """The card's NextKeyHash (None for a card without one)."""
        v = self.card().get("NextKeyHash")
        return base64.b64decode(v, validate=True) if v else None

    def forget_card(self):
        """After `key rotate` the card is another: read it again."""
        self._card = None

    @property
    def fingerprint(self):
        return hlpeer.fingerprint_text(self.noise_key, self.signing_key, self.next_key_hash)

    def add_peer(self, card, fingerprint=None, address=None):
        """`peer add` of CARD text (given on stdin), its fingerprint checked
        as an operator would (or taken without checking when None)."""
        args = ["peer", "add", "-"]
        if address:
            args += ["--address", address]
        args += ["--fingerprint", fingerprint] if fingerprint else ["--trust-without-checking"]
        return self.cmd(*args, input=card)

    def pin(self, other, dial=True, address=None):
        """Pins OTHER (a Station or an hlpeer.Identity) by its card, its
        fingerprint checked.  This station dials it at ADDRESS when given;
        otherwise where OTHER listens (a Station) unless DIAL is False: then
        it is pinned without an Address (this station never dials it)."""
        card = without_address(other.card_text() if isinstance(other, Station) else other.card())
        if address is None and dial:
            address = getattr(other, "listen", None)
        return self.add_peer(card, fingerprint=other.fingerprint, address=address)

    @property
    def conf_path(self):
        return os.path.join(self.dir, "station.conf")

    def write_conf(self, text):
        """Replaces station.conf the way hotline does: a temporary, renamed."""
        tmp = self.conf_path + ".test-tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.conf_path)

    def set_option(self, key, value):
        """KEY = VALUE in station.conf's [Station] section (replacing the key
        if present), for settings no command exposes; the file is written in
        place (its owner and mode kept)."""
        with open(self.conf_path) as f:
            lines = f.read().splitlines()
        out, section, placed = [], None, False
        for line in lines:
            s = line.strip()
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1].strip().lower()
                out.append(line)
                if section == "station" and not placed:
                    out.append(f"{key} = {value}")
                    placed = True
                continue
            if section == "station" and s.split("=", 1)[0].strip().lower() == key.lower():
                continue   # the old value; the new one sits under the header
            out.append(line)
        assert placed, f"{self.conf_path} has no [Station] section"
        with open(self.conf_path, "w") as f:
            f.write("\n".join(out) + "\n")

    def set_peer_option(self, peer, key, value):
        """KEY = VALUE in the [Peer] section named PEER, through write_conf."""
        with open(self.conf_path) as f:
            lines = f.read().splitlines()
        out, section, done, cur_peer = [], None, False, None
        for line in lines:
            s = line.strip()
            if s.startswith("["):
                section, cur_peer = s, None
            if section == "[Peer]" and s.split("=", 1)[0].strip() == "Name":
                cur_peer = s.split("=", 1)[1].strip()
            elif (section == "[Peer]" and cur_peer == peer and
                  s.split("=", 1)[0].strip() == key):
                continue
            out.append(line)
            if section == "[Peer]" and s.split("=", 1)[0].strip() == "Name" and cur_peer == peer:
                out.append(f"{key} = {value}")
                done = True
        assert done, f"no [Peer] {peer} in {self.conf_path}"
        self.write_conf("\n".join(out) + "\n")

    # -- messages

    def send(self, peer, *words, precedence=None, subject=None, attach=(), wait=None,
             input=None, check=True, binary=False):
        """`hotline send`; returns the printed id (check=True) or the
        CompletedProcess (check=False)."""
        args = ["send", peer]
        if precedence:
            args += ["-p", precedence]
        if subject is not None:
            args += ["-s", subject]
        for a in attach:
            args += ["-a", a]
        if wait is not None:
            args.append(f"--wait={wait}")
        args += list(words)
        p = self.cmd(*args, input=input, check=check, binary=binary,
                     timeout=scaled(60) + (wait or 0))
        if not check:
            return p
        out = p.stdout.decode() if binary else p.stdout
        lines = out.splitlines()
        # The id first; with --wait, then "delivered to PEER at TIME (...)".
        assert len(lines) == (2 if wait is not None else 1) and ID_RE.match(lines[0]), \
            f"send printed {out!r}"
        if wait is not None:
            assert lines[1].startswith("delivered to "), f"send --wait printed {out!r}"
        return lines[0]

    def send_lines(self, peer, lines, precedence=None):
        args = ["send", peer, "--lines"]
        if precedence:
            args += ["-p", precedence]
        p = self.cmd(*args, input="".join(l + "\n" for l in lines), timeout=scaled(120))
        ids = p.stdout.split()
        assert len(ids) == len(lines), f"send --lines printed {len(ids)} ids for {len(lines)} lines"
        for i in ids:
            assert ID_RE.match(i), f"send --lines printed {i!r}"
        return ids

    def _json(self, *args, timeout=None):
        p = self.cmd(*args, timeout=timeout)
        try:
            return json.loads(p.stdout)
        except ValueError as exc:
            raise AssertionError(f"{args} printed no JSON: {p.stdout[:500]!r}") from exc

    def inbox(self):
        v = self._json("inbox", "--json")
        assert isinstance(v, list), f"inbox --json is not an array: {v!r}"
        return v

    def outbox(self):
        v = self._json("outbox", "--json")
        assert isinstance(v, list), f"outbox --json is not an array: {v!r}"
        return v

    def read_json(self, mid):
        v = self._json("read", mid, "--json")
        assert isinstance(v, dict), f"read --json is not an object: {v!r}"
        return v

    def inbox_ids(self):
        return {m["id"] for m in self.inbox()}

    def inbox_entry(self, mid):
        """Message MID of the inbox, or None."""
        for m in self.inbox():
            if m["id"] == mid:
                return m
        return None

    def outbox_states(self):
        return {m["id"]: m["state"] for m in self.outbox()}

    def wait_delivered(self, ids, timeout, what=None):
        """Waits until every id in IDS is `delivered` in the outbox."""
        ids = set(ids)

        def check():
            st = self.outbox_states()
            missing = [i for i in ids if st.get(i) != "delivered"]
            if missing:
                counts = {}
                for i in missing:
                    counts[st.get(i)] = counts.get(st.get(i), 0) + 1
                raise AssertionError(f"{len(missing)} of {len(ids)} not delivered, states {counts}")
            return True
        return wait_for(check, timeout, what or f"{len(ids)} message(s) delivered from {self.name}",
                        interval=0.25)

    def wait_in_inbox(self, ids, timeout):
        ids = set(ids)

        def check():
            have = {m["id"] for m in self.inbox()}
            missing = ids - have
            if missing:
                raise AssertionError(f"{len(missing)} of {len(ids)} not in {self.name}'s inbox")
            return True
        return wait_for(check, timeout, f"{len(ids)} message(s) in {self.name}'s inbox",
                        interval=0.25)

    # -- status

    def status(self):
        # Exit 3: the daemon is not running (the status is printed all the same).
        p = self.cmd("status", "--json", check=False)
        if p.returncode not in (0, 3):
            raise CommandError(f"status --json exited {p.returncode}: {p.stderr}")
        try:
            return json.loads(p.stdout)
        except ValueError as exc:
            raise AssertionError(f"status --json printed no JSON: {p.stdout!r}") from exc

    def peer_status(self, name):
        """Peer NAME's entry in `status --json`."""
        st = self.status()
        for peer in st.get("peers") or []:
            if peer.get("name") == name:
                return peer
        raise AssertionError(f"{self.name}: no peer {name!r} in status {st!r}")

    def wait_state(self, name, state, timeout=None):
        """Waits until status shows peer NAME in STATE; returns its entry."""
        def check():
            self.assert_alive()
            p = self.peer_status(name)
            return p if p.get("state") == state else None
        return wait_for(check, timeout or scaled(20), f"{self.name}: {name} {state}",
                        interval=0.1)

    def wait_connected(self, name, timeout=None):
        return self.wait_state(name, "connected", timeout)

    def wait_not_connected(self, name, timeout=None):
        def check():
            p = self.peer_status(name)
            return p if p.get("state") != "connected" else None
        return wait_for(check, timeout or scaled(15), f"{self.name}: {name} not connected")

    # -- daemon

    def start(self, wait=True, wrapper=(), env=None, verbose=None):
        """Starts `hotline run` (--verbose when VERBOSE, by default the
        Net's choice) with its output appended to LOG_PATH; with WAIT,
        returns once the daemon answers status and listens.  WRAPPER is an
        argv prefix (strace ...): signals then go to the whole process
        group, so that they reach the daemon under it."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.name}: already running"
        verbose = self.net.verbose if verbose is None else verbose
        argv = list(wrapper) + [self.bin, "-d", self.dir, "run"] + (["--verbose"] if verbose else [])
        log = open(self.log_path, "ab")
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, env=env)
        finally:
            log.close()
        keep_priority(proc.pid)
        self.proc, self.wrapped = proc, bool(wrapper)
        self.net.started(self, proc)
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self):
        """The daemon's pid (under a wrapper: the wrapper's)."""
        return self.proc.pid if self.proc is not None else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def assert_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name}: daemon exited with {self.proc.returncode}; "
                                 f"log:\n{self.log_tail()}")

    def wait_ready(self, timeout=None):
        def ready():
            self.assert_alive()
            st = self.status()
            if not st.get("daemon") or "station" not in st:
                return None
            return port_open(self.port) and st
        return wait_for(ready, timeout or scaled(20), f"{self.name} daemon ready")

    def _signal(self, proc, sig):
        try:
            if self.wrapped:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals the daemon and waits for it; SIGKILL (of its process
        group) if it does not stop.  Returns its exit status (None if it was
        not started)."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            self._signal(proc, sig)
            try:
                proc.wait(timeout=timeout or scaled(10))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AssertionError(f"{self.name}: daemon ignored {sig!r}; killed")
        return proc.returncode

    def kill9(self):
        """SIGKILL of the daemon's whole process group, waited for."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()

    # -- log

    def log_text(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_lines(self):
        return self.log_text().splitlines()

    def log_tail(self, n=40):
        return "\n".join(self.log_lines()[-n:])

    def wait_log(self, needle, timeout=None):
        return wait_for(lambda: needle in self.log_text(), timeout or scaled(10),
                        f"{self.name} log to say {needle!r}")

    def sanitizer_reports(self):
        return [l for l in self.log_lines() if any(m in l for m in SANITIZER_MARKS)]


# ------------------------------------------------------------------ proxy

class Gate:
    """Holds the first connection of each of N proxies (Proxy(gate=...))
    until all N have one, then lets them through at the same moment: two
    stations' dials made to meet.  `released` is set then."""

    def __init__(self, n):
        self.n, self.arrived = n, 0
        self.lock = threading.Lock()
        self.released = threading.Event()

    def wait(self, stopping):
        """Counts one arrival and waits for the others; whether the
        connection may go through (False: STOPPING said to give up)."""
        with self.lock:
            self.arrived += 1
            if self.arrived >= self.n:
                self.released.set()
        while not self.released.wait(0.05):
            if stopping():
                return False
        return True


class Proxy:
    """A TCP proxy from a free 127.0.0.1 port (`address`) to TARGET_PORT.

    It counts the bytes forwarded each way over all connections (`down`:
    from the dialer toward the target; `up`: back) and the connections
    (`accepted`); keeps, per connection, the first frame the dialer sent
    (`first_frames`: a real message 1 to replay); can throttle the downward
    direction to RATE bytes per second, add DELAY seconds to every piece
    forwarded each way (a long line), shrink the socket buffers to RCVBUF,
    and hold its first connection until every proxy of GATE has one.
    drop_all() cuts every open connection at once; new connections are
    forwarded afterwards unless refuse_new is set."""

    def __init__(self, target_port, rate=None, rcvbuf=None, delay=0.0, gate=None):
        self.target_port = target_port
        self.rate, self.rcvbuf, self.delay, self.gate = rate, rcvbuf, delay, gate
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if rcvbuf:
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(32)
        self.port = self.lsock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.lock = threading.Lock()
        self.conns = []          # [client, server] socket pairs
        self.first_frames = []
        self.down = self.up = self.accepted = self.drops = 0
        self.refuse_new = False
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            if self.refuse_new or self.stopping:
                client.close()
                continue
            if self.gate is not None:
                gate, self.gate = self.gate, None
                if not gate.wait(lambda: self.stopping):
                    client.close()
                    return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            for s in (client, server):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.rcvbuf:
                client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
                server.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.rcvbuf)
            pair = [client, server]
            with self.lock:
                self.conns.append(pair)
                self.accepted += 1
            threading.Thread(target=self._pump, args=(client, server, True, pair),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False, pair),
                             daemon=True).start()

    def _capture(self, captured, data):
        """Adds DATA to the dialer's first bytes; True once its first frame
        is complete (and kept)."""
        captured += data
        if len(captured) < 2:
            return False
        (n,) = struct.unpack(">H", captured[:2])
        if len(captured) < 2 + n:
            return False
        with self.lock:
            self.first_frames.append(bytes(captured[2:2 + n]))
        return True

    def _pump(self, src, dst, downward, pair):
        start = time.monotonic()
        moved = 0
        captured = bytearray() if downward else None
        try:
            while True:
                throttled = downward and self.rate
                data = src.recv(16384 if throttled else 65536)
                if not data:
                    break
                if captured is not None and self._capture(captured, data):
                    captured = None
                if throttled:
                    moved += len(data)
                    ahead = moved / self.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
                with self.lock:
                    if downward:
                        self.down += len(data)
                    else:
                        self.up += len(data)
        except OSError:
            pass
        finally:
            for s in pair:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def drop_all(self):
        """Cuts every open connection (both sides see a reset or EOF), as a
        lost line would."""
        with self.lock:
            pairs, self.conns = self.conns, []
            self.drops += 1
        for pair in pairs:
            for s in pair:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.stopping = True
        # shutdown() wakes the accept thread; only then is the descriptor
        # closed, so its number cannot be reused under a pending accept().
        try:
            self.lsock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(10)
        try:
            self.lsock.close()
        except OSError:
            pass
        self.drop_all()


# ------------------------------------------------------------ the store

def db(st):
    con = sqlite3.connect(f"file:{os.path.join(st.dir, 'store.db')}?mode=ro", uri=True,
                          timeout=30)
    return con


def held(st, seq):
    """(kind, hash) of the peer's item at SEQ as ST holds it, or None."""
    with db(st) as con:
        row = con.execute("SELECT kind, hash FROM items WHERE dir = 1 AND seq = ?",
                          (seq,)).fetchone()
    return (row[0], bytes(row[1])) if row else None


# ------------------------------------------------ paths for hlpeer items

class LinkPath:
    """Items go over the live link; each is waited for (ACK or REFUSE)."""
    name = "link"

    def __init__(self, net, st, peer):
        self.net, self.st, self.peer = net, st, peer
        st.start()
        net.connect_hlpeer(st, peer)

    def deliver(self, ois, settle=True):
        for oi in ois:
            self.peer.session.send_record(hlpeer.T_ITEM, hlpeer.rec_item(oi.encoded, oi.rest))
            for part in sorted(oi.parts):
                data = oi.parts[part]
                for off in range(0, len(data), hlpeer.CHUNK_DATA_MAX):
                    self.peer.session.send_record(hlpeer.T_CHUNK, hlpeer.rec_chunk(
                        oi.seq, part, off, data[off:off + hlpeer.CHUNK_DATA_MAX]))
        if settle:
            for oi in ois:
                self.peer.wait(lambda: oi.seq in self.peer.acked or
                               self.refusal_of(oi) is not None, scaled(10),
                               f"ACK or REFUSE of item {oi.seq}")
            # a REFUSE follows the ACK of the commit that settled it
            self.peer.poll(0.3)
        return 0

    def refusal_of(self, oi):
        """The REFUSE of that very item (its hash), if one came."""
        for seq, h, code, _ in self.peer.refusals:
            if seq == oi.seq and h == oi.hash:
                return code
        return None

    def refusal(self, seq):
        r = [x for x in self.peer.refusals if x[0] == seq]
        return r[-1][2] if r else None

    def goes_on(self):
        """A good message after the bad one is still received (the session
        was not closed, the peer's next position is open)."""
        good = self.peer.compose("after", "still talking", precedence=hlpeer.FLASH)
        self.deliver([good])
        assert self.peer.refusal_for(good.seq) is None, self.peer.refusals
        assert self.st.alive()


class BundlePath:
    """Items go in a sealed courier bundle, imported with `bundle import`."""
    name = "bundle"

    def __init__(self, net, st, peer):
        self.net, self.st, self.peer = net, st, peer
        self.n = 0

    def deliver(self, ois, settle=True):
        recs = []
        for oi in ois:
            recs.append((hlpeer.T_ITEM, hlpeer.rec_item(oi.encoded, oi.rest)))
            for part in sorted(oi.parts):
                data = oi.parts[part]
                for off in range(0, len(data), hlpeer.CHUNK_DATA_MAX):
                    recs.append((hlpeer.T_CHUNK, hlpeer.rec_chunk(
                        oi.seq, part, off, data[off:off + hlpeer.CHUNK_DATA_MAX])))
        self.n += 1
        path = os.path.join(self.net.root, f"in-{self.n}.bundle")
        with open(path, "wb") as f:
            f.write(hlpeer.seal_bundle(self.peer.me, self.st.noise_key, recs))
        p = self.st.cmd("bundle", "import", path, check=False)
        self.last = p
        return p.returncode

    def refusal(self, seq):
        return None   # a bundle carries no REFUSE back

    def goes_on(self):
        good = self.peer.compose("after", "still talking", precedence=hlpeer.FLASH)
        assert self.deliver([good]) == 0, self.last.stderr
        assert held(self.st, good.seq) is not None


ITEM_PATHS = [LinkPath, BundlePath]


# ------------------------------------------------- a pair and a probe

PROBED_OPTIONS = {"HandshakeTimeout": "2s", "Keepalive": "1s", "KeepaliveTimeout": "10s"}
# Times in status are RFC 3339 to the second: a session that replaced another
# within the same second would show the same `session_since`.  Tests that
# compare them let a second pass after taking them; `sessions` (the count of
# sessions confirmed with the peer) catches a replacement at any speed.
SINCE_RESOLUTION = 1.1


def session_of(peer):
    """What identifies the current session in a peer's status entry."""
    assert peer["state"] == "connected", peer
    return (peer["since"], peer["sessions"], peer["session_since"])


class ProbedPair:
    """Stations washington (A) and pyongyang (B) linked, both with
    PROBED_OPTIONS, plus `probe`, an hlpeer identity A pinned (never
    dialed), to dial A with: what the tests of misbehaving peers start from."""

    def __init__(self, stations):
        self.a = stations("washington", **PROBED_OPTIONS)
        self.b = stations("pyongyang", **PROBED_OPTIONS)
        self.probe = hlpeer.Identity("probe")
        self.a.pin(self.b)
        self.b.pin(self.a)
        self.a.pin(self.probe)
        self.a.start()
        self.b.start()
        self.a_session, self.b_session = self.settle()

    def settle(self):
        """Waits until both sides show the link connected and the session no
        longer changes (both stations dial, and one duplicate is dropped)."""
        def stable():
            first = (session_of(self.a.wait_connected("pyongyang")),
                     session_of(self.b.wait_connected("washington")))
            time.sleep(max(SINCE_RESOLUTION, 1.5))
            again = (session_of(self.a.peer_status("pyongyang")),
                     session_of(self.b.peer_status("washington")))
            return first if first == again else None
        return wait_for(stable, scaled(30), "a stable A-B session", interval=0)

    def assert_serves_b(self):
        """A still serves B: the same session on both sides, pings flowing,
        and a new pinned initiator completes its handshake."""
        self.a.assert_alive()
        self.b.assert_alive()
        pa = self.a.peer_status("pyongyang")
        pb = self.b.peer_status("washington")
        assert pa["state"] == "connected", pa
        assert pb["state"] == "connected", pb
        assert session_of(pa) == self.a_session, f"A-B session at A was replaced: {pa}"
        assert session_of(pb) == self.b_session, f"A-B session at B was replaced: {pb}"
        assert pa["rtt_ms"] is not None, pa
        sess = hlpeer.dial(self.a.port, self.probe, self.a.noise_key)
        hello = hlpeer.parse_hello(sess.peer_hello)
        try:
            assert hello["min_version"] <= 1 <= hello["max_version"]
            sess.ping()
        finally:
            sess.close()

    def log_count(self):
        return len(self.a.log_lines())


# ------------------------------------------------------- hostile dialers

class Replayer:
    """An eavesdropper's replay: a thread that, RATE times a second, opens a
    connection to PORT (from loopback address SOURCE), sends one of FRAMES
    (captured handshake messages 1, in turn) and holds the connection open,
    as an attacker that wants to keep a pending handshake would, until the
    station closes it or HOLD seconds pass.  Counts what it sent and how many
    connections the station answered (with a message 2).  A context manager:
    the replay runs inside the `with` block."""

    def __init__(self, port, frames, rate=100.0, hold=30.0, source=None):
        self.port, self.frames, self.rate, self.hold = port, list(frames), rate, hold
        self.source = source
        self.sent = self.answered = self.failed = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopping.set()
        self.thread.join(10)

    def _run(self):
        held = []   # (socket, opened at, answered)
        nxt = time.monotonic()
        i = 0
        try:
            while not self.stopping.is_set():
                now = time.monotonic()
                if now >= nxt:
                    nxt += 1.0 / self.rate
                    try:
                        s = socket.create_connection(
                            ("127.0.0.1", self.port), timeout=2,
                            source_address=(self.source, 0) if self.source else None)
                        s.setblocking(False)
                        frame = self.frames[i % len(self.frames)]
                        s.send(struct.pack(">H", len(frame)) + frame)
                        held.append([s, now, False])
                        self.sent += 1
                        i += 1
                    except OSError:
                        self.failed += 1
                keep = []
                for entry in held:
                    s, opened, answered = entry
                    gone = now - opened > self.hold
                    try:
                        data = s.recv(4096)
                        if data:
                            if not answered:
                                self.answered += 1
                            entry[2] = True
                        else:
                            gone = True
                    except BlockingIOError:
                        pass
                    except OSError:
                        gone = True
                    if gone:
                        s.close()
                    else:
                        keep.append(entry)
                held = keep
                self.stopping.wait(max(0.0, min(0.005, nxt - time.monotonic())))
        finally:
            for s, _, _ in held:
                s.close()


class Flooder:
    """A handshake flood: build/bench/bench_flood (bench/flood.c, beside
    HOTLINE_BIN) keeps CONCURRENCY connections to PORT going, each from one
    of the loopback addresses SOURCES (many source ports), sending one of
    FRAMES (raw bytes, framing included) and closing once the station has.
    The sender does no cryptography.  A context manager; `result` is
    (connections, answered, per second) once it is over."""

    def __init__(self, port, sources, frames, concurrency=64, work_dir=None):
        tool = os.path.join(os.path.dirname(HOTLINE_BIN), "bench", "bench_flood")
        assert os.access(tool, os.X_OK), f"{tool} is missing: build it (make)"
        self.frame_file = os.path.join(work_dir or "/tmp", f"flood-frames-{os.getpid()}-{id(self)}")
        with open(self.frame_file, "wb") as f:
            f.write(b"".join(frames))
        self.argv = [tool, f"127.0.0.1:{port}", "3600", str(concurrency), self.frame_file,
                     *sources]
        self.proc = None
        self.result = None

    def __enter__(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     text=True)
        return self

    def __exit__(self, *exc):
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, err = self.proc.communicate(timeout=scaled(10))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, err = self.proc.communicate()
        os.unlink(self.frame_file)
        assert self.proc.returncode == 0, f"bench_flood failed: {err}"
        made, answered, rate = out.split()
        self.result = (int(made), int(answered), float(rate))


# -------------------------------------------------------------------- net

class Net:
    """Everything one test started: stations and their daemons, other
    processes, proxies, hlpeer sessions, mounts.  teardown() undoes all of
    it, pass or fail.  VERBOSE: daemons run with --verbose; CHECK_EXIT: a
    daemon that exits non-zero on the SIGTERM of teardown is a problem;
    NAMES: pair()'s default station names."""

    def __init__(self, root, names=("washington", "pyongyang"), verbose=False, check_exit=False):
        self.root = str(root)
        self.names, self.verbose, self.check_exit = names, verbose, check_exit
        self.stations = []     # every Station made (their logs are checked)
        self.running = []      # every Station whose daemon was started
        self.procs = []        # every daemon process (wrappers included)
        self.proxies = []
        self.closers = []
        self.mounts = []

    def station(self, name, init=True, dir=None, port=None, **options):
        """Station NAME (its directory: DIR, relative to the test's folder,
        by default NAME), `init`ed with a free 127.0.0.1 port when INIT;
        OPTIONS are written to its [Station] section."""
        st = Station(self, name, dir=os.path.join(self.root, dir) if dir else None, port=port)
        if init:
            st.init()
            for key, value in options.items():
                st.set_option(key, value)
        self.stations.append(st)
        return st

    __call__ = station

    def started(self, st, proc):
        if st not in self.running:
            self.running.append(st)
        self.procs.append(proc)

    def pair(self, a=None, b=None, start=True, a_dials=True, b_dials=True, via_proxy=False,
             rate=None, rcvbuf=None, b_dir=None, **options):
        """Two stations pinned to each other, each dialing the other unless
        told not to (A_DIALS, B_DIALS).  VIA_PROXY: A dials B through a Proxy
        (RATE, RCVBUF) and B does not dial A, so every byte of the link
        passes the proxy.  Returns (A, B, proxy or None); START runs both
        daemons and waits for the link."""
        a, b = a or self.names[0], b or self.names[1]
        sa = self.station(a, **options)
        sb = self.station(b, dir=b_dir, **options)
        proxy = None
        if via_proxy:
            proxy = self.proxy(sb.port, rate=rate, rcvbuf=rcvbuf)
            sa.pin(sb, address=proxy.address)
            sb.pin(sa, dial=False)
        else:
            sa.pin(sb, dial=a_dials)
            sb.pin(sa, dial=b_dials)
        if start:
            sb.start()
            sa.start()
            sa.wait_connected(b)
            sb.wait_connected(a)
        return sa, sb, proxy

    def proxy(self, target_port, **kw):
        p = Proxy(target_port, **kw)
        self.proxies.append(p)
        return p

    def tmpfs(self, path, size):
        """Mounts a tmpfs of SIZE (e.g. "64m") at PATH; unmounted at
        teardown."""
        os.makedirs(path, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", path],
                       check=True, capture_output=True, timeout=30)
        self.mounts.append(path)
        return path

    def on_teardown(self, fn):
        self.closers.append(fn)

    # -- hlpeer stations (the Python implementation of the protocol)

    def hlpeer_pinned(self, st, name="hlpeer", **peer_kw):
        """An hlpeer station pinned at ST without an Address (ST never dials
        it).  Returns the hlpeer.Peer; dial with connect_hlpeer()."""
        ident = hlpeer.Identity(name)
        st.pin(ident, dial=False)
        peer = hlpeer.Peer(ident, st.signing_key, **peer_kw)
        self.on_teardown(peer.close)
        return peer

    def connect_hlpeer(self, st, peer, wait=True):
        """PEER dials ST's daemon; with WAIT, returns once ST's status shows
        the link up and ST's opening ACK and RESUME are in."""
        peer.dial(st.port, st.noise_key)
        if wait:
            n_ack, n_res = len(peer.ack_records), len(peer.resumes)
            peer.wait(lambda: len(peer.ack_records) > n_ack and len(peer.resumes) > n_res,
                      scaled(10), f"{st.name}'s ACK and RESUME at session start")
            st.wait_connected(peer.me.name)
        return peer

    def hlpeer_listening(self, st, name="hlpeer", rcvbuf=None, **peer_kw):
        """An hlpeer station that ST dials (pinned with the Address of a
        Listener).  Returns (peer, listener); accept with accept_hlpeer()
        once ST's daemon runs."""
        ident = hlpeer.Identity(name)
        lst = hlpeer.Listener()
        if rcvbuf:
            lst.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.on_teardown(lst.close)
        st.pin(ident, address=lst.address)
        peer = hlpeer.Peer(ident, st.signing_key, **peer_kw)
        self.on_teardown(peer.close)
        return peer, lst

    def hlpeer_linked(self, name="pyongyang", start=True, **peer_kw):
        """Station NAME with an hlpeer pinned (hlpeer_pinned); with START,
        its daemon runs and the hlpeer is connected.  Returns (station,
        peer)."""
        st = self.station(name)
        peer = self.hlpeer_pinned(st, **peer_kw)
        if start:
            st.start()
            self.connect_hlpeer(st, peer)
        return st, peer

    def accept_hlpeer(self, st, peer, lst, timeout=None, hello_flags=None):
        sess = lst.accept(peer.me, expect_static=st.noise_key, timeout=timeout or scaled(20),
                          hello_flags=hello_flags)
        peer.attach(sess)
        return peer

    # -- teardown

    def _stop_daemons(self):
        """SIGTERM first, so that a clean exit (and, in sanitizer builds, the
        leak check at exit) is part of every test; SIGKILL if needed."""
        problems = []
        for st in self.running:
            running = st.alive()
            try:
                rc = st.stop()
                if self.check_exit and running and rc != 0:
                    problems.append(f"{st.name}: daemon exited {rc} on SIGTERM")
            except AssertionError as exc:
                problems.append(str(exc))
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    problems.append(f"process {proc.pid} would not die")
        return problems

    def teardown(self):
        """Undoes everything; returns the problems found (a daemon that would
        not stop, a sanitizer report in a daemon's log)."""
        problems = []
        for fn in reversed(self.closers):
            try:
                fn()
            except Exception as exc:   # teardown goes on whatever happens
                problems.append(f"closer: {exc!r}")
        for p in self.proxies:
            p.close()
        problems += self._stop_daemons()
        for path in reversed(self.mounts):
            r = subprocess.run(["umount", path], capture_output=True, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)
        for st in self.stations:
            reports = st.sanitizer_reports()
            if reports:
                problems.append(f"{st.name}: sanitizer report in {st.log_path}:\n"
                                + "\n".join(reports[:10]) + "\n" + st.log_tail(60))
        return problems


# ------------------------------------------------------ the control socket

def control_raw(station_dir, payload, timeout=None, shutdown=True):
    """Sends PAYLOAD (bytes) on the daemon's control socket; returns all
    bytes the daemon sends back before closing.  The socket is reached
    through /proc/self/fd, so a deep station path fits sun_path."""
    dirfd = os.open(station_dir, os.O_PATH | os.O_DIRECTORY)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(timeout or scaled(10))
        try:
            s.connect(f"/proc/self/fd/{dirfd}/control.sock")
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


# ------------------------------------------------------- message JSON

INBOX_FIELDS = {"id", "peer", "precedence", "subject", "size", "sent_at", "received_at",
                "body", "attachments"}
OUTBOX_FIELDS = {"id", "peer", "precedence", "subject", "size", "sent_at", "state",
                 "body", "attachments"}


def rfc3339_ms(text):
    """Milliseconds since the epoch of an RFC 3339 UTC time as hotline
    prints it (fractions kept to the millisecond)."""
    import calendar
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$", text)
    assert m, f"not an RFC 3339 UTC time: {text!r}"
    secs = calendar.timegm(tuple(int(g) for g in m.groups()[:6]) + (0, 0, 0))
    frac = (m.group(7) or "0").ljust(3, "0")[:3]
    return secs * 1000 + int(frac)


def make_file(path, size):
    """SIZE bytes of random-looking data, written in 4 MiB blocks (each
    block distinct), and its SHA-256 (the document hash)."""
    block_size = 4 << 20
    h = hashlib.sha256()
    seed = os.urandom(block_size)
    with open(path, "wb") as f:
        left, n = size, 0
        while left:
            block = (n.to_bytes(8, "big") + seed[8:])[:min(left, block_size)]
            f.write(block)
            h.update(block)
            left -= len(block)
            n += 1
    return h.hexdigest()


def check_message_json(m, box):
    """The fields every message object has (docs/json.md), with their
    formats."""
    want = INBOX_FIELDS if box == "inbox" else OUTBOX_FIELDS
    missing = want - set(m)
    assert not missing, f"{box} message lacks {sorted(missing)}: {m!r}"
    assert ID_RE.match(m["id"]), f"id {m['id']!r} is not 32 lowercase hex digits"
    assert m["precedence"] in hlpeer.PRECEDENCE_NAMES, f"precedence {m['precedence']!r}"
    assert isinstance(m["subject"], str)
    assert isinstance(m["size"], int) and m["size"] >= 0
    assert RFC3339_UTC.match(m["sent_at"]), f"sent_at {m['sent_at']!r}"
    if box == "inbox":
        assert RFC3339_UTC.match(m["received_at"]), f"received_at {m['received_at']!r}"
    else:
        assert m["state"] in ("queued", "sent", "delivered", "refused"), f"state {m['state']!r}"
    assert isinstance(m["attachments"], list)
    for a in m["attachments"]:
        assert {"name", "size", "hash"} <= set(a), f"attachment fields {a!r}"
        assert re.match(r"^[0-9a-f]{64}$", a["hash"]), f"attachment hash {a['hash']!r}"
        assert isinstance(a["size"], int)
