/* msg/retain.c — retention: the purge of old messages' contents and the
 * removal of their files (retain.h).  The store does the SQL (one
 * transaction per batch); this file decides what is old and removes the
 * files afterwards. */
#include "msg/retain.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define UNLINK_BATCH 1000

/* A queued path is one the store wrote for an attachment: in/HEX/N or
 * out/HEX/N.  Anything else is not ours to remove. */
static bool path_ok(const char *p)
{
	if (strncmp(p, "in/", 3) != 0 && strncmp(p, "out/", 4) != 0)
		return false;
	return !strstr(p, "..") && !strstr(p, "//") && p[strlen(p) - 1] != '/';
}

/* Removes PATH (relative to DIRFD) and, once empty, its message's folder. */
static int remove_one(int dirfd, const char *path)
{
	if (unlinkat(dirfd, path, 0) < 0 && errno != ENOENT)
		return -errno;
	char *parent = xstrdup(path);
	char *slash = strrchr(parent, '/');
	*slash = '\0';
	/* in/HEX or out/HEX, never in/ or out/ themselves */
	if (strchr(parent, '/') && unlinkat(dirfd, parent, AT_REMOVEDIR) < 0 &&
	    errno != ENOTEMPTY && errno != EEXIST && errno != ENOENT) {
		int ret = -errno;
		free(parent);
		return ret;
	}
	free(parent);
	return 0;
}

int hl_retain_unlink(const char *dir, hl_store *st, struct hl_retain_result *r, char *err,
		     size_t errlen)
{
	char *lockpath = hl_path_join(dir, HL_FILES_LOCK), **paths = NULL;
	size_t n = 0;
	int ret = 0, dirfd = -1;
	int lock = open(lockpath, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (lock < 0) {
		ret = -errno;
		snprintf(err, errlen, "%s: %s", lockpath, strerror(errno));
		goto out;
	}
	bool locked = flock(lock, LOCK_EX | LOCK_NB) == 0;
	for (;;) {
		if ((ret = hl_store_unlink_pending(st, UNLINK_BATCH, &paths, &n)) < 0) {
			snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
			goto out;
		}
		if (n == 0)
			break;
		if (!locked) {
			/* A backup is copying files: they go next time. */
			r->files_left += n;
			break;
		}
		if (dirfd < 0 && (dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", dir, strerror(errno));
			goto out;
		}
		for (size_t i = 0; i < n && ret == 0; i++) {
			if (path_ok(paths[i]) && (ret = remove_one(dirfd, paths[i])) < 0) {
				snprintf(err, errlen, "%s/%s: %s", dir, paths[i], strerror(-ret));
				break;
			}
			if ((ret = hl_store_unlink_done(st, paths[i])) < 0)
				snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
			else
				r->files++;
		}
		for (size_t i = 0; i < n; i++)
			free(paths[i]);
		free(paths);
		paths = NULL;
		if (ret < 0)
			goto out;
		if (n < UNLINK_BATCH)
			break;
	}
	/* The directory entries are gone for good once this returns. */
	for (unsigned i = 0; dirfd >= 0 && r->files && i < 2; i++) {
		int fd = openat(dirfd, i ? "out" : "in", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd >= 0) {
			(void)fsync(fd);
			close(fd);
		}
	}
out:
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
	if (dirfd >= 0)
		close(dirfd);
	if (lock >= 0)
		close(lock);
	free(lockpath);
	return ret;
}

int hl_retain_purge(const char *dir, hl_store *st, int64_t peer_id, int64_t before_ms,
		    int64_t now_ms, size_t max_batches, bool dry_run,
		    struct hl_retain_result *r, char *err, size_t errlen)
{
	struct hl_purge_stats ps;
	int ret;
	r->more = false;
	if (dry_run) {
		if ((ret = hl_store_purge_count(st, peer_id, before_ms, &ps)) < 0) {
			snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
			return ret;
		}
		r->messages += ps.messages;
		r->bytes += ps.bytes;
		return 0;
	}
	for (size_t b = 0; b < max_batches; b++) {
		if ((ret = hl_store_purge(st, peer_id, before_ms, now_ms, HL_PURGE_BATCH_MAX,
					  &ps)) < 0) {
			snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
			return ret;
		}
		r->messages += ps.messages;
		r->bytes += ps.bytes;
		if (ps.messages < HL_PURGE_BATCH_MAX)
			break;
		r->more = b + 1 == max_batches;
	}
	if ((ret = hl_retain_unlink(dir, st, r, err, errlen)) < 0)
		return ret;
	if (r->messages)
		(void)hl_store_checkpoint(st);
	return 0;
}

/* ---- the configured retention ---- */

struct apply_ctx {
	const char *dir;
	hl_store *st;
	const hl_station_conf *conf;
	int64_t now_ms;
	size_t max_batches;
	bool dry_run;
	struct hl_retain_result *r;
	char *err;
	size_t errlen;
	int ret;
};

static int apply_peer(void *arg, const struct hl_peer_row *row)
{
	struct apply_ctx *x = arg;
	const hl_peer_conf *pc = NULL;
	for (size_t i = 0; i < x->conf->npeers; i++)
		if (memcmp(x->conf->peers[i].signing_key, row->signing_key, 32) == 0)
			pc = &x->conf->peers[i];
	uint64_t keep = hl_conf_retain_ms(x->conf, pc);
	if (keep == 0 || keep >= (uint64_t)x->now_ms)
		return 0;
	struct hl_retain_result one = { 0 };
	x->ret = hl_retain_purge(x->dir, x->st, row->id, x->now_ms - (int64_t)keep, x->now_ms,
				 x->max_batches, x->dry_run, &one, x->err, x->errlen);
	x->r->messages += one.messages;
	x->r->bytes += one.bytes;
	x->r->files += one.files;
	x->r->files_left = one.files_left; /* the queue's state after the last pass */
	x->r->more = x->r->more || one.more;
	return x->ret < 0 ? 1 : 0;
}

/* Removes the files of SUB (a Maildir folder) last changed before
 * BEFORE_MS. */
static void purge_mail_dir(const char *path, int64_t before_ms, struct hl_retain_result *r)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	while ((de = readdir(d))) {
		struct stat sb;
		if (de->d_name[0] == '.' || fstatat(fd, de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !S_ISREG(sb.st_mode))
			continue;
		int64_t mtime = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
		if (mtime < before_ms && unlinkat(fd, de->d_name, 0) == 0)
			r->mails++;
	}
	if (r->mails)
		(void)fsync(fd);
	closedir(d);
}

int hl_retain_apply(const char *dir, hl_store *st, const hl_station_conf *conf, int64_t now_ms,
		    size_t max_batches, bool dry_run, struct hl_retain_result *r, char *err,
		    size_t errlen)
{
	struct apply_ctx x = { dir, st, conf, now_ms, max_batches, dry_run, r, err, errlen, 0 };
	int ret = hl_store_each_peer(st, apply_peer, &x);
	if (x.ret < 0)
		return x.ret;
	if (ret < 0) {
		snprintf(err, errlen, "store: %s", hl_store_errmsg(st));
		return ret;
	}
	if (dry_run)
		return 0;
	/* A purge that found nothing still empties what a backup held back. */
	if ((ret = hl_retain_unlink(dir, st, r, err, errlen)) < 0)
		return ret;
	/* The mail the station imported (cur/) or set aside (the quarantine)
	 * holds the same contents: it goes by the station's Retain. */
	if (conf->email.line && conf->retain_ms && conf->retain_ms < (uint64_t)now_ms) {
		int64_t before = now_ms - (int64_t)conf->retain_ms;
		char *md = xstrdup(conf->email.maildir);
		for (size_t n = strlen(md); n > 1 && md[n - 1] == '/'; n--)
			md[n - 1] = '\0';
		char *cur = xasprintf("%s/cur", md), *q = xasprintf("%s%s", md,
								 HL_MAIL_QUARANTINE_SUFFIX);
		purge_mail_dir(cur, before, r);
		purge_mail_dir(q, before, r);
		free(cur);
		free(q);
		free(md);
	}
	return 0;
}
