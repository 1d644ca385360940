"""Voice messages (docs/voice.md section 1): `hotline voice send` from a WAV
file, from the sound device (ALSA's file plugin over null: this machine has
no sound card), from --input at real-time pace, cut by Ctrl-C and by
kill -9; `voice play -o`; how inbox, read and watch show one; and a peer's
voice attachment that is not Ogg Opus.

Each test starts its own pair of daemons; speech comes from espeak-ng.
"""
import glob
import os
import signal
import subprocess
import time

import numpy as np
import pytest

import station
import voiceutil as vu
from station import scaled, wait_for, HOTLINE_BIN

DELIVER = scaled(30)


def only_id(p):
    ids = p.stdout.split()
    assert len(ids) == 1 and len(ids[0]) == 32, f"printed {p.stdout!r} / {p.stderr!r}"
    return ids[0]


def test_voice_send_wav_play_inbox_read(net, tmp_path):
    a, b, _ = net.pair()
    wav = vu.speech(str(tmp_path / "speech.wav"), seconds=6, rate=22050)
    mid = only_id(a.cmd("voice", "send", "pyongyang", "-p", "flash", wav))
    a.wait_delivered([mid], DELIVER)
    b.wait_in_inbox([mid], DELIVER)

    got = {m["id"]: m for m in b.inbox()}[mid]
    assert got["precedence"] == "flash"
    assert got["subject"] == "Voice message"
    assert got["voice"]["state"] == "ready"
    assert abs(got["voice"]["duration_ms"] - 6000) <= 60, got["voice"]
    (att,) = got["attachments"]
    assert att["name"].startswith("voice-") and att["name"].endswith(".opus")
    # CBR 16 kb/s: about 2 KB a second, Ogg framing included
    assert 11000 <= att["size"] <= 13500, att

    listing = b.cmd("inbox").stdout
    assert "[voice 0:06]" in listing, listing
    shown = b.cmd("read", mid).stdout
    assert "Voice:      0:06" in shown and "hotline voice play" in shown, shown
    assert b.read_json(mid)["voice"]["duration_ms"] == got["voice"]["duration_ms"]

    # decoded at the receiver: as long as the input, and the same speech
    out = str(tmp_path / "out.wav")
    b.cmd("voice", "play", mid[:12], "-o", out)
    y, ry = vu.read_wav(out)
    x, rx = vu.read_wav(wav)
    assert ry == 48000
    assert abs(len(y) / ry - len(x) / rx) < 0.03
    x48 = vu.resample(x, rx, ry)
    lag, peak = vu.xcorr_delay(x48, y, ry, max_lag_s=0.1)
    assert peak > 0.8 and lag < 0.02, (lag, peak)
    # -o never overwrites
    p = b.cmd("voice", "play", mid, "-o", out, check=False)
    assert p.returncode == 1 and "exists" in p.stderr.lower(), p.stderr


def test_voice_message_of_60_seconds_is_small(net, tmp_path):
    a, b, _ = net.pair(start=False)
    wav = vu.speech(str(tmp_path / "long.wav"), seconds=60)
    mid = only_id(a.cmd("voice", "send", "pyongyang", wav))
    (m,) = [m for m in a.outbox() if m["id"] == mid]
    size = m["attachments"][0]["size"]
    print(f"VOICE 60 s message: {size} bytes")
    assert size <= 130 * 1000, size
    assert abs(m["voice"]["duration_ms"] - 60000) <= 60


def test_voice_record_from_alsa_device(net, tmp_path):
    a, b, _ = net.pair()
    src = vu.speech(str(tmp_path / "mic.wav"), seconds=5)
    env = vu.alsa_env(str(tmp_path), infile_wav=src)
    t0 = time.monotonic()
    mid = only_id(a.cmd("voice", "send", "pyongyang", "--seconds", "2", env=env))
    took = time.monotonic() - t0
    (m,) = [m for m in a.outbox() if m["id"] == mid]
    assert abs(m["voice"]["duration_ms"] - 2000) <= 60, m["voice"]
    # paced like a sound card, not as fast as the null device goes
    assert took >= 1.9, took
    # the recording under voice/ went once the message was queued
    assert glob.glob(os.path.join(a.dir, "voice", "*.opus")) == []
    b.wait_in_inbox([mid], DELIVER)

    # and played back on the same device: 2 s of 48 kHz mono s16 reach it
    play_out = str(tmp_path / "playback.raw")
    b.cmd("voice", "play", mid, env=env)
    n = os.path.getsize(play_out) // 2
    assert abs(n / 48000 - 2.0) < 0.05, n


def start_recording(a, tmp_path, seconds):
    src = vu.speech(str(tmp_path / "talk.wav"), seconds=seconds)
    proc = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "voice", "send", "pyongyang",
                             "--input", src], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    station.keep_priority(proc.pid)
    # the helper says where it records once it has started
    wait_for(lambda: glob.glob(os.path.join(a.dir, "voice", "*.opus")), scaled(10),
             "the recording file")
    return proc, time.monotonic()


def test_voice_ctrl_c_ends_recording_and_sends(net, tmp_path):
    a, b, _ = net.pair()
    proc, t0 = start_recording(a, tmp_path, 20)
    time.sleep(3)
    os.killpg(proc.pid, signal.SIGINT)     # what a terminal's Ctrl-C does
    out, err = proc.communicate(timeout=scaled(30))
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, err
    mid = out.split()[0]
    (m,) = [m for m in a.outbox() if m["id"] == mid]
    assert elapsed - 1.0 <= m["voice"]["duration_ms"] / 1000 <= elapsed + 0.1, (elapsed, m)


def test_voice_kill9_loses_at_most_a_second(net, tmp_path):
    a, b, _ = net.pair()
    proc, t0 = start_recording(a, tmp_path, 30)
    time.sleep(4)
    os.killpg(proc.pid, signal.SIGKILL)    # the command and its helper
    elapsed = time.monotonic() - t0
    proc.communicate(timeout=scaled(10))
    (left,) = glob.glob(os.path.join(a.dir, "voice", "*.opus"))
    kept = vu.ogg_opus_seconds(left)
    lost = elapsed - kept
    print(f"VOICE kill -9 after {elapsed:.2f} s: kept {kept:.2f} s, lost {lost:.2f} s")
    assert lost <= 1.0, (elapsed, kept)
    # what is left is sent as it is
    mid = only_id(a.cmd("voice", "send", "pyongyang", left))
    b.wait_in_inbox([mid], DELIVER)
    (m,) = [m for m in b.inbox() if m["id"] == mid]
    assert m["voice"]["state"] == "ready"
    assert abs(m["voice"]["duration_ms"] / 1000 - kept) < 0.05


def test_voice_bad_inputs(net, tmp_path):
    a, b, _ = net.pair()
    bad = tmp_path / "notes.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00" + b"\x03\x00" + b"\x00" * 30)
    p = a.cmd("voice", "send", "pyongyang", str(bad), check=False)
    assert p.returncode == 1 and "notes.wav" in p.stderr, p.stderr
    p = a.cmd("voice", "send", "nobody", str(bad), check=False)
    assert p.returncode == 1 and "no peer named 'nobody'" in p.stderr, p.stderr
    fake = tmp_path / "fake.opus"
    fake.write_bytes(b"OggS" + os.urandom(500))
    p = a.cmd("voice", "send", "pyongyang", str(fake), check=False)
    assert p.returncode == 1 and "fake.opus" in p.stderr, p.stderr
    assert a.outbox() == []

    # a peer's "voice message" that is not Ogg Opus: shown as such, not played
    junk = tmp_path / "voice-20260101T000000Z-0000.opus"
    junk.write_bytes(os.urandom(3000))
    mid = a.send("pyongyang", "hello", attach=[str(junk)])
    b.wait_in_inbox([mid], DELIVER)
    assert "[voice (unreadable)]" in b.cmd("inbox").stdout
    p = b.cmd("voice", "play", mid, "-o", str(tmp_path / "x.wav"), check=False)
    assert p.returncode == 1 and "not Ogg Opus" in p.stderr, p.stderr
    assert not (tmp_path / "x.wav").exists()
    # an ordinary message is no voice message
    mid2 = a.send("pyongyang", "plain")
    b.wait_in_inbox([mid2], DELIVER)
    p = b.cmd("voice", "play", mid2, check=False)
    assert p.returncode == 1 and "not a voice message" in p.stderr
    assert "voice" not in {m["id"]: m for m in b.inbox()}[mid2]

    # a voice message whose recording was purged says so, not "unreadable"
    good = vu.speech(str(tmp_path / "s.wav"), seconds=2, rate=16000)
    mid3 = only_id(a.cmd("voice", "send", "pyongyang", good))
    b.wait_in_inbox([mid3], DELIVER)
    assert {m["id"]: m for m in b.inbox()}[mid3]["voice"]["state"] == "ready"
    b.cmd("purge", "--before", "2999-01-01", "--yes")
    shown = b.cmd("inbox").stdout
    assert "[voice (purged)]" in shown, shown
    assert {m["id"]: m for m in b.inbox()}[mid3]["voice"] == {"state": "purged", "duration_ms": None}
    p = b.cmd("voice", "play", mid3, "-o", str(tmp_path / "y.wav"), check=False)
    assert p.returncode == 1 and "was purged" in p.stderr, p.stderr
