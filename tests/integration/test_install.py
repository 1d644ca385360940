"""`make install` (CMakeLists.txt): what it lays out, and that the
installed hotline finds the installed hotline-mail.

- `cmake --install BUILD --prefix /usr` with DESTDIR (what `make install
  PREFIX=/usr DESTDIR=...` runs after configuring) puts hotline,
  hotline-daemon (what `hotline run` becomes), hotline-mail and
  hotline-voice in usr/bin, the manual pages in usr/share/man, the docs in
  usr/share/doc/hotline and the systemd unit in usr/lib/systemd/system,
  its ExecStart naming /usr/bin/hotline;
- the staged hotline's `bundle mail` runs the staged hotline-mail (its
  message shows), and says it cannot run it once that is gone;
- `make -n install` passes PREFIX and an absolute DESTDIR on;
- the unit passes `systemd-analyze verify`, and the manual pages render
  without a groff warning (each skipped, loudly, where the tool is absent).
"""

import os
import shutil
import subprocess

import pytest

from station import HOTLINE_BIN, scaled

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(HOTLINE_BIN))


def test_layout(staged):
    progs = ("usr/bin/hotline", "usr/bin/hotline-daemon", "usr/bin/hotline-mail",
             "usr/bin/hotline-voice")
    want = [*progs,
            "usr/share/man/man1/hotline.1",
            "usr/share/man/man5/hotline.conf.5", "usr/lib/systemd/system/hotline@.service",
            "usr/share/doc/hotline/configuration.md", "usr/share/doc/hotline/cards.md",
            "usr/share/doc/hotline/json.md", "usr/share/doc/hotline/README.md"]
    for rel in want:
        assert os.path.isfile(staged / rel), f"{rel} not installed"
    for prog in progs:
        assert os.access(staged / prog, os.X_OK), prog
    with open(staged / "usr/lib/systemd/system/hotline@.service") as f:
        unit = f.read()
    assert "ExecStart=/usr/bin/hotline -d /var/lib/hotline/%i run" in unit
    p = subprocess.run([str(staged / "usr/bin/hotline"), "--version"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("hotline "), p


def test_installed_hotline_finds_installed_mailer(staged, stations, tmp_path):
    a, b = stations("alpha"), stations("beta")
    a.pin(b)
    b.pin(a)
    md = tmp_path / "Maildir"
    for d in ("new", "cur", "tmp"):
        (md / d).mkdir(parents=True)
    with open(a.conf_path, "a") as f:
        f.write("Email = beta@hotline.test\n\n[Email]\nSMTP = smtp://127.0.0.1:9\n"
                f"From = alpha@hotline.test\nMaildir = {md}\n")
    a.cmd("send", "beta", "by mail")
    env = {k: v for k, v in os.environ.items() if k != "HOTLINE_MAIL"}
    argv = [str(staged / "usr/bin/hotline"), "-d", a.dir, "bundle", "mail", "beta"]
    p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=scaled(60))
    # nothing listens on port 9: the staged hotline-mail ran and said so
    assert p.returncode == 1 and "hotline-mail: sending to beta@hotline.test" in p.stderr, \
        p.stderr
    os.rename(staged / "usr/bin/hotline-mail", staged / "usr/bin/hotline-mail.away")
    try:
        p = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=scaled(60))
        assert p.returncode == 1 and "cannot run" in p.stderr, p.stderr
    finally:
        os.rename(staged / "usr/bin/hotline-mail.away", staged / "usr/bin/hotline-mail")


def test_make_install_passes_prefix_and_destdir(tmp_path):
    p = subprocess.run(["make", "-n", "-C", REPO, "install", "PREFIX=/usr", "DESTDIR=stage"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert "-DCMAKE_INSTALL_PREFIX=/usr" in p.stdout, p.stdout
    assert f"DESTDIR={REPO}/stage" in p.stdout and "--install build" in p.stdout, p.stdout


def test_unit_verifies(staged, tmp_path):
    tool = shutil.which("systemd-analyze")
    if not tool:
        pytest.skip("SKIPPED LOUDLY: systemd-analyze is absent (Debian's systemd package)")
    with open(staged / "usr/lib/systemd/system/hotline@.service") as f:
        unit = f.read().replace("/usr/bin/hotline", str(staged / "usr/bin/hotline"))
    path = tmp_path / "hotline@.service"
    path.write_text(unit)
    p = subprocess.run([tool, "verify", "--man=no", str(tmp_path / "hotline@washington.service")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0 and not p.stderr.strip(), p.stdout + p.stderr
    p = subprocess.run([tool, "security", "--offline=yes", "--threshold=20",
                        str(tmp_path / "hotline@washington.service")],
                       capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr


@pytest.mark.parametrize("page", ["hotline.1", "hotline.conf.5"])
def test_man_pages_render(page):
    if not shutil.which("groff"):
        pytest.skip("SKIPPED LOUDLY: groff is absent")
    p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z", os.path.join(REPO, "man", page)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and not p.stderr.strip(), p.stderr
