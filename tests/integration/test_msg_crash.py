"""No loss, no duplicate, order kept, under crashes (a message whose id
`send` printed survives any crash, and is delivered exactly once, in
order).

Two stations; washington dials pyongyang through a TCP proxy (so the test can
cut the link), pyongyang does not dial back, so every byte passes the proxy.
For about 100 seconds the test queues messages of mixed precedence at both
stations (`send --lines`, which works whether or not the daemon runs, and a
few `send -a` with attachments) while, at random moments, it kills either
daemon with SIGKILL (restarting it at once or after a short pause) or cuts
every connection at the proxy.  Then it lets the link settle and checks:
  * every message is in the receiver's inbox exactly once, with its
    subject, body, precedence and attachments (SHA-256) intact;
  * every message is `delivered` in the sender's outbox;
  * within each precedence, inbox order (received_at, then inbox order) is
    the order sent.
The random seed is printed, so a failure can be replayed with
HOTLINE_CRASH_SEED.
"""
import collections
import os
import random
import time

import pytest

import hlpeer
from station import scaled, rfc3339_ms

PRECS = ["routine", "priority", "immediate", "flash"]


@pytest.mark.slow
def test_no_loss_no_duplicate_in_order_under_kills_and_cuts(net, tmp_path):
    seed = int(os.environ.get("HOTLINE_CRASH_SEED") or int.from_bytes(os.urandom(4), "big"))
    print(f"HOTLINE_CRASH_SEED={seed}")
    rng = random.Random(seed)
    # a slow line (48 KiB/s toward pyongyang), so that a backlog builds and
    # traffic is in flight during many of the kills and cuts
    a, b, proxy = net.pair(via_proxy=True, rate=48 << 10, Keepalive="1s", KeepaliveTimeout="3s")
    stations = {"washington": a, "pyongyang": b}
    # sent[sender] = [(id, precedence, subject, body, {name: bytes})] in queue order
    sent = {"washington": [], "pyongyang": []}
    files = tmp_path / "files"
    files.mkdir()

    def queue_lines(src, dst, n, tag):
        prec = rng.choice(PRECS)
        lines = [f"{tag}.{i} {prec} {rng.getrandbits(64):016x} " + "w" * rng.randrange(200)
                 for i in range(n)]
        ids = src.send_lines(dst, lines, precedence=prec)
        sent[src.name] += [(i, prec, "", body, {}) for i, body in zip(ids, lines)]

    def queue_attachment(tag):
        prec = rng.choice(PRECS)
        name = f"doc-{tag}.bin"
        data = os.urandom(rng.randrange(1, 200 << 10))
        path = files / name
        path.write_bytes(data)
        mid = a.send("pyongyang", f"attachment {tag}", subject=f"doc {tag}", precedence=prec,
                      attach=[str(path)])
        sent["washington"].append((mid, prec, f"doc {tag}", f"attachment {tag}", {name: data}))

    kills = {"washington": 0, "pyongyang": 0}
    cuts = 0
    in_flight = 0        # kills and cuts while bytes were moving toward pyongyang

    def pause_noting_traffic(seconds):
        before = proxy.down
        time.sleep(seconds)
        return proxy.down != before
    n_a = 0
    deadline = time.monotonic() + scaled(100)
    step = 0
    while time.monotonic() < deadline or n_a < 2000 or sum(kills.values()) < 24:
        assert time.monotonic() < deadline + scaled(60), "could not reach 2000 messages and 24 kills"
        step += 1
        if n_a < 2000:
            k = min(2000 - n_a, rng.randrange(20, 90))
            queue_lines(a, "pyongyang", k, f"a{step}")
            n_a += k
        if rng.random() < 0.15:
            queue_lines(b, "washington", rng.randrange(1, 12), f"b{step}")
        if rng.random() < 0.08:
            queue_attachment(step)
        action = rng.random()
        if action < 0.60:
            victim = stations[rng.choice(list(stations))]
            in_flight += pause_noting_traffic(rng.uniform(0.05, 0.8))
            victim.kill9()
            kills[victim.name] += 1
            time.sleep(rng.choice([0, 0, 0.1, 0.5, 1.5]))
            victim.start()
        elif action < 0.85:
            in_flight += pause_noting_traffic(rng.uniform(0.05, 0.8))
            proxy.drop_all()
            cuts += 1
        time.sleep(rng.uniform(0.05, 0.6))

    pending = sum(1 for s in a.outbox_states().values() if s != "delivered")
    print(f"kills {kills}, cuts {cuts}, messages a->b {len(sent['washington'])}, "
          f"b->a {len(sent['pyongyang'])}; {in_flight} kills/cuts with traffic in flight; "
          f"{pending} a->b not yet delivered when the chaos ended")
    assert sum(kills.values()) >= 20 and min(kills.values()) >= 3, kills
    assert in_flight >= 10, f"only {in_flight} kills/cuts came while traffic was in flight"

    # settle: every message delivered both ways
    a.wait_delivered([m[0] for m in sent["washington"]], scaled(120))
    b.wait_delivered([m[0] for m in sent["pyongyang"]], scaled(60))

    for src, dst in ((a, b), (b, a)):
        msgs = sent[src.name]
        want = {m[0]: m for m in msgs}
        inbox = dst.inbox()
        counts = collections.Counter(m["id"] for m in inbox)
        dups = {i: c for i, c in counts.items() if c > 1}
        assert not dups, f"{dst.name}: duplicates in the inbox: {list(dups.items())[:5]}"
        missing = set(want) - set(counts)
        assert not missing, f"{dst.name}: {len(missing)} messages lost, e.g. {sorted(missing)[:3]}"
        extra = set(counts) - set(want)
        assert not extra, f"{dst.name}: messages nobody sent: {sorted(extra)[:3]}"
        for m in inbox:
            mid, prec, subject, body, atts = want[m["id"]]
            assert (m["precedence"], m["subject"], m["body"]) == (prec, subject, body), \
                f"{mid}: content differs"
            assert m["peer"] == src.name
            got = [(x["name"], x["size"], x["hash"]) for x in m["attachments"]]
            assert got == [(n, len(d), hlpeer.doc_hash(d).hex()) for n, d in atts.items()], \
                f"{mid}: attachments differ"
        # order within each precedence: the order sent
        for prec in PRECS:
            got = [m["id"] for m in inbox if m["precedence"] == prec]
            exp = [m[0] for m in msgs if m[1] == prec]
            if got != exp:
                first = next(i for i, (x, y) in enumerate(zip(got, exp)) if x != y)
                raise AssertionError(f"{dst.name}: {prec} messages out of order from position "
                                     f"{first}: got {got[first:first + 3]}, sent {exp[first:first + 3]}")
            times = [rfc3339_ms(m["received_at"]) for m in inbox if m["precedence"] == prec]
            assert times == sorted(times), f"{dst.name}: {prec} received_at goes backwards"
        states = src.outbox_states()
        assert set(states) == set(want), f"{src.name}: outbox ids differ from what was sent"
        bad = {i: s for i, s in states.items() if s != "delivered"}
        assert not bad, f"{src.name}: not delivered: {list(bad.items())[:5]}"
