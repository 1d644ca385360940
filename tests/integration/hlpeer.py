"""hlpeer.py — a small, independent Python implementation of a hotline station's
messages protocol, written from the project's documents only
(docs/protocol.md, docs/items.md, docs/messages.md), for integration tests.

It is the one Python peer of the integration tests.  It owns:
  * the link: TCP framing (2-byte big-endian length), the Noise IK handshake
    (Noise_IK_25519_ChaChaPoly_BLAKE2b, prologue b"hotline/1") done by
    dissononce, transport packets (version, type, body), HELLO, PING/PONG.
    Each step is open to a test of the link itself: connect(), send_frame()
    / recv_frame(), Initiator and Responder (message 1 and 2 by hand, any
    payload), Session.recv_raw() (every packet as it came) and send_raw()
    (any plaintext), dial(hello=False), Listener.accept_raw();
  * items (docs/items.md): encoding, Ed25519 signing and verification
    (python3-cryptography), BLAKE2b-256 hashes and the salted subject/body
    commitments (hashlib.blake2b), SHA-256 document (attachment) hashes
    (hashlib.sha256); messages and receipts in full, checks,
    answers, agreements and countersigns decoded (a check is answered by
    the station at once, as section 2.4 says);
  * message content (salt, subject, inline body), CHUNK parts, and the ACK,
    RESUME and REFUSE packets (docs/messages.md);
  * `Peer`: one station's side of one link — its own chain (it authors
    messages and receipts), the counterpart's chain as received (verified
    item by item, content and parts checked against their hashes), the ACKs,
    RESUMEs, REFUSEs and receipts that came in.  Every rule of the documents
    can be broken on purpose (a bad signature, another recipient, a reused
    id, a wrong attachment hash, a forbidden name, ...), which is what the
    tests of hostile input need.

Nothing here calls hotline's C code; when this module and hotline disagree,
one of them departs from the documents.  Only the Python standard library,
python3-cryptography and python3-dissononce are used.
"""

import base64
import hashlib
import os
import select
import socket
import struct
import time

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (Ed25519PrivateKey,
                                                               Ed25519PublicKey)
from dissononce.cipher.chachapoly import ChaChaPolyCipher
from dissononce.dh.x25519.public import PublicKey as X25519PublicKey
from dissononce.dh.x25519.x25519 import X25519DH
from dissononce.hash.blake2b import Blake2bHash
from dissononce.processing.handshakepatterns.interactive.IK import IKHandshakePattern
from dissononce.processing.handshakepatterns.oneway.X import XHandshakePattern
from dissononce.processing.impl.cipherstate import CipherState
from dissononce.processing.impl.handshakestate import HandshakeState
from dissononce.processing.impl.symmetricstate import SymmetricState

# Bounds on how long the station under test may take, scaled up for its
# sanitizer builds (several times slower); station.py uses the same.
SANITIZE = os.environ.get("HOTLINE_SANITIZE", "").strip().upper() in ("1", "ON", "TRUE", "YES")
SCALE = 4.0 if SANITIZE else 1.0


def scaled(seconds):
    return seconds * SCALE


# ---------------------------------------------------------------- constants

PROLOGUE = b"hotline/1"
MAX_FRAME = 65535
MSG1_LEN = 96   # 32 e + 48 encrypted s + 16 payload tag, empty payload
TAI64N_LEN = 12  # message 1's payload: a TAI64N timestamp (docs/protocol.md section 2)
MSG1_STAMPED_LEN = MSG1_LEN + TAI64N_LEN
MSG2_LEN = 48   # 32 e + 16 payload tag, empty payload
REC_VERSION = 1
TAG_LEN = 16
RECORD_BODY_MAX = MAX_FRAME - TAG_LEN - 2          # 65517

T_HELLO, T_PING, T_PONG, T_CLOSE = 0x01, 0x02, 0x03, 0x04
CLOSE_SHUTDOWN, CLOSE_REPLACED, CLOSE_REMOVED, CLOSE_PROTOCOL = 1, 2, 3, 4
T_ITEM, T_CHUNK, T_ACK, T_RESUME, T_REFUSE = 0x10, 0x11, 0x12, 0x13, 0x14
T_CREDIT = 0x15
T_BUNDLE_END = 0x3f
BUNDLE_MAGIC = b"hotline/1 bundle"
HELLO_FLAG_CREDIT = 0x01
CREDIT_WINDOW = 8 * 65500          # CHUNK data in flight with CREDIT
RECORD_NAMES = {T_HELLO: "HELLO", T_PING: "PING", T_PONG: "PONG", T_CLOSE: "CLOSE",
                T_ITEM: "ITEM", T_CHUNK: "CHUNK", T_ACK: "ACK", T_RESUME: "RESUME",
                T_REFUSE: "REFUSE"}

CTX_MESSAGE = b"hotline/1 message"
CTX_RECEIPT = b"hotline/1 receipt"
CTX_CHECK = b"hotline/1 check"
CTX_ANSWER = b"hotline/1 answer"
CTX_AGREEMENT = b"hotline/1 agreement"
CTX_COUNTERSIGN = b"hotline/1 countersign"
KINDS = {CTX_MESSAGE: "message", CTX_RECEIPT: "receipt", CTX_CHECK: "check",
         CTX_ANSWER: "answer", CTX_AGREEMENT: "agreement", CTX_COUNTERSIGN: "countersign"}
CHECK_TIMEOUT_MAX = 24 * 3600 * 1000
BY_STATION, BY_PERSON, BY_NO_PERSON = 0, 1, 2
LABEL_SUBJECT = b"hotline/1 subject"
LABEL_BODY = b"hotline/1 body"
FP_CONTEXT = b"hotline/1 fingerprint"

ITEM_MAX = 16384
HASH_LEN = 32
SIG_LEN = 64
ID_LEN = 16
SALT_LEN = 32
MAX_ATTACHMENTS = 64
MAX_RECEIPT_ENTRIES = 256
SUBJECT_MAX = 1024
BODY_MAX = 16 << 20
INLINE_BODY_MAX = 32768
ATTACHMENT_MAX = 1 << 62
CHUNK_HDR_LEN = 17
CHUNK_DATA_MAX = RECORD_BODY_MAX - CHUNK_HDR_LEN  # 65500
ACK_MAX_RANGES = 256
RESUME_MAX = 1024
REFUSE_TEXT_MAX = 200

ROUTINE, PRIORITY, IMMEDIATE, FLASH = 0, 1, 2, 3
PRECEDENCE_NAMES = ["routine", "priority", "immediate", "flash"]

REFUSE_SIGNATURE, REFUSE_RECIPIENT, REFUSE_ID_REUSED, REFUSE_CONTENT = 1, 2, 3, 4
REFUSE_ATTACHMENT, REFUSE_TOO_LARGE, REFUSE_QUOTA, REFUSE_MALFORMED = 5, 6, 7, 8

ZERO32 = bytes(32)


class ProtocolError(Exception):
    """Bytes that break the documents' rules."""


class Closed(Exception):
    """The other side closed the connection."""


# ------------------------------------------------------------------ hashing

def blake2b256(data, key=b""):
    return hashlib.blake2b(data, digest_size=32, key=key).digest()


def doc_hash(data):
    """A document's (an attachment's) hash: SHA-256 (docs/items.md 2.1)."""
    return hashlib.sha256(data).digest()


def file_doc_hash(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(1 << 20)
            if not block:
                return h.digest()
            h.update(block)


def salted_hash(salt, label, data):
    """BLAKE2b-256 keyed with SALT over LABEL NUL DATA (docs/items.md 2.1)."""
    return blake2b256(label + b"\0" + data, key=salt)


def next_key_hash(noise_key, signing_key):
    """The commitment to a station's next keys (docs/rotation.md)."""
    return blake2b256(b"hotline/1 next keys" + noise_key + signing_key)


def fingerprint_text(noise_key, signing_key, next_key_hash=None):
    """The fingerprint as `peer add --fingerprint` takes it: BLAKE2b-256 of
    the context, NoiseKey, SigningKey and, when the card has one, its
    NextKeyHash (docs/cards.md), 8 groups of 5 digits."""
    h = blake2b256(FP_CONTEXT + noise_key + signing_key + (next_key_hash or b""))
    return " ".join(f"{w % 100000:05d}" for w in struct.unpack(">8I", h))


# ------------------------------------------------------------- identities

class Identity:
    """A station's keys: X25519 for Noise, Ed25519 for items."""

    def __init__(self, name="hlpeer"):
        self.name = name
        self.noise = X25519DH().generate_keypair()
        self.sign_sk = Ed25519PrivateKey.generate()
        self.noise_pk = self.noise.public.data
        self.sign_pk = self.sign_sk.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def sign(self, data):
        return self.sign_sk.sign(data)

    # the names a Station's keys go by (station.py)
    @property
    def noise_key(self):
        return self.noise_pk

    @property
    def signing_key(self):
        return self.sign_pk

    @property
    def fingerprint(self):
        return fingerprint_text(self.noise_pk, self.sign_pk)

    def card(self, address=None):
        lines = ["[Station]", f"Name = {self.name}",
                 "NoiseKey = " + base64.b64encode(self.noise_pk).decode(),
                 "SigningKey = " + base64.b64encode(self.sign_pk).decode()]
        if address:
            lines.append(f"Address = {address}")
        return "\n".join(lines) + "\n"


def verify_sig(pk, sig, data):
    try:
        Ed25519PublicKey.from_public_bytes(pk).verify(sig, data)
        return True
    except (InvalidSignature, ValueError):
        return False


# --------------------------------------------------------------- byte reader

class Reader:
    def __init__(self, buf, what):
        self.buf, self.pos, self.what = bytes(buf), 0, what

    def take(self, n, field):
        if n < 0 or self.pos + n > len(self.buf):
            raise ProtocolError(f"{self.what}: field {field} runs past the end "
                                f"(needs {n} at {self.pos} of {len(self.buf)})")
        out = self.buf[self.pos:self.pos + n]
        self.pos += n
        return out

    def u8(self, field):
        return self.take(1, field)[0]

    def u16(self, field):
        return struct.unpack(">H", self.take(2, field))[0]

    def u32(self, field):
        return struct.unpack(">I", self.take(4, field))[0]

    def u64(self, field):
        return struct.unpack(">Q", self.take(8, field))[0]

    def rest(self):
        out = self.buf[self.pos:]
        self.pos = len(self.buf)
        return out

    def left(self):
        return len(self.buf) - self.pos

    def end(self):
        if self.pos != len(self.buf):
            raise ProtocolError(f"{self.what}: {len(self.buf) - self.pos} bytes left over")


def u8(v):
    return struct.pack(">B", v)


def u16(v):
    return struct.pack(">H", v)


def u32(v):
    return struct.pack(">I", v)


def u64(v):
    return struct.pack(">Q", v)


# -------------------------------------------------------------------- items

def name_valid(name):
    """docs/items.md: a base name, 1..255 bytes of UTF-8, no '/', NUL or
    control characters, not '.' or '..'."""
    if not 1 <= len(name) <= 255 or name in (b".", b".."):
        return False
    try:
        text = name.decode("utf-8")
    except UnicodeDecodeError:
        return False
    for ch in text:
        o = ord(ch)
        if ch == "/" or o < 0x20 or o == 0x7f or 0x80 <= o <= 0x9f:
            return False
    return True


class Attachment:
    """An attachment of a message: NAME (bytes), its DATA, and what the item
    declares (size and hash default to the data's)."""

    def __init__(self, name, data, size=None, hash=None):
        self.name = name.encode() if isinstance(name, str) else name
        self.data = data
        self.size = len(data) if size is None else size
        self.hash = doc_hash(data) if hash is None else hash


class Item:
    """A decoded item (either kind)."""
    kind = None

    def __repr__(self):
        return f"<{self.kind} seq={self.seq}>"


def message_fields(mid, precedence, class_seq, subject_hash, body_hash, body_size, atts):
    out = bytearray(mid + u8(precedence) + u64(class_seq) + subject_hash + body_hash
                    + u64(body_size) + u8(len(atts)))
    for name, size, h in atts:
        out += u8(len(name)) + name + u64(size) + h
    return bytes(out)


def receipt_fields(peer_seq, peer_hash, entries):
    out = bytearray(u64(peer_seq) + peer_hash + u16(len(entries)))
    for seq, h in entries:
        out += u64(seq) + h
    return bytes(out)


def encode_item(context, author, counterpart, seq, prev, time_ms, fields, signer):
    """The item's bytes: header, kind fields, then SIGNER(everything before)
    (an Identity's sign, or any function returning 64 bytes)."""
    unsigned = (context + b"\0" + author + counterpart + u64(seq) + prev + u64(time_ms)
                + fields)
    sig = signer(unsigned)
    assert len(sig) == SIG_LEN
    return unsigned + sig


def decode_item(buf):
    """Structural decode with every rule of docs/items.md section 1 and the
    kinds' limits; raises ProtocolError.  No signature check."""
    if len(buf) > ITEM_MAX:
        raise ProtocolError(f"item of {len(buf)} bytes, over {ITEM_MAX}")
    nul = buf.find(b"\0")
    if nul < 0 or nul > 64:
        raise ProtocolError("item context not terminated")
    context = bytes(buf[:nul])
    r = Reader(buf, "item")
    r.take(nul + 1, "context")
    it = Item()
    if context not in KINDS:
        raise ProtocolError(f"unknown item context {context!r}")
    it.kind = KINDS[context]
    it.context = context
    it.author = r.take(32, "author")
    it.counterpart = r.take(32, "counterpart")
    it.seq = r.u64("seq")
    it.prev = r.take(32, "prev")
    it.time_ms = r.u64("time")
    if it.seq == 0:
        raise ProtocolError("item seq 0")
    if it.seq == 1 and it.prev != ZERO32:
        raise ProtocolError("item seq 1 with a non-zero prev")
    if it.kind == "message":
        it.id = r.take(ID_LEN, "id")
        it.precedence = r.u8("precedence")
        if it.precedence > FLASH:
            raise ProtocolError(f"precedence {it.precedence}")
        it.class_seq = r.u64("class_seq")
        if it.class_seq == 0:
            raise ProtocolError("class_seq 0")
        it.subject_hash = r.take(32, "subject_hash")
        it.body_hash = r.take(32, "body_hash")
        it.body_size = r.u64("body_size")
        if it.body_size > BODY_MAX:
            raise ProtocolError(f"body_size {it.body_size}")
        n = r.u8("n_attachments")
        if n > MAX_ATTACHMENTS:
            raise ProtocolError(f"{n} attachments")
        it.attachments = []
        for i in range(n):
            ln = r.u8("name_len")
            name = r.take(ln, "name")
            if not name_valid(name):
                raise ProtocolError(f"attachment name {name!r}")
            size = r.u64("size")
            if size > ATTACHMENT_MAX:
                raise ProtocolError(f"attachment size {size}")
            it.attachments.append((name, size, r.take(32, "hash")))
    elif it.kind == "check":
        it.id = r.take(ID_LEN, "id")
        it.mode, it.link = r.u8("mode"), r.u8("link")
        it.timeout_ms = r.u32("timeout_ms")
        if it.mode > 1 or it.link > 1 or not 1 <= it.timeout_ms <= CHECK_TIMEOUT_MAX:
            raise ProtocolError(f"check mode {it.mode} link {it.link} timeout {it.timeout_ms}")
        _head(r, it)
    elif it.kind == "answer":
        it.check_seq = r.u64("check_seq")
        it.check_hash = r.take(32, "check_hash")
        it.by = r.u8("by")
        if it.check_seq == 0 or it.by > BY_NO_PERSON:
            raise ProtocolError(f"answer to seq {it.check_seq} by {it.by}")
        _head(r, it)
    elif it.kind == "agreement":
        ln = r.u8("name_len")
        it.name = r.take(ln, "name")
        if not name_valid(it.name):
            raise ProtocolError(f"agreement name {it.name!r}")
        it.size = r.u64("size")
        if it.size > ATTACHMENT_MAX:
            raise ProtocolError(f"agreement size {it.size}")
        it.doc_hash = r.take(32, "doc_hash")
        it.msg_id = r.take(ID_LEN, "msg_id")
    elif it.kind == "countersign":
        it.proposal_seq = r.u64("proposal_seq")
        it.agreement_id = r.take(32, "agreement_id")
        it.doc_hash = r.take(32, "doc_hash")
        if it.proposal_seq == 0:
            raise ProtocolError("countersign of seq 0")
    else:
        _head(r, it)
        count = r.u16("count")
        if not 1 <= count <= MAX_RECEIPT_ENTRIES:
            raise ProtocolError(f"receipt count {count}")
        it.entries = [(r.u64("entry seq"), r.take(32, "entry hash")) for _ in range(count)]
        if any(seq == 0 for seq, _ in it.entries):
            raise ProtocolError("receipt entry with seq 0")
    it.signed = bytes(buf[:r.pos])
    it.sig = r.take(SIG_LEN, "sig")
    r.end()
    it.encoded = bytes(buf)
    it.hash = blake2b256(it.encoded)
    return it


def _head(r, it):
    """peer_seq and peer_hash: a chain head (zeros when peer_seq is 0)."""
    it.peer_seq = r.u64("peer_seq")
    it.peer_hash = r.take(32, "peer_hash")
    if it.peer_seq == 0 and it.peer_hash != ZERO32:
        raise ProtocolError(f"{it.kind}: peer_seq 0 with a non-zero peer_hash")


def answer_fields(check_seq, check_hash, by, peer_seq, peer_hash):
    return u64(check_seq) + check_hash + u8(by) + u64(peer_seq) + peer_hash


def check_fields(cid, mode, link, timeout_ms, peer_seq, peer_hash):
    return cid + u8(mode) + u8(link) + u32(timeout_ms) + u64(peer_seq) + peer_hash


def open_item(buf, author, counterpart):
    """decode_item, then the keys, then the signature (docs/items.md)."""
    it = decode_item(buf)
    if it.author != author:
        raise ProtocolError("item by another author")
    if it.counterpart != counterpart:
        raise ProtocolError("item for another counterpart")
    if not verify_sig(author, it.sig, it.signed):
        raise ProtocolError("item signature does not verify")
    return it


# ------------------------------------------------------------------ content

def encode_content(salt, subject, inline, body=b""):
    """Message content (docs/messages.md): salt, subject_len, subject,
    inline, and the body when inline."""
    out = salt + u16(len(subject)) + subject + u8(1 if inline else 0)
    if inline:
        out += body
    return out


def decode_content(buf, body_size):
    r = Reader(buf, "content")
    salt = r.take(SALT_LEN, "salt")
    n = r.u16("subject_len")
    if n > SUBJECT_MAX:
        raise ProtocolError(f"subject_len {n}")
    subject = r.take(n, "subject")
    inline = r.u8("inline")
    if inline not in (0, 1):
        raise ProtocolError(f"inline {inline}")
    body = None
    if inline:
        body = r.rest()
        if len(body) != body_size or body_size > INLINE_BODY_MAX:
            raise ProtocolError(f"inline body of {len(body)} bytes, item says {body_size}")
    r.end()
    return salt, subject, bool(inline), body


# ------------------------------------------------------------------ packets

def rec_item(item, rest=b""):
    return u16(len(item)) + item + rest


def rec_chunk(seq, part, offset, data):
    return u64(seq) + u8(part) + u64(offset) + data


def rec_ack(base, ranges=()):
    return u64(base) + u16(len(ranges)) + b"".join(u64(a) + u64(b) for a, b in ranges)


def rec_resume(entries=()):
    return u16(len(entries)) + b"".join(u64(s) + u8(p) + u64(o) for s, p, o in entries)


def rec_refuse(seq, item_hash, code, text=b""):
    return u64(seq) + item_hash + u8(code) + text


def parse_item_rec(body):
    r = Reader(body, "ITEM")
    n = r.u16("item_len")
    item = r.take(n, "item")
    return item, r.rest()


def parse_chunk(body):
    r = Reader(body, "CHUNK")
    seq, part, off = r.u64("seq"), r.u8("part"), r.u64("offset")
    data = r.rest()
    if not data:
        raise ProtocolError("CHUNK without data")
    return seq, part, off, data


def parse_ack(body):
    r = Reader(body, "ACK")
    base, n = r.u64("base"), r.u16("n")
    if n > ACK_MAX_RANGES:
        raise ProtocolError(f"ACK with {n} ranges")
    ranges = [(r.u64("first"), r.u64("last")) for _ in range(n)]
    r.end()
    last = base
    for a, b in ranges:
        if not (a <= b and a > last):
            raise ProtocolError(f"ACK ranges not increasing and disjoint: {ranges}")
        last = b
    return base, ranges


def parse_resume(body):
    r = Reader(body, "RESUME")
    n = r.u16("n")
    if n > RESUME_MAX:
        raise ProtocolError(f"RESUME with {n} entries")
    entries = [(r.u64("seq"), r.u8("part"), r.u64("offset")) for _ in range(n)]
    r.end()
    return entries


def parse_refuse(body):
    r = Reader(body, "REFUSE")
    seq, h, code = r.u64("seq"), r.take(32, "hash"), r.u8("code")
    text = r.rest()
    if len(text) > REFUSE_TEXT_MAX:
        raise ProtocolError(f"REFUSE text of {len(text)} bytes")
    return seq, h, code, text


def hello_body(keepalive_ms=25000, min_version=1, max_version=1, flags=None):
    """A HELLO; FLAGS None sends the 6-byte form of a station without
    the flags byte."""
    body = u8(min_version) + u8(max_version) + u32(keepalive_ms)
    return body if flags is None else body + u8(flags)


def rec_credit(taken):
    return u64(taken)


def seal_bundle(me, recipient_noise_pk, records):
    """A courier bundle (docs/bundle.md) from ME to the station whose
    NoiseKey is RECIPIENT_NOISE_PK, carrying PACKETS [(type, body)] and the
    END packet: the header, the Noise_X handshake message, then one
    transport frame per packet."""
    header = BUNDLE_MAGIC + blake2b256(recipient_noise_pk)[:8]
    hs = new_handshake()
    hs.initialize(XHandshakePattern(), True, header, s=me.noise,
                  rs=X25519PublicKey(recipient_noise_pk))
    m1 = bytearray()
    cs = hs.write_message(b"", m1)
    out = bytearray(header + u16(len(m1)) + bytes(m1))
    records = list(records) + [(T_BUNDLE_END, u64(len(records)))]
    for rtype, body in records:
        ct = cs[0].encrypt_with_ad(b"", bytes([REC_VERSION, rtype]) + body)
        out += u16(len(ct)) + ct
    return bytes(out)


def undecodable_item(author, counterpart, seq, signer=None):
    """Bytes that claim SEQ in a readable common header but do not decode
    as an item (an unknown kind's fields); signed by SIGNER when given."""
    unsigned = (CTX_MESSAGE + b"\0" + author + counterpart + u64(seq) + ZERO32 + u64(0)
                + b"\xff" * 40)
    return unsigned + (signer(unsigned) if signer else bytes(SIG_LEN))


# --------------------------------------------------------------------- link

def connect(port, timeout=None, source=None, host="127.0.0.1"):
    """A TCP connection to HOST:PORT, retrying while refused; from the
    loopback address SOURCE (such as "127.0.0.2") when given, so that a test
    can play several source addresses."""
    timeout = timeout or scaled(10)
    deadline = time.monotonic() + timeout
    while True:
        try:
            s = socket.create_connection((host, port), timeout=timeout,
                                         source_address=(source, 0) if source else None)
            s.settimeout(None)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return s
        except ConnectionRefusedError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _recv_exact(sock, n, deadline):
    buf = bytearray()
    while len(buf) < n:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"got {len(buf)} of {n} bytes")
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


def send_frame(sock, msg):
    assert 0 <= len(msg) <= MAX_FRAME
    sock.sendall(u16(len(msg)) + msg)


def recv_frame(sock, timeout=None):
    """One frame's bytes (the 2-byte length taken off)."""
    deadline = time.monotonic() + (timeout or scaled(10))
    (n,) = struct.unpack(">H", _recv_exact(sock, 2, deadline))
    return _recv_exact(sock, n, deadline)


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


def new_handshake():
    return HandshakeState(SymmetricState(CipherState(ChaChaPolyCipher()), Blake2bHash()),
                          X25519DH())


def record(rtype, body=b"", version=REC_VERSION):
    return bytes([version, rtype]) + body


def parse_hello(body):
    assert len(body) >= 6, f"HELLO body of {len(body)} bytes, want at least 6"
    (keepalive_ms,) = struct.unpack(">I", body[2:6])
    return {"min_version": body[0], "max_version": body[1], "keepalive_ms": keepalive_ms}


class Session:
    """A Noise transport session over one TCP connection: framing,
    encryption, and the link-level packets.  recv_record() is the peer's
    view (PINGs answered, CLOSE raised, another version refused);
    recv_raw() returns every packet as it came, for tests that look at the
    link itself."""

    def __init__(self, sock, send_cs, recv_cs):
        self.sock, self.send_cs, self.recv_cs = sock, send_cs, recv_cs
        self.closed = False
        self.close_reason = None
        self.peer_hello = None
        self.message1 = None     # what an eavesdropper saw of a dial
        self._buf = bytearray()
        # Every transport frame, in order, as (type, body, ciphertext length):
        # what a test correlates with the other side's system calls.
        self.sent_log = []
        self.recv_log = []

    def _frame(self, rtype, body, version):
        pt = bytes([version, rtype]) + body
        if len(pt) + TAG_LEN > MAX_FRAME:
            raise ProtocolError(f"record of {len(pt)} bytes does not fit a frame")
        ct = self.send_cs.encrypt_with_ad(b"", pt)
        self.sent_log.append((rtype, body, len(ct)))
        return u16(len(ct)) + ct

    def send_record(self, rtype, body=b"", version=REC_VERSION):
        self.sock.sendall(self._frame(rtype, body, version))

    def send_records(self, records):
        """Several (type, body) packets in one write, so that they arrive
        together (one read burst at the other side)."""
        self.sock.sendall(b"".join(self._frame(t, b, REC_VERSION) for t, b in records))

    def send_raw(self, plaintext):
        """PLAINTEXT encrypted as one frame, whatever it holds (no packet
        header is added): a malformed packet on purpose."""
        send_frame(self.sock, self.send_cs.encrypt_with_ad(b"", plaintext))

    def _fill(self, timeout):
        """Reads what is available (waiting up to TIMEOUT) into the buffer;
        raises Closed at EOF."""
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return False
        try:
            data = self.sock.recv(1 << 20)
        except (ConnectionResetError, BrokenPipeError) as exc:
            self.closed = True
            raise Closed(str(exc)) from exc
        if not data:
            self.closed = True
            raise Closed("EOF")
        self._buf += data
        return True

    def _next(self, deadline):
        """The next packet's plaintext, or None at DEADLINE."""
        while True:
            if len(self._buf) >= 2:
                n = struct.unpack(">H", self._buf[:2])[0]
                if n == 0:
                    raise ProtocolError("frame of length 0")
                if len(self._buf) >= 2 + n:
                    ct = bytes(self._buf[2:2 + n])
                    del self._buf[:2 + n]
                    pt = self.recv_cs.decrypt_with_ad(b"", ct)
                    if len(pt) < 2:
                        raise ProtocolError(f"record of {len(pt)} bytes")
                    self.recv_log.append((pt[1], pt[2:], len(ct)))
                    return pt
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            self._fill(left)

    def recv_record(self, timeout):
        """The next packet as (type, body), or None after TIMEOUT seconds.
        PINGs are answered with PONGs and not returned; a CLOSE raises
        Closed; another version raises ProtocolError."""
        deadline = time.monotonic() + timeout
        while True:
            pt = self._next(deadline)
            if pt is None:
                return None
            if pt[0] != REC_VERSION:
                raise ProtocolError(f"record version {pt[0]}")
            rtype, body = pt[1], pt[2:]
            if rtype == T_PING:
                self.send_record(T_PONG, body)
                continue
            if rtype == T_CLOSE:
                self.closed = True
                self.close_reason = (body[:1], body[1:])
                raise Closed(f"CLOSE {body!r}")
            return rtype, body

    def recv_raw(self, timeout=None, answer_pings=True):
        """The next packet as (version, type, body), CLOSE included;
        TimeoutError after TIMEOUT.  PINGs of this version are answered and
        skipped unless ANSWER_PINGS is False."""
        timeout = timeout or scaled(10)
        deadline = time.monotonic() + timeout
        while True:
            pt = self._next(deadline)
            if pt is None:
                raise TimeoutError(f"no record within {timeout:.1f}s")
            version, rtype, body = pt[0], pt[1], pt[2:]
            if answer_pings and version == REC_VERSION and rtype == T_PING:
                self.send_record(T_PONG, body)
                continue
            return version, rtype, body

    def recv_type(self, want, timeout=None):
        """Skips packets (answering PINGs) until one of type WANT; its body."""
        timeout = timeout or scaled(10)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no record of type {want:#x} within {timeout:.1f}s")
            version, rtype, body = self.recv_raw(left)
            assert version == REC_VERSION, f"record version {version}"
            if rtype == want:
                return body

    def ping(self, timeout=None):
        """Sends a PING of 8 random bytes; returns once the matching PONG is in."""
        value = os.urandom(8)
        self.send_record(T_PING, value)
        while True:
            if self.recv_type(T_PONG, timeout) == value:
                return value

    def close(self, reason=CLOSE_SHUTDOWN, text=b"hlpeer done"):
        if not self.closed:
            try:
                self.send_record(T_CLOSE, u8(reason) + text)
            except OSError:
                pass
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass


TAI64_BASE = (1 << 62) + 10   # TAI64 label of the Unix epoch, as libtai and WireGuard write it


def tai64n(unix_ns):
    """The 12-byte TAI64N form of a time in nanoseconds since the Unix epoch."""
    return struct.pack(">QI", TAI64_BASE + unix_ns // 10**9, unix_ns % 10**9)


def tai64n_unix_ns(stamp):
    label, nano = struct.unpack(">QI", stamp[:TAI64N_LEN])
    return (label - TAI64_BASE) * 10**9 + nano


_last_stamp = {}


def fresh_stamp(me):
    """Message 1's payload (docs/protocol.md section 2.1): a TAI64N timestamp
    of now, strictly greater than the last one made here for ME (two dials
    in one clock tick)."""
    ns = max(time.time_ns(), _last_stamp.get(id(me), -1) + 1)
    _last_stamp[id(me)] = ns
    return tai64n(ns)


class Initiator:
    """The dialing side of IK.  Message 1 carries a fresh timestamp unless
    told otherwise (an explicit payload: b"" is the empty payload of
    earlier stations)."""

    def __init__(self, me, responder_key):
        self.me = me
        self.hs = new_handshake()
        self.hs.initialize(IKHandshakePattern(), True, PROLOGUE, s=me.noise,
                           rs=X25519PublicKey(responder_key))

    def message1(self, payload=None):
        buf = bytearray()
        self.hs.write_message(fresh_stamp(self.me) if payload is None else payload, buf)
        return bytes(buf)

    def read_message2(self, msg):
        """(send CipherState, receive CipherState, message 2's payload)."""
        payload = bytearray()
        cs = self.hs.read_message(msg, payload)
        if cs is None:
            raise ProtocolError("IK not complete after message 2")
        # Split(): the initiator sends with the first CipherState.
        return cs[0], cs[1], bytes(payload)


class Responder:
    """The listening side of IK."""

    def __init__(self, me):
        self.me = me
        self.hs = new_handshake()
        self.hs.initialize(IKHandshakePattern(), False, PROLOGUE, s=me.noise)

    def read_message1(self, msg):
        payload = bytearray()
        self.hs.read_message(msg, payload)
        return bytes(payload)

    @property
    def remote_static(self):
        return self.hs.rs.data

    def message2(self, payload=b""):
        """(message 2, send CipherState, receive CipherState)."""
        buf = bytearray()
        cs = self.hs.write_message(payload, buf)
        if cs is None:
            raise ProtocolError("IK not complete after message 2")
        # Split(): the responder sends with the second CipherState.
        return bytes(buf), cs[1], cs[0]


def dial(port, me, their_noise_pk, timeout=None, host="127.0.0.1", keepalive_ms=25000,
         hello_flags=None, payload=None, hello=True, source=None):
    """Connects as ME (from loopback address SOURCE when given) to a station
    listening on PORT and runs IK as the initiator (message 1's PAYLOAD:
    None for a fresh timestamp); with HELLO, sends HELLO and waits for the
    station's (in session.peer_hello).  session.message1 is what an
    eavesdropper saw."""
    timeout = timeout or scaled(10)
    deadline = time.monotonic() + timeout
    sock = connect(port, timeout=timeout, source=source, host=host)
    try:
        ini = Initiator(me, their_noise_pk)
        m1 = ini.message1(payload)
        send_frame(sock, m1)
        n = struct.unpack(">H", _recv_exact(sock, 2, deadline))[0]
        send_cs, recv_cs, _ = ini.read_message2(_recv_exact(sock, n, deadline))
        sess = Session(sock, send_cs, recv_cs)
        sess.message1 = m1
        if not hello:
            return sess
        sess.send_record(T_HELLO, hello_body(keepalive_ms, flags=hello_flags))
        rec = sess.recv_record(max(0.1, deadline - time.monotonic()))
        if rec is None or rec[0] != T_HELLO:
            raise ProtocolError(f"expected the station's HELLO, got {rec!r}")
        if len(rec[1]) < 6:
            raise ProtocolError("HELLO shorter than 6 bytes")
        sess.peer_hello = rec[1]
        return sess
    except BaseException:
        sock.close()
        raise


class Listener:
    """A TCP listener on a free 127.0.0.1 port for a station to dial;
    accept() runs IK as the responder and answers the dialer's HELLO,
    accept_raw() only takes the connection."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"

    def accept_raw(self, timeout=None):
        self.sock.settimeout(timeout or scaled(15))
        conn, _ = self.sock.accept()
        conn.settimeout(None)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def accept(self, me, expect_static=None, timeout=20.0, keepalive_ms=25000,
               hello_flags=None):
        deadline = time.monotonic() + timeout
        conn = self.accept_raw(timeout)
        try:
            resp = Responder(me)
            n = struct.unpack(">H", _recv_exact(conn, 2, deadline))[0]
            resp.read_message1(_recv_exact(conn, n, deadline))
            if expect_static is not None and resp.remote_static != expect_static:
                raise ProtocolError("dialed by an unexpected static key")
            m2, send_cs, recv_cs = resp.message2()
            send_frame(conn, m2)
            sess = Session(conn, send_cs, recv_cs)
            rec = sess.recv_record(max(0.1, deadline - time.monotonic()))
            if rec is None or rec[0] != T_HELLO:
                raise ProtocolError(f"expected the dialer's HELLO, got {rec!r}")
            sess.peer_hello = rec[1]
            sess.send_record(T_HELLO, hello_body(keepalive_ms, flags=hello_flags))
            return sess
        except BaseException:
            conn.close()
            raise

    def close(self):
        self.sock.close()


# ------------------------------------------------------------------- station

class OutItem:
    """An item this Peer authored, with what travels beside it."""

    def __init__(self, seq, encoded, kind, precedence, rest=b"", parts=None, mid=None):
        self.seq, self.encoded, self.kind = seq, encoded, kind
        self.precedence, self.rest = precedence, rest
        self.parts = parts or {}       # part number -> bytes to send
        self.id = mid
        self.hash = blake2b256(encoded)


class InMessage:
    """A message of the counterpart's chain as this Peer receives it."""

    def __init__(self, item, salt, subject, body):
        self.item, self.salt, self.subject = item, salt, subject
        self.body = body                  # None until part 0 is whole
        self.parts = {}                   # part -> bytearray received
        self.sizes = {}                   # part -> expected size
        if body is None:
            self.parts[0], self.sizes[0] = bytearray(), item.body_size
        for i, (_, size, _) in enumerate(item.attachments):
            self.parts[i + 1], self.sizes[i + 1] = bytearray(), size
        self.complete = False
        self.visible = False
        self.problem = None

    @property
    def id_hex(self):
        return self.item.id.hex()

    def attachment_data(self, i):
        return bytes(self.parts[i + 1])


class Peer:
    """One station's side of the link with one counterpart, in memory.

    ME is this station's Identity; THEIR_SIGN_PK the counterpart's
    SigningKey.  Incoming packets are handled by poll(); what came in is
    kept in the attributes below for the tests to inspect.  With AUTO_ACK
    (default) every stored item of the counterpart is ACKed at once; with
    AUTO_RECEIPT (default) every message that becomes whole and in order is
    covered by a receipt this Peer authors and sends."""

    def __init__(self, me, their_sign_pk, auto_ack=True, auto_receipt=True, auto_answer=True):
        self.me, self.them = me, their_sign_pk
        self.auto_ack, self.auto_receipt = auto_ack, auto_receipt
        self.auto_answer = auto_answer
        self.session = None
        # our chain
        self.out = {}                   # seq -> OutItem
        self.head_seq, self.head_hash = 0, ZERO32
        self.next_class = [1, 1, 1, 1]
        # what the counterpart told us about our chain
        self.acked = set()
        self.ack_records = []           # (base, ranges) as received
        self.refusals = []              # (seq, hash, code, text)
        self.resumes = []               # entries of every RESUME received
        self.receipts = []              # decoded receipt items of the counterpart
        self.delivered = {}             # our seq -> the receipt item that covered it
        # their chain
        self.in_items = {}              # seq -> decoded Item
        self.in_msgs = {}               # seq -> InMessage
        self.in_other = []              # their checks, answers, agreements, countersigns
        self.violations = []            # rules the counterpart broke, as text
        self.records_in = []            # (time, type, length) of every packet

    # -- authoring

    def _append(self, encoded, kind, precedence, rest=b"", parts=None, mid=None, seq=None):
        seq = self.head_seq + 1 if seq is None else seq
        oi = OutItem(seq, encoded, kind, precedence, rest, parts, mid)
        self.out[seq] = oi
        if seq == self.head_seq + 1:
            self.head_seq, self.head_hash = seq, oi.hash
        return oi

    def compose(self, subject=b"", body=b"", attachments=(), precedence=ROUTINE, mid=None,
                class_seq=None, counterpart=None, author=None, signer=None, seq=None,
                prev=None, time_ms=None, wire_subject=None, wire_body=None, salt=None,
                inline=None, tamper_sig=False, raw_names=None):
        """Authors a message on this Peer's chain (it is stored, not sent).
        The keyword arguments break the rules on purpose: another
        COUNTERPART or AUTHOR, a SIGNER other than ours, a reused MID, a
        WIRE_SUBJECT/WIRE_BODY different from what the item commits to,
        TAMPER_SIG (flip a bit of the signature), RAW_NAMES (attachment names
        as bytes, unchecked)."""
        subject = subject.encode() if isinstance(subject, str) else subject
        body = body.encode() if isinstance(body, str) else body
        salt = os.urandom(SALT_LEN) if salt is None else salt
        mid = os.urandom(ID_LEN) if mid is None else mid
        if class_seq is None:
            class_seq = self.next_class[precedence]
            self.next_class[precedence] += 1
        atts = [a if isinstance(a, Attachment) else Attachment(*a) for a in attachments]
        names = raw_names if raw_names is not None else [a.name for a in atts]
        fields = message_fields(mid, precedence, class_seq, salted_hash(salt, LABEL_SUBJECT, subject),
                                salted_hash(salt, LABEL_BODY, body), len(body),
                                [(n, a.size, a.hash) for n, a in zip(names, atts)])
        seq = self.head_seq + 1 if seq is None else seq
        prev = (self.head_hash if seq == self.head_seq + 1 else ZERO32) if prev is None else prev
        enc = encode_item(CTX_MESSAGE, author or self.me.sign_pk, counterpart or self.them,
                          seq, prev, int(time.time() * 1000) if time_ms is None else time_ms,
                          fields, signer or self.me.sign)
        if tamper_sig:
            enc = enc[:-1] + bytes([enc[-1] ^ 0x01])
        wsubject = subject if wire_subject is None else wire_subject
        wbody = body if wire_body is None else wire_body
        if inline is None:
            inline = len(wbody) <= INLINE_BODY_MAX
        rest = encode_content(salt, wsubject, inline, wbody)
        parts = {}
        if not inline:
            parts[0] = wbody
        for i, a in enumerate(atts):
            parts[i + 1] = a.data
        return self._append(enc, "message", precedence, rest, parts, mid, seq=seq)

    def their_head(self):
        """(seq, hash): the highest seq of their chain held with every item
        before it."""
        pseq = 0
        while (pseq + 1) in self.in_items:
            pseq += 1
        return pseq, (self.in_items[pseq].hash if pseq else ZERO32)

    def replace(self, seq, encoded):
        """Puts other bytes at SEQ of this Peer's chain (a crafted item),
        keeping the chain's head hash consistent."""
        oi = self.out[seq]
        oi.encoded, oi.hash = encoded, blake2b256(encoded)
        if seq == self.head_seq:
            self.head_hash = oi.hash
        return oi

    def author_answer(self, check, by=BY_STATION):
        pseq, phash = self.their_head()
        fields = answer_fields(check.seq, check.hash, by, pseq, phash)
        enc = encode_item(CTX_ANSWER, self.me.sign_pk, self.them, self.head_seq + 1,
                          self.head_hash, int(time.time() * 1000), fields, self.me.sign)
        return self._append(enc, "answer", FLASH)

    def author_check(self, mode=1, timeout_ms=60000, cid=None):
        """A line check (docs/items.md 2.3) on this Peer's chain: MODE 1
        asks for a person (operator), 0 for the station (machine)."""
        pseq, phash = self.their_head()
        fields = check_fields(cid or os.urandom(ID_LEN), mode, 1, timeout_ms, pseq, phash)
        enc = encode_item(CTX_CHECK, self.me.sign_pk, self.them, self.head_seq + 1,
                          self.head_hash, int(time.time() * 1000), fields, self.me.sign)
        return self._append(enc, "check", FLASH)

    def author_receipt(self, entries, peer_seq=None, peer_hash=None, seq=None, prev=None):
        """A receipt for ENTRIES [(their seq, their item hash)]; peer_seq
        and peer_hash are the contiguous head of their chain as held unless
        given (to break the rules on purpose), as are SEQ and PREV."""
        pseq, phash = self.their_head()
        pseq = pseq if peer_seq is None else peer_seq
        phash = phash if peer_hash is None else peer_hash
        seq = self.head_seq + 1 if seq is None else seq
        prev = (self.head_hash if seq == self.head_seq + 1 else ZERO32) if prev is None else prev
        fields = receipt_fields(pseq, phash, entries)
        enc = encode_item(CTX_RECEIPT, self.me.sign_pk, self.them, seq, prev,
                          int(time.time() * 1000), fields, self.me.sign)
        return self._append(enc, "receipt", FLASH, seq=seq)

    def append_raw(self, seq, encoded, kind="raw"):
        """Bytes at SEQ of this Peer's chain as given (a crafted item)."""
        return self._append(encoded, kind, FLASH, seq=seq)

    # -- session

    def attach(self, session):
        """A new session: send this side's state (ACK and RESUME), as
        docs/messages.md says each session starts."""
        self.session = session
        self.send_ack()
        self.send_resume()

    def dial(self, port, their_noise_pk, **kw):
        self.attach(dial(port, self.me, their_noise_pk, **kw))
        return self.session

    def send_ack(self):
        base = 0
        while (base + 1) in self.in_items:
            base += 1
        ranges, seqs = [], sorted(s for s in self.in_items if s > base)
        for s in seqs:
            if ranges and ranges[-1][1] == s - 1:
                ranges[-1][1] = s
            else:
                ranges.append([s, s])
        self.session.send_record(T_ACK, rec_ack(base, [tuple(r) for r in ranges[:ACK_MAX_RANGES]]))

    def send_resume(self):
        """Every part of every message held but not yet visible (a complete
        part with its size as offset; a message without parts as part 0,
        offset 0), as docs/messages.md says a session's RESUME lists."""
        entries = []
        for seq, m in sorted(self.in_msgs.items()):
            if m.visible or m.problem:
                continue
            if not m.parts:
                entries.append((seq, 0, 0))
            for part in sorted(m.parts):
                entries.append((seq, part, len(m.parts[part])))
        self.session.send_record(T_RESUME, rec_resume(entries[:RESUME_MAX]))

    def send_item(self, seq):
        oi = self.out[seq]
        self.session.send_record(T_ITEM, rec_item(oi.encoded, oi.rest))

    def send_parts(self, seq, offsets=None, limit=None, chunk=CHUNK_DATA_MAX):
        """Sends the parts of message SEQ from OFFSETS (part -> offset, else
        0) in part order; LIMIT caps the bytes sent (for a broken
        transfer).  Returns the bytes sent."""
        oi, sent = self.out[seq], 0
        for part in sorted(oi.parts):
            data = oi.parts[part]
            off = (offsets or {}).get(part, 0)
            while off < len(data):
                n = min(chunk, len(data) - off)
                if limit is not None and sent + n > limit:
                    return sent
                self.session.send_record(T_CHUNK, rec_chunk(seq, part, off, data[off:off + n]))
                off += n
                sent += n
        return sent

    def send_message(self, oi):
        self.send_item(oi.seq)
        self.send_parts(oi.seq)

    def send_burst(self, items):
        """The ITEMs (and parts) of the OutItems ITEMS in one write."""
        recs = []
        for oi in items:
            recs.append((T_ITEM, rec_item(oi.encoded, oi.rest)))
            for part in sorted(oi.parts):
                data = oi.parts[part]
                for off in range(0, len(data), CHUNK_DATA_MAX):
                    recs.append((T_CHUNK, rec_chunk(oi.seq, part, off,
                                                    data[off:off + CHUNK_DATA_MAX])))
        self.session.send_records(recs)

    # -- receiving

    def poll(self, timeout=0.0):
        """Handles the packets that arrive within TIMEOUT seconds (at least
        everything already buffered).  Returns the number handled."""
        deadline = time.monotonic() + timeout
        n = 0
        while True:
            rec = self.session.recv_record(max(0.0, deadline - time.monotonic()))
            if rec is None:
                return n
            self.handle(*rec)
            n += 1

    def wait(self, predicate, timeout, what):
        """Polls until PREDICATE() is true; AssertionError after TIMEOUT."""
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"hlpeer: timed out after {timeout:.1f}s waiting for {what}; "
                                     f"refusals={self.refusals} acked={sorted(self.acked)[-5:]} "
                                     f"violations={self.violations[-3:]}")
            try:
                # one packet at a time, so that the caller's condition is
                # seen as soon as it holds (and reading stops there)
                rec = self.session.recv_record(min(left, 0.2))
                if rec is not None:
                    self.handle(*rec)
            except Closed as exc:
                raise AssertionError(f"hlpeer: the station closed the session ({exc}) while "
                                     f"waiting for {what}; refusals={self.refusals}") from exc
        return True

    def refusal_for(self, seq):
        for r in self.refusals:
            if r[0] == seq:
                return r
        return None

    def handle(self, rtype, body):
        self.records_in.append((time.monotonic(), rtype, len(body)))
        if rtype == T_ACK:
            base, ranges = parse_ack(body)
            self.ack_records.append((base, ranges))
            self.acked.update(range(1, base + 1))
            for a, b in ranges:
                self.acked.update(range(a, b + 1))
        elif rtype == T_RESUME:
            self.resumes.append(parse_resume(body))
        elif rtype == T_REFUSE:
            self.refusals.append(parse_refuse(body))
        elif rtype == T_ITEM:
            self._on_item(body)
        elif rtype == T_CHUNK:
            self._on_chunk(body)
        elif rtype < 0x80:
            pass  # unknown optional packets are ignored (docs/protocol.md)
        else:
            raise ProtocolError(f"record type {rtype:#x}")

    def _violation(self, text):
        self.violations.append(text)

    def _on_item(self, body):
        raw, rest = parse_item_rec(body)
        try:
            it = open_item(raw, self.them, self.me.sign_pk)
        except ProtocolError as exc:
            self._violation(f"item refused: {exc}")
            return
        have = self.in_items.get(it.seq)
        if have is not None:
            if have.hash != it.hash:
                self._violation(f"two different items at seq {it.seq}")
            if self.auto_ack:
                self.send_ack()
            return
        # the chain must link: prev is the hash of the item before, when held
        before = self.in_items.get(it.seq - 1)
        if it.seq > 1 and before is not None and it.prev != before.hash:
            self._violation(f"item {it.seq}: prev does not match item {it.seq - 1}")
        after = self.in_items.get(it.seq + 1)
        if after is not None and after.prev != it.hash:
            self._violation(f"item {it.seq + 1}: prev does not match item {it.seq}")
        if it.kind in ("check", "answer", "agreement", "countersign"):
            self.in_items[it.seq] = it
            self.in_other.append(it)
            if it.kind == "check" and self.auto_answer:
                self.send_item(self.author_answer(it).seq)
        elif it.kind == "receipt":
            self.in_items[it.seq] = it
            self.receipts.append(it)
            for seq, h in it.entries:
                mine = self.out.get(seq)
                if mine is None or mine.hash != h:
                    self._violation(f"receipt {it.seq} names seq {seq} with a hash we did not author")
                    continue
                self.delivered.setdefault(seq, it)
            if it.peer_seq:
                mine = self.out.get(it.peer_seq)
                if mine is None or mine.hash != it.peer_hash:
                    self._violation(f"receipt {it.seq}: peer_seq/peer_hash do not name our item")
        else:
            try:
                salt, subject, inline, b = decode_content(rest, it.body_size)
            except ProtocolError as exc:
                self._violation(f"message {it.seq}: {exc}")
                return
            m = InMessage(it, salt, subject, b)
            if salted_hash(salt, LABEL_SUBJECT, subject) != it.subject_hash:
                self._violation(f"message {it.seq}: subject does not match its hash")
                m.problem = "subject"
            if b is not None and salted_hash(salt, LABEL_BODY, b) != it.body_hash:
                self._violation(f"message {it.seq}: body does not match its hash")
                m.problem = "body"
            for other in self.in_msgs.values():
                if other.item.id == it.id:
                    self._violation(f"message {it.seq} reuses the id of message {other.item.seq}")
            self.in_items[it.seq] = it
            self.in_msgs[it.seq] = m
            self._check_complete(m)
        if self.auto_ack:
            self.send_ack()
        self._make_visible()

    def _on_chunk(self, body):
        seq, part, off, data = parse_chunk(body)
        m = self.in_msgs.get(seq)
        if m is None or m.complete or part not in m.parts:
            return
        have = m.parts[part]
        if off < len(have):
            return   # a resend of what we hold
        if off > len(have) or len(have) + len(data) > m.sizes[part]:
            self._violation(f"CHUNK {seq}/{part} at {off}, expected {len(have)}")
            return
        have += data
        self._check_complete(m)
        self._make_visible()

    def _check_complete(self, m):
        if m.complete or any(len(m.parts[p]) < m.sizes[p] for p in m.parts):
            return
        if 0 in m.parts:
            m.body = bytes(m.parts[0])
            if salted_hash(m.salt, LABEL_BODY, m.body) != m.item.body_hash:
                self._violation(f"message {m.item.seq}: body does not match its hash")
                m.problem = "body"
        for i, (_, size, h) in enumerate(m.item.attachments):
            if doc_hash(bytes(m.parts[i + 1])) != h:
                self._violation(f"message {m.item.seq}: attachment {i} does not match its hash")
                m.problem = "attachment"
        m.complete = True

    def _make_visible(self):
        """Messages whole and next in their precedence become visible and,
        with AUTO_RECEIPT, receipted (one receipt for all of them)."""
        newly = []
        progress = True
        while progress:
            progress = False
            for m in sorted(self.in_msgs.values(), key=lambda x: x.item.seq):
                if m.visible or not m.complete or m.problem:
                    continue
                p, c = m.item.precedence, m.item.class_seq
                prev_ok = c == 1 or any(o.visible and o.item.precedence == p and
                                        o.item.class_seq == c - 1
                                        for o in self.in_msgs.values())
                if prev_ok:
                    m.visible = True
                    newly.append((m.item.seq, m.item.hash))
                    progress = True
        if newly and self.auto_receipt:
            for i in range(0, len(newly), MAX_RECEIPT_ENTRIES):
                oi = self.author_receipt(newly[i:i + MAX_RECEIPT_ENTRIES])
                self.send_item(oi.seq)

    def visible_messages(self):
        return [m for m in sorted(self.in_msgs.values(), key=lambda x: x.item.seq) if m.visible]

    def close(self):
        if self.session is not None:
            self.session.close()
            self.session = None
