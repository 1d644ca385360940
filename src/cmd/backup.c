/* cmd/backup.c — `hotline backup DIR`: a consistent copy of the station,
 * taken while its daemon runs (docs/retention.md, "Backup and restore").
 *
 * SYNOPSIS
 *   hotline [-d STATION] backup DIR
 *
 * DIR becomes a station directory that `hotline -d DIR run` starts as it
 * was at the moment of the store's snapshot: identity.key, station.conf,
 * store.db, and every attachment file that snapshot names.
 *
 * Consistency comes from the order.  The store is copied first, in one
 * snapshot (SQLite's VACUUM INTO: writers go on meanwhile); the files are
 * copied after, and only those the copy of the store names, as it names
 * them: a message in the copy always has its files, because a station
 * writes (and fsyncs) a message's files before the row that names them,
 * files never change once whole, and an incoming part's first `done` bytes
 * (what the copy records) never change either.  What came after the
 * snapshot is left out whole.  Files are removed only by purges, and a
 * purge leaves them while a backup holds HL_FILES_LOCK: so no file the
 * snapshot names can vanish before it is copied.
 *
 * SECURITY  The copy holds identity.key, the station's private keys.  DIR
 * is created with mode 0700 (or must be an empty directory of ours that
 * nobody else can read), every file in it with 0600 and O_EXCL; nothing is
 * overwritten and no link is followed.  A failed backup removes what it
 * wrote.
 *
 * DIAGNOSTICS  exit 0 with a summary on stdout; 1 with one line on stderr
 * (DIR not empty, readable by others, a copy failing); 2 usage. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "station/station.h"
#include "msg/retain.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define COPY_BUF (1u << 20)

struct backup {
	const char *station, *dest;
	int src_fd, dst_fd;          /* the two directories */
	uint64_t files, bytes;
	char err[700];
	uint8_t *buf;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] backup DEST\n\n"
		   "Copy the station, consistently, while its daemon runs: identity.key,\n"
		   "station.conf, the store (one snapshot) and every attachment file that\n"
		   "snapshot names.  DEST is created with mode 0700, or must be an empty\n"
		   "directory that only you can read: the copy holds the private keys.\n\n"
		   "To restore: stop the station's daemon, and start the copy in its place\n"
		   "(hotline -d DEST run, or move DEST to the station directory).  Never run\n"
		   "the copy and the station it was taken from at the same time.  What the\n"
		   "station did after the backup is not in it (see docs/retention.md).\n\n"
		   "Exit status: 0 done, 1 failure (nothing is left in DEST), 2 usage error.\n");
}

/* DEST: created 0700, or an empty directory of ours with no group or
 * other permission.  *MADE says whether we created it. */
static int prepare_dest(struct backup *b, bool *made)
{
	struct stat sb;
	*made = false;
	if (mkdir(b->dest, 0700) == 0) {
		*made = true;
	} else if (errno != EEXIST) {
		snprintf(b->err, sizeof(b->err), "cannot create %s: %s", b->dest, strerror(errno));
		return -1;
	}
	b->dst_fd = open(b->dest, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (b->dst_fd < 0 || fstat(b->dst_fd, &sb) < 0) {
		snprintf(b->err, sizeof(b->err), "%s: %s", b->dest,
			 errno == ELOOP || errno == ENOTDIR ? "not a directory" : strerror(errno));
		return -1;
	}
	if (sb.st_uid != geteuid() || (sb.st_mode & 077)) {
		snprintf(b->err, sizeof(b->err), "%s can be read or written by others (mode %04o%s): "
			 "the backup holds the private keys; give a new directory, or one of mode "
			 "0700 (chmod 700 %s)", b->dest, (unsigned)(sb.st_mode & 07777),
			 sb.st_uid != geteuid() ? ", another owner" : "", b->dest);
		return -1;
	}
	int fd = dup(b->dst_fd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	bool empty = true;
	while (d && (de = readdir(d)))
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			empty = false;
	if (d)
		closedir(d);
	else if (fd >= 0)
		close(fd);
	if (!empty) {
		snprintf(b->err, sizeof(b->err), "%s is not empty: a backup goes into a new or empty "
			 "directory (nothing is overwritten)", b->dest);
		return -1;
	}
	return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* Makes the directories of REL (a relative file path) under DST, 0700. */
static int make_parents(struct backup *b, const char *rel)
{
	char *p = xstrdup(rel);
	int ret = 0;
	for (char *s = strchr(p, '/'); s; s = strchr(s + 1, '/')) {
		*s = '\0';
		if (mkdirat(b->dst_fd, p, 0700) < 0 && errno != EEXIST) {
			ret = -errno;
			snprintf(b->err, sizeof(b->err), "%s/%s: %s", b->dest, p, strerror(errno));
		}
		*s = '/';
		if (ret < 0)
			break;
	}
	free(p);
	return ret;
}

/* Copies SRC (relative to the station) to DST (relative to DEST): at most
 * LIMIT bytes, and exactly LIMIT unless it is UINT64_MAX.  ENOENT of the
 * source is returned without a message when OPTIONAL. */
static int copy_file(struct backup *b, const char *src, const char *dst, uint64_t limit,
		     bool optional)
{
	int in = -1, out = -1, ret = 0;
	uint64_t done = 0;
	in = openat(b->src_fd, src, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (in < 0) {
		ret = -errno;
		if (!(optional && errno == ENOENT))
			snprintf(b->err, sizeof(b->err), "%s/%s: %s", b->station, src, strerror(errno));
		goto out;
	}
	if ((ret = make_parents(b, dst)) < 0)
		goto out;
	out = openat(b->dst_fd, dst, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		ret = -errno;
		snprintf(b->err, sizeof(b->err), "%s/%s: %s", b->dest, dst, strerror(errno));
		goto out;
	}
	while (done < limit) {
		size_t want = limit - done < COPY_BUF ? (size_t)(limit - done) : COPY_BUF;
		ssize_t n = read(in, b->buf, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(b->err, sizeof(b->err), "%s/%s: %s", b->station, src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		if (write_all(out, b->buf, (size_t)n) < 0) {
			ret = -errno;
			snprintf(b->err, sizeof(b->err), "%s/%s: %s", b->dest, dst, strerror(errno));
			goto out;
		}
		done += (uint64_t)n;
	}
	if (limit != UINT64_MAX && done != limit) {
		ret = HL_ETRUNC;
		snprintf(b->err, sizeof(b->err), "%s/%s: %llu bytes, the store says %llu", b->station,
			 src, (unsigned long long)done, (unsigned long long)limit);
		goto out;
	}
	if (fsync(out) < 0) {
		ret = -errno;
		snprintf(b->err, sizeof(b->err), "%s/%s: %s", b->dest, dst, strerror(errno));
		goto out;
	}
	b->files++;
	b->bytes += done;
out:
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return ret;
}

/* One attachment file the copy of the store names. */
static int copy_att(void *arg, const struct hl_att_file *f)
{
	struct backup *b = arg;
	char part[sizeof(f->path) + 8];
	if (strncmp(f->path, "in/", 3) != 0 && strncmp(f->path, "out/", 4) != 0)
		return 0; /* not a path the station writes */
	snprintf(part, sizeof(part), "%s.part", f->path);
	/* Ours, or the peer's once whole: the file, of its size. */
	if (f->dir == HL_DIR_OUT || f->state != HL_MSG_PARTIAL || f->done == f->size) {
		int ret = copy_file(b, f->path, f->path, f->size, f->dir == HL_DIR_IN);
		if (ret == -ENOENT && f->dir == HL_DIR_IN) /* renamed into place after the snapshot? */
			ret = copy_file(b, part, f->path, f->size, f->state == HL_MSG_REFUSED_IN);
		/* A refused message's part may never have been whole. */
		return ret == -ENOENT && f->state == HL_MSG_REFUSED_IN ? 0 : (ret < 0 ? 1 : 0);
	}
	/* Still arriving: its first DONE bytes, which never change (the
	 * part may have been completed and renamed since the snapshot). */
	if (f->done == 0)
		return 0;
	int ret = copy_file(b, part, part, f->done, true);
	if (ret == -ENOENT)
		ret = copy_file(b, f->path, part, f->done, false);
	return ret < 0 ? 1 : 0;
}

/* Removes everything under FD (files and directories, links not followed). */
static void remove_tree(int fd)
{
	int dfd = dup(fd);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	struct dirent *de;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return;
	}
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (unlinkat(fd, de->d_name, 0) == 0)
			continue;
		int sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub >= 0) {
			remove_tree(sub);
			close(sub);
			unlinkat(fd, de->d_name, AT_REMOVEDIR);
		}
		rewinddir(d);
	}
	closedir(d);
}

static void fsync_tree_dirs(int dst_fd)
{
	static const char *const dirs[] = { "in", "out" };
	for (size_t i = 0; i < 2; i++) {
		int fd = openat(dst_fd, dirs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			continue;
		int dfd = dup(fd);
		DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
		struct dirent *de;
		while (d && (de = readdir(d))) {
			if (de->d_name[0] == '.')
				continue;
			int sub = openat(fd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				(void)fsync(sub);
				close(sub);
			}
		}
		if (d)
			closedir(d);
		else if (dfd >= 0)
			close(dfd);
		(void)fsync(fd);
		close(fd);
	}
	(void)fsync(dst_fd);
}

/* The store: a snapshot into DEST/store.db (created here, 0600, O_EXCL),
 * then the files it names, then a check of the copy. */
static int copy_store(struct backup *b, hl_store *src)
{
	hl_store *copy = NULL;
	int ret;
	char *db = hl_path_join(b->dest, HL_STORE_FILE);
	int fd = openat(b->dst_fd, HL_STORE_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
			O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		snprintf(b->err, sizeof(b->err), "%s: %s", db, strerror(errno));
		goto out;
	}
	close(fd);
	if ((ret = hl_store_backup(src, db)) < 0) {
		snprintf(b->err, sizeof(b->err), "copying the store: %s", hl_store_errmsg(src));
		goto out;
	}
	if ((ret = hl_store_open(b->dest, &copy)) < 0) {
		snprintf(b->err, sizeof(b->err), "the copy of the store: %s", hl_store_open_errmsg());
		goto out;
	}
	if ((ret = hl_store_each_att_file(copy, copy_att, b)) < 0) {
		snprintf(b->err, sizeof(b->err), "the copy of the store: %s", hl_store_errmsg(copy));
		goto out;
	}
	if (b->err[0]) {
		ret = HL_EINVAL;
		goto out;
	}
	if ((ret = hl_store_verify(copy)) < 0) {
		snprintf(b->err, sizeof(b->err), "the copy of the store does not check: %s",
			 hl_store_errmsg(copy));
		goto out;
	}
	/* Started one day in the station's place, the copy may be behind
	 * what its peers hold: it signs nothing new for a peer until that
	 * peer said how much of our chain it holds (docs/messages.md 7). */
	if ((ret = hl_store_mark_restored(copy)) < 0) {
		snprintf(b->err, sizeof(b->err), "the copy of the store: %s", hl_store_errmsg(copy));
		goto out;
	}
out:
	hl_store_close(copy);
	free(db);
	return ret;
}

int backup_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct backup b = { .station = ctx->dir, .src_fd = -1, .dst_fd = -1 };
	struct hl_station mc = { 0 };
	bool made = false, wrote = false;
	int c, ret, lock = -1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return HL_EXIT_OK;
		}
		return hl_usage_error("backup", "bad option");
	}
	if (argc - optind != 1)
		return hl_usage_error("backup", "give the directory to copy the station into");
	b.dest = argv[optind];
	if ((ret = hl_need_station(ctx, "backup")) != HL_EXIT_OK)
		return ret;
	if ((ret = hl_msgcmd_open(ctx, "backup", &mc, false)) != HL_EXIT_OK)
		goto out;
	b.src_fd = open(ctx->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (b.src_fd < 0) {
		ret = hl_fail("backup", "%s: %s", ctx->dir, strerror(errno));
		goto out;
	}
	if (prepare_dest(&b, &made) < 0) {
		ret = hl_fail("backup", "%s", b.err);
		goto out;
	}
	/* No purge removes a file while we copy (retain.h). */
	if ((lock = hl_station_lock(b.src_fd, HL_FILES_LOCK, LOCK_SH)) < 0) {
		ret = hl_fail("backup", "%s/%s: %s", ctx->dir, HL_FILES_LOCK, strerror(-lock));
		goto out;
	}
	b.buf = xmalloc(COPY_BUF);
	wrote = true;
	if (copy_file(&b, HL_IDENTITY_FILE, HL_IDENTITY_FILE, UINT64_MAX, false) < 0 ||
	    copy_file(&b, HL_CONF_FILE, HL_CONF_FILE, UINT64_MAX, false) < 0 ||
	    copy_store(&b, mc.store) < 0) {
		ret = hl_fail("backup", "%s; nothing was kept in %s", b.err, b.dest);
		goto out;
	}
	fsync_tree_dirs(b.dst_fd);
	if (made)
		hl_fsync_parent(b.dest);
	char when[HL_RFC3339_LEN];
	hl_rfc3339(hl_now_ms(), when);
	printf("backup of station %s in %s at %s: identity.key, station.conf, the store, "
	       "%llu attachment file(s); %llu bytes copied\n", mc.conf->name, b.dest, when,
	       (unsigned long long)(b.files > 2 ? b.files - 2 : 0), (unsigned long long)b.bytes);
	printf("restore: stop this station's daemon, then run the copy in its place "
	       "(hotline -d %s run); never both at once\n", b.dest);
	wrote = false;
	ret = HL_EXIT_OK;
out:
	if (wrote && b.dst_fd >= 0) {
		remove_tree(b.dst_fd);
		if (made)
			rmdir(b.dest);
	}
	if (lock >= 0)
		close(lock);
	if (b.src_fd >= 0)
		close(b.src_fd);
	if (b.dst_fd >= 0)
		close(b.dst_fd);
	free(b.buf);
	hl_msgcmd_close(&mc);
	return ret;
}
