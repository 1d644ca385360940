"""conftest.py — pytest fixtures shared by every integration test.

`stations` makes station directories in the test's tmp_path and guarantees
that every daemon a test started is stopped at teardown, pass or fail
(SIGTERM, then SIGKILL).  A daemon log holding a sanitizer report fails the
test at teardown, and a failed test shows the tail of every daemon's log.
"""

import os
import signal

import pytest

import helpers


def pytest_sessionstart(session):
    # Files the tests write into a station (station.conf edits, renamed
    # replacements) must not be group-writable whatever umask the test run
    # inherited: every command refuses a station others could change
    # (src/conf/perms.c).
    os.umask(0o022)
    if not os.access(helpers.HOTLINE_BIN, os.X_OK):
        raise pytest.UsageError(f"HOTLINE_BIN {helpers.HOTLINE_BIN!r} is not an executable; "
                                f"build first (make) or set HOTLINE_BIN")


def pytest_collection_modifyitems(config, items):
    # HOTLINE_SHARD=K/N (CMakeLists.txt splits the longest files into N
    # ctest entries): this run takes tests K, K+N, K+2N... of the file, in
    # collection order, and deselects the rest.
    shard = os.environ.get("HOTLINE_SHARD")
    if not shard:
        return
    try:
        k, n = (int(x) for x in shard.split("/"))
        if not 1 <= k <= n:
            raise ValueError
    except ValueError:
        raise pytest.UsageError(f"HOTLINE_SHARD {shard!r}: expected K/N with 1 <= K <= N")
    keep = [it for i, it in enumerate(items) if i % n == k - 1]
    config.hook.pytest_deselected(items=[it for it in items if it not in keep])
    items[:] = keep


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    # Keeps each phase's report on the item so fixtures can tell at teardown
    # whether the test failed.
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


class StationFactory:
    def __init__(self, root):
        self.root = root
        self.started = []      # every Station whose daemon was started
        self.made = []

    def __call__(self, name, init=True, **options):
        """A new station NAME under the test's tmp_path, `init`ed with a free
        127.0.0.1 port; OPTIONS are written to its [Station] section."""
        st = helpers.Station(self.root, name, registry=self.started)
        if init:
            st.init()
            for key, value in options.items():
                st.set_option(key, value)
        self.made.append(st)
        return st

    def pair(self, a="washington", b="pyongyang", start=True, **options):
        """Two stations that pinned each other (fingerprints checked), both
        with an Address so both dial; started and linked when START."""
        sa, sb = self(a, **options), self(b, **options)
        sa.pin(sb)
        sb.pin(sa)
        if start:
            sa.start()
            sb.start()
            sa.wait_connected(b)
            sb.wait_connected(a)
        return sa, sb

    def teardown(self):
        problems = []
        for st in self.started:
            try:
                st.stop(signal.SIGTERM)
            except AssertionError as exc:
                problems.append(str(exc))
            finally:
                st.kill()
        for st in self.made:
            reports = st.sanitizer_reports()
            if reports:
                problems.append(f"{st.name}: sanitizer report in {st.log_path}:\n"
                                + "\n".join(reports[:10]) + "\n" + st.log_tail(60))
        return problems


@pytest.fixture
def stations(tmp_path, request):
    factory = StationFactory(tmp_path)
    try:
        yield factory
    finally:
        problems = factory.teardown()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for st in factory.made:
                print(f"----- {st.name} log ({st.log_path}), last lines -----")
                print(st.log_tail(60))
        if problems:
            pytest.fail("\n".join(problems))
