/* daemon/conn.c — TCP connections: the listener, dialing, and the glue
 * between one socket and its session (session/session.h).  The session holds all the
 * protocol; this file moves bytes and time in and out of it, asks guard.c
 * what an unauthenticated connection may cost (docs/protocol.md section 5),
 * keeps each peer's pending handshakes in bounds (section 2.1), and tells
 * the peers what happened, through d->conn_events (peer.c's: connections
 * lie below the peers, which decide what to keep and when to dial).
 *
 * A connection's life: created (outbound: RESOLVING or CONNECTING; inbound:
 * ACTIVE and on the unauthenticated list) -> ACTIVE -> CLOSING (detached
 * from its peer and the lists; its handles close) -> freed when the last
 * handle or request has called back (refs == 0). */
#include <errno.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "deliver/rotate.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

struct write_req {
	uv_write_t req;
	struct hl_conn *c;
	size_t n;
	uint8_t data[];
};

/* One read buffer serves every connection: libuv calls read_cb right after
 * alloc_cb on the same thread, and the session copies what it keeps.  Four
 * largest frames long: a frame wholly inside one read is decrypted where
 * it lies, where a 64 KiB buffer cut nearly every chunk's frame in two and
 * the session copied it together first. */
static char read_buf[4 * 65537];

static void conn_release(struct hl_conn *c)
{
	if (--c->refs > 0)
		return;
	struct hl_daemon *d = c->d;
	if (c->prev)
		c->prev->next = c->next;
	else
		d->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	hl_session_free(c->machine);
	free(c);
}

static void on_handle_closed(uv_handle_t *h)
{
	conn_release(h->data);
}

static void on_write(uv_write_t *req, int status)
{
	struct write_req *wr = (struct write_req *)req;
	struct hl_conn *c = wr->c;
	hl_session_output_done(c->machine, wr->n);
	free(wr);
	if (status < 0 && c->phase != HL_CONN_CLOSING) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "write to %s: %s", c->remote, uv_strerror(status));
		hl_conn_close(c, 0, text);
	}
}

/* Queues a copy of the N bytes at P (the session's output) with libuv. */
static void write_copy(struct hl_conn *c, const uint8_t *p, size_t n)
{
	struct write_req *wr = xmalloc(sizeof(*wr) + n);
	memcpy(wr->data, p, n);
	wr->c = c;
	wr->n = n;
	hl_session_output_taken(c->machine, n);
	uv_buf_t buf = uv_buf_init((char *)wr->data, (unsigned)n);
	int ret = uv_write(&wr->req, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
	if (ret < 0) {
		hl_session_output_done(c->machine, n);
		free(wr);
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "write to %s: %s", c->remote, uv_strerror(ret));
		hl_conn_close(c, 0, text);
	}
}

/* Moves the session's output to the socket.  What the kernel takes at once
 * is written straight from the session's queue (a document's chunks would
 * otherwise be copied once more, 64 KiB each); only what it does not take
 * is copied into a write request, which libuv sends as the socket drains.
 * Telling the session a write is done may make the engine send more (its
 * on_writable): the loop below takes that too, and a flush nested in it
 * returns at once. */
void hl_conn_flush(struct hl_conn *c)
{
	const uint8_t *p = NULL;
	size_t n;
	if (c->phase != HL_CONN_ACTIVE || c->flushing)
		return;
	c->flushing = true;
	while (c->phase == HL_CONN_ACTIVE && (n = hl_session_output(c->machine, &p)) > 0) {
		/* libuv refuses (UV_EAGAIN) while earlier writes are queued,
		 * which keeps the bytes in order */
		uv_buf_t direct = uv_buf_init((char *)p, (unsigned)n);
		int w = uv_try_write((uv_stream_t *)&c->tcp, &direct, 1);
		if (w > 0) {
			hl_session_output_taken(c->machine, (size_t)w);
			hl_session_output_done(c->machine, (size_t)w);
			continue;
		}
		/* queued, or an error that uv_write reports */
		write_copy(c, p, n);
		break;
	}
	c->flushing = false;
}

static void on_timer(uv_timer_t *t);

void hl_daemon_session_params(const struct hl_daemon *d, struct hl_session_params *p)
{
	p->keepalive_ms = d->conf->keepalive_ms;
	p->keepalive_timeout_ms = d->conf->keepalive_timeout_ms;
	p->handshake_timeout_ms = d->conf->handshake_timeout_ms;
	/* The dialer renews a session at 9/10 of its Rehandshake; this cap
	 * only ends sessions whose dialer failed to (forward secrecy). */
	p->max_age_ms = HL_SESSION_MAX_AGE_MS;
	/* The engines (deliver/) speak CREDIT and staging. */
	p->hello_flags = HL_HELLO_FLAG_CREDIT | HL_HELLO_FLAG_STAGE;
}

/* After every call into the session: send what it queued, re-arm its timer. */
static void conn_after_session(struct hl_conn *c)
{
	if (c->phase == HL_CONN_CLOSING)
		return;
	hl_conn_flush(c);
	if (c->phase == HL_CONN_CLOSING)
		return;
	uint64_t deadline = hl_session_deadline(c->machine);
	uint64_t now = uv_now(&c->d->loop);
	if (deadline == UINT64_MAX)
		uv_timer_stop(&c->timer);
	else
		uv_timer_start(&c->timer, on_timer, deadline > now ? deadline - now : 0, 0);
}

static void on_timer(uv_timer_t *t)
{
	struct hl_conn *c = t->data;
	if (c->phase == HL_CONN_CLOSING)
		return;
	hl_session_tick(c->machine, uv_now(&c->d->loop));
	conn_after_session(c);
}

void hl_conn_close(struct hl_conn *c, uint8_t reason, const char *errtext)
{
	struct hl_peer *p = c->peer;
	if (c->phase == HL_CONN_CLOSING)
		return;
	/* A CLOSE carries the reason and our text for it: the peer's operator
	 * learns what its station did wrong (for reason 0 nothing is sent). */
	if (c->machine)
		hl_session_close(c->machine, reason, errtext);
	/* Best effort for the CLOSE: whatever the socket takes right now.
	 * uv_try_write refuses while earlier writes are queued; then the peer
	 * learns from the connection closing instead. */
	if (c->machine && c->phase == HL_CONN_ACTIVE) {
		const uint8_t *out = NULL;
		size_t n = hl_session_output(c->machine, &out);
		if (n > 0) {
			uv_buf_t buf = uv_buf_init((char *)out, (unsigned)n);
			int w = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
			if (w > 0) {
				hl_session_output_taken(c->machine, (size_t)w);
				hl_session_output_done(c->machine, (size_t)w);
			}
		}
	}
	bool was_session = p && p->session == c;
	bool was_dial = p && p->dial == c;
	if (was_session)
		p->session = NULL;
	if (was_dial)
		p->dial = NULL;
	hl_guard_unauth_remove(c->d, c);
	c->phase = HL_CONN_CLOSING;
	c->peer = NULL;
	uv_timer_stop(&c->timer);
	if (c->gai_pending)
		uv_cancel((uv_req_t *)&c->gai_req);   /* its callback still comes */
	uv_close((uv_handle_t *)&c->timer, on_handle_closed);
	uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
	if (p)
		c->d->conn_events->gone(p, c, was_session, was_dial, errtext);
}

/* ---- session callbacks ---- */

static void log_unknown_key(struct hl_conn *c, const uint8_t key[static HL_KEY_LEN])
{
	struct hl_daemon *d = c->d;
	uint8_t h[32];
	uint64_t now = uv_now(&d->loop);
	crypto_generichash(h, sizeof(h), key, HL_KEY_LEN, NULL, 0);
	/* Each unknown key is logged once an hour at most, and all of them
	 * together are rate-limited: a flood cannot fill the disk. */
	for (unsigned i = 0; i < 16; i++)
		if (d->recent_unknown_ms[i] && now - d->recent_unknown_ms[i] < 3600 * 1000 &&
		    memcmp(d->recent_unknown[i], h, 8) == 0)
			return;
	unsigned slot = d->recent_unknown_next++ % 16;
	memcpy(d->recent_unknown[slot], h, 8);
	d->recent_unknown_ms[slot] = now;
	if (!hl_ratelimit_allow(&d->rl_unknown_key, now))
		return;
	char b64[HL_KEY_B64_LEN], id[17];
	hl_b64_key(key, b64);
	hl_hex(h, 8, id);
	hl_warn("refused a connection from %s: it claims the NoiseKey %s (key id %s), "
		"which is not pinned", c->remote, b64, id);
}

static struct hl_replay_window *session_authorize(void *user, hl_session *session,
					       const uint8_t key[static HL_SESSION_KEYLEN])
{
	struct hl_conn *c = user;
	(void)session;
	struct hl_peer *p = c->d->conn_events->peer_of(c->d, key);
	if (!p || c->d->stopping)
		return NULL;
	c->named = p;   /* for session_accepted, in the same read */
	return &p->replay;
}

static bool session_admit(void *user, hl_session *session)
{
	struct hl_conn *c = user;
	(void)session;
	return hl_guard_spend(c->d, c);
}

/* P's handshakes still waiting for their HELLO, once C's message 1 is
 * accepted (docs/protocol.md section 2.1): those C supersedes are closed,
 * and of those with empty payloads at most HL_MAX_PENDING_PER_PEER stay. */
static void pending_make_room(struct hl_conn *c, struct hl_peer *p)
{
	struct hl_stamp stamp;
	struct hl_conn *oldest_plain = NULL;
	size_t plain = 0;
	for (struct hl_conn *o = c->d->conns; o; o = o->next) {
		if (o == c || o->peer != p || o->outbound || o->phase == HL_CONN_CLOSING ||
		    hl_session_state(o->machine) != HL_SESSION_R_HELLO)
			continue;
		if (hl_session_supersedes(c->machine, o->machine)) {
			hl_debug("%s: connection #%llu supersedes the handshake of #%llu",
				 p->conf.name, (unsigned long long)c->id, (unsigned long long)o->id);
			hl_conn_close(o, 0, NULL);
		} else if (!hl_session_msg1_stamp(o->machine, &stamp)) {
			plain++;
			oldest_plain = o;   /* the list is newest first */
		}
	}
	if (!hl_session_msg1_stamp(c->machine, &stamp) && plain >= HL_MAX_PENDING_PER_PEER)
		hl_conn_close(oldest_plain, 0, NULL);
}

static void session_accepted(void *user, hl_session *session)
{
	struct hl_conn *c = user;
	struct hl_daemon *d = c->d;
	struct hl_stamp stamp;
	struct hl_peer *p = c->named;
	c->named = NULL;
	if (!p) {
		hl_conn_close(c, 0, NULL);
		return;
	}
	if (!hl_guard_peer_handshake(d, p)) {
		if (hl_ratelimit_allow(&d->rl_unauth, uv_now(&d->loop)))
			hl_info("%s: too many handshakes; closing connection #%llu from %s",
				p->conf.name, (unsigned long long)c->id, c->remote);
		hl_conn_close(c, 0, NULL);
		return;
	}
	/* A newer timestamp than any before proves the peer's own message. */
	if (hl_session_msg1_stamp(session, &stamp))
		hl_guard_refund(d, c);
	pending_make_room(c, p);
	hl_guard_unauth_remove(d, c);
	c->peer = p;
	hl_debug("connection #%llu from %s: message 1 from %s", (unsigned long long)c->id,
		 c->remote, p->conf.name);
	d->conn_events->progress(p);
}

static void session_confirmed(void *user, hl_session *session)
{
	struct hl_conn *c = user;
	(void)session;
	/* A confirmed session proves its source (and an empty-payload message
	 * 1's work was the peer's after all). */
	hl_guard_refund(c->d, c);
	hl_guard_known(c->d, &c->src);
	/* Our HELLO goes out before anything this confirmation causes on other
	 * connections (such as a CLOSE on the session it replaces). */
	hl_conn_flush(c);
	if (c->phase == HL_CONN_CLOSING || !c->peer)
		return;
	c->d->conn_events->confirmed(c->peer, c);
}

static void session_packet(void *user, hl_session *session, uint8_t type, const uint8_t *body, size_t len)
{
	struct hl_conn *c = user;
	(void)session;
	hl_services_packet(c, type, body, len);   /* delivery, calls: service.h */
}

static void session_writable(void *user, hl_session *session)
{
	struct hl_conn *c = user;
	(void)session;
	hl_services_writable(c);
}

static void session_closed(void *user, hl_session *session)
{
	struct hl_conn *c = user;
	c->named = NULL;   /* message 1 was refused after authorize */
	struct hl_daemon *d = c->d;
	char text[HL_ERRTEXT_LEN];
	int err = hl_session_error(session);

	if (err == HL_EPEER) {
		log_unknown_key(c, hl_session_remote_key(session));
		hl_conn_close(c, 0, NULL);
		return;
	}
	if (c->phase == HL_CONN_RESOLVING || c->phase == HL_CONN_CONNECTING)
		snprintf(text, sizeof(text), "connecting to %s timed out", c->remote);
	else
		snprintf(text, sizeof(text), "%s", hl_session_error_text(session));
	if (!c->peer) {
		if (hl_ratelimit_allow(&d->rl_unauth, uv_now(&d->loop)))
			hl_info("connection #%llu from %s closed: %s", (unsigned long long)c->id,
				c->remote, text);
		hl_conn_close(c, 0, NULL);
		return;
	}
	/* A peer replaced this session on its side: not an error. */
	if (err == 0 && hl_session_peer_close_reason(session) == HL_CLOSE_REPLACED) {
		hl_debug("%s: connection #%llu: %s", c->peer->conf.name,
			 (unsigned long long)c->id, text);
		hl_conn_close(c, 0, NULL);
		return;
	}
	hl_conn_close(c, 0, text);
}

static const struct hl_session_ops session_ops = {
	.authorize = session_authorize,
	.on_confirmed = session_confirmed,
	.on_packet = session_packet,
	.on_writable = session_writable,
	.on_closed = session_closed,
	.admit = session_admit,
	.on_accepted = session_accepted,
};

/* ---- reading ---- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(read_buf, sizeof(read_buf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hl_conn *c = s->data;
	if (c->phase == HL_CONN_CLOSING || nread == 0)
		return;
	if (nread < 0) {
		char text[HL_ERRTEXT_LEN];
		if (nread == UV_EOF)
			snprintf(text, sizeof(text), "%s closed the connection (%s)", c->remote,
				 hl_session_state_name(hl_session_state(c->machine)));
		else
			snprintf(text, sizeof(text), "reading from %s: %s", c->remote,
				 uv_strerror((int)nread));
		if (!c->peer && hl_ratelimit_allow(&c->d->rl_unauth, uv_now(&c->d->loop)))
			hl_debug("connection #%llu: %s", (unsigned long long)c->id, text);
		hl_conn_close(c, 0, c->peer ? text : NULL);
		return;
	}
	hl_session_recv(c->machine, (const uint8_t *)buf->base, (size_t)nread, uv_now(&c->d->loop));
	conn_after_session(c);
}

/* ---- creation ---- */

static struct hl_conn *conn_new(struct hl_daemon *d, struct hl_peer *p, bool outbound)
{
	struct hl_conn *c = xcalloc(1, sizeof(*c));
	c->d = d;
	c->peer = p;
	c->outbound = outbound;
	c->id = ++d->next_conn_id;
	uv_tcp_init(&d->loop, &c->tcp);
	uv_timer_init(&d->loop, &c->timer);
	c->tcp.data = c;
	c->timer.data = c;
	c->refs = 2;
	/* Newest first: session_authorize relies on it to find the oldest. */
	c->next = d->conns;
	if (d->conns)
		d->conns->prev = c;
	d->conns = c;
	return c;
}

static void sockaddr_text(const struct sockaddr *sa, char *out, size_t cap)
{
	char host[64] = "?";
	int port = 0;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		uv_ip4_name(in, host, sizeof(host));
		port = ntohs(in->sin_port);
		snprintf(out, cap, "%s:%d", host, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		uv_ip6_name(in6, host, sizeof(host));
		port = ntohs(in6->sin6_port);
		snprintf(out, cap, "[%s]:%d", host, port);
	} else {
		snprintf(out, cap, "?");
	}
}

static void on_connect(uv_connect_t *req, int status)
{
	struct hl_conn *c = req->data;
	if (c->phase == HL_CONN_CLOSING)
		return;
	if (status < 0) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "connecting to %s: %s", c->remote, uv_strerror(status));
		hl_conn_close(c, 0, text);
		return;
	}
	c->phase = HL_CONN_ACTIVE;
	uv_tcp_nodelay(&c->tcp, 1);
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen) == 0)
		hl_source_of((struct sockaddr *)&ss, &c->src);
	int ret = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	if (ret < 0) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "reading from %s: %s", c->remote, uv_strerror(ret));
		hl_conn_close(c, 0, text);
		return;
	}
	if (c->peer)
		c->d->conn_events->progress(c->peer);
	conn_after_session(c);
}

static void start_connect(struct hl_conn *c, const struct sockaddr *sa)
{
	c->phase = HL_CONN_CONNECTING;
	c->connect_req.data = c;
	int ret = uv_tcp_connect(&c->connect_req, &c->tcp, sa, on_connect);
	if (ret < 0) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "connecting to %s: %s", c->remote, uv_strerror(ret));
		hl_conn_close(c, 0, text);
	}
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct hl_conn *c = req->data;
	c->gai_pending = false;
	if (c->phase == HL_CONN_CLOSING) {
		uv_freeaddrinfo(res);
		conn_release(c);
		return;
	}
	if (status < 0 || !res) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "looking up %s: %s", c->remote,
			 status < 0 ? uv_strerror(status) : "no address");
		uv_freeaddrinfo(res);
		hl_conn_close(c, 0, text);
		conn_release(c);
		return;
	}
	start_connect(c, res->ai_addr);
	uv_freeaddrinfo(res);
	conn_release(c);
}

/* Our static key for a handshake to P: the previous one while P has not
 * acknowledged our key rotation (docs/rotation.md section 4), else the
 * current one. */
static const hl_signer *local_key_for(struct hl_peer *p)
{
	struct hl_daemon *d = p->d;
	int64_t id = 0;
	if (!d->id_prev || hl_store_peer_find(d->store, p->conf.signing_key, &id) < 0)
		return d->id;
	return hl_rotate_peer_pins_previous(d->store, id, d->id) ? d->id_prev : d->id;
}

struct hl_conn *hl_conn_dial(struct hl_daemon *d, struct hl_peer *p)
{
	char host[HL_ADDR_MAX + 1], portstr[8];
	uint16_t port = 0;
	struct hl_session_params params = { 0 };
	struct sockaddr_storage ss;
	struct hl_conn *c = conn_new(d, p, true);
	int ret;

	snprintf(c->remote, sizeof(c->remote), "%s", p->conf.address);
	c->phase = HL_CONN_RESOLVING;
	/* Message 1's timestamp is the wall clock's (docs/protocol.md section
	 * 2.1): the peer compares it with those we sent before, perhaps before
	 * a restart of this daemon. */
	struct hl_stamp stamp;
	hl_stamp_next(&p->last_stamp, hl_wall_ms() * 1000000u, &stamp);
	hl_daemon_session_params(d, &params);
	params.msg1_stamp = &stamp;
	/* the keys the peer pins: its own now, ours as it knows them
	 * (docs/rotation.md section 4) */
	ret = hl_session_new(&c->machine, HL_SESSION_INITIATOR, local_key_for(p), p->noise_now,
			  &params, &session_ops, c, uv_now(&d->loop));
	if (ret < 0) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "starting a handshake: %s", hl_strerror(ret));
		p->dial = c;
		hl_conn_close(c, 0, text);
		return NULL;
	}
	p->dial = c;
	hl_debug("%s: dialing %s (connection #%llu)", p->conf.name, p->conf.address,
		 (unsigned long long)c->id);
	conn_after_session(c);   /* arms the handshake timeout, which covers connecting */
	if (hl_addr_split(p->conf.address, host, sizeof(host), &port) < 0) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "bad address '%s'", p->conf.address);
		hl_conn_close(c, 0, text);
		return NULL;
	}
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) == 0 ||
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) == 0) {
		start_connect(c, (const struct sockaddr *)&ss);
		return c->phase == HL_CONN_CLOSING ? NULL : c;
	}
	struct addrinfo hints;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(portstr, sizeof(portstr), "%u", port);
	c->gai_req.data = c;
	ret = uv_getaddrinfo(&d->loop, &c->gai_req, on_resolved, host, portstr, &hints);
	if (ret < 0) {
		char text[HL_ERRTEXT_LEN];
		snprintf(text, sizeof(text), "looking up %s: %s", c->remote, uv_strerror(ret));
		hl_conn_close(c, 0, text);
		return NULL;
	}
	c->gai_pending = true;
	c->refs++;
	return c;
}

/* ---- the listener ----
 *
 * libuv accepts in a loop until the backlog is empty, so under a flood of
 * connections it could go on accepting for as long as they keep coming and
 * starve every other handle (the sessions with pinned peers, the control
 * socket).  So at most ACCEPTS_PER_TURN connections are taken per turn of
 * the loop: on_connection leaves the next one unaccepted, libuv then stops
 * watching the listener, and the check handle (run after each turn's I/O)
 * takes that one and so watches again. */

#define ACCEPTS_PER_TURN 32

struct listener {
	uv_tcp_t tcp;            /* first: d->listener points here */
	uv_check_t turn;
	struct hl_daemon *d;
	unsigned accepted;       /* this turn */
	bool deferred;           /* a connection waits, not accepted */
	int open_handles;
};

static void on_connection(uv_stream_t *server, int status);

static void on_turn(uv_check_t *t)
{
	struct listener *ls = t->data;
	ls->accepted = 0;
	if (ls->deferred) {
		ls->deferred = false;
		on_connection((uv_stream_t *)&ls->tcp, 0);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct listener *ls = server->data;
	struct hl_daemon *d = ls->d;
	struct hl_session_params params = { 0 };
	uint64_t now = uv_now(&d->loop);
	if (status == 0 && ls->accepted >= ACCEPTS_PER_TURN) {
		ls->deferred = true;
		return;
	}
	ls->accepted++;
	if (status < 0) {
		if (hl_ratelimit_allow(&d->rl_accept, now))
			hl_warn("accepting a connection: %s", uv_strerror(status));
		return;
	}
	struct hl_conn *c = conn_new(d, NULL, false);
	c->phase = HL_CONN_ACTIVE;
	snprintf(c->remote, sizeof(c->remote), "?");
	int ret = uv_accept(server, (uv_stream_t *)&c->tcp);
	if (ret == 0) {
		struct sockaddr_storage ss;
		int sslen = sizeof(ss);
		ret = uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sslen);
		if (ret == 0) {
			sockaddr_text((struct sockaddr *)&ss, c->remote, sizeof(c->remote));
			hl_source_of((struct sockaddr *)&ss, &c->src);
		}
	}
	struct hl_conn *evict = NULL;
	if (ret == 0 && !hl_guard_accept(d, c, &evict)) {
		/* Refused before anything is allocated for it (guard.c). */
		hl_conn_close(c, 0, NULL);
		return;
	}
	if (evict)
		hl_conn_close(evict, 0, NULL);
	if (ret == 0) {
		uv_tcp_nodelay(&c->tcp, 1);
		hl_daemon_session_params(d, &params);
		params.seen = d->seen;
		params.local_prev = d->id_prev;   /* peers that still dial our old key */
		ret = hl_session_new(&c->machine, HL_SESSION_RESPONDER, d->id, NULL, &params,
				  &session_ops, c, now);
		if (ret == 0)
			ret = uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
	}
	if (ret < 0) {
		if (hl_ratelimit_allow(&d->rl_accept, now))
			hl_warn("accepting a connection from %s: %s", c->remote,
				ret > -HL_E_BASE ? uv_strerror(ret) : hl_strerror(ret));
		hl_conn_close(c, 0, NULL);
		return;
	}
	hl_debug("connection #%llu from %s", (unsigned long long)c->id, c->remote);
	conn_after_session(c);
}

static void on_listener_closed(uv_handle_t *h)
{
	struct listener *ls = h->data;
	if (--ls->open_handles == 0)
		free(ls);
}

static void listener_close(struct listener *ls)
{
	uv_close((uv_handle_t *)&ls->tcp, on_listener_closed);
	uv_close((uv_handle_t *)&ls->turn, on_listener_closed);
}

int hl_listen_start(struct hl_daemon *d, const char *addr, char *err, size_t errlen)
{
	char host[HL_ADDR_MAX + 1];
	uint16_t port = 0;
	struct sockaddr_storage ss;
	struct addrinfo *res = NULL;
	int ret;

	if (hl_addr_split(addr, host, sizeof(host), &port) < 0) {
		snprintf(err, errlen, "bad Listen address '%s'", addr);
		return HL_EINVAL;
	}
	const struct sockaddr *sa = (const struct sockaddr *)&ss;
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) != 0 &&
	    uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) != 0) {
		/* A name: resolved once, when the listener starts. */
		struct addrinfo hints;
		char portstr[8];
		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		hints.ai_flags = AI_PASSIVE;
		snprintf(portstr, sizeof(portstr), "%u", port);
		ret = getaddrinfo(host, portstr, &hints, &res);
		if (ret != 0 || !res) {
			snprintf(err, errlen, "cannot resolve Listen address '%s': %s", addr,
				 gai_strerror(ret));
			return HL_EINVAL;
		}
		sa = res->ai_addr;
	}
	struct listener *ls = xcalloc(1, sizeof(*ls));
	ls->d = d;
	ls->open_handles = 2;
	uv_tcp_init(&d->loop, &ls->tcp);
	uv_check_init(&d->loop, &ls->turn);
	ls->tcp.data = ls->turn.data = ls;
	ret = uv_tcp_bind(&ls->tcp, sa, 0);
	if (ret == 0)
		ret = uv_listen((uv_stream_t *)&ls->tcp, 128, on_connection);
	if (ret == 0)
		ret = uv_check_start(&ls->turn, on_turn);
	if (res)
		freeaddrinfo(res);
	if (ret < 0) {
		snprintf(err, errlen, "cannot listen on '%s': %s", addr, uv_strerror(ret));
		listener_close(ls);
		return ret;
	}
	hl_listen_stop(d);
	d->listener = &ls->tcp;
	snprintf(d->listen_addr, sizeof(d->listen_addr), "%s", addr);
	hl_info("listening on %s", addr);
	return 0;
}

void hl_listen_stop(struct hl_daemon *d)
{
	if (!d->listener)
		return;
	listener_close((struct listener *)d->listener);
	d->listener = NULL;
	d->listen_addr[0] = 0;
}
