"""helpers.py — shared tools for hotline's integration tests.

Owns: running the hotline binary (HOTLINE_BIN) against station directories,
starting and stopping `hotline run` daemons, reading `status --json`, station
cards and fingerprints computed independently of hotline, and a small Noise
client/server built on dissononce (an independent Noise implementation) that
speaks the wire protocol of docs/protocol.md: 2-byte big-endian framing, the
IK handshake with prologue b"hotline/1", and transport records
(version, type, body).

Only the Python standard library, pytest and Debian's python3-dissononce
(with python3-cryptography, which dissononce itself depends on) are used.
"""

import base64
import hashlib
import json
import os
import random
import select
import signal
import socket
import struct
import shutil
import subprocess
import tempfile
import threading
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.public import PublicKey as X25519PublicKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.hash.blake2b import Blake2bHash
from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState

HERE = os.path.dirname(os.path.abspath(__file__))
HOTLINE_BIN = os.environ.get("HOTLINE_BIN") or os.path.join(HERE, "..", "..", "build", "hotline")


_BIN_FOR = {}


def bin_for_user(uid):
    """HOTLINE_BIN where user UID can run it.  A build tree that UID cannot
    reach (a clone in root's 0700 home, as in a fresh Debian root) would
    stop a daemon that becomes UID (daemon/privs.c refuses to start) and
    every command run as UID: the programs are then copied, once per test
    process, into a folder UID can search, as `make install` would."""
    if uid in _BIN_FOR:
        return _BIN_FOR[uid]
    path = os.path.abspath(HOTLINE_BIN)
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

# Sanitizer builds run several times slower: every bound below is scaled.
SANITIZE = os.environ.get("HOTLINE_SANITIZE", "").strip().upper() in ("1", "ON", "TRUE", "YES")
SCALE = 4.0 if SANITIZE else 1.0

PROLOGUE = b"hotline/1"
PROTOCOL_NAME = "Noise_IK_25519_ChaChaPoly_BLAKE2b"
FP_CONTEXT = b"hotline/1 fingerprint"
MAX_FRAME = 65535
MSG1_LEN = 96   # 32 e + 48 encrypted s + 16 payload tag, empty payload
TAI64N_LEN = 12  # message 1's payload: a TAI64N timestamp (docs/protocol.md section 2)
MSG1_STAMPED_LEN = MSG1_LEN + TAI64N_LEN
MSG2_LEN = 48   # 32 e + 16 payload tag, empty payload

REC_VERSION = 1
T_HELLO, T_PING, T_PONG, T_CLOSE = 0x01, 0x02, 0x03, 0x04
CLOSE_SHUTDOWN, CLOSE_REPLACED, CLOSE_REMOVED, CLOSE_PROTOCOL = 1, 2, 3, 4

# Lines a sanitizer prints when it finds something; a daemon log holding one
# fails the test that started the daemon.
SANITIZER_MARKS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                   "runtime error:",
                   "hotline: sandbox: system call")   # src/daemon/sandbox.c stopped a process


def scaled(seconds):
    return seconds * SCALE


def wait_for(predicate, timeout, what, interval=0.05):
    """Polls PREDICATE until it returns something truthy; returns that value.
    Fails with WHAT after TIMEOUT seconds (already scaled by the caller)."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except AssertionError as exc:   # predicates may assert to explain themselves
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last: {last_exc})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:.1f}s waiting for {what}{detail}")
        time.sleep(interval)


def _ephemeral_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
        return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


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


# ---------------------------------------------------------------- keys, cards

def b64(data):
    return base64.b64encode(data).decode("ascii")


def fingerprint_bytes(noise_key, signing_key, next_key_hash=None):
    """BLAKE2b-256(context || NoiseKey || SigningKey [|| NextKeyHash]), as
    docs/cards.md defines it (the card's commitment to its next keys is
    covered when it has one); computed here with hashlib, independently of
    hotline."""
    return hashlib.blake2b(FP_CONTEXT + noise_key + signing_key + (next_key_hash or b""),
                           digest_size=32).digest()


def next_key_hash(noise_key, signing_key):
    """The commitment to a station's next keys (docs/rotation.md)."""
    return hashlib.blake2b(b"hotline/1 next keys" + noise_key + signing_key,
                           digest_size=32).digest()


def fingerprint_text(noise_key, signing_key, next_key_hash=None):
    """8 groups of 5 digits: each 32-bit big-endian word of the hash mod 100000."""
    h = fingerprint_bytes(noise_key, signing_key, next_key_hash)
    words = struct.unpack(">8I", h)
    return " ".join(f"{w % 100000:05d}" for w in words)


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


def card_text(name, noise_key, signing_key, address=None):
    lines = ["[Station]", f"Name = {name}", f"NoiseKey = {b64(noise_key)}",
             f"SigningKey = {b64(signing_key)}"]
    if address:
        lines.append(f"Address = {address}")
    return "\n".join(lines) + "\n"


class PyIdentity:
    """A station identity made in Python: an X25519 key pair generated by
    dissononce (the Noise side) and an Ed25519 key pair from
    python3-cryptography (only its public half goes into the card)."""

    def __init__(self, name):
        self.name = name
        self.keypair = X25519DH().generate_keypair()
        self.noise_key = self.keypair.public.data
        sk = Ed25519PrivateKey.generate()
        self.signing_key = sk.public_key().public_bytes(serialization.Encoding.Raw,
                                                        serialization.PublicFormat.Raw)

    @property
    def fingerprint(self):
        return fingerprint_text(self.noise_key, self.signing_key)

    def card(self, address=None):
        return card_text(self.name, self.noise_key, self.signing_key, address)


# -------------------------------------------------------------------- stations

class CommandError(AssertionError):
    pass


class Station:
    """One station directory and, optionally, its running daemon."""

    def __init__(self, root, name, port=None, registry=None):
        self.name = name
        self.dir = os.path.join(str(root), name)
        self.port = port if port is not None else free_port()
        self.listen = f"127.0.0.1:{self.port}"
        self.log_path = os.path.join(str(root), f"{name}.log")
        self.proc = None
        self.init_output = ""
        self.registry = registry
        self._card = None
        # argv before HOTLINE_BIN for commands (not the daemon): e.g. setpriv,
        # to run them as the user the station belongs to (mailutil.py).
        self.cmd_prefix = []
        # the program commands and the daemon run (bin_for_user: another
        # user's copy)
        self.bin = HOTLINE_BIN

    # -- commands

    def cmd(self, *args, input=None, check=True, timeout=None):
        """Runs `hotline -d DIR ARGS...`; returns the CompletedProcess.  With
        CHECK, a non-zero exit fails the test quoting stderr."""
        argv = self.cmd_prefix + [self.bin, "-d", self.dir] + [str(a) for a in args]
        p = subprocess.run(argv, input=input, capture_output=True, text=True,
                           timeout=timeout or scaled(30))
        if check and p.returncode != 0:
            raise CommandError(f"{' '.join(argv)} exited {p.returncode}\n"
                               f"stdout: {p.stdout}\nstderr: {p.stderr}")
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

    @property
    def noise_key(self):
        return base64.b64decode(self.card()["NoiseKey"], validate=True)

    @property
    def signing_key(self):
        return base64.b64decode(self.card()["SigningKey"], validate=True)

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
        return fingerprint_text(self.noise_key, self.signing_key, self.next_key_hash)

    def add_peer(self, card, fingerprint=None, address=None, drop_address=False):
        """Pins a peer from CARD text (given on stdin).  DROP_ADDRESS removes
        the card's Address line first, so this station never dials it."""
        if drop_address:
            card = "".join(l for l in card.splitlines(True)
                           if not l.strip().startswith("Address"))
        args = ["peer", "add", "-"]
        if address:
            args += ["--address", address]
        # Without the fingerprint, the operator must say so (peer add).
        args += ["--fingerprint", fingerprint] if fingerprint else ["--trust-without-checking"]
        return self.cmd(*args, input=card)

    def pin(self, other, **kw):
        """Pins another Station (or PyIdentity) by its card, checking its
        fingerprint as an operator would."""
        if isinstance(other, PyIdentity):
            return self.add_peer(other.card(kw.pop("card_address", None)),
                                 fingerprint=other.fingerprint, **kw)
        return self.add_peer(other.card_text(), fingerprint=other.fingerprint, **kw)

    @property
    def conf_path(self):
        return os.path.join(self.dir, "station.conf")

    def set_option(self, key, value):
        """Sets KEY = VALUE in station.conf's [Station] section (replacing the
        key if present), for settings no command exposes (timeouts)."""
        with open(self.conf_path) as f:
            lines = f.read().splitlines()
        out, section, placed = [], None, False
        for line in lines:
            s = line.strip()
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1].strip()
                out.append(line)
                if section == "Station" and not placed:
                    out.append(f"{key} = {value}")
                    placed = True
                continue
            if section == "Station" and s.split("=", 1)[0].strip() == key:
                continue   # the old value; the new one sits under the header
            out.append(line)
        assert placed, f"{self.conf_path} has no [Station] section"
        with open(self.conf_path, "w") as f:
            f.write("\n".join(out) + "\n")

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
        st = self.status()
        for peer in st.get("peers") or []:
            if peer.get("name") == name:
                return peer
        raise AssertionError(f"{self.name}: no peer {name!r} in status {st!r}")

    def wait_connected(self, name, timeout=None):
        """Waits until status shows peer NAME connected; returns its entry."""
        def check():
            self.assert_alive()
            p = self.peer_status(name)
            return p if p.get("state") == "connected" else None
        return wait_for(check, timeout or scaled(15), f"{self.name} connected to {name}")

    def wait_not_connected(self, name, timeout=None):
        def check():
            p = self.peer_status(name)
            return p if p.get("state") != "connected" else None
        return wait_for(check, timeout or scaled(15), f"{self.name} no longer connected to {name}")

    # -- daemon

    def start(self, wait=True):
        """Starts `hotline run` with stdout and stderr appended to LOG_PATH; with
        WAIT, returns once the daemon answers status and listens."""
        assert self.proc is None, f"{self.name}: daemon already started"
        log = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen([self.bin, "-d", self.dir, "run"],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         start_new_session=True)
        finally:
            log.close()
        keep_priority(self.proc.pid)
        if self.registry is not None:
            self.registry.append(self)
        if wait:
            self.wait_ready()
        return self

    def assert_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.name}: daemon exited with {self.proc.returncode}; "
                                 f"log:\n{self.log_tail()}")

    def wait_ready(self, timeout=None):
        def ready():
            self.assert_alive()
            st = self.status()
            if st.get("daemon") is not True:
                return None
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                return None
            return st
        return wait_for(ready, timeout or scaled(15), f"{self.name} daemon ready")

    def stop(self, sig=signal.SIGTERM, timeout=None):
        """Signals the daemon and waits for it; SIGKILL if it does not stop.
        Returns its exit status (None if it was not running)."""
        if self.proc is None:
            return None
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
                proc.wait(timeout=timeout or scaled(10))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                raise AssertionError(f"{self.name}: daemon ignored {sig!r}; killed")
        return proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

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

    def sanitizer_reports(self):
        return [l for l in self.log_lines() if any(m in l for m in SANITIZER_MARKS)]


# --------------------------------------------------------------------- framing

class Closed(Exception):
    """The other side closed the connection (EOF or reset)."""


def send_frame(sock, msg):
    assert 0 <= len(msg) <= MAX_FRAME
    sock.sendall(struct.pack(">H", len(msg)) + msg)


def recv_exact(sock, n, timeout):
    deadline = time.monotonic() + timeout
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"got {len(buf)} of {n} bytes within {timeout:.1f}s")
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        try:
            chunk = sock.recv(n - len(buf))
        except (ConnectionResetError, BrokenPipeError) as exc:
            raise Closed(f"reset after {len(buf)} of {n} bytes") from exc
        if not chunk:
            raise Closed(f"EOF after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_frame(sock, timeout=None):
    timeout = timeout or scaled(10)
    (n,) = struct.unpack(">H", recv_exact(sock, 2, timeout))
    return recv_exact(sock, n, timeout)


def read_until_close(sock, timeout):
    """Reads until the peer closes; returns (bytes received, seconds taken).
    Fails if the connection is still open after TIMEOUT."""
    start = time.monotonic()
    deadline = start + timeout
    got = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"connection still open after {timeout:.1f}s "
                                 f"({len(got)} bytes received)")
        r, _, _ = select.select([sock], [], [], left)
        if not r:
            continue
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return bytes(got), time.monotonic() - start
        got += chunk


def is_closed_now(sock):
    """True when the peer has closed SOCK (readable and EOF/reset); never
    blocks.  Data received instead is a protocol violation for the callers
    (unauthenticated connections must get no bytes), so it asserts."""
    r, _, _ = select.select([sock], [], [], 0)
    if not r:
        return False
    try:
        chunk = sock.recv(4096)
    except ConnectionResetError:
        return True
    assert chunk == b"", f"unauthenticated connection received {len(chunk)} bytes"
    return True


def connect(port, timeout=None, source=None):
    """A TCP connection to 127.0.0.1:PORT, retrying while refused; from the
    loopback address SOURCE (such as "127.0.0.2") when given, so that a test
    can play several source addresses."""
    timeout = timeout or scaled(10)
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=timeout,
                                         source_address=(source, 0) if source else None)
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


# ----------------------------------------------------------------------- Noise

def new_handshake():
    hs = HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2bHash()),
                        X25519DH())
    return hs


def record(rtype, body=b"", version=REC_VERSION):
    return bytes([version, rtype]) + body


def hello_body(min_version=1, max_version=1, keepalive_ms=25000, extra=b""):
    return bytes([min_version, max_version]) + struct.pack(">I", keepalive_ms) + extra


def parse_hello(body):
    assert len(body) >= 6, f"HELLO body of {len(body)} bytes, want at least 6"
    (keepalive_ms,) = struct.unpack(">I", body[2:6])
    return {"min_version": body[0], "max_version": body[1], "keepalive_ms": keepalive_ms}


class Session:
    """A confirmed-or-not Noise transport session on a socket.  SEND/RECV are
    dissononce CipherStates.  recv_record() answers the station's PINGs
    itself (unless told otherwise) so that a keepalive never kills a session
    a test is holding."""

    def __init__(self, sock, send_cs, recv_cs):
        self.sock, self.send_cs, self.recv_cs = sock, send_cs, recv_cs

    def send_raw(self, plaintext):
        send_frame(self.sock, self.send_cs.encrypt_with_ad(b"", plaintext))

    def send_record(self, rtype, body=b"", version=REC_VERSION):
        self.send_raw(record(rtype, body, version))

    def recv_record(self, timeout=None, answer_pings=True):
        """The next record as (version, type, body)."""
        while True:
            ct = recv_frame(self.sock, timeout)
            pt = self.recv_cs.decrypt_with_ad(b"", ct)
            assert len(pt) >= 2, f"record of {len(pt)} bytes"
            version, rtype, body = pt[0], pt[1], pt[2:]
            if answer_pings and version == REC_VERSION and rtype == T_PING:
                self.send_record(T_PONG, body)
                continue
            return version, rtype, body

    def recv_type(self, want, timeout=None):
        """Skips records (answering PINGs) until one of type WANT."""
        timeout = timeout or scaled(10)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no record of type {want:#x} within {timeout:.1f}s")
            version, rtype, body = self.recv_record(left)
            assert version == REC_VERSION, f"record version {version}"
            if rtype == want:
                return body

    def ping(self, timeout=None):
        """Sends a PING of 8 random bytes; returns once the matching PONG is in."""
        value = os.urandom(8)
        self.send_record(T_PING, value)
        while True:
            body = self.recv_type(T_PONG, timeout)
            if body == value:
                return value

    def close(self, reason=CLOSE_SHUTDOWN, text=b"test done"):
        try:
            self.send_record(T_CLOSE, bytes([reason]) + text)
        except OSError:
            pass
        self.sock.close()


TAI64_BASE = (1 << 62) + 10   # TAI64 label of the Unix epoch, as libtai and WireGuard write it


def tai64n(unix_ns):
    """The 12-byte TAI64N form of a time in nanoseconds since the Unix epoch."""
    return struct.pack(">QI", TAI64_BASE + unix_ns // 10**9, unix_ns % 10**9)


def tai64n_unix_ns(stamp):
    label, nano = struct.unpack(">QI", stamp[:TAI64N_LEN])
    return (label - TAI64_BASE) * 10**9 + nano


_last_stamp = {}


def fresh_stamp(identity):
    """A message 1 timestamp for IDENTITY: now, and strictly greater than the
    last one made here for that identity (two dials in one clock tick)."""
    ns = time.time_ns()
    last = _last_stamp.get(id(identity))
    if last is not None and ns <= last:
        ns = last + 1
    _last_stamp[id(identity)] = ns
    return tai64n(ns)


class Initiator:
    """The dialing side of IK with a dissononce handshake.  Message 1 carries
    a fresh timestamp unless told otherwise (STAMP=False, or an explicit
    payload: b"" is the empty payload of earlier stations)."""

    def __init__(self, identity, responder_key):
        self.identity = identity
        self.hs = new_handshake()
        self.hs.initialize(IKHandshakePattern(), True, PROLOGUE, s=identity.keypair,
                           rs=X25519PublicKey(responder_key))

    def message1(self, payload=None):
        if payload is None:
            payload = fresh_stamp(self.identity)
        buf = bytearray()
        self.hs.write_message(payload, buf)
        return bytes(buf)

    def read_message2(self, msg):
        payload = bytearray()
        cs = self.hs.read_message(msg, payload)
        assert cs is not None, "IK handshake not finished after message 2"
        # Split(): the initiator sends with the first CipherState.
        return cs[0], cs[1], bytes(payload)


def dial(port, identity, responder_key, payload=None, hello=True, timeout=None, source=None):
    """Connects as IDENTITY (from loopback address SOURCE when given), runs
    the IK handshake against the station at PORT (message 1's PAYLOAD:
    None for a fresh timestamp), and (with HELLO) sends the key-confirming
    HELLO and reads the station's HELLO reply.  Returns (Session, the
    station's HELLO fields or None)."""
    sock = connect(port, source=source)
    try:
        ini = Initiator(identity, responder_key)
        m1 = ini.message1(payload)
        send_frame(sock, m1)
        m2 = recv_frame(sock, timeout)
        send_cs, recv_cs, _ = ini.read_message2(m2)
        sess = Session(sock, send_cs, recv_cs)
        sess.message1 = m1      # what an eavesdropper would have seen
        their_hello = None
        if hello:
            sess.send_record(T_HELLO, hello_body())
            their_hello = parse_hello(sess.recv_type(T_HELLO, timeout))
        return sess, their_hello
    except BaseException:
        sock.close()
        raise


class Responder:
    """The listening side of IK with a dissononce handshake."""

    def __init__(self, identity):
        self.identity = identity
        self.hs = new_handshake()
        self.hs.initialize(IKHandshakePattern(), False, PROLOGUE, s=identity.keypair)

    def read_message1(self, msg):
        payload = bytearray()
        self.hs.read_message(msg, payload)
        return bytes(payload)

    @property
    def remote_static(self):
        return self.hs.rs.data

    def message2(self, payload=b""):
        buf = bytearray()
        cs = self.hs.write_message(payload, buf)
        assert cs is not None, "IK handshake not finished after message 2"
        # Split(): the responder sends with the second CipherState.
        return bytes(buf), cs[1], cs[0]


class Listener:
    """A TCP listener on a free 127.0.0.1 port for a station to dial."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def accept(self, timeout=None):
        self.sock.settimeout(timeout or scaled(15))
        conn, _ = self.sock.accept()
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def close(self):
        self.sock.close()


class RecordingProxy:
    """Forwards TCP connections from a free local port to TARGET_PORT and
    keeps, per connection, the bytes the dialing side sent first (up to the
    end of its first frame), so a test can replay a real message 1.  DELAY
    seconds are added to every piece forwarded, each way: a long line."""

    def __init__(self, target_port, delay=0.0):
        self.target_port = target_port
        self.delay = delay      # seconds added to every forwarded piece, each way
        self.lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.first_frames = []
        self.socks = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._accept_loop, daemon=True)
        self.thread.start()

    def _accept_loop(self):
        while not self.stopping:
            try:
                client, _ = self.lsock.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.socks += [client, server]
            threading.Thread(target=self._pump, args=(client, server, True),
                             daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False),
                             daemon=True).start()

    def _pump(self, src, dst, capture):
        captured = bytearray()
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if capture:
                    captured += data
                    if len(captured) >= 2:
                        (n,) = struct.unpack(">H", captured[:2])
                        if len(captured) >= 2 + n:
                            with self.lock:
                                self.first_frames.append(bytes(captured[2:2 + n]))
                            capture = False
                if self.delay:
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self):
        """Breaks every connection forwarded so far (both ends see it end),
        as a lost line would; new connections are still forwarded."""
        with self.lock:
            socks, self.socks = self.socks, []
        for s in socks:
            for step in (lambda: s.shutdown(socket.SHUT_RDWR), s.close):
                try:
                    step()
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
        self.lsock.close()
        with self.lock:
            for s in self.socks:
                try:
                    s.close()
                except OSError:
                    pass


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
