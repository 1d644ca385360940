"""Staging (docs/messages.md, "Staging"): a large attachment's bytes travel
while `hotline send` is still copying and hashing it into out/, and the
receiver adopts them when the signed ITEM comes.  Real daemons."""
import os
import signal
import subprocess
import time

import pytest

from station import HOTLINE_BIN, make_file, scaled, wait_for

MiB = 1 << 20


def staged(st, peer):
    return st.peer_status(peer)["delivery"]["staged"]


def staging_files(st):
    d = os.path.join(st.dir, "in", ".staging")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_a_large_document_is_staged_while_copied(net, tmp_path):
    size = 128 * MiB + 12345
    a, b, _ = net.pair()
    doc = tmp_path / "doc.bin"
    digest = make_file(doc, size)
    mid = a.send("pyongyang", "the document", subject="document", attach=[str(doc)],
                 wait=int(scaled(120)))
    d = b.inbox_entry(mid)
    assert d is not None and d["attachments"][0]["hash"] == digest
    assert d["attachments"][0]["size"] == size
    with open(os.path.join(b.dir, "in", mid, "0"), "rb") as f:
        got = f.read()
    assert len(got) == size and got == doc.read_bytes()
    assert [m["id"] for m in b.inbox()].count(mid) == 1
    sa, sb = staged(a, "pyongyang"), staged(b, "washington")
    print(f"sender staged {sa['out_bytes'] / MiB:.1f} MiB, receiver adopted "
          f"{sb['adopted_bytes'] / MiB:.1f} MiB")
    assert sa["out_bytes"] > 0, "nothing was staged"
    assert sb["adopted_bytes"] > 0 and sb["adopted_bytes"] <= sb["in_bytes"]
    assert sb["adopted_bytes"] < size
    assert "staged bytes adopted" in b.log_text()
    assert staging_files(b) == []


def test_two_attachments_staged(net, tmp_path):
    a, b, _ = net.pair()
    docs = [tmp_path / "one.bin", tmp_path / "two.bin"]
    sizes = [48 * MiB + 1, 32 * MiB]
    digests = [make_file(d, n) for d, n in zip(docs, sizes)]
    mid = a.send("pyongyang", "two", attach=[str(d) for d in docs], wait=int(scaled(120)))
    got = b.inbox_entry(mid)["attachments"]
    assert [x["hash"] for x in got] == digests and [x["size"] for x in got] == sizes
    assert staged(a, "pyongyang")["out_bytes"] > 0
    assert staging_files(b) == []


def test_no_staging_when_turned_off(net, tmp_path):
    size = 16 * MiB
    a, b, _ = net.pair()
    doc = tmp_path / "doc.bin"
    digest = make_file(doc, size)
    env = dict(os.environ, HOTLINE_NO_STAGE="1")
    p = a.cmd("send", "pyongyang", "-a", str(doc), f"--wait={int(scaled(60))}", "text", env=env)
    mid = p.stdout.split()[0]
    assert b.inbox_entry(mid)["attachments"][0]["hash"] == digest
    assert staged(a, "pyongyang")["out_bytes"] == 0


def start_send(st, peer, *args):
    """`hotline send` in the background (a Popen), in its own group."""
    argv = [HOTLINE_BIN, "-d", st.dir, "send", peer] + list(args)
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def pause_mid_copy(st, proc, at):
    """SIGSTOPs PROC once its copy into out/ holds AT bytes; returns the
    copy's path."""
    out = os.path.join(st.dir, "out")
    deadline = time.monotonic() + scaled(30)
    while time.monotonic() < deadline:
        for d in os.listdir(out) if os.path.isdir(out) else []:
            f = os.path.join(out, d, "0")
            if os.path.exists(f) and os.path.getsize(f) >= at:
                proc.send_signal(signal.SIGSTOP)
                return f
        assert proc.poll() is None, f"send ended early: {proc.stderr.read()}"
        time.sleep(0.001)
    raise AssertionError("the copy into out/ did not grow")


@pytest.mark.slow
def test_flash_overtakes_staging(net, tmp_path):
    size = 256 * MiB
    a, b, proxy = net.pair(via_proxy=True, rate=24 * MiB, rcvbuf=256 * 1024)
    doc = tmp_path / "doc.bin"
    digest = make_file(doc, size)
    proc = start_send(a, "pyongyang", "-a", str(doc), "document")
    try:
        pause_mid_copy(a, proc, 96 * MiB)
        # the paused copy's bytes are being staged over the slow line
        wait_for(lambda: staged(b, "washington")["in_bytes"] >= 8 * MiB, scaled(30),
                 "8 MiB staged at the receiver")
        t0 = time.monotonic()
        p = a.send("pyongyang", "FLASH: stand down", precedence="flash", wait=int(scaled(60)),
                   check=False)
        took = time.monotonic() - t0
        assert p.returncode == 0, f"send --wait of the FLASH message failed: {p.stderr}"
        got = staged(b, "washington")["in_bytes"]
        print(f"FLASH delivered in {took:.2f} s, {got / MiB:.1f} MiB staged by then")
        assert got < 90 * MiB, "the FLASH message waited for the staging to end"
        assert took < scaled(5), f"the FLASH message took {took:.1f} s during staging"
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=scaled(60))
    assert proc.returncode == 0, err
    mid = out.split()[0]
    a.wait_delivered([mid], scaled(120))
    assert b.inbox_entry(mid)["attachments"][0]["hash"] == digest
    assert staged(b, "washington")["adopted_bytes"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("how", ["proxy_cut", "receiver_sigkill"])
def test_session_broken_mid_staging(net, tmp_path, how):
    size = 160 * MiB
    a, b, proxy = net.pair(via_proxy=True, rate=40 * MiB, rcvbuf=256 * 1024)
    doc = tmp_path / "doc.bin"
    digest = make_file(doc, size)
    proc = start_send(a, "pyongyang", "-a", str(doc), "document")
    try:
        pause_mid_copy(a, proc, 64 * MiB)
        wait_for(lambda: staged(b, "washington")["in_bytes"] >= 16 * MiB, scaled(30),
                 "16 MiB staged at the receiver")
        assert len(staging_files(b)) == 1
        if how == "proxy_cut":
            proxy.drop_all()
            wait_for(lambda: staging_files(b) == [], scaled(30),
                     "the receiver removing its staging file at the session's end")
        else:
            b.kill9()
            proxy.drop_all()
            assert len(staging_files(b)) == 1    # left by the dead daemon
            b.start()
            assert staging_files(b) == [], "the restarted daemon kept a staging file"
    finally:
        proc.send_signal(signal.SIGCONT)
    out, err = proc.communicate(timeout=scaled(60))
    assert proc.returncode == 0, err
    mid = out.split()[0]
    a.wait_delivered([mid], scaled(120))
    assert b.inbox_entry(mid)["attachments"][0]["hash"] == digest
    assert [m["id"] for m in b.inbox()].count(mid) == 1
    assert staging_files(b) == []
    leftovers = [f for r, _, fs in os.walk(b.dir) for f in fs if f.endswith(".part")]
    assert leftovers == [], f"partial files left at the receiver: {leftovers}"


@pytest.mark.slow
def test_send_killed_mid_copy(net, tmp_path):
    """The command dies while copying: the staged bytes are never adopted,
    nothing waits for them, and the document sent again arrives once."""
    size = 128 * MiB
    a, b, proxy = net.pair(via_proxy=True, rate=40 * MiB, rcvbuf=256 * 1024)
    doc = tmp_path / "doc.bin"
    digest = make_file(doc, size)
    proc = start_send(a, "pyongyang", "-a", str(doc), "document")
    pause_mid_copy(a, proc, 48 * MiB)
    wait_for(lambda: staged(b, "washington")["in_bytes"] >= 8 * MiB, scaled(30),
             "8 MiB staged at the receiver")
    proc.kill()
    proc.wait()
    assert a.outbox() == [], "the killed command queued its message"
    mid = a.send("pyongyang", "document", attach=[str(doc)], wait=int(scaled(120)))
    assert b.inbox_entry(mid)["attachments"][0]["hash"] == digest
    assert len(b.inbox()) == 1
    # the dead command's staging goes with the session
    proxy.drop_all()
    wait_for(lambda: staging_files(b) == [], scaled(30), "the staging files removed")
    a.wait_connected("pyongyang", scaled(30))
    assert staging_files(b) == []


def test_no_staging_to_a_peer_without_the_hello_flag(net, tmp_path):
    """hlpeer's HELLO lacks the STAGE flag: hotline sends it no STAGE, and
    the document goes whole in CHUNKs, at once."""
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a)
    a.start()
    net.accept_hlpeer(a, peer, lst)
    doc = tmp_path / "doc.bin"
    make_file(doc, 24 * MiB)
    t0 = time.monotonic()
    doc_id = a.send("hlpeer", "document", attach=[str(doc)])
    peer.wait(lambda: any(m.id_hex == doc_id and m.visible for m in peer.in_msgs.values()),
              scaled(60), "the document")
    took = time.monotonic() - t0
    assert [r for r in peer.records_in if r[1] in (0x16, 0x17)] == []
    assert staged(a, "hlpeer")["out_bytes"] == 0
    assert took < scaled(4), f"the document took {took:.1f} s"
    assert peer.violations == []
