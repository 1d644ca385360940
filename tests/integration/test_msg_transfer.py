"""Large documents: precedence over a transfer in flight, and resuming a
broken transfer (a FLASH message overtakes a document in flight;
docs/messages.md: RESUME).

The stations talk through a TCP proxy that throttles the sender-to-receiver
direction (a slow line, so that a transfer is reliably "in flight" for
seconds) and counts the bytes it forwards; it can also cut every connection.
"""
import os
import time

import pytest

from station import make_file, rfc3339_ms, scaled, wait_for

MiB = 1 << 20


def arriving(st):
    """Messages the station holds whose parts are still arriving."""
    return sum(p.get("delivery", {}).get("incoming_partial", 0)
               for p in st.status().get("peers", []))


@pytest.mark.slow
def test_flash_overtakes_a_256_mib_document(net, tmp_path):
    size = 256 * MiB
    rate = 24 * MiB     # about 11 s for the document
    a, b, proxy = net.pair(via_proxy=True, rate=rate, rcvbuf=256 * 1024)
    doc = tmp_path / "treaty-annexes.bin"
    digest = make_file(doc, size)
    doc_id = a.send("pyongyang", "the annexes", subject="document", attach=[str(doc)])
    # the document is in flight
    wait_for(lambda: proxy.down >= 32 * MiB, scaled(60), "32 MiB of the document through the proxy")
    p = a.send("pyongyang", "FLASH: stand down", precedence="flash", wait=int(scaled(60)),
               check=False)
    assert p.returncode == 0, f"send --wait of the FLASH message failed: {p.stderr}"
    flash_id = p.stdout.split()[0]
    moved = proxy.down
    doc_state = a.outbox_states()[doc_id]
    assert doc_state != "delivered", "the document was delivered before the FLASH message"
    assert moved < size, f"{moved} bytes had passed: the FLASH message waited for the document"
    print(f"FLASH delivered after {moved / MiB:.1f} MiB of {size / MiB:.0f} MiB")
    fl = b.inbox_entry(flash_id)
    assert fl is not None, "the FLASH message is not in the receiver's inbox after its receipt"
    assert b.inbox_entry(doc_id) is None, "the document is visible before it completed"

    a.wait_delivered([doc_id], scaled(120))
    d = b.inbox_entry(doc_id)
    assert d["attachments"][0]["hash"] == digest and d["attachments"][0]["size"] == size
    assert rfc3339_ms(fl["received_at"]) < rfc3339_ms(d["received_at"])
    out = {m["id"]: m for m in a.outbox()}
    if out[flash_id].get("delivered_at") and out[doc_id].get("delivered_at"):
        assert rfc3339_ms(out[flash_id]["delivered_at"]) < rfc3339_ms(out[doc_id]["delivered_at"])


@pytest.mark.slow
@pytest.mark.parametrize("how", ["proxy_cut", "receiver_sigkill"])
def test_broken_transfer_resumes_without_resending(net, tmp_path, how):
    size = 192 * MiB
    rate = 40 * MiB
    a, b, proxy = net.pair(via_proxy=True, rate=rate, rcvbuf=256 * 1024)
    doc = tmp_path / "doc.bin"
    digest = make_file(doc, size)
    mid = a.send("pyongyang", "big one", attach=[str(doc)])
    # The cut comes once half the bytes are through AND the receiver holds
    # the message (its ITEM stored, the part arriving).  Before that, what
    # arrived were STAGE records, which by design are not durable and are
    # dropped with the session (docs/messages.md section 6): on a loaded
    # machine `send` may still be copying at the half-way mark, and a cut
    # then resends the staged bytes — correct, but not what this test is
    # about (it failed that way under a loaded make check).
    wait_for(lambda: proxy.down >= size // 2 and arriving(b) >= 1, scaled(60),
             "half the document through the proxy, its message held at the receiver")
    if how == "proxy_cut":
        proxy.drop_all()
    else:
        b.kill9()
        proxy.drop_all()
        b.start()
    a.wait_delivered([mid], scaled(120))
    d = b.inbox_entry(mid)
    assert d["attachments"][0]["hash"] == digest
    allowance = 2 * MiB       # handshakes, record headers and tags, other records
    limit = 1.10 * size + allowance
    print(f"{how}: {proxy.down / MiB:.1f} MiB forwarded for a {size / MiB:.0f} MiB document")
    assert proxy.down <= limit, (f"{proxy.down / MiB:.1f} MiB forwarded toward the receiver for a "
                                 f"{size / MiB:.0f} MiB document: resent "
                                 f"{(proxy.down - size) / MiB:.1f} MiB, over 10%")
    leftovers = [f for r, _, fs in os.walk(b.dir) for f in fs if f.endswith(".part")]
    assert leftovers == [], f"partial files left at the receiver: {leftovers}"


def test_flash_waits_behind_at_most_a_few_chunks(net, tmp_path):
    """hlpeer receives a 64 MiB document from hotline through a small socket
    buffer, and stops reading after 8 MiB, so the document backs up in
    flight; a FLASH message queued then must arrive after at most a few MiB
    more of the document (TCP_NOTSENT_LOWAT and a short send queue,
    docs/messages.md section 3)."""
    a = net.station("washington")
    peer, lst = net.hlpeer_listening(a, rcvbuf=128 * 1024)
    doc = tmp_path / "doc.bin"
    make_file(doc, 64 * MiB)
    doc_id = a.send("hlpeer", "document", attach=[str(doc)])
    a.start()
    net.accept_hlpeer(a, peer, lst)

    def doc_bytes():
        m = [x for x in peer.in_msgs.values() if x.id_hex == doc_id]
        return sum(len(v) for v in m[0].parts.values()) if m else 0
    peer.wait(lambda: doc_bytes() >= 8 * MiB, scaled(30), "8 MiB of the document")
    flash_id = a.send("hlpeer", "FLASH", precedence="flash")
    time.sleep(0.5)                 # the daemon notices the new message
    at_send = doc_bytes()
    peer.wait(lambda: any(m.id_hex == flash_id for m in peer.in_msgs.values()), scaled(30),
              "the FLASH message")
    behind = doc_bytes() - at_send
    print(f"FLASH arrived after {behind / MiB:.2f} MiB more of the document")
    assert doc_bytes() < 64 * MiB, "the FLASH message waited for the whole document"
    assert behind <= 4 * MiB, f"the FLASH message waited behind {behind / MiB:.1f} MiB of chunks"
    peer.wait(lambda: any(m.id_hex == doc_id and m.visible for m in peer.in_msgs.values()),
              scaled(60), "the document")
    assert peer.violations == []
