"""CREDIT, the flow control for CHUNK data (docs/messages.md), between a
hotline daemon and hlpeer.py, which plays the receiver and decides when to
credit:

  * the station announces CREDIT in its HELLO; with a peer that announces
    it too, the station never has more than its window of CHUNK data in
    flight: before any CREDIT that is 524,000 bytes, and a peer that reads
    but never credits gets no more, while a FLASH message still goes;
    crediting what arrived brings the rest, and the document arrives whole;
  * the window and the chunks are sized in time (deliver/flow.h): a peer
    that credits slowly, as a slow link would, gets chunks of a few KiB, so
    that a FLASH message waits behind little;
  * a peer whose HELLO has no flags byte gets the document without waiting
    for any CREDIT (a station that predates it);
  * a CREDIT for more than was sent ends the session as a protocol error,
    and delivery resumes on the next one.
"""
import os
import time

import hlpeer
from station import scaled

T = scaled(30)
CLOSE_PROTOCOL = 4    # docs/protocol.md, CLOSE reasons
FLOW_WINDOW_MAX = 64 << 20   # deliver/flow.h


def chunk_bytes(peer):
    """CHUNK data bytes PEER has received in all."""
    return sum(n - hlpeer.CHUNK_HDR_LEN for _, rtype, n in peer.records_in
               if rtype == hlpeer.T_CHUNK)


def visible(peer, mid):
    return any(m.id_hex == mid for m in peer.visible_messages())


def linked_with_document(net, tmp_path, size, hello_flags):
    """Washington with a SIZE-byte document queued for hlpeer, which it
    dials; hlpeer answers with HELLO_FLAGS.  Returns (a, peer, lst, id, data)."""
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a)
    doc = tmp_path / "doc.bin"
    data = os.urandom(size)
    doc.write_bytes(data)
    mid = a.send("hlpeer", "see attached", subject="doc", attach=[str(doc)])
    a.start()
    net.accept_hlpeer(a, peer, lst, hello_flags=hello_flags)
    return a, peer, lst, mid, data


def test_station_keeps_to_the_window_until_credited(net, tmp_path):
    a, peer, lst, mid, data = linked_with_document(net, tmp_path, 6 << 20, hlpeer.HELLO_FLAG_CREDIT)
    hello = peer.session.peer_hello
    assert len(hello) == 7 and hello[6] & hlpeer.HELLO_FLAG_CREDIT, hello.hex()

    # hlpeer reads (and ACKs the item) but credits nothing
    peer.wait(lambda: chunk_bytes(peer) > 0, T, "the first CHUNK")
    peer.poll(scaled(2))
    held = chunk_bytes(peer)
    assert 0 < held <= hlpeer.CREDIT_WINDOW, held
    assert held > hlpeer.CREDIT_WINDOW - 65500, f"stopped early, at {held} bytes"

    # a FLASH message is not held by the window
    fid = a.send("hlpeer", "urgent", precedence="flash")
    peer.wait(lambda: visible(peer, fid), T, "the FLASH message past the window")
    assert chunk_bytes(peer) == held, "chunks went out without CREDIT"

    # credit what arrived, as it arrives: the rest comes, whole (the window
    # now follows what the CREDITs show of the path: at most 64 MiB)
    credited = 0
    deadline = time.monotonic() + T
    while not visible(peer, mid):
        assert time.monotonic() < deadline, f"document incomplete at {chunk_bytes(peer)} bytes"
        got = chunk_bytes(peer)
        assert got - credited <= FLOW_WINDOW_MAX, (got, credited)
        if got > credited:
            peer.session.send_record(hlpeer.T_CREDIT, hlpeer.rec_credit(got))
            credited = got
        peer.poll(0.05)
    doc = next(m for m in peer.visible_messages() if m.id_hex == mid)
    assert doc.attachment_data(0) == data
    assert peer.violations == [], peer.violations
    a.wait_delivered([mid, fid], T)


def chunk_sizes(peer):
    return [n - hlpeer.CHUNK_HDR_LEN for _, rtype, n in peer.records_in
            if rtype == hlpeer.T_CHUNK]


def test_slow_receiver_gets_small_chunks(net, tmp_path):
    """hlpeer plays the far end of a slow link: it credits no more than
    100,000 bytes a second.  The station measures that rate from the
    CREDITs and sizes what may wait ahead of an urgent record to 20 ms of
    it: its chunks shrink from 65,500 bytes to a few KiB (the floor,
    4,096), and a FLASH message still goes at once."""
    a, peer, lst, mid, data = linked_with_document(net, tmp_path, 8 << 20, hlpeer.HELLO_FLAG_CREDIT)
    peer.wait(lambda: chunk_bytes(peer) > 0, T, "the first CHUNK")
    rate, credited, t0 = 100_000, 0, time.monotonic()
    while time.monotonic() - t0 < scaled(6):
        allowed = min(chunk_bytes(peer), int((time.monotonic() - t0) * rate))
        if allowed > credited:
            peer.session.send_record(hlpeer.T_CREDIT, hlpeer.rec_credit(allowed))
            credited = allowed
        peer.poll(0.02)
    sizes = chunk_sizes(peer)
    assert sizes[0] == 65500, sizes[:4]       # before any CREDIT: whole chunks
    assert max(sizes[-5:]) <= 8192, sizes[-20:]
    # the station's status says what it measured
    flow = a.peer_status("hlpeer")["delivery"]["flow"]
    assert 0 < flow["rate"] < 4 * rate and flow["ahead"] <= 8192, flow
    fid = a.send("hlpeer", "urgent", precedence="flash")
    peer.wait(lambda: visible(peer, fid), T, "the FLASH message")
    assert peer.violations == [], peer.violations


def test_peer_without_flags_gets_no_window(net, tmp_path):
    # a 6-byte HELLO: no CREDIT
    a, peer, lst, mid, data = linked_with_document(net, tmp_path, 3 << 20, None)
    peer.wait(lambda: visible(peer, mid), T, "the whole document without CREDIT")
    assert chunk_bytes(peer) >= len(data) > hlpeer.CREDIT_WINDOW
    doc = next(m for m in peer.visible_messages() if m.id_hex == mid)
    assert doc.attachment_data(0) == data
    a.wait_delivered([mid], T)


def test_credit_beyond_what_was_sent_ends_the_session(net, tmp_path):
    a, peer, lst, mid, data = linked_with_document(net, tmp_path, 2 << 20, hlpeer.HELLO_FLAG_CREDIT)
    peer.wait(lambda: chunk_bytes(peer) > 0, T, "the first CHUNK")
    peer.session.send_record(hlpeer.T_CREDIT, hlpeer.rec_credit(1 << 40))
    try:
        peer.wait(lambda: False, scaled(5), "the station closing the session")
    except AssertionError as exc:
        assert "closed the session" in str(exc), exc
    assert peer.session.closed
    if peer.session.close_reason is not None:   # the CLOSE is best effort
        reason, text = peer.session.close_reason
        assert reason == bytes([CLOSE_PROTOCOL]) and b"CREDIT" in text, (reason, text)
    assert "CREDIT for 1099511627776 bytes" in a.log_text()
    # the next session resumes from what hlpeer holds, credited properly
    # (CREDIT counts from 0 in each session)
    peer.close()
    net.accept_hlpeer(a, peer, lst, hello_flags=hlpeer.HELLO_FLAG_CREDIT)
    base = chunk_bytes(peer)
    deadline = time.monotonic() + T
    while not visible(peer, mid):
        assert time.monotonic() < deadline, "document incomplete on the second session"
        peer.session.send_record(hlpeer.T_CREDIT, hlpeer.rec_credit(chunk_bytes(peer) - base))
        peer.poll(0.05)
    doc = next(m for m in peer.visible_messages() if m.id_hex == mid)
    assert doc.attachment_data(0) == data
    a.wait_delivered([mid], T)


def test_close_for_a_protocol_error_says_why(net, tmp_path):
    # Nothing queued, so the station's output is empty and its CLOSE goes
    # out at once: it must carry the reason and the station's text (the
    # text used to be dropped on the way from the daemon to the link).
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a)
    a.start()
    net.accept_hlpeer(a, peer, lst, hello_flags=hlpeer.HELLO_FLAG_CREDIT)
    peer.poll(0.2)
    peer.session.send_record(hlpeer.T_CREDIT, hlpeer.rec_credit(1 << 40))
    try:
        peer.wait(lambda: False, scaled(5), "the station closing the session")
    except AssertionError as exc:
        assert "closed the session" in str(exc), exc
    assert peer.session.close_reason is not None, "no CLOSE before the connection ended"
    reason, text = peer.session.close_reason
    assert reason == bytes([CLOSE_PROTOCOL]), reason
    assert b"CREDIT for 1099511627776 bytes" in text, text
