"""`record verify` and `record show` on a record from an adversary
(docs/record.md section 2.8): memory must not grow with the file.

The record here is 64 MiB of the smallest entries the format allows
(recordgen.py): 16.7 million of them.  Holding anything per entry costs a
gigabyte (the old reader took 1.1 GiB to verify it and 1.25 GiB to show
it).  The readers must stay within a few MiB whatever the file, measured
as the child's peak resident set (wait4), and still give the same answer.
"""
import os
import subprocess
import threading

import pytest

from station import HOTLINE_BIN, scaled

SANITIZED = os.environ.get("HOTLINE_SANITIZE", "0") in ("1", "ON", "TRUE", "true")
# The sanitizers' runtime and shadow memory come on top of hotline's own.
RSS_BOUND_KIB = (192 if SANITIZED else 48) * 1024


def run_measured(args, timeout):
    """Runs ARGS with stdout to /dev/null, killed after TIMEOUT seconds;
    (exit status, stderr, its peak resident set in KiB)."""
    with open(os.devnull, "wb") as null:
        proc = subprocess.Popen(args, stdout=null, stderr=subprocess.PIPE)
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        try:
            err = proc.stderr.read()
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            killer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    assert proc.returncode != -9, f"{args[1:3]} did not finish within {timeout:.0f}s"
    return proc.returncode, err.decode(errors="replace"), usage.ru_maxrss


def test_verify_in_bounded_memory(hostile):
    path, cards = hostile
    rc, err, rss = run_measured([HOTLINE_BIN, "record", "verify", path, "--card", cards[0],
                                 "--card", cards[1]], scaled(120))
    assert rc == 1 and "alpha's entry 1: an item of a kind this hotline does not know" in err, err
    assert rss < RSS_BOUND_KIB, f"record verify peaked at {rss // 1024} MiB on a 64 MiB record"


@pytest.mark.slow
def test_show_in_bounded_memory(hostile):
    path, _ = hostile
    rc, err, rss = run_measured([HOTLINE_BIN, "record", "show", path], scaled(300))
    assert rc == 1, err
    assert rss < RSS_BOUND_KIB, f"record show peaked at {rss // 1024} MiB on a 64 MiB record"
