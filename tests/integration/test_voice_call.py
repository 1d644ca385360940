"""Live calls between two real stations (docs/voice.md): ringing, answer,
hang-up, what the operators see (watch, status, AlarmCommand), the media
through the impairment relay (relay.py: 50 ms +- 10 ms, loss), the packet
sizes and cadence on the wire, the fallback to the link when UDP does not
get through, busy and MLPP preemption with a third station, and a call that
is never answered.  Hostile peers are in test_voice_hostile.py.

Speech is espeak-ng's; intelligibility is STOI (stoi.py), delay the
cross-correlation of what one side said with what the other heard.  The
bounds here are looser than `make bench`'s targets (which bench.sh checks
with longer speech): these tests are to catch breakage on a loaded machine.
"""
import json
import re
import os
import subprocess
import time

import numpy as np
import pytest

import voiceutil as vu
from station import scaled, wait_for, HOTLINE_BIN, free_port

NET = ("--delay", "50", "--jitter", "10", "--seed", "11")


def test_call_through_relay(net, tmp_path):
    alarm_log = tmp_path / "alarms.txt"
    script = tmp_path / "alarm.sh"
    script.write_text("#!/bin/sh\necho \"$HOTLINE_ALARM $HOTLINE_PEER $HOTLINE_DETAIL"
                      f" call=$HOTLINE_CALL_ID check=${{HOTLINE_CHECK_ID-unset}}\" >> {alarm_log}\n")
    script.chmod(0o755)
    a, b, relay = vu.call_pair(net, NET, AlarmCommand=str(script))
    cap = vu.Capture(net, (relay.to_a, relay.to_b))
    watch = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "watch", "--json"], stdout=subprocess.PIPE,
                             text=True)
    net.on_teardown(watch.kill)
    time.sleep(0.3)
    res = vu.talk(a, b, str(tmp_path), seconds=8, prec="immediate")
    watch.kill()
    events = [json.loads(l) for l in watch.stdout.read().splitlines() if l.strip()]
    kinds = [e.get("event") for e in events]
    assert "call_ring" in kinds and "call_answered" in kinds and "call_ended" in kinds, kinds
    ring = next(e for e in events if e.get("alarm") == "ring")
    assert ring["peer"] == "washington" and "immediate call" in ring["detail"]
    wait_for(lambda: alarm_log.exists() and "ring washington immediate call" in alarm_log.read_text(),
             scaled(5), "AlarmCommand run for the ring")
    # the ring names its call, and no line check's variables
    assert re.search(r" call=[0-9a-f]{32} check=unset$", alarm_log.read_text().splitlines()[0])

    end_a, end_b = res["a"]["call"], res["b"]["call"]
    assert end_a["reason"] == end_b["reason"] == "hangup"
    assert end_a["by"] == "us" and end_b["by"] == "peer"
    assert end_a["id"] == end_b["id"]
    assert end_a["precedence"] == "immediate"
    for end in (end_a, end_b):
        st = end["stats"]
        assert st["transport"]["path"] == "udp" and st["transport"]["tcpSent"] == 0
        assert st["inbound"]["packetsReceived"] > 350
        assert st["outbound"]["packetsSent"] == st["transport"]["udpSent"]
        assert end["first_audio_ms"] <= scaled(300), end["first_audio_ms"]
    for src, dst in (("a", "b"), ("b", "a")):
        s, m2e = vu.direction(res, src, dst)
        p95 = float(np.percentile(m2e, 95))
        print(f"{src}->{dst}: STOI {s:.3f}, mouth-to-ear p50 {np.median(m2e):.0f} ms p95 {p95:.0f} ms")
        # make bench checks the targets (STOI, p95 <= 150 ms); here, on a
        # machine other jobs share, that nothing is broken
        assert s >= 0.80, s
        assert 50 <= np.median(m2e) and p95 <= scaled(250), m2e

    # on the wire: one payload size, one packet every 20 ms, both ways
    # (kernel timestamps from tcpdump when it runs here; the relay's own log
    # otherwise, whose Python timestamps are looser)
    precise = cap.proc is not None
    for pipe in (0, 1):
        sizes, gaps = vu.cadence(relay, pipe, cap)
        assert sizes == {128}, sizes
        med = float(np.median(gaps))
        within = float(np.mean(np.abs(gaps - 20) <= 2))
        print(f"pipe {pipe}: gap median {med:.2f} ms, within 20+-2 ms {within:.1%}")
        assert abs(med - 20) <= 0.5
        assert within >= (0.4 if vu_sanitize() else 0.9 if precise else 0.6), within


def vu_sanitize():
    from station import SANITIZE
    return SANITIZE


def test_call_status_and_hangup_from_another_command(net, tmp_path):
    a, b, relay = vu.call_pair(net, NET)
    ia = vu.speech(str(tmp_path / "a.wav"), seconds=20, rate=16000)
    pa = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "call", "pyongyang", "--input", ia,
                           "--output", str(tmp_path / "oa.wav"), "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (vu.station_call(b) or {}).get("state") == "ringing_in", scaled(10), "ring")
    assert vu.station_call(a)["state"] == "ringing_out"
    shown = b.cmd("status").stdout
    assert "ringing" in shown and "washington" in shown, shown
    pb = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "call", "answer", "washington", "--input", ia,
                           "--output", str(tmp_path / "ob.wav")],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (vu.station_call(a) or {}).get("state") == "active", scaled(10), "answer")
    time.sleep(1.5)
    c = vu.station_call(b)
    assert c["state"] == "active" and c["path"] == "udp" and c["direction"] == "in"
    assert c["stats"]["inbound"]["packetsReceived"] > 20
    b.cmd("call", "hangup")
    out, err = pa.communicate(timeout=scaled(10))
    pb.communicate(timeout=scaled(10))
    assert pa.returncode == 0, err
    end = json.loads(out)["call"]
    assert end["reason"] == "hangup" and end["by"] == "peer"
    assert vu.station_call(a) is None and vu.station_call(b) is None
    p = b.cmd("call", "hangup", check=False)
    assert p.returncode == 1 and "no call" in p.stderr


@pytest.mark.slow
@pytest.mark.parametrize("loss,burst,want", [(0.2, 1, 0.80), (0.1, 4, 0.75)])
def test_call_with_loss(net, tmp_path, loss, burst, want):
    a, b, relay = vu.call_pair(net, NET + ("--loss", str(loss), "--burst", str(burst)))
    res = vu.talk(a, b, str(tmp_path), seconds=10)
    s, m2e = vu.direction(res, "a", "b")
    st = res["b"]["call"]["stats"]["inbound"]
    print(f"loss {loss} burst {burst}: STOI {s:.3f}, fec {st['fecPacketsReceived']}, "
          f"concealed {st['concealedSamples']}, lost {st['packetsLost']}")
    assert s >= want, s
    assert st["packetsLost"] > 0.5 * loss * st["packetsReceived"]
    if burst == 1:
        assert st["fecPacketsReceived"] > 0.3 * st["packetsLost"]


def test_udp_blocked_falls_back_to_the_link(net, tmp_path):
    a, b, relay = vu.call_pair(net, ("--drop-all",))
    res = vu.talk(a, b, str(tmp_path), seconds=6)
    for src, dst in (("a", "b"), ("b", "a")):
        tr = res[dst]["call"]["stats"]["transport"]
        assert tr["udpReceived"] == 0 and tr["tcpReceived"] > 200, tr
        assert res[src]["call"]["stats"]["transport"]["path"] == "tcp"
        s, _ = vu.direction(res, src, dst)
        print(f"{src}->{dst} over the link: STOI {s:.3f}")
        # the link's share runs on the event loops, which a sanitizer
        # build slows several times: there, only that speech got through
        assert s >= (0.3 if vu_sanitize() else 0.80)


def test_never_answered_ends_at_both(net, tmp_path):
    a, b, relay = vu.call_pair(net, NET)
    t0 = time.monotonic()
    p = a.cmd("call", "pyongyang", "--timeout", "2", "--json", "--output", str(tmp_path / "o.wav"),
              "--input", vu.speech(str(tmp_path / "i.wav"), seconds=3, rate=16000), check=False)
    # a call that did not take place is a failure to a script
    assert p.returncode == 1 and "ended (no_answer" in p.stderr, p.stderr
    assert time.monotonic() - t0 < scaled(8)
    end = json.loads(p.stdout)["call"]
    assert end["reason"] == "no_answer" and end["by"] == "us" and "duration_ms" not in end
    wait_for(lambda: vu.station_call(b) is None, scaled(5), "the ring gone at the callee")
    p = b.cmd("call", "answer", check=False)
    assert p.returncode == 1 and "no call is ringing" in p.stderr


def three(net):
    """washington and kaesong both pinned at pyongyang, all linked."""
    a, b, _ = net.pair(start=False)
    c = net.station("kaesong")
    c.pin(b)
    b.pin(c)
    for s in (a, b, c):
        s.start()
    b.wait_connected("washington")
    b.wait_connected("kaesong")
    return a, b, c


def test_busy_and_flash_preempts(net, tmp_path):
    a, b, c = three(net)
    speech = vu.speech(str(tmp_path / "s.wav"), seconds=30, rate=16000)
    pa = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "call", "pyongyang", "-p", "priority",
                           "--input", speech, "--output", str(tmp_path / "a.wav"), "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (vu.station_call(b) or {}).get("state") == "ringing_in", scaled(10), "ring")
    pb = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "call", "answer", "--input", speech,
                           "--output", str(tmp_path / "b.wav"), "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (vu.station_call(b) or {}).get("state") == "active", scaled(10), "answer")

    # an equal or lower precedence gets "busy" at once, and the call goes on
    p = c.cmd("call", "pyongyang", "-p", "priority", "--json", "--output", str(tmp_path / "c1.wav"),
              "--input", speech, check=False)
    assert json.loads(p.stdout)["call"]["reason"] == "busy"
    assert p.returncode == 1, p.stderr
    assert vu.station_call(b)["peer"] == "washington"

    # FLASH takes the line: washington's call ends "preempted" at both ends
    pc = subprocess.Popen([HOTLINE_BIN, "-d", c.dir, "call", "pyongyang", "-p", "flash",
                           "--timeout", "20", "--json", "--output", str(tmp_path / "c2.wav"),
                           "--input", speech], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True)
    out_a, _ = pa.communicate(timeout=scaled(15))
    out_b, _ = pb.communicate(timeout=scaled(15))
    assert json.loads(out_a)["call"]["reason"] == "preempted"
    assert json.loads(out_a)["call"]["by"] == "peer"
    assert json.loads(out_b)["call"]["reason"] == "preempted"
    assert pa.returncode == 1 and pb.returncode == 1
    wait_for(lambda: (vu.station_call(b) or {}).get("peer") == "kaesong", scaled(10), "flash ring")
    assert vu.station_call(b)["precedence"] == "flash"
    b.cmd("call", "hangup")     # declined while ringing: busy to the caller
    out_c, _ = pc.communicate(timeout=scaled(15))
    assert json.loads(out_c)["call"]["reason"] == "busy"
    assert pc.returncode == 1
    # and washington calling with lower precedence while nothing is on the line works again
    assert vu.station_call(b) is None


def test_ctrl_c_hangs_up(net, tmp_path):
    a, b, relay = vu.call_pair(net, NET)
    ia = vu.speech(str(tmp_path / "a.wav"), seconds=20, rate=16000)
    pa = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "call", "pyongyang", "--input", ia,
                           "--output", str(tmp_path / "oa.wav"), "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (vu.station_call(b) or {}).get("state") == "ringing_in", scaled(10), "ring")
    pb = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "call", "answer", "--input", ia,
                           "--output", str(tmp_path / "ob.wav"), "--json"],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: (vu.station_call(a) or {}).get("state") == "active", scaled(10), "answer")
    time.sleep(1)
    pb.send_signal(2)     # Ctrl-C at the answering end
    out_b, err_b = pb.communicate(timeout=scaled(10))
    out_a, _ = pa.communicate(timeout=scaled(10))
    assert pb.returncode == 0, err_b
    assert json.loads(out_b)["call"]["by"] == "us"
    assert json.loads(out_a)["call"]["reason"] == "hangup"
    assert pa.returncode == 0     # hung up by the peer: the call took place
    assert json.loads(out_a)["call"]["by"] == "peer"


@pytest.mark.slow
def test_cadence_holds_while_messages_flow(net, tmp_path):
    """The media clock runs on its own thread: the daemon's commits (an fsync
    per burst of messages) do not hold a frame back."""
    a, b, relay = vu.call_pair(net, NET)
    cap = vu.Capture(net, (relay.to_a, relay.to_b))
    lines = "".join(f"message {i} during the call\n" for i in range(3000))
    sender = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "send", "pyongyang", "--lines"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    sender.stdin.write(lines)
    sender.stdin.close()
    res = vu.talk(a, b, str(tmp_path), seconds=8)
    assert sender.wait(timeout=scaled(120)) == 0
    precise = cap.proc is not None
    for pipe in (0, 1):
        sizes, gaps = vu.cadence(relay, pipe, cap)
        within = float(np.mean(np.abs(gaps - 20) <= 2))
        print(f"pipe {pipe} with messages flowing: within 20+-2 ms {within:.1%}")
        assert sizes == {128}
        # 0.8, not the quiet call's 0.9: the sender's fsyncs, beside other jobs'
        # I/O, put kernel latency under even a real-time thread (a fresh Debian
        # root at load 16 measured 0.84); a frame held back by a commit would
        # be a gap of tens of ms, and make bench holds the cadence target
        assert within >= (0.4 if vu_sanitize() else 0.8 if precise else 0.6), within
    s, _ = vu.direction(res, "a", "b")
    assert s >= 0.8, s


SCHED_OTHER, SCHED_FIFO, SCHED_RR = 0, 1, 2


def daemon_threads(pid):
    """(name, scheduling policy, real-time priority) of each thread of PID
    (/proc/PID/task/TID/stat fields 40 and 41)."""
    out = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/comm") as f:
            name = f.read().strip()
        with open(f"/proc/{pid}/task/{tid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()   # from field 3 on
        out.append((name, int(fields[41 - 3]), int(fields[40 - 3])))
    return out


def rtprio_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max realtime priority"):
                return tuple(int(x) for x in line.split()[3:5])
    raise AssertionError("no realtime priority in /proc/PID/limits")


@pytest.mark.skipif(os.geteuid() != 0, reason="a daemon started as root gets real-time media")
def test_media_thread_is_real_time_and_nothing_else(net):
    """Started as root, the daemon drops every capability; its media thread
    still gets SCHED_FIFO (a late frame is heard, and a loaded machine makes
    an ordinary thread late): taken before the drop, handed to that one
    thread (daemon/rt.h), and RLIMIT_RTPRIO is 0 after, so nothing else the
    daemon is or runs can take a real-time priority.  (Seen failing on the
    old code: no real-time thread at all, the drop had taken the right.)"""
    a = net.station("washington").start()
    threads = daemon_threads(a.pid)
    rt = [t for t in threads if t[1] in (SCHED_FIFO, SCHED_RR)]
    assert rt == [("hl-media", SCHED_FIFO, 10)], threads
    assert rtprio_limit(a.pid) == (0, 0)
    # capabilities are per thread: the real-time one holds none either
    for tid in os.listdir(f"/proc/{a.pid}/task"):
        with open(f"/proc/{a.pid}/task/{tid}/status") as f:
            st = dict(line.split(":", 1) for line in f if ":" in line)
        for field in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
            assert int(st[field], 16) == 0, (tid, field, st[field])
        assert st["NoNewPrivs"].strip() == "1", tid
    assert a.log_text().count("call media thread: real-time") == 1, a.log_tail()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to start without CAP_SYS_NICE")
def test_media_thread_without_real_time_falls_back(net, tmp_path):
    """Where real-time scheduling is not allowed (here: started without
    CAP_SYS_NICE and CAP_SYS_RESOURCE, RLIMIT_RTPRIO 0) the media thread
    runs at the ordinary priority, says so once, and calls still work."""
    drop = ("setpriv", "--bounding-set", "-sys_resource,-sys_nice", "--")
    a, b, relay = vu.call_pair(net, NET)
    for st in (a, b):
        st.stop()
        st.start(wrapper=drop)
    a.wait_connected("pyongyang")
    threads = daemon_threads(a.pid)
    assert ("hl-media", SCHED_OTHER, 0) in threads, threads
    assert not [t for t in threads if t[1] != SCHED_OTHER], threads
    assert a.log_text().count("call media thread: real-time scheduling not allowed") == 1, \
        a.log_tail()
    res = vu.talk(a, b, str(tmp_path), seconds=3)
    assert res["b"]["call"]["stats"]["inbound"]["packetsReceived"] > 100
