"""Hostile peers against calls (docs/voice.md, LIMITS in daemon/calls.c):
garbage, forged, replayed and flooded media packets at a station's media
port during a call; and, from hlpeer (an independent implementation of the
link, pinned at the station), malformed signalling, a ring flood, a caller
that hangs up mid key exchange and an answer with a public key that makes
the exchange fail.  Each is bounded, and none disturbs messages on the same
link: after each, a message still goes through.
"""
import json
import os
import random
import socket
import struct
import subprocess
import time

import pytest

import hlpeer
import voiceutil as vu
from station import scaled, wait_for, HOTLINE_BIN

RING, RINGING, ANSWER, END, MEDIA = 0x30, 0x31, 0x32, 0x33, 0x34
T = scaled(10)


def rss_kb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def test_media_garbage_replays_and_flood(net, tmp_path):
    # every packet arrives twice (replays), and a flood of forged packets
    a, b, relay = vu.call_pair(net, ("--delay", "20", "--dup", "1.0", "--seed", "5"))
    port = None
    for line in open(os.path.join(b.dir, "station.conf")):
        if line.strip().lower().startswith("medialisten"):
            port = int(line.split(":")[-1])
    ia = vu.speech(str(tmp_path / "a.wav"), seconds=9, rate=16000)
    pa = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "call", "pyongyang", "--input", ia,
                           "--output", str(tmp_path / "oa.wav"), "--seconds", "8", "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (vu.station_call(b) or {}).get("state") == "ringing_in", T, "ring")
    pb = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "call", "answer", "--input", ia,
                           "--output", str(tmp_path / "ob.wav"), "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (vu.station_call(b) or {}).get("state") == "active", T, "answer")
    rss0 = rss_kb(b.pid)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rng = random.Random(1)
    sent = 0
    t_end = time.monotonic() + 3
    mid = None
    while time.monotonic() < t_end:
        for _ in range(200):
            kind = rng.randrange(3)
            if kind == 0:
                pkt = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 1500)))
            elif kind == 1:   # the right size and type, a forged tag and counter
                pkt = b"\x4d\0\0\0" + os.urandom(124)
            else:             # far ahead in the counter: no key ratchets for it
                pkt = b"\x4d\0\0\0" + os.urandom(4) + struct.pack(">Q", 1 << 39) + os.urandom(112)
            s.sendto(pkt, ("127.0.0.1", port))
            sent += 1
        if mid is None:
            mid = a.send("pyongyang", "sent during the flood", precedence="flash")
        time.sleep(0.005)
    out_a, _ = pa.communicate(timeout=scaled(30))
    out_b, _ = pb.communicate(timeout=scaled(30))
    a.wait_delivered([mid], T)
    res = {"a": json.loads(out_a), "b": json.loads(out_b), "a_in": ia, "b_in": ia,
           "a_out": str(tmp_path / "oa.wav"), "b_out": str(tmp_path / "ob.wav")}
    st = res["b"]["call"]["stats"]
    print(f"flood: {sent} sent, rejected {st['transport']['rejected']}, "
          f"replayed {st['transport']['replayed']}, rss {rss0} -> {rss_kb(b.pid)} kB")
    assert st["transport"]["replayed"] > 300               # every duplicate refused
    assert st["transport"]["rejected"] >= 0.5 * sent + st["transport"]["replayed"]
    assert st["inbound"]["packetsDuplicated"] == 0         # none reached the jitter buffer
    assert rss_kb(b.pid) < rss0 + 20000
    s_ab, _ = vu.direction(res, "a", "b")
    print(f"STOI a->b under the flood: {s_ab:.3f}")
    assert s_ab >= 0.80
    b.assert_alive()


def linked(net):
    b, peer = net.hlpeer_linked()
    calls = []
    orig = peer.handle

    def handle(rtype, body):
        if 0x30 <= rtype <= 0x37:
            calls.append((rtype, bytes(body)))
        orig(rtype, body)
    peer.handle = handle
    return b, peer, calls


def ring(cid, prec=0, pub=None, tag=7, port=0):
    return cid + bytes([prec, 0]) + (pub or os.urandom(32)) + struct.pack(">IH", tag, port)


def message_still_goes(b, peer, text):
    m = peer.compose(text, "the link is fine", precedence=hlpeer.FLASH)
    peer.send_message(m)
    peer.wait(lambda: m.seq in peer.delivered, T, f"receipt for {text!r}")
    assert b.alive()


def test_malformed_signalling_is_ignored(net):
    b, peer, calls = linked(net)
    cid = os.urandom(16)
    bad = [
        (RING, ring(cid)[:40]),                       # short
        (RING, ring(cid, prec=9)),                    # no such precedence
        (RING, ring(cid, pub=bytes(32))),             # an all-zero key
        (RING, ring(cid) + bytes(300)),               # over the cap
        (ANSWER, os.urandom(54)),                     # for no call
        (END, cid + b"\x00"),                         # reason 0
        (END, os.urandom(17)),                        # for no call
        (RINGING, os.urandom(3)),
        (MEDIA, os.urandom(5)),
        (MEDIA, b"\x4d\0\0\0" + os.urandom(124)),    # no call: dropped
        (0x35, b"reserved"),
    ]
    for t, body in bad:
        peer.session.send_record(t, body)
    message_still_goes(b, peer, "after malformed call records")
    assert vu.station_call(b) is None
    assert [c for c in calls if c[0] != END] == []


def test_ring_then_hang_up_mid_exchange(net):
    b, peer, calls = linked(net)
    cid = os.urandom(16)
    peer.session.send_record(RING, ring(cid, prec=3))
    wait_for(lambda: (vu.station_call(b) or {}).get("state") == "ringing_in", T, "ring")
    c = vu.station_call(b)
    assert c["peer"] == "hlpeer" and c["precedence"] == "flash" and c["id"] == cid.hex()
    peer.wait(lambda: any(t == RINGING and body == cid for t, body in calls), T, "RINGING")
    # the caller gives up before anyone answers
    peer.session.send_record(END, cid + bytes([1]))
    wait_for(lambda: vu.station_call(b) is None, T, "the ring gone")
    p = b.cmd("call", "answer", check=False)
    assert p.returncode == 1
    message_still_goes(b, peer, "after a ring that was withdrawn")


def test_ring_flood_is_bounded(net):
    b, peer, calls = linked(net)
    first = os.urandom(16)
    peer.session.send_record(RING, ring(first))
    peer.session.send_records([(RING, ring(os.urandom(16))) for _ in range(500)])
    message_still_goes(b, peer, "after 500 rings")
    peer.poll(0.5)
    c = vu.station_call(b)
    assert c and c["id"] == first.hex(), c          # the first ring holds the line
    busy = [body for t, body in calls if t == END and body[16] == 2]
    print(f"ring flood: {len(busy)} busy answers to 500 rings")
    assert len(busy) <= 10                           # the rest were dropped, not answered
    # the same id again is not a new call
    peer.session.send_record(RING, ring(first))
    peer.poll(0.3)
    assert vu.station_call(b)["id"] == first.hex()
    assert b.alive()


def test_answer_that_breaks_the_key_exchange(net, tmp_path):
    b, peer, calls = linked(net)
    wav = vu.speech(str(tmp_path / "s.wav"), seconds=3, rate=16000)
    p = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "call", "hlpeer", "--timeout", "10", "--json",
                          "--input", wav, "--output", str(tmp_path / "o.wav")],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peer.wait(lambda: any(t == RING for t, _ in calls), T, "RING from the station")
    body = next(b_ for t, b_ in calls if t == RING)
    assert len(body) == 56
    cid = body[:16]
    # a small-order point: X25519 gives all zeros, which libsodium refuses
    peer.session.send_record(ANSWER, cid + b"\x01" + bytes(31) + struct.pack(">IH", 9, 0))
    out, err = p.communicate(timeout=scaled(15))
    end = json.loads(out)["call"]
    assert end["reason"] == "failed", end
    assert p.returncode == 1, err
    peer.wait(lambda: any(t == END and body_[:16] == cid and body_[16] == 6
                          for t, body_ in calls), T, "END failed")
    assert vu.station_call(b) is None
    message_still_goes(b, peer, "after a failed key exchange")
