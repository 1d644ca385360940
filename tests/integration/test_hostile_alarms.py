"""AlarmCommand against a hostile peer (docs: daemon/checks.c, ALARMS).

A pinned peer can raise alarms as fast as it can sign: every item that
contradicts one it signed before is an equivocation alarm.  The station must
not start a process per alarm: at most a few AlarmCommand processes run at
once, whatever the cause, and repeats of one cause collapse into one run
(HOTLINE_COUNT says how many it stands for).  And nothing the peer chose may
reach the command's environment: its CLOSE text is in the daemon's log and
`status`, never in HOTLINE_DETAIL.
"""
import time

import hlpeer
from checks_util import alarm_script, alarms, wait_alarm, write_script
from station import scaled, wait_for

ALARM_PROCS_MAX = 3          # daemon/checks.c


def concurrency_script(tmp_path):
    """An AlarmCommand that logs its start and end (with its HOTLINE_*
    variables) and stays alive a while, so that overlapping runs show."""
    return write_script(tmp_path, "alarm-slow",
                        'echo "start $$ $(date +%s%N) $HOTLINE_ALARM $HOTLINE_COUNT" >> OUT\n'
                        "sleep 0.5\n"
                        'echo "end $$ $(date +%s%N)" >> OUT\n')


def runs(log):
    """[(pid, start_ns, end_ns or None, kind, count)] from the script's log."""
    try:
        with open(log) as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out, index = [], {}
    for line in lines:
        w = line.split()
        if w[0] == "start" and len(w) >= 4:
            index[w[1]] = len(out)
            out.append([w[1], int(w[2]), None, w[3], int(w[4]) if len(w) > 4 else 1])
        elif w[0] == "end" and w[1] in index:
            out[index[w[1]]][2] = int(w[2])
    return out


def most_at_once(rs):
    events = []
    for _, start, end, _, _ in rs:
        events.append((start, 1))
        events.append((end if end is not None else float("inf"), -1))
    live = best = 0
    for _, step in sorted(events):
        live += step
        best = max(best, live)
    return best


def test_equivocation_flood_runs_few_alarm_commands(net, tmp_path):
    script, log = concurrency_script(tmp_path)
    b = net.station("pyongyang")
    b.set_option("AlarmCommand", script)
    peer = net.hlpeer_pinned(b)
    b.start()
    net.connect_hlpeer(b, peer)
    # Ten positions the station holds, then 20 other items signed at each:
    # each is proof of equivocation.  The station keeps one piece of
    # evidence per position and at most 8 per peer, each with its alarm
    # (docs/items.md, section 4): 8 alarms of one cause, in one burst.
    held = []
    for i in range(10):
        m = peer.compose(f"the one at seq {i + 1}", "x", precedence=hlpeer.FLASH)
        peer.send_message(m)
        held.append(m)
    peer.wait(lambda: held[-1].seq in peer.acked, scaled(10), "the ACK of seq 10")
    recs = []
    for k in range(1, 11):
        prev = hlpeer.ZERO32 if k == 1 else held[k - 2].hash
        for i in range(20):
            v = peer.compose(f"variant {k}.{i}", "y", seq=k, prev=prev,
                             precedence=hlpeer.FLASH)
            recs.append((hlpeer.T_ITEM, hlpeer.rec_item(v.encoded, v.rest)))
    peer.session.send_records(recs)
    wait_for(lambda: runs(log), scaled(20), "a first AlarmCommand run")
    # Quiet: no run starts for a while, and none is left running.
    deadline = time.monotonic() + scaled(60)
    while True:
        before = runs(log)
        time.sleep(2.0)
        after = runs(log)
        if len(after) == len(before) and all(r[2] is not None for r in after):
            break
        assert time.monotonic() < deadline, f"alarm runs go on: {len(after)}"
    rs = runs(log)
    assert all(r[3] == "equivocation" for r in rs), rs
    assert most_at_once(rs) <= ALARM_PROCS_MAX, \
        f"{most_at_once(rs)} AlarmCommand processes at once ({len(rs)} runs)"
    # One cause: one running, the rest collapsed into one more run.
    assert len(rs) <= 3, f"{len(rs)} runs for one cause"
    assert sum(r[4] for r in rs) >= 2, "the repeats are not counted in HOTLINE_COUNT"
    assert b.alive()


def test_peer_close_text_stays_out_of_the_alarm_environment(net, tmp_path):
    script, out = alarm_script(tmp_path)
    b = net.station("pyongyang")
    b.set_option("AlarmCommand", script)
    peer = net.hlpeer_pinned(b)
    b.set_peer_option("hlpeer", "CheckEvery", "3s")
    b.set_peer_option("hlpeer", "CheckTimeout", "1s")
    b.start()
    net.connect_hlpeer(b, peer)
    evil = b"EVIL $(touch /tmp/pwned) `id` peer-chosen text"
    peer.session.close(reason=1, text=evil)
    peer.session = None
    got = wait_alarm(out, "no_connection", timeout=scaled(30))[0]
    assert "EVIL" not in got["HOTLINE_DETAIL"], got
    assert all("EVIL" not in v for a in alarms(out) for v in a.values())
    assert got["HOTLINE_COUNT"] == "1"
    # The text is not lost: the log and status still say why the link went.
    assert "EVIL" in b.log_text()
    st = b.status()
    assert any("EVIL" in (p.get("last_error") or "") for p in st["peers"]), st
