"""Integration tests for the station commands: init, card, peer add/list/remove.

Runs the real binary (env HOTLINE_BIN) against station directories under
pytest's tmp_path.  Every refused `peer add` must exit 1 with one clear line
on stderr and leave station.conf byte-identical; usage errors exit 2; no
command ever prints a private key.
"""
import base64
import os
import re
import stat
import subprocess

import pytest

from station import HOTLINE_BIN as BIN
FP_RE = re.compile(r"Fingerprint: (\d{5}(?: \d{5}){7})")


def run(station, *args, stdin=None):
    """Runs hotline -d STATION ARGS; returns the CompletedProcess (text)."""
    cmd = [BIN]
    if station is not None:
        cmd += ["-d", str(station)]
    proc = subprocess.run(cmd + [str(a) for a in args], input=stdin,
                          capture_output=True, text=True, timeout=60)
    run.outputs.append(proc.stdout + proc.stderr)
    return proc


run.outputs = []


def init(tmp_path, name, *extra):
    d = tmp_path / name
    p = run(d, "init", name, *extra)
    assert p.returncode == 0, p.stderr
    m = FP_RE.search(p.stdout)
    assert m, p.stdout
    return d, m.group(1)


def card(station, path):
    p = run(station, "card")
    assert p.returncode == 0, p.stderr
    path.write_text(p.stdout)
    return p.stdout


def private_keys(station):
    """The base64 private keys from identity.key: the current two and the
    next two (docs/rotation.md)."""
    text = (station / "identity.key").read_text()
    keys = re.findall(r"^\s*\w+PrivateKey\s*=\s*(\S+)\s*$", text, re.M)
    assert len(keys) == 4, text
    for k in keys:
        assert len(base64.b64decode(k, validate=True)) == 32
    return keys


def two_stations(tmp_path):
    """Two fresh stations and their cards; the outputs recorded so far are
    forgotten (run.outputs: what this test's commands printed)."""
    run.outputs = []
    w, wfp = init(tmp_path, "washington", "--listen", "127.0.0.1:7100")
    p, pfp = init(tmp_path, "pyongyang", "--listen", "127.0.0.1:7200")
    wcard, pcard = tmp_path / "w.card", tmp_path / "p.card"
    card(w, wcard)
    card(p, pcard)
    return {"w": w, "wfp": wfp, "p": p, "pfp": pfp, "wcard": wcard, "pcard": pcard,
            "tmp": tmp_path}


def refused(station, *args, needle, stdin=None):
    """Asserts a refused command: exit 1, one line naming NEEDLE, no change."""
    conf = station / "station.conf"
    before = conf.read_bytes()
    p = run(station, *args, stdin=stdin)
    assert p.returncode == 1, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert needle in lines[0], p.stderr
    assert conf.read_bytes() == before
    return lines[0]


def test_init_creates_station(tmp_path):
    d, fp = init(tmp_path, "washington", "--listen", "127.0.0.1:7100")
    assert stat.S_IMODE((d / "identity.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(d.stat().st_mode) == 0o700
    conf = (d / "station.conf").read_text()
    assert "Name = washington" in conf
    assert "Listen = 127.0.0.1:7100" in conf
    text = card(d, tmp_path / "c")
    assert text.startswith("[Station]\nName = washington\n")
    assert "Address = 127.0.0.1:7100\n" in text
    assert re.search(r"^NoiseKey = [A-Za-z0-9+/]{43}=$", text, re.M)
    assert re.search(r"^SigningKey = [A-Za-z0-9+/]{43}=$", text, re.M)
    assert re.search(r"^NextKeyHash = [A-Za-z0-9+/]{43}=$", text, re.M)


def test_init_default_listen_has_no_card_address(tmp_path):
    d, _ = init(tmp_path, "a")
    assert "Listen = 0.0.0.0:7100" in (d / "station.conf").read_text()
    assert "Address" not in run(d, "card").stdout
    d2, _ = init(tmp_path, "b", "--address", "192.0.2.7:7100")
    assert "Address = 192.0.2.7:7100\n" in run(d2, "card").stdout


def test_init_refuses_existing_station(tmp_path):
    d, _ = init(tmp_path, "washington")
    key = (d / "identity.key").read_bytes()
    conf = (d / "station.conf").read_bytes()
    p = run(d, "init", "other")
    assert p.returncode == 1
    assert "not overwriting" in p.stderr
    assert (d / "identity.key").read_bytes() == key
    assert (d / "station.conf").read_bytes() == conf
    # Either file alone is enough to refuse, and nothing is left behind.
    (d / "station.conf").unlink()
    assert run(d, "init", "other").returncode == 1
    assert not (d / "station.conf").exists()
    assert (d / "identity.key").read_bytes() == key


def test_init_in_existing_empty_dir(tmp_path):
    d = tmp_path / "s"
    d.mkdir()
    p = run(d, "init", "s")
    assert p.returncode == 0, p.stderr
    assert (d / "identity.key").exists()


def strace_works():
    try:
        return subprocess.run(["strace", "-qq", "-o", "/dev/null", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def test_init_failure_leaves_nothing(tmp_path):
    # The parent directory does not exist: nothing may be created.
    d = tmp_path / "missing" / "s"
    p = run(d, "init", "s")
    assert p.returncode == 1
    assert "missing" in p.stderr
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize("syscall,made", [
    ("fsync", "identity.key"),   # the identity cannot be made durable
    ("link", "station.conf"),    # station.conf cannot be put in place
])
def test_init_fault_leaves_no_half_station(tmp_path, syscall, made):
    """A failure at any step removes what init created (fault injected with
    strace, so the real binary runs unmodified)."""
    if not strace_works():
        pytest.skip("strace cannot trace here (needed for fault injection)")
    # LeakSanitizer cannot run under ptrace; the rest of ASan can.
    env = dict(os.environ)
    env["ASAN_OPTIONS"] = (env.get("ASAN_OPTIONS", "") + ":detect_leaks=0").lstrip(":")
    d = tmp_path / "s"
    p = subprocess.run(["strace", "-qq", "-f", "-o", "/dev/null", "-e", "trace=" + syscall,
                        "-e", "inject=%s:error=EIO:when=1" % syscall,
                        BIN, "-d", str(d), "init", "s"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1, p.stderr
    assert made in p.stderr and "Input/output error" in p.stderr
    assert not d.exists(), list(d.iterdir())
    # The same with a directory that already existed: it stays, empty.
    d.mkdir()
    p = subprocess.run(["strace", "-qq", "-f", "-o", "/dev/null", "-e", "trace=" + syscall,
                        "-e", "inject=%s:error=EIO:when=1" % syscall,
                        BIN, "-d", str(d), "init", "s"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 1
    assert list(d.iterdir()) == []
    # And without the fault, init then works there.
    assert run(d, "init", "s").returncode == 0


def test_exchange_cards_and_pin(tmp_path):
    two = two_stations(tmp_path)
    w, p = two["w"], two["p"]
    a = run(w, "peer", "add", two["pcard"], "--fingerprint", two["pfp"])
    assert a.returncode == 0, a.stderr
    assert "pyongyang" in a.stdout and two["pfp"] in a.stdout
    # From stdin, fingerprint typed with dashes and without spaces
    fp = two["wfp"].replace(" ", "-")
    b = run(p, "peer", "add", "-", "--fingerprint", fp, stdin=two["wcard"].read_text())
    assert b.returncode == 0, b.stderr
    lw = run(w, "peer", "list")
    assert lw.returncode == 0
    assert lw.stdout == "pyongyang\t%s\t127.0.0.1:7200\n" % two["pfp"]
    lp = run(p, "peer", "list")
    assert lp.stdout == "washington\t%s\t127.0.0.1:7100\n" % two["wfp"]


def test_options_after_positional_and_address_override(tmp_path):
    two = two_stations(tmp_path)
    w = two["w"]
    a = run(w, "peer", "add", "--address", "[::1]:7200", two["pcard"], "--fingerprint", two["pfp"])
    assert a.returncode == 0, a.stderr
    assert run(w, "peer", "list").stdout.endswith("\t[::1]:7200\n")
    assert "Address = [::1]:7200" in (w / "station.conf").read_text()


def test_wrong_fingerprint_refused(tmp_path):
    two = two_stations(tmp_path)
    wrong = "12345 67890 12345 67890 12345 67890 12345 67890"
    line = refused(two["w"], "peer", "add", two["pcard"], "--fingerprint", wrong,
                   needle="fingerprint mismatch")
    # What was given is quoted; the card's own fingerprint is not shown, so it
    # cannot be copied into the next attempt: the line says where to get it.
    assert wrong in line and two["pfp"] not in line, line
    assert "does not have the fingerprint you gave" in line, line
    assert "'hotline card' or 'hotline status'" in line and "channel you trust" in line, line
    # The other station's fingerprint is wrong for this card too.
    refused(two["w"], "peer", "add", two["pcard"], "--fingerprint", two["wfp"],
            needle="fingerprint mismatch")


def test_duplicate_name_refused(tmp_path):
    two = two_stations(tmp_path)
    w = two["w"]
    assert run(w, "peer", "add", two["pcard"], "--trust-without-checking").returncode == 0
    # Another station that calls itself pyongyang too
    other, _ = init(tmp_path, "other")
    text = run(other, "card").stdout.replace("Name = other", "Name = pyongyang")
    refused(w, "peer", "add", "-", "--trust-without-checking", stdin=text,
            needle="a peer named 'pyongyang' is already pinned")
    # The very same card again
    refused(w, "peer", "add", two["pcard"], "--fingerprint", two["pfp"], needle="already pinned")


def test_same_key_other_name_refused(tmp_path):
    two = two_stations(tmp_path)
    w = two["w"]
    assert run(w, "peer", "add", two["pcard"], "--trust-without-checking").returncode == 0
    text = two["pcard"].read_text().replace("Name = pyongyang", "Name = impostor")
    refused(w, "peer", "add", "-", "--trust-without-checking", stdin=text,
            needle="already pinned as peer 'pyongyang'")
    # One key of the pinned peer mixed with a fresh station's other key
    fresh, _ = init(two["tmp"], "fresh")
    fcard = run(fresh, "card").stdout
    sk = re.search(r"^SigningKey = .*$", two["pcard"].read_text(), re.M).group(0)
    mixed = re.sub(r"^SigningKey = .*$", sk, fcard, flags=re.M)
    refused(w, "peer", "add", "-", "--trust-without-checking", stdin=mixed,
            needle="SigningKey is already pinned as peer 'pyongyang'")


def test_own_card_refused(tmp_path):
    two = two_stations(tmp_path)
    refused(two["w"], "peer", "add", two["wcard"], "--fingerprint", two["wfp"],
            needle="cannot pin itself")


@pytest.mark.parametrize("text,needle", [
    ("", "no [Station] section"),
    ("hello\n", "stdin:1:"),
    ("[Station]\nName = x\n", "has no NoiseKey"),
    ("[Station]\nName = BAD\nNoiseKey = x\nSigningKey = y\n", "stdin:2: bad Name 'BAD'"),
    ("[Station]\nName = x\nNoiseKey = AAAA\nSigningKey = AAAA\n", "stdin:3: bad NoiseKey 'AAAA'"),
    ("[Peer]\nName = x\n", "stdin:1: unknown section '[Peer]'"),
    ("[Station]\nName = x\x1b[2J\n", "control character"),
    ("#" * 5000 + "\n", "larger than"),
])
def test_malformed_card_refused(tmp_path, text, needle):
    two = two_stations(tmp_path)
    line = refused(two["w"], "peer", "add", "-", "--trust-without-checking", stdin=text,
                   needle=needle)
    assert "\x1b" not in line


def test_card_with_extra_key_refused(tmp_path):
    two = two_stations(tmp_path)
    text = two["pcard"].read_text() + "Listen = 1.2.3.4:5\n"
    refused(two["w"], "peer", "add", "-", "--trust-without-checking", stdin=text,
            needle="unknown key 'Listen'")


def test_card_file_missing(tmp_path):
    two = two_stations(tmp_path)
    refused(two["w"], "peer", "add", two["tmp"] / "nope.card", "--trust-without-checking",
            needle="nope.card")


def test_remove(tmp_path):
    two = two_stations(tmp_path)
    w = two["w"]
    before = (w / "station.conf").read_bytes()
    assert run(w, "peer", "add", two["pcard"], "--trust-without-checking").returncode == 0
    r = run(w, "peer", "remove", "pyongyang")
    assert r.returncode == 0, r.stderr
    assert run(w, "peer", "list").stdout == ""
    assert (w / "station.conf").read_bytes() == before
    refused(w, "peer", "remove", "pyongyang", needle="no peer named 'pyongyang'")
    # Pinned again after removal
    assert run(w, "peer", "add", two["pcard"], "--trust-without-checking").returncode == 0


def test_comments_survive_edits(tmp_path):
    two = two_stations(tmp_path)
    w = two["w"]
    conf = w / "station.conf"
    conf.write_text(conf.read_text() + "# our note; keep = this\n")
    assert run(w, "peer", "add", two["pcard"], "--trust-without-checking").returncode == 0
    assert "# our note; keep = this\n" in conf.read_text()
    assert run(w, "peer", "remove", "pyongyang").returncode == 0
    assert "# our note; keep = this\n" in conf.read_text()


def test_bad_station_conf_is_reported_with_line(tmp_path):
    two = two_stations(tmp_path)
    w = two["w"]
    conf = w / "station.conf"
    conf.write_text(conf.read_text() + "Keepalive = soon\n")
    p = run(w, "card")
    assert p.returncode == 1
    assert re.search(r"station\.conf:\d+: bad Keepalive 'soon'", p.stderr), p.stderr
    refused(w, "peer", "add", two["pcard"], "--trust-without-checking",
            needle="bad Keepalive 'soon'")


def test_no_station(tmp_path):
    for args in (["card"], ["peer", "list"], ["peer", "remove", "x"]):
        p = run(tmp_path / "none", *args)
        assert p.returncode == 1, args
        assert "hotline init" in p.stderr


def test_private_keys_never_printed(tmp_path):
    two = two_stations(tmp_path)
    w, p = two["w"], two["p"]
    run(w, "peer", "add", two["pcard"], "--fingerprint", two["pfp"])
    run(p, "peer", "add", two["wcard"], "--trust-without-checking")
    run(w, "peer", "add", two["pcard"], "--trust-without-checking")
    run(w, "peer", "add", two["wcard"], "--trust-without-checking")
    run(w, "peer", "add", "-", "--trust-without-checking", stdin=(w / "identity.key").read_text())
    run(w, "peer", "add", w / "identity.key", "--trust-without-checking")
    run(w, "peer", "list")
    run(w, "card")
    run(w, "init", "again")
    run(w, "--help")
    run(w, "peer", "remove", "pyongyang")
    out = "".join(run.outputs)
    assert "pyongyang" in out  # the outputs were captured
    for station in (w, p):
        for key in private_keys(station):
            assert key not in out
            # nor its raw bytes' hex
            assert base64.b64decode(key).hex() not in out


@pytest.mark.parametrize("args", [
    ["init"],
    ["init", "a", "b"],
    ["init", "Bad"],
    ["init", "a", "--listen", "nowhere"],
    ["init", "a", "--address", "1.2.3.4"],
    ["init", "a", "--listen"],
    ["init", "a", "--bogus"],
    ["card", "extra"],
    ["card", "--bogus"],
    ["peer"],
    ["peer", "frobnicate"],
    ["peer", "add"],
    ["peer", "add", "a", "b"],
    ["peer", "add", "x.card", "--fingerprint", "123"],
    ["peer", "add", "x.card", "--address", "nowhere"],
    ["peer", "add", "x.card", "--fingerprint"],
    ["peer", "add", "x.card"],      # neither a fingerprint nor an explicit choice
    ["peer", "add", "x.card", "--fingerprint", "1" * 40, "--trust-without-checking"],
    ["peer", "list", "extra"],
    ["peer", "remove"],
    ["peer", "remove", "a", "b"],
])
def test_usage_errors_exit_2(tmp_path, args):
    p = run(tmp_path / "s", *args)
    assert p.returncode == 2, (args, p.stdout, p.stderr)
    assert p.stderr.startswith("hotline "), p.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("args", [
    ["init", "--help"], ["card", "--help"], ["peer", "--help"], ["peer", "add", "--help"],
    ["peer", "list", "--help"], ["peer", "remove", "--help"],
])
def test_help(tmp_path, args):
    p = run(tmp_path / "s", *args)
    assert p.returncode == 0
    assert p.stdout.startswith("usage: hotline ")
    assert not (tmp_path / "s").exists()


# ---- a new operator's first hour (issue 11, section 6) ----

def test_peer_add_needs_a_fingerprint_or_an_explicit_choice(tmp_path):
    two = two_stations(tmp_path)
    w = two["w"]
    conf = (w / "station.conf").read_bytes()
    p = run(w, "peer", "add", two["pcard"])
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert "--fingerprint" in p.stderr and "--trust-without-checking" in p.stderr, p.stderr
    assert (w / "station.conf").read_bytes() == conf
    assert run(w, "peer", "list").stdout == ""
    # Choosing to trust without checking is allowed, and said again.
    p = run(w, "peer", "add", two["pcard"], "--trust-without-checking")
    assert p.returncode == 0, p.stderr
    assert "NOT CHECKED" in p.stdout and two["pfp"] in p.stdout, p.stdout


def test_card_and_status_show_the_station_fingerprint(tmp_path):
    two = two_stations(tmp_path)
    w, wfp = two["w"], two["wfp"]
    p = run(w, "card")
    assert p.returncode == 0, p.stderr
    assert wfp not in p.stdout          # stdout is exactly the card
    assert p.stdout == two["wcard"].read_text()
    assert p.stderr == "Fingerprint: %s\n" % wfp
    p = run(w, "card", "--fingerprint")
    assert p.returncode == 0 and p.stdout == wfp + "\n", (p.stdout, p.stderr)
    # status, with no daemon: the fingerprint, and exit 3 (not running)
    p = run(w, "status")
    assert p.returncode == 3, (p.returncode, p.stderr)
    assert ("fingerprint %s" % wfp) in p.stdout.splitlines()[1], p.stdout


NO_STATION = [
    ["card"], ["peer", "list"], ["peer", "remove", "x"],
    ["peer", "add", "x.card", "--trust-without-checking"],
    ["run"], ["status"], ["status", "--json"], ["send", "p", "hello"], ["send", "p"],
    ["inbox"], ["outbox"], ["read", "0123456789abcdef"], ["watch"], ["check", "p"],
    ["answer"], ["agree", "list"], ["agree", "sign", "0123456789abcdef"],
    ["agree", "propose", "p", "f"], ["record", "export", "p", "-o", "r"],
    ["bundle", "export", "p", "-o", "b"], ["bundle", "import", "b"],
    ["purge", "--before", "2020-01-01", "--yes"], ["backup", "somewhere"],
]


@pytest.mark.parametrize("args", NO_STATION)
def test_missing_station_one_message_in_every_command(tmp_path, args):
    d = tmp_path / "none"
    p = subprocess.run([os.path.abspath(BIN), "-d", str(d)] + args, input="", capture_output=True, text=True,
                       timeout=60, cwd=tmp_path)
    assert p.returncode == 1, (args, p.returncode, p.stdout, p.stderr)
    lines = p.stderr.splitlines()
    assert len(lines) == 1, (args, p.stderr)
    assert lines[0].endswith(": no station at %s (create one with 'hotline init NAME')" % d), \
        (args, lines[0])
    assert lines[0].startswith("hotline "), lines[0]
    assert p.stdout == "", (args, p.stdout)
    assert not d.exists()


COMMANDS = ["init", "card", "peer", "run", "status", "send", "inbox", "outbox", "read",
            "watch", "check", "answer", "agree", "record", "bundle", "purge", "backup", "help"]


@pytest.mark.parametrize("cmd", COMMANDS)
def test_help_for_every_command(tmp_path, cmd):
    d = tmp_path / "s"
    a = run(d, cmd, "--help")
    assert a.returncode == 0, (cmd, a.stderr)
    assert a.stdout.startswith("usage: hotline "), (cmd, a.stdout)
    b = run(d, "help", cmd)
    assert b.returncode == 0, (cmd, b.stderr)
    assert b.stdout == a.stdout, cmd
    assert not d.exists()


@pytest.mark.parametrize("args", [
    ["peer", "add", "--help"], ["peer", "list", "--help"], ["peer", "remove", "--help"],
    ["agree", "sign", "--help"], ["agree", "list", "--help"], ["agree", "propose", "--help"],
    ["record", "export", "--help"], ["record", "verify", "--help"], ["record", "show", "--help"],
    ["bundle", "export", "--help"], ["bundle", "import", "--help"],
])
def test_help_for_subcommands(tmp_path, args):
    p = run(tmp_path / "s", *args)
    assert p.returncode == 0, (args, p.stderr)
    assert p.stdout.startswith("usage: hotline "), (args, p.stdout)


def test_help_command(tmp_path):
    p = run(tmp_path / "s", "help")
    assert p.returncode == 0 and p.stdout.startswith("usage: hotline "), p.stderr
    for cmd in COMMANDS:
        assert "\n  %s " % cmd in p.stdout, cmd
    assert p.stdout == run(tmp_path / "s", "--help").stdout
    p = run(tmp_path / "s", "help", "frobnicate")
    assert p.returncode == 2 and "unknown command 'frobnicate'" in p.stderr, p.stderr


def test_send_refuses_an_empty_message(tmp_path):
    two = two_stations(tmp_path)
    w = two["w"]
    assert run(w, "peer", "add", two["pcard"], "--fingerprint", two["pfp"]).returncode == 0
    for args, stdin in ((["send", "pyongyang"], ""), (["send", "pyongyang", ""], None),
                        (["send", "pyongyang", "-s", "subject only"], "")):
        p = run(w, *args, stdin=stdin if stdin is not None else "")
        assert p.returncode == 2, (args, p.returncode, p.stdout, p.stderr)
        assert "the message is empty" in p.stderr and "--allow-empty" in p.stderr, p.stderr
        assert p.stdout == ""
    assert run(w, "outbox", "--json").stdout.strip() == "[]"
    # Said explicitly, it goes.
    p = run(w, "send", "pyongyang", "--allow-empty", stdin="")
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(r"[0-9a-f]{32}\n", p.stdout), p.stdout
    # An attachment alone is not empty.
    f = two["tmp"] / "doc.txt"
    f.write_text("annex\n")
    p = run(w, "send", "pyongyang", "-a", f, stdin="")
    assert p.returncode == 0, p.stderr
