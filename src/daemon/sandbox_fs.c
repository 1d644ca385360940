/* daemon/sandbox_fs.c — the Landlock half of the sandbox (sandbox.h, step
 * 3): which paths each role may open, and how.
 *
 * Landlock grants by path, beneath a folder or on one file, and never
 * denies: so the station folder itself is granted only READ_DIR (listing
 * its names, which SQLite needs to sync the folder after it made the
 * WAL), and its files one by one — the store's three, read and write —
 * leaving identity.key and station.conf out.  A file rule holds on to the
 * file (its inode): store.db, -wal and -shm stay open and in place while
 * the daemon runs, so that is what is wanted.  The attachment folders in/
 * and out/, and calls/ (the call recordings), are granted whole (the
 * daemon makes, renames and removes files and folders in them), so they
 * are made first if missing.  The tables below are the rules, per role;
 * docs/sandbox.md has them as a table for people.  Everything
 * else the process needs it opened before entering (sockets, the store's
 * descriptors, the lock); station.conf, read again on a reload, comes
 * through the spawner (daemon/spawn.h) as a descriptor.  Executing
 * anything is refused (EXECUTE is handled and granted nowhere).
 *
 * ABI.  1 refuses every rename across folders (REFER is ABI 2), which the
 * store's attachment folders need, so Landlock is used from ABI 2 (Linux
 * 5.19; Debian 12 has it).  ABI 3 adds TRUNCATE, 5 IOCTL_DEV, handled
 * where known; 6 adds scopes: signals and abstract UNIX sockets only
 * within the sandbox (the spawner, outside it, cannot be signalled).  The
 * rights the headers of an older system lack are defined here. */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "conf/config.h"
#include "daemon/sandbox.h"
#include "daemon/sandbox_int.h"
#include "util/fsutil.h"
#include "util/mem.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)

/* The ruleset's attributes as ABI 6 has them; older kernels get a prefix. */
struct ruleset_attr {
	uint64_t handled_access_fs;
	uint64_t handled_access_net;
	uint64_t scoped;
};

#define FS_ABI1 (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |            \
		 LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |             \
		 LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |         \
		 LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |             \
		 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |             \
		 LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |           \
		 LANDLOCK_ACCESS_FS_MAKE_SYM)
/* What a rule on a file (not a folder) may grant. */
#define FILE_RIGHTS (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE |        \
		     LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_TRUNCATE |         \
		     LANDLOCK_ACCESS_FS_IOCTL_DEV)

/* The grants. */
#define R_FILE LANDLOCK_ACCESS_FS_READ_FILE
#define RW_FILE (R_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
#define R_TREE (R_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define RW_TREE (RW_FILE | LANDLOCK_ACCESS_FS_READ_DIR | LANDLOCK_ACCESS_FS_REMOVE_DIR |  \
		 LANDLOCK_ACCESS_FS_REMOVE_FILE | LANDLOCK_ACCESS_FS_MAKE_DIR |           \
		 LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_REFER)
#define LIST_DIR LANDLOCK_ACCESS_FS_READ_DIR
/* The quarantine takes whatever new/ held, FIFO, socket or link: moving a
 * file in needs the right to make one of its type. */
#define ANY_TREE (RW_TREE | LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_SOCK |  \
		  LANDLOCK_ACCESS_FS_MAKE_SYM | LANDLOCK_ACCESS_FS_MAKE_CHAR |               \
		  LANDLOCK_ACCESS_FS_MAKE_BLOCK)

enum { OPTIONAL, MAKE_DIR, REQUIRED };
enum { ABS, STATION, MAILDIR, QUARANTINE };   /* what a grant's path is under */

struct grant {
	unsigned char base;
	const char *path;    /* under BASE ("": BASE itself) */
	uint64_t rights;
	unsigned char need;
};

/* What name resolution (getaddrinfo: hosts, DNS, services), the log's
 * clock and the random sources read; none of it secret. */
static const struct grant system_files[] = {
	{ ABS, "/etc/hosts", R_FILE, OPTIONAL },
	{ ABS, "/etc/resolv.conf", R_FILE, OPTIONAL },
	{ ABS, "/etc/host.conf", R_FILE, OPTIONAL },
	{ ABS, "/etc/nsswitch.conf", R_FILE, OPTIONAL },
	{ ABS, "/etc/gai.conf", R_FILE, OPTIONAL },
	{ ABS, "/etc/services", R_FILE, OPTIONAL },
	{ ABS, "/etc/localtime", R_FILE, OPTIONAL },
	{ ABS, "/usr/share/zoneinfo", R_TREE, OPTIONAL },   /* CheckZone, util/tzif.c */
	{ ABS, "$TZDIR", R_TREE, OPTIONAL },
	{ ABS, "/dev/urandom", R_FILE, OPTIONAL },
	{ ABS, "/dev/null", RW_FILE, OPTIONAL },
};

#if HL_SANDBOX_SANITIZER
/* Every role, in a sanitizer build: the runtime's maps, threads and
 * symbols. */
static const struct grant sanitizer_files[] = {
	{ ABS, "/proc/self", R_TREE, OPTIONAL },
	{ ABS, "/usr/lib", R_TREE, OPTIONAL },
	{ ABS, "/lib", R_TREE, OPTIONAL },
};
#endif

/* The roles with a store (all but DECODE): the station's names, the
 * store's three files, and in/, where what arrives is written. */
static const struct grant store_grants[] = {
	{ STATION, "", LIST_DIR, REQUIRED },
	{ STATION, "store.db", RW_FILE, OPTIONAL },
	{ STATION, "store.db-wal", RW_FILE, OPTIONAL },
	{ STATION, "store.db-shm", RW_FILE, OPTIONAL },
	{ STATION, "in", RW_TREE, MAKE_DIR },
};

/* The network process: out/, which it sends from, calls/, the call
 * recordings (CallRecording), and the Maildir's new/ only to see that
 * mail waits, never to read a mail. */
static const struct grant network_grants[] = {
	{ STATION, "out", RW_TREE, MAKE_DIR },
	{ STATION, "calls", RW_TREE, MAKE_DIR },
	{ MAILDIR, "new", LIST_DIR, OPTIONAL },
};

/* The pickup: out/ read only; new/ and cur/ (mails move from one to the
 * other) and the quarantine beside the Maildir. */
static const struct grant pickup_grants[] = {
	{ STATION, "out", R_TREE, MAKE_DIR },
	{ MAILDIR, "new", RW_TREE, REQUIRED },
	{ MAILDIR, "cur", RW_TREE, REQUIRED },
	{ QUARANTINE, "", ANY_TREE, MAKE_DIR },
};

/* `bundle import FILE`: the pickup's grants without the Maildir (the
 * bundle was opened before): out/ read only, for what the bundle
 * acknowledges. */
static const struct grant import_grants[] = {
	{ STATION, "out", R_TREE, MAKE_DIR },
};

/* The key holder: its station folder, whole, to read, write, make and
 * remove files in — a rotation replaces keyholder.heads and identity.key
 * by a new file renamed over each (a rule on a file holds its inode, and
 * would not follow), keyholder.heads.old is replaced, keyholder.sock
 * removed at the end — but no folder made or removed, no socket, FIFO or
 * link made, nothing executed, and nothing outside the station (not even
 * system_files: it resolves no name). */
static const struct grant holder_grants[] = {
	{ STATION, "", RW_FILE | LIST_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |
			   LANDLOCK_ACCESS_FS_MAKE_REG, REQUIRED },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* ROLE's own grants (*N of them); *STORE: whether it gets store_grants,
 * *SYSTEM: system_files.  DECODE gets no file of the station's: what it
 * reads it was given open; the holder gets its station's whole folder. */
static const struct grant *role_grants(enum hl_sandbox_role role, size_t *n, bool *store,
				       bool *system)
{
	*store = role != HL_SANDBOX_DECODE && role != HL_SANDBOX_HOLDER;
	*system = role != HL_SANDBOX_HOLDER;
	switch (role) {
	case HL_SANDBOX_NETWORK: *n = N(network_grants); return network_grants;
	case HL_SANDBOX_PICKUP: *n = N(pickup_grants); return pickup_grants;
	case HL_SANDBOX_IMPORT: *n = N(import_grants); return import_grants;
	case HL_SANDBOX_HOLDER: *n = N(holder_grants); return holder_grants;
	default: *n = 0; return NULL;
	}
}

static long ll_create_ruleset(const struct ruleset_attr *attr, size_t size, uint32_t flags)
{
	return syscall(SYS_landlock_create_ruleset, attr, size, flags);
}

int hl_sandbox_landlock_abi(void)
{
	long v = ll_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
	return v < 0 ? 0 : (int)v;
}

static uint64_t handled_for(int abi)
{
	uint64_t h = FS_ABI1 | LANDLOCK_ACCESS_FS_REFER;
	if (abi >= 3)
		h |= LANDLOCK_ACCESS_FS_TRUNCATE;
	if (abi >= 5)
		h |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
	return h;
}

/* Adds the rule for PATH with RIGHTS (those the ruleset handles, and only
 * the file rights when PATH is not a folder).  NEED says what a missing
 * PATH means: nothing (OPTIONAL), make it (MAKE_DIR), an error. */
static int add_rule(int rfd, const char *path, uint64_t rights, int need, uint64_t handled,
		    char *err, size_t errlen)
{
	struct landlock_path_beneath_attr pb = { 0 };
	struct stat st;
	int ret = 0;
	if (need == MAKE_DIR && mkdir(path, 0700) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot make %s: %s", path, strerror(errno));
		return -errno;
	}
	int fd = open(path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT && need == OPTIONAL)
			return 0;
		ret = -errno;
		snprintf(err, errlen, "Landlock: %s: %s", path, strerror(errno));
		return ret;
	}
	if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
		rights &= FILE_RIGHTS;
	pb.allowed_access = rights & handled;
	pb.parent_fd = fd;
	if (pb.allowed_access &&
	    syscall(SYS_landlock_add_rule, rfd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0) < 0) {
		ret = -errno;
		snprintf(err, errlen, "Landlock: a rule for %s: %s", path, strerror(errno));
	}
	close(fd);
	return ret;
}

/* G's path for SPEC, xmalloc'd; NULL when its base is not there (no
 * Maildir). */
static char *grant_path(const struct grant *g, const struct hl_sandbox_spec *spec)
{
	const char *tzdir;
	switch (g->base) {
	case STATION:
		return g->path[0] ? hl_path_join(spec->station, g->path) : xstrdup(spec->station);
	case MAILDIR:
		return spec->maildir ? hl_path_join(spec->maildir, g->path) : NULL;
	case QUARANTINE:
		return spec->maildir ? xasprintf("%s%s", spec->maildir, HL_MAIL_QUARANTINE_SUFFIX)
				     : NULL;
	default:
		/* CheckZone's zoneinfo, when it is not the system's */
		tzdir = getenv("TZDIR");
		if (strcmp(g->path, "$TZDIR") == 0)
			return tzdir && tzdir[0] == '/' ? xstrdup(tzdir) : NULL;
		return xstrdup(g->path);
	}
}

static int add_grants(int rfd, const struct grant *g, size_t n,
		      const struct hl_sandbox_spec *spec, uint64_t handled, char *err,
		      size_t errlen)
{
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		char *path = grant_path(&g[i], spec);
		if (path)
			ret = add_rule(rfd, path, g[i].rights, g[i].need, handled, err, errlen);
		free(path);
	}
	return ret;
}

int hl_sandbox_fs(const struct hl_sandbox_spec *spec, int *abi_out, char *err, size_t errlen)
{
	int abi = hl_sandbox_landlock_abi(), ret = 0;
	*abi_out = abi;
	if (abi < 2)
		return 0;
	struct ruleset_attr attr = { .handled_access_fs = handled_for(abi) };
	size_t size = sizeof(attr.handled_access_fs);
	if (abi >= 6) {
		attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;
		size = sizeof(attr);
	}
	int rfd = (int)ll_create_ruleset(&attr, size, 0);
	if (rfd < 0) {
		snprintf(err, errlen, "Landlock: creating the ruleset: %s", strerror(errno));
		return -errno;
	}
	size_t nrole;
	bool store, system;
	uint64_t h = attr.handled_access_fs;
	const struct grant *role = role_grants(spec->role, &nrole, &store, &system);
	if (store)
		ret = add_grants(rfd, store_grants, N(store_grants), spec, h, err, errlen);
	if (ret == 0)
		ret = add_grants(rfd, role, nrole, spec, h, err, errlen);
	if (ret == 0 && system)
		ret = add_grants(rfd, system_files, N(system_files), spec, h, err, errlen);
#if HL_SANDBOX_SANITIZER
	if (ret == 0)
		ret = add_grants(rfd, sanitizer_files, N(sanitizer_files), spec, h, err, errlen);
#endif
	if (ret == 0 && syscall(SYS_landlock_restrict_self, rfd, 0) < 0) {
		ret = -errno;
		snprintf(err, errlen, "Landlock: restricting this process: %s", strerror(errno));
	}
	if (ret == 0 && spec->bind_others && (ret = spec->bind_others(spec->bind_arg, rfd)) < 0)
		snprintf(err, errlen, "Landlock: restricting the process's other thread: %s",
			 strerror(-ret));
	close(rfd);
	return ret < 0 ? ret : 1;
}

int hl_sandbox_bind_thread(int ruleset_fd)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(SYS_landlock_restrict_self, ruleset_fd, 0) < 0)
		return -errno;
	return 0;
}
