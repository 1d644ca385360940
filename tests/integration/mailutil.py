"""mailutil.py — a real mail server for the email-path tests, and the
stations' mail settings: add_email() (an [Email] section, an Email for the
peer), email_pair() (alpha and beta linked through a proxy, both with
email), email_station() / good_mail() / deliver() (a station picking up a
Maildir of its own that the test writes into) and pickup_status().

Owns: running Debian's Postfix (installed by scripts/deps.sh check; this file
installs nothing) as a private instance configured in a temporary folder:
its own main.cf/master.cf, queue and data directories, an SMTP listener on a
free 127.0.0.1 port, no other listener, and the virtual(8) delivery agent
delivering mail for USER@hotline.test into ROOT/mail/USER/Maildir/.  The
stations' [Email] sections point at those Maildirs.

Why Postfix and not OpenSMTPD: OpenSMTPD's queue path (/var/spool/smtpd) is
fixed at compile time, so two instances (tests run in parallel) would share
one queue; Postfix takes queue_directory and data_directory from main.cf.

Postfix's master must start as root (it drops to the `postfix` user); the
virtual agent refuses to deliver as root, so the Maildirs belong to
nobody:nogroup (65534) and the folder above them is world-traversable.
Where the test does not run as root, or Postfix is absent, the fixture skips
the test and says why.

A station whose daemon picks up mail must be able to read it: a daemon
started as root drops every capability (daemon/privs.c), so root's daemon
cannot read nobody's Maildir.  As in a real deployment, such a station
belongs to the user its mail is delivered to: `srv.adopt(st)` moves a
station into this server's folder, gives it to
nobody, sets `User = nobody` (the daemon, started as root, becomes nobody)
and runs its commands as nobody.

Use: the `mailserver` fixture (conftest.py) is a factory; `mailserver("alpha", "beta")`
starts a server with those two mailboxes and returns a MailServer;
teardown stops every server started (`postfix stop`, then the master's
pid is waited for) and removes the folder, adopted stations too: ask for
`mailserver` before the stations' fixture, so that their daemons are
stopped first.
"""

import os
import shutil
import signal
import smtplib
import socket
import subprocess
import tempfile
import time
from email.message import EmailMessage

from station import bin_for_user, free_port, scaled, wait_for

DOMAIN = "hotline.test"
POSTFIX = "/usr/sbin/postfix"
NOBODY = 65534

MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
virtual unix - n n - - virtual
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
"""

MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {root}/queue
data_directory = {root}/data
daemon_directory = /usr/lib/postfix/sbin
command_directory = /usr/sbin
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
myhostname = mail.{domain}
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps =
virtual_mailbox_domains = {domain}
virtual_mailbox_base = {root}/mail
virtual_mailbox_maps = texthash:{root}/conf/vmailbox
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{uid}
virtual_mailbox_limit = 0
message_size_limit = 104857600
maillog_file = {root}/maillog
maillog_file_prefixes = {root}
smtputf8_enable = no
biff = no
"""


class MailServer:
    def __init__(self, users):
        self.users = list(users)
        self.root = tempfile.mkdtemp(prefix="hotline-mail-")
        # virtual(8) runs as nobody and must reach the Maildirs.
        os.chmod(self.root, 0o755)
        self.conf = os.path.join(self.root, "conf")
        self.port = free_port()
        self.url = f"smtp://127.0.0.1:{self.port}"
        self.started = False

    def address(self, user):
        return f"{user}@{DOMAIN}"

    def maildir(self, user):
        return os.path.join(self.root, "mail", user, "Maildir")

    def log(self):
        try:
            with open(os.path.join(self.root, "maillog"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def _pc(self, *args, check=True):
        return subprocess.run([POSTFIX, "-c", self.conf, *args], capture_output=True,
                              text=True, check=check, timeout=60)

    def start(self):
        for d in ("conf", "queue", "data", "mail"):
            os.makedirs(os.path.join(self.root, d))
        os.chown(os.path.join(self.root, "data"), _postfix_uid(), -1)
        os.chown(os.path.join(self.root, "mail"), NOBODY, NOBODY)
        with open(os.path.join(self.conf, "main.cf"), "w") as f:
            f.write(MAIN_CF.format(root=self.root, domain=DOMAIN, uid=NOBODY))
        with open(os.path.join(self.conf, "master.cf"), "w") as f:
            f.write(MASTER_CF.format(port=self.port))
        with open(os.path.join(self.conf, "vmailbox"), "w") as f:
            for u in self.users:
                f.write(f"{self.address(u)} {u}/Maildir/\n")
        # Make the Maildirs now, so a station can watch one before any mail.
        for u in self.users:
            for sub in ("", "new", "cur", "tmp"):
                p = os.path.join(self.maildir(u), sub)
                os.makedirs(p, exist_ok=True)
            for d, _, _ in os.walk(os.path.join(self.root, "mail", u)):
                os.chown(d, NOBODY, NOBODY)
        r = self._pc("check", check=False)
        assert r.returncode == 0, f"postfix check failed: {r.stderr}\n{self.log()}"
        # `postfix start` runs that same integrity check again (seconds on a
        # loaded machine) unless queue/quick-start exists, which it removes.
        open(os.path.join(self.root, "queue", "quick-start"), "w").close()
        r = self._pc("start", check=False)
        assert r.returncode == 0, f"postfix start failed: {r.stderr}\n{self.log()}"
        self.started = True
        wait_for(self._listening, scaled(20), f"postfix listening on 127.0.0.1:{self.port}")
        return self

    def _listening(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                return True
        except OSError:
            return False

    def _master_pid(self):
        try:
            with open(os.path.join(self.root, "queue", "pid", "master.pid")) as f:
                return int(f.read().strip())
        except (OSError, ValueError):
            return None

    def stop(self):
        if not self.started:
            return
        pid = self._master_pid()
        self._pc("stop", check=False)
        if pid:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and _alive(pid):
                time.sleep(0.05)
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.started = False

    def cleanup(self):
        shutil.rmtree(self.root, ignore_errors=True)

    def adopt(self, st):
        """Makes ST (not running) a station of the mail user: moved under
        this server's folder (the test's tmp_path is not open to other
        users), owned by nobody, `User = nobody`, commands run as nobody."""
        assert st.proc is None, f"{st.name}: stop the daemon before adopt()"
        stations = os.path.join(self.root, "stations")
        os.makedirs(stations, mode=0o755, exist_ok=True)
        new = os.path.join(stations, os.path.basename(st.dir))
        shutil.move(st.dir, new)
        st.dir = new
        st.set_option("User", "nobody")
        for d, _, files in os.walk(new):
            os.chown(d, NOBODY, NOBODY)
            for f in files:
                os.chown(os.path.join(d, f), NOBODY, NOBODY)
        st.cmd_prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}",
                         "--clear-groups", "--"]
        st.bin = bin_for_user(NOBODY)
        return st

    def new_mail(self, user):
        """Paths of the files in USER's Maildir/new, sorted."""
        d = os.path.join(self.maildir(user), "new")
        return sorted(os.path.join(d, f) for f in os.listdir(d))

    def send(self, msg):
        """Sends an email.message.EmailMessage through this server."""
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as s:
            s.send_message(msg)


def _alive(pid):
    """Whether PID runs.  The master is not our child: once dead it stays a
    zombie until init reaps it (a second or two here), and a zombie holds
    no port and no file, so it counts as gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        pass
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def _postfix_uid():
    import pwd
    return pwd.getpwnam("postfix").pw_uid


def skip_reason():
    """Why no mail server can run here (None: it can)."""
    if not os.access(POSTFIX, os.X_OK):
        return f"{POSTFIX} is absent (scripts/deps.sh check installs postfix)"
    if os.geteuid() != 0:
        return "postfix's master must start as root, and this test does not run as root"
    return None


# ------------------------------------------------- stations with [Email]

def add_email(st, srv, user, peer_user):
    """An [Email] section for ST, and Email = the peer's address in its one
    [Peer] section."""
    path = os.path.join(st.dir, "station.conf")
    with open(path) as f:
        lines = f.read().splitlines()
    out, section = [], None
    for line in lines:
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            if section == "Peer":
                out.append(f"Email = {srv.address(peer_user)}")
            section = s[1:-1].strip()
        out.append(line)
    if section == "Peer":
        out.append(f"Email = {srv.address(peer_user)}")
    out += ["", "[Email]", f"SMTP = {srv.url}", f"From = {srv.address(user)}",
            f"Maildir = {srv.maildir(user)}"]
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def inbox_ids(st):
    ids = [m["id"] for m in st.inbox()]
    assert len(ids) == len(set(ids)), f"{st.name}: duplicate in the inbox: {ids}"
    return ids


def email_pair(net, mailserver, fallback):
    """alpha dials beta through a proxy, both with [Email] and an Email for
    the other, FallbackAfter = FALLBACK; started and linked.  Returns (alpha,
    beta, proxy, mail server)."""
    a, b, proxy = net.pair("alpha", "beta", via_proxy=True, start=False, FallbackAfter=fallback)
    srv = mailserver("alpha", "beta")
    srv.adopt(a)    # their mail is delivered as nobody: the stations are nobody's
    srv.adopt(b)
    add_email(a, srv, "alpha", "beta")
    add_email(b, srv, "beta", "alpha")
    b.start()
    a.start()
    a.wait_connected("beta")
    b.wait_connected("alpha")
    return a, b, proxy, srv


# --------------------------------------------- a station's own Maildir

def email_station(net, tmp_path):
    """alpha and beta, pinned to each other without addresses (no link);
    beta has an [Email] section with a Maildir of its own and no peer with
    an Email (so nothing is ever mailed).  Returns (alpha, beta, maildir)."""
    a, b = net.station("alpha"), net.station("beta")
    a.pin(b, dial=False)
    b.pin(a, dial=False)
    md = str(tmp_path / "Maildir")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(md, sub))
    with open(b.conf_path, "a") as f:
        f.write(f"\n[Email]\nSMTP = smtp://127.0.0.1:9\nFrom = beta@hotline.test\n"
                f"Maildir = {md}\n")
    return a, b, md


def good_mail(a, tmp_path, text):
    """A bundle mail from alpha to beta carrying one message; (id, bytes)."""
    mid = a.cmd("send", "beta", text).stdout.strip()
    path = tmp_path / f"{mid}.bundle"
    a.cmd("bundle", "export", "beta", "-o", str(path))
    m = EmailMessage()
    m["From"], m["To"], m["Subject"] = "alpha@hotline.test", "beta@hotline.test", "hotline bundle"
    m.set_content("a bundle\n")
    m.add_attachment(path.read_bytes(), maintype="application", subtype="x-hotline-bundle",
                     filename="hotline.bundle")
    return mid, m.as_bytes()


def deliver(md, name, data):
    tmp = os.path.join(md, "tmp", name)
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, os.path.join(md, "new", name))


def pickup_status(b):
    return b.status()["station"]["email"]
