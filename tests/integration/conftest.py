"""conftest.py — every pytest fixture of the integration tests, and the
session hooks (umask, HOTLINE_BIN check, HOTLINE_SHARD=K/N).

`net`, `stations` and `daemons` are each a station.Net (station.py says
what a test author uses): station directories in the test's tmp_path, and
every daemon, process, proxy, hlpeer session and mount a test started is
stopped or undone at teardown, pass or fail (SIGTERM, then SIGKILL).  A
daemon log holding a sanitizer report fails the test at teardown, and a
failed test shows the tail of every daemon's log.  `mailserver` is a
private Postfix (mailutil.py).  The fixtures after those serve a few test
files each (pair, probed, chain, mailpair, hostile, staged); a test file
defines none of its own.
"""

import os
import subprocess

import pytest

import mailutil
from recordgen import tiny_entries_record
from station import HOTLINE_BIN, ITEM_PATHS, Net, ProbedPair


def pytest_sessionstart(session):
    # Files the tests write into a station (station.conf edits, renamed
    # replacements) must not be group-writable whatever umask the test run
    # inherited: every command refuses a station others could change
    # (src/conf/perms.c).
    os.umask(0o022)
    if not os.access(HOTLINE_BIN, os.X_OK):
        raise pytest.UsageError(f"HOTLINE_BIN {HOTLINE_BIN!r} is not an executable; "
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


def _net_fixture(request, net):
    """Yields NET; at teardown stops and undoes everything it started, prints
    the daemons' log tails when the test failed, and fails the test on a
    problem (a daemon that would not stop, a sanitizer report)."""
    try:
        yield net
    finally:
        problems = net.teardown()
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for st in net.stations:
                print(f"----- {st.name} log ({st.log_path}), last lines -----")
                print(st.log_tail(60))
        if problems:
            pytest.fail("teardown: " + "\n".join(problems))


@pytest.fixture
def net(tmp_path, request):
    """A station.Net in the test's tmp_path: stations, daemons, proxies,
    hlpeer sessions, mounts, all undone at teardown, pass or fail."""
    yield from _net_fixture(request, Net(tmp_path))


@pytest.fixture
def stations(tmp_path, request):
    """The same as `net`, under the name the station tests use."""
    yield from _net_fixture(request, Net(tmp_path))


@pytest.fixture
def daemons(tmp_path, request):
    """A Net for the daemon tests: daemons run with --verbose, pair() makes
    alpha and bravo, and a daemon that exits non-zero on the SIGTERM of
    teardown fails the test."""
    yield from _net_fixture(request, Net(tmp_path, names=("alpha", "bravo"), verbose=True,
                                         check_exit=True))


@pytest.fixture
def mailserver(request):
    """A factory of private Postfix instances (mailutil.MailServer):
    mailserver("alpha", "beta") starts one with those mailboxes.  Teardown
    stops every server and removes its folder, adopted stations too: ask
    for `mailserver` before the stations' fixture, so that their daemons are
    stopped first.  Skips the test (saying why) without root or Postfix."""
    reason = mailutil.skip_reason()
    if reason:
        pytest.skip(f"SKIPPED LOUDLY: no real mail server: {reason}")
    servers = []

    def make(*users):
        srv = mailutil.MailServer(users)
        servers.append(srv)
        return srv.start()

    yield make
    for srv in servers:
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            print(f"--- maillog of {srv.root}:\n{srv.log()[-4000:]}")
        srv.stop()
        srv.cleanup()


# ---------------------------------------------- what some test files share

@pytest.fixture
def pair(stations):
    """alpha and beta, pinned to each other, daemons not started."""
    return stations.pair("alpha", "beta", start=False)[:2]


@pytest.fixture
def probed(stations):
    """A station.ProbedPair: washington and pyongyang linked, and a probe
    identity washington pinned (test_misbehaving_peers.py)."""
    return ProbedPair(stations)


@pytest.fixture(params=ITEM_PATHS, ids=lambda p: p.name)
def chain(request, net):
    """Station pyongyang with an hlpeer pinned (no automatic receipts), and
    the path the hlpeer's items take to it: the live link or a courier
    bundle (station.LinkPath, station.BundlePath); each test runs once per
    path."""
    st = net.station("pyongyang")
    peer = net.hlpeer_pinned(st, auto_receipt=False)
    return request.param(net, st, peer)


@pytest.fixture
def mailpair(stations, mailserver):
    """alpha and beta pinned to each other, each with an [Email] section on
    a private mail server and an Email for the other; not started.
    Returns (alpha, beta, server)."""
    a, b, _ = stations.pair("alpha", "beta", start=False)
    srv = mailserver("alpha", "beta")
    mailutil.add_email(a, srv, "alpha", "beta")
    mailutil.add_email(b, srv, "beta", "alpha")
    return a, b, srv


@pytest.fixture(scope="module")
def hostile(tmp_path_factory):
    """A 64 MiB record of more than 16 million tiny entries and the cards of
    its two stations (recordgen.py), made once per test file."""
    d = tmp_path_factory.mktemp("hostile-record")
    path = str(d / "tiny.rec")
    cards, n = tiny_entries_record(path, 64 << 20)
    paths = []
    for i, c in enumerate(cards):
        p = d / f"card{i}"
        p.write_bytes(c)
        paths.append(str(p))
    assert n > 16_000_000
    return path, paths


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """`cmake --install` of the build HOTLINE_BIN belongs to, under a
    DESTDIR with prefix /usr, once per test file."""
    build = os.path.dirname(os.path.abspath(HOTLINE_BIN))
    if not os.path.exists(os.path.join(build, "CMakeCache.txt")):
        pytest.skip(f"SKIPPED LOUDLY: {build} is not a CMake build directory")
    stage = tmp_path_factory.mktemp("stage")
    env = dict(os.environ, DESTDIR=str(stage))
    p = subprocess.run(["cmake", "--install", build, "--prefix", "/usr"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return stage
