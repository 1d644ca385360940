"""stoi.py — Short-Time Objective Intelligibility (Taal, Hendriks, Heusdens,
Jensen, "An Algorithm for Intelligibility Prediction of Time-Frequency
Weighted Noisy Speech", IEEE TASLP 19(7), 2011), in numpy.

The steps of the paper: both signals at 10 kHz; frames of 256 samples
(Hann window, 50 % overlap) whose clean energy is more than 40 dB under the
loudest are dropped from both; a 512-point STFT; 15 one-third-octave bands
from 150 Hz; segments of 30 frames (384 ms); in each segment each band of
the processed signal is scaled to the clean one's energy and clipped at
-15 dB signal-to-distortion; the score is the mean correlation between
clean and processed band envelopes over bands and segments.

`python3 stoi.py --selftest` checks it against cases whose answers are
known: a signal against itself scores 1, a scaled copy also 1 (STOI is
gain-invariant), speech against unrelated noise near 0, and speech with
noise added scores higher the higher the SNR.
"""
import sys

import numpy as np

FS = 10000
N_FRAME = 256
NFFT = 512
NUMBAND = 15
MINFREQ = 150
N = 30
BETA = -15.0
DYN_RANGE = 40
EPS = np.finfo(np.float64).eps


def _thirdoct():
    f = np.linspace(0, FS, NFFT + 1)[:NFFT // 2 + 1]
    k = np.arange(NUMBAND)
    lo = MINFREQ * 2.0 ** ((2 * k - 1) / 6)
    hi = MINFREQ * 2.0 ** ((2 * k + 1) / 6)
    obm = np.zeros((NUMBAND, len(f)))
    for i in range(NUMBAND):
        a = int(np.argmin((f - lo[i]) ** 2))
        b = int(np.argmin((f - hi[i]) ** 2))
        obm[i, a:b] = 1
    return obm


OBM = _thirdoct()


def _frames(x, n, hop):
    w = np.hanning(n + 2)[1:-1]
    idx = range(0, len(x) - n + 1, hop)
    return np.array([w * x[i:i + n] for i in idx])


def _overlap_add(frames, hop):
    n_frames, n = frames.shape
    out = np.zeros((n_frames - 1) * hop + n)
    for i in range(n_frames):
        out[i * hop:i * hop + n] += frames[i]
    return out


def _remove_silent(x, y):
    hop = N_FRAME // 2
    xf, yf = _frames(x, N_FRAME, hop), _frames(y, N_FRAME, hop)
    e = 20 * np.log10(np.linalg.norm(xf, axis=1) + EPS)
    keep = (np.max(e) - DYN_RANGE - e) < 0
    return _overlap_add(xf[keep], hop), _overlap_add(yf[keep], hop)


def _stft(x):
    w = np.hanning(N_FRAME + 2)[1:-1]
    hop = N_FRAME // 2
    return np.array([np.fft.rfft(w * x[i:i + N_FRAME], n=NFFT)
                     for i in range(0, len(x) - N_FRAME, hop)]).T


def _resample(x, fs):
    if fs == FS:
        return np.asarray(x, dtype=np.float64)
    from math import gcd
    from scipy.signal import resample_poly
    g = gcd(int(fs), FS)
    return resample_poly(np.asarray(x, dtype=np.float64), FS // g, int(fs) // g)


def stoi(clean, processed, fs):
    """STOI of PROCESSED against CLEAN (same length, same rate FS)."""
    n = min(len(clean), len(processed))
    x, y = _resample(clean[:n], fs), _resample(processed[:n], fs)
    x, y = _remove_silent(x, y)
    xt = np.sqrt(OBM @ np.abs(_stft(x)) ** 2)
    yt = np.sqrt(OBM @ np.abs(_stft(y)) ** 2)
    if xt.shape[1] < N:
        raise ValueError("too short for STOI (less than 30 frames of speech)")
    xs = np.array([xt[:, m - N:m] for m in range(N, xt.shape[1] + 1)])
    ys = np.array([yt[:, m - N:m] for m in range(N, yt.shape[1] + 1)])
    norm = np.linalg.norm(xs, axis=2, keepdims=True) / (np.linalg.norm(ys, axis=2, keepdims=True) + EPS)
    yp = np.minimum(ys * norm, xs * (1 + 10 ** (-BETA / 20)))
    yp = yp - yp.mean(axis=2, keepdims=True)
    xs = xs - xs.mean(axis=2, keepdims=True)
    yp /= np.linalg.norm(yp, axis=2, keepdims=True) + EPS
    xs /= np.linalg.norm(xs, axis=2, keepdims=True) + EPS
    return float(np.sum(yp * xs) / (xs.shape[0] * xs.shape[1]))


def align(ref, out, rate, max_lag_s=1.0, chunk_s=2.0, local_s=0.06):
    """OUT shifted to line up with REF: first as a whole (cross-correlation
    up to MAX_LAG_S), then chunk by chunk within LOCAL_S (a jitter buffer
    moves its playout point a frame at a time).  Returns (aligned, lags in
    seconds per chunk)."""
    from scipy.signal import correlate

    def best(a, b, lo, hi):
        # lag L in [lo, hi) maximising sum a[t] * b[t + L]
        c = correlate(b, a, mode="full", method="fft")
        mid = len(a) - 1
        lo_i, hi_i = max(0, mid + lo), min(len(c), mid + hi)
        return int(np.argmax(c[lo_i:hi_i])) + lo_i - mid

    ref = np.asarray(ref, dtype=np.float64)
    out = np.asarray(out, dtype=np.float64)
    g = best(ref, out, 0, int(max_lag_s * rate))
    aligned = np.zeros(len(ref))
    lags = []
    step = int(chunk_s * rate)
    loc = int(local_s * rate)
    for s in range(0, len(ref), step):
        a = ref[s:s + step]
        lo = s + g - loc
        seg = out[max(0, lo):s + g + len(a) + loc]
        if lo < 0:
            seg = np.concatenate([np.zeros(-lo), seg])
        if len(seg) < len(a) + 2 * loc:
            seg = np.concatenate([seg, np.zeros(len(a) + 2 * loc - len(seg))])
        if np.any(a) and np.any(seg):
            l = best(a, seg, 0, 2 * loc + 1)
        else:
            l = loc
        aligned[s:s + len(a)] = seg[l:l + len(a)]
        lags.append((g + l - loc) / rate)
    return aligned, lags


def _selftest():
    rng = np.random.default_rng(1)
    # speech-like: noise bursts with a syllable rhythm, band-shaped
    t = np.arange(3 * FS) / FS
    env = (np.sin(2 * np.pi * 4 * t) > 0).astype(float)
    from scipy.signal import lfilter
    x = lfilter([1], [1, -0.9], rng.standard_normal(len(t))) * env
    assert abs(stoi(x, x, FS) - 1.0) < 1e-6, stoi(x, x, FS)
    assert abs(stoi(x, 0.3 * x, FS) - 1.0) < 1e-6
    noise = rng.standard_normal(len(x))
    s_noise = stoi(x, noise, FS)
    # unrelated: near 0 (the -15 dB clip, bounded by the clean envelope,
    # leaves a small positive bias)
    assert s_noise < 0.35, s_noise
    scores = []
    for snr in (-10, 0, 10, 20):
        n = noise * np.sqrt(np.mean(x ** 2) / np.mean(noise ** 2)) * 10 ** (-snr / 20)
        scores.append(stoi(x, x + n, FS))
    assert all(a < b for a, b in zip(scores, scores[1:])), scores
    return scores


def _wav(path):
    import wave
    with wave.open(path, "rb") as w:
        d = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64)
        if w.getnchannels() > 1:
            d = d.reshape(-1, w.getnchannels()).mean(axis=1)
        return d, w.getframerate()


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        print("stoi selftest ok, speech+noise at -10/0/10/20 dB:",
              " ".join(f"{s:.3f}" for s in _selftest()))
    elif len(sys.argv) == 3:
        # the processed file lines up with the clean one first (align())
        (x, fx), (y, fy) = _wav(sys.argv[1]), _wav(sys.argv[2])
        if fy != fx:
            from math import gcd
            from scipy.signal import resample_poly
            g = gcd(fx, fy)
            y = resample_poly(y, fx // g, fy // g)
        y, lags = align(x, y, fx)
        print(f"{stoi(x, y, fx):.4f} lag {np.median(lags) * 1000:.1f} ms")
    else:
        print("usage: stoi.py CLEAN.wav PROCESSED.wav | --selftest", file=sys.stderr)
        sys.exit(2)
