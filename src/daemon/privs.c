/* daemon/privs.c — dropping root's powers at start (contract in privs.h).
 *
 * The order, as root:
 *   1. every capability out of the bounding set, the ambient set cleared
 *      (needs CAP_SETPCAP, still held);
 *   2. securebits NOROOT, NO_SETUID_FIXUP, KEEP_CAPS and NO_CAP_AMBIENT_RAISE,
 *      each locked: a program run later as uid 0 gets no capability back;
 *   3. with User: setgroups() to the user's primary group alone, then
 *      setresgid() and setresuid() to the user (needs CAP_SETGID/SETUID);
 *   4. the permitted, effective and inheritable sets emptied (capset);
 *   5. no_new_privs;
 *   6. a check that it held: capget() shows nothing, and with User,
 *      setuid(0) fails.
 * Raw prctl()/capset() rather than libcap: five calls, no new library in
 * the static binary. */
#include "daemon/privs.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conf/perms.h"
#include "util/progpath.h"
#include "util/err.h"

#ifndef PR_CAP_AMBIENT
#define PR_CAP_AMBIENT 47
#define PR_CAP_AMBIENT_CLEAR_ALL 4
#endif
#ifndef SECBIT_NO_CAP_AMBIENT_RAISE
#define SECBIT_NO_CAP_AMBIENT_RAISE (1 << 6)
#define SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED (1 << 7)
#endif

#define CAP_WORDS 2   /* _LINUX_CAPABILITY_VERSION_3: 64 capabilities */

static int caps_get(struct __user_cap_data_struct data[static CAP_WORDS])
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	memset(data, 0, CAP_WORDS * sizeof(*data));
	return syscall(SYS_capget, &hdr, data) == 0 ? 0 : -errno;
}

static int caps_clear(void)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[CAP_WORDS];
	memset(data, 0, sizeof(data));
	return syscall(SYS_capset, &hdr, data) == 0 ? 0 : -errno;
}

/* 1 when the permitted or effective set holds anything. */
static int caps_held(void)
{
	struct __user_cap_data_struct d[CAP_WORDS];
	if (caps_get(d) < 0)
		return 1;   /* unknown: try to drop */
	for (int i = 0; i < CAP_WORDS; i++)
		if (d[i].permitted || d[i].effective || d[i].inheritable)
			return 1;
	return 0;
}

static int fail(char *err, size_t errlen, int code, const char *what)
{
	snprintf(err, errlen, "dropping root's privileges: %s: %s", what, strerror(-code));
	return code;
}

/* Steps 1 and 2. */
static int drop_bounding(char *err, size_t errlen)
{
	for (int cap = 0; cap < 64; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0)
			continue;
		if (errno == EINVAL)
			break;   /* past the kernel's last capability */
		return fail(err, errlen, -errno, "PR_CAPBSET_DROP");
	}
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
		return fail(err, errlen, -errno, "clearing the ambient capabilities");
	unsigned long bits = SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_NO_SETUID_FIXUP |
			     SECBIT_NO_SETUID_FIXUP_LOCKED | SECBIT_KEEP_CAPS_LOCKED;
	if (prctl(PR_SET_SECUREBITS, bits | SECBIT_NO_CAP_AMBIENT_RAISE |
					     SECBIT_NO_CAP_AMBIENT_RAISE_LOCKED, 0, 0, 0) < 0 &&
	    prctl(PR_SET_SECUREBITS, bits, 0, 0, 0) < 0)   /* a kernel before 4.3 */
		return fail(err, errlen, -errno, "PR_SET_SECUREBITS");
	return 0;
}

int hl_privs_no_new_privs(void)
{
	return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 ? 0 : -errno;
}

/* Step 3. */
static int become(const struct hl_user *u, char *err, size_t errlen)
{
	gid_t g = u->gid;
	if (setgroups(1, &g) < 0)
		return fail(err, errlen, -errno, "setgroups");
	if (setresgid(u->gid, u->gid, u->gid) < 0)
		return fail(err, errlen, -errno, "setresgid");
	if (setresuid(u->uid, u->uid, u->uid) < 0)
		return fail(err, errlen, -errno, "setresuid");
	/* What AlarmCommand and the daemon's children see. */
	if (u->name[0]) {
		setenv("USER", u->name, 1);
		setenv("LOGNAME", u->name, 1);
	}
	if (u->home[0])
		setenv("HOME", u->home, 1);
	return 0;
}

/* Steps 4 to 6. */
static int finish(const struct hl_user *u, char *err, size_t errlen)
{
	int r;
	if ((r = caps_clear()) < 0)
		return fail(err, errlen, r, "capset");
	if ((r = hl_privs_no_new_privs()) < 0)
		return fail(err, errlen, r, "PR_SET_NO_NEW_PRIVS");
	if (caps_held())
		return fail(err, errlen, -EPERM, "capabilities are still held");
	if (u && u->uid != 0 && (setuid(0) == 0 || geteuid() != u->uid))
		return fail(err, errlen, -EPERM, "uid 0 could be taken back");
	return 0;
}

/* Whether USER_SPEC fits DIR's owner; fills U when a user is named. */
static int plan(const char *dir, uid_t dir_owner, const char *user_spec, struct hl_user *u,
		char *err, size_t errlen)
{
	char perr[HL_PERMS_ERR_LEN], owner[96], want[96];
	int r;
	hl_user_describe(dir_owner, owner, sizeof(owner));
	if (!user_spec[0]) {
		if (geteuid() == 0 && dir_owner != 0) {
			snprintf(err, errlen,
				 "%s belongs to %s, and this daemon was started as root: add "
				 "User = %lu to [Station] in station.conf, so that the daemon runs "
				 "as that user, or start it as that user",
				 dir, owner, (unsigned long)dir_owner);
			return -EPERM;
		}
		return 0;
	}
	if ((r = hl_user_lookup(user_spec, u, perr)) < 0) {
		snprintf(err, errlen, "station.conf: %s", perr);
		return r;
	}
	snprintf(want, sizeof(want), "uid %lu", (unsigned long)u->uid);
	if (geteuid() != 0 && geteuid() != u->uid) {
		snprintf(err, errlen,
			 "station.conf says User = %s (%s), but the daemon runs as uid %lu: only a "
			 "daemon started as root changes users; start it as root or as %s",
			 user_spec, want, (unsigned long)geteuid(), want);
		return -EPERM;
	}
	if (dir_owner != u->uid) {
		snprintf(err, errlen,
			 "station.conf says User = %s (%s), but %s belongs to %s: the station "
			 "must belong to the user the daemon runs as. Fix: chown -R %lu:%lu '%s'",
			 user_spec, want, dir, owner, (unsigned long)u->uid, (unsigned long)u->gid,
			 dir);
		return -EPERM;
	}
	return 0;
}

/* After becoming another user: the daemon runs itself (the email path,
 * mail pickup, retention) and hotline-mail, so both must still be
 * reachable.  A build tree under root's 0700 home is not, for nobody: say
 * so at start rather than fail every five seconds later. */
static int check_programs(const struct hl_user *u, char *err, size_t errlen)
{
	char self[4096], who[96];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return 0; /* no /proc: nothing to check against */
	self[n] = '\0';
	char *mail = hl_helper_path("hotline-mail", "HOTLINE_MAIL");
	const char *bad = access(self, X_OK) < 0 ? self
			  : (strchr(mail, '/') && access(mail, X_OK) < 0) ? mail : NULL;
	int e = errno;
	if (bad) {
		hl_user_describe(u->uid, who, sizeof(who));
		snprintf(err, errlen,
			 "now running as %s, the daemon cannot run %s (%s), which it runs for "
			 "the email path, mail pickup and retention: install hotline (make "
			 "install) or let %s search every folder on that path",
			 who, bad, strerror(e), who);
	}
	free(mail);
	return bad ? -e : 0;
}

int hl_privs_drop(const char *dir, uid_t dir_owner, const char *user_spec,
		  char note[static HL_PRIVS_NOTE_LEN], char *err, size_t errlen)
{
	struct hl_user u;
	char who[96];
	note[0] = '\0';
	int r = plan(dir, dir_owner, user_spec, &u, err, errlen);
	if (r < 0)
		return r;
	if (geteuid() != 0) {
		if (!caps_held())
			return 0;
		if ((r = finish(NULL, err, errlen)) < 0)
			return r;
		snprintf(note, HL_PRIVS_NOTE_LEN,
			 "dropped the capabilities this process held; no_new_privs set");
		return 0;
	}
	int switching = user_spec[0] && u.uid != 0;
	if ((r = drop_bounding(err, errlen)) < 0 || (switching && (r = become(&u, err, errlen)) < 0) ||
	    (r = finish(switching ? &u : NULL, err, errlen)) < 0 ||
	    (switching && (r = check_programs(&u, err, errlen)) < 0))
		return r;
	if (switching) {
		hl_user_describe(u.uid, who, sizeof(who));
		snprintf(note, HL_PRIVS_NOTE_LEN,
			 "started as root: now running as %s, gid %lu, no supplementary groups, "
			 "without any capability; no_new_privs set",
			 who, (unsigned long)u.gid);
	} else {
		snprintf(note, HL_PRIVS_NOTE_LEN,
			 "started as root: dropped every capability (uid 0 is kept: the station "
			 "belongs to root; set User in station.conf to run as a user of its own); "
			 "no_new_privs set");
	}
	return 0;
}
