"""The hardened build (CMakeLists.txt, "Hardening"): read back from the
binaries that ship and from the objects of src/.

- hotline, hotline-daemon (what `hotline run` becomes), hotline-mail and
  hotline-voice: full RELRO (a GNU_RELRO segment
  and immediate binding, BIND_NOW), a stack that is not executable, a PIE;
- the stack protector is compiled in (__stack_chk_fail is referenced);
- _FORTIFY_SOURCE=2 in the optimised builds (glibc's *_chk functions are
  linked); the sanitizer build is Debug, where glibc's checks need the
  optimiser and ASan does the same work, so that one assertion is for the
  optimised builds only;
- every object of src/ carries the control-flow protection markers
  (x86 IBT and SHSTK), i.e. -fcf-protection reached each compile.
"""

import glob
import os
import platform
import shutil
import subprocess

import pytest

from station import HOTLINE_BIN

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.path.dirname(os.path.abspath(HOTLINE_BIN))
PROGRAMS = ["hotline", "hotline-daemon", "hotline-mail", "hotline-voice"]
SANITIZED = os.environ.get("HOTLINE_SANITIZE", "0") in ("1", "ON", "TRUE", "true", "on")


def readelf(*args):
    if not shutil.which("readelf"):
        pytest.fail("readelf (binutils) is needed to read the binaries")
    p = subprocess.run(["readelf", "-W", *args], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return p.stdout


def symbols(path):
    p = subprocess.run(["nm", "-a", path], capture_output=True, text=True, timeout=60)
    d = subprocess.run(["nm", "-D", path], capture_output=True, text=True, timeout=60)
    return p.stdout + d.stdout


@pytest.mark.parametrize("name", PROGRAMS)
def test_full_relro_and_no_exec_stack(name):
    path = os.path.join(BUILD, name)
    assert os.path.exists(path), f"{path} was not built"
    segs = readelf("-l", path)
    assert "GNU_RELRO" in segs, f"{name}: no GNU_RELRO segment"
    stack = [l for l in segs.splitlines() if "GNU_STACK" in l]
    assert stack and "RWE" not in stack[0], f"{name}: executable stack: {stack}"
    assert "DYN" in readelf("-h", path), f"{name}: not a position-independent executable"
    dyn = readelf("-d", path)
    assert "BIND_NOW" in dyn or "Flags: NOW" in dyn, f"{name}: lazy binding (no BIND_NOW)"


@pytest.mark.parametrize("name", PROGRAMS)
def test_stack_protector_and_fortify(name):
    syms = symbols(os.path.join(BUILD, name))
    assert "__stack_chk_fail" in syms, f"{name}: built without the stack protector"
    if not SANITIZED:
        chk = [l for l in syms.splitlines() if l.split("@")[0].endswith("_chk")]
        assert chk, f"{name}: no glibc *_chk function linked: built without _FORTIFY_SOURCE"


def test_every_object_has_control_flow_protection():
    if platform.machine() not in ("x86_64", "i686"):
        pytest.skip(f"SKIPPED LOUDLY: IBT/SHSTK markers are x86's; this is {platform.machine()}")
    # The object of each source of src/ (a build tree may keep objects of
    # files since moved or removed: those are not looked at).
    srcs = glob.glob(os.path.join(REPO, "src", "**", "*.c"), recursive=True)
    objs = [os.path.join(BUILD, "CMakeFiles", "hotline_core.dir",
                         os.path.relpath(s, REPO) + ".o") for s in srcs
            if not s.endswith(os.path.join("src", "main.c"))]
    objs = [o for o in objs if os.path.exists(o)]
    assert len(objs) > 50, f"found only {len(objs)} objects of src/ under {BUILD}"
    missing = [o for o in objs if "IBT, SHSTK" not in readelf("-n", o)]
    assert not missing, f"built without -fcf-protection: {missing[:5]}"
