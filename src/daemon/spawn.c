/* daemon/spawn.c — the daemon's side of the spawner (spawn.h): forking it,
 * the requests, and the children's ends on the loop.
 *
 * States of the spawner as the daemon sees it: RUNNING (from the fork) ->
 * DETACHING (the daemon stops: the event watch closes once the last
 * child has ended) -> closed; or RUNNING -> DEAD (its socket closed, or a
 * reply did not come in CALL_TIMEOUT_MS): every child still listed gets
 * its exit_cb with SIGKILL, and the daemon stops with an error (on the
 * loop, from the events socket's end of file: a request that finds the
 * spawner gone only fails).
 * Invariant: a child is on the list from its spawn until its exit_cb (or
 * hl_child_forget), and exit_cb runs once. */
#include "daemon/spawn.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon_int.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"

#define CALL_TIMEOUT_MS 10000
#define CLOSE_WAIT_MS 2000       /* for the spawner to exit when the daemon does */

struct hl_spawner {
	pid_t pid;
	int call_fd, event_fd;
	uv_poll_t poll;
	bool polling, detaching, broken, dead;
	uint32_t next_id;
	struct hl_child *children;
	/* the daemon's stop, handed down by hl_spawner_attach (the spawner
	 * lies below the daemon's life, daemon.c, and does not call up) */
	void (*gone)(struct hl_daemon *d);
};

/* ---- start and stop ---- */

int hl_spawner_start(struct hl_daemon *d, char *err, size_t errlen)
{
	char self[4096];
	int call[2], ev[2];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0) {
		snprintf(err, errlen, "cannot find this program's path (/proc/self/exe): %s",
			 strerror(errno));
		return -errno;
	}
	self[n] = '\0';
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, call) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ev) < 0) {
		snprintf(err, errlen, "the spawner's sockets: %s", strerror(errno));
		return -errno;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "cannot fork the spawner: %s", strerror(errno));
		return -errno;
	}
	if (pid == 0) {
		/* the spawner: its two ends as 3 and 4, nothing else of ours */
		if (dup2(call[1], 3) < 0 || dup2(ev[1], 4) < 0)
			_exit(1);
		if (syscall(SYS_close_range, 5, ~0U, 0) < 0)
			for (int fd = 5; fd < 1024; fd++)
				close(fd);
		hl_spawner_main(d->dir, self, 3, 4);
	}
	close(call[1]);
	close(ev[1]);
	struct hl_spawner *s = xcalloc(1, sizeof(*s));
	s->pid = pid;
	s->call_fd = call[0];
	s->event_fd = ev[0];
	fcntl(s->event_fd, F_SETFL, fcntl(s->event_fd, F_GETFL) | O_NONBLOCK);
	d->spawner = s;
	hl_debug("spawner started (pid %ld)", (long)pid);
	return 0;
}

static void on_poll_closed(uv_handle_t *h)
{
	(void)h;
}

static void stop_polling(struct hl_spawner *s)
{
	if (s->polling) {
		s->polling = false;
		uv_close((uv_handle_t *)&s->poll, on_poll_closed);
	}
}

/* The spawner is gone: its children are as good as killed, and the daemon
 * cannot run any more of them: it stops. */
static void spawner_dead(struct hl_daemon *d, const char *why)
{
	struct hl_spawner *s = d->spawner;
	if (s->dead)
		return;
	s->dead = s->broken = true;
	stop_polling(s);
	if (!d->stopping) {
		hl_error("the spawner (pid %ld) %s: the daemon stops (it cannot run the mail "
			 "pickup, the email path or AlarmCommand without it)", (long)s->pid, why);
		d->failed = true;
		s->gone(d);
	}
	while (s->children) {
		struct hl_child *c = s->children;
		s->children = c->next;
		c->exit_cb(c, -1, SIGKILL);
	}
}

static void on_event(uv_poll_t *h, int status, int events)
{
	struct hl_daemon *d = h->data;
	struct hl_spawner *s = d->spawner;
	uint8_t buf[64];
	(void)status;
	(void)events;
	for (;;) {
		ssize_t n = recv(s->event_fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			spawner_dead(d, "is gone");
			return;
		}
		struct hl_spawn_exit e;
		if (hl_spawn_exit_decode(buf, (size_t)n, &e) < 0) {
			hl_warn("the spawner sent a malformed event (%zd bytes)", n);
			continue;
		}
		for (struct hl_child **pp = &s->children; *pp; pp = &(*pp)->next) {
			struct hl_child *c = *pp;
			if (c->id != e.id)
				continue;
			*pp = c->next;
			c->exit_cb(c, e.status, e.signal);
			break;
		}
		if (s->detaching && !s->children)
			stop_polling(s);
	}
}

int hl_spawner_attach(struct hl_daemon *d, void (*gone)(struct hl_daemon *d))
{
	struct hl_spawner *s = d->spawner;
	s->gone = gone;
	int ret = uv_poll_init(&d->loop, &s->poll, s->event_fd);
	if (ret < 0)
		return ret;
	s->poll.data = d;
	s->polling = true;
	return uv_poll_start(&s->poll, UV_READABLE | UV_DISCONNECT, on_event);
}

void hl_spawner_detach(struct hl_daemon *d)
{
	struct hl_spawner *s = d->spawner;
	if (!s)
		return;
	s->detaching = true;
	if (!s->children)
		stop_polling(s);
}

void hl_spawner_close(struct hl_daemon *d)
{
	struct hl_spawner *s = d->spawner;
	if (!s)
		return;
	close(s->call_fd);
	close(s->event_fd);
	/* It stops at the end of file; a moment to reap it. */
	for (int ms = 0; ms < CLOSE_WAIT_MS; ms += 10) {
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		if (waitpid(s->pid, NULL, WNOHANG) != 0)
			break;
		nanosleep(&ts, NULL);
	}
	free(s);
	d->spawner = NULL;
}

/* ---- requests ---- */

/* Sends RQ (and PASS_FD) and reads the reply into RP (a descriptor that
 * came with it into *GOT_FD, when not NULL).  0, or a negative code: the
 * spawner did not answer, and is taken for dead. */
static int call(struct hl_daemon *d, const struct hl_spawn_request *rq, int pass_fd,
		struct hl_spawn_reply *rp, int *got_fd)
{
	struct hl_spawner *s = d->spawner;
	uint8_t buf[HL_SPAWN_MSG_MAX];
	int fds[HL_SPAWN_FDS_MAX], nfds = 0;
	int len = hl_spawn_request_encode(rq, buf, sizeof(buf));
	if (got_fd)
		*got_fd = -1;
	if (!s || s->broken)
		return HL_ESTATE;
	if (len < 0)
		return len;
	ssize_t n = hl_spawn_send(s->call_fd, buf, (size_t)len, pass_fd);
	struct pollfd pf = { s->call_fd, POLLIN, 0 };
	if (n == len) {
		while ((n = poll(&pf, 1, CALL_TIMEOUT_MS)) < 0 && errno == EINTR)
			;
		n = n == 1 ? hl_spawn_recv(s->call_fd, buf, sizeof(buf), fds, &nfds) : -1;
	}
	for (int i = 0; i < nfds; i++) {
		if (i == 0 && got_fd)
			*got_fd = fds[0];
		else
			close(fds[i]);
	}
	if (n <= 0 || hl_spawn_reply_decode(buf, (size_t)n, rp) < 0) {
		/* Not from here, in the middle of some service's work: the end of
		 * file this makes on the events socket brings on_event, on the
		 * loop, to spawner_dead(). */
		hl_error("the spawner %s", n <= 0 ? "does not answer" : "sent a malformed reply");
		s->broken = true;
		shutdown(s->event_fd, SHUT_RDWR);
		return HL_ESTATE;
	}
	return 0;
}

/* "KEY=VALUE" as the spawner takes it: control characters become '?',
 * the whole cut to HL_SPAWN_ENV_LEN. */
static void env_copy(char dst[static HL_SPAWN_ENV_LEN + 1], const char *src)
{
	size_t i = 0;
	for (; src[i] && i < HL_SPAWN_ENV_LEN; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ? '?' : src[i];
	dst[i] = '\0';
}

int hl_spawn(struct hl_daemon *d, struct hl_child *c, const struct hl_spawn_req *req,
	     char *err, size_t errlen)
{
	struct hl_spawn_request *rq = xcalloc(1, sizeof(*rq));
	struct hl_spawn_reply rp;
	rq->op = HL_SPAWN_OP_SPAWN;
	rq->kind = (uint8_t)req->kind;
	uint32_t id = rq->id = d->spawner ? ++d->spawner->next_id : 0;
	rq->flags = (req->out_fd >= 0 ? HL_SPAWN_FLAG_STDOUT : 0) |
		    (req->out_fd >= 0 && req->err_to_out ? HL_SPAWN_FLAG_ERR_TO_OUT : 0) |
		    (req->flash_only ? HL_SPAWN_FLAG_FLASH_ONLY : 0) |
		    (req->if_items ? HL_SPAWN_FLAG_IF_ITEMS : 0);
	rq->after = req->after;
	snprintf(rq->peer, sizeof(rq->peer), "%s", req->peer ? req->peer : "");
	for (size_t i = 0; req->env && req->env[i] && rq->nenv < HL_SPAWN_ENV_MAX; i++)
		if (strncmp(req->env[i], "HOTLINE_", 8) == 0)
			env_copy(rq->env[rq->nenv++], req->env[i]);
	int ret = call(d, rq, req->out_fd, &rp, NULL);
	free(rq);
	if (ret < 0) {
		snprintf(err, errlen, "the spawner is gone");
		return ret;
	}
	if (rp.status < 0) {
		snprintf(err, errlen, "%s", rp.text[0] ? rp.text : hl_strerror(rp.status));
		return rp.status;
	}
	c->pid = (int)rp.pid;
	c->id = id;
	c->next = d->spawner->children;
	d->spawner->children = c;
	return 0;
}

void hl_child_kill(struct hl_daemon *d, struct hl_child *c, int sig)
{
	struct hl_spawn_request rq = { .op = HL_SPAWN_OP_KILL, .id = c->id, .sig = (uint8_t)sig };
	struct hl_spawn_reply rp;
	(void)call(d, &rq, -1, &rp, NULL);
}

void hl_child_forget(struct hl_daemon *d, struct hl_child *c)
{
	struct hl_spawner *s = d->spawner;
	for (struct hl_child **pp = s ? &s->children : NULL; pp && *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	if (s && s->detaching && !s->children)
		stop_polling(s);
}

int hl_spawner_conf_load(struct hl_daemon *d, hl_station_conf **out,
			 char err[static HL_CONF_ERR_LEN])
{
	struct hl_spawn_request rq = { .op = HL_SPAWN_OP_CONF };
	struct hl_spawn_reply rp;
	int fd;
	*out = NULL;
	int ret = call(d, &rq, -1, &rp, &fd);
	if (ret == 0 && rp.status == 0 && fd < 0)
		rp.status = HL_ESTATE;
	if (ret < 0 || rp.status < 0) {
		snprintf(err, HL_CONF_ERR_LEN, "%.*s", HL_CONF_ERR_LEN - 1,
			 ret < 0 ? "the spawner is gone" : rp.text[0] ? rp.text
								: hl_strerror(rp.status));
		if (fd >= 0)
			close(fd);
		return ret < 0 ? ret : rp.status;
	}
	return hl_conf_load_fd(d->dir, fd, out, err);
}

void hl_spawner_unlink_control(struct hl_daemon *d)
{
	struct hl_spawn_request rq = { .op = HL_SPAWN_OP_UNLINK_CONTROL };
	struct hl_spawn_reply rp;
	if (call(d, &rq, -1, &rp, NULL) == 0 && rp.status < 0)
		hl_warn("removing %s/%s: %s", d->dir, HL_CONTROL_SOCKET, rp.text);
}
