"""What a hostile pinned peer can make a station store, log or say is
bounded, and nothing that must be said to the peer is dropped because the
link's output is full (docs/messages.md section 4).

  * a flood of refused items leaves a bounded number of tombstone rows and
    of warning lines in the log;
  * 200 signed variants of one position leave one piece of evidence and
    one alarm;
  * ACKs and REFUSEs owed to a peer while our output is above the link's
    high-water mark (a large document keeps it full) are sent once the
    link drains, not forgotten;
  * a RESUME that lists messages the peer receipted (as a peer restored
    from a backup does) gets their parts again, at most 256 messages a
    session and one log line, the rest on the next session.
"""
import os
import time

import hlpeer
from checks_util import alarm_script, alarms, store_rows
from station import scaled, wait_for

T = scaled(30)


def test_a_flood_of_refused_items_is_bounded(net):
    st, peer = net.hlpeer_linked(start=False)
    st.start()
    net.connect_hlpeer(st, peer)
    n = 20_000
    bad = [peer.compose("forged", "x", tamper_sig=True) for _ in range(n)]
    for i in range(0, n, 500):
        peer.send_burst(bad[i:i + 500])
        peer.poll(0)
    peer.wait(lambda: peer.refusal_for(n) is not None, T, f"the REFUSE of item {n}")
    rows = store_rows(st, "SELECT count(*) FROM items WHERE dir = 1")[0][0]
    assert rows <= 10_000, f"{rows} tombstone rows for {n} refused items"
    assert rows >= 1000, f"only {rows} refused positions kept"
    # past the bound an item is refused for now (nothing stored), and
    # status says so
    assert peer.refusal_for(n)[2] == hlpeer.REFUSE_QUOTA
    delivery = st.peer_status(peer.me.name)["delivery"]
    assert delivery["refused_items"] >= rows and delivery["refusing"], delivery
    lines = [l for l in st.log_text().splitlines() if "refused" in l]
    assert len(lines) <= 200, f"{len(lines)} log lines about refused items"
    assert st.alive()


def test_equivocation_variants_give_one_alarm_and_bounded_evidence(net, tmp_path):
    st, peer = net.hlpeer_linked(start=False)
    script, out = alarm_script(tmp_path)
    st.set_option("AlarmCommand", script)
    st.start()
    net.connect_hlpeer(st, peer)
    first = peer.compose("first", "x")
    peer.send_message(first)
    peer.wait(lambda: 1 in peer.acked, T, "ACK of item 1")
    variants = [peer.compose(f"variant {i}", "y", seq=1, class_seq=1) for i in range(200)]
    peer.send_burst(variants)
    peer.wait(lambda: len(peer.ack_records) >= 3, T, "ACKs of the variants")
    time.sleep(scaled(2))
    peer.poll(0.5)
    rows = store_rows(st, "SELECT count(*) FROM equivocations")[0][0]
    assert rows == 1, f"{rows} pieces of evidence for one forked position"
    fired = [a for a in alarms(out) if a.get("HOTLINE_ALARM") == "equivocation"]
    assert len(fired) == 1, f"{len(fired)} equivocation alarms"
    lines = [l for l in st.log_text().splitlines() if "EQUIVOCATION" in l]
    assert len(lines) == 1, lines[:5]


def test_acks_and_refusals_owed_while_our_output_is_full(net, tmp_path):
    """The honest case: a large document keeps our output above the
    link's high-water mark while the peer's messages come in.  Every one
    is acknowledged, and every refusal said, once the peer reads again."""
    st, peer = net.hlpeer_linked(start=False, auto_ack=False, auto_receipt=False)
    st.start()
    net.connect_hlpeer(st, peer)
    doc = os.path.join(str(tmp_path), "doc.bin")
    with open(doc, "wb") as f:
        f.write(os.urandom(48 << 20))
    st.send(peer.me.name, "a document", attach=[doc])
    time.sleep(scaled(3))              # our output fills: the peer reads nothing
    good = [peer.compose(f"m{i}", "x") for i in range(30)]
    bad = [peer.compose("forged", "y", tamper_sig=True) for _ in range(10)]
    peer.send_burst(good + bad)
    time.sleep(scaled(2))              # stored, and the ACK refused by the full link
    want = {oi.seq for oi in good + bad}
    peer.wait(lambda: want <= peer.acked and
              all(peer.refusal_for(oi.seq) for oi in bad), T,
              "the ACK of every item and the REFUSE of every bad one, once we read")


def files_under(path):
    n = 0
    for _, dirs, files in os.walk(path):
        n += len(files) + len(dirs)
    return n


def test_many_empty_attachments_count_against_the_quota(net):
    """Every file and row counts: 200 messages of 64 empty attachments
    against a 1 MiB quota (each file at least a block)."""
    st, peer = net.hlpeer_linked(start=False)
    st.set_option("PeerQuota", "1M")
    st.start()
    net.connect_hlpeer(st, peer)
    atts = [hlpeer.Attachment(f"e{i}", b"") for i in range(64)]
    msgs = [peer.compose(f"m{i}", "x", attachments=atts) for i in range(200)]
    for i in range(0, 200, 20):
        peer.send_burst(msgs[i:i + 20])
    last = msgs[-1].seq
    peer.wait(lambda: peer.refusal_for(last) is not None or last in peer.acked, T,
              "the last message settled")
    r = peer.refusal_for(last)
    assert r and r[2] == hlpeer.REFUSE_QUOTA, f"the 200th message was not refused for quota: {r}"
    usage = store_rows(st, "SELECT in_bytes FROM peers WHERE name = ?", (peer.me.name,))[0][0]
    assert usage <= 1 << 20, f"usage {usage} over the 1 MiB quota"
    files = files_under(os.path.join(st.dir, "in"))
    assert files <= (1 << 20) // 4096, f"{files} files and directories for a 1 MiB quota"
    delivery = st.peer_status(peer.me.name)["delivery"]
    assert "quota" in (delivery["refusing"] or ""), delivery


def test_sizes_over_their_caps_are_a_config_error(net):
    st = net.station("pyongyang")
    for key, value in (("MaxAttachment", "4611686018427387904"), ("PeerQuota", "2048T"),
                       ("DiskReserve", "51%")):
        st.set_option(key, value)
        p = st.cmd("status", check=False)
        assert p.returncode == 1, f"{key} = {value} accepted"
        assert "station.conf:" in p.stderr and key in p.stderr and value in p.stderr, p.stderr
        st.set_option(key, "1G" if key != "DiskReserve" else "10%")
    assert st.cmd("status", check=False).returncode == 3   # valid; no daemon runs


def test_default_reserve_leaves_the_operator_room(net, tmp_path):
    """With the default DiskReserve (5% of the file system, at least 16
    MiB: 24 MiB of this 480 MiB one) a peer filling the disk stops short of
    what the operator needs for `send -a` (the old fixed 16 MiB left it
    less)."""
    mnt = net.tmpfs(str(tmp_path / "disk"), "480m")
    st = net.station("pyongyang", dir=os.path.join(mnt, "st"))
    peer = net.hlpeer_pinned(st)
    st.start()
    net.connect_hlpeer(st, peer)
    with open(os.path.join(mnt, "filler"), "wb") as f:   # the disk is nearly full already
        while os.statvfs(mnt).f_bavail * os.statvfs(mnt).f_frsize > (44 << 20):
            f.write(b"\0" * (1 << 20))
    refused = None
    for i in range(12):
        m = peer.compose(f"fill {i}", "x",
                         attachments=[hlpeer.Attachment("blob", os.urandom(4 << 20))])
        peer.send_message(m)
        peer.wait(lambda: m.seq in peer.delivered or peer.refusal_for(m.seq), T,
                  f"message {m.seq} delivered or refused")
        refused = peer.refusal_for(m.seq)
        if refused:
            break
    assert refused and refused[2] == hlpeer.REFUSE_QUOTA, "the peer filled the disk unrefused"
    doc = os.path.join(str(tmp_path), "mine.bin")
    with open(doc, "wb") as f:
        f.write(os.urandom((20 << 20) + (512 << 10)))
    p = st.send(peer.me.name, "the operator's own", attach=[doc], check=False)
    assert p.returncode == 0, f"send -a failed once the peer had filled the disk: {p.stderr}"


def test_bodies_held_in_memory_are_bounded(net):
    """A body of up to 16 MiB travels in CHUNKs and is kept in memory until
    whole: a peer that starts many and finishes none is refused for now
    past 64 MiB, not allowed 256 x 16 MiB."""
    st, peer = net.hlpeer_linked(start=False)
    st.start()
    net.connect_hlpeer(st, peer)
    body = os.urandom(16 << 20)
    msgs = [peer.compose(f"big {i}", body) for i in range(6)]
    for m in msgs:
        peer.send_item(m.seq)          # the ITEM only: its body never comes
    peer.wait(lambda: all(m.seq in peer.acked or peer.refusal_for(m.seq) for m in msgs), T,
              "every ITEM settled")
    refused = [m.seq for m in msgs if peer.refusal_for(m.seq)]
    assert refused, "six 16 MiB bodies held in memory at once"
    assert all(peer.refusal_for(s)[2] == hlpeer.REFUSE_QUOTA for s in refused)
    assert len(refused) <= 2, f"refused {refused}: the first four fit in 64 MiB"


def test_a_resume_of_receipted_messages_is_bounded(net, tmp_path):
    st, peer = net.hlpeer_linked()
    doc = tmp_path / "doc.bin"
    doc.write_bytes(os.urandom(100))
    n = 260
    mids = []
    for i in range(n):
        mids.append(st.send(peer.me.name, f"doc {i}", attach=[str(doc)]))
        peer.poll(0.02)  # keep the session alive (poll(0) reads nothing new): a sanitizer build sends for minutes
    peer.wait(lambda: len(peer.visible_messages()) == n, scaled(120), f"{n} documents")
    peer.poll(0.2)
    st.wait_delivered(mids, T)
    seqs = sorted(peer.in_msgs)
    assert len(seqs) == n

    def chunks():
        return sum(1 for _, rtype, _ in peer.records_in if rtype == hlpeer.T_CHUNK)

    def reconnect(listed):
        peer.close()
        wait_for(lambda: st.peer_status(peer.me.name)["state"] != "connected", T, "the link down")
        # Receipted messages listed as incomplete: part 1 from offset 0.
        peer.send_resume = lambda: peer.session.send_record(
            hlpeer.T_RESUME, hlpeer.rec_resume([(s, 1, 0) for s in listed]))
        net.connect_hlpeer(st, peer)

    before = chunks()
    reconnect(seqs)
    peer.wait(lambda: chunks() - before >= 256, T, "the parts of 256 messages again")
    peer.poll(scaled(2))
    assert chunks() - before == 256, chunks() - before
    lines = [l for l in st.log_text().splitlines() if "it receipted as incomplete" in l]
    assert len(lines) == 1 and "lists 256 message(s)" in lines[0] and "rest wait" in lines[0], \
        lines
    # As a restored peer would, the next session lists only the rest.
    before = chunks()
    reconnect(seqs[256:])
    peer.wait(lambda: chunks() - before >= n - 256, T, "the parts of the rest")
    peer.poll(scaled(1))
    assert chunks() - before == n - 256
    # Nothing moved back: every message is still delivered, with no second receipt asked.
    assert set(st.outbox_states().values()) == {"delivered"}
