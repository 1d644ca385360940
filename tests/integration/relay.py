"""relay.py — a small, seeded UDP impairment relay for the voice tests and
benchmarks (this kernel has no netem).

Each --pipe LISTEN=TARGET forwards every datagram that arrives at LISTEN
to TARGET (from the LISTEN socket), after:
  --delay MS        one-way delay
  --jitter MS       plus a uniform random -MS..+MS per packet (so packets
                    may overtake each other when MS exceeds their spacing)
  --loss P          independent random loss, probability P
  --burst B         with --loss: Gilbert–Elliott loss instead, mean loss P,
                    mean burst length B packets (every packet lost in the
                    bad state, none in the good one)
  --dup P           duplicate a packet with probability P (a copy 1 ms later)
  --reorder P       hold a packet back an extra 30 ms with probability P
  --drop-all        lose everything (a path where UDP does not get through)
Every pipe has its own random stream from --seed, so runs repeat.

--log FILE writes one line per datagram: "t_ms pipe size action" (action:
fwd, lost, dup, late) with t_ms the arrival on a monotonic clock; the
tests read packet sizes and spacing from it (the relay's own capture).
It runs until SIGTERM or SIGINT, then prints its counters as one JSON line.

  python3 relay.py --pipe 127.0.0.1:7000=127.0.0.1:7001 --delay 50 --jitter 10 --loss 0.2
"""
import argparse
import heapq
import json
import random
import select
import signal
import socket
import sys
import time


def addr(s):
    host, port = s.rsplit(":", 1)
    return host, int(port)


class Pipe:
    def __init__(self, i, listen, target, args):
        self.i = i
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(addr(listen))
        self.sock.setblocking(False)
        self.target = addr(target)
        self.rng = random.Random(args.seed * 1000 + i)
        self.args = args
        self.bad = False
        p, b = args.loss, max(args.burst, 1.0)
        self.p_bg = 1.0 / b
        self.p_gb = p * self.p_bg / (1.0 - p) if p < 1 else 1.0
        self.counts = {"in": 0, "fwd": 0, "lost": 0, "dup": 0, "late": 0}

    def lost(self):
        a = self.args
        if a.drop_all:
            return True
        if a.burst > 1:
            if self.bad:
                self.bad = self.rng.random() >= self.p_bg
            else:
                self.bad = self.rng.random() < self.p_gb
            return self.bad
        return self.rng.random() < a.loss

    def delay_ms(self):
        a = self.args
        d = a.delay + self.rng.uniform(-a.jitter, a.jitter)
        late = a.reorder > 0 and self.rng.random() < a.reorder
        return max(0.0, d + (30.0 if late else 0.0)), late


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pipe", action="append", required=True, help="LISTEN=TARGET")
    ap.add_argument("--delay", type=float, default=0.0)
    ap.add_argument("--jitter", type=float, default=0.0)
    ap.add_argument("--loss", type=float, default=0.0)
    ap.add_argument("--burst", type=float, default=1.0)
    ap.add_argument("--dup", type=float, default=0.0)
    ap.add_argument("--reorder", type=float, default=0.0)
    ap.add_argument("--drop-all", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--log")
    args = ap.parse_args()
    pipes = []
    for i, spec in enumerate(args.pipe):
        listen, target = spec.split("=")
        pipes.append(Pipe(i, listen, target, args))
    by_fd = {p.sock.fileno(): p for p in pipes}
    log = open(args.log, "w", buffering=1) if args.log else None
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    queue = []   # (due, n, pipe, data)
    n = 0
    print("relay ready", flush=True)
    while not stop:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, p, data = heapq.heappop(queue)
            try:
                p.sock.sendto(data, p.target)
            except OSError:
                pass
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else 0.2
        try:
            ready, _, _ = select.select(list(by_fd), [], [], min(timeout, 0.2))
        except InterruptedError:
            continue
        for fd in ready:
            p = by_fd[fd]
            while True:
                try:
                    data, _ = p.sock.recvfrom(65536)
                except (BlockingIOError, InterruptedError):
                    break
                t = time.monotonic()
                p.counts["in"] += 1
                if p.lost():
                    p.counts["lost"] += 1
                    action = "lost"
                else:
                    d, late = p.delay_ms()
                    n += 1
                    heapq.heappush(queue, (t + d / 1000.0, n, p, data))
                    p.counts["fwd"] += 1
                    action = "late" if late else "fwd"
                    if late:
                        p.counts["late"] += 1
                    if args.dup and p.rng.random() < args.dup:
                        n += 1
                        heapq.heappush(queue, (t + (d + 1.0) / 1000.0, n, p, data))
                        p.counts["dup"] += 1
                        action += "+dup"
                if log:
                    log.write(f"{t * 1000:.3f} {p.i} {len(data)} {action}\n")
    print(json.dumps({f"pipe{p.i}": p.counts for p in pipes}), flush=True)


if __name__ == "__main__":
    sys.exit(main())
