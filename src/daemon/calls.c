/* daemon/calls.c — live calls (docs/voice.md): signalling over the link,
 * the per-call key exchange, media over UDP with the link as fallback,
 * the 20 ms media clock, and the operator's audio stream on the control
 * socket.  The packet format, keys and replay window are voice/media.c's;
 * the jitter buffer voice/jitter.c's; the codec voice/codec.c's.
 *
 * ONE LINE.  A station has at most one call at a time (cs->call), like a
 * telephone line.  A RING while the line is taken is answered with
 * END(busy) — unless it has a higher precedence than the call on the line,
 * which then ends with END(preempted) to its peer and to its operator, and
 * the new call rings (MLPP).  `hotline call` while the line is taken does
 * the same: it preempts a lower precedence, else fails "busy".
 *
 * STATES of the call on the line
 *
 *   (none) --call-->        RINGING_OUT --ANSWER-->      ACTIVE --END/hangup--> (none)
 *   (none) --RING-->        RINGING_IN  --call answer--> ACTIVE
 *   RINGING_* --END, hang up, ring timeout, preemption--> (none)
 *
 *   call_new()       creates it (RINGING_OUT: RING sent; RINGING_IN: RINGING sent)
 *   call_activate()  RINGING_* -> ACTIVE: keys derived, the media clock runs
 *   call_end()       any -> gone: END sent (unless the peer sent it), the
 *                    operator's stream told and closed, watchers told
 *   Invariants (check_call): ACTIVE <=> keys and codec exist; RINGING_OUT
 *   and RINGING_IN hold our ephemeral secret, ACTIVE never does (wiped at
 *   call_activate); a call has at most one operator stream; the media
 *   timer runs iff a call exists.
 *
 * MEDIA.  While ACTIVE, every 20 ms: one frame from the operator's stream
 * (silence when none came), encoded (CBR), sealed, sent by UDP to the
 * peer — and also on the link as CALL_MEDIA while the peer has not said,
 * in the last second, that our UDP reaches it (the HEAR_UDP flag inside
 * its packets; the first UDP_GRACE_MS after the answer are UDP's grace).  Then
 * one frame from the jitter buffer, decoded, to the operator's stream.
 * Packets from either path go through the same replay window.
 *
 * LIMITS.  Rings: HL_CALL_RINGS_PER_MIN per peer, the rest dropped; a ring
 * not answered in its timeout (the caller's, at most RING_MAX_MS) ends
 * no_answer.  A call with no authentic packet on either path for LOST_MS
 * ends lost.  Media packets that fail (wrong size, tag, tag check, replay)
 * are counted and dropped; they never touch the link or the store; at most
 * RX_PER_FRAME are read per 20 ms, so a flood cannot hold the (real-time)
 * media thread.  The
 * operator's stream: frames of at most one PCM frame, an input queue of
 * IN_FIFO frames (the oldest goes), an output queue of OUT_MAX bytes (audio
 * is dropped past it). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/alarm.h"
#include "daemon/commit.h"
#include "station/control_proto.h"
#include "daemon/daemon_int.h"
#include "daemon/rt.h"
#include "daemon/service.h"
#include "deliver/author.h"
#include "chain/queue.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/timefmt.h"
#include "voice/callrec.h"
#include "voice/codec.h"
#include "voice/jitter.h"
#include "voice/media.h"
#include "voice/signal.h"
#include "voice/stream.h"

#define RING_DEFAULT_MS 60000
#define RING_MAX_MS 300000
#define LOST_MS 10000
#define UDP_HEARD_MS 1000
#define UDP_GRACE_MS 400
#define IN_FIFO 4
#define CATCH_UP_MS 200
#define OUT_Q 16
#define RING_POLL_MS 100
#define FRAME_NS (HL_MEDIA_FRAME_MS * 1000000u)
#define LEAD_NS 2000000u         /* a frame is made this long before it is sent */
#define RX_PER_FRAME 1024        /* media packets read per 20 ms, at most */
#define RX_BATCH 64              /* ... and per hold of the lock */
#define OUT_MAX (64u * 1024)
#define HL_CALL_RINGS_PER_MIN 30
#define FRAME_BYTES (HL_CODEC_FRAME * 2)
#define STREAM_AUDIO HL_STREAM_AUDIO
#define STREAM_EVENT HL_STREAM_EVENT
#define STREAM_HANGUP HL_STREAM_HANGUP
#define STREAM_HDR HL_STREAM_HDR

enum call_state { CALL_RINGING_OUT, CALL_RINGING_IN, CALL_ACTIVE };
static const char *const state_names[] = { "ringing_out", "ringing_in", "active" };

struct call_stream;

struct hl_call {
	struct hl_calls *cs;
	uint8_t id[HL_CALL_ID_LEN];
	char peer[HL_NAME_MAX + 1];
	bool outgoing;
	unsigned precedence;
	enum call_state state;
	int64_t rang_at, answered_at;           /* wall ms */
	uint64_t rang_mono, answered_mono, ring_deadline;
	uint8_t *eph_sk;                        /* sodium_malloc'd while ringing */
	uint8_t eph_pk[HL_CALL_PUB_LEN], peer_pk[HL_CALL_PUB_LEN];
	uint32_t our_tag, peer_tag;
	uint16_t peer_port;
	struct sockaddr_storage peer_addr;
	bool have_addr;
	struct hl_media_keys *keys;
	struct hl_codec *codec;
	struct hl_jb jb;
	int16_t fifo[IN_FIFO][HL_CODEC_FRAME];
	size_t fifo_n, fifo_head;
	size_t fifo_low, fifo_ticks;            /* the queue's least fill over a second */
	uint64_t last_rx, last_udp_rx, peer_hears_udp;   /* mono ms; 0 never */
	int64_t first_audio_ms;                 /* after the answer; -1 not yet */
	struct hl_callrec_stats st;
	struct hl_callrec rec;                  /* the call's record (voice/callrec.h) */
	struct call_stream *stream;
};

struct call_stream {
	struct hl_calls *cs;
	struct hl_call *call;                   /* NULL once the call is gone */
	uv_pipe_t pipe;
	uint8_t buf[STREAM_HDR + FRAME_BYTES];
	size_t len;
	bool closing;
};

struct hl_calls {
	struct hl_daemon *d;
	/* The media thread's: its socket and its clock.  Everything below MU
	 * (the call and its media state, the queues) is shared, under MU, a
	 * priority-inheriting mutex: the loop holding it runs at the media
	 * thread's priority until it lets go. */
	int udp_fd;
	int kick_fd;                            /* eventfd: the loop wakes the thread */
	uint16_t port;
	pthread_t thread;
	bool thread_started;
	pthread_mutex_t mu;
	bool stop;                              /* the thread ends */
	uint64_t next_ns;                       /* monotonic ns the next frame is sent at */
	bool clock_restart;                     /* next_ns is to be now: a call began */
	uint64_t gen;                           /* calls made so far: names the call */
	uv_async_t wake;                        /* the thread has output for the loop */
	int16_t out_pcm[OUT_Q][HL_CODEC_FRAME]; /* to the operator's stream */
	size_t pcm_head, pcm_n;
	uint8_t out_tcp[OUT_Q][HL_MEDIA_PACKET_LEN]; /* to the link (fallback) */
	size_t tcp_head, tcp_n;
	bool lost;                              /* the call's media stopped: end it */
	uv_timer_t timer;                       /* the loop's: ring timeouts */
	struct hl_call *call;
	int refs;                               /* handles still closing */
	struct ring_bucket { char peer[HL_NAME_MAX + 1]; struct hl_ratelimit rl; } *buckets;
	size_t nbuckets;
	uint64_t rejected;                      /* media packets refused, all calls */
};

static void call_end(struct hl_call *call, uint8_t reason, bool by_us, bool send_end);
static void on_tick(uv_timer_t *t);

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Both threads' clock, in ms (the jitter buffer's and the timeouts'). */
static uint64_t mono(struct hl_calls *cs)
{
	(void)cs;
	return now_ns() / 1000000u;
}

static void id_hex(const uint8_t id[static HL_CALL_ID_LEN], char out[static 33])
{
	sodium_bin2hex(out, 33, id, HL_CALL_ID_LEN);
}

static void check_call(const struct hl_call *c)
{
	if (!c)
		return;
	bool active = c->state == CALL_ACTIVE;
	if (active != (c->keys && c->codec) || active == (c->eph_sk != NULL))
		abort();
	if (!uv_is_active((const uv_handle_t *)&c->cs->timer))
		abort();
}

/* Sends a call packet to PEER's session, ahead of the high-water mark that
 * holds messages back (hl_session_send_urgent); false when there is no
 * session or its queue is at half its hard cap. */
static bool session_send(struct hl_daemon *d, const char *peer, uint8_t type, const uint8_t *body,
		      size_t len)
{
	struct hl_peer *p = hl_peer_named(d, peer);
	if (!p || !p->session || !p->session->machine)
		return false;
	if (hl_session_send_urgent(p->session->machine, type, body, len, uv_now(&d->loop)) < 0)
		return false;
	hl_conn_flush(p->session);
	return true;
}

static void send_end(struct hl_daemon *d, const char *peer, const uint8_t id[static 16],
		     uint8_t reason)
{
	struct hl_call_endrec e;
	uint8_t body[HL_CALL_END_LEN];
	memcpy(e.id, id, HL_CALL_ID_LEN);
	e.reason = reason;
	hl_call_end_encode(&e, body);
	(void)session_send(d, peer, HL_PKT_CALL_END, body, sizeof(body));
}

/* ---- the operator's stream ---- */

static void on_stream_closed(uv_handle_t *h)
{
	free(h->data);
}

static void on_stream_shutdown(uv_shutdown_t *req, int status)
{
	struct call_stream *s = req->data;
	(void)status;
	free(req);
	uv_close((uv_handle_t *)&s->pipe, on_stream_closed);
}

static void stream_close(struct call_stream *s)
{
	if (!s || s->closing)
		return;
	s->closing = true;
	if (s->call)
		s->call->stream = NULL;
	s->call = NULL;
	uv_read_stop((uv_stream_t *)&s->pipe);
	/* What was written (the "ended" event) goes first. */
	uv_shutdown_t *req = xmalloc(sizeof(*req));
	req->data = s;
	if (uv_shutdown(req, (uv_stream_t *)&s->pipe, on_stream_shutdown) < 0) {
		free(req);
		uv_close((uv_handle_t *)&s->pipe, on_stream_closed);
	}
}

static void on_stream_written(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

static void stream_write(struct call_stream *s, uint8_t type, const void *p, size_t n)
{
	if (!s || s->closing || n > 0xffff)
		return;
	if (type == STREAM_AUDIO &&
	    uv_stream_get_write_queue_size((uv_stream_t *)&s->pipe) > OUT_MAX)
		return;   /* the operator's side is not reading: audio is dropped */
	uv_write_t *req = xmalloc(sizeof(*req) + STREAM_HDR + n);
	uint8_t *b = (uint8_t *)(req + 1);
	hl_stream_header(b, type, n);
	if (n)
		memcpy(b + STREAM_HDR, p, n);
	uv_buf_t buf = uv_buf_init((char *)b, (unsigned)(STREAM_HDR + n));
	if (uv_write(req, (uv_stream_t *)&s->pipe, &buf, 1, on_stream_written) < 0)
		free(req);
}

static void stream_event(struct call_stream *s, json_t *ev)
{
	char *text = json_dumps(ev, JSON_COMPACT);
	if (text)
		stream_write(s, STREAM_EVENT, text, strlen(text));
	free(text);
}

static void on_stream_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct call_stream *s = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)s->buf + s->len, (unsigned)(sizeof(s->buf) - s->len));
}

/* One frame from the operator: audio into the input queue, or hang up. */
static int stream_frame(struct call_stream *s, uint8_t type, const uint8_t *p, size_t n)
{
	struct hl_call *c = s->call;
	if (type == STREAM_HANGUP && n == 0) {
		if (c)
			call_end(c, HL_CALL_HANGUP, true, true);
		return 0;
	}
	if (type != STREAM_AUDIO || n != FRAME_BYTES)
		return -1;
	if (!c || c->state != CALL_ACTIVE)
		return 0;   /* before the answer: nothing to send yet */
	if (c->fifo_n == IN_FIFO) {
		c->fifo_head = (c->fifo_head + 1) % IN_FIFO;   /* the oldest goes */
		c->fifo_n--;
		c->st.frames_dropped++;
	}
	memcpy(c->fifo[(c->fifo_head + c->fifo_n++) % IN_FIFO], p, FRAME_BYTES);
	return 0;
}

static void stream_read_locked(struct call_stream *s, ssize_t nread);

static void on_stream_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	struct call_stream *s = st->data;
	struct hl_calls *cs = s->cs;
	(void)buf;
	pthread_mutex_lock(&cs->mu);
	stream_read_locked(s, nread);
	pthread_mutex_unlock(&cs->mu);
}

static void stream_read_locked(struct call_stream *s, ssize_t nread)
{
	if (nread < 0) {
		/* The operator's command went away: that is hanging up. */
		struct hl_call *c = s->call;
		stream_close(s);
		if (c)
			call_end(c, HL_CALL_HANGUP, true, true);
		return;
	}
	s->len += (size_t)nread;
	while (!s->closing) {
		uint8_t type;
		const uint8_t *p;
		size_t n, used;
		int r = hl_stream_next(s->buf, s->len, FRAME_BYTES, &type, &p, &n, &used);
		if (r == 0)
			break;
		if (r < 0 || stream_frame(s, type, p, n) < 0) {
			/* a handset that breaks the framing is hung up */
			struct hl_call *c = s->call;
			stream_close(s);
			if (c)
				call_end(c, HL_CALL_HANGUP, true, true);
			return;
		}
		memmove(s->buf, s->buf + used, s->len - used);
		s->len -= used;
	}
}

/* Takes the control client CL for CALL's audio: the answer line first,
 * then frames both ways. */
static int stream_attach(struct hl_calls *cs, struct hl_call *call,
			 struct hl_control_client *cl, json_t *first)
{
	int fd = hl_control_take(cl);
	if (fd < 0)
		return -1;
	struct call_stream *s = xcalloc(1, sizeof(*s));
	s->cs = cs;
	uv_pipe_init(&cs->d->loop, &s->pipe, 0);
	s->pipe.data = s;
	if (uv_pipe_open(&s->pipe, fd) < 0) {
		close(fd);
		uv_close((uv_handle_t *)&s->pipe, on_stream_closed);
		return -1;
	}
	char *text = json_dumps(first, JSON_COMPACT);
	size_t n = strlen(text);
	uv_write_t *req = xmalloc(sizeof(*req) + n + 1);
	memcpy(req + 1, text, n);
	((char *)(req + 1))[n] = '\n';
	free(text);
	uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)(n + 1));
	if (uv_write(req, (uv_stream_t *)&s->pipe, &b, 1, on_stream_written) < 0)
		free(req);
	uv_read_start((uv_stream_t *)&s->pipe, on_stream_alloc, on_stream_read);
	s->call = call;
	call->stream = s;
	return 0;
}

/* ---- events ---- */

static json_t *stats_json(const struct hl_call *c)
{
	return hl_callrec_stats_json(&c->st, &c->jb.st);
}

static json_t *call_json(const struct hl_call *c, const char *event)
{
	char hex[33], at[HL_RFC3339_LEN];
	id_hex(c->id, hex);
	hl_rfc3339(hl_now_ms(), at);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "event", event, "at", at, "id", hex,
			 "peer", c->peer, "direction", c->outgoing ? "out" : "in", "precedence",
			 hl_precedence_name(c->precedence));
}

static void announce(struct hl_call *c, const char *event, json_t *extra)
{
	json_t *ev = call_json(c, event);
	if (extra)
		json_object_update(ev, extra);
	json_decref(extra);
	hl_control_emit(c->cs->d, ev);
	stream_event(c->stream, ev);
	json_decref(ev);
}

/* ---- the line ---- */

static void call_free(struct hl_call *c)
{
	if (c->eph_sk)
		sodium_free(c->eph_sk);
	hl_media_keys_free(c->keys);
	hl_codec_free(c->codec);
	hl_callrec_abort(&c->rec);
	free(c);
}

static struct hl_call *call_new(struct hl_calls *cs, const char *peer, bool outgoing,
				unsigned prec)
{
	struct hl_call *c = xcalloc(1, sizeof(*c));
	c->cs = cs;
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	c->outgoing = outgoing;
	c->precedence = prec;
	c->rang_at = hl_now_ms();
	c->rang_mono = mono(cs);
	c->first_audio_ms = -1;
	c->fifo_low = IN_FIFO;
	c->eph_sk = sodium_malloc(32);
	if (!c->eph_sk)
		abort();   /* out of memory: the daemon's policy (util/mem.h) */
	hl_media_keypair(c->eph_pk, c->eph_sk);
	randombytes_buf(&c->our_tag, sizeof(c->our_tag));
	hl_jb_init(&c->jb, HL_CODEC_FRAME);
	cs->call = c;
	cs->gen++;
	if (!uv_is_active((uv_handle_t *)&cs->timer))
		uv_timer_start(&cs->timer, on_tick, RING_POLL_MS, RING_POLL_MS);
	return c;
}

/* The UDP address of the peer: its MediaAddress, else the link's remote
 * host with the port it announced. */
static void peer_media_addr(struct hl_calls *cs, struct hl_call *c)
{
	struct hl_peer *p = hl_peer_named(cs->d, c->peer);
	char host[HL_ADDR_MAX + 1];
	uint16_t port = c->peer_port;
	c->have_addr = false;
	if (!p)
		return;
	if (p->conf.media_address[0]) {
		if (hl_addr_split(p->conf.media_address, host, sizeof(host), &port) < 0)
			return;
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->peer_addr;
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->peer_addr;
		c->have_addr = uv_ip4_addr(host, port, s4) == 0 || uv_ip6_addr(host, port, s6) == 0;
		return;
	}
	if (!port || !p->session)
		return;
	int len = sizeof(c->peer_addr);
	if (uv_tcp_getpeername(&p->session->tcp, (struct sockaddr *)&c->peer_addr, &len) < 0)
		return;
	if (c->peer_addr.ss_family == AF_INET)
		((struct sockaddr_in *)&c->peer_addr)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)&c->peer_addr)->sin6_port = htons(port);
	c->have_addr = true;
}

static int call_activate(struct hl_calls *cs, struct hl_call *c)
{
	int ret = hl_media_keys_new(&c->keys, c->outgoing, c->id, c->eph_pk, c->eph_sk,
				    c->peer_pk, c->our_tag, c->peer_tag);
	sodium_free(c->eph_sk);   /* forward secrecy: the exchange's secret goes now */
	c->eph_sk = NULL;
	if (ret == 0)
		ret = hl_codec_new(&c->codec, 0, -1);
	if (ret < 0) {
		/* ACTIVE needs both; keep the invariant while it ends. */
		hl_media_keys_free(c->keys);
		c->keys = NULL;
		hl_codec_free(c->codec);
		c->codec = NULL;
		c->eph_sk = sodium_malloc(32);
		return ret;
	}
	c->state = CALL_ACTIVE;
	c->answered_at = hl_now_ms();
	c->answered_mono = mono(cs);
	peer_media_addr(cs, c);
	hl_callrec_begin(&c->rec, cs->d->dir, cs->d->conf->call_recording, c->id, c->outgoing);
	return 0;
}

/* The call's item in our chain (docs/items.md 2.7), and before it, with
 * CallRecording, the message that carries what we said; both in the
 * daemon's transaction, committed at the end of this loop turn and then
 * sent like any item. */
static void record_call(struct hl_calls *cs, struct hl_call *c, uint8_t reason, bool by_us)
{
	struct hl_daemon *d = cs->d;
	struct hl_peer *p = hl_peer_named(d, c->peer);
	struct hl_item it = { .kind = HL_ITEM_CALL };
	struct hl_item_call *k = &it.u.call;
	bool answered = c->state == CALL_ACTIVE;
	char err[256] = "", hex[33];
	uint8_t hash[HL_HASH_LEN];
	id_hex(c->id, hex);
	if (c->rec.open)
		hl_callrec_finish(&c->rec, d->dir, k->audio_hash);
	if (!answered)
		memset(k->audio_hash, 0, sizeof(k->audio_hash));
	if (!p || !p->engine || !d->store || hl_commit_join(d) < 0) {
		hl_error("call %s with %s: no item recorded (no store or peer)", hex, c->peer);
		return;
	}
	memcpy(k->id, c->id, HL_CALL_ID_LEN);
	k->role = c->outgoing ? HL_CALL_ROLE_CALLER : HL_CALL_ROLE_CALLEE;
	k->precedence = (uint8_t)c->precedence;
	k->rang_at = (uint64_t)c->rang_at;
	k->answered_at = answered ? (uint64_t)c->answered_at : 0;
	k->ended_at = (uint64_t)hl_now_ms();
	if (k->ended_at < k->rang_at)
		k->ended_at = k->rang_at;   /* the wall clock stepped back */
	k->reason = reason;
	k->ended_by = by_us ? 0 : 1;
	k->audio_size = answered ? c->rec.sent_bytes : 0;
	k->packets_sent = c->st.packets_sent;
	k->packets_received = c->jb.st.packetsReceived;
	k->packets_lost = c->jb.st.packetsLost;
	k->concealed_samples = c->jb.st.concealedSamples;
	k->fec_recovered = c->jb.st.fecPacketsReceived;
	k->jitter_us = (uint32_t)(c->jb.st.jitter * 1e6);
	if (c->jb.st.jitterBufferEmittedCount)
		k->buffer_delay_us = (uint32_t)(c->jb.st.jitterBufferDelay * 1e6 /
						(double)c->jb.st.jitterBufferEmittedCount);
	k->first_audio_ms = c->first_audio_ms > 0 ? (uint32_t)c->first_audio_ms : 0;
	k->paths = (c->st.udp_received || c->st.udp_sent ? HL_CALL_PATH_UDP : 0) |
		   (c->st.tcp_sent || c->st.tcp_received ? HL_CALL_PATH_LINK : 0);
	if (answered && c->rec.path_sent) {
		char *path = hl_path_join(d->dir, c->rec.path_sent);
		char *body = xasprintf("What %s said in the %s call %s %s (call %s), as it was "
				       "sent: Opus frames in hotline's call audio format "
				       "(docs/voice.md).\n", d->conf->name,
				       hl_precedence_name(c->precedence), c->outgoing ? "to" : "from",
				       c->peer, hex);
		const char *atts[1] = { path };
		struct hl_outgoing o = { .precedence = HL_PREC_ROUTINE, .subject = "Call recording",
					 .body = (const uint8_t *)body, .body_len = strlen(body),
					 .attachments = atts, .n_attachments = 1 };
		if (hl_msg_queue_in_txn(d->dir, d->store, d->id, &p->conf, &o, k->recording, err,
					sizeof(err)) < 0) {
			hl_error("call %s: the recording is not in the record: %s", hex, err);
			memset(k->recording, 0, sizeof(k->recording));
		}
		free(body);
		free(path);
	}
	struct hl_author_link l = { .st = d->store, .me = d->id,
				    .peer_id = hl_engine_peer_id(p->engine) };
	memcpy(l.peer_sign, p->conf.signing_key, 32);
	if (hl_author_item(&l, &it, hash) < 0)
		hl_error("call %s with %s: cannot record it: %s", hex, c->peer,
			 hl_store_errmsg(d->store));
}

static void call_end(struct hl_call *c, uint8_t reason, bool by_us, bool send)
{
	struct hl_calls *cs = c->cs;
	if (send)
		send_end(cs->d, c->peer, c->id, reason);
	json_t *extra = json_pack("{s:s, s:s, s:o}", "reason", hl_call_end_name(reason), "by",
				  by_us ? "us" : "peer", "stats", stats_json(c));
	if (c->state == CALL_ACTIVE)
		json_object_set_new(extra, "duration_ms",
				    json_integer((json_int_t)(mono(cs) - c->answered_mono)));
	if (c->first_audio_ms >= 0)
		json_object_set_new(extra, "first_audio_ms", json_integer(c->first_audio_ms));
	hl_info("call %s %s: ended (%s, by %s)", c->outgoing ? "to" : "from", c->peer,
		hl_call_end_name(reason), by_us ? "us" : "the peer");
	announce(c, "call_ended", extra);
	record_call(cs, c, reason, by_us);
	stream_close(c->stream);
	cs->call = NULL;
	uv_timer_stop(&cs->timer);
	call_free(c);
}

/* ---- media ---- */

static void media_in(struct hl_calls *cs, const uint8_t *buf, size_t len, bool udp)
{
	struct hl_call *c = cs->call;
	struct hl_media_frame f;
	uint64_t counter;
	if (!c || c->state != CALL_ACTIVE) {
		cs->rejected++;
		return;
	}
	int ret = hl_media_open(c->keys, buf, len, &f, &counter);
	if (ret < 0) {
		c->st.rejected++;
		cs->rejected++;
		if (ret == HL_EEXIST)
			c->st.replayed++;
		return;
	}
	uint64_t now = mono(cs);
	c->last_rx = now;
	if (udp) {
		c->last_udp_rx = now;
		c->st.udp_received++;
	} else {
		c->st.tcp_received++;
	}
	if (f.flags & HL_MEDIA_F_HEAR_UDP)
		c->peer_hears_udp = now;
	hl_jb_put(&c->jb, counter, (int64_t)now, f.opus, f.len);
}

/* One frame's packet, made ahead of its send time: between its deadline
 * and the send, the media thread holds no lock and does no work. */
struct outgoing {
	uint8_t pkt[HL_MEDIA_PACKET_LEN];
	struct sockaddr_storage to;
	socklen_t tolen;                        /* 0: no UDP address, nothing to send */
	uint64_t gen;                           /* the call it belongs to */
};

/* The operator's next 20 ms into PCM, silence when none came. */
static void take_input(struct hl_call *c, int16_t pcm[static HL_CODEC_FRAME])
{
	if (c->fifo_n) {
		memcpy(pcm, c->fifo[c->fifo_head], HL_CODEC_FRAME * sizeof(pcm[0]));
		c->fifo_head = (c->fifo_head + 1) % IN_FIFO;
		c->fifo_n--;
	} else {
		memset(pcm, 0, HL_CODEC_FRAME * sizeof(pcm[0]));
	}
	/* A queue that never falls under two frames in a second is standing
	 * latency (a burst from the operator's side that never drained): one
	 * frame goes. */
	if (c->fifo_n < c->fifo_low)
		c->fifo_low = c->fifo_n;
	if (++c->fifo_ticks == 1000 / HL_MEDIA_FRAME_MS) {
		if (c->fifo_low > 1 && c->fifo_n > 0) {
			c->fifo_head = (c->fifo_head + 1) % IN_FIFO;
			c->fifo_n--;
			c->st.frames_dropped++;
		}
		c->fifo_low = IN_FIFO;
		c->fifo_ticks = 0;
	}
}

/* Makes the call's next packet into O (under MU): encoded, recorded as
 * sent, sealed; queued for the link too while the peer does not hear our
 * UDP.  The UDP send is the caller's, at the frame's time. */
static void frame_prepare(struct hl_calls *cs, struct hl_call *c, uint64_t now,
			  struct outgoing *o)
{
	int16_t pcm[HL_CODEC_FRAME];
	struct hl_media_frame f = { 0 };
	o->tolen = 0;
	o->gen = cs->gen;
	take_input(c, pcm);
	int n = hl_codec_encode(c->codec, pcm, f.opus, sizeof(f.opus));
	f.len = n > 0 ? (uint8_t)n : 0;
	hl_callrec_sent(&c->rec, f.opus, f.len);
	if (c->last_udp_rx && now - c->last_udp_rx < UDP_HEARD_MS)
		f.flags |= HL_MEDIA_F_HEAR_UDP;
	if (hl_media_seal(c->keys, &f, o->pkt) < 0)
		return;
	c->st.packets_sent++;
	c->st.bytes_sent += sizeof(o->pkt);
	if (c->have_addr) {
		o->to = c->peer_addr;
		o->tolen = c->peer_addr.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
							      : sizeof(struct sockaddr_in);
		/* counted now, with the packet, so that the call's figures
		 * agree if it ends before the send; clock_tick takes back a
		 * send that failed */
		c->st.udp_sent++;
	}
	bool udp_ok = c->have_addr && (now - c->answered_mono < UDP_GRACE_MS ||
				       (c->peer_hears_udp && now - c->peer_hears_udp < UDP_HEARD_MS));
	if (!udp_ok) {
		/* the session is the loop's: queued for it */
		if (cs->tcp_n == OUT_Q) {
			cs->tcp_head = (cs->tcp_head + 1) % OUT_Q;
			cs->tcp_n--;
			c->st.tcp_dropped++;
		}
		memcpy(cs->out_tcp[(cs->tcp_head + cs->tcp_n++) % OUT_Q], o->pkt, sizeof(o->pkt));
	}
	c->st.on_tcp = !udp_ok;
}

/* Sends O at DUE (monotonic ns) exactly: an absolute sleep, then the one
 * system call; true when the datagram went. */
static bool frame_send(struct hl_calls *cs, const struct outgoing *o, uint64_t due)
{
	struct timespec ts = { (time_t)(due / 1000000000u), (long)(due % 1000000000u) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
	return o->tolen && sendto(cs->udp_fd, o->pkt, sizeof(o->pkt), MSG_DONTWAIT,
				  (const struct sockaddr *)&o->to, o->tolen) == (ssize_t)sizeof(o->pkt);
}

/* The frame to play from the jitter buffer, decoded, to the operator's
 * queue (under MU); a call that heard nothing for LOST_MS is lost. */
static void frame_play(struct hl_calls *cs, struct hl_call *c, uint64_t now)
{
	int16_t pcm[HL_CODEC_FRAME];
	const uint8_t *data;
	size_t len;
	enum hl_jb_action a = hl_jb_get(&c->jb, (int64_t)now, &data, &len);
	hl_codec_decode(c->codec, a, data, len, pcm);
	if (a == HL_JB_FRAME && c->first_audio_ms < 0)
		c->first_audio_ms = (int64_t)(now - c->answered_mono);
	if (a == HL_JB_FRAME || a == HL_JB_FEC)
		hl_callrec_received(&c->rec, data, len, a == HL_JB_FEC);
	if (cs->pcm_n == OUT_Q) {
		cs->pcm_head = (cs->pcm_head + 1) % OUT_Q;   /* the loop is far behind */
		cs->pcm_n--;
	}
	memcpy(cs->out_pcm[(cs->pcm_head + cs->pcm_n++) % OUT_Q], pcm, sizeof(pcm));
	uint64_t last = c->last_rx > c->answered_mono ? c->last_rx : c->answered_mono;
	if (now - last > LOST_MS)
		cs->lost = true;
}

/* A call became active: the thread hears of it at once, and its clock
 * starts over when the thread next takes the lock, which the loop holds
 * now (a start set here would already be late by then). */
static void kick(struct hl_calls *cs)
{
	uint64_t one = 1;
	cs->clock_restart = true;
	(void)!write(cs->kick_fd, &one, sizeof(one));
}

/* The loop's timer, while a call exists: rings that time out. */
static void on_tick(uv_timer_t *t)
{
	struct hl_calls *cs = t->data;
	pthread_mutex_lock(&cs->mu);
	struct hl_call *c = cs->call;
	if (c && c->state != CALL_ACTIVE && mono(cs) >= c->ring_deadline)
		call_end(c, HL_CALL_NO_ANSWER, true, true);
	check_call(cs->call);
	pthread_mutex_unlock(&cs->mu);
}

/* The loop's side of the media thread's output: audio to the operator,
 * packets to the link, a call whose media stopped. */
static void on_wake(uv_async_t *a)
{
	struct hl_calls *cs = a->data;
	pthread_mutex_lock(&cs->mu);
	struct hl_call *c = cs->call;
	for (; cs->pcm_n; cs->pcm_n--, cs->pcm_head = (cs->pcm_head + 1) % OUT_Q)
		if (c)
			stream_write(c->stream, STREAM_AUDIO, cs->out_pcm[cs->pcm_head],
				     sizeof(cs->out_pcm[0]));
	for (; cs->tcp_n; cs->tcp_n--, cs->tcp_head = (cs->tcp_head + 1) % OUT_Q) {
		if (!c)
			continue;
		if (session_send(cs->d, c->peer, HL_PKT_CALL_MEDIA, cs->out_tcp[cs->tcp_head],
			      HL_MEDIA_PACKET_LEN))
			c->st.tcp_sent++;
		else
			c->st.tcp_dropped++;
	}
	struct hl_callrec_buf rec[2] = { { 0 }, { 0 } };
	if (c)
		hl_callrec_detach(&c->rec, rec);
	bool lost = c && cs->lost;
	cs->lost = false;
	pthread_mutex_unlock(&cs->mu);
	/* The recording's bytes go to disk here, without the lock: the call
	 * is the loop's to end, so it (and its files) outlive this. */
	if (c)
		hl_callrec_write(&c->rec, rec);
	if (lost) {
		pthread_mutex_lock(&cs->mu);
		if (cs->call == c)
			call_end(c, HL_CALL_LOST, true, true);
		pthread_mutex_unlock(&cs->mu);
	}
}

/* One tick of the clock of C, the active call (under MU, which it lets go
 * of and takes again): its frame made now and sent at the tick's time,
 * then the frame to play. */
static void clock_tick(struct hl_calls *cs, struct hl_call *c, uint64_t now)
{
	struct outgoing o;
	/* A late wake (a busy machine) catches up: the count of packets, 50
	 * a second, is what the wire shows and what the peer's playout
	 * expects.  Past CATCH_UP_MS the time is given up. */
	if (now > cs->next_ns + CATCH_UP_MS * 1000000u)
		cs->next_ns = now;
	uint64_t due = cs->next_ns;
	cs->next_ns += FRAME_NS;
	frame_prepare(cs, c, now / 1000000u, &o);
	pthread_mutex_unlock(&cs->mu);
	bool sent = frame_send(cs, &o, due);
	pthread_mutex_lock(&cs->mu);
	if (cs->call != c || cs->gen != o.gen)
		return;   /* the loop ended the call meanwhile */
	if (!sent && o.tolen)
		c->st.udp_sent--;
	frame_play(cs, c, mono(cs));
}

/* Reads what arrived on the media socket, at most MAX packets. */
static unsigned media_read(struct hl_calls *cs, uint8_t *buf, size_t cap, unsigned max)
{
	unsigned n = 0;
	while (n < max) {
		unsigned batch = max - n < RX_BATCH ? max - n : RX_BATCH, i;
		pthread_mutex_lock(&cs->mu);
		for (i = 0; i < batch; i++) {
			ssize_t k = recv(cs->udp_fd, buf, cap, MSG_DONTWAIT);
			if (k < 0)
				break;
			media_in(cs, buf, (size_t)k, true);
		}
		pthread_mutex_unlock(&cs->mu);
		n += i;
		if (i < batch)
			break;
	}
	return n;
}

/* The media thread: the 20 ms clock of the call on the line and its UDP
 * socket, apart from the loop, so that nothing the loop waits for (a
 * commit's fsync, a burst of packets) delays a frame.  It sleeps on the
 * socket and the loop's kick until LEAD_NS before the next frame's time,
 * then makes the frame and sends it at its time exactly (clock_tick: an
 * absolute sleep).  Every time is reckoned from the clock's start, never
 * from the last wake, so lateness never accumulates; the poll's timeout,
 * relative, only has to wake the thread within the lead.  A flood is
 * bounded: at most RX_PER_FRAME packets are read per tick, the rest wait
 * in (or overflow) the socket's buffer. */
static void *media_thread(void *arg)
{
	struct hl_calls *cs = arg;
	uint8_t buf[2048];
	unsigned rx_left = RX_PER_FRAME;
	uint64_t rx_since = 0;                  /* when the receive budget was renewed */
	/* An ordinary thread's timers may fire up to 50 us late, for the
	 * kernel's batching; a real-time thread's never are. */
	(void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
	pthread_setname_np(pthread_self(), "hl-media");
	for (;;) {
		pthread_mutex_lock(&cs->mu);
		if (cs->stop) {
			pthread_mutex_unlock(&cs->mu);
			break;
		}
		uint64_t now = now_ns();
		if (now - rx_since >= FRAME_NS) {
			rx_left = RX_PER_FRAME;
			rx_since = now;
		}
		if (cs->clock_restart) {
			cs->next_ns = now;
			cs->clock_restart = false;
		}
		struct hl_call *c = cs->call;
		bool active = c && c->state == CALL_ACTIVE;
		if (active && now + LEAD_NS >= cs->next_ns) {
			clock_tick(cs, c, now);
			pthread_mutex_unlock(&cs->mu);
			uv_async_send(&cs->wake);
			continue;
		}
		/* Asleep until the next frame's lead, or the budget's renewal
		 * when it ran out; with neither, until something comes. */
		uint64_t until = active ? cs->next_ns - LEAD_NS : UINT64_MAX;
		if (!rx_left && rx_since + FRAME_NS < until)
			until = rx_since + FRAME_NS;
		pthread_mutex_unlock(&cs->mu);
		struct timespec ts = { (time_t)((until - now) / 1000000000u),
				       (long)((until - now) % 1000000000u) };
		struct pollfd pf[2] = { { rx_left ? cs->udp_fd : -1, POLLIN, 0 },
					{ cs->kick_fd, POLLIN, 0 } };
		if (ppoll(pf, 2, until == UINT64_MAX ? NULL : &ts, NULL) <= 0)
			continue;
		uint64_t kicks;
		if (pf[1].revents & POLLIN)
			(void)!read(cs->kick_fd, &kicks, sizeof(kicks));
		if (pf[0].revents & POLLIN)
			rx_left -= media_read(cs, buf, sizeof(buf), rx_left);
	}
	return NULL;
}

/* ---- signalling ---- */

static bool ring_allowed(struct hl_calls *cs, const char *peer)
{
	for (size_t i = 0; i < cs->nbuckets; i++)
		if (strcmp(cs->buckets[i].peer, peer) == 0)
			return hl_ratelimit_allow(&cs->buckets[i].rl, mono(cs));
	if (cs->nbuckets >= HL_CONF_MAX_PEERS)
		return false;
	cs->buckets = xrealloc(cs->buckets, (cs->nbuckets + 1) * sizeof(*cs->buckets));
	struct ring_bucket *b = &cs->buckets[cs->nbuckets++];
	snprintf(b->peer, sizeof(b->peer), "%s", peer);
	b->rl = (struct hl_ratelimit)HL_RATELIMIT_INIT(5, HL_CALL_RINGS_PER_MIN);
	return hl_ratelimit_allow(&b->rl, mono(cs));
}

/* Makes room on the line for a call of PREC: true when it is free, or
 * was taken by a lower precedence (now ended, preempted). */
static bool line_for(struct hl_calls *cs, unsigned prec)
{
	struct hl_call *cur = cs->call;
	if (!cur)
		return true;
	if (prec <= cur->precedence)
		return false;
	call_end(cur, HL_CALL_PREEMPTED, true, true);
	return true;
}

static void on_ring(struct hl_calls *cs, struct hl_peer *p, const uint8_t *body, size_t len)
{
	struct hl_call_ring r;
	uint8_t out[HL_CALL_RINGING_LEN];
	if (hl_call_ring_decode(body, len, &r) < 0 || !ring_allowed(cs, p->conf.name))
		return;
	if (cs->call && memcmp(cs->call->id, r.id, HL_CALL_ID_LEN) == 0)
		return;   /* a repeat */
	if (!line_for(cs, r.precedence)) {
		send_end(cs->d, p->conf.name, r.id, HL_CALL_BUSY);
		return;
	}
	struct hl_call *c = call_new(cs, p->conf.name, false, r.precedence);
	memcpy(c->id, r.id, HL_CALL_ID_LEN);
	memcpy(c->peer_pk, r.pub, HL_CALL_PUB_LEN);
	c->peer_tag = r.tag;
	c->peer_port = r.port;
	c->state = CALL_RINGING_IN;
	c->ring_deadline = mono(cs) + RING_MAX_MS;
	memcpy(out, r.id, HL_CALL_ID_LEN);
	session_send(cs->d, p->conf.name, HL_PKT_CALL_RINGING, out, sizeof(out));
	char hex[33], detail[128];
	id_hex(r.id, hex);
	hl_info("call from %s: ringing (%s)", p->conf.name, hl_precedence_name(r.precedence));
	announce(c, "call_ring", NULL);
	snprintf(detail, sizeof(detail), "%s call from %s ringing: hotline call answer %s",
		 hl_precedence_name(r.precedence), p->conf.name, p->conf.name);
	hl_alarm_act(cs->d, hl_alarm_new("ring", p->conf.name, hex, 0, 0, detail));
}

static struct hl_call *call_of(struct hl_calls *cs, struct hl_peer *p, const uint8_t *id)
{
	struct hl_call *c = cs->call;
	if (!c || strcmp(c->peer, p->conf.name) != 0 || memcmp(c->id, id, HL_CALL_ID_LEN) != 0)
		return NULL;
	return c;
}

static void on_answer(struct hl_calls *cs, struct hl_peer *p, const uint8_t *body, size_t len)
{
	struct hl_call_answer a;
	if (hl_call_answer_decode(body, len, &a) < 0)
		return;
	struct hl_call *c = call_of(cs, p, a.id);
	if (!c || c->state != CALL_RINGING_OUT)
		return;
	memcpy(c->peer_pk, a.pub, HL_CALL_PUB_LEN);
	c->peer_tag = a.tag;
	c->peer_port = a.port;
	if (call_activate(cs, c) < 0) {
		call_end(c, HL_CALL_FAILED, true, true);
		return;
	}
	kick(cs);
	hl_info("call to %s: answered", c->peer);
	announce(c, "call_answered", NULL);
}

static void record_locked(struct hl_calls *cs, struct hl_peer *p, uint8_t type,
			  const uint8_t *body, size_t len);

/* A call packet arrived on CONN's session. */
static void calls_packet(struct hl_conn *conn, uint8_t type, const uint8_t *body, size_t len)
{
	struct hl_calls *cs = conn->d->calls;
	struct hl_peer *p = conn->peer;
	if (!cs || !p || p->session != conn)
		return;
	pthread_mutex_lock(&cs->mu);
	record_locked(cs, p, type, body, len);
	pthread_mutex_unlock(&cs->mu);
}

static void record_locked(struct hl_calls *cs, struct hl_peer *p, uint8_t type,
			  const uint8_t *body, size_t len)
{
	uint8_t id[HL_CALL_ID_LEN];
	struct hl_call_endrec e;
	struct hl_call *c;
	switch (type) {
	case HL_PKT_CALL_RING:
		on_ring(cs, p, body, len);
		break;
	case HL_PKT_CALL_RINGING:
		if (hl_call_ringing_decode(body, len, id) == 0 && (c = call_of(cs, p, id)) &&
		    c->state == CALL_RINGING_OUT)
			announce(c, "call_ringing", NULL);
		break;
	case HL_PKT_CALL_ANSWER:
		on_answer(cs, p, body, len);
		break;
	case HL_PKT_CALL_END:
		if (hl_call_end_decode(body, len, &e) == 0 && (c = call_of(cs, p, e.id)))
			call_end(c, e.reason, false, false);
		break;
	case HL_PKT_CALL_MEDIA:
		media_in(cs, body, len, false);
		break;
	default:
		break;   /* reserved for calls: ignored */
	}
}

/* ---- control requests ---- */

static json_t *fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *fail(const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return hl_ctl_error(msg);
}

/* The control client CL becomes C's handset: its answer line is EVENT with
 * "ok", and watchers get EVENT.  NULL (the connection is the call's now),
 * or an error answer, the call ended. */
static json_t *take_handset(struct hl_calls *cs, struct hl_call *c,
			    struct hl_control_client *cl, const char *event)
{
	json_t *first = call_json(c, event);
	json_object_set_new(first, "ok", json_true());
	int ret = stream_attach(cs, c, cl, first);
	json_decref(first);
	if (ret < 0) {
		call_end(c, HL_CALL_FAILED, true, true);
		return fail("cannot take the control connection");
	}
	json_t *ev = call_json(c, event);
	hl_control_emit(cs->d, ev);
	json_decref(ev);
	return NULL;
}

/* "call" (P: the peer it names, control.c's table found it). */
static json_t *control_call(struct hl_calls *cs, const struct hl_ctl_call *req, struct hl_peer *p,
			    struct hl_control_client *cl)
{
	enum hl_precedence prec = req->precedence;
	if (!p->session)
		return fail("no link to %s now (hotline status)", p->conf.name);
	if (cs->call && !line_for(cs, prec))
		return fail("the line is busy: a %s call %s %s", hl_precedence_name(cs->call->precedence),
			    cs->call->outgoing ? "to" : "from", cs->call->peer);
	struct hl_call *c = call_new(cs, p->conf.name, true, prec);
	randombytes_buf(c->id, sizeof(c->id));
	c->state = CALL_RINGING_OUT;
	uint64_t timeout = req->ring_timeout_ms ? req->ring_timeout_ms : RING_DEFAULT_MS;
	c->ring_deadline = mono(cs) + (timeout < RING_MAX_MS ? timeout : RING_MAX_MS);
	struct hl_call_ring r = { .precedence = (uint8_t)prec, .tag = c->our_tag, .port = cs->port };
	memcpy(r.id, c->id, HL_CALL_ID_LEN);
	memcpy(r.pub, c->eph_pk, HL_CALL_PUB_LEN);
	uint8_t body[HL_CALL_RING_LEN];
	hl_call_ring_encode(&r, body);
	if (!session_send(cs->d, c->peer, HL_PKT_CALL_RING, body, sizeof(body))) {
		cs->call = NULL;
		uv_timer_stop(&cs->timer);
		call_free(c);
		return fail("the link to %s is full or down", p->conf.name);
	}
	hl_info("call to %s: ringing (%s)", c->peer, hl_precedence_name(prec));
	return take_handset(cs, c, cl, "call_ringing_out");
}

/* "call_answer" (PEER: NULL for whichever call rings). */
static json_t *control_answer(struct hl_calls *cs, const char *peer, struct hl_control_client *cl)
{
	struct hl_call *c = cs->call;
	if (!c || c->state != CALL_RINGING_IN || (peer && strcmp(peer, c->peer) != 0))
		return fail(peer ? "no call from %.40s is ringing" : "no call is ringing%s",
			    peer ? peer : "");
	if (c->stream)
		return fail("the call is answered already");
	struct hl_call_answer a = { .tag = c->our_tag, .port = cs->port };
	memcpy(a.id, c->id, HL_CALL_ID_LEN);
	memcpy(a.pub, c->eph_pk, HL_CALL_PUB_LEN);
	if (call_activate(cs, c) < 0) {
		call_end(c, HL_CALL_FAILED, true, true);
		return fail("the call's key exchange failed");
	}
	uint8_t body[HL_CALL_ANSWER_LEN];
	hl_call_answer_encode(&a, body);
	if (!session_send(cs->d, c->peer, HL_PKT_CALL_ANSWER, body, sizeof(body))) {
		call_end(c, HL_CALL_FAILED, true, false);
		return fail("the link to %s is down", c->peer);
	}
	kick(cs);
	hl_info("call from %s: answered", c->peer);
	return take_handset(cs, c, cl, "call_answered");
}

/* "call_hangup" (PEER: NULL for whichever call). */
static json_t *control_hangup(struct hl_calls *cs, const char *peer)
{
	struct hl_call *c = cs->call;
	if (!c || (peer && strcmp(peer, c->peer) != 0))
		return fail("no call%s%.40s", peer ? " with " : "", peer ? peer : "");
	char hex[33];
	id_hex(c->id, hex);
	call_end(c, c->state == CALL_RINGING_IN ? HL_CALL_BUSY : HL_CALL_HANGUP, true, true);
	return hl_ctl_ok_id(hex);
}

static json_t *control_locked(struct hl_calls *cs, const struct hl_ctl_request *req,
			      struct hl_peer *p, struct hl_control_client *cl)
{
	switch (req->cmd) {
	case HL_CTL_CALL:
		return control_call(cs, &req->u.call, p, cl);
	case HL_CTL_CALL_ANSWER:
		return control_answer(cs, req->peer, cl);
	case HL_CTL_CALL_HANGUP:
		return control_hangup(cs, req->peer);
	default:
		return fail("unknown command '%.32s'", hl_ctl_cmd_name(req->cmd));
	}
}

json_t *hl_calls_control(struct hl_daemon *d, const struct hl_ctl_request *req, struct hl_peer *p,
			 struct hl_control_client *cl)
{
	struct hl_calls *cs = d->calls;
	if (!cs)
		return fail("calls are not running");
	pthread_mutex_lock(&cs->mu);
	json_t *resp = control_locked(cs, req, p, cl);
	pthread_mutex_unlock(&cs->mu);
	return resp;
}

static json_t *status_locked(struct hl_calls *cs);

/* The station's call for `status --json` (null when none). */
static void calls_station_status(struct hl_daemon *d, json_t *station)
{
	struct hl_calls *cs = d->calls;
	json_t *o = json_null();
	if (cs) {
		pthread_mutex_lock(&cs->mu);
		o = status_locked(cs);
		pthread_mutex_unlock(&cs->mu);
	}
	json_object_set_new(station, "call", o);
}

static json_t *status_locked(struct hl_calls *cs)
{
	struct hl_call *c = cs->call;
	if (!c)
		return json_null();
	json_t *o = call_json(c, "call");
	json_object_del(o, "event");
	json_object_del(o, "at");
	char at[HL_RFC3339_LEN];
	hl_rfc3339(c->rang_at, at);
	json_object_set_new(o, "state", json_string(state_names[c->state]));
	json_object_set_new(o, "rang_at", json_string(at));
	if (c->state == CALL_ACTIVE) {
		json_object_set_new(o, "path", json_string(c->st.on_tcp ? "tcp" : "udp"));
		json_object_set_new(o, "stats", stats_json(c));
	}
	return o;
}

/* ---- start, stop ---- */

/* Listen given by host name: its first address, once at start (the
 * daemon has not begun serving; a blocking look-up is fine here). */
static int resolve_host(const char *host, uint16_t port, struct sockaddr_storage *ss,
			socklen_t *len)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM }, *res = NULL;
	if (getaddrinfo(host, NULL, &hints, &res) != 0 || !res)
		return HL_EINVAL;
	memcpy(ss, res->ai_addr, res->ai_addrlen);
	*len = res->ai_addrlen;
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	freeaddrinfo(res);
	return 0;
}

static int bind_udp(struct hl_calls *cs, char *err, size_t errlen)
{
	struct hl_daemon *d = cs->d;
	char host[HL_ADDR_MAX + 1] = "0.0.0.0";
	uint16_t port = 0;
	const char *conf = d->conf->media_listen[0] ? d->conf->media_listen : d->conf->listen;
	if (conf[0] && hl_addr_split(conf, host, sizeof(host), &port) < 0) {
		snprintf(err, errlen, "bad media address '%s'", conf);
		return HL_EINVAL;
	}
	if (!d->conf->media_listen[0])
		port = 0;   /* Listen's host, any free port */
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t len = sizeof(struct sockaddr_in);
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)&ss) < 0) {
		len = sizeof(struct sockaddr_in6);
		if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss) < 0 &&
		    resolve_host(host, port, &ss, &len) < 0) {
			/* MediaListen is numeric (the parser says so); only a
			 * Listen host name can fail here */
			snprintf(err, errlen, "media address: cannot resolve Listen's host '%s' (set "
				 "MediaListen to a numeric address)", host);
			return HL_EINVAL;
		}
	}
	cs->udp_fd = socket(ss.ss_family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (cs->udp_fd < 0 || bind(cs->udp_fd, (struct sockaddr *)&ss, len) < 0) {
		snprintf(err, errlen, "cannot bind the media socket to %s: %s", conf[0] ? conf : host,
			 strerror(errno));
		return -errno;
	}
	getsockname(cs->udp_fd, (struct sockaddr *)&ss, &len);
	cs->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	hl_info("call media on UDP port %u", cs->port);
	return 0;
}

static void on_closed_free(uv_handle_t *h)
{
	struct hl_calls *cs = h->data;
	if (--cs->refs == 0) {
		pthread_mutex_destroy(&cs->mu);
		free(cs->buckets);
		free(cs);
	}
}

/* The media thread: the daemon's real-time thread where it has one
 * (daemon/rt.h; SCHED_FIFO at a low priority, as audio servers run their
 * clock), which cannot starve anything: it works well under a millisecond
 * per 20 ms frame and reads a bounded number of packets per frame.  Else
 * an ordinary thread, said once.  0 or a positive errno. */
static int media_thread_start(struct hl_calls *cs)
{
	bool rt;
	int ret = hl_rt_start(&cs->thread, media_thread, cs, &rt);
	if (ret == 0 && rt)
		hl_info("call media thread: real-time (SCHED_FIFO, priority %d)", HL_RT_PRIORITY);
	else if (ret == 0)
		hl_warn("call media thread: real-time scheduling not allowed (the daemon needs "
			"CAP_SYS_NICE as it starts, or RLIMIT_RTPRIO >= %d): ordinary priority, so "
			"on a busy machine packets may leave late", HL_RT_PRIORITY);
	return ret;
}

/* The priority-inheriting lock (struct hl_calls says why). */
static void mutex_init_pi(pthread_mutex_t *mu)
{
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setprotocol(&ma, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(mu, &ma);
	pthread_mutexattr_destroy(&ma);
}

static void calls_stop(struct hl_daemon *d);

static int calls_start(struct hl_daemon *d, char *err, size_t errlen)
{
	struct hl_calls *cs = xcalloc(1, sizeof(*cs));
	cs->d = d;
	cs->udp_fd = -1;
	cs->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	mutex_init_pi(&cs->mu);
	uv_timer_init(&d->loop, &cs->timer);
	cs->timer.data = cs;
	uv_async_init(&d->loop, &cs->wake, on_wake);
	cs->wake.data = cs;
	d->calls = cs;
	int ret = 0;
	if (cs->kick_fd < 0) {
		ret = -errno;
		snprintf(err, errlen, "eventfd: %s", strerror(errno));
	}
	if (ret == 0)
		ret = bind_udp(cs, err, errlen);
	if (ret == 0 && (ret = media_thread_start(cs)) != 0) {
		snprintf(err, errlen, "cannot start the media thread: %s", strerror(ret));
		ret = -ret;
	}
	if (ret == 0)
		cs->thread_started = true;
	else
		calls_stop(d);
	return ret;
}

/* Before the links close: the call's END goes out, its item is written. */
static void calls_stop(struct hl_daemon *d)
{
	struct hl_calls *cs = d->calls;
	if (!cs)
		return;
	pthread_mutex_lock(&cs->mu);
	if (cs->call)
		call_end(cs->call, HL_CALL_HANGUP, true, true);
	cs->stop = true;
	pthread_mutex_unlock(&cs->mu);
	if (cs->thread_started) {
		uint64_t one = 1;
		(void)!write(cs->kick_fd, &one, sizeof(one));
		pthread_join(cs->thread, NULL);
	}
	if (cs->udp_fd >= 0)
		close(cs->udp_fd);
	if (cs->kick_fd >= 0)
		close(cs->kick_fd);
	d->calls = NULL;
	cs->refs = 2;
	uv_close((uv_handle_t *)&cs->timer, on_closed_free);
	uv_close((uv_handle_t *)&cs->wake, on_closed_free);
}

const struct hl_service hl_calls_service = {
	.name = "calls",
	.start = calls_start,
	.stop = calls_stop,
	.pkt_first = HL_PKT_CALL_FIRST,
	.pkt_last = HL_PKT_CALL_LAST,
	.packet = calls_packet,
	.station_status = calls_station_status,
};
