/* daemon/clients.c — the connections to the control socket (docs/protocol.md
 * section 6), one struct hl_control_client each: reading the one request
 * line within its limits, the one answer line, and the requests whose
 * answer is more than one line or comes later — the `watch` stream, a
 * "check" answered when it is decided, a "send" answered after the commit,
 * a call that takes the connection for its audio.  What a request means is
 * control.c's; the services answer through the functions here
 * (daemon_int.h, "clients.c").
 *
 * A CLIENT'S LIFE (enum client_state)
 *
 *   READING --line--> (control.c's table) --answer-->  ANSWERING --written--> CLOSING
 *      |                   |--"watch"------------->  WATCHING  --EOF, or too slow--> CLOSING
 *      |                   |--"check"------------->  WAIT_CHECK --decided--> ANSWERING
 *      |                   |--"send"-------------->  WAIT_COMMIT --commit--> ANSWERING, or
 *      |                   |                                                 WATCHING ("wait")
 *      |                   '--"call", "call_answer"--> CLOSING (the call took the socket)
 *      '--too long, 5 s without a line, too many clients--> ANSWERING (an error)
 *
 * Input is read only in READING (a line) and in WATCHING and WAIT_COMMIT
 * (to notice the client leaving); a client gone while its "send" waits is
 * still answered, into the void, so that the answer follows the commit.
 * Limits: a request is at most HL_CONTROL_MAX_LINE bytes and must arrive
 * within CLIENT_TIMEOUT_MS; at most MAX_CLIENTS are served at once; a
 * watcher that does not read is dropped past WATCH_MAX_QUEUED bytes. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/clients.h"
#include "daemon/commit.h"
#include "station/control_proto.h"
#include "daemon/daemon_int.h"
#include "util/mem.h"

#define MAX_CLIENTS 16
#define CLIENT_TIMEOUT_MS 5000
/* A watch stream can last as long as the client likes; a client that
 * stops reading is dropped rather than buffered without end. */
#define WATCH_MAX_QUEUED (16u << 20)   /* ~100,000 events: a burst of receipts */

enum client_state {
	CL_READING,       /* its request line; the timer runs */
	CL_ANSWERING,     /* its answer is being written, then it closes */
	CL_WATCHING,      /* events until the client closes */
	CL_WAIT_CHECK,    /* a "check": answered when the check is decided */
	CL_WAIT_COMMIT,   /* a "send": answered after the burst's commit */
	CL_CLOSING,       /* handles closing */
};

struct hl_control_client {
	struct hl_clients *set;
	enum client_state state;
	uv_pipe_t pipe;
	uv_timer_t timer;
	char *buf;
	size_t len;
	uint8_t check_id[16];    /* WAIT_CHECK */
	char send_id[33];        /* WAIT_COMMIT */
	bool then_watch;         /* WAIT_COMMIT: then WATCHING */
	int refs;
	struct hl_control_client *prev, *next;
};

struct hl_clients {
	struct hl_daemon *d;
	hl_client_line_fn *on_line;
	struct hl_control_client *list;
	size_t n;
	bool sends_queued;       /* answer_sends waits for the commit */
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
	struct hl_clients *set = cl->set;
	if (cl->state == CL_CLOSING)
		return;
	cl->state = CL_CLOSING;
	if (cl->prev)
		cl->prev->next = cl->next;
	else
		set->list = cl->next;
	if (cl->next)
		cl->next->prev = cl->prev;
	set->n--;
	uv_close((uv_handle_t *)&cl->pipe, on_client_closed);
	uv_close((uv_handle_t *)&cl->timer, on_client_closed);
}

static void on_answer_written(uv_write_t *req, int status)
{
	struct hl_control_client *cl = req->data;
	(void)status;
	free(req);
	client_close(cl);
}

static void on_line_written(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

/* Writes O as one line; with CLOSE, the client closes once it is out. */
static void write_line(struct hl_control_client *cl, json_t *o, bool close)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	if (!text) {
		if (close)
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
	if (uv_write(req, (uv_stream_t *)&cl->pipe, &buf, 1,
		     close ? on_answer_written : on_line_written) < 0) {
		free(req);
		client_close(cl);
	}
}

void hl_control_respond(struct hl_control_client *cl, json_t *resp)
{
	cl->state = CL_ANSWERING;
	uv_read_stop((uv_stream_t *)&cl->pipe);
	write_line(cl, resp, true);
	json_decref(resp);
}

void hl_control_start_watch(struct hl_control_client *cl)
{
	cl->state = CL_WATCHING;   /* further input is ignored; EOF closes */
	uv_timer_stop(&cl->timer);
	json_t *ok = hl_ctl_ok();
	write_line(cl, ok, false);
	json_decref(ok);
}

bool hl_control_watching(const struct hl_daemon *d)
{
	for (const struct hl_control_client *cl = d->clients ? d->clients->list : NULL; cl;
	     cl = cl->next)
		if (cl->state == CL_WATCHING)
			return true;
	return false;
}

void hl_control_emit(struct hl_daemon *d, json_t *ev)
{
	struct hl_control_client *cl = d->clients ? d->clients->list : NULL, *next;
	for (; cl; cl = next) {
		next = cl->next;
		if (cl->state != CL_WATCHING)
			continue;
		if (uv_stream_get_write_queue_size((uv_stream_t *)&cl->pipe) > WATCH_MAX_QUEUED)
			client_close(cl);
		else
			write_line(cl, ev, false);
	}
}

int hl_control_take(struct hl_control_client *cl)
{
	uv_os_fd_t fd;
	if (uv_fileno((uv_handle_t *)&cl->pipe, &fd) < 0)
		return -1;
	int dup = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	client_close(cl);
	return dup;
}

void hl_control_wait_check(struct hl_control_client *cl, const uint8_t id[static 16])
{
	/* The check's deadline (at most an hour) bounds the wait, not the
	 * request timer; further input is ignored. */
	cl->state = CL_WAIT_CHECK;
	memcpy(cl->check_id, id, 16);
	uv_timer_stop(&cl->timer);
	uv_read_stop((uv_stream_t *)&cl->pipe);
}

void hl_control_reply_check(struct hl_daemon *d, const uint8_t id[static 16], json_t *resp)
{
	struct hl_control_client *cl = d->clients ? d->clients->list : NULL, *next;
	for (; cl; cl = next) {
		next = cl->next;
		if (cl->state == CL_WAIT_CHECK && memcmp(cl->check_id, id, 16) == 0)
			hl_control_respond(cl, json_incref(resp));
	}
	json_decref(resp);
}

/* After the commit (COMMITTED) or its rollback: the "send" requests
 * waiting for it are answered (before the engines' output, which sends
 * their messages).  The waiting clients are on the list, which is gone
 * once the control socket has stopped. */
static void answer_sends(struct hl_daemon *d, bool committed, void *arg)
{
	(void)arg;
	struct hl_control_client *cl = d->clients ? d->clients->list : NULL, *next;
	if (d->clients)
		d->clients->sends_queued = false;
	for (; cl; cl = next) {
		next = cl->next;
		if (cl->state != CL_WAIT_COMMIT)
			continue;
		if (!committed) {
			hl_control_respond(cl, hl_ctl_error("the store could not commit the message (not queued; see the daemon's log)"));
		} else if (cl->then_watch) {
			json_t *ok = hl_ctl_ok_id(cl->send_id);
			cl->state = CL_WATCHING;
			write_line(cl, ok, false);
			json_decref(ok);
		} else {
			hl_control_respond(cl, hl_ctl_ok_id(cl->send_id));
		}
	}
}

void hl_control_wait_commit(struct hl_control_client *cl, const char *hex, bool then_watch)
{
	struct hl_clients *set = cl->set;
	/* Reading goes on, to notice a client that leaves meanwhile. */
	cl->state = CL_WAIT_COMMIT;
	cl->then_watch = then_watch;
	snprintf(cl->send_id, sizeof(cl->send_id), "%s", hex);
	uv_timer_stop(&cl->timer);
	if (!set->sends_queued) {
		set->sends_queued = true;
		hl_commit_defer(set->d, answer_sends, NULL);
	}
}

/* ---- reading the request ---- */

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
	struct hl_clients *set = cl->set;
	(void)buf;
	if (cl->state == CL_WATCHING && nread < 0) {
		client_close(cl);
		return;
	}
	if (cl->state == CL_WAIT_COMMIT && nread < 0) {
		cl->then_watch = false; /* gone: answer (into the void) and close */
		return;
	}
	if (cl->state != CL_READING)
		return;
	if (nread < 0) {
		/* EOF: a request without its newline still counts. */
		if (nread == UV_EOF && cl->len > 0)
			set->on_line(set->d, cl, cl->buf, cl->len);
		else
			client_close(cl);
		return;
	}
	size_t old = cl->len;
	cl->len += (size_t)nread;
	char *nl = memchr(cl->buf + old, '\n', (size_t)nread);
	if (nl) {
		set->on_line(set->d, cl, cl->buf, (size_t)(nl - cl->buf) + 1);
		return;
	}
	if (cl->len > HL_CONTROL_MAX_LINE - 1) {
		char msg[64];
		snprintf(msg, sizeof(msg), "request longer than %d bytes", HL_CONTROL_MAX_LINE);
		hl_control_respond(cl, hl_ctl_error(msg));
	}
}

static void on_client_timeout(uv_timer_t *t)
{
	struct hl_control_client *cl = t->data;
	if (cl->state == CL_READING)
		hl_control_respond(cl, hl_ctl_error("no complete request within 5 seconds"));
}

void hl_clients_accept(struct hl_daemon *d, uv_stream_t *server)
{
	struct hl_clients *set = d->clients;
	struct hl_control_client *cl = xcalloc(1, sizeof(*cl));
	cl->set = set;
	cl->state = CL_READING;
	cl->buf = xmalloc(HL_CONTROL_MAX_LINE + 1);
	uv_pipe_init(&d->loop, &cl->pipe, 0);
	uv_timer_init(&d->loop, &cl->timer);
	cl->pipe.data = cl->timer.data = cl;
	cl->refs = 2;
	cl->next = set->list;
	if (set->list)
		set->list->prev = cl;
	set->list = cl;
	set->n++;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) < 0) {
		client_close(cl);
		return;
	}
	if (set->n > MAX_CLIENTS) {
		hl_control_respond(cl, hl_ctl_error("too many control connections; try again"));
		return;
	}
	uv_timer_start(&cl->timer, on_client_timeout, CLIENT_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&cl->pipe, on_client_alloc, on_client_read) < 0)
		client_close(cl);
}

void hl_clients_open(struct hl_daemon *d, hl_client_line_fn *on_line)
{
	struct hl_clients *set = xcalloc(1, sizeof(*set));
	set->d = d;
	set->on_line = on_line;
	d->clients = set;
}

void hl_clients_close(struct hl_daemon *d)
{
	struct hl_clients *set = d->clients;
	if (!set)
		return;
	while (set->list)
		client_close(set->list);
	d->clients = NULL;
	free(set);
}
