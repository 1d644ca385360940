"""The operator's reference (hotline(1), hotline.conf(5)'s AlarmCommand,
README.md's tables) cannot drift from the program.

- every command `hotline help` lists (src/main.c's table) has its own `.SS`
  under COMMANDS in man/hotline.1, and nothing else has one;
- every long option a command's `--help` names appears in that command's
  `.SS` (and the global options anywhere in the page);
- every long option of every getopt table in src/cmd/*.c appears in its
  command's `--help`, so `--help` cannot leave one out either (a file with
  a table that belongs to no command by its name must be listed in SHARED);
- every environment variable the programs read (getenv in src/ and tools/)
  is under ENVIRONMENT;
- every variable the daemon gives AlarmCommand (src/daemon/checks.c), and
  every alarm kind raised by name, is described in hotline.conf(5) and
  docs/configuration.md;
- README.md's command table has a row for every command, and its source
  tree table one for every folder under src/ and for tools/.

The page is read as text after dropping groff's font escapes and turning
`\\-` into `-`; an option counts as named when `--name` appears as a whole
word.
"""
import glob
import os
import re
import subprocess

import pytest

from station import HOTLINE_BIN

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PAGE = os.path.join(REPO, "man", "hotline.1")
# Source files whose option table serves commands not named after the file.
SHARED = {"msgcmd.c": ("inbox", "outbox")}


def plain(groff):
    """The page's text without font escapes, with plain hyphens."""
    s = re.sub(r"\\f[BIRP]", "", groff)
    s = s.replace("\\-", "-").replace("\\&", "").replace("\\e", "\\")
    return re.sub(r'"', "", s)


def page_sections():
    """{'.SH NAME': text} and {command: text of its .SS under COMMANDS}."""
    sh, ss, cur_sh, cur_ss = {}, {}, None, None
    with open(PAGE) as f:
        for line in f:
            if line.startswith(".SH "):
                cur_sh, cur_ss = line[4:].strip().strip('"'), None
                sh[cur_sh] = ""
                continue
            if line.startswith(".SS ") and cur_sh == "COMMANDS":
                cur_ss = line[4:].strip().strip('"')
                assert cur_ss not in ss, f"hotline.1: .SS {cur_ss} twice"
                ss[cur_ss] = ""
                continue
            if cur_sh is not None:
                sh[cur_sh] += line
            if cur_ss is not None:
                ss[cur_ss] += line
    return {k: plain(v) for k, v in sh.items()}, {k: plain(v) for k, v in ss.items()}


def long_options(text):
    return set(re.findall(r"(?<![\w-])--([a-z][a-z0-9-]*[a-z0-9])", text))


def names(text, option):
    return re.search(r"(?<![\w-])--" + re.escape(option) + r"(?![\w-])", text) is not None


def run_help(*args):
    p = subprocess.run([HOTLINE_BIN, *args], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, f"hotline {' '.join(args)}: {p.returncode} {p.stderr}"
    return p.stdout


def commands():
    """The command names of `hotline help` (src/main.c's table)."""
    text = run_help("help")
    block = text.split("Commands:\n", 1)[1].split("\n\n", 1)[0]
    names_ = [line.split()[0] for line in block.splitlines() if line.strip()]
    assert len(names_) >= 15, text
    return names_


def test_every_command_has_its_section():
    _, ss = page_sections()
    cmds = commands()
    missing = [c for c in cmds if c not in ss]
    assert not missing, f"hotline.1 has no '.SS NAME' under COMMANDS for: {missing}"
    extra = sorted(set(ss) - set(cmds))
    assert not extra, f"hotline.1 documents commands the program does not have: {extra}"
    for c in cmds:
        assert f"hotline {c}" in ss[c], f"hotline.1: .SS {c} shows no 'hotline {c}' synopsis"


def test_every_option_of_help_is_in_its_section():
    sh, ss = page_sections()
    missing = []
    for c in commands():
        for opt in sorted(long_options(run_help(c, "--help")) - {"help"}):
            if not names(ss.get(c, ""), opt):
                missing.append(f"{c} --{opt}")
    assert not missing, f"hotline.1 does not name, in the command's section: {missing}"
    whole = "".join(sh.values())
    for opt in long_options(run_help("--help")) | {"dir"}:
        assert names(whole, opt), f"hotline.1 does not name the global option --{opt}"


def getopt_tables():
    """{source file name: set of long option names in its getopt tables}."""
    out = {}
    for path in sorted(glob.glob(os.path.join(REPO, "src", "cmd", "*.c"))):
        with open(path) as f:
            src = f.read()
        found = set(re.findall(r'\{\s*"([a-z][a-z0-9-]*)",\s*(?:no|required|optional)_argument',
                               src))
        if found:
            out[os.path.basename(path)] = found - {"help"}
    return out


def test_every_getopt_option_is_in_help():
    cmds = set(commands())
    tables = getopt_tables()
    assert len(tables) >= 15, tables
    missing = []
    for fname, opts in tables.items():
        owners = SHARED.get(fname) or ((fname[:-2],) if fname[:-2] in cmds else None)
        assert owners, (f"src/cmd/{fname} has a getopt table but no command of that name: "
                        f"add it to SHARED in {os.path.basename(__file__)}")
        helps = "".join(run_help(c, "--help") for c in owners)
        missing += [f"{'/'.join(owners)} --{o}" for o in sorted(opts) if not names(helps, o)]
    assert not missing, f"accepted, but not in the command's --help: {missing}"


def test_every_environment_variable_is_documented():
    sh, _ = page_sections()
    env = sh.get("ENVIRONMENT", "")
    read = set()
    for path in glob.glob(os.path.join(REPO, "src", "**", "*.c"), recursive=True) + \
            glob.glob(os.path.join(REPO, "tools", "*.c")):
        with open(path) as f:
            src = f.read()
        read |= set(re.findall(r'getenv\("([A-Z_]+)"\)', src))
        # helpers found through an environment variable (util/progpath.h)
        read |= set(re.findall(r'hl_helper_path\("[a-z-]+",\s*"([A-Z_]+)"\)', src))
    assert {"HOTLINE_DIR", "HOTLINE_MAIL", "HOTLINE_VOICE"} <= read, read
    missing = sorted(v for v in read if not re.search(r"(?m)^\.TP\n\.B " + v + "$", env))
    assert not missing, f"hotline.1's ENVIRONMENT does not describe: {missing}"


@pytest.mark.parametrize("section", ["EXIT STATUS", "ENVIRONMENT", "FILES", "SECURITY",
                                     "SEE ALSO"])
def test_reference_sections_present(section):
    sh, _ = page_sections()
    assert sh.get(section, "").strip(), f"hotline.1 has no '.SH {section}'"


def test_alarm_environment_is_documented():
    with open(os.path.join(REPO, "src", "daemon", "alarm.c")) as f:   # the alarms' owner
        checks = f.read()
    variables = set(re.findall(r'xasprintf\("(HOTLINE_[A-Z_]+)=', checks))
    assert {"HOTLINE_ALARM", "HOTLINE_COUNT", "HOTLINE_DETAIL"} <= variables, variables
    kinds = set()
    for path in glob.glob(os.path.join(REPO, "src", "daemon", "*.c")):
        with open(path) as f:
            src = f.read()
        kinds |= set(re.findall(r'alarm_new\("([a-z_]+)"', src))
        kinds |= set(re.findall(r'hl_checks_alarm_now\([^,]+,\s*"([a-z_]+)"', src))
    assert {"ring", "equivocation"} <= kinds, kinds
    with open(os.path.join(REPO, "docs", "configuration.md")) as f:
        md = f.read()
    md = md[md.index("### `AlarmCommand`"):md.index("### `FallbackAfter`")]
    with open(os.path.join(REPO, "man", "hotline.conf.5")) as f:
        man = plain(f.read())
    man = man[man.index("\n.B AlarmCommand\n"):man.index("\n.B FallbackAfter\n")]
    for what, text in (("docs/configuration.md", md), ("hotline.conf.5", man)):
        missing = sorted(w for w in variables | kinds if not re.search(r"\b" + w + r"\b", text))
        assert not missing, f"{what}'s AlarmCommand does not describe: {missing}"


def readme_table(heading):
    """The first-column cells of the table under README.md's HEADING."""
    with open(os.path.join(REPO, "README.md")) as f:
        text = f.read()
    assert f"\n## {heading}\n" in text, f"README.md has no '## {heading}'"
    part = text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return [line.split("|")[1] for line in part.splitlines() if line.startswith("| `")]


def test_readme_lists_every_command():
    cells = " ".join(readme_table("The commands"))
    missing = [c for c in commands() if f"`{c}`" not in cells]
    assert not missing, f"README.md's command table has no row for: {missing}"


def test_readme_lists_every_source_folder():
    cells = " ".join(readme_table("Source tree"))
    folders = sorted(f"src/{d}/" for d in os.listdir(os.path.join(REPO, "src"))
                     if os.path.isdir(os.path.join(REPO, "src", d))) + ["tools/"]
    assert len(folders) >= 14, folders
    missing = [d for d in folders if f"`{d}`" not in cells]
    assert not missing, f"README.md's source tree table has no row for: {missing}"
