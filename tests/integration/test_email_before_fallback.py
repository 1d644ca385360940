"""Before the fallback only FLASH goes by mail (docs/bundle.md section 8,
"Automatic fallback", rules 2 to 4).

While an outage is younger than FallbackAfter, a mail carries FLASH items
(FLASH messages, receipts, checks, answers, agreements) and the ACK, and
nothing of lower precedence: a ROUTINE message queued before or after a
FLASH one waits for the fallback (or for the link), however many FLASH
items and receipts cross by mail meanwhile.  Once the outage is
FallbackAfter old, everything goes.
"""
import time

import pytest

from station import scaled, wait_for
from mailutil import email_pair, inbox_ids

FALLBACK_S = 30


@pytest.mark.slow
def test_only_flash_goes_by_mail_before_the_fallback(net, mailserver):
    a, b, proxy, srv = email_pair(net, mailserver, f"{FALLBACK_S}s")
    proxy.refuse_new = True
    proxy.drop_all()
    wait_for(lambda: a.peer_status("beta")["paths"]["tcp"]["state"] == "down", scaled(15),
             "alpha: link down")
    cut = time.monotonic()
    routine = [a.send("beta", "routine, before the flash")]
    flash = a.send("beta", "urgent", precedence="flash")
    wait_for(lambda: flash in inbox_ids(b), scaled(40), "the FLASH message at beta by mail")
    # queued now, it would ride on the mail that acknowledges beta's receipt
    routine.append(a.send("beta", "routine, after the flash", precedence="immediate"))
    wait_for(lambda: a.outbox_states()[flash] == "delivered", scaled(40),
             "beta's receipt for the FLASH message at alpha by mail")
    # the mails that crossed meanwhile (and alpha's ACK of beta's receipt) carried none
    while time.monotonic() - cut < FALLBACK_S - 8:
        assert not set(routine) & set(inbox_ids(b)), \
            f"a non-FLASH message reached beta {time.monotonic() - cut:.1f}s after the cut"
        time.sleep(0.5)
    if time.monotonic() - cut > FALLBACK_S - 5:
        pytest.fail("the FLASH round trip took too long to tell anything (machine too slow)")
    wait_for(lambda: set(routine) <= set(inbox_ids(b)), scaled(40) + FALLBACK_S,
             "the other messages at beta after the fallback")
    assert time.monotonic() - cut >= FALLBACK_S
    assert proxy.accepted == 1
