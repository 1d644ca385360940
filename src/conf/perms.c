/* conf/perms.c — the station's StrictModes check and the `User` lookup
 * (contract in perms.h).
 *
 * The check walks the station directory's resolved path from "/" down, so
 * a symbolic link on the way cannot hide a writable folder, then looks at
 * the directory itself, station.conf and identity.key with lstat() (a link
 * in their place is refused: whoever controls its target would control the
 * station).  Access control lists are not read: like OpenSSH, the mode bits
 * and the owner are what is checked.
 *
 * Users and groups are looked up in /etc/passwd and /etc/group with
 * fgetpwent()/fgetgrent(), not through NSS: the hotline binary is linked
 * statically, where NSS would load shared modules at run time. */
#include "conf/perms.h"

#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "util/err.h"
#include "util/text.h"

#define SHOWN_MAX 120   /* bytes of a path shown in a message */

/* Writes a message into ERR (HL_PERMS_ERR_LEN bytes), shortened if need
 * be: a path shown twice can make it long. */
static void errf(char *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void errf(char *err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, HL_PERMS_ERR_LEN, fmt, ap);
	va_end(ap);
}

/* ---- users ---- */

/* "NAME (uid N)" or "uid N"; GROUP: the same from /etc/group, "gid N". */
static void describe_id(int group, unsigned long id, char *out, size_t cap)
{
	FILE *f = fopen(group ? "/etc/group" : "/etc/passwd", "re");
	const char *found = NULL;
	char name[64] = "";
	struct passwd *pw;
	struct group *gr;
	while (f && !found) {
		if (group)
			found = (gr = fgetgrent(f)) ? (gr->gr_gid == id ? gr->gr_name : NULL) : "";
		else
			found = (pw = fgetpwent(f)) ? (pw->pw_uid == id ? pw->pw_name : NULL) : "";
	}
	if (found)
		hl_sanitize(found, strlen(found), name, sizeof(name), 0);
	if (f)
		fclose(f);
	const char *kind = group ? "gid" : "uid";
	if (name[0])
		snprintf(out, cap, "%s (%s %lu)", name, kind, id);
	else
		snprintf(out, cap, "%s %lu", kind, id);
}

void hl_user_describe(uid_t uid, char *out, size_t cap)
{
	describe_id(0, (unsigned long)uid, out, cap);
}

/* A decimal number below 2^31 (uids and gids are 32-bit; -1 is "none"). */
static int parse_id(const char *s, size_t len, unsigned long *out)
{
	unsigned long v = 0;
	if (len == 0 || len > 10)
		return HL_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return HL_EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (v > INT_MAX)
		return HL_EINVAL;
	*out = v;
	return 0;
}

int hl_user_lookup(const char *spec, struct hl_user *u, char err[static HL_PERMS_ERR_LEN])
{
	unsigned long uid = 0, gid = 0;
	const char *colon = strchr(spec, ':');
	int numeric = parse_id(spec, colon ? (size_t)(colon - spec) : strlen(spec), &uid) == 0;
	char q[96];

	memset(u, 0, sizeof(*u));
	if (colon && (!numeric || parse_id(colon + 1, strlen(colon + 1), &gid) < 0)) {
		hl_sanitize(spec, strlen(spec), q, sizeof(q), 0);
		errf(err, "bad User '%s': want a user name, UID or UID:GID", q);
		return HL_EINVAL;
	}
	FILE *f = fopen("/etc/passwd", "re");
	struct passwd *pw;
	int found = 0;
	while (f && !found && (pw = fgetpwent(f))) {
		if (numeric ? pw->pw_uid != (uid_t)uid : strcmp(pw->pw_name, spec) != 0)
			continue;
		found = 1;
		u->uid = pw->pw_uid;
		u->gid = pw->pw_gid;
		if (strlen(pw->pw_name) < sizeof(u->name))
			strcpy(u->name, pw->pw_name);
		if (strlen(pw->pw_dir) < sizeof(u->home))
			strcpy(u->home, pw->pw_dir);
	}
	if (f)
		fclose(f);
	if (!found && !numeric) {
		hl_sanitize(spec, strlen(spec), q, sizeof(q), 0);
		errf(err, "User '%s' is not in /etc/passwd (give a numeric UID or UID:GID for a "
			  "user that only NSS knows)", q);
		return HL_ENOTFOUND;
	}
	if (!found) {
		u->uid = (uid_t)uid;
		u->gid = (gid_t)uid;
	}
	if (colon)
		u->gid = (gid_t)gid;
	return 0;
}

/* ---- the station check ---- */


/* PATH for a message, and the same single-quoted for a shell command. */
struct shown {
	char text[SHOWN_MAX * 3 + 4];
	char quoted[SHOWN_MAX * 12 + 8];
};

static void show_path(const char *path, struct shown *s)
{
	size_t n = strlen(path), o = 0;
	hl_sanitize(path, n > SHOWN_MAX ? SHOWN_MAX : n, s->text, sizeof(s->text), 0);
	s->quoted[o++] = '\'';
	for (const char *p = s->text; *p && o + 6 < sizeof(s->quoted); p++) {
		if (*p == '\'') {
			memcpy(s->quoted + o, "'\\''", 4);
			o += 4;
		} else {
			s->quoted[o++] = *p;
		}
	}
	s->quoted[o++] = '\'';
	s->quoted[o] = '\0';
}

static int owner_ok(uid_t owner, uid_t also)
{
	return owner == 0 || owner == geteuid() || (also != HL_UID_NONE && owner == also);
}

enum what { W_PARENT, W_DIR, W_CONF, W_IDENTITY };

/* Put after the path in a message: what it is ("" when its name says). */
static const char *const what_text[] = {
	[W_PARENT] = ", a folder above the station directory,",
	[W_DIR] = ", the station directory,",
	[W_CONF] = "",
	[W_IDENTITY] = ", the station's private keys,",
};

/* Why it matters, after "so ...". */
static const char *const what_risk[] = {
	[W_PARENT] = "another user could put a station directory of their own in its place",
	[W_DIR] = "another user could put a station.conf of their own in it, "
		  "whose AlarmCommand the daemon runs",
	[W_CONF] = "another user could change what the daemon runs (AlarmCommand) and whom "
		   "it trusts",
	[W_IDENTITY] = "another user could take the station's private keys",
};

/* The user's name for `sudo -u`, else "'#UID'" (sudo's syntax for a uid). */
static void sudo_user(uid_t uid, char *out, size_t cap)
{
	char d[96];
	hl_user_describe(uid, d, sizeof(d));
	char *paren = strstr(d, " (uid ");
	if (paren) {
		*paren = '\0';
		snprintf(out, cap, "%.*s", (int)(cap - 1), d);
	} else {
		snprintf(out, cap, "'#%lu'", (unsigned long)uid);
	}
}

static int refuse_owner(const char *path, enum what w, const struct stat *st, char *err)
{
	struct shown s;
	char owner[96], me[96], su[80];
	show_path(path, &s);
	hl_user_describe(st->st_uid, owner, sizeof(owner));
	if (geteuid() == 0) {
		snprintf(me, sizeof(me), "root");
	} else {
		hl_user_describe(geteuid(), me, sizeof(me) - 8);
		strcat(me, " or root");
	}
	sudo_user(st->st_uid, su, sizeof(su));
	if (geteuid() == 0 && w != W_PARENT)
		errf(err, "%s%s belongs to %s, not to root, who runs this command. Run hotline "
			  "as that user (sudo -u %s hotline ...; a daemon started as root needs "
			  "User = %s in station.conf), or fix: chown root %s",
		     s.text, what_text[w], owner, su, su, s.quoted);
	else
		errf(err, "%s%s belongs to %s, not to %s, so %s. Fix (as root): chown %lu %s%s",
		     s.text, what_text[w], owner, me, what_risk[w], (unsigned long)geteuid(),
		     s.quoted, w == W_PARENT ? ", or keep the station elsewhere" : "");
	return -EPERM;
}

/* "readable", "writable" or "readable and writable" for permission bits
 * BITS of one class (r=4, w=2), as far as MASK (the bits that matter). */
static const char *access_word(unsigned bits, unsigned mask)
{
	bits &= mask;
	return (bits & 6) == 6 ? "readable and writable" : (bits & 4) ? "readable" : "writable";
}

static int refuse_mode(const char *path, enum what w, const struct stat *st, char *err)
{
	struct shown s;
	char group[96], who[200];
	unsigned m = (unsigned)st->st_mode, mask = w == W_IDENTITY ? 7 : 2;
	show_path(path, &s);
	describe_id(1, (unsigned long)st->st_gid, group, sizeof(group));
	if ((m >> 3) & mask && m & mask)
		snprintf(who, sizeof(who), "%s by its group %s and by everyone",
			 access_word((m >> 3) | m, mask), group);
	else if ((m >> 3) & mask)
		snprintf(who, sizeof(who), "%s by its group %s", access_word(m >> 3, mask), group);
	else
		snprintf(who, sizeof(who), "%s by everyone", access_word(m, mask));
	errf(err, "%s%s is %s (mode %04o), so %s. Fix: %s %s%s", s.text, what_text[w], who,
	     m & 07777, what_risk[w], w == W_IDENTITY ? "chmod 600" : "chmod go-w", s.quoted,
	     w == W_PARENT ? " (or chmod +t for a shared folder like /tmp), or keep the station "
			     "elsewhere"
			   : "");
	return -EPERM;
}

static int refuse_type(const char *path, enum what w, const struct stat *st, char *err)
{
	struct shown s;
	show_path(path, &s);
	if (S_ISLNK(st->st_mode))
		errf(err, "%s%s is a symbolic link; hotline wants the file itself in the station "
			  "directory (whoever controls a link's target controls the station). Fix: "
			  "replace the link with a copy of its target",
		     s.text, what_text[w]);
	else
		errf(err, "%s%s is not a %s", s.text, what_text[w],
		     w <= W_DIR ? "directory" : "regular file");
	return -EPERM;
}

/* One path: its type, owner and mode. */
static int check_one(const char *path, enum what w, uid_t also, char *err)
{
	struct stat st;
	if (lstat(path, &st) < 0)
		return errno == ENOENT && w >= W_CONF ? 0 : -errno;
	int want_dir = w <= W_DIR;
	if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
		return refuse_type(path, w, &st, err);
	if (!owner_ok(st.st_uid, also))
		return refuse_owner(path, w, &st, err);
	mode_t bad = w == W_IDENTITY ? 077 : 022;
	/* A sticky folder above (/tmp) lets others add entries but not
	 * rename or remove ours. */
	if ((st.st_mode & bad) && !(w == W_PARENT && (st.st_mode & S_ISVTX)))
		return refuse_mode(path, w, &st, err);
	return 0;
}

static int check_parents(const char *real, uid_t also, char *err)
{
	char path[PATH_MAX];
	size_t n = strlen(real);
	if (n >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, real, n + 1);
	/* Each prefix ending before a '/', from "/" down to the parent. */
	int r = check_one("/", W_PARENT, also, err);
	for (size_t i = 1; r == 0 && i < n; i++) {
		if (path[i] != '/')
			continue;
		path[i] = '\0';
		r = check_one(path, W_PARENT, also, err);
		path[i] = '/';
	}
	return r;
}

int hl_station_validate_perms(const char *dir, uid_t also, char err[static HL_PERMS_ERR_LEN])
{
	char real[PATH_MAX], file[PATH_MAX + 32];
	int r;
	err[0] = '\0';
	if (!realpath(dir, real))
		return 0;   /* missing: the caller's open reports it */
	if ((r = check_parents(real, also, err)) < 0 || (r = check_one(real, W_DIR, also, err)) < 0)
		goto out;
	snprintf(file, sizeof(file), "%s/%s", real, HL_CONF_FILE);
	if ((r = check_one(file, W_CONF, also, err)) < 0)
		goto out;
	snprintf(file, sizeof(file), "%s/%s", real, HL_IDENTITY_FILE);
	r = check_one(file, W_IDENTITY, also, err);
out:
	if (r < 0 && !err[0]) {
		struct shown s;
		show_path(dir, &s);
		errf(err, "%s: cannot check who may change the station: %s",
			 s.text, strerror(-r));
	}
	return r;
}
