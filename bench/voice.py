"""bench/voice.py — the voice benchmarks of `make bench` (scripts/bench.sh,
group "voice"), each printed as "BENCH name value unit" beside its baseline
from the same run:

  voice.m2e_p95 / voice.m2e_p50     mouth-to-ear delay through the relay at
                                    50 ms +- 10 ms, both directions (ms);
                                    baseline voice.net_one_way: the relay's
                                    own delay, the network's share
  voice.stoi_clean, voice.stoi_loss20, voice.stoi_burst10
                                    intelligibility (STOI) with no loss, 20 %
                                    random loss, 10 % Gilbert-Elliott loss in
                                    bursts of 3 on average; baselines
                                    voice.codec_stoi_*: the same codec and
                                    jitter buffer with the same losses and no
                                    network (bench_voice_codec)
  voice.first_audio                 ms from the answer to the first frame heard
  voice.payload_sizes               distinct UDP payload sizes in the call
  voice.gap_within_1ms              share of packet gaps within 20 +- 1 ms
                                    (from a tcpdump capture on the loopback,
                                    else the relay's log), and voice.gap_p99_dev
  voice.cpu_per_end                 CPU of one end (daemon and handset) as % of
                                    a core during the call; baseline
                                    voice.codec_cpu: the codec alone (encode
                                    and decode, bench_voice_codec)
  voice.message_60s                 KB of a 60 s voice message; baseline
                                    voice.wav_60s: the same speech as 16 kHz WAV
  voice.kill9_lost                  seconds lost when a recording is killed -9

Usage: python3 bench/voice.py HOTLINE_BIN WORKDIR  (speech from espeak-ng).
It reuses the integration tests' tools (tests/integration: station.py for
stations, voiceutil, relay.py, stoi.py).
"""
import glob
import json
import os
import resource
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))
os.environ.setdefault("HOTLINE_BIN", os.path.abspath(sys.argv[1]))

import numpy as np          # noqa: E402
import station              # noqa: E402
import stoi                 # noqa: E402
import voiceutil as vu      # noqa: E402

SECONDS = int(os.environ.get("BENCH_VOICE_SECONDS", "20"))
NET = ("--delay", "50", "--jitter", "10")


def bench(name, value, unit):
    print(f"BENCH {name} {value:.6g} {unit}", flush=True)


def say(text):
    print(f"bench: voice: {text}", file=sys.stderr, flush=True)


def cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def one_call(root, args, seed, measure_cpu=False):
    net = station.Net(os.path.join(root, f"call{seed}"))
    os.makedirs(net.root)
    try:
        a, b, relay = vu.call_pair(net, args + ("--seed", str(seed)))
        cap = vu.Capture(net, (relay.to_a, relay.to_b))
        c0 = (cpu_s(a.pid), cpu_s(b.pid), children_cpu())
        t0 = time.monotonic()
        res = vu.talk(a, b, net.root, seconds=SECONDS)
        wall = time.monotonic() - t0
        c1 = (cpu_s(a.pid), cpu_s(b.pid), children_cpu())
        relay.stop()
        out = {"res": res, "relay": relay, "cap": cap}
        if measure_cpu:
            handsets = c1[2] - c0[2]       # both `call` commands (they ran here)
            out["cpu"] = [(c1[i] - c0[i] + handsets / 2) / wall * 100 for i in (0, 1)]
        return out
    finally:
        net.teardown()


def stoi_of(res):
    s1, m1 = vu.direction(res, "a", "b")
    s2, m2 = vu.direction(res, "b", "a")
    return (s1 + s2) / 2, m1 + m2


def codec_baseline(root, wav, loss, burst):
    tool = os.path.join(os.path.dirname(os.environ["HOTLINE_BIN"]), "bench", "bench_voice_codec")
    out = os.path.join(root, f"codec-{loss}-{burst}.wav")
    c0 = children_cpu()
    subprocess.run([tool, wav, out, str(loss), str(burst)], check=True, capture_output=True)
    cpu = children_cpu() - c0
    x, r = vu.read_wav(wav)
    y, _ = vu.read_wav(out)
    al, _ = stoi.align(x, y, r)
    return stoi.stoi(x, al, r), cpu / (len(x) / r) * 100


def voice_message(root):
    net = station.Net(os.path.join(root, "msg"))
    os.makedirs(net.root)
    try:
        a, b, _ = net.pair(start=False)
        wav = vu.speech(os.path.join(net.root, "60s.wav"), seconds=60, rate=16000)
        mid = a.cmd("voice", "send", "pyongyang", wav).stdout.split()[0]
        (m,) = [m for m in a.outbox() if m["id"] == mid]
        bench("voice.message_60s", m["attachments"][0]["size"] / 1000, "KB")
        bench("voice.wav_60s", os.path.getsize(wav) / 1000, "KB")
        # kill -9 in the middle of a recording (the command and its helper)
        talk = vu.speech(os.path.join(net.root, "talk.wav"), seconds=30, rate=16000)
        p = subprocess.Popen([station.HOTLINE_BIN, "-d", a.dir, "voice", "send", "pyongyang",
                              "--input", talk], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True)
        station.wait_for(lambda: glob.glob(os.path.join(a.dir, "voice", "*.opus")), 10,
                         "the recording")
        t0 = time.monotonic()
        time.sleep(5)
        os.killpg(p.pid, signal.SIGKILL)
        elapsed = time.monotonic() - t0
        p.wait()
        (left,) = glob.glob(os.path.join(a.dir, "voice", "*.opus"))
        bench("voice.kill9_lost", max(0.0, elapsed - vu.ogg_opus_seconds(left)), "s")
    finally:
        net.teardown()


def main():
    root = sys.argv[2]
    os.makedirs(root, exist_ok=True)
    say(f"a {SECONDS} s call through the relay at 50 +- 10 ms")
    c = one_call(root, NET, 1, measure_cpu=True)
    res, relay = c["res"], c["relay"]
    s_clean, m2e = stoi_of(res)
    bench("voice.m2e_p50", float(np.median(m2e)), "ms")
    bench("voice.m2e_p95", float(np.percentile(m2e, 95)), "ms")
    bench("voice.net_one_way", 50, "ms")
    bench("voice.stoi_clean", s_clean, "STOI")
    first = max(res["a"]["call"].get("first_audio_ms", 1e9), res["b"]["call"].get("first_audio_ms", 1e9))
    bench("voice.first_audio", first, "ms")
    sizes, gaps = set(), []
    for pipe in (0, 1):
        s, g = vu.cadence(relay, pipe, c["cap"])
        sizes |= s
        gaps += list(g)
    gaps = np.array(gaps)
    # which clock the gaps are read from: the run's progress says it
    say("packet gaps from " + ("the tcpdump capture (the kernel's timestamps of the sends)"
                               if c["cap"].proc is not None else
                               "the relay's log (tcpdump could not capture here)"))
    bench("voice.payload_sizes", len(sizes), "sizes")
    bench("voice.gap_p50", float(np.median(gaps)), "ms")
    bench("voice.gap_within_1ms", float(np.mean(np.abs(gaps - 20) <= 1.0)), "share")
    bench("voice.gap_p99_dev", float(np.percentile(np.abs(gaps - 20), 99)), "ms")
    bench("voice.cpu_per_end", max(c["cpu"]), "%")

    wav = res["a_in"]
    s0, cpu = codec_baseline(root, wav, 0, 1)
    bench("voice.codec_stoi_clean", s0, "STOI")
    bench("voice.codec_cpu", cpu, "%")
    for name, loss, burst in (("loss20", 0.2, 1), ("burst10", 0.1, 3)):
        say(f"a {SECONDS} s call with {loss:.0%} loss (mean burst {burst})")
        r = one_call(root, NET + ("--loss", str(loss), "--burst", str(burst)), 2 + burst)
        s, _ = stoi_of(r["res"])
        bench(f"voice.stoi_{name}", s, "STOI")
        bench(f"voice.codec_stoi_{name}", codec_baseline(root, wav, loss, burst)[0], "STOI")
    say("voice messages: a 60 s message, and kill -9 while recording")
    voice_message(root)


if __name__ == "__main__":
    main()
