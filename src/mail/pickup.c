/* mail/pickup.c — Maildir pickup (mail/pickup.h).
 *
 * Invariant: a mail leaves new/ only after what it carries is committed to
 * the store (then to cur/) or after it was judged junk (then to the
 * quarantine).  A crash between the commit and the rename leaves the mail
 * in new/; the next pass imports it again, which stores nothing new
 * (imports are idempotent), and then moves it.  Two pickups at once (the
 * daemon and a command) are harmless for the same reason; the loser's
 * rename finds the file gone. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bundle/courier.h"
#include "mail/mime.h"
#include "mail/pickup.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Codes that say the mail itself is bad (quarantine it), as opposed to
 * this station failing for now (leave it in new/). */
static bool content_fault(int code)
{
	return code == HL_EINVAL || code == HL_ETOOBIG || code == HL_EAUTH ||
	       code == HL_EUNSUPP || code == HL_EPEER || code == HL_ECRYPTO || code == HL_ETRUNC;
}

/* Errors opening an entry that say this station cannot open files just
 * now (leave the mail in new/), as opposed to something about the entry
 * itself (quarantine it, whatever it is). */
static bool station_fault(int err)
{
	return err == EMFILE || err == ENFILE || err == ENOMEM || err == EINTR || err == EIO ||
	       err == EAGAIN;
}

static void fsync_dir(int fd)
{
	if (fd >= 0)
		(void)fsync(fd);
}

/* Moves NAME from new/ into the quarantine with NAME.why beside it. */
static int quarantine(int newfd, int qfd, const char *name, const char *why)
{
	if (renameat(newfd, name, qfd, name) < 0)
		return -errno;
	char *wn = xasprintf("%s.why", name);
	int fd = openat(qfd, wn, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd >= 0) {
		/* Best effort: the why is for a person; the mail is already safe. */
		dprintf(fd, "%s\n", why);
		close(fd);
	}
	free(wn);
	fsync_dir(qfd);
	fsync_dir(newfd);
	return 0;
}

/* The name a mail gets in cur/: Maildir's "seen" flag. */
static char *cur_name(const char *name)
{
	return strstr(name, ":2,") ? xstrdup(name) : xasprintf("%s:2,S", name);
}

/* One pickup's station, store, counts and open directories. */
struct pickup {
	const char *dir;
	hl_store *st;
	const hl_signer *me;
	const hl_station_conf *conf;
	struct hl_mail_pickup_stats *stats;
	hl_mail_pickup_report report;
	void *arg;
	int newfd, curfd, qfd;
};

/* The mail NAME in new/: imported (then moved to cur/), judged junk (then
 * quarantined), or left in new/ for the next pickup; counted and reported. */
static void pickup_one(struct pickup *pk, const char *name)
{
	struct hl_bundle_import_stats ist;
	struct stat sb;
	uint8_t *bundle = NULL;
	size_t blen = 0;
	void *map = MAP_FAILED;
	char ierr[512], why[600];
	/* Without blocking (a FIFO would wait for a writer for ever) and
	 * without following links; the type is checked on the open file, so
	 * it cannot change between the look and the read. */
	int r, fd = openat(pk->newfd, name,
			   O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return;   /* another pickup took it */
		if (station_fault(errno)) {
			pk->stats->left++;
			snprintf(why, sizeof(why), "left in new/: cannot open it: %s", strerror(errno));
			pk->report(pk->arg, name, why);
			return;
		}
		pk->stats->seen++;
		if (errno == ELOOP)
			snprintf(why, sizeof(why), "junk: a symbolic link");
		else
			snprintf(why, sizeof(why), "junk: cannot be opened (%s)", strerror(errno));
		goto junk;
	}
	pk->stats->seen++;
	bool reg = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
	if (!reg || sb.st_size == 0 || (uint64_t)sb.st_size > HL_MAIL_MAX_BYTES) {
		close(fd);
		if (!reg)
			snprintf(why, sizeof(why), "junk: not a regular file");
		else
			snprintf(why, sizeof(why), "not a mail file of 1 to %llu bytes",
				 (unsigned long long)HL_MAIL_MAX_BYTES);
		goto junk;
	}
	map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED) {
		pk->stats->left++;
		pk->report(pk->arg, name, "left in new/: cannot map it");
		return;
	}
	r = hl_mail_find_bundle(map, (size_t)sb.st_size, &bundle, &blen, ierr, sizeof(ierr));
	munmap(map, (size_t)sb.st_size);
	if (r < 0) {
		snprintf(why, sizeof(why), "junk: %s", ierr);
		goto junk;
	}
	r = hl_bundle_import(pk->dir, pk->st, pk->me, pk->conf, bundle, blen, &ist, ierr,
			     sizeof(ierr));
	free(bundle);
	if (r < 0 && content_fault(r)) {
		snprintf(why, sizeof(why), "bundle refused: %s", ierr);
		goto junk;
	}
	if (r < 0) {
		pk->stats->left++;
		snprintf(why, sizeof(why), "left in new/: %s", ierr);
		pk->report(pk->arg, name, why);
		return;
	}
	/* Committed: only now does the mail leave new/. */
	char *cn = cur_name(name);
	if (renameat(pk->newfd, name, pk->curfd, cn) == 0 || errno == ENOENT) {
		fsync_dir(pk->curfd);
		fsync_dir(pk->newfd);
	}
	free(cn);
	pk->stats->imported++;
	pk->stats->arrived += ist.arrived;
	pk->stats->delivered += ist.delivered;
	snprintf(why, sizeof(why), "from %s: %llu item(s); %llu new in the inbox, "
		 "%llu of ours delivered", ist.peer, (unsigned long long)ist.items,
		 (unsigned long long)ist.arrived, (unsigned long long)ist.delivered);
	pk->report(pk->arg, name, why);
	return;
junk:
	if (quarantine(pk->newfd, pk->qfd, name, why) < 0) {
		pk->stats->left++;
		pk->report(pk->arg, name, "left in new/: cannot move it to the quarantine");
		return;
	}
	pk->stats->quarantined++;
	pk->report(pk->arg, name, why);
}

/* Opens MD's new/ and cur/ and the quarantine beside MD (made if missing)
 * into PK; Q is MD sanitised for messages.  0, else -errno with ERR set. */
static int open_dirs(const char *md, const char *q, struct pickup *pk, char *err,
		     size_t errlen)
{
	int ret = 0;
	char *path = xasprintf("%s/new", md);
	pk->newfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(path);
	path = xasprintf("%s/cur", md);
	pk->curfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pk->newfd < 0 || pk->curfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "Maildir %s: cannot open new/ and cur/: %s", q, strerror(errno));
		goto out;
	}
	free(path);
	path = xasprintf("%s%s", md, HL_MAIL_QUARANTINE_SUFFIX);
	if (mkdir(path, 0700) < 0 && errno != EEXIST) {
		ret = -errno;
		snprintf(err, errlen, "cannot make the quarantine %s%s: %s", q,
			 HL_MAIL_QUARANTINE_SUFFIX, strerror(errno));
		goto out;
	}
	pk->qfd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (pk->qfd < 0) {
		ret = -errno;
		snprintf(err, errlen, "cannot open the quarantine %s%s: %s", q,
			 HL_MAIL_QUARANTINE_SUFFIX, strerror(errno));
		goto out;
	}
out:
	free(path);
	return ret;
}

int hl_mail_pickup(const char *dir, hl_store *st, const hl_signer *me,
		   const hl_station_conf *conf, struct hl_mail_pickup_stats *stats,
		   hl_mail_pickup_report report, void *arg, char *err, size_t errlen)
{
	struct pickup pk = { dir, st, me, conf, stats, report, arg, -1, -1, -1 };
	char *md = NULL, **names = NULL, q[256];
	size_t nnames = 0;
	int ret;
	DIR *d = NULL;

	memset(stats, 0, sizeof(*stats));
	md = xstrdup(conf->email.maildir);
	for (size_t n = strlen(md); n > 1 && md[n - 1] == '/'; n--)
		md[n - 1] = '\0';
	hl_sanitize(md, strlen(md), q, sizeof(q), 0);
	if ((ret = open_dirs(md, q, &pk, err, errlen)) < 0)
		goto out;
	int dfd = dup(pk.newfd);
	if (dfd < 0 || !(d = fdopendir(dfd))) {
		ret = -errno;
		if (dfd >= 0)
			close(dfd);
		snprintf(err, errlen, "Maildir %s: %s", q, strerror(errno));
		goto out;
	}
	names = xmalloc(HL_MAIL_PICKUP_MAX * sizeof(*names));
	struct dirent *de;
	while (nnames < HL_MAIL_PICKUP_MAX && (de = readdir(d)))
		if (de->d_name[0] != '.')
			names[nnames++] = xstrdup(de->d_name);
	/* Maildir names begin with the delivery time: oldest first. */
	qsort(names, nnames, sizeof(*names), cmp_names);
	for (size_t i = 0; i < nnames; i++)
		pickup_one(&pk, names[i]);
	ret = stats->left ? HL_ESTATE : 0;
	if (ret < 0)
		snprintf(err, errlen, "%u mail(s) left in %s/new for the next pickup", stats->left, q);
out:
	if (d)
		closedir(d);
	for (size_t i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	if (pk.newfd >= 0)
		close(pk.newfd);
	if (pk.curfd >= 0)
		close(pk.curfd);
	if (pk.qfd >= 0)
		close(pk.qfd);
	free(md);
	return ret;
}
