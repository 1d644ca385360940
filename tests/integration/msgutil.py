"""msgutil.py — what the message tests (test_msg_*.py) share: stations and
their daemons, the message commands with their JSON, a TCP proxy that counts,
throttles and cuts, tmpfs mounts, and the `net` fixture that stops every
process and undoes every mount a test made, pass or fail.

Private to the message tests; the general station helpers live in
helpers.py/conftest.py (owned elsewhere).  Only the standard library and
pytest are used here.
"""

import json
import os
import re
import signal
import socket
import subprocess
import threading
import time

import pytest

import helpers

import hlpeer

HERE = os.path.dirname(os.path.abspath(__file__))
HOTLINE_BIN = os.environ.get("HOTLINE_BIN") or os.path.join(HERE, "..", "..", "build", "hotline")
HOTLINE_BIN = os.path.abspath(HOTLINE_BIN)
SANITIZE = os.environ.get("HOTLINE_SANITIZE", "").strip().upper() in ("1", "ON", "TRUE", "YES")
SCALE = 4.0 if SANITIZE else 1.0

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
ID_RE = re.compile(r"^[0-9a-f]{32}$")
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:",
                   "hotline: sandbox: system call")   # src/daemon/sandbox.c stopped a process


def scaled(seconds):
    return seconds * SCALE


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls PREDICATE until it returns something truthy and returns it;
    AssertionError naming WHAT after TIMEOUT seconds.  A predicate may
    raise AssertionError to explain itself; the last one is quoted."""
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


def free_port():
    # one picker for every fixture stack: below the ephemeral range, free
    # for TCP and UDP (helpers.free_port says why)
    return helpers.free_port()


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def rfc3339_ms(text):
    """Milliseconds since the epoch of an RFC 3339 UTC time as hotline
    prints it (fractions kept to the millisecond)."""
    m = re.match(r"^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z$", text)
    assert m, f"not an RFC 3339 UTC time: {text!r}"
    import calendar
    secs = calendar.timegm(tuple(int(g) for g in m.groups()[:6]) + (0, 0, 0))
    frac = (m.group(7) or "0").ljust(3, "0")[:3]
    return secs * 1000 + int(frac)


class CommandError(AssertionError):
    pass


# ------------------------------------------------------------------ stations

class Station:
    """One station directory and, when started, its daemon (`hotline run`,
    output appended to LOG_PATH)."""

    def __init__(self, net, name, dir=None, port=None):
        self.net = net
        self.name = name
        self.dir = dir or os.path.join(net.root, name)
        self.port = port or free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(net.root, f"{name}.log")
        self.proc = None
        self.wrapper_proc = None
        self._card = None
        # argv before HOTLINE_BIN for commands (not the daemon): e.g. setpriv,
        # to run them as the user the station belongs to (mailutil.py).
        self.cmd_prefix = []
        # the program commands and the daemon run (bin_for_user: another
        # user's copy)
        self.bin = HOTLINE_BIN

    # -- commands

    def cmd(self, *args, input=None, check=True, timeout=None, binary=False, env=None):
        argv = self.cmd_prefix + [self.bin, "-d", self.dir] + [str(a) for a in args]
        if isinstance(input, str) and binary:
            input = input.encode()
        p = subprocess.run(argv, input=input, capture_output=True, text=not binary,
                           timeout=timeout or scaled(60), env=env)
        if check and p.returncode != 0:
            raise CommandError(f"{' '.join(argv)} exited {p.returncode}\n"
                               f"stdout: {p.stdout!r}\nstderr: {p.stderr!r}")
        return p

    def init(self):
        self.cmd("init", self.name, "--listen", self.listen)
        return self

    def card_text(self):
        if self._card is None:
            self._card = self.cmd("card").stdout
        return self._card

    def card_field(self, key):
        for line in self.card_text().splitlines():
            k, sep, v = line.partition("=")
            if sep and k.strip() == key:
                return v.strip()
        raise AssertionError(f"{self.name}: card has no {key}: {self.card_text()!r}")

    @property
    def noise_key(self):
        import base64
        return base64.b64decode(self.card_field("NoiseKey"))

    @property
    def signing_key(self):
        import base64
        return base64.b64decode(self.card_field("SigningKey"))

    def pin(self, other, address=None, dial=True):
        """Pins OTHER (a Station or an hlpeer.Identity).  ADDRESS overrides
        where this station dials it; DIAL=False pins it without an Address
        (this station never dials it)."""
        if isinstance(other, hlpeer.Identity):
            card = other.card()
        else:
            card = other.card_text()
        card = "".join(l for l in card.splitlines(True) if not l.strip().startswith("Address"))
        args = ["peer", "add", "-", "--trust-without-checking"]
        if dial:
            addr = address or (other.listen if isinstance(other, Station) else None)
            assert addr, "an Address is needed to dial"
            args += ["--address", addr]
        return self.cmd(*args, input=card)

    @property
    def conf_path(self):
        return os.path.join(self.dir, "station.conf")

    def write_conf(self, text):
        """Replaces station.conf the way hotline does: a temporary, renamed
        (checks_util.set_peer_option uses it)."""
        tmp = self.conf_path + ".test-tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.rename(tmp, self.conf_path)

    def set_option(self, key, value):
        """KEY = VALUE in station.conf's [Station] section."""
        path = os.path.join(self.dir, "station.conf")
        with open(path) as f:
            lines = f.read().splitlines()
        out, section, done = [], None, False
        for line in lines:
            s = line.strip()
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1].strip()
                out.append(line)
                if section.lower() == "station" and not done:
                    out.append(f"{key} = {value}")
                    done = True
                continue
            if section and section.lower() == "station" and \
                    s.split("=", 1)[0].strip().lower() == key.lower():
                continue
            out.append(line)
        assert done, f"{path}: no [Station] section"
        with open(path, "w") as f:
            f.write("\n".join(out) + "\n")

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
        assert p.returncode in (0, 3), f"status --json exited {p.returncode}: {p.stderr}"
        return json.loads(p.stdout)

    def peer_state(self, name):
        for p in self.status().get("peers") or []:
            if p.get("name") == name:
                return p
        raise AssertionError(f"{self.name}: no peer {name!r} in status")

    def wait_connected(self, name, timeout=None):
        def check():
            self.assert_alive()
            p = self.peer_state(name)
            return p if p.get("state") == "connected" else None
        return wait_for(check, timeout or scaled(20), f"{self.name} connected to {name}",
                        interval=0.1)

    # -- daemon

    def start(self, wait=True, wrapper=(), env=None):
        """Starts `hotline run`.  WRAPPER is an argv prefix (strace ...);
        the daemon's pid is then found as the wrapper's child."""
        assert self.proc is None or self.proc.poll() is not None, f"{self.name}: already running"
        log = open(self.log_path, "ab")
        try:
            argv = list(wrapper) + [self.bin, "-d", self.dir, "run"]
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    start_new_session=True, env=env)
        finally:
            log.close()
        helpers.keep_priority(proc.pid)
        self.proc = proc
        self.net.procs.append(proc)
        if wait:
            self.wait_ready()
        return self

    @property
    def pid(self):
        """The daemon's pid (under a wrapper: the wrapper's child running hotline)."""
        if self.proc is None:
            return None
        return self.proc.pid

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
            if st.get("daemon") is False or "station" not in st:
                return None
            return port_open(self.port)
        return wait_for(ready, timeout or scaled(20), f"{self.name} daemon ready", interval=0.05)

    def stop(self, timeout=None):
        """SIGTERM, then SIGKILL if it lingers; returns the exit status."""
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout or scaled(10))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AssertionError(f"{self.name}: daemon ignored SIGTERM")
        return proc.returncode

    def kill9(self):
        """SIGKILL of the daemon (its whole process group), waited for."""
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

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def sanitizer_reports(self):
        return [l for l in self.log_text().splitlines() if any(m in l for m in SANITIZER_MARKS)]


# --------------------------------------------------------------------- proxy

class Proxy:
    """A TCP proxy from a free 127.0.0.1 port to TARGET_PORT.  It counts the
    bytes forwarded each way over all connections (`down`: from the dialer
    toward the target; `up`: back), can throttle the downward direction to
    RATE bytes per second, and can cut every connection at once
    (drop_all()); new connections are accepted afterwards unless
    refuse_new is set."""

    def __init__(self, target_port, rate=None, rcvbuf=None):
        self.target_port = target_port
        self.rate = rate
        self.rcvbuf = rcvbuf
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
        self.down = 0
        self.up = 0
        self.accepted = 0
        self.drops = 0
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

    def _pump(self, src, dst, downward, pair):
        start = time.monotonic()
        moved = 0
        try:
            while True:
                n = 65536
                if downward and self.rate:
                    n = 16384
                data = src.recv(n)
                if not data:
                    break
                if downward and self.rate:
                    moved += len(data)
                    ahead = moved / self.rate - (time.monotonic() - start)
                    if ahead > 0:
                        time.sleep(ahead)
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
        """Cuts every open connection (both sides see a reset or EOF)."""
        with self.lock:
            pairs, self.conns = self.conns, []
            self.drops += 1
        for pair in pairs:
            for s in pair:
                try:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
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


# ----------------------------------------------------------------------- net

class Net:
    """Everything one test started: stations, processes, proxies, hlpeer
    sessions, mounts.  teardown() undoes all of it."""

    def __init__(self, root):
        self.root = str(root)
        self.stations = []
        self.procs = []
        self.proxies = []
        self.closers = []
        self.mounts = []

    def station(self, name, dir=None, **options):
        st = Station(self, name, dir=dir)
        st.init()
        for k, v in options.items():
            st.set_option(k, v)
        self.stations.append(st)
        return st

    def pair(self, a="washington", b="pyongyang", via_proxy=False, start=True, rate=None,
             rcvbuf=None, b_dir=None, **options):
        """Two stations pinned to each other.  Without a proxy both dial
        each other directly.  VIA_PROXY: A dials B through a Proxy and B
        does not dial A, so every byte of the link passes the proxy.
        Returns (A, B, proxy or None); START runs both daemons and waits
        for the link."""
        sa = self.station(a, **options)
        sb = self.station(b, dir=b_dir, **options)
        proxy = None
        if via_proxy:
            proxy = self.proxy(sb.port, rate=rate, rcvbuf=rcvbuf)
            sa.pin(sb, address=proxy.address)
            sb.pin(sa, dial=False)
        else:
            sa.pin(sb)
            sb.pin(sa)
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
            import socket as _s
            lst.sock.setsockopt(_s.SOL_SOCKET, _s.SO_RCVBUF, rcvbuf)
        self.on_teardown(lst.close)
        st.pin(ident, address=lst.address)
        peer = hlpeer.Peer(ident, st.signing_key, **peer_kw)
        self.on_teardown(peer.close)
        return peer, lst

    def accept_hlpeer(self, st, peer, lst, timeout=None, hello_flags=None):
        sess = lst.accept(peer.me, expect_static=st.noise_key, timeout=timeout or scaled(20),
                          hello_flags=hello_flags)
        peer.attach(sess)
        return peer

    def teardown(self):
        problems = []
        for fn in reversed(self.closers):
            try:
                fn()
            except Exception as exc:   # teardown goes on whatever happens
                problems.append(f"closer: {exc!r}")
        for p in self.proxies:
            p.close()
        for st in self.stations:
            try:
                st.stop()
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
        for path in reversed(self.mounts):
            r = subprocess.run(["umount", path], capture_output=True, timeout=30)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", path], capture_output=True, timeout=30)
        for st in self.stations:
            reports = st.sanitizer_reports()
            if reports:
                problems.append(f"{st.name}: sanitizer report:\n" + "\n".join(reports[:10]))
        return problems


@pytest.fixture
def net(tmp_path):
    """A Net for the test; at teardown everything is stopped and unmounted,
    and the daemons' log tails are printed (pytest shows them when the test
    failed)."""
    if not os.access(HOTLINE_BIN, os.X_OK):
        pytest.fail(f"HOTLINE_BIN {HOTLINE_BIN!r} is not an executable; build first")
    n = Net(tmp_path)
    try:
        yield n
    finally:
        problems = n.teardown()
        for st in n.stations:
            print(f"----- {st.name} log ({st.log_path}), last lines -----")
            print(st.log_tail(60))
        if problems:
            pytest.fail("teardown: " + "\n".join(problems))


# ------------------------------------------------------------------- checks

INBOX_FIELDS = {"id", "peer", "precedence", "subject", "size", "sent_at", "received_at",
                "body", "attachments"}
OUTBOX_FIELDS = {"id", "peer", "precedence", "subject", "size", "sent_at", "state",
                 "body", "attachments"}


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
