/* daemon/control.c — the control socket (docs/protocol.md section 6): a
 * Unix stream socket, mode 0600, in the station directory, addressed
 * through /proc/self/fd/N (control_proto.h).  One request line per
 * connection, one response line, then the daemon closes.
 *
 * Limits: a request is at most HL_CONTROL_MAX_LINE bytes and must arrive
 * within CLIENT_TIMEOUT_MS; at most MAX_CLIENTS are served at once (more
 * get an error).  Requests: "status", "reload", "poke" (the store has
 * new work), "check" (a line check now: answered when the check is
 * decided, see checks.c), "send" (queue a text message: answered after
 * the commit, see control_send.c), and "watch", which keeps the connection
 * open and streams one event object per line until the client closes. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/calls.h"
#include "daemon/commit.h"
#include "daemon/control_proto.h"
#include "daemon/daemon.h"
#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "util/err.h"
#include "util/mem.h"

#define MAX_CLIENTS 16
#define CLIENT_TIMEOUT_MS 5000

struct hl_control_client {
	struct hl_control *srv;
	uv_pipe_t pipe;
	uv_timer_t timer;
	char *buf;
	size_t len;
	bool done;          /* a response is on its way; input is ignored */
	bool closing;
	bool watching;      /* a `watch` stream: events until the client closes */
	bool waiting_check; /* a "check" request: answered when the check is decided */
	uint8_t check_id[16];
	bool waiting_commit; /* a "send" request: answered after the burst's commit */
	bool then_watch;     /* ... and then streams events */
	char send_id[33];
	int refs;
	struct hl_control_client *prev, *next;
};

struct hl_control {
	struct hl_daemon *d;
	uv_pipe_t server;
	struct hl_control_client *clients;
	size_t nclients;
	bool sends_queued;  /* answer_sends waits for the commit */
};

static void on_client_closed(uv_handle_t *h)
{
	struct hl_control_client *cl = h->data;
	if (--cl->refs > 0)
		return;
	free(cl->buf);
	free(cl);
}

static void client_close(struct hl_control_client *cl)
{
	struct hl_control *srv = cl->srv;
	if (cl->closing)
		return;
	cl->closing = true;
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		srv->clients = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	srv->nclients--;
	uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
	uv_close((uv_handle_t *)&cl->timer, on_client_closed);
}

static void on_response_written(uv_write_t *req, int status)
{
	struct hl_control_client *cl = req->data;
	(void)status;
	free(req);
	client_close(cl);
}

/* Sends RESP (consumed) as one line, then closes. */
static void respond(struct hl_control_client *cl, json_t *resp)
{
	char *text = json_dumps(resp, JSON_COMPACT | JSON_ENSURE_ASCII);
	json_decref(resp);
	cl->done = true;
	uv_read_stop((uv_stream_t *)&cl->pipe);
	if (!text) {
		client_close(cl);
		return;
	}
	size_t n = strlen(text);
	uv_write_t *req = xmalloc(sizeof(*req) + n + 1);
	char *line = (char *)(req + 1);
	memcpy(line, text, n);
	line[n] = '\n';
	free(text);
	req->data = cl;
	uv_buf_t buf = uv_buf_init(line, (unsigned)(n + 1));
	if (uv_write(req, (uv_stream_t *)&cl->pipe, &buf, 1, on_response_written) < 0) {
		free(req);
		client_close(cl);
	}
}

static void respond_error(struct hl_control_client *cl, const char *msg)
{
	respond(cl, json_pack("{s:b, s:s}", "ok", 0, "error", msg));
}

static json_t *status_json(struct hl_daemon *d)
{
	char fp[HL_FP_TEXT_LEN], started[HL_RFC3339_LEN];
	json_t *peers = json_array();
	hl_fingerprint_text(d->fingerprint, fp);
	hl_rfc3339(d->started_wall_ms, started);
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		json_t *o = hl_peer_status_json(p);
		hl_services_peer_status(p, o);
		json_array_append_new(peers, o);
	}
	json_t *station = json_pack("{s:s, s:s, s:o, s:I, s:s}",
				    "name", d->conf->name,
				    "fingerprint", fp,
				    "listen", d->listen_addr[0] ? json_string(d->listen_addr)
								: json_null(),
				    "pid", (json_int_t)getpid(),
				    "started_at", started);
	hl_services_station_status(d, station);
	return json_pack("{s:b, s:o, s:o}", "ok", 1, "station", station, "peers", peers);
}

int hl_control_take(struct hl_control_client *cl)
{
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) < 0)
		return -1;
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	cl->done = true;
	client_close(cl);
	return dup;
}

/* A watch stream can last as long as the client likes; a client that
 * stops reading is dropped rather than buffered without end. */
#define WATCH_MAX_QUEUED (16u << 20)   /* ~100,000 events: a burst of receipts */

static void on_event_written(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

static void send_line(struct hl_control_client *cl, json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (!text)
		return;
	size_t n = strlen(text);
	uv_write_t *req = xmalloc(sizeof(*req) + n + 1);
	char *line = (char *)(req + 1);
	memcpy(line, text, n);
	line[n] = '\n';
	free(text);
	uv_buf_t buf = uv_buf_init(line, (unsigned)(n + 1));
	if (uv_write(req, (uv_stream_t *)&cl->pipe, &buf, 1, on_event_written) < 0) {
		free(req);
		client_close(cl);
	}
}

static void start_watch(struct hl_control_client *cl)
{
	cl->watching = true;
	cl->done = true;            /* further input is ignored; EOF closes */
	uv_timer_stop(&cl->timer);
	json_t *ok = json_pack("{s:b}", "ok", 1);
	send_line(cl, ok);
	json_decref(ok);
}

bool hl_control_watching(const struct hl_daemon *d)
{
	if (!d->control)
		return false;
	for (const struct hl_control_client *cl = d->control->clients; cl; cl = cl->next)
		if (cl->watching && !cl->closing)
			return true;
	return false;
}

void hl_control_emit(struct hl_daemon *d, json_t *ev)
{
	if (!d->control)
		return;
	struct hl_control_client *cl = d->control->clients, *next;
	for (; cl; cl = next) {
		next = cl->next;
		if (!cl->watching || cl->closing)
			continue;
		if (uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe) > WATCH_MAX_QUEUED) {
			client_close(cl);
			continue;
		}
		send_line(cl, ev);
	}
}

void hl_control_wait_check(struct hl_control_client *cl, const uint8_t id[static 16])
{
	/* The check's deadline (at most an hour) bounds the wait, not the
	 * request timer; further input is ignored. */
	cl->waiting_check = true;
	cl->done = true;
	memcpy(cl->check_id, id, 16);
	uv_timer_stop(&cl->timer);
	uv_read_stop((uv_stream_t *)&cl->pipe);
}

void hl_control_reply_check(struct hl_daemon *d, const uint8_t id[static 16], json_t *resp)
{
	struct hl_control_client *cl = d->control ? d->control->clients : NULL, *next;
	for (; cl; cl = next) {
		next = cl->next;
		if (cl->waiting_check && !cl->closing && memcmp(cl->check_id, id, 16) == 0) {
			cl->waiting_check = false;
			respond(cl, json_incref(resp));
		}
	}
	json_decref(resp);
}

/* After the commit (COMMITTED) or its rollback: the "send" requests
 * waiting for it are answered (before the engines' output, which sends
 * their messages).  ARG is unused: the waiting clients are on the list,
 * and the list is gone once the control socket has stopped. */
static void answer_sends(struct hl_daemon *d, bool committed, void *arg)
{
	(void)arg;
	if (d->control)
		d->control->sends_queued = false;
	struct hl_control_client *cl = d->control ? d->control->clients : NULL, *next;
	for (; cl; cl = next) {
		next = cl->next;
		if (!cl->waiting_commit || cl->closing)
			continue;
		cl->waiting_commit = false;
		if (!committed) {
			respond_error(cl, "the store could not commit the message (not queued; see the daemon's log)");
			continue;
		}
		json_t *ok = json_pack("{s:b, s:s}", "ok", 1, "id", cl->send_id);
		if (cl->then_watch) {
			cl->watching = true;
			send_line(cl, ok);
			json_decref(ok);
		} else {
			respond(cl, ok);
		}
	}
}

void hl_control_wait_commit(struct hl_control_client *cl, const char *hex, bool then_watch)
{
	struct hl_control *srv = cl->srv;
	/* Reading goes on, to notice a client that leaves meanwhile. */
	cl->waiting_commit = true;
	cl->then_watch = then_watch;
	cl->done = true;
	snprintf(cl->send_id, sizeof(cl->send_id), "%s", hex);
	uv_timer_stop(&cl->timer);
	if (!srv->sends_queued) {
		srv->sends_queued = true;
		hl_commit_defer(srv->d, answer_sends, NULL);
	}
}

static void handle_request(struct hl_control_client *cl, const char *line, size_t len)
{
	struct hl_daemon *d = cl->srv->d;
	char cmd[HL_CONTROL_CMD_MAX + 1], err[HL_CONTROL_ERR_LEN];
	json_t *req = NULL;

	if (hl_control_parse_request(line, len, &req, cmd, err) < 0) {
		respond_error(cl, err);
		return;
	}
	if (strcmp(cmd, "check") == 0 || strcmp(cmd, "send") == 0) {
		json_t *resp = cmd[0] == 'c' ? hl_checks_control(d, req, cl)
					     : hl_send_control(d, req, cl);
		json_decref(req);
		if (resp)
			respond(cl, resp);
		return;
	}
	if (strncmp(cmd, "call", 4) == 0) {
		json_t *resp = hl_calls_control(d, cmd, req, cl);
		json_decref(req);
		if (resp)
			respond(cl, resp);
		return;
	}
	if (strcmp(cmd, "stage") == 0) {
		json_t *resp = hl_stage_control(d, req);
		json_decref(req);
		respond(cl, resp);
		return;
	}
	json_decref(req);
	if (strcmp(cmd, "status") == 0) {
		respond(cl, status_json(d));
	} else if (strcmp(cmd, "poke") == 0) {
		hl_delivery_poke(d);
		respond(cl, json_pack("{s:b}", "ok", 1));

	} else if (strcmp(cmd, "watch") == 0) {
		start_watch(cl);
	} else if (strcmp(cmd, "reload") == 0) {
		char rerr[HL_DAEMON_ERR_LEN];
		if (hl_daemon_reload(d, rerr, sizeof(rerr)) < 0)
			respond_error(cl, rerr);
		else
			respond(cl, json_pack("{s:b}", "ok", 1));
	} else {
		char msg[HL_CONTROL_ERR_LEN];
		/* CMD came from json: escaped on the way out, capped at 32 bytes. */
		snprintf(msg, sizeof(msg), "unknown command '%s'", cmd);
		respond_error(cl, msg);
	}
}

static void on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct hl_control_client *cl = h->data;
	(void)suggested;
	/* Room for one more byte than the cap, so an over-long line is seen. */
	size_t room = HL_CONTROL_MAX_LINE + 1 - cl->len;
	*buf = uv_buf_init(cl->buf + cl->len, (unsigned)(room < 4096 ? room : 4096));
}

static void on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hl_control_client *cl = s->data;
	(void)buf;
	if (cl->watching && nread < 0) {
		client_close(cl);
		return;
	}
	if (cl->waiting_commit && nread < 0) {
		cl->then_watch = false; /* gone: answer (into the void) and close */
		return;
	}
	if (cl->done || cl->closing)
		return;
	if (nread < 0) {
		/* EOF: a request without its newline still counts. */
		if (nread == UV_EOF && cl->len > 0)
			handle_request(cl, cl->buf, cl->len);
		else
			client_close(cl);
		return;
	}
	size_t old = cl->len;
	cl->len += (size_t)nread;
	char *nl = memchr(cl->buf + old, '\n', (size_t)nread);
	if (nl) {
		handle_request(cl, cl->buf, (size_t)(nl - cl->buf) + 1);
		return;
	}
	if (cl->len > HL_CONTROL_MAX_LINE - 1) {
		char msg[64];
		snprintf(msg, sizeof(msg), "request longer than %d bytes", HL_CONTROL_MAX_LINE);
		respond_error(cl, msg);
	}
}

static void on_client_timeout(uv_timer_t *t)
{
	struct hl_control_client *cl = t->data;
	if (!cl->done)
		respond_error(cl, "no complete request within 5 seconds");
}

static void on_client(uv_stream_t *server, int status)
{
	struct hl_control *srv = server->data;
	if (status < 0)
		return;
	struct hl_control_client *cl = xcalloc(1, sizeof(*cl));
	cl->srv = srv;
	cl->buf = xmalloc(HL_CONTROL_MAX_LINE + 1);
	uv_pipe_init(&srv->d->loop, &cl->pipe, 0);
	uv_timer_init(&srv->d->loop, &cl->timer);
	cl->pipe.data = cl->timer.data = cl;
	cl->refs = 2;
	cl->next = srv->clients;
	if (srv->clients)
		srv->clients->prev = cl;
	srv->clients = cl;
	srv->nclients++;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) < 0) {
		client_close(cl);
		return;
	}
	if (srv->nclients > MAX_CLIENTS) {
		respond_error(cl, "too many control connections; try again");
		return;
	}
	uv_timer_start(&cl->timer, on_client_timeout, CLIENT_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&cl->pipe, on_client_alloc, on_client_read) < 0)
		client_close(cl);
}

static void on_server_closed(uv_handle_t *h)
{
	free(h->data);
}

int hl_control_start(struct hl_daemon *d, char *err, size_t errlen)
{
	struct sockaddr_un sa;
	struct hl_control *srv = xcalloc(1, sizeof(*srv));
	int ret;

	srv->d = d;
	/* We hold the daemon lock: any socket left here is stale. */
	if (unlinkat(d->dirfd, HL_CONTROL_SOCKET, 0) == 0)
		hl_info("removed a stale %s", HL_CONTROL_SOCKET);
	ret = hl_control_sockaddr(d->dirfd, &sa);
	if (ret < 0) {
		snprintf(err, errlen, "control socket path: %s", hl_strerror(ret));
		free(srv);
		return ret;
	}
	uv_pipe_init(&d->loop, &srv->server, 0);
	srv->server.data = srv;
	/* The socket is born 0600: no window in which others could connect. */
	mode_t old_mask = umask(0077);
	ret = uv_pipe_bind(&srv->server, sa.sun_path);
	umask(old_mask);
	if (ret == 0 && fchmodat(d->dirfd, HL_CONTROL_SOCKET, 0600, 0) < 0)
		ret = -errno;
	if (ret == 0)
		ret = uv_listen((uv_stream_t *)&srv->server, 16, on_client);
	if (ret < 0) {
		snprintf(err, errlen, "cannot create the control socket %s/%s: %s", d->dir,
			 HL_CONTROL_SOCKET, uv_strerror(ret));
		uv_close((uv_handle_t *)&srv->server, on_server_closed);
		return ret;
	}
	d->control = srv;
	hl_debug("control socket %s/%s ready", d->dir, HL_CONTROL_SOCKET);
	return 0;
}

void hl_control_stop(struct hl_daemon *d)
{
	struct hl_control *srv = d->control;
	if (!srv)
		return;
	d->control = NULL;
	while (srv->clients)
		client_close(srv->clients);
	/* libuv unlinks a socket it bound when the handle closes; unlink here
	 * too, at once, so that nobody connects to a daemon on its way out. */
	if (unlinkat(d->dirfd, HL_CONTROL_SOCKET, 0) < 0 && errno != ENOENT)
		hl_warn("removing %s/%s: %s", d->dir, HL_CONTROL_SOCKET, strerror(errno));
	uv_close((uv_handle_t *)&srv->server, on_server_closed);
}
