"""Operator checks (CheckMode = operator): the station answers at once,
the check waits for a person there (`status`, `watch`), `hotline answer`
answers it; left unanswered, the station records "no person" and the
checking side raises the no_person alarm."""

import json
import subprocess
import time

from checks_util import RESULT, alarm_script, checks, wait_alarm
from station import HOTLINE_BIN, scaled, wait_for


def test_operator_check_answered_by_a_person(daemons):
    a, b, _ = daemons.pair()
    # alpha asks for a person at bravo, and waits.
    proc = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "check", "bravo", "--operator", "--timeout", "20"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pend = wait_for(lambda: b.peer_status("alpha")["check"]["pending_answer"], scaled(10),
                        "bravo to show the check waiting for a person")
        cid = pend[0]["id"]
        assert f"LINE CHECK {cid} waits for a person" in b.cmd("status").stdout
        # The station answered at once; the person's answer is still due.
        row = [c for c in checks(a, "out") if c[0] == cid][0]
        assert row[1] == 1 and RESULT[row[4]] == "pending"
        wait_for(lambda: [c for c in checks(a, "out") if c[0] == cid][0][5] > 0, scaled(5),
                 "the station's answer at alpha")
        out = b.cmd("answer", "--yes").stdout
        assert f"answered check {cid} from alpha" in out
        so, se = proc.communicate(timeout=scaled(20))
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, se
    assert so.startswith("a person at bravo answered in "), so
    row = [c for c in checks(a, "out") if c[0] == cid][0]
    assert RESULT[row[4]] == "ok" and row[6] > 0
    assert b.peer_status("alpha")["check"]["pending_answer"] == []
    inrow = [c for c in checks(b, "in") if c[0] == cid][0]
    assert RESULT[inrow[4]] == "ok" and inrow[5] > 0 and inrow[6] > 0
    # Nothing more waits.
    assert b.cmd("answer").stdout == "no line check waits for an answer\n"
    p = b.cmd("answer", "abcdef12", check=False)
    assert p.returncode == 1


def test_operator_check_left_unanswered(daemons, tmp_path):
    script, out = alarm_script(tmp_path)
    a, b, _ = daemons.pair(start=False)
    a.set_peer_option("bravo", "CheckEvery", "3s")
    a.set_peer_option("bravo", "CheckTimeout", "1500ms")
    a.set_peer_option("bravo", "CheckMode", "operator")
    a.set_option("AlarmCommand", script)
    a.start()
    b.start()
    w = subprocess.Popen([HOTLINE_BIN, "-d", b.dir, "watch", "--json"], stdout=subprocess.PIPE, text=True)
    try:
        got = wait_alarm(out, "no_person", timeout=scaled(20))[0]
        assert got["HOTLINE_CHECK_MODE"] == "operator"
        assert "no person" in got["HOTLINE_DETAIL"]
        cid = got["HOTLINE_CHECK_ID"]
        row = [c for c in checks(a, "out") if c[0] == cid][0]
        assert RESULT[row[4]] == "no_person" and row[5] > 0 and row[6] == 0
        # bravo recorded "the station answered, no person did" as a signed answer.
        wait_for(lambda: RESULT[[c for c in checks(b, "in") if c[0] == cid][0][4]] == "no_person",
                 scaled(10), "bravo's no-person record")
        inrow = [c for c in checks(b, "in") if c[0] == cid][0]
        assert inrow[5] > 0 and inrow[6] == 0 and inrow[7] > 0
        # ...and alpha has that answer too.
        wait_for(lambda: [c for c in checks(a, "out") if c[0] == cid][0][7] > 0, scaled(10),
                 "the no-person answer at alpha")
        # bravo's watchers saw the check wait for a person.
        seen = []
        deadline = time.monotonic() + scaled(10)
        while time.monotonic() < deadline:
            ev = json.loads(w.stdout.readline())
            seen.append(ev)
            if ev.get("event") == "check_in" and ev.get("waiting_for_person"):
                break
        assert any(e.get("event") == "check_in" and e.get("waiting_for_person") for e in seen)
    finally:
        w.terminate()
        w.wait()
    assert a.peer_status("bravo")["check"]["alarm"]["alarm"] == "no_person"
