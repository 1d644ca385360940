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
import sys
import subprocess
import time
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


# ------------------------------------------------------------------ calls

RELAY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "relay.py")


class Relay:
    """relay.py between two stations' media: A sends to self.to_b, B to
    self.to_a; started with the impairment ARGS."""

    def __init__(self, net, a_port, b_port, args=(), name="relay"):
        from station import free_port
        self.to_b, self.to_a = free_port(), free_port()
        self.log = os.path.join(net.root, f"{name}.log")
        self.proc = subprocess.Popen(
            [sys.executable, RELAY, "--pipe", f"127.0.0.1:{self.to_b}=127.0.0.1:{b_port}",
             "--pipe", f"127.0.0.1:{self.to_a}=127.0.0.1:{a_port}", "--log", self.log,
             *[str(x) for x in args]], stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "relay ready"
        net.on_teardown(self.stop)
        self.counts = None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            out, _ = self.proc.communicate(timeout=10)
            import json
            lines = out.strip().splitlines()
            self.counts = json.loads(lines[-1]) if lines else None
        return self.counts

    def packets(self, pipe):
        """(arrival ms, size) of every datagram into PIPE (0: A->B, 1: B->A)."""
        out = []
        for line in open(self.log):
            t, p, size, _ = line.split()
            if int(p) == pipe:
                out.append((float(t), int(size)))
        return out


def call_pair(net, relay_args=(), **options):
    """Stations washington (A) and pyongyang (B) whose media go through a
    Relay with RELAY_ARGS; returns (a, b, relay) with both daemons up."""
    from station import free_port
    a, b, _ = net.pair(start=False, **options)
    pa, pb = free_port(), free_port()
    a.set_option("MediaListen", f"127.0.0.1:{pa}")
    b.set_option("MediaListen", f"127.0.0.1:{pb}")
    relay = Relay(net, pa, pb, relay_args)
    a.set_peer_option("pyongyang", "MediaAddress", f"127.0.0.1:{relay.to_b}")
    b.set_peer_option("washington", "MediaAddress", f"127.0.0.1:{relay.to_a}")
    a.start()
    b.start()
    a.wait_connected("pyongyang")
    b.wait_connected("washington")
    return a, b, relay


def station_call(st):
    return st.status()["station"].get("call")


def talk(a, b, tmp, seconds=8, prec=None, a_input=None, b_input=None, timeout=60):
    """A calls B, B answers; each talks from its own espeak-ng speech for
    SECONDS, then A hangs up.  Returns a dict with the inputs (16 kHz
    numpy), outputs, and both sides' --json summaries."""
    import json
    from station import HOTLINE_BIN, scaled, wait_for
    ia = a_input or speech(os.path.join(tmp, "a_in.wav"), seconds=seconds + 1, rate=16000, seed=0)
    ib = b_input or speech(os.path.join(tmp, "b_in.wav"), seconds=seconds + 1, rate=16000, seed=3)
    oa, ob = os.path.join(tmp, "a_out.wav"), os.path.join(tmp, "b_out.wav")
    for f in (oa, ob):
        if os.path.exists(f):
            os.unlink(f)
    args = [HOTLINE_BIN, "-d", a.dir, "call", b.name, "--input", ia, "--output", oa,
            "--seconds", str(seconds), "--json"]
    if prec:
        args += ["-p", prec]
    pa = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (station_call(b) or {}).get("state") == "ringing_in", scaled(10),
             f"{b.name} ringing")
    pb = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "call", "answer", "--input", ib,
                           "--output", ob, "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    out_a, err_a = pa.communicate(timeout=scaled(timeout))
    out_b, err_b = pb.communicate(timeout=scaled(timeout))
    assert pa.returncode == 0, err_a
    assert pb.returncode == 0, err_b
    return {"a": json.loads(out_a), "b": json.loads(out_b), "a_in": ia, "b_in": ib,
            "a_out": oa, "b_out": ob, "err_a": err_a, "err_b": err_b}


def direction(res, src, dst):
    """STOI, mouth-to-ear delays (one per second of speech) for the audio
    SRC said and DST heard."""
    import stoi as stoi_mod
    x, rx = read_wav(res[f"{src}_in"])
    y, ry = read_wav(res[f"{dst}_out"])
    assert rx == ry == 16000
    sent = res[src]["frames_sent"] * 320
    x = x[:sent]
    aligned, lags = stoi_mod.align(x, y, rx, max_lag_s=1.0, chunk_s=1.0, local_s=0.1)
    # lag in DST's output timeline, plus how much later DST's output began
    offset = res[dst]["output_start"] - res[src]["input_start"]
    m2e = [(l + offset) * 1000 for l in lags]
    return stoi_mod.stoi(x, aligned, rx), m2e


def cadence(relay, pipe, capture=None):
    """Payload sizes and gaps (ms) of the packets a station sent into the
    relay's PIPE (0: A's, 1: B's): from the capture when there is one,
    else from the relay's own log."""
    pk = None
    if capture is not None:
        got = capture.packets()
        if got is not None:
            pk = got.get(relay.to_b if pipe == 0 else relay.to_a, [])
    if pk is None:
        pk = relay.packets(pipe)
    sizes = {s for _, s in pk}
    gaps = np.diff([t for t, _ in pk])
    return sizes, gaps


class Capture:
    """tcpdump on the loopback, of the UDP datagrams sent to PORTS (kernel
    timestamps: the cadence as the wire shows it).  None of it when tcpdump
    is not installed or cannot capture here (then the relay's log is the
    capture)."""

    def __init__(self, net, ports):
        self.path = os.path.join(net.root, "media.pcap")
        self.proc = None
        tcpdump = shutil.which("tcpdump") or ("/usr/sbin/tcpdump" if os.path.exists("/usr/sbin/tcpdump") else None)
        if not tcpdump:
            return
        expr = " or ".join(f"dst port {p}" for p in ports)
        self.proc = subprocess.Popen([tcpdump, "-i", "lo", "-n", "-U", "-w", self.path,
                                      f"udp and ({expr})"], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE)
        # it says "listening on lo" once it captures
        import select
        r, _, _ = select.select([self.proc.stderr], [], [], 5)
        if not r or b"listening" not in self.proc.stderr.readline():
            self.proc.kill()
            self.proc = None
        net.on_teardown(self.stop)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            time.sleep(0.2)
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def packets(self):
        """{destination port: [(time ms, UDP payload size)]}."""
        self.stop()
        out = {}
        if not self.proc or not os.path.exists(self.path):
            return None
        data = open(self.path, "rb").read()
        magic = struct.unpack_from("<I", data, 0)[0]
        scale = 1e-3 if magic == 0xa1b2c3d4 else 1e-6   # usec or nsec stamps
        link = struct.unpack_from("<I", data, 20)[0]
        l2 = 14 if link == 1 else 16 if link == 113 else 4 if link == 0 else 14
        off = 24
        while off + 16 <= len(data):
            sec, frac, incl, _ = struct.unpack_from("<IIII", data, off)
            pkt = data[off + 16:off + 16 + incl]
            off += 16 + incl
            ip = pkt[l2:]
            if len(ip) < 28 or ip[0] >> 4 != 4:
                continue
            ihl = (ip[0] & 15) * 4
            dport, ulen = struct.unpack_from(">HH", ip, ihl + 2)
            out.setdefault(dport, []).append((sec * 1000 + frac * scale, ulen - 8))
        return out
