"""The voice tests' own tools, checked before anything relies on them:
STOI (stoi.py) against the cases whose answers are known, the impairment
relay (relay.py) delivering the delay, jitter, loss, bursts and duplicates
it is asked for, and the call codec path (bench_voice_codec) reaching
STOI's targets on its own, with no network in between.
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import stoi
import voiceutil as vu
from station import free_port, scaled, HOTLINE_BIN
HERE = os.path.dirname(os.path.abspath(__file__))


def test_stoi_known_cases():
    scores = stoi._selftest()
    assert scores[0] < 0.6 and scores[-1] > 0.95, scores


def test_stoi_of_speech_and_its_degradations(tmp_path):
    wav = vu.speech(str(tmp_path / "s.wav"), seconds=8, rate=16000)
    x, r = vu.read_wav(wav)
    assert stoi.stoi(x, x, r) == pytest.approx(1.0, abs=1e-6)
    rng = np.random.default_rng(3)
    noisy = x + rng.standard_normal(len(x)) * np.sqrt(np.mean(x ** 2))   # 0 dB SNR
    s0 = stoi.stoi(x, noisy, r)
    assert 0.55 < s0 < 0.9, s0          # the paper's range for 0 dB white noise
    # a 40 ms shift ruins it unless aligned first; align() undoes it
    shifted = np.concatenate([np.zeros(640), x])[:len(x)]
    assert stoi.stoi(x, shifted, r) < 0.8
    al, lags = stoi.align(x, shifted, r)
    assert np.median(lags) == pytest.approx(0.040, abs=0.001)
    assert stoi.stoi(x, al, r) > 0.99


def run_relay(tmp_path, *args):
    a_port, b_port = free_port(), free_port()
    log = str(tmp_path / "relay.log")
    p = subprocess.Popen([sys.executable, os.path.join(HERE, "relay.py"), "--pipe",
                          f"127.0.0.1:{a_port}=127.0.0.1:{b_port}", "--log", log, *args],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "relay ready"
    return p, a_port, b_port, log


def send_through(a_port, b_port, n, spacing=0.005):
    """N datagrams through the relay; (index, one-way delay) of each that
    came out, received as they come (a thread) so no socket buffer fills."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", b_port))
    rx.settimeout(0.5)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sent, got = {}, []

    def receive():
        while True:
            try:
                d = rx.recv(100)
            except socket.timeout:
                return
            i = int.from_bytes(d[:4], "big")
            got.append((i, time.monotonic() - sent[i]))
    t = threading.Thread(target=receive)
    for i in range(n):
        sent[i] = time.monotonic()
        tx.sendto(i.to_bytes(4, "big") + bytes(60), ("127.0.0.1", a_port))
        if i == 0:
            t.start()
        time.sleep(spacing)
    t.join()
    return got


def stop(p):
    p.terminate()
    out, _ = p.communicate(timeout=10)
    return json.loads(out.strip().splitlines()[-1])["pipe0"]


def test_relay_delay_jitter_loss(tmp_path):
    p, a, b, log = run_relay(tmp_path, "--delay", "50", "--jitter", "10", "--loss", "0.2",
                             "--seed", "7")
    got = send_through(a, b, 1000)
    c = stop(p)
    ids = [i for i, _ in got]
    delays = np.array([d for _, d in got]) * 1000
    assert c["in"] == 1000 and c["fwd"] + c["lost"] == 1000
    assert 0.16 < c["lost"] / 1000 < 0.24, c
    assert len(set(ids)) == len(ids) == c["fwd"]
    assert 38 < delays.min() and np.percentile(delays, 50) == pytest.approx(50, abs=5)
    assert np.percentile(delays, 95) < 60 + scaled(10)   # +10 ms jitter, and a loaded machine
    lines = open(log).read().split("\n")
    assert sum(1 for l in lines if l.endswith(" lost")) == c["lost"]
    # the same seed, the same losses
    p2, a2, b2, _ = run_relay(tmp_path, "--delay", "50", "--jitter", "10", "--loss", "0.2",
                              "--seed", "7")
    got2 = send_through(a2, b2, 1000)
    stop(p2)
    assert sorted(i for i, _ in got2) == sorted(ids)


def test_relay_bursts_and_duplicates(tmp_path):
    p, a, b, log = run_relay(tmp_path, "--loss", "0.1", "--burst", "4", "--dup", "0.05",
                             "--seed", "3")
    got = send_through(a, b, 2000, spacing=0.002)
    c = stop(p)
    assert 0.06 < c["lost"] / 2000 < 0.14, c
    lost = [l.split()[3] == "lost" for l in open(log) if l.strip()]
    runs, k = [], 0
    for x in lost + [False]:
        if x:
            k += 1
        elif k:
            runs.append(k)
            k = 0
    assert 2.5 < np.mean(runs) < 6, np.mean(runs)       # mean burst about 4
    ids = [i for i, _ in got]
    assert len(ids) - len(set(ids)) == c["dup"] > 40


def test_codec_path_reaches_stoi_targets(tmp_path):
    tool = os.path.join(os.path.dirname(HOTLINE_BIN), "bench", "bench_voice_codec")
    if not os.access(tool, os.X_OK):
        pytest.skip(f"{tool} not built")
    wav = vu.speech(str(tmp_path / "s.wav"), seconds=20, rate=16000)
    x, r = vu.read_wav(wav)
    for loss, burst, want in ((0.2, 1, 0.90), (0.1, 4, 0.85)):
        out = str(tmp_path / f"o{loss}.wav")
        info = json.loads(subprocess.run([tool, wav, out, str(loss), str(burst)], check=True,
                                         capture_output=True, text=True).stdout)
        y, _ = vu.read_wav(out)
        al, _ = stoi.align(x, y, r)
        s = stoi.stoi(x, al, r)
        print(f"codec STOI at {loss:.0%} loss, bursts of {burst}: {s:.3f} {info}")
        assert s >= want, (loss, burst, s)
        if burst == 1:
            assert info["fec"] > 0.5 * info["lost"]     # FEC rebuilt most single losses
