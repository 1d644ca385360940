/* daemon/spawner.c — the spawner process (spawn.h says why it exists):
 * its loop, and what it does for each request (spawn_proto.h).
 *
 * THE LOOP.  poll() on the calls socket and on a pipe that the SIGCHLD
 * handler writes to.  A request is decoded (anything malformed is refused
 * with a reply, and logged), handled, and answered before the next is
 * read; ended children are reaped and each one known is reported by an
 * EXIT on the events socket.  End of file on the calls socket (the
 * daemon closed it, or died): SIGTERM to every hotline child still
 * running (AlarmCommand is left to finish, as it always was), then exit.
 *
 * A CHILD is made here and nowhere else: the command line from the
 * request's kind (the program is this one, /proc/self/exe as it was when
 * the daemon started, or AlarmCommand read from station.conf now), stdin
 * /dev/null, stdout the descriptor that came with the request or
 * /dev/null, stderr that descriptor or the daemon's log; the signal
 * dispositions and mask reset; every other descriptor closed on exec.  A
 * `bundle mail` runs in a session of its own, so that stopping it stops
 * hotline-mail too.  A pipe that closes on exec tells the spawner whether
 * the exec worked before it answers, as libuv's uv_spawn does. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/perms.h"
#include "daemon/spawn.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define KIDS_MAX 4096   /* at most one mail per peer, a pickup, a purge, three alarms */

extern char **environ;

struct kid {
	uint32_t id;
	pid_t pid;
	uint8_t kind;
};

struct spawner {
	const char *dir, *self;
	int call_fd, event_fd;
	int chld[2];               /* the SIGCHLD handler's pipe */
	struct kid kids[KIDS_MAX];
	size_t nkids;
};

static int chld_wfd = -1;

static void on_sigchld(int sig)
{
	int e = errno;
	(void)sig;
	(void)!write(chld_wfd, "c", 1);
	errno = e;
}

/* ---- the socket pair, both sides ---- */

ssize_t hl_spawn_send(int fd, const uint8_t *buf, size_t len, int pass_fd)
{
	struct iovec iov = { (void *)buf, len };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;
	if (pass_fd >= 0) {
		memset(&cm, 0, sizeof(cm));
		mh.msg_control = cm.buf;
		mh.msg_controllen = sizeof(cm.buf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &pass_fd, sizeof(int));
	}
	while ((n = sendmsg(fd, &mh, MSG_NOSIGNAL)) < 0 && errno == EINTR)
		;
	return n;
}

ssize_t hl_spawn_recv(int fd, uint8_t *buf, size_t cap, int fds[static HL_SPAWN_FDS_MAX],
		      int *nfds)
{
	union {
		char buf[CMSG_SPACE(HL_SPAWN_FDS_MAX * sizeof(int))];
		struct cmsghdr align;
	} cm;
	struct iovec iov = { buf, cap };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf,
			     .msg_controllen = sizeof(cm.buf) };
	ssize_t n;
	*nfds = 0;
	while ((n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); n >= 0 && c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int got;
			memcpy(&got, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (*nfds < HL_SPAWN_FDS_MAX)
				fds[(*nfds)++] = got;
			else
				close(got);
		}
	}
	if (n > 0 && (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (int i = 0; i < *nfds; i++)
			close(fds[i]);
		*nfds = 0;
		errno = EMSGSIZE;
		n = -1;
	}
	return n;
}

/* ---- replies and events ---- */

static void send_msg(int fd, const uint8_t *buf, int len, int pass_fd)
{
	if (len >= 0)
		(void)hl_spawn_send(fd, buf, (size_t)len, pass_fd);
}

static void reply(struct spawner *s, int status, uint32_t pid, const char *text, int pass_fd)
{
	struct hl_spawn_reply r = { .status = status, .pid = pid };
	uint8_t buf[HL_SPAWN_TEXT_MAX + 16];
	snprintf(r.text, sizeof(r.text), "%s", text ? text : "");
	send_msg(s->call_fd, buf, hl_spawn_reply_encode(&r, buf, sizeof(buf)), pass_fd);
}

static void reap(struct spawner *s)
{
	char drain[64];
	int st;
	pid_t pid;
	while (read(s->chld[0], drain, sizeof(drain)) > 0)
		;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (size_t i = 0; i < s->nkids; i++) {
			if (s->kids[i].pid != pid)
				continue;
			struct hl_spawn_exit e = { s->kids[i].id,
						   WIFEXITED(st) ? WEXITSTATUS(st) : 0,
						   WIFSIGNALED(st) ? WTERMSIG(st) : 0 };
			uint8_t buf[32];
			send_msg(s->event_fd, buf, hl_spawn_exit_encode(&e, buf, sizeof(buf)), -1);
			s->kids[i] = s->kids[--s->nkids];
			break;
		}
	}
}

/* ---- a child ---- */

struct plan {
	const char *path;
	char *argv[12];
	char **env;                /* NULL: the spawner's environment */
	char after[24];
	hl_station_conf *conf;     /* ALARM's station.conf */
};

/* The environment of an alarm: ours without HOTLINE_*, then the alarm's
 * checked variables, then the station's own. */
static char **alarm_env(const struct spawner *s, const struct hl_spawn_request *r,
			const hl_station_conf *conf)
{
	size_t n = 0, k = 0;
	while (environ && environ[n])
		n++;
	char **env = xcalloc(n + r->nenv + 3, sizeof(*env));
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "HOTLINE_", 8) != 0)
			env[k++] = xstrdup(environ[i]);
	for (unsigned i = 0; i < r->nenv; i++)
		if (strncmp(r->env[i], "HOTLINE_DIR=", 12) != 0 &&
		    strncmp(r->env[i], "HOTLINE_STATION=", 16) != 0)
			env[k++] = xstrdup(r->env[i]);
	env[k++] = xasprintf("HOTLINE_STATION=%s", conf->name);
	env[k++] = xasprintf("HOTLINE_DIR=%s", s->dir);
	env[k] = NULL;
	return env;
}

static void plan_free(struct plan *p)
{
	for (size_t i = 0; p->env && p->env[i]; i++)
		free(p->env[i]);
	free(p->env);
	hl_conf_free(p->conf);
}

/* The command line for R; 0, or a negative code with TEXT saying why. */
static int make_plan(const struct spawner *s, const struct hl_spawn_request *r, struct plan *p,
		     char *text, size_t textlen)
{
	char cerr[HL_CONF_ERR_LEN];
	size_t n = 0;
	memset(p, 0, sizeof(*p));
	if (r->kind == HL_SPAWN_ALARM) {
		int ret = hl_conf_load(s->dir, &p->conf, cerr);
		if (ret < 0) {
			snprintf(text, textlen, "%s", cerr);
			return ret;
		}
		if (!p->conf->alarm_command[0]) {
			snprintf(text, textlen, "station.conf sets no AlarmCommand");
			return HL_ENOTFOUND;
		}
		p->path = p->conf->alarm_command;
		p->argv[0] = p->conf->alarm_command;
		p->env = alarm_env(s, r, p->conf);
		return 0;
	}
	p->path = s->self;
	p->argv[n++] = (char *)s->self;
	p->argv[n++] = "-d";
	p->argv[n++] = (char *)s->dir;
	if (r->kind == HL_SPAWN_PURGE) {
		p->argv[n++] = "purge";
		p->argv[n++] = "--yes";
		return 0;
	}
	p->argv[n++] = "bundle";
	if (r->kind == HL_SPAWN_PICKUP) {
		p->argv[n++] = "import";
		p->argv[n++] = "--maildir";
		return 0;
	}
	p->argv[n++] = "mail";
	p->argv[n++] = (char *)r->peer;
	if (r->after) {
		snprintf(p->after, sizeof(p->after), "%llu", (unsigned long long)r->after);
		p->argv[n++] = "--after";
		p->argv[n++] = p->after;
	}
	if (r->flags & HL_SPAWN_FLAG_FLASH_ONLY)
		p->argv[n++] = "--flash-only";
	if (r->flags & HL_SPAWN_FLAG_IF_ITEMS)
		p->argv[n++] = "--if-items";
	return 0;
}

/* In the child, between fork and exec: never returns. */
static _Noreturn void child(const struct plan *p, const struct hl_spawn_request *r, int out_fd,
			    int errpipe)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t none;
	int e;
	if (r->kind == HL_SPAWN_MAIL)
		setsid();
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(out_fd >= 0 ? out_fd : null, 1) < 0 ||
	    ((r->flags & HL_SPAWN_FLAG_ERR_TO_OUT) && dup2(out_fd, 2) < 0))
		goto fail;
	/* everything else goes at exec (the pipe that reports a failure too) */
	if (syscall(SYS_close_range, 3, ~0U, 4 /* CLOSE_RANGE_CLOEXEC */) < 0)
		for (int fd = 3; fd < 1024; fd++)
			if (fd != errpipe)
				fcntl(fd, F_SETFD, FD_CLOEXEC);
	execve(p->path, p->argv, p->env ? p->env : environ);
fail:
	e = errno;
	(void)!write(errpipe, &e, sizeof(e));
	_exit(127);
}

static void do_spawn(struct spawner *s, const struct hl_spawn_request *r, int out_fd)
{
	char text[HL_SPAWN_TEXT_MAX];
	struct plan p;
	int ep[2], e = 0;
	if (s->nkids == KIDS_MAX) {
		reply(s, HL_EBUSY, 0, "too many children running", -1);
		return;
	}
	int ret = make_plan(s, r, &p, text, sizeof(text));
	if (ret == 0 && pipe2(ep, O_CLOEXEC) < 0) {
		ret = -errno;
		snprintf(text, sizeof(text), "pipe: %s", strerror(errno));
	}
	if (ret < 0) {
		reply(s, ret, 0, text, -1);
		plan_free(&p);
		return;
	}
	pid_t pid = fork();
	if (pid == 0)
		child(&p, r, out_fd, ep[1]);
	close(ep[1]);
	if (pid < 0)
		e = errno;
	else if (read(ep[0], &e, sizeof(e)) == sizeof(e))
		waitpid(pid, NULL, 0);   /* the exec failed; the child is gone */
	else
		e = 0;
	close(ep[0]);
	if (e) {
		snprintf(text, sizeof(text), "cannot run %s: %s", p.path, strerror(e));
		reply(s, -e, 0, text, -1);
	} else {
		s->kids[s->nkids++] = (struct kid){ r->id, pid, r->kind };
		reply(s, 0, (uint32_t)pid, NULL, -1);
	}
	plan_free(&p);
}

static void do_kill(struct spawner *s, const struct hl_spawn_request *r)
{
	for (size_t i = 0; i < s->nkids; i++)
		if (s->kids[i].id == r->id)
			kill(s->kids[i].kind == HL_SPAWN_MAIL ? -s->kids[i].pid : s->kids[i].pid,
			     r->sig);
	reply(s, 0, 0, NULL, -1);   /* gone already: its EXIT is on its way */
}

static void do_conf(struct spawner *s)
{
	char cerr[HL_CONF_ERR_LEN] = "";
	char *path = hl_path_join(s->dir, HL_CONF_FILE);
	int ret = hl_station_validate_perms(s->dir, HL_UID_NONE, cerr);
	int fd = ret < 0 ? -1 : open(path, O_RDONLY | O_CLOEXEC);
	if (ret == 0 && fd < 0) {
		ret = -errno;
		snprintf(cerr, sizeof(cerr), "%s: %s", path, strerror(errno));
	}
	reply(s, ret, 0, cerr, fd);
	if (fd >= 0)
		close(fd);
	free(path);
}

static void do_unlink_control(struct spawner *s)
{
	char *path = hl_path_join(s->dir, HL_CONTROL_SOCKET);
	int ret = unlink(path) == 0 || errno == ENOENT ? 0 : -errno;
	reply(s, ret, 0, ret ? strerror(-ret) : NULL, -1);
	free(path);
}

/* One request from the calls socket; false at end of file. */
static bool one_request(struct spawner *s)
{
	uint8_t buf[HL_SPAWN_MSG_MAX];
	struct hl_spawn_request *r = xmalloc(sizeof(*r));
	int fds[HL_SPAWN_FDS_MAX], nfds;
	ssize_t n = hl_spawn_recv(s->call_fd, buf, sizeof(buf), fds, &nfds);
	if (n == 0 || (n < 0 && errno != EMSGSIZE)) {
		free(r);
		return false;   /* the daemon's end is gone */
	}
	int ret = n > 0 ? hl_spawn_request_decode(buf, (size_t)n, r) : HL_ETOOBIG;
	bool want_fd = ret == 0 && r->op == HL_SPAWN_OP_SPAWN && (r->flags & HL_SPAWN_FLAG_STDOUT);
	if (ret == 0 && nfds != want_fd)
		ret = HL_EINVAL;
	if (ret < 0) {
		fprintf(stderr, "hotline: spawner: refused a malformed request: %s\n",
			hl_strerror(ret));
		reply(s, ret, 0, "malformed request", -1);
	} else {
		switch (r->op) {
		case HL_SPAWN_OP_SPAWN: do_spawn(s, r, want_fd ? fds[0] : -1); break;
		case HL_SPAWN_OP_KILL: do_kill(s, r); break;
		case HL_SPAWN_OP_CONF: do_conf(s); break;
		default: do_unlink_control(s); break;
		}
	}
	for (int i = 0; i < nfds; i++)
		close(fds[i]);
	free(r);
	return true;
}

_Noreturn void hl_spawner_main(const char *dir, const char *self, int call_fd, int event_fd)
{
	static struct spawner s;
	struct sigaction ign = { .sa_handler = SIG_IGN }, chld = { .sa_handler = on_sigchld };
	s.dir = dir;
	s.self = self;
	s.call_fd = call_fd;
	s.event_fd = event_fd;
	prctl(PR_SET_NAME, "hotline-spawner");
	prctl(PR_SET_DUMPABLE, 0);
	if (pipe2(s.chld, O_CLOEXEC | O_NONBLOCK) < 0)
		_exit(1);
	chld_wfd = s.chld[1];
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGTERM, &ign, NULL);
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	chld.sa_flags = SA_RESTART | SA_NOCLDSTOP;
	sigaction(SIGCHLD, &chld, NULL);
	for (;;) {
		struct pollfd pf[2] = { { s.call_fd, POLLIN, 0 }, { s.chld[0], POLLIN, 0 } };
		if (poll(pf, 2, -1) < 0 && errno != EINTR)
			break;
		if (pf[1].revents)
			reap(&s);
		if (pf[0].revents && !one_request(&s))
			break;
	}
	for (size_t i = 0; i < s.nkids; i++)
		if (s.kids[i].kind != HL_SPAWN_ALARM)
			kill(s.kids[i].kind == HL_SPAWN_MAIL ? -s.kids[i].pid : s.kids[i].pid,
			     SIGTERM);
	_exit(0);
}
