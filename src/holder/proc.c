/* holder/proc.c — the key-holder process: started, made private, and its
 * loop over the daemon's socketpair and the station's keyholder.sock (see
 * proc.h).
 *
 * One poll() loop, no threads.  Every connection is non-blocking and has
 * one request in and one answer out at a time: a frame is read whole
 * (its length first, capped at HL_HOLD_FRAME_MAX), answered
 * (holder/serve.c), and the answer written before the next is read, so a
 * client that never reads its answers holds up itself alone.  A frame
 * whose length is 0 or over the cap cannot be followed: that connection is
 * answered MALFORMED and closed; the others carry on.  The daemon's
 * socketpair closing ends the holder. */
#include "holder/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include "conf/config.h"
#include "holder/client.h"
#include "holder/heads.h"
#include "holder/proto.h"
#include "holder/serve.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"

/* Connections at once besides the daemon's: commands and the mail pickup. */
#define CLIENTS_MAX 16

struct conn {
	int fd;
	char who[48];
	uint8_t hdr[4];
	size_t hdr_got;
	uint8_t *in;                  /* the frame's body as it arrives */
	size_t in_len, in_got, in_cap;
	uint8_t *out;                 /* an answer, header included, being written */
	size_t out_len, out_off;
	bool closing;                 /* close once the answer is out */
};

struct holder_proc {
	struct hl_holder *h;
	struct conn conn[1 + CLIENTS_MAX]; /* [0]: the daemon */
	int listen_fd;                /* keyholder.sock; -1 for a command's holder */
	struct hl_holder_marks *marks; /* shared with the starter; NULL: none */
};

/* The journal's marks, where the starter reads them (holder/proc.h): the
 * appends as they are made, before the answer leaves; those on the disk
 * after a push, the durable ones after a settle. */
static void publish(struct holder_proc *p)
{
	uint64_t written, pushed, durable;
	if (!p->marks || !p->h)
		return;
	hl_holder_journal_marks(p->h, &written, &pushed, &durable);
	atomic_store_explicit(&p->marks->written, written, memory_order_release);
	bool moved = atomic_load_explicit(&p->marks->on_disk, memory_order_relaxed) != pushed;
	atomic_store_explicit(&p->marks->on_disk, pushed, memory_order_release);
	atomic_store_explicit(&p->marks->durable, durable, memory_order_release);
	if (moved) {
		/* the starter may wait for it (holder/client.c): a shared page
		 * between two processes, so not FUTEX_PRIVATE */
		atomic_fetch_add_explicit(&p->marks->moved, 1, memory_order_release);
		(void)syscall(SYS_futex, &p->marks->moved, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
	}
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->in);
	free(c->out);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* The answer to the whole frame in C->in. */
static void conn_answer(struct holder_proc *p, struct conn *c)
{
	uint8_t *resp;
	size_t len;
	/* only the daemon rotates the keys (holder/serve.h) */
	hl_holder_answer(p->h, c->in, c->in_len, c->who, c == &p->conn[0], &resp, &len);
	c->out = xmalloc(4 + len);
	hl_hold_frame_hdr(len, c->out);
	memcpy(c->out + 4, resp, len);
	c->out_len = 4 + len;
	c->out_off = 0;
	free(resp);
	publish(p); /* what it wrote, before the answer leaves */
	free(c->in);
	c->in = NULL;
	c->hdr_got = c->in_got = c->in_len = c->in_cap = 0;
}

/* A frame header that cannot be followed: one MALFORMED answer, then the
 * connection goes. */
static void conn_bad_frame(struct holder_proc *p, struct conn *c)
{
	static const uint8_t junk[2] = { HL_HOLD_VERSION, 0 };
	hl_warn("key holder: a frame of %u bytes from %s (the cap is %u): closing that connection",
		(unsigned)(((uint32_t)c->hdr[0] << 24) | ((uint32_t)c->hdr[1] << 16) |
			   ((uint32_t)c->hdr[2] << 8) | c->hdr[3]),
		c->who, HL_HOLD_FRAME_MAX);
	c->in = xmalloc(sizeof(junk));
	memcpy(c->in, junk, sizeof(junk));
	c->in_len = sizeof(junk);
	conn_answer(p, c);
	c->closing = true;
}

/* Room for more of the frame: grown as the bytes come, never to the
 * declared length at once (a client that announces 24 MiB and sends
 * nothing holds 64 KiB). */
static void conn_room(struct conn *c)
{
	if (c->in_got < c->in_cap)
		return;
	c->in_cap = c->in_cap ? 2 * c->in_cap : 65536;
	if (c->in_cap > c->in_len)
		c->in_cap = c->in_len;
	c->in = xrealloc(c->in, c->in_cap);
}

/* Reads what has come; false when the connection is to go. */
static bool conn_read(struct holder_proc *p, struct conn *c)
{
	for (;;) {
		bool head = c->hdr_got < 4;
		if (!head)
			conn_room(c);
		uint8_t *dst = head ? c->hdr + c->hdr_got : c->in + c->in_got;
		size_t want = head ? 4 - c->hdr_got : c->in_cap - c->in_got;
		ssize_t n = recv(c->fd, dst, want, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		if (n == 0)
			return false;
		if (!head) {
			c->in_got += (size_t)n;
		} else if ((c->hdr_got += (size_t)n) == 4 && (c->in_len = hl_hold_frame_len(c->hdr)) == 0) {
			conn_bad_frame(p, c);
			return true;
		}
		if (!head && c->in_got == c->in_len) {
			conn_answer(p, c);
			return true;
		}
	}
}

static bool conn_write(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK;
		c->out_off += (size_t)n;
	}
	free(c->out);
	c->out = NULL;
	c->out_len = c->out_off = 0;
	return !c->closing;
}

/* ---- accepting ---- */

static void accept_one(struct holder_proc *p)
{
	struct ucred cred = { .pid = 0, .uid = (uid_t)-1, .gid = (gid_t)-1 };
	socklen_t len = sizeof(cred);
	int fd = accept4(p->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != geteuid()) {
		hl_warn("key holder: refused a connection from uid %ld (pid %ld): only the "
			"station's user may ask", (long)cred.uid, (long)cred.pid);
		close(fd);
		return;
	}
	for (size_t i = 1; i <= CLIENTS_MAX; i++) {
		if (p->conn[i].fd < 0) {
			p->conn[i].fd = fd;
			snprintf(p->conn[i].who, sizeof(p->conn[i].who), "pid %ld", (long)cred.pid);
			return;
		}
	}
	hl_warn("key holder: %d connections already: refused pid %ld", CLIENTS_MAX,
		(long)cred.pid);
	close(fd);
}

/* DIR/keyholder.sock, mode 0600 from birth; a stale one (we hold the lock)
 * is removed first. */
static int listen_socket(int dirfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd, HL_HOLDER_SOCKET);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlinkat(dirfd, HL_HOLDER_SOCKET, 0);
	mode_t old = umask(0077);
	int ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret < 0 || fchmodat(dirfd, HL_HOLDER_SOCKET, 0600, 0) < 0 || listen(fd, 16) < 0) {
		ret = -errno;
		close(fd);
		return ret;
	}
	return fd;
}

/* ---- the loop ---- */

static void serve(struct holder_proc *p)
{
	struct pollfd pfd[2 + CLIENTS_MAX];
	for (;;) {
		size_t n = 0;
		for (size_t i = 0; i <= CLIENTS_MAX; i++) {
			struct conn *c = &p->conn[i];
			if (c->fd >= 0)
				pfd[n++] = (struct pollfd){ c->fd, c->out ? POLLOUT : POLLIN, 0 };
		}
		size_t nconn = n;
		if (p->listen_fd >= 0)
			pfd[n++] = (struct pollfd){ p->listen_fd, POLLIN, 0 };
		if (poll(pfd, n, -1) < 0) {
			if (errno == EINTR)
				continue;
			hl_error("key holder: poll: %s", strerror(errno));
			return;
		}
		if (n > nconn && (pfd[nconn].revents & POLLIN))
			accept_one(p);
		for (size_t i = 0, k = 0; i <= CLIENTS_MAX && k < nconn; i++) {
			struct conn *c = &p->conn[i];
			if (c->fd < 0 || pfd[k].fd != c->fd)
				continue;
			short ev = pfd[k++].revents;
			bool keep = true;
			if (ev & (POLLIN | POLLHUP | POLLERR))
				keep = c->out ? conn_write(c) : conn_read(p, c);
			if (keep && (ev & POLLOUT))
				keep = conn_write(c);
			if (keep && c->out)
				keep = conn_write(c); /* an answer just made: out at once */
			/* then what it signed to the disk, while the asker
			 * commits: the asker's fdatasync makes it durable, or
			 * a SYNC does (docs/keyholder.md 5) */
			(void)hl_holder_push(p->h);
			publish(p);
			if (!keep && i == 0)
				return; /* the daemon is gone */
			if (!keep)
				conn_close(c);
		}
	}
}

/* This process alone, from here on: no core, not dumpable, nothing of the
 * daemon's open but FD, gone with its parent. */
static int go_private(int fd, pid_t parent)
{
	struct rlimit none = { 0, 0 };
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		return -1;
	if (prctl(PR_SET_DUMPABLE, 0) < 0 || setrlimit(RLIMIT_CORE, &none) < 0)
		return -1;
	prctl(PR_SET_NAME, HL_HOLDER_COMM);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	if (dup2(fd, 3) < 0)
		return -1;
	close_range(4, ~0U, 0);
	return fcntl(3, F_SETFL, O_NONBLOCK) < 0 || fcntl(3, F_SETFD, FD_CLOEXEC) < 0 ? -1 : 3;
}

/* The lock, the keys, the journal and the socket (LISTEN: the daemon's
 * holder; a command's serves its socketpair alone), in that order. */
static int start(struct holder_proc *p, const char *dir, int dirfd, bool listen)
{
	char err[HL_KEYS_ERR_LEN];
	hl_signer *keys = NULL;
	hl_heads *heads = NULL;
	char *id = hl_path_join(dir, HL_IDENTITY_FILE);
	char *journal = hl_path_join(dir, HL_HEADS_FILE);
	int lockfd = openat(dirfd, HL_HOLDER_LOCK, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	int ret = lockfd < 0 ? -errno : 0;
	/* Another holder (a command's, or a daemon's) finishes first. */
	while (ret == 0 && flock(lockfd, LOCK_EX) < 0)
		if (errno != EINTR)
			ret = -errno;
	if (ret < 0)
		snprintf(err, sizeof(err), "cannot lock %s/%s: %s", dir, HL_HOLDER_LOCK,
			 hl_strerror(ret));
	else if ((ret = hl_signer_load(id, &keys)) < 0)
		snprintf(err, sizeof(err), "cannot load %s: %s", id, hl_strerror(ret));
	else if ((ret = hl_heads_open(journal, &heads, err, sizeof(err))) == 0 && listen &&
		 (p->listen_fd = listen_socket(dirfd)) < 0) {
		ret = p->listen_fd;
		snprintf(err, sizeof(err), "cannot listen on %s/%s: %s", dir, HL_HOLDER_SOCKET,
			 hl_strerror(ret));
	}
	if (ret < 0) {
		hl_error("key holder: %s", err);
		hl_signer_free(keys);
		hl_heads_free(heads);
	} else {
		p->h = hl_holder_new(keys, heads);
		hl_holder_set_identity(p->h, id);
	}
	free(id);
	free(journal);
	return ret; /* the lock stays held (LOCKFD) until the process ends */
}

static void __attribute__((noreturn)) holder_main(const char *dir, int fd, bool listen,
						   hl_holder_confine *confine,
						   struct hl_holder_marks *marks)
{
	char err[HL_KEYS_ERR_LEN];
	struct holder_proc *p = xcalloc(1, sizeof(*p));
	p->marks = marks;
	int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	for (size_t i = 0; i <= CLIENTS_MAX; i++)
		p->conn[i].fd = -1;
	p->conn[0].fd = fd;
	p->listen_fd = -1;
	snprintf(p->conn[0].who, sizeof(p->conn[0].who), listen ? "the daemon" : "its command");
	if (dirfd < 0 || start(p, dir, dirfd, listen) < 0)
		_exit(1);
	if (confine && confine(dir, err, sizeof(err)) < 0) {
		hl_error("key holder: %s", err);
		_exit(1);
	}
	if (listen)
		hl_info("key holder running (pid %ld)", (long)getpid());
	serve(p);
	if (listen)
		unlinkat(dirfd, HL_HOLDER_SOCKET, 0);
	_exit(0);
}

void hl_holder_main(const char *dir, int fd)
{
	holder_main(dir, fd, true, NULL, NULL);
}

void hl_holder_marks_free(struct hl_holder_marks *m)
{
	if (m)
		munmap(m, sizeof(*m));
}

static int spawn(const char *dir, bool listen, hl_holder_confine *confine, int *fd, pid_t *pid,
		 struct hl_holder_marks **marks, char *err, size_t errlen)
{
	int sp[2];
	pid_t parent = getpid();
	struct hl_holder_marks *m = NULL;
	if (marks) {
		/* zeroed: nothing written, nothing durable */
		m = mmap(NULL, sizeof(*m), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
			 -1, 0);
		m = m == MAP_FAILED ? NULL : m;
		*marks = NULL;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
		int e = errno;
		hl_holder_marks_free(m);
		snprintf(err, errlen, "cannot start the key holder: socketpair: %s", strerror(e));
		return -e;
	}
	fflush(NULL);
	*pid = fork();
	if (*pid < 0) {
		int e = errno;
		close(sp[0]);
		close(sp[1]);
		hl_holder_marks_free(m);
		snprintf(err, errlen, "cannot start the key holder: fork: %s", strerror(e));
		return -e;
	}
	if (*pid == 0) {
		close(sp[0]);
		int mine = go_private(sp[1], parent);
		if (mine < 0)
			_exit(1);
		holder_main(dir, mine, listen, confine, m);
	}
	close(sp[1]);
	*fd = sp[0];
	if (marks)
		*marks = m;
	return 0;
}

int hl_holder_spawn(const char *dir, hl_holder_confine *confine, int *fd, pid_t *pid,
		    struct hl_holder_marks **marks, char *err, size_t errlen)
{
	return spawn(dir, true, confine, fd, pid, marks, err, errlen);
}

int hl_holder_spawn_own(const char *dir, int *fd, pid_t *pid, char *err, size_t errlen)
{
	return spawn(dir, false, NULL, fd, pid, NULL, err, errlen);
}
