"""voiceutil.py — speech material and audio measures for the voice tests.

Owns: speech from espeak-ng (converted with sox), WAV reading into numpy,
an ALSA configuration whose device is ALSA's `file` plugin over `null`
(this machine has no sound card: capture reads a raw file, playback writes
one), Ogg Opus durations read independently of hotline (the last page's
granule position, RFC 7845), and the audio measures: cross-correlation
delay and STOI (stoi.py).
"""
import os
import shutil
import struct
import subprocess
import wave

import numpy as np
import pytest

HOTLINE_VOICE = os.environ.get("HOTLINE_VOICE") or os.path.join(
    os.path.dirname(os.environ.get("HOTLINE_BIN") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "..", "build", "hotline")),
    "hotline-voice")

SENTENCES = [
    "This is Washington calling Pyongyang on the direct line.",
    "The exercise scheduled for Monday is cancelled.",
    "Please confirm receipt of the message sent at nine hundred hours.",
    "We propose a meeting of the commission on the fourteenth.",
    "The aircraft reported near the border is a civilian airliner.",
    "Both sides agree to continue the daily line checks.",
]


def need_tools():
    for tool in ("espeak-ng", "sox"):
        if not shutil.which(tool):
            pytest.skip(f"{tool} is not installed (scripts/deps.sh check installs it)")


def speech(path, seconds=None, rate=16000, text=None, seed=0):
    """A mono 16-bit WAV of espeak-ng speech at RATE; with SECONDS, the
    sentences repeated and cut to exactly that long."""
    need_tools()
    raw = path + ".espeak.wav"
    words = text or " ".join(SENTENCES[seed % len(SENTENCES):] + SENTENCES[:seed % len(SENTENCES)])
    subprocess.run(["espeak-ng", "-s", "150", "-w", raw, words], check=True)
    args = ["sox", raw, "-r", str(rate), "-c", "1", "-b", "16", path]
    if seconds:
        args = ["sox", raw, "-r", str(rate), "-c", "1", "-b", "16", path,
                "repeat", str(int(seconds // 3) + 1), "trim", "0", str(seconds)]
    subprocess.run(args, check=True)
    os.unlink(raw)
    return path


def read_wav(path):
    with wave.open(path, "rb") as w:
        assert w.getsampwidth() == 2, path
        n = w.getnframes()
        data = np.frombuffer(w.readframes(n), dtype="<i2").astype(np.float64)
        ch = w.getnchannels()
        if ch > 1:
            data = data.reshape(-1, ch).mean(axis=1)
        return data, w.getframerate()


def resample(x, rate_in, rate_out):
    from scipy.signal import resample_poly
    from math import gcd
    g = gcd(rate_in, rate_out)
    return resample_poly(x, rate_out // g, rate_in // g)


def alsa_env(root, infile_wav=None, outfile=None, rate=48000):
    """Environment whose ALSA device "hltest" is the file plugin over null:
    capture reads INFILE_WAV's samples (converted to RATE mono raw), playback
    appends to OUTFILE."""
    conf = os.path.join(root, "asound.conf")
    infile = os.path.join(root, "capture.raw")
    if infile_wav:
        subprocess.run(["sox", infile_wav, "-r", str(rate), "-c", "1", "-b", "16",
                        "-e", "signed", "-t", "raw", infile], check=True)
    else:
        open(infile, "wb").close()
    outfile = outfile or os.path.join(root, "playback.raw")
    with open(conf, "w") as f:
        f.write('pcm.hltest {\n  type file\n  slave.pcm "null"\n'
                f'  file "{outfile}"\n  infile "{infile}"\n  format "raw"\n}}\n')
    env = dict(os.environ)
    env["ALSA_CONFIG_PATH"] = "/usr/share/alsa/alsa.conf:" + conf
    env["HOTLINE_SOUND_DEVICE"] = "hltest"
    return env


def ogg_opus_seconds(path):
    """Duration of an Ogg Opus file from its pages alone: the last granule
    position minus the pre-skip, at 48 kHz (RFC 7845 sections 4 and 5.1)."""
    data = open(path, "rb").read()
    assert data[:4] == b"OggS", path
    pre_skip, last, off = None, 0, 0
    while off + 27 <= len(data):
        assert data[off:off + 4] == b"OggS", f"{path}: page at {off}"
        granule = struct.unpack_from("<q", data, off + 6)[0]
        nseg = data[off + 26]
        segs = data[off + 27:off + 27 + nseg]
        body = off + 27 + nseg
        if pre_skip is None and data[body:body + 8] == b"OpusHead":
            pre_skip = struct.unpack_from("<H", data, body + 10)[0]
        if granule >= 0:
            last = granule
        off = body + sum(segs)
    return max(0, last - (pre_skip or 0)) / 48000.0


def xcorr_delay(ref, out, rate, max_lag_s=1.0):
    """The lag (seconds) at which OUT best matches REF, and the normalised
    peak correlation."""
    from scipy.signal import correlate
    n = min(len(out), len(ref) + int(max_lag_s * rate))
    a = ref - ref.mean()
    b = out[:n] - out[:n].mean()
    c = correlate(b, a, mode="full", method="fft")
    mid = len(a) - 1
    lo, hi = mid, mid + int(max_lag_s * rate)
    k = lo + int(np.argmax(c[lo:hi]))
    norm = np.sqrt(np.sum(a * a) * np.sum(b * b)) or 1.0
    return (k - mid) / rate, c[k] / norm
