"""A full disk at the receiver (a full disk gets a clear error and loses
nothing; docs/messages.md section 4).

pyongyang's station directory lives on its own 64 MiB tmpfs (mounted by the
test, unmounted at teardown).  A filler file leaves about 6 MiB free, then
washington sends a 24 MiB attachment.  Two ways to meet the full disk: with
the default DiskReserve the receiver sees at once that the message cannot
fit (a temporary refusal, code 7); with DiskReserve = 0 it starts writing
and runs into ENOSPC.  While the disk is full the message
must not be acknowledged as delivered, must not appear in the inbox (nothing
stored half), the daemon must stay up and tell its operator (log and
`status`).  Once the filler is removed, delivery must resume by itself — no
restart, no command — and complete with the right hash, leaving no partial
file behind.
"""
import json
import os
import re
import time

import pytest

import hlpeer
from station import scaled, wait_for

MiB = 1 << 20
DISK_WORDS = re.compile(r"no space|ENOSPC|disk|full|quota|reserve|storage", re.I)


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


@pytest.mark.slow
@pytest.mark.parametrize("reserve", ["default", "0"])
def test_full_disk_delays_but_never_loses_or_half_stores(net, tmp_path, reserve):
    mnt = net.tmpfs(str(tmp_path / "bdisk"), "64m")
    options = {} if reserve == "default" else {"DiskReserve": reserve}
    a, b, _ = net.pair(b_dir=os.path.join(mnt, "pyongyang"), **options)
    first = a.send("pyongyang", "before the disk fills")
    a.wait_delivered([first], scaled(30))

    filler = os.path.join(mnt, "filler")
    with open(filler, "wb") as f:
        block = b"\0" * MiB
        while free_bytes(mnt) > 7 * MiB:
            f.write(block)
            f.flush()
    assert 4 * MiB < free_bytes(mnt) <= 7 * MiB
    doc = tmp_path / "doc.bin"
    data = os.urandom(24 * MiB)
    doc.write_bytes(data)
    log_before = len(b.log_text())
    mid = a.send("pyongyang", "does not fit", attach=[str(doc)])

    wait_for(lambda: DISK_WORDS.search(b.log_text()[log_before:]), scaled(30),
             "pyongyang's log to say the disk is full")
    wait_for(lambda: DISK_WORDS.search(json.dumps(b.status())), scaled(5),
             "pyongyang's status to tell its operator that the disk is full")
    end = time.monotonic() + 3
    while time.monotonic() < end:
        assert a.outbox_states()[mid] != "delivered", "delivered while it could not be stored"
        assert mid not in {m["id"] for m in b.inbox()}, "a message half stored is in the inbox"
        time.sleep(0.5)
    b.assert_alive()

    os.unlink(filler)
    a.wait_delivered([mid], scaled(120), "delivery to resume by itself once space returned")
    got = [m for m in b.inbox() if m["id"] == mid]
    assert len(got) == 1
    assert got[0]["attachments"][0]["hash"] == hlpeer.doc_hash(data).hex()
    leftovers = [f for r, _, fs in os.walk(b.dir) for f in fs if f.endswith(".part")]
    assert leftovers == [], f"partial files left: {leftovers}"
    save = tmp_path / "save"
    save.mkdir()
    b.cmd("read", mid, "--save", str(save))
    assert (save / "doc.bin").read_bytes() == data
