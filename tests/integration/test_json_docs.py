"""docs/json.md says what every `--json` output holds; this test holds it to
the program.  Two stations, alpha and beta, go through what makes every
kind of output appear: messages both ways with an attachment and receipts,
a message refused (over beta's MaxAttachment), a machine and an operator
line check (answered by a person at beta), an agreement proposed and
countersigned, a scheduled check of a peer that never connects (an
alarm), a voice message (a WAV file encoded), and a call that alpha rings,
beta answers and alpha ends, each side speaking from a WAV file.  Then the
real output of inbox, outbox, read, status (with and without a daemon,
ringing and during the call), watch, check, answer, agree list and call is
compared with the tables of docs/json.md: every field the program prints is
documented (with a type that fits), and every field documented as present
`always` is printed.  Either kind of drift fails.  A call's statistics,
nested in three outputs, are compared with their own table."""

import json
import math
import os
import re
import struct
import subprocess
import threading
import wave

import hlpeer
from station import HOTLINE_BIN, scaled, wait_for

DOC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs", "json.md")
TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


# ------------------------------------------------------------------ the docs

def doc_tables():
    """{name: {field: row}} from the tables after each `<!-- json: NAME -->`."""
    tables, cur, header = {}, None, None
    with open(DOC) as f:
        for line in f:
            s = line.strip()
            m = re.match(r"<!-- json: (\S+) -->$", s)
            if m:
                cur, header = m.group(1), None
                assert cur not in tables, f"json.md: {cur} twice"
                tables[cur] = {}
                continue
            if cur is None:
                continue
            if not s.startswith("|"):
                if header is not None and s:
                    cur = None          # the table ended
                continue
            cells = [c.strip() for c in s.strip("|").split("|")]
            if header is None:
                header = cells
                continue
            if set(cells[0]) <= {"-"}:
                continue
            row = dict(zip(header, cells))
            field = row["field"].strip("`")
            assert field not in tables[cur], f"json.md: {cur}: {field} twice"
            tables[cur][field] = row
    return tables


def type_ok(value, text):
    kinds = [k.strip() for k in text.split(" or ")]
    for k in kinds:
        if k == "null" and value is None:
            return True
        if k == "string" and isinstance(value, str):
            return True
        if k == "time" and isinstance(value, str) and TIME.match(value):
            return True
        if k == "integer" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if k == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return True
        if k == "boolean" and isinstance(value, bool):
            return True
        if k == "object" and isinstance(value, dict):
            return True
        if k == "array" and isinstance(value, list):
            return True
    return False


def fields(value, prefix="", opaque=()):
    """{path: [values]} of every field in VALUE (a list's elements share
    the path NAME[]); the fields inside an OPAQUE path are left out (their
    own table checks them)."""
    out = {}
    if isinstance(value, dict):
        for k, v in value.items():
            p = f"{prefix}.{k}" if prefix else k
            out.setdefault(p, []).append(v)
            if p in opaque:
                continue
            for q, vs in fields(v, p, opaque).items():
                out.setdefault(q, []).extend(vs)
    elif isinstance(value, list):
        for v in value:
            for q, vs in fields(v, prefix + "[]", opaque).items():
                out.setdefault(q, []).extend(vs)
    return out


def check_object(what, obj, doc, allowed=None, required=None, opaque=()):
    """Every field of OBJ is in DOC (restricted to ALLOWED rows) with a type
    that fits; every REQUIRED field (default: present `always`) is there.
    Inside the OPAQUE paths, nothing is compared."""
    allowed = allowed if allowed is not None else set(doc)
    required = required if required is not None else \
        {f for f, r in doc.items() if r["present"] == "always"}
    got = fields(obj, opaque=opaque)
    undocumented = sorted(set(got) - allowed)
    assert not undocumented, f"{what}: fields not in docs/json.md: {undocumented}\n{obj}"
    missing = sorted(f for f in required if f not in got and _parent_present(f, got, obj))
    assert not missing, f"{what}: documented as always present, but absent: {missing}\n{obj}"
    for f, values in got.items():
        for v in values:
            assert type_ok(v, doc[f]["type"]), f"{what}: {f} = {v!r} is not {doc[f]['type']}"


def _parent_present(field, got, obj):
    """A nested field is required only where its parent object exists (not
    under a null or an empty array)."""
    parent = field.rsplit(".", 1)[0] if "." in field else ""
    if not parent:
        return True
    if parent.endswith("[]"):
        return any(isinstance(v, list) and v for v in got.get(parent[:-2], []))
    return any(isinstance(v, dict) for v in got.get(parent, []))


def rows_for(doc, direction):
    """The message rows for one direction: present always, DIRECTION,
    DIRECTION: a condition, or a condition of either direction (one that
    names neither)."""
    def other(p):
        return p.split(":")[0] in ("in", "out") and p.split(":")[0] != direction
    allowed = {f for f, r in doc.items()
               if r["present"] in ("always", direction)
               or r["present"].startswith(direction + ":")
               or (r["present"] not in ("in", "out") and not other(r["present"]))}
    required = {f for f, r in doc.items() if r["present"] in ("always", direction)}
    return allowed, required


# --------------------------------------------------------------- the scenario

def add_to_peer(st, peer, *lines):
    """Adds LINES to ST's [Peer] section named PEER."""
    with open(st.conf_path) as f:
        text = f.read().splitlines()
    out, i, done = [], 0, False
    for line in text:
        out.append(line)
        if not done and line.strip() == f"Name = {peer}" and out[-2].strip() == "[Peer]":
            out.extend(lines)
            done = True
    assert done, text
    with open(st.conf_path, "w") as f:
        f.write("\n".join(out) + "\n")


class Watch:
    """`hotline watch --json`, its lines collected by a thread."""

    def __init__(self, st):
        self.proc = subprocess.Popen([HOTLINE_BIN, "-d", st.dir, "watch", "--json"],
                                     stdout=subprocess.PIPE, text=True)
        self.events = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self):
        for line in self.proc.stdout:
            self.events.append(json.loads(line))

    def kinds(self):
        return {e["event"] for e in self.events}

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=10)
        self.thread.join(timeout=10)


def jcmd(st, *args, **kw):
    return json.loads(st.cmd(*args, **kw).stdout)


def write_tone(path, seconds, rate=16000):
    """A mono 16-bit WAV: a 440 Hz tone (something for Opus to encode)."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate)))
                               for i in range(int(seconds * rate))))


def station_call(st):
    return jcmd(st, "status", "--json")["station"].get("call") or {}


def test_json_output_matches_docs(stations, tmp_path):
    doc = doc_tables()
    a, b = stations("alpha"), stations("beta", MaxAttachment="1K")
    a.pin(b)
    b.pin(a)
    gamma = hlpeer.Identity("gamma")     # pinned, never connects: scheduled checks fail
    a.pin(gamma)
    add_to_peer(a, "gamma", "CheckEvery = 3s", "CheckTimeout = 1s")
    maildir = tmp_path / "Maildir"
    for d in ("new", "cur", "tmp"):
        (maildir / d).mkdir(parents=True)
    add_to_peer(a, "beta", "Email = beta@hotline.test", "CheckAt = 09:00", "CheckZone = UTC")
    with open(a.conf_path, "a") as f:
        f.write(f"\n[Email]\nSMTP = smtp://127.0.0.1:9\nFrom = alpha@hotline.test\n"
                f"Maildir = {maildir}\n")
    a.start()
    b.start()
    a.wait_connected("beta")
    b.wait_connected("alpha")
    wa, wb = Watch(a), Watch(b)
    wait = f"--wait={int(scaled(20))}"

    # messages both ways, an attachment, receipts; one refused by beta
    small = tmp_path / "note.txt"
    small.write_text("attached\n")
    big = tmp_path / "big.bin"
    big.write_bytes(b"x" * 4096)
    m1 = a.cmd("send", "beta", "-s", "hello", "-a", small, wait, "body").stdout.split()[0]
    m2 = b.cmd("send", "alpha", "-p", "flash", wait, "reply").stdout.split()[0]
    a.cmd("send", "beta", "-s", "too big", "-a", big, "refuse me")
    wait_for(lambda: any(m["state"] == "refused" for m in jcmd(a, "outbox", "--json")),
             scaled(20), "the refusal at alpha")

    # line checks: machine, then operator answered by a person at beta
    check_machine = jcmd(a, "check", "beta", "--json")
    op = subprocess.Popen([HOTLINE_BIN, "-d", a.dir, "check", "beta", "--operator",
                           "--timeout", str(int(scaled(30))), "--json"],
                          stdout=subprocess.PIPE, text=True)
    wait_for(lambda: jcmd(b, "status", "--json")["peers"][0]["check"]["pending_answer"],
             scaled(15), "the operator check waiting at beta")
    status_pending = jcmd(b, "status", "--json")
    answered = jcmd(b, "answer", "--yes", "--json")
    check_operator = json.loads(op.communicate(timeout=scaled(30))[0])

    # an agreement, countersigned
    accord = tmp_path / "accord.txt"
    accord.write_text("We agree.\n")
    agr = a.cmd("agree", "propose", "beta", accord).stdout.split()[-1]
    wait_for(lambda: any(g["id"] == agr and g["document"] == "here"
                         for g in jcmd(b, "agree", "list", "--json")),
             scaled(20), "the proposal at beta")
    b.cmd("agree", "sign", agr, "--yes")
    wait_for(lambda: "agreement_signed" in wa.kinds(), scaled(20), "the countersignature")
    # gamma's scheduled check fails: an alarm
    wait_for(lambda: "alarm" in wa.kinds(), scaled(20), "gamma's alarm")

    # a voice message, beta to alpha (beta's MaxAttachment would refuse it)
    tone = tmp_path / "tone.wav"
    write_tone(tone, seconds=3)
    mv = b.cmd("voice", "send", "alpha", tone).stdout.split()[0]
    wait_for(lambda: any(m["id"] == mv and m.get("voice", {}).get("state") == "ready"
                         for m in jcmd(a, "inbox", "--json")), scaled(20), "the voice message")
    read_voice = jcmd(a, "read", mv, "--json")

    # a call: alpha rings, beta answers, alpha hangs up after 3 s
    def handset(st, *args):
        return subprocess.Popen([HOTLINE_BIN, "-d", st.dir, "call", *args, "--input", str(tone),
                                 "--output", str(tmp_path / f"{st.name}-heard.wav"), "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    caller = handset(a, "beta", "-p", "immediate", "--seconds", "3")
    wait_for(lambda: station_call(b).get("state") == "ringing_in", scaled(15), "the ring at beta")
    status_ringing = jcmd(b, "status", "--json")
    callee = handset(b, "answer", "alpha")
    wait_for(lambda: station_call(a).get("state") == "active", scaled(15), "the call at alpha")
    status_call = jcmd(a, "status", "--json")
    out_a, err_a = caller.communicate(timeout=scaled(30))
    out_b, err_b = callee.communicate(timeout=scaled(30))
    assert caller.returncode == 0 and callee.returncode == 0, err_a + err_b
    call_a, call_b = json.loads(out_a), json.loads(out_b)
    assert call_a["call"]["reason"] == "hangup" and call_a["call"]["by"] == "us", call_a
    wait_for(lambda: "call_ended" in wa.kinds() and "call_ended" in wb.kinds(), scaled(10),
             "call_ended at both watchers")

    out = {st.name: {"inbox": jcmd(st, "inbox", "--json"),
                     "outbox": jcmd(st, "outbox", "--json"),
                     "status": jcmd(st, "status", "--json"),
                     "agree": jcmd(st, "agree", "list", "--json")} for st in (a, b)}
    read_in = jcmd(b, "read", m1, "--json")
    read_out = jcmd(a, "read", m1, "--json")
    read_in2 = jcmd(a, "read", m2, "--json")
    read_out_voice = jcmd(b, "read", mv, "--json")
    wa.stop()
    wb.stop()
    a.stop()
    status_down = jcmd(a, "status", "--json", check=False)

    # ---- compare
    msg_in, msg_out = rows_for(doc["message"], "in"), rows_for(doc["message"], "out")
    for name, o in out.items():
        assert o["inbox"] and o["outbox"], f"{name}: nothing to compare"
        for m in o["inbox"]:
            check_object(f"{name} inbox", m, doc["message"], *msg_in)
        for m in o["outbox"]:
            check_object(f"{name} outbox", m, doc["message"], *msg_out)
    assert any(m["state"] == "refused" for m in out["alpha"]["outbox"])
    read_doc = {**doc["message"], **doc["read"]}
    voiced = [m for m in out["alpha"]["inbox"] if "voice" in m]
    assert voiced and voiced[0]["voice"]["duration_ms"] > 2000, voiced   # the rows were exercised
    for what, r, (allowed, required) in (("read in", read_in, msg_in),
                                         ("read in (flash)", read_in2, msg_in),
                                         ("read in (voice)", read_voice, msg_in),
                                         ("read out (voice)", read_out_voice, msg_out),
                                         ("read out", read_out, msg_out)):
        check_object(what, r, read_doc, allowed | set(doc["read"]),
                     required | set(doc["read"]))

    for name, o in out.items():
        check_object(f"{name} status", o["status"], doc["status"])
    check_object("beta status (a check waiting)", status_pending, doc["status"])
    check_object("beta status (a call ringing)", status_ringing, doc["status"])
    assert status_ringing["station"]["call"]["state"] == "ringing_in"
    check_object("alpha status (a call)", status_call, doc["status"],
                 opaque={"station.call.stats"})
    check_object("alpha status: call stats", status_call["station"]["call"]["stats"],
                 doc["call.stats"])
    alarmed = [p for p in out["alpha"]["status"]["peers"] if p["name"] == "gamma"][0]
    assert alarmed["check"]["alarm"], alarmed      # the alarm rows were exercised
    down_doc = {f: r for f, r in doc["status"].items() if r["without a daemon"] != "absent"}
    down_required = {f for f, r in down_doc.items() if r["present"] == "always"}
    check_object("status without a daemon", status_down, down_doc, set(down_doc),
                 down_required)
    assert status_down["daemon"] is False
    for f, r in down_doc.items():
        if r["without a daemon"] == "null":
            assert all(v is None for v in fields(status_down).get(f, [])), f

    events = wa.events + wb.events
    kinds = {e["event"] for e in events}
    documented = {k.split(".", 1)[1] for k in doc if k.startswith("watch.")}
    assert kinds <= documented, f"undocumented watch events: {kinds - documented}"
    # refused_in needs a message refused after it began to arrive (a part
    # failing its hash): only a hostile peer does that; not produced here.
    want = {"arrived", "delivered", "refused", "check", "answer", "check_in",
            "agreement_proposed", "agreement_signed", "alarm", "call_ring", "call_ringing_out",
            "call_ringing", "call_answered", "call_ended"}
    assert want <= kinds, f"the scenario did not produce: {want - kinds}"
    assert {"ring", "no_connection"} <= {e["alarm"] for e in events if e["event"] == "alarm"}
    for e in events:
        check_object(f"watch {e['event']}", e, doc["watch." + e["event"]], opaque={"stats"})
        if e["event"] == "call_ended":
            check_object("watch call_ended: stats", e["stats"], doc["call.stats"])

    for what, c in (("alpha call", call_a), ("beta call answer", call_b)):
        check_object(what, c, doc["call"], opaque={"call"})
        check_object(f"{what}: call", c["call"], doc["watch.call_ended"], opaque={"stats"})
        check_object(f"{what}: stats", c["call"]["stats"], doc["call.stats"])

    for what, c in (("check", check_machine), ("check --operator", check_operator)):
        check_object(what, c, doc["check"])
    assert check_operator["mode"] == "operator" and check_operator["result"] == "ok"
    assert answered, "answer answered nothing"
    for x in answered:
        check_object("answer", x, doc["answer"])
    for name, o in out.items():
        assert o["agree"], name
        for g in o["agree"]:
            check_object(f"{name} agree list", g, doc["agree"])
