/* daemon/control.c — the control socket (docs/protocol.md section 6): a
 * Unix stream socket, mode 0600, in the station directory, addressed
 * through /proc/self/fd/N (control_proto.h), and the table of what the
 * daemon does with each request.  One request line per connection, one
 * answer line, then the daemon closes — except for the requests that
 * stream (clients.c keeps each connection and its limits).
 *
 * A request line is parsed into its structure (control_proto.c: every
 * field checked there, the same code the commands use to write it); a
 * line that does not parse, an unknown "cmd" among them, gets one error
 * line and the connection closes.  Then the table below decides. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/clients.h"
#include "station/control_proto.h"
#include "daemon/daemon_int.h"
#include "daemon/spawn.h"
#include "daemon/service.h"
#include "station/status.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"

struct hl_control {
	uv_pipe_t server;
};

/* ---- the core's requests ---- */

/* The status structure (station/status.h): the core's fields, each peer's
 * (peer.c) and then, in the table's order, the services' hooks. */
static json_t *req_status(struct hl_daemon *d, const struct hl_ctl_request *req,
			  struct hl_peer *unused, struct hl_control_client *cl)
{
	char fp[HL_FP_TEXT_LEN], started[HL_RFC3339_LEN];
	struct hl_status s;
	(void)req, (void)unused, (void)cl;
	hl_status_init(&s, true);
	hl_fingerprint_text(d->fingerprint, fp);
	hl_rfc3339(d->started_wall_ms, started);
	for (struct hl_peer *p = d->peers; p; p = p->next) {
		struct hl_status_peer *e = hl_status_add_peer(&s);
		hl_peer_status(p, e);
		hl_services_peer_status(p, e->more);
	}
	hl_status_set(&s.name, d->conf->name);
	hl_status_set(&s.fingerprint, fp);
	hl_status_set(&s.listen, d->listen_addr[0] ? d->listen_addr : NULL);
	s.pid = (int64_t)getpid();
	hl_status_set(&s.started_at, started);
	hl_services_station_status(d, s.more);
	json_t *answer = hl_status_json(&s, true);
	hl_status_free(&s);
	return answer;
}

static json_t *req_reload(struct hl_daemon *d, const struct hl_ctl_request *req,
			  struct hl_peer *p, struct hl_control_client *cl)
{
	char err[HL_CONF_ERR_LEN];
	(void)req, (void)p, (void)cl;
	return hl_daemon_reload(d, err, sizeof(err)) < 0 ? hl_ctl_error(err) : hl_ctl_ok();
}

static json_t *req_poke(struct hl_daemon *d, const struct hl_ctl_request *req,
			struct hl_peer *p, struct hl_control_client *cl)
{
	(void)req, (void)p, (void)cl;
	hl_delivery_poke(d);
	return hl_ctl_ok();
}

static json_t *req_watch(struct hl_daemon *d, const struct hl_ctl_request *req,
			 struct hl_peer *p, struct hl_control_client *cl)
{
	(void)d, (void)req, (void)p;
	hl_control_start_watch(cl);
	return NULL;
}

/* ---- the table ----
 *
 * Each request's handler gets the parsed request, the peer it names (with
 * NEEDS_PEER) and its client, and returns the answer, or NULL when it has
 * arranged the answer itself.  Flags:
 *   NEEDS_PEER  "peer" must name a pinned peer, which the handler gets;
 *               else the answer is "no peer named 'NAME'".
 *   DELIVERY    ... and delivery must run for it (an engine on the store);
 *               else "delivery is not running for this peer".
 *   LATER       the answer may come later: the handler returned NULL and
 *               the client waits (hl_control_wait_check, _wait_commit).
 *   STREAM      the connection may carry more than the answer: events
 *               (watch, send with "wait") or a call's audio, for which
 *               the handler takes the connection (hl_control_take).
 * A handler without LATER or STREAM always answers. */

#define NEEDS_PEER 1u
#define DELIVERY 2u
#define LATER 4u
#define STREAM 8u

static const struct request {
	hl_request_fn *handler;
	unsigned flags;
} requests[] = {
	[HL_CTL_STATUS] = { req_status, 0 },
	[HL_CTL_RELOAD] = { req_reload, 0 },
	[HL_CTL_POKE] = { req_poke, 0 },
	[HL_CTL_WATCH] = { req_watch, STREAM },
	[HL_CTL_SEND] = { hl_send_control, NEEDS_PEER | DELIVERY | LATER | STREAM },
	[HL_CTL_CHECK] = { hl_checks_control, NEEDS_PEER | DELIVERY | LATER },
	[HL_CTL_STAGE] = { hl_stage_control, 0 },
	[HL_CTL_CALL] = { hl_calls_control, NEEDS_PEER | STREAM },
	[HL_CTL_CALL_ANSWER] = { hl_calls_control, STREAM },
	[HL_CTL_CALL_HANGUP] = { hl_calls_control, 0 },
	[HL_CTL_ROTATE] = { hl_rotation_control, 0 },
};
_Static_assert(sizeof(requests) / sizeof(requests[0]) == HL_CTL_COUNT,
	       "a handler for every request of control_proto.h");

static json_t *no_peer(const char *name)
{
	char clean[80], msg[120];
	hl_sanitize(name, strnlen(name, 64), clean, sizeof(clean), 0);
	snprintf(msg, sizeof(msg), "no peer named '%s'", clean);
	return hl_ctl_error(msg);
}

static void on_line(struct hl_daemon *d, struct hl_control_client *cl, const char *line,
		    size_t len)
{
	struct hl_ctl_request req;
	char err[HL_CONTROL_ERR_LEN];
	struct hl_peer *p = NULL;
	json_t *resp;

	if (hl_ctl_request_parse(line, len, &req, err) < 0) {
		hl_control_respond(cl, hl_ctl_error(err));
		return;
	}
	const struct request *r = &requests[req.cmd];
	if ((r->flags & NEEDS_PEER) && !(p = hl_peer_named(d, req.peer)))
		resp = no_peer(req.peer);
	else if ((r->flags & DELIVERY) && (!p->engine || !d->store))
		resp = hl_ctl_error("delivery is not running for this peer");
	else
		resp = r->handler(d, &req, p, cl);
	if (!resp && !(r->flags & (LATER | STREAM)))
		resp = hl_ctl_error("no answer (see the daemon's log)");
	hl_ctl_request_clear(&req);
	if (resp)
		hl_control_respond(cl, resp);
}

/* ---- the socket ---- */

static void on_client(uv_stream_t *server, int status)
{
	struct hl_daemon *d = server->data;
	if (status == 0 && d->clients)
		hl_clients_accept(d, server);
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
	srv->server.data = d;
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
		srv->server.data = srv;
		uv_close((uv_handle_t *)&srv->server, on_server_closed);
		return ret;
	}
	d->control = srv;
	hl_clients_open(d, on_line);
	hl_debug("control socket %s/%s ready", d->dir, HL_CONTROL_SOCKET);
	return 0;
}

void hl_control_stop(struct hl_daemon *d)
{
	struct hl_control *srv = d->control;
	if (!srv)
		return;
	d->control = NULL;
	hl_clients_close(d);
	/* Unlinked at once, so that nobody connects to a daemon on its way
	 * out; by the spawner, as the sandbox may not remove files here
	 * (daemon/spawn.h). */
	hl_spawner_unlink_control(d);
	srv->server.data = srv;
	uv_close((uv_handle_t *)&srv->server, on_server_closed);
}
