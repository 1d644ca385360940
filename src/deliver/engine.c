/* deliver/engine.c — the messages protocol for one peer (engine.h,
 * docs/messages.md).
 *
 * SENDING.  The engine keeps, per session, a window of at most OUT_WINDOW
 * OUT entries loaded from the store: items the peer has not acknowledged,
 * and acknowledged messages whose parts (a large body, attachments) the
 * peer still lacks.  Entries sit in four queues, one per precedence, in
 * seq order; each queue has a cursor at its first entry not yet done (item
 * sent and every part sent).  pump() repeatedly takes the most urgent
 * queue whose cursor is not at the end and sends that entry's ITEM or its
 * next CHUNK, until the link refuses more or, with CREDIT, the chunk
 * would take the data in flight past the window or the link's queue past
 * what may wait ahead (both sized in time by deliver/flow.h, which also
 * sizes the chunks).  So a FLASH message waits for at most that, and
 * within a precedence messages go strictly one after another.
 *
 * RECEIVING.  Items are opened (signature checked) before anything else;
 * a message is stored at once with its state PARTIAL, its parts are written
 * to files as CHUNKs arrive (part 0, a large body, is kept in memory), each
 * part's hash is checked when it completes, and the message becomes
 * visible (COMPLETE) once its parts are whole and the message before it in
 * the same precedence is visible or refused.  The receipts for what became
 * visible are authored in precommit(), inside the same transaction, and go
 * out with the ACK after the commit.
 *
 * Invariants (checked by eng_check_invariants() in debug builds):
 *   I1. Every queue is in increasing seq order; every entry before a
 *       queue's cursor is done.
 *   I2. nloaded equals the number of entries in the four queues, and is at
 *       most OUT_WINDOW plus the acknowledged-with-parts entries.
 *   I3. Nothing is sent unless the link is attached and the peer's RESUME
 *       arrived (synced), and no ACK, REFUSE or receipt is sent while the
 *       shared transaction holds writes this engine made (they go out in
 *       postcommit()).
 *   I4. An incoming part's `durable` never exceeds its `done`, and what the
 *       store records for it is `durable`.
 *
 * RESTORES (docs/messages.md section 7).  A station restored from a backup
 * may hold less of either chain than its peer knows.  Its own chain: while
 * the store says "resync" for the peer, the engine takes nothing from the
 * peer but ACK, RESUME, CREDIT and RETURN; the session's first ACK says how
 * much of our chain the peer holds; what it holds beyond our head comes
 * back one item at a time (RECLAIM, RETURN), checked like any item of ours
 * (our signature, its seq, its link to our head) and stored as
 * acknowledged; then the flag goes and the session is ended (restart) so
 * the next one starts clean.  Until then the store refuses every new item
 * of ours on the link, so we never sign a second item at a position the
 * peer holds.  The peer's chain: on either side, a session's first ACK
 * that leaves out items of ours the store had as acknowledged means the
 * peer lost them: they are marked unacknowledged and sent again. */
#include "deliver/engine.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "chain/accept.h"
#include "deliver/author.h"
#include "deliver/flow.h"
#include "deliver/partwriter.h"
#include "wire/msgproto.h"
#include "deliver/stage.h"
#include "msg/message.h"
#include "util/dio.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/thread.h"
#include "util/timefmt.h"
#include "wire/record.h"

#define OUT_WINDOW 4096
#define CHUNK_DATA_MAX (HL_RECORD_BODY_MAX - HL_CHUNK_HDR_LEN)
/* Part progress is made durable every size/64 bytes, between 1 and 8 MiB:
 * a broken transfer resends at most about that much. */
#define SYNC_MIN (1u << 20)
#define SYNC_MAX (8u << 20)
/* Parts with at least this much left to receive are hashed and written on
 * a worker thread (deliver/partwriter.h). */
#define WORKER_MIN (8u << 20)
/* CREDIT (docs/messages.md): CHUNK data in flight per session, sent but
 * not yet taken in by the receiver's loop.  The sender's window is sized
 * in time (deliver/flow.h): 5/4 of the path's bandwidth-delay product
 * (twice, while the rate still grows), so that on a loopback it bounds
 * what sits in the receiver's socket (what a FLASH record queues behind)
 * and on a long fat path it keeps the pipe full.  Behind the loop, a large part's worker
 * hashes and writes: its ring may hold RING_SPARE bytes more, credited as
 * soon as the loop has taken them, so the worker has work while the loop
 * waits for a commit's fsync.  What a ring holds beyond RING_SPARE is
 * credited only as the worker takes it.  The receiver credits each time
 * CREDIT_STEP is due within a read burst and, at the end of each burst
 * (the pump after its commit), all it has taken: a sender whose window is
 * smaller than the step (a slow link) is never left waiting. */
#define CREDIT_WINDOW HL_CREDIT_WINDOW
#define CREDIT_STEP (CREDIT_WINDOW / 4)
#define RING_SPARE ((uint64_t)HL_PARTWRITER_SLOTS * CHUNK_DATA_MAX - CREDIT_WINDOW)
_Static_assert(CREDIT_WINDOW == 8u * CHUNK_DATA_MAX, "as engine.h says");
_Static_assert(CREDIT_WINDOW < HL_PARTWRITER_SLOTS * CHUNK_DATA_MAX,
	       "a part's worker ring holds the window and more");
/* Part files open for writing at once, per peer: each holds 1 to 4 MiB of
 * buffers, and a peer could interleave chunks of thousands of parts. */
#define WRITERS_MAX 8
#define MAX_PARTIAL_IN 256           /* incoming messages in progress per peer */
/* Bodies sent in CHUNKs are kept in memory until whole (up to 16 MiB
 * each): at most this much per peer at once, or 256 of them would take
 * 4 GiB.  A message past it is refused for now. */
#define BODY_MEM_MAX (64u << 20)
#define NPARTS_MAX (HL_MAX_ATTACHMENTS + 1)
#define QUOTA_RETRY_MS 5000          /* an item refused for now is offered again after this */
#define HOLD_MAX (4u << 20)          /* held records (env.defer_items): drained past this */
#define PAR_VERIFY_MIN 8             /* held ITEMs worth a second thread */
/* Refused positions (tombstones) kept per peer: past this, an item that
 * breaks a rule is refused for now (nothing stored, not acknowledged), so a
 * peer cannot make the store keep a row per item it sends
 * (docs/messages.md section 4). */
#define TOMBSTONES_MAX 10000
/* REFUSEs waiting for the link to take them, per peer. */
#define REFUSALS_OWED_MAX 4096
/* Equivocation evidence kept per peer: one piece per position of its
 * chain, at most this many in all; one proves the fork. */
#define EVIDENCE_MAX 8
/* A drain stops after the records that raised this many events (the rest
 * wait for the next turn): one turn must not flood `watch` clients, which
 * the daemon drops when they fall 1 MiB behind. */
#define DRAIN_EVENTS_MAX 1024

int hl_txn_need(struct hl_txn *t)
{
	if (t->open)
		return 0;
	int ret = hl_store_begin(t->store);
	if (ret == 0)
		t->open = true;
	return ret;
}

/* ---- state ---- */

struct out_part {
	uint64_t size;
	uint64_t offset;        /* next byte to send */
	char *path;             /* attachments: relative to the station dir */
	struct hl_dio_reader r; /* open while the part is being sent */
};

struct out_entry {
	uint64_t seq;
	enum hl_item_kind kind;
	unsigned prec;
	bool acked;             /* the peer holds the item durably */
	bool item_sent;         /* sent in this session (or needs no sending) */
	bool parts_known;
	uint64_t retry_at;      /* refused for now (quota): not before this time */
	unsigned nparts, cur;   /* parts[cur..] still to send */
	struct out_part *parts; /* index = part number; NULL when none */
	uint8_t *body;          /* part 0 when the body is not inline */
	/* Parts staged in this session (bit p: part p): their CHUNKs wait
	 * for the peer's STAGED, until stage_wait_until at most. */
	uint64_t stage_wait, stage_wait_until;
	struct out_entry *next;
};

struct out_queue {
	struct out_entry *head, *tail;
	struct out_entry *cursor;   /* first entry not done; NULL: none */
	size_t n;
};

struct in_part {
	bool present, complete;
	uint64_t size, done, durable;
	uint8_t hash[HL_HASH_LEN];  /* attachments: the signed hash */
	char *path;                 /* attachments: final path, relative */
	bool hashed;                /* hs covers the first `done` bytes */
	struct hl_dio_writer w;     /* the .part file, open while arriving */
	hl_partwriter *pw;          /* when set, it owns w and hs */
	hl_parthash hs;             /* the body's salted hash, an attachment's SHA-256 */
};

struct in_msg {
	uint64_t seq;
	uint8_t id[HL_MSG_ID_LEN];
	uint8_t item_hash[HL_HASH_LEN];
	unsigned prec;
	uint64_t class_seq;
	uint8_t salt[HL_SALT_LEN];
	uint8_t body_hash[HL_HASH_LEN];
	uint64_t body_size;
	uint8_t *body;               /* part 0 being received */
	struct in_part parts[NPARTS_MAX];
	bool ready;                  /* every part complete */
	struct in_msg *next;
};

struct seq_hash {
	uint64_t seq;
	uint8_t hash[HL_HASH_LEN];
};

struct refusal {
	uint64_t seq;
	uint8_t hash[HL_HASH_LEN];
	uint8_t code;
	char text[HL_REFUSE_TEXT_MAX + 1];
};

typedef struct hl_engine_evinfo event_t;

/* A record held until hl_engine_drain() (env.defer_items). */
struct held {
	uint8_t type;
	bool checked;                /* verdict set */
	int8_t verdict;              /* ITEM: 1 signature good, 0 bad, -1 not known */
	size_t off, len;             /* in hbuf */
};

struct resume_map {
	struct hl_resume_entry *e;
	size_t n;
};

struct hl_engine {
	struct hl_engine_env env;
	int64_t peer_id;
	uint8_t peer_sign[32];
	uint8_t peer_noise[32];
	char peer_name[HL_NAME_MAX + 1];

	hl_link *link;
	bool synced;                 /* the peer's RESUME of this session arrived */
	struct resume_map resume;

	/* CREDIT, per session (both sides announced it in their HELLOs) */
	bool credit_on;
	uint64_t chunk_sent;         /* CHUNK data bytes sent */
	uint64_t chunk_credit;       /* the peer's last CREDIT */
	uint64_t taken;              /* CHUNK data bytes read and handled */
	uint64_t pushed_pw;          /* ... of which handed to parts' workers */
	_Atomic uint64_t done_pw;    /* ... of which the workers are done with */
	uint64_t credit_sent;        /* the last CREDIT we sent */
	size_t pushed_now;           /* the CHUNK in hand went to a worker */
	struct hl_flow *flow;        /* the window sized in time; made at the first data sent */

	struct out_queue q[HL_PREC_COUNT];
	size_t nloaded;
	uint64_t loaded_upto;        /* highest unacked seq loaded */
	uint64_t acked_base;         /* every seq up to here is acked in the store */

	struct in_msg *in;           /* incoming messages in progress */
	size_t nin;
	bool in_loaded;

	struct seq_hash *rcpt;       /* became visible in this transaction */
	size_t nrcpt, caprcpt;
	struct refusal *refusals;    /* to send after the commit */
	size_t nref, capref;
	bool need_ack;               /* stored something: ACK after the commit */
	bool ack_owed;               /* an ACK the link could not take yet */
	event_t *events;             /* for the operator, after the commit */
	size_t nev, capev;

	struct held *held;           /* env.defer_items: records of this burst */
	size_t nheld, capheld;
	uint8_t *hbuf;
	size_t hlen, hcap;
	int cur_verdict;             /* the ITEM being handled: its held verdict */

	uint64_t free_cache;         /* eng_free_bytes() */
	uint64_t reserve_cache;      /* eng_reserve_bytes() */
	int64_t free_at;

	/* The chain rules on arrival (chain/accept.h).  What the current
	 * transaction knows of the peer's chain, loaded at the first item and
	 * forgotten at its end (another process may write between two). */
	bool cache_ok;
	uint64_t in_top;             /* the highest position held */
	uint64_t contig;             /* the contiguous head as last read (only grows) */
	struct hl_chain_class_ref class_top[HL_PREC_COUNT]; /* highest class_seq held */
	bool class_known[HL_PREC_COUNT];
	struct hl_item *scratch;     /* a neighbour item, decoded */
	uint64_t tombs;              /* tombstones held (tombs_known) */
	bool tombs_known;
	struct hl_ratelimit refuse_log; /* warnings about refused items */
	char refusing[160];          /* why the peer's items are refused for now; "" none */
	/* Restores (see RESTORES above), per session where it says so. */
	bool resync;                 /* the store's peers.resync: our chain may be behind */
	bool first_ack;              /* this session's first ACK is still to come */
	bool restart;                /* resynchronised: end this session */
	uint64_t resync_hold;        /* how far the peer holds our chain */
	uint64_t resync_from;        /* the first of ours it gives back */
	size_t reclaims;             /* RECLAIMs answered in this session */
	uint64_t reclaim_pending;    /* a RECLAIM to send (pump), 0 none */
	uint64_t return_pending;     /* a RETURN to send (pump), 0 none */
	bool recovered_acks;         /* receipts of ours came back: filter new receipts */
	uint64_t now;                /* the record in hand's time, for what it sends */

	hl_stage *stage;             /* staging (deliver/stage.h) */
	bool stage_on;               /* the peer's HELLO says it handles STAGE */
	uint64_t stage_usage;        /* the peer's usage, asked every FREE_CACHE_MS */
	int64_t stage_usage_at;
	uint8_t *rec;                /* record buffer, HL_RECORD_BODY_MAX */
	uint8_t *itembuf;            /* HL_ITEM_MAX */
	char error[256];
	struct hl_engine_stats stats;
};

/* Restores (RESTORES above): RECLAIM and RETURN, sent by pump(). */
static void eng_resync_send(hl_engine *e, uint64_t now);

/* Staging (deliver/stage.h): the engine's side, in one place below. */
static void eng_stage_item_sent(hl_engine *e, struct out_entry *x, const uint8_t id[static 16],
			    uint64_t now);
static bool eng_stage_waiting(const struct out_entry *x, uint64_t now);
static int eng_stage_pump(hl_engine *e, int above, uint64_t now);
static void eng_stage_send_staged(hl_engine *e, uint64_t now);
struct in_msg;
static int eng_stage_adopt(hl_engine *e, struct in_msg *m);
static int eng_on_stage(hl_engine *e, const uint8_t *body, size_t len);
static int eng_on_staged(hl_engine *e, const uint8_t *body, size_t len);
static void eng_send_owed(hl_engine *e, uint64_t now);
static int eng_over_limits(hl_engine *e, uint64_t charge, bool *over);

static void eng_set_error(hl_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void eng_set_error(hl_engine *e, const char *fmt, ...)
{
	char raw[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	hl_sanitize(raw, strlen(raw), e->error, sizeof(e->error), 0);
}

const char *hl_engine_error(const hl_engine *e)
{
	return e->error;
}

static event_t *eng_add_event_info(hl_engine *e, enum hl_engine_event ev, const uint8_t *id,
				size_t idlen)
{
	static event_t discard;
	if (!e->env.on_event)
		return &discard;
	if (e->nev == e->capev) {
		e->capev = e->capev ? 2 * e->capev : 16;
		e->events = xrealloc(e->events, e->capev * sizeof(*e->events));
	}
	event_t *x = &e->events[e->nev++];
	memset(x, 0, sizeof(*x));
	x->ev = ev;
	memcpy(x->id, id, idlen);
	return x;
}

static void eng_add_event(hl_engine *e, enum hl_engine_event ev, const uint8_t id[static 16])
{
	(void)eng_add_event_info(e, ev, id, HL_MSG_ID_LEN);
}

static bool eng_prec_valid(unsigned p)
{
	return p < HL_PREC_COUNT;
}

#ifndef NDEBUG
static void eng_check_invariants(const hl_engine *e)
{
	size_t total = 0;
	for (unsigned p = 0; p < HL_PREC_COUNT; p++) {
		const struct out_queue *q = &e->q[p];
		uint64_t last = 0;
		bool before_cursor = q->cursor != NULL;
		size_t n = 0;
		for (const struct out_entry *x = q->head; x; x = x->next) {
			assert(x->seq > last);                          /* I1 */
			last = x->seq;
			if (x == q->cursor)
				before_cursor = false;
			if (before_cursor)
				assert(x->item_sent && x->cur >= x->nparts); /* I1 */
			n++;
		}
		assert(n == q->n);
		total += n;
	}
	assert(total == e->nloaded);                                    /* I2 */
	for (const struct in_msg *m = e->in; m; m = m->next)
		for (unsigned i = 0; i < NPARTS_MAX; i++)
			assert(m->parts[i].durable <= m->parts[i].done); /* I4 */
}
#else
static void eng_check_invariants(const hl_engine *e)
{
	(void)e;
}
#endif

/* ---- out entries ---- */

static bool entry_done(const struct out_entry *x)
{
	return x->item_sent && x->cur >= x->nparts;
}

/* Forgets X's parts and how far they were sent: send_item() loads them
 * again.  An item refused for now (quota) is offered again whole: the
 * receiver dropped the chunks that followed it the first time. */
static void entry_reset_parts(struct out_entry *x)
{
	for (unsigned i = 0; x->parts && i < x->nparts; i++) {
		hl_dio_rclose(&x->parts[i].r);
		free(x->parts[i].path);
	}
	free(x->parts);
	free(x->body);
	x->parts = NULL;
	x->body = NULL;
	x->nparts = x->cur = 0;
	x->parts_known = false;
}

static void entry_free(struct out_entry *x)
{
	if (!x)
		return;
	entry_reset_parts(x);
	free(x);
}

static void eng_queue_fix_cursor(struct out_queue *q)
{
	if (!q->cursor)
		q->cursor = q->head;
	while (q->cursor && entry_done(q->cursor))
		q->cursor = q->cursor->next;
}

static void queue_append(hl_engine *e, struct out_entry *x)
{
	struct out_queue *q = &e->q[x->prec];
	x->next = NULL;
	if (q->tail)
		q->tail->next = x;
	else
		q->head = x;
	q->tail = x;
	q->n++;
	e->nloaded++;
	if (!q->cursor && !entry_done(x))
		q->cursor = x;
}

/* Drops entries that are done and acknowledged. */
static void queue_prune(hl_engine *e, struct out_queue *q)
{
	struct out_entry **pp = &q->head, *prev = NULL;
	while (*pp) {
		struct out_entry *x = *pp;
		if (x->acked && entry_done(x) && x != q->cursor) {
			*pp = x->next;
			if (q->tail == x)
				q->tail = prev;
			q->n--;
			e->nloaded--;
			entry_free(x);
		} else {
			prev = x;
			pp = &x->next;
		}
	}
}

static void eng_queues_clear(hl_engine *e)
{
	for (unsigned p = 0; p < HL_PREC_COUNT; p++) {
		struct out_entry *x = e->q[p].head;
		while (x) {
			struct out_entry *next = x->next;
			entry_free(x);
			x = next;
		}
		memset(&e->q[p], 0, sizeof(e->q[p]));
	}
	e->nloaded = 0;
	e->loaded_upto = 0;
}

static struct out_entry *entry_new(uint64_t seq, enum hl_item_kind kind, unsigned prec)
{
	struct out_entry *x = xcalloc(1, sizeof(*x));
	x->seq = seq;
	x->kind = kind;
	x->prec = eng_prec_valid(prec) ? prec : HL_PREC_FLASH;
	return x;
}

static const struct hl_resume_entry *resume_find(const hl_engine *e, uint64_t seq, unsigned part)
{
	for (size_t i = 0; i < e->resume.n; i++)
		if (e->resume.e[i].seq == seq && e->resume.e[i].part == part)
			return &e->resume.e[i];
	return NULL;
}

static bool resume_has(const hl_engine *e, uint64_t seq)
{
	for (size_t i = 0; i < e->resume.n; i++)
		if (e->resume.e[i].seq == seq)
			return true;
	return false;
}

/* Fills X's parts from its message row: part 0 when the body does not
 * travel inline, part i+1 for attachment i; offsets from the peer's
 * RESUME (else 0). */
static void entry_set_parts(hl_engine *e, struct out_entry *x, const struct hl_msg_row *row)
{
	x->parts_known = true;
	x->nparts = 1 + row->n_att;
	x->parts = xcalloc(x->nparts, sizeof(*x->parts));
	for (unsigned i = 0; i < x->nparts; i++)
		x->parts[i].r.fd = -1;
	if (row->body_size > HL_INLINE_BODY_MAX) {
		x->parts[0].size = row->body_size;
		if (row->body) {
			x->body = xmalloc(row->body_size);
			memcpy(x->body, row->body, row->body_size);
		}
	}
	for (unsigned i = 0; i < row->n_att; i++) {
		x->parts[i + 1].size = row->att[i].size;
		x->parts[i + 1].path = xstrdup(row->att[i].path);
	}
	for (unsigned i = 0; i < x->nparts; i++) {
		const struct hl_resume_entry *r = resume_find(e, x->seq, i);
		if (r)
			x->parts[i].offset = r->offset < x->parts[i].size ? r->offset : x->parts[i].size;
	}
	x->cur = 0;
	while (x->cur < x->nparts && x->parts[x->cur].offset >= x->parts[x->cur].size)
		x->cur++;
}

/* ---- loading the window ---- */

struct load_ctx {
	hl_engine *e;
	struct out_entry **arr;
	size_t n, cap;
};

static void load_push(struct load_ctx *lc, struct out_entry *x)
{
	if (lc->n == lc->cap) {
		lc->cap = lc->cap ? 2 * lc->cap : 64;
		lc->arr = xrealloc(lc->arr, lc->cap * sizeof(*lc->arr));
	}
	lc->arr[lc->n++] = x;
}

/* An acknowledged message whose parts the peer may lack. */
static int load_with_parts(void *arg, const struct hl_msg_row *row)
{
	struct load_ctx *lc = arg;
	hl_engine *e = lc->e;
	/* Not in the peer's RESUME: it holds the message whole (or refused
	 * it): nothing to send. */
	if (!resume_has(e, row->seq))
		return 0;
	struct out_entry *x = entry_new(row->seq, HL_ITEM_MESSAGE, row->precedence);
	x->acked = true;
	x->item_sent = true;
	entry_set_parts(e, x, row);
	if (x->parts[0].size && !x->body) {
		/* the row came without its body: fetch it */
		struct hl_msg_row full = { 0 };
		if (hl_store_get_message_by_seq(e->env.txn->store, e->peer_id, HL_DIR_OUT,
						row->seq, &full) == 0 && full.body) {
			x->body = xmalloc(full.body_size);
			memcpy(x->body, full.body, full.body_size);
		}
		hl_msg_row_clear(&full);
		if (!x->body) {
			entry_free(x);
			return 0;
		}
	}
	load_push(lc, x);
	return 0;
}

static int load_unacked(void *arg, const struct hl_item_row *row)
{
	struct load_ctx *lc = arg;
	load_push(lc, entry_new(row->seq, row->kind, row->precedence));
	if (row->seq > lc->e->loaded_upto)
		lc->e->loaded_upto = row->seq;
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct out_entry *x = *(const struct out_entry *const *)a;
	const struct out_entry *y = *(const struct out_entry *const *)b;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int eng_load_initial(hl_engine *e)
{
	struct load_ctx lc = { .e = e };
	hl_store *st = e->env.txn->store;
	int ret = hl_store_each_out_with_parts(st, e->peer_id, load_with_parts, &lc);
	if (ret == 0)
		ret = hl_store_each_out_after(st, e->peer_id, 0, OUT_WINDOW, load_unacked, &lc);
	if (ret < 0) {
		for (size_t i = 0; i < lc.n; i++)
			entry_free(lc.arr[i]);
		free(lc.arr);
		eng_set_error(e, "store: %s", hl_store_errmsg(st));
		return ret;
	}
	if (lc.n)
		qsort(lc.arr, lc.n, sizeof(*lc.arr), cmp_entry);
	for (size_t i = 0; i < lc.n; i++) {
		/* an acked-with-parts message is never also unacked */
		if (i > 0 && lc.arr[i]->seq == lc.arr[i - 1]->seq) {
			entry_free(lc.arr[i]);
			continue;
		}
		queue_append(e, lc.arr[i]);
	}
	free(lc.arr);
	return 0;
}

void hl_engine_refresh(hl_engine *e)
{
	if (!e->synced || e->nloaded >= OUT_WINDOW)
		return;
	struct load_ctx lc = { .e = e };
	hl_store *st = e->env.txn->store;
	if (hl_store_each_out_after(st, e->peer_id, e->loaded_upto, OUT_WINDOW - e->nloaded,
				    load_unacked, &lc) < 0) {
		eng_set_error(e, "store: %s", hl_store_errmsg(st));
	}
	/* Rows come in seq order above everything loaded: appending keeps
	 * every queue in order. */
	for (size_t i = 0; i < lc.n; i++)
		queue_append(e, lc.arr[i]);
	free(lc.arr);
	eng_check_invariants(e);
}

/* ---- sending ---- */

static int eng_send_rec(hl_engine *e, uint8_t type, const uint8_t *body, size_t len, uint64_t now)
{
	return hl_link_send(e->link, type, body, len, now);
}

/* Sends CREDIT once CREDIT_STEP has been taken in since the last one, or,
 * with ALL (the end of a burst, a worker's progress), for anything taken
 * (see CREDIT_WINDOW).  A CREDIT the link refuses now goes at the next
 * pump. */
static void eng_credit_maybe(hl_engine *e, uint64_t now, bool all)
{
	if (!e->credit_on || !e->link || hl_link_state(e->link) != HL_LINK_OPEN)
		return;
	/* Workers' rings may hold RING_SPARE bytes beyond the window: what
	 * they hold past that is not credited yet (see CREDIT_WINDOW). */
	uint64_t queued = e->pushed_pw - atomic_load_explicit(&e->done_pw, memory_order_acquire);
	uint64_t held = queued > RING_SPARE ? queued - RING_SPARE : 0;
	uint64_t taken = e->taken - held;
	if (taken <= e->credit_sent || (!all && taken - e->credit_sent < CREDIT_STEP))
		return;
	uint8_t body[HL_CREDIT_LEN];
	hl_rec_credit_encode(taken, body);
	if (eng_send_rec(e, HL_REC_CREDIT, body, sizeof(body), now) == 0)
		e->credit_sent = taken;
}

void hl_engine_credit(hl_engine *e, uint64_t now)
{
	eng_credit_maybe(e, now, true);
}

/* ---- flow control sized in time (deliver/flow.h) ---- */

static uint64_t flow_us(const hl_engine *e, uint64_t now_ms)
{
	return e->env.clock_us ? e->env.clock_us() : now_ms * 1000u;
}

/* The most data the next CHUNK or STAGE record carries. */
static size_t eng_data_max(const hl_engine *e, size_t max)
{
	return e->credit_on && e->flow ? hl_flow_chunk(e->flow, max) : max;
}

/* N more bytes of data went (the session's count is e->chunk_sent). */
static void eng_flow_sent(hl_engine *e, size_t n, uint64_t now)
{
	e->chunk_sent += n;
	if (!e->credit_on)
		return;
	if (!e->flow) {
		e->flow = xmalloc(sizeof(*e->flow));
		hl_flow_init(e->flow);
	}
	hl_flow_sent(e->flow, e->chunk_sent, flow_us(e, now));
}

/* With CREDIT, N more bytes of data must wait: they would take the data
 * in flight past the window, or the link's queue past what may wait
 * ahead of an urgent record (then the link calls on_writable as its queue
 * drains, and the engine pumps again; a CREDIT pumps too). */
static bool eng_flow_holds(hl_engine *e, uint64_t n)
{
	if (!e->credit_on)
		return false;
	uint64_t window = e->flow ? hl_flow_window(e->flow) : HL_FLOW_WINDOW_INIT;
	uint64_t ahead = e->flow ? hl_flow_ahead(e->flow) : HL_FLOW_AHEAD_INIT;
	/* (with nothing uncredited no CREDIT would come: a chunk always goes) */
	if (e->chunk_sent > e->chunk_credit && e->chunk_sent - e->chunk_credit + n > window)
		return true;
	size_t queued = hl_link_queued(e->link);
	if (queued > 0 && queued + n > ahead) {
		hl_link_notify_writable(e->link);
		return true;
	}
	return false;
}

uint64_t hl_engine_ahead(const hl_engine *e)
{
	return e->credit_on && e->flow ? hl_flow_ahead(e->flow) : HL_FLOW_AHEAD_INIT;
}

static int send_item(hl_engine *e, struct out_entry *x, uint64_t now)
{
	hl_store *st = e->env.txn->store;
	struct hl_item_row irow;
	struct hl_msg_row row = { 0 };
	bool has_msg;
	/* The item and its message row in one read (see hl_store_get_out_item). */
	int ret = hl_store_get_out_item(st, e->peer_id, x->seq, &irow, e->itembuf, HL_ITEM_MAX,
					&row, &has_msg);
	if (ret < 0) {
		eng_set_error(e, "store: item %llu: %s", (unsigned long long)x->seq,
			  hl_store_errmsg(st));
		return ret;
	}
	size_t len = 2 + irow.encoded_len;
	e->rec[0] = (uint8_t)(irow.encoded_len >> 8);
	e->rec[1] = (uint8_t)irow.encoded_len;
	memcpy(e->rec + 2, e->itembuf, irow.encoded_len);
	if (x->kind == HL_ITEM_MESSAGE) {
		if (!has_msg) {
			ret = HL_ENOTFOUND;
			eng_set_error(e, "store: message %llu: no message at that seq",
				  (unsigned long long)x->seq);
			goto out;
		}
		/* A purged message (retention; docs/retention.md) has no
		 * contents to send: pump() skips it for this session. */
		if (row.purged_at || (!row.body && row.body_size <= HL_INLINE_BODY_MAX)) {
			ret = HL_ESTATE;
			eng_set_error(e, "message %llu was purged here: it cannot be sent again",
				  (unsigned long long)x->seq);
			goto out;
		}
		struct hl_msg_content c = {
			.subject = (const uint8_t *)row.subject,
			.subject_len = strlen(row.subject),
			.inline_body = row.body_size <= HL_INLINE_BODY_MAX,
		};
		memcpy(c.salt, row.salt, HL_SALT_LEN);
		if (c.inline_body) {
			c.body = row.body;
			c.body_len = row.body_size;
		}
		size_t clen;
		ret = hl_msg_content_encode(&c, e->rec + len, HL_RECORD_BODY_MAX - len, &clen);
		if (ret < 0) {
			eng_set_error(e, "message %llu does not fit a record", (unsigned long long)x->seq);
			goto out;
		}
		len += clen;
		if (!x->parts_known)
			entry_set_parts(e, x, &row);
	}
	ret = eng_send_rec(e, HL_REC_ITEM, e->rec, len, now);
	if (ret == 0) {
		x->item_sent = true;
		e->stats.items_out++;
		if (x->kind == HL_ITEM_MESSAGE)
			eng_stage_item_sent(e, x, row.id, now);
	}
out:
	hl_msg_row_clear(&row);
	return ret;
}

static int send_chunk(hl_engine *e, struct out_entry *x, uint64_t now)
{
	struct out_part *p = &x->parts[x->cur];
	uint64_t left = p->size - p->offset;
	size_t max = eng_data_max(e, CHUNK_DATA_MAX);
	size_t n = left < max ? (size_t)left : max;
	uint8_t *data = e->rec + HL_CHUNK_HDR_LEN;

	if (x->cur == 0) {
		memcpy(data, x->body + p->offset, n);
	} else {
		int ret;
		if (p->r.fd < 0) {
			char *path = hl_path_join(e->env.dir, p->path);
			ret = hl_dio_ropen(&p->r, path, O_CLOEXEC | O_NOFOLLOW);
			if (ret < 0) {
				eng_set_error(e, "cannot open %s: %s", path, hl_strerror(ret));
				free(path);
				return ret;
			}
			free(path);
		}
		if ((ret = hl_dio_read(&p->r, p->offset, data, n)) < 0) {
			eng_set_error(e, "cannot read attachment %s: %s", p->path,
				  ret == HL_ETRUNC ? "file shorter than recorded" : hl_strerror(ret));
			return ret;
		}
	}
	hl_rec_chunk_header(x->seq, (uint8_t)x->cur, p->offset, e->rec);
	int ret = eng_send_rec(e, HL_REC_CHUNK, e->rec, HL_CHUNK_HDR_LEN + n, now);
	if (ret < 0)
		return ret;
	e->stats.chunks_out++;
	eng_flow_sent(e, n, now);
	p->offset += n;
	if (p->offset == p->size) {
		hl_dio_rclose(&p->r);
		do
			x->cur++;
		while (x->cur < x->nparts && x->parts[x->cur].offset >= x->parts[x->cur].size);
		if (x->cur >= x->nparts) {
			free(x->body);
			x->body = NULL;
		}
	}
	return 0;
}

/* CREDIT: X's next CHUNK must wait (eng_flow_holds). */
static bool window_full(hl_engine *e, const struct out_entry *x)
{
	if (!e->credit_on || !x->item_sent || x->cur >= x->nparts)
		return false;
	const struct out_part *p = &x->parts[x->cur];
	uint64_t left = p->size - p->offset, max = eng_data_max(e, CHUNK_DATA_MAX);
	return eng_flow_holds(e, left < max ? left : max);
}

/* The entry to work on: the most urgent queue's cursor (a queue whose
 * cursor waits for a retry is passed over). */
static struct out_entry *pick(hl_engine *e, struct out_queue **qout, uint64_t now)
{
	for (int p = HL_PREC_COUNT - 1; p >= 0; p--) {
		struct out_queue *q = &e->q[p];
		eng_queue_fix_cursor(q);
		if (q->cursor && q->cursor->retry_at <= now && !eng_stage_waiting(q->cursor, now)) {
			*qout = q;
			return q->cursor;
		}
	}
	return NULL;
}

void hl_engine_pump(hl_engine *e, uint64_t now)
{
	if (!e->link || hl_link_state(e->link) != HL_LINK_OPEN)
		return;
	eng_send_owed(e, now);
	if (e->reclaim_pending || e->return_pending)
		eng_resync_send(e, now);
	if (!e->synced)
		return;
	if (e->nloaded < OUT_WINDOW / 2)
		hl_engine_refresh(e);
	/* All taken so far: the pump after a burst's commit ends the burst
	 * (and a CREDIT the link refused before goes now). */
	eng_credit_maybe(e, now, true);
	eng_stage_send_staged(e, now);
	while (hl_link_writable_or_notify(e->link)) {
		struct out_queue *q = NULL;
		struct out_entry *x = pick(e, &q, now);
		/* Staged bytes go when nothing as urgent waits. */
		int sret = eng_stage_pump(e, x ? (int)x->prec : -1, now);
		if (sret < 0)
			break;
		if (sret > 0)
			continue;
		if (!x)
			break;
		if (window_full(e, x)) {
			/* the peer's next CREDIT pumps again */
			e->stats.window_waits++;
			break;
		}
		int ret = x->item_sent ? send_chunk(e, x, now) : send_item(e, x, now);
		if (ret == -EAGAIN)
			break;
		if (ret < 0) {
			/* A local failure (a file gone, a store error): skip the
			 * entry for this session rather than spin on it. */
			hl_warn("peer %s: cannot send item %llu: %s", e->peer_name,
				(unsigned long long)x->seq, e->error);
			x->item_sent = true;
			x->cur = x->nparts;
		}
		if (entry_done(x))
			eng_queue_fix_cursor(q);
	}
	eng_check_invariants(e);
}

/* ---- receiving: helpers ---- */

static struct in_msg *eng_in_find(hl_engine *e, uint64_t seq)
{
	for (struct in_msg *m = e->in; m; m = m->next)
		if (m->seq == seq)
			return m;
	return NULL;
}

static void eng_in_msg_free(struct in_msg *m)
{
	if (!m)
		return;
	for (unsigned i = 0; i < NPARTS_MAX; i++) {
		hl_partwriter_abort(m->parts[i].pw);
		hl_dio_close(&m->parts[i].w);
		free(m->parts[i].path);
	}
	free(m->body);
	free(m);
}

static void eng_in_unlink(hl_engine *e, struct in_msg *m)
{
	for (struct in_msg **pp = &e->in; *pp; pp = &(*pp)->next) {
		if (*pp == m) {
			*pp = m->next;
			e->nin--;
			return;
		}
	}
}

static void eng_in_clear(hl_engine *e)
{
	while (e->in) {
		struct in_msg *m = e->in;
		e->in = m->next;
		eng_in_msg_free(m);
	}
	e->nin = 0;
	e->in_loaded = false;
}

static struct in_msg *eng_in_msg_new(void)
{
	struct in_msg *m = xcalloc(1, sizeof(*m));
	for (unsigned i = 0; i < NPARTS_MAX; i++)
		m->parts[i].w.fd = -1;
	return m;
}

static void eng_in_add(hl_engine *e, struct in_msg *m)
{
	m->next = e->in;
	e->in = m;
	e->nin++;
}

/* Creates the directories of an incoming part, in/ and in/<id>/, each
 * made durable in its parent when new (the file's own fsync and its
 * directory's come when the part is complete). */
static int eng_make_part_dir(const hl_engine *e, const char *relpath)
{
	int ret = 0;
	char *in = hl_path_join(e->env.dir, "in");
	char *msgdir = hl_path_join(e->env.dir, relpath);
	*strrchr(msgdir, '/') = '\0';
	if (mkdir(in, 0700) == 0)
		ret = hl_fsync_parent(in);
	else if (errno != EEXIST)
		ret = -errno;
	if (ret == 0) {
		if (mkdir(msgdir, 0700) == 0)
			ret = hl_fsync_parent(msgdir);
		else if (errno != EEXIST)
			ret = -errno;
	}
	free(in);
	free(msgdir);
	return ret;
}

static char *eng_part_tmp_path(const hl_engine *e, const struct in_part *p)
{
	return xasprintf("%s/%s.part", e->env.dir, p->path);
}

static void eng_queue_refusal(hl_engine *e, uint64_t seq, const uint8_t hash[static 32],
			  uint8_t code, const char *text)
{
	if (e->nref >= REFUSALS_OWED_MAX) {
		/* A peer that sends what we refuse and reads nothing of what
		 * we say: the oldest REFUSE goes (its position is settled and
		 * acknowledged, or offered again and refused again). */
		memmove(e->refusals, e->refusals + 1, (e->nref - 1) * sizeof(*e->refusals));
		e->nref--;
		e->stats.refusals_dropped++;
	}
	if (e->nref == e->capref) {
		e->capref = e->capref ? 2 * e->capref : 8;
		e->refusals = xrealloc(e->refusals, e->capref * sizeof(*e->refusals));
	}
	struct refusal *r = &e->refusals[e->nref++];
	r->seq = seq;
	memcpy(r->hash, hash, 32);
	r->code = code;
	snprintf(r->text, sizeof(r->text), "%s", text);
}

static bool eng_in_all_complete(const struct in_msg *m)
{
	for (unsigned i = 0; i < NPARTS_MAX; i++)
		if (m->parts[i].present && !m->parts[i].complete)
			return false;
	return true;
}

/* May M (every part whole) become visible?  When the message before it in
 * its precedence is visible or refused; or when that message is not here
 * at all but everything before M in the peer's chain is (stored or
 * refused): then it was refused before anything of it could be trusted
 * (a bad signature), and waiting for it would wait for ever. */
static int eng_predecessor_done(hl_engine *e, unsigned prec, uint64_t class_seq, uint64_t seq,
			    bool *ok)
{
	hl_store *st = e->env.txn->store;
	int state;
	int ret = hl_store_in_class_state(st, e->peer_id, prec, class_seq - 1, &state);
	if (ret < 0)
		return ret;
	*ok = state == HL_MSG_COMPLETE || state == HL_MSG_REFUSED_IN;
	if (state == -1) {
		struct hl_chain_head head;
		if ((ret = hl_store_in_contiguous(st, e->peer_id, &head)) < 0)
			return ret;
		*ok = head.seq + 1 >= seq;
	}
	return 0;
}

/* The message at SEQ became visible: its receipt goes in the precommit. */
static void eng_add_receipt(hl_engine *e, uint64_t seq, const uint8_t hash[static HL_HASH_LEN])
{
	if (e->nrcpt == e->caprcpt) {
		e->caprcpt = e->caprcpt ? 2 * e->caprcpt : 64;
		e->rcpt = xrealloc(e->rcpt, e->caprcpt * sizeof(*e->rcpt));
	}
	e->rcpt[e->nrcpt].seq = seq;
	memcpy(e->rcpt[e->nrcpt].hash, hash, HL_HASH_LEN);
	e->nrcpt++;
}

/* Makes M visible if the message before it allows (eng_predecessor_done),
 * then tries the messages that were waiting for it. */
static int eng_try_visible(hl_engine *e, struct in_msg *m, uint64_t now)
{
	hl_store *st = e->env.txn->store;
	while (m) {
		bool prev_ok;
		int ret = eng_predecessor_done(e, m->prec, m->class_seq, m->seq, &prev_ok);
		if (ret < 0)
			return ret;
		if (!prev_ok)
			return 0;
		/* Visible already (a bundle imported beside this daemon made it
		 * so, and authored its receipt): a receipt acknowledges a
		 * message once (docs/items.md 2.2). */
		int state;
		if ((ret = hl_store_in_class_state(st, e->peer_id, m->prec, m->class_seq,
						   &state)) < 0)
			return ret;
		if (state != HL_MSG_COMPLETE) {
			if ((ret = hl_store_set_state(st, m->id, HL_MSG_COMPLETE, NULL,
						      hl_now_ms())) < 0)
				return ret;
			eng_add_event(e, HL_EV_ARRIVED, m->id);
			eng_add_receipt(e, m->seq, m->item_hash);
		}
		unsigned prec = m->prec;
		uint64_t next_class = m->class_seq + 1;
		eng_in_unlink(e, m);
		eng_in_msg_free(m);
		/* the next one of this precedence may have been waiting */
		m = NULL;
		for (struct in_msg *w = e->in; w; w = w->next) {
			if (w->ready && w->prec == prec && w->class_seq == next_class) {
				m = w;
				break;
			}
		}
	}
	(void)now;
	return 0;
}

/* Refuses an incoming message that was already stored (a part failed its
 * hash): its state becomes REFUSED, its files go, a REFUSE follows the
 * commit. */
static int eng_refuse_stored(hl_engine *e, struct in_msg *m, uint8_t code, const char *text)
{
	hl_store *st = e->env.txn->store;
	char reason[256];
	snprintf(reason, sizeof(reason), "%s: %s", hl_refuse_code_str(code), text);
	hl_warn("peer %s: refused message seq %llu: %s", e->peer_name,
		(unsigned long long)m->seq, reason);
	int ret = hl_store_set_state(st, m->id, HL_MSG_REFUSED_IN, reason, hl_now_ms());
	if (ret < 0)
		return ret;
	eng_add_event(e, HL_EV_REFUSED_IN, m->id);
	for (unsigned i = 1; i < NPARTS_MAX; i++) {
		struct in_part *p = &m->parts[i];
		if (!p->present)
			continue;
		char *tmp = eng_part_tmp_path(e, p), *fin = hl_path_join(e->env.dir, p->path);
		unlink(tmp);
		unlink(fin);
		free(tmp);
		free(fin);
	}
	eng_queue_refusal(e, m->seq, m->item_hash, code, text);
	/* A refused message no longer holds back the one after it. */
	unsigned prec = m->prec;
	uint64_t next_class = m->class_seq + 1;
	eng_in_unlink(e, m);
	eng_in_msg_free(m);
	for (struct in_msg *w = e->in; w; w = w->next)
		if (w->ready && w->prec == prec && w->class_seq == next_class)
			return eng_try_visible(e, w, 0);
	return 0;
}

/* Makes the hash state of a part file's first DONE bytes (after a
 * restart, or after a failure) from the file itself. */
static int part_rehash(hl_engine *e, struct in_part *p)
{
	char *tmp = eng_part_tmp_path(e, p);
	int ret = 0;
	uint8_t *buf = NULL;
	struct hl_dio_reader r = { .fd = -1 };
	struct stat sb;
	if (stat(tmp, &sb) < 0) {
		if (errno != ENOENT) {
			ret = -errno;
			goto out;
		}
		sb.st_size = 0;
	}
	if ((uint64_t)sb.st_size < p->done)
		p->done = p->durable = 0; /* shorter than recorded: start over */
	hl_parthash_doc(&p->hs);
	if (p->done > 0) {
		if ((ret = hl_dio_ropen(&r, tmp, O_CLOEXEC | O_NOFOLLOW)) < 0)
			goto out;
		buf = xmalloc(HL_DIO_BUF);
		for (uint64_t off = 0; off < p->done;) {
			size_t want = p->done - off < HL_DIO_BUF ? (size_t)(p->done - off) : HL_DIO_BUF;
			if ((ret = hl_dio_read(&r, off, buf, want)) < 0)
				goto out;
			hl_parthash_update(&p->hs, buf, want);
			off += want;
		}
	}
	p->hashed = true;
out:
	hl_dio_rclose(&r);
	free(buf);
	free(tmp);
	return ret;
}

/* Closes the writer of part IDX of M for now (another part needs the
 * room): what it holds is made durable and recorded, and the hash state
 * stays, so the part goes on where it stopped. */
static void part_park(hl_engine *e, struct in_msg *m, unsigned idx)
{
	struct in_part *p = &m->parts[idx];
	int ret = 0;
	if (p->pw) {
		ret = hl_partwriter_finish(p->pw);
		p->pw = NULL;
	}
	if (ret == 0)
		ret = hl_dio_sync(&p->w);
	hl_dio_close(&p->w);
	if (ret == 0 && p->done > p->durable &&
	    hl_store_set_part_done(e->env.txn->store, m->id, idx - 1, p->done) == 0)
		p->durable = p->done;
	if (ret < 0) {
		/* back to what is known durable; rehashed when reopened */
		p->done = p->durable;
		p->hashed = false;
	}
}

/* Opens part P's file for appending at p->done (cutting anything past
 * it), parking another part's writer when WRITERS_MAX are open. */
static int part_open_writer(hl_engine *e, struct in_part *p)
{
	unsigned open_now = 0;
	struct in_msg *vm = NULL;
	unsigned vidx = 0;
	for (struct in_msg *m = e->in; m; m = m->next)
		for (unsigned i = 1; i < NPARTS_MAX; i++)
			if (m->parts[i].w.fd >= 0) {
				open_now++;
				vm = m;
				vidx = i;
			}
	if (open_now >= WRITERS_MAX && vm)
		part_park(e, vm, vidx);
	int ret = p->hashed ? 0 : part_rehash(e, p);
	if (ret == 0) {
		char *tmp = eng_part_tmp_path(e, p);
		ret = hl_dio_open(&p->w, tmp, O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600, p->done);
		free(tmp);
	}
	return ret;
}

static int load_partial(void *arg, const struct hl_msg_row *row)
{
	hl_engine *e = arg;
	struct in_msg *m = eng_in_msg_new();
	struct hl_item_row irow;
	m->seq = row->seq;
	memcpy(m->id, row->id, HL_MSG_ID_LEN);
	m->prec = row->precedence;
	m->class_seq = row->class_seq;
	memcpy(m->salt, row->salt, HL_SALT_LEN);
	m->body_size = row->body_size;
	/* the signed item gives the hashes */
	struct hl_item *it = xcalloc(1, sizeof(*it));
	int ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, row->seq, &irow,
				    e->itembuf, HL_ITEM_MAX);
	if (ret == 0)
		ret = hl_item_decode(e->itembuf, irow.encoded_len, it);
	if (ret < 0) {
		free(it);
		eng_in_msg_free(m);
		return 0; /* leave it; logged by the caller's count */
	}
	memcpy(m->item_hash, irow.hash, HL_HASH_LEN);
	memcpy(m->body_hash, it->u.msg.body_hash, HL_HASH_LEN);
	free(it);
	if (!row->body && row->body_size > HL_INLINE_BODY_MAX) {
		m->parts[0].present = true;
		m->parts[0].size = row->body_size;
		m->body = xmalloc(row->body_size);
		hl_parthash_body(&m->parts[0].hs, m->salt);
	}
	for (unsigned i = 0; i < row->n_att; i++) {
		struct in_part *p = &m->parts[i + 1];
		p->present = true;
		p->size = row->att[i].size;
		p->done = p->durable = row->att[i].done;
		memcpy(p->hash, row->att[i].hash, HL_HASH_LEN);
		p->path = xstrdup(row->att[i].path);
		if (p->done >= p->size) {
			p->complete = true;
		} else if (part_rehash(e, p) < 0) {
			hl_warn("peer %s: cannot reopen %s; receiving it again", e->peer_name, p->path);
			p->done = p->durable = 0;
		}
	}
	m->ready = eng_in_all_complete(m);
	eng_in_add(e, m);
	return 0;
}

static int eng_load_in(hl_engine *e)
{
	if (e->in_loaded)
		return 0;
	int ret = hl_store_each_in_partial(e->env.txn->store, e->peer_id, load_partial, e);
	if (ret < 0) {
		eng_set_error(e, "store: %s", hl_store_errmsg(e->env.txn->store));
		eng_in_clear(e);
		return ret;
	}
	e->in_loaded = true;
	return 0;
}

/* ---- receiving: records ---- */

/* What this transaction knows of the peer's chain (e->cache_ok): loaded
 * at its first item, kept up to date by every insert, forgotten when the
 * transaction ends (eng_cache_forget, from postcommit and abort). */
static int cache_load(hl_engine *e)
{
	if (e->cache_ok)
		return 0;
	hl_store *st = e->env.txn->store;
	struct hl_chain_head top, contig;
	int ret = hl_store_chain_head(st, e->peer_id, HL_DIR_IN, &top);
	if (ret == 0)
		ret = hl_store_in_contiguous(st, e->peer_id, &contig);
	if (ret < 0)
		return ret;
	e->in_top = top.seq;
	e->contig = contig.seq;
	memset(e->class_known, 0, sizeof(e->class_known));
	e->cache_ok = true;
	return 0;
}

static void eng_cache_forget(hl_engine *e)
{
	e->cache_ok = false;
}

/* An item or tombstone was stored at SEQ. */
static void eng_cache_note(hl_engine *e, uint64_t seq)
{
	if (e->cache_ok && seq > e->in_top)
		e->in_top = seq;
}

/* Warnings about what the peer sent that we refuse: rate-limited, so a
 * flood cannot fill the log and push an ALARM line out of a journal. */
static void refuse_log(hl_engine *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void refuse_log(hl_engine *e, const char *fmt, ...)
{
	char line[512];
	if (!hl_ratelimit_allow(&e->refuse_log, (uint64_t)hl_now_ms()))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	hl_warn("peer %s: %s", e->peer_name, line);
}

/* Refused for now: nothing stored, not acknowledged; the author offers it
 * again (REFUSE code 7), and `status` says why. */
static void eng_refuse_later(hl_engine *e, uint64_t seq, const uint8_t *hash, const char *text)
{
	refuse_log(e, "item %llu refused for now: %s", (unsigned long long)seq, text);
	eng_queue_refusal(e, seq, hash, HL_REFUSE_QUOTA, text);
	snprintf(e->refusing, sizeof(e->refusing), "item %llu: %.130s", (unsigned long long)seq,
		 text);
	e->stats.refused_later++;
}

static int eng_tombstone(hl_engine *e, uint64_t seq, const uint8_t *hash, uint8_t code,
		     const char *text)
{
	hl_store *st = e->env.txn->store;
	int ret = hl_txn_need(e->env.txn);
	if (ret == 0 && !e->tombs_known && (ret = hl_store_count_tombstones(st, e->peer_id,
									   &e->tombs)) == 0)
		e->tombs_known = true;
	if (ret < 0)
		return ret;
	bool over;
	if ((ret = eng_over_limits(e, HL_STORE_ROW_COST, &over)) < 0)
		return ret;
	if (over) {
		eng_refuse_later(e, seq, hash, "over quota or disk reserve");
		return 0;
	}
	if (e->tombs >= TOMBSTONES_MAX) {
		char why[160];
		snprintf(why, sizeof(why), "%.100s (%llu refused items kept already)", text,
			 (unsigned long long)e->tombs);
		eng_refuse_later(e, seq, hash, why);
		return 0;
	}
	if ((ret = hl_store_insert_tombstone(st, e->peer_id, seq, hash, code)) < 0)
		return ret;
	e->tombs++;
	eng_cache_note(e, seq);
	refuse_log(e, "refused item %llu: %s: %s", (unsigned long long)seq,
		   hl_refuse_code_str(code), text);
	eng_queue_refusal(e, seq, hash, code, text);
	e->stats.refused_items++;
	e->need_ack = true;
	return 0;
}

/* ---- the chain rules on arrival (chain/accept.h) ---- */

/* The peer's entry at SEQ as held (e->itembuf is overwritten). */
static int chain_ref(hl_engine *e, uint64_t seq, struct hl_chain_ref *ref)
{
	struct hl_item_row row;
	memset(ref, 0, sizeof(*ref));
	if (seq == 0 || seq > e->in_top)
		return 0;
	int ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, seq, &row,
				    e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	ref->held = true;
	ref->item = row.kind != 0;
	ref->kind = row.kind;
	memcpy(ref->hash, row.hash, HL_HASH_LEN);
	if (ref->item && hl_item_decode(row.encoded, row.encoded_len, e->scratch) == 0)
		memcpy(ref->prev, e->scratch->prev, HL_HASH_LEN);
	return 0;
}

static int class_rule(hl_engine *e, const struct hl_item *it, struct hl_chain_why *w)
{
	const struct hl_item_message *m = &it->u.msg;
	hl_store *st = e->env.txn->store;
	unsigned p = m->precedence;
	struct hl_class_pos b, a;
	int ret;
	if (!e->class_known[p]) {
		if ((ret = hl_store_in_class_near(st, e->peer_id, p, (uint64_t)INT64_MAX, &b,
						  &a)) < 0)
			return ret;
		e->class_top[p] = (struct hl_chain_class_ref){ b.found, b.seq, b.class_seq };
		e->class_known[p] = true;
	}
	/* The common case, the next message of its precedence: the highest
	 * held is the one below it, and none is above. */
	struct hl_chain_class_ref below = e->class_top[p], above = { 0 };
	if (below.held && below.class_seq >= m->class_seq) {
		if ((ret = hl_store_in_class_near(st, e->peer_id, p, m->class_seq, &b, &a)) < 0)
			return ret;
		below = (struct hl_chain_class_ref){ b.found, b.seq, b.class_seq };
		above = (struct hl_chain_class_ref){ a.found, a.seq, a.class_seq };
	}
	return hl_chain_class(m, it->seq, &below, &above, w);
}

/* A message at SEQ with CLASS_SEQ was stored. */
static void eng_class_note(hl_engine *e, unsigned prec, uint64_t seq, uint64_t class_seq)
{
	if (e->class_known[prec] && (!e->class_top[prec].held ||
				     class_seq > e->class_top[prec].class_seq))
		e->class_top[prec] = (struct hl_chain_class_ref){ true, seq, class_seq };
}

/* The nearest held item of the peer's chain, below or above SEQ, that
 * records our chain's head. */
static int head_near(hl_engine *e, uint64_t seq, bool above, struct hl_chain_head_ref *ref)
{
	struct hl_item_row row;
	uint64_t ps;
	const uint8_t *ph;
	memset(ref, 0, sizeof(*ref));
	if (above && seq >= e->in_top)
		return 0;
	int ret = hl_store_head_item_near(e->env.txn->store, e->peer_id, HL_DIR_IN, seq, above,
					  &row, e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND)
		return 0;
	if (ret < 0)
		return ret;
	if (hl_item_decode(row.encoded, row.encoded_len, e->scratch) == 0 &&
	    hl_chain_item_head(e->scratch, &ps, &ph))
		*ref = (struct hl_chain_head_ref){ true, row.seq, ps };
	return 0;
}

/* Our item at SEQ, for the rules that look into our chain. */
static int our_ref(hl_engine *e, uint64_t seq, struct hl_chain_ref *ref, int *msg_state)
{
	memset(ref, 0, sizeof(*ref));
	int ret = hl_store_out_entry(e->env.txn->store, e->peer_id, seq, &ref->kind, ref->hash,
				     msg_state);
	if (ret == HL_ENOTFOUND)
		return 0;
	ref->held = ref->item = ret == 0;
	return ret;
}

static int head_rule(hl_engine *e, const struct hl_item *it, struct hl_chain_why *w)
{
	uint64_t ps;
	const uint8_t *ph;
	struct hl_chain_head_ref below, above;
	struct hl_chain_ref target = { 0 };
	int state, ret;
	if (!hl_chain_item_head(it, &ps, &ph))
		return HL_CHAIN_OK;
	if ((ret = head_near(e, it->seq, false, &below)) < 0 ||
	    (ret = head_near(e, it->seq, true, &above)) < 0 ||
	    (ps && (ret = our_ref(e, ps, &target, &state)) < 0))
		return ret;
	return hl_chain_head(it->seq, ps, ph, &below, &above, &target, w);
}

/* The receipt rule's lookups into our chain; the last answer is kept, as
 * the rule asks for the same seq twice. */
struct rcpt_look {
	hl_engine *e;
	uint64_t seq;
	int state;
};

static int rcpt_other(void *arg, uint64_t seq, struct hl_chain_ref *ref)
{
	struct rcpt_look *l = arg;
	l->seq = seq;
	return our_ref(l->e, seq, ref, &l->state);
}

/* Acknowledged already: delivered (a receipt moved it), or refused by the
 * peer, which a receipt can no longer move (so a second receipt for it
 * would go unseen here, and be seen by `record verify`). */
static int rcpt_acked(void *arg, uint64_t seq, bool *yes)
{
	struct rcpt_look *l = arg;
	(void)seq;
	*yes = l->state == HL_MSG_DELIVERED || l->state == HL_MSG_REFUSED;
	return 0;
}

/* Every rule the peer's item IT (hash HASH), decoded and signed, must
 * satisfy given what we hold.  A verdict, or a negative code. */
static int eng_chain_rules(hl_engine *e, const struct hl_item *it, const uint8_t hash[static 32],
		       struct hl_chain_ref *before, struct hl_chain_ref *after,
		       struct hl_chain_why *w)
{
	int ret;
	if ((ret = chain_ref(e, it->seq - 1, before)) < 0 ||
	    (ret = chain_ref(e, it->seq + 1, after)) < 0)
		return ret;
	if ((ret = hl_chain_links(it, hash, before, after, w)) != HL_CHAIN_OK)
		return ret;
	if (it->kind == HL_ITEM_MESSAGE && (ret = class_rule(e, it, w)) != HL_CHAIN_OK)
		return ret;
	if ((ret = head_rule(e, it, w)) != HL_CHAIN_OK)
		return ret;
	if (it->kind == HL_ITEM_RECEIPT) {
		struct rcpt_look l = { .e = e };
		struct hl_chain_lookup look = { .arg = &l, .other = rcpt_other, .acked = rcpt_acked };
		return hl_chain_receipt(&it->u.rcpt, &look, w);
	}
	return HL_CHAIN_OK;
}

struct evidence_scan {
	uint64_t seq;
	size_t n;
	bool here;
};

static int evidence_row(void *arg, const struct hl_equivocation_row *row)
{
	struct evidence_scan *x = arg;
	x->n++;
	x->here = x->here || row->seq == x->seq;
	return 0;
}

/* ITEM (decoded as IT, hash HASH), signed by the peer, contradicts the
 * item we hold at FIRST_SEQ (its own position, or the neighbour whose link
 * it breaks): keep the pair as evidence, once per position and at most
 * EVIDENCE_MAX per peer, and tell the operator once for each kept. */
static int keep_evidence(hl_engine *e, const struct hl_item *it, const uint8_t *item, size_t len,
			 const uint8_t hash[static 32], uint64_t first_seq)
{
	hl_store *st = e->env.txn->store;
	struct evidence_scan x = { .seq = it->seq };
	struct hl_item_row first;
	int ret = hl_store_each_equivocation(st, e->peer_id, evidence_row, &x);
	if (ret < 0)
		return ret;
	if (x.here || x.n >= EVIDENCE_MAX) {
		refuse_log(e, "another item that contradicts its chain at %llu (evidence kept "
			   "already)", (unsigned long long)it->seq);
		return 0;
	}
	if ((ret = hl_store_get_item(st, e->peer_id, HL_DIR_IN, first_seq, &first, e->itembuf,
				     HL_ITEM_MAX)) < 0)
		return ret;
	struct hl_equivocation_row row = {
		.peer_id = e->peer_id, .seq = it->seq,
		.first_item = first.encoded, .first_len = first.encoded_len,
		.second_item = item, .second_len = len, .detected_at = hl_now_ms(),
	};
	memcpy(row.first_hash, first.hash, HL_HASH_LEN);
	memcpy(row.second_hash, hash, HL_HASH_LEN);
	ret = hl_store_insert_equivocation(st, &row);
	if (ret == HL_EEXIST)
		return 0;
	if (ret < 0)
		return ret;
	hl_error("peer %s: EQUIVOCATION: it signed two different items as number %llu of its "
		 "chain; both kept as evidence", e->peer_name,
		 (unsigned long long)(first_seq < it->seq ? first_seq : it->seq));
	event_t *ev = eng_add_event_info(e, HL_EV_EQUIVOCATION, hash, HL_HASH_LEN);
	ev->seq = it->seq;
	return 0;
}

/* Free space in the station's file system, asked of the kernel at most
 * every FREE_CACHE_MS (a stream of small messages would otherwise make a
 * statvfs() call each); what was accepted since is subtracted. */
#define FREE_CACHE_MS 100
static uint64_t eng_free_bytes(hl_engine *e)
{
	int64_t now = hl_now_ms();
	if (!e->free_at || now - e->free_at >= FREE_CACHE_MS || now < e->free_at) {
		struct statvfs sv;
		bool ok = statvfs(e->env.dir, &sv) == 0;
		e->free_cache = ok ? (uint64_t)sv.f_bavail * sv.f_frsize : UINT64_MAX;
		/* DiskReserve = N% scales with the file system */
		e->reserve_cache = hl_disk_reserve(e->env.reserve_bytes, e->env.reserve_pct,
						   ok ? (uint64_t)sv.f_blocks * sv.f_frsize : 0);
		e->free_at = now;
	}
	return e->free_cache;
}

/* The disk reserve in bytes (DiskReserve), as eng_free_bytes() last saw. */
static uint64_t eng_reserve_bytes(hl_engine *e)
{
	(void)eng_free_bytes(e);
	return e->reserve_cache;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* What storing a message costs the peer's quota, as the store counts it
 * (store.h, hl_store_peer_usage): the item's row and bytes, the message's
 * row, subject and body, a directory and a file per attachment (at least
 * a block each); saturating, so no declared size can wrap the sum. */
static uint64_t eng_message_charge(const struct hl_item_message *m, size_t enc_len,
			       size_t subject_len)
{
	uint64_t c = 2 * HL_STORE_ROW_COST + enc_len + subject_len;
	c = sat_add(c, m->body_size);
	if (m->n_attachments)
		c = sat_add(c, HL_STORE_BLOCK_COST);
	for (unsigned i = 0; i < m->n_attachments; i++) {
		uint64_t sz = m->att[i].size, blocks = sz / HL_STORE_BLOCK_COST +
						       (sz % HL_STORE_BLOCK_COST != 0);
		c = sat_add(c, HL_STORE_ROW_COST);
		c = sat_add(c, (blocks ? blocks : 1) * HL_STORE_BLOCK_COST);
	}
	return c;
}

/* Would storing CHARGE more bytes for the peer pass its quota, or take
 * the disk's free space below the reserve?  Both are "for now": the
 * author offers the item again later. */
static int eng_over_limits(hl_engine *e, uint64_t charge, bool *over)
{
	uint64_t usage = 0;
	int ret;
	*over = false;
	if (e->env.quota_bytes) {
		if ((ret = hl_store_peer_usage(e->env.txn->store, e->peer_id, &usage)) < 0)
			return ret;
		*over = sat_add(usage, charge) > e->env.quota_bytes;
	}
	uint64_t reserve = eng_reserve_bytes(e);
	if (reserve && eng_free_bytes(e) < sat_add(reserve, charge))
		*over = true;
	return 0;
}

static int eng_on_message_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
			   size_t enc_len, const uint8_t hash[static 32],
			   const uint8_t *rest, size_t rest_len)
{
	hl_store *st = e->env.txn->store;
	const struct hl_item_message *m = &it->u.msg;
	struct hl_msg_content c;
	int ret;

	/* the same id under another item: refuse */
	bool used;
	if ((ret = hl_store_message_exists(st, m->id, &used)) < 0)
		return ret;
	if (used)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_ID_REUSED, "message id already used");
	if (hl_msg_content_decode(rest, rest_len, &c) < 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_MALFORMED, "message content malformed");
	if (hl_msg_content_check(m, &c) < 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_CONTENT, "subject or body hash mismatch");

	uint64_t max_att = e->env.max_attachment ? e->env.max_attachment : HL_DEFAULT_MAX_ATTACHMENT;
	for (unsigned i = 0; i < m->n_attachments; i++) {
		if (m->att[i].size > max_att) {
			char text[128];
			snprintf(text, sizeof(text), "attachment of %llu bytes; the limit is %llu",
				 (unsigned long long)m->att[i].size, (unsigned long long)max_att);
			return eng_tombstone(e, it->seq, hash, HL_REFUSE_TOO_LARGE, text);
		}
	}
	/* Quota and reserve: temporary refusals, nothing stored, retried by
	 * the sender in its next session. */
	uint64_t total = eng_message_charge(m, enc_len, c.subject_len);
	bool over;
	if ((ret = eng_over_limits(e, total, &over)) < 0)
		return ret;
	if (!c.inline_body) {
		uint64_t held = m->body_size;
		for (const struct in_msg *w = e->in; w; w = w->next)
			held += w->body ? w->body_size : 0;
		over = over || held > BODY_MEM_MAX;
	}
	if (over || e->nin >= MAX_PARTIAL_IN) {
		eng_set_error(e, "message %llu of %llu bytes waits: over the peer's quota or the disk reserve (free space or raise PeerQuota)",
			  (unsigned long long)it->seq, (unsigned long long)total);
		eng_refuse_later(e, it->seq, hash, "over quota or disk reserve");
		return 0;
	}

	if (e->free_cache != UINT64_MAX)
		e->free_cache = e->free_cache > total ? e->free_cache - total : 0;
	char idhex[33];
	hl_msg_id_hex(m->id, idhex);
	struct hl_att_row *att = xcalloc(m->n_attachments ? m->n_attachments : 1, sizeof(*att));
	for (unsigned i = 0; i < m->n_attachments; i++) {
		att[i].idx = i;
		memcpy(att[i].name, m->att[i].name, m->att[i].name_len);
		att[i].name[m->att[i].name_len] = '\0';
		att[i].size = m->att[i].size;
		memcpy(att[i].hash, m->att[i].hash, HL_HASH_LEN);
		snprintf(att[i].path, sizeof(att[i].path), "in/%s/%u", idhex, i);
	}
	/* A message whole on arrival (its body inline, no attachment) whose
	 * predecessor allows is stored visible at once: one UPDATE less per
	 * message of a stream. */
	bool visible = false;
	if (c.inline_body && m->n_attachments == 0 &&
	    (ret = eng_predecessor_done(e, m->precedence, m->class_seq, it->seq, &visible)) < 0) {
		free(att);
		return ret;
	}
	char *subject = xstrndup((const char *)c.subject, c.subject_len);
	struct hl_msg_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq,
		.precedence = m->precedence, .class_seq = m->class_seq,
		.subject = subject, .body = c.inline_body ? (uint8_t *)c.body : NULL,
		.body_size = m->body_size, .sent_at = (int64_t)it->time_ms,
		.state = HL_MSG_PARTIAL, .unread = true,
		.n_att = m->n_attachments, .att = att,
	};
	memcpy(row.id, m->id, HL_MSG_ID_LEN);
	memcpy(row.salt, c.salt, HL_SALT_LEN);
	if (visible) {
		row.state = HL_MSG_COMPLETE;
		row.received_at = hl_now_ms();
	}
	struct hl_item_row irow = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq,
		.kind = HL_ITEM_MESSAGE, .encoded = enc, .encoded_len = enc_len,
		.precedence = m->precedence, .stored_at = hl_now_ms(),
	};
	memcpy(irow.hash, hash, HL_HASH_LEN);
	ret = hl_store_insert_item(st, &irow);
	if (ret == 0)
		ret = hl_store_insert_message(st, &row);
	free(subject);
	free(att);
	if (ret < 0)
		return ret;
	eng_cache_note(e, it->seq);
	eng_class_note(e, m->precedence, it->seq, m->class_seq);
	e->need_ack = true;
	if (visible) {
		eng_add_event(e, HL_EV_ARRIVED, m->id);
		eng_add_receipt(e, it->seq, hash);
		return 0;
	}

	/* in memory, to receive its parts */
	struct in_msg *im = eng_in_msg_new();
	im->seq = it->seq;
	memcpy(im->id, m->id, HL_MSG_ID_LEN);
	memcpy(im->item_hash, hash, HL_HASH_LEN);
	im->prec = m->precedence;
	im->class_seq = m->class_seq;
	memcpy(im->salt, c.salt, HL_SALT_LEN);
	memcpy(im->body_hash, m->body_hash, HL_HASH_LEN);
	im->body_size = m->body_size;
	if (!c.inline_body) {
		struct in_part *p = &im->parts[0];
		p->present = true;
		p->size = m->body_size;
		im->body = xmalloc(m->body_size);
		hl_parthash_body(&p->hs, im->salt);
	}
	for (unsigned i = 0; i < m->n_attachments; i++) {
		struct in_part *p = &im->parts[i + 1];
		p->present = true;
		p->size = m->att[i].size;
		memcpy(p->hash, m->att[i].hash, HL_HASH_LEN);
		p->path = xasprintf("in/%s/%u", idhex, i);
		hl_parthash_doc(&p->hs);
		p->hashed = true;
	}
	eng_in_add(e, im);
	if ((ret = eng_stage_adopt(e, im)) < 0)
		return ret;
	/* zero-length attachments are complete at once */
	for (unsigned i = 1; i <= m->n_attachments; i++) {
		if (im->parts[i].size == 0) {
			uint8_t empty[HL_HASH_LEN];
			hl_doc_hash(NULL, 0, empty);
			if (sodium_memcmp(empty, im->parts[i].hash, HL_HASH_LEN) != 0)
				return eng_refuse_stored(e, im, HL_REFUSE_ATTACHMENT, "empty attachment hash mismatch");
			char *fin = hl_path_join(e->env.dir, im->parts[i].path);
			ret = eng_make_part_dir(e, im->parts[i].path);
			int fd = ret < 0 ? -1
					 : open(fin, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
			if (ret == 0 && fd < 0)
				ret = -errno;
			/* durable before the receipt, like any other part */
			if (fd >= 0 && fsync(fd) < 0)
				ret = -errno;
			if (fd >= 0)
				close(fd);
			if (ret == 0)
				ret = hl_fsync_parent(fin);
			free(fin);
			if (ret < 0) {
				eng_set_error(e, "cannot store attachment %s: %s", im->parts[i].path,
					  hl_strerror(ret));
				return ret;
			}
			im->parts[i].complete = true;
		}
	}
	im->ready = eng_in_all_complete(im);
	if (im->ready)
		return eng_try_visible(e, im, 0);
	return 0;
}

static int eng_on_receipt_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
			   size_t enc_len, const uint8_t hash[static 32])
{
	hl_store *st = e->env.txn->store;
	struct hl_item_row irow = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq,
		.kind = HL_ITEM_RECEIPT, .encoded = enc, .encoded_len = enc_len,
		.precedence = HL_PREC_FLASH, .stored_at = hl_now_ms(),
	};
	memcpy(irow.hash, hash, HL_HASH_LEN);
	int ret = hl_store_insert_item(st, &irow);
	if (ret < 0)
		return ret;
	eng_cache_note(e, it->seq);
	e->need_ack = true;
	int64_t now = hl_now_ms();
	/* The chain rules (eng_chain_rules) made sure each entry names a message
	 * of ours, with its hash, not acknowledged before: each moves. */
	for (unsigned i = 0; i < it->u.rcpt.count; i++) {
		const struct hl_receipt_entry *r = &it->u.rcpt.entries[i];
		uint8_t id[HL_MSG_ID_LEN];
		bool moved;
		if ((ret = hl_store_mark_delivered(st, e->peer_id, r->seq, r->hash, now, id,
						   &moved)) < 0)
			return ret;
		if (moved)
			eng_add_event(e, HL_EV_DELIVERED, id);
	}
	return 0;
}

/* An item that arrived (or was refused) may let a message that waits for
 * its predecessor go (see eng_predecessor_done). */
static int eng_retry_waiting(hl_engine *e)
{
	bool progress = true;
	while (progress) {
		progress = false;
		for (struct in_msg *w = e->in; w; w = w->next) {
			if (!w->ready)
				continue;
			size_t before = e->nin;
			int ret = eng_try_visible(e, w, 0);
			if (ret < 0)
				return ret;
			if (e->nin != before) {
				progress = true; /* the list changed under us */
				break;
			}
		}
	}
	return 0;
}

/* ---- receiving: checks, answers, agreements, equivocation ---- */

static struct hl_author_link author_link(const hl_engine *e)
{
	struct hl_author_link l = {
		.st = e->env.txn->store, .me = e->env.me, .peer_id = e->peer_id,
	};
	memcpy(l.peer_sign, e->peer_sign, 32);
	return l;
}

/* The peer checked the line: record it, and the station answers at once
 * (a second answer, by a person or "no person", follows in operator mode:
 * the daemon's business). */
static int count_row(void *arg, const struct hl_check_row *row)
{
	(void)row;
	(*(size_t *)arg)++;
	return 0;
}

/* A check of the peer: the station answers at once.  In operator mode it
 * then waits for a person, unless HL_CHECKS_WAITING_MAX of the peer's
 * checks already do: then it is decided "no person" at once, with no
 * answer beyond the station's (docs/items.md 2.4), so that a peer cannot
 * pile up checks for `status` to list and `hotline answer` to sign. */
static int on_check_item(hl_engine *e, const struct hl_item *it)
{
	hl_store *st = e->env.txn->store;
	const struct hl_item_check *c = &it->u.chk;
	int64_t now = hl_now_ms();
	struct hl_check_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq, .mode = c->mode,
		.link = c->link, .created_at = now, .deadline = now + (int64_t)c->timeout_ms,
		.result = HL_CHECK_PENDING,
	};
	size_t waiting = 0;
	int ret;
	memcpy(row.id, c->id, HL_CHECK_ID_LEN);
	if (c->mode == HL_CHECK_OPERATOR) {
		/* Only operator checks stay open once the station answered. */
		struct hl_check_filter f = { .peer_id = e->peer_id, .dir = HL_DIR_IN,
					     .open_only = true, .limit = HL_CHECKS_WAITING_MAX };
		if ((ret = hl_store_each_check(st, &f, count_row, &waiting)) < 0)
			return ret;
	}
	ret = hl_store_insert_check(st, &row);
	if (ret == HL_EEXIST) {
		/* The same id under another item: kept in the chain, not answered. */
		hl_warn("peer %s: check item %llu reuses a check id; not answered", e->peer_name,
			(unsigned long long)it->seq);
		return 0;
	}
	struct hl_author_link l = author_link(e);
	if (ret < 0 || (ret = hl_author_answer(&l, &row, HL_ANSWER_STATION, now)) < 0)
		return ret;
	if (c->mode == HL_CHECK_OPERATOR && waiting >= HL_CHECKS_WAITING_MAX) {
		row.result = HL_CHECK_NO_PERSON;   /* no_person_at 0: not offered */
		if ((ret = hl_store_update_check(st, &row)) < 0)
			return ret;
	}
	event_t *ev = eng_add_event_info(e, HL_EV_CHECK_IN, c->id, HL_CHECK_ID_LEN);
	ev->by = c->mode;
	return 0;
}

/* The peer answered one of our checks. */
static int on_answer_item(hl_engine *e, const struct hl_item *it)
{
	hl_store *st = e->env.txn->store;
	const struct hl_item_answer *a = &it->u.ans;
	struct hl_item_row ours;
	struct hl_check_row row;
	int ret = hl_store_get_item(st, e->peer_id, HL_DIR_OUT, a->check_seq, &ours, e->itembuf,
				    HL_ITEM_MAX);
	if (ret == 0 && (ours.kind != HL_ITEM_CHECK ||
			 sodium_memcmp(ours.hash, a->check_hash, HL_HASH_LEN) != 0))
		ret = HL_ENOTFOUND;
	if (ret == 0)
		ret = hl_store_get_check_by_seq(st, e->peer_id, HL_DIR_OUT, a->check_seq, &row);
	if (ret == HL_ENOTFOUND) {
		hl_warn("peer %s: answer %llu names item %llu, not a check of ours", e->peer_name,
			(unsigned long long)it->seq, (unsigned long long)a->check_seq);
		return 0;
	}
	if (ret < 0)
		return ret;
	int64_t now = hl_now_ms();
	switch (a->by) {
	case HL_ANSWER_STATION:
		if (!row.station_at)
			row.station_at = now;
		if (row.mode == HL_CHECK_MACHINE && row.result == HL_CHECK_PENDING)
			row.result = HL_CHECK_OK;
		break;
	case HL_ANSWER_PERSON:
		if (!row.person_at)
			row.person_at = now;
		if (row.result == HL_CHECK_PENDING)
			row.result = HL_CHECK_OK;
		break;
	default:
		if (!row.no_person_at)
			row.no_person_at = now;
		if (row.result == HL_CHECK_PENDING)
			row.result = HL_CHECK_NO_PERSON;
		break;
	}
	if ((ret = hl_store_update_check(st, &row)) < 0)
		return ret;
	event_t *ev = eng_add_event_info(e, HL_EV_ANSWER, row.id, HL_CHECK_ID_LEN);
	ev->by = a->by;
	return 0;
}

static int on_agreement_item(hl_engine *e, const struct hl_item *it, const uint8_t hash[static 32])
{
	const struct hl_item_agreement *g = &it->u.agr;
	struct hl_agreement_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq, .size = g->size,
		.proposed_at = (int64_t)it->time_ms,
	};
	memcpy(row.id, hash, HL_HASH_LEN);
	memcpy(row.name, g->name, g->name_len);
	row.name[g->name_len] = '\0';
	memcpy(row.doc_hash, g->doc_hash, HL_HASH_LEN);
	memcpy(row.msg_id, g->msg_id, HL_MSG_ID_LEN);
	int ret = hl_store_insert_agreement(e->env.txn->store, &row);
	if (ret < 0)
		return ret;
	(void)eng_add_event_info(e, HL_EV_PROPOSAL, hash, HL_HASH_LEN);
	return 0;
}

static int on_countersign_item(hl_engine *e, const struct hl_item *it)
{
	hl_store *st = e->env.txn->store;
	const struct hl_item_countersign *c = &it->u.csig;
	struct hl_agreement_row row;
	int ret = hl_store_get_agreement_by_id(st, c->agreement_id, &row);
	if (ret == 0 && (row.dir != HL_DIR_OUT || row.peer_id != e->peer_id ||
			 row.seq != c->proposal_seq ||
			 sodium_memcmp(row.doc_hash, c->doc_hash, HL_HASH_LEN) != 0))
		ret = HL_ENOTFOUND;
	if (ret == HL_ENOTFOUND) {
		hl_warn("peer %s: countersign %llu names no agreement of ours", e->peer_name,
			(unsigned long long)it->seq);
		return 0;
	}
	if (ret < 0 || (ret = hl_store_set_agreement_signed(st, row.id, it->seq, hl_now_ms())) < 0)
		return ret;
	(void)eng_add_event_info(e, HL_EV_SIGNED, row.id, HL_HASH_LEN);
	return 0;
}

/* Items other than messages and receipts: stored in the chain like a
 * receipt, then handled by kind. */
static int eng_on_signed_item(hl_engine *e, const struct hl_item *it, const uint8_t *enc,
			  size_t enc_len, const uint8_t hash[static 32])
{
	struct hl_item_row irow = {
		.peer_id = e->peer_id, .dir = HL_DIR_IN, .seq = it->seq,
		.kind = it->kind, .encoded = enc, .encoded_len = enc_len,
		.precedence = HL_PREC_FLASH, .stored_at = hl_now_ms(),
	};
	memcpy(irow.hash, hash, HL_HASH_LEN);
	int ret = hl_store_insert_item(e->env.txn->store, &irow);
	if (ret < 0)
		return ret;
	eng_cache_note(e, it->seq);
	e->need_ack = true;
	switch (it->kind) {
	case HL_ITEM_CHECK: return on_check_item(e, it);
	case HL_ITEM_ANSWER: return on_answer_item(e, it);
	case HL_ITEM_AGREEMENT: return on_agreement_item(e, it, hash);
	case HL_ITEM_COUNTERSIGN: return on_countersign_item(e, it);
	default: return 0;
	}
}

/* A second, different item at a position of the peer's chain we hold
 * (HAVE).  When it verifies as the peer's, the pair proves the peer signed
 * both: keep it (keep_evidence) and tell the operator.  Our chain copy
 * keeps the first. */
static int on_equivocation(hl_engine *e, const struct hl_item_row *have, const uint8_t *item,
			   size_t len, const uint8_t hash[static 32])
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	int ret = 0;
	if (have->kind == 0 ||
	    hl_item_open(item, len, e->peer_sign, e->env.me->sign_pk, it) < 0)
		refuse_log(e, "a different item at seq %llu that proves nothing (ignored)",
			   (unsigned long long)have->seq);
	else
		ret = keep_evidence(e, it, item, len, hash, have->seq);
	free(it);
	return ret;
}

/* An item that does not decode: refused at the position its common
 * header claims (the link is authenticated: only the peer can make that
 * claim, and only against its own chain).  Without even a seq, the
 * session ends. */
static int on_bad_item(hl_engine *e, const struct hl_rec_item *r, const struct hl_item *it,
		       const uint8_t hash[static 32])
{
	uint64_t seq;
	struct hl_item_row have;
	struct hl_chain_why w;
	hl_chain_why_init(&w, NULL, "our chain's");
	int ret;
	if (hl_item_peek_seq(r->item, r->item_len, &seq) < 0) {
		eng_set_error(e, "undecodable item");
		return HL_EINVAL;
	}
	if ((ret = hl_txn_need(e->env.txn)) < 0 || (ret = eng_load_in(e)) < 0 ||
	    (ret = cache_load(e)) < 0)
		return ret;
	if (hl_chain_window(seq, e->contig, &w) != HL_CHAIN_OK) {
		eng_refuse_later(e, seq, hash, w.text);
		return 0;
	}
	ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, seq, &have,
				e->itembuf, HL_ITEM_MAX);
	if (ret == 0) {
		e->need_ack = true; /* that position is settled already */
		return 0;
	}
	if (ret != HL_ENOTFOUND)
		return ret;
	bool signed_by_peer = crypto_sign_verify_detached(
		r->item + r->item_len - HL_SIG_LEN, r->item, r->item_len - HL_SIG_LEN,
		e->peer_sign) == 0;
	if (!signed_by_peer)
		return eng_tombstone(e, seq, hash, HL_REFUSE_SIGNATURE, "signature does not verify");
	char text[HL_REFUSE_TEXT_MAX + 1];
	snprintf(text, sizeof(text), "malformed item: %.150s", it->bad ? it->bad : "does not decode");
	return eng_tombstone(e, seq, hash, HL_REFUSE_MALFORMED, text);
}

/* Is the contiguous head (which only grows in a transaction) too far
 * behind SEQ?  Read again only when the known one says so. */
static bool too_far(hl_engine *e, uint64_t seq, struct hl_chain_why *w)
{
	if (hl_chain_window(seq, e->contig, w) == HL_CHAIN_OK)
		return false;
	struct hl_chain_head h;
	if (hl_store_in_contiguous(e->env.txn->store, e->peer_id, &h) == 0)
		e->contig = h.seq;
	return hl_chain_window(seq, e->contig, w) != HL_CHAIN_OK;
}

/* The signed item IT, new at its position: the chain rules, then its kind. */
static int on_new_item(hl_engine *e, const struct hl_item *it, const struct hl_rec_item *r,
		       const uint8_t hash[static 32])
{
	struct hl_chain_ref before, after;
	struct hl_chain_why w;
	hl_chain_why_init(&w, NULL, "our chain's");
	int v = eng_chain_rules(e, it, hash, &before, &after, &w);
	if (v < 0)
		return v;
	if (v == HL_CHAIN_REFUSE) {
		char text[HL_REFUSE_TEXT_MAX + 1];
		snprintf(text, sizeof(text), "%s %.180s", hl_item_kind_name((int)it->kind), w.text);
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_MALFORMED, text);
	}
	if (v == HL_CHAIN_FORK) {
		/* Its position stays open (no tombstone, no ACK) for the item
		 * that does fit. */
		bool early = it->seq > 1 && before.held && before.item &&
			     sodium_memcmp(it->prev, before.hash, HL_HASH_LEN) != 0;
		refuse_log(e, "item %llu %s", (unsigned long long)it->seq, w.text);
		eng_queue_refusal(e, it->seq, hash, HL_REFUSE_MALFORMED, w.text);
		return keep_evidence(e, it, r->item, r->item_len, hash,
				     early ? it->seq - 1 : it->seq + 1);
	}
	int ret;
	if (it->kind != HL_ITEM_MESSAGE) {
		/* its row and bytes, and what it makes us store and author (a
		 * check's record and our answer, an agreement's record) */
		bool over;
		if ((ret = eng_over_limits(e, 3 * HL_STORE_ROW_COST + r->item_len + HL_ITEM_MAX / 32,
				       &over)) < 0)
			return ret;
		if (over) {
			eng_refuse_later(e, it->seq, hash, "over quota or disk reserve");
			return 0;
		}
	}
	e->stats.items_in++;
	e->refusing[0] = '\0';
	switch (it->kind) {
	case HL_ITEM_MESSAGE:
		ret = eng_on_message_item(e, it, r->item, r->item_len, hash, r->rest, r->rest_len);
		break;
	case HL_ITEM_RECEIPT:
		ret = eng_on_receipt_item(e, it, r->item, r->item_len, hash);
		break;
	default:
		ret = eng_on_signed_item(e, it, r->item, r->item_len, hash);
		break;
	}
	return ret;
}

/* Checks the decoded item IT against the link: seen before, signed, ours.
 * Handles it; HL_EAGAIN-free: 0 or a negative code. */
static int on_decoded_item(hl_engine *e, struct hl_item *it, const struct hl_rec_item *r,
			   const uint8_t hash[static 32])
{
	struct hl_item_row have;
	struct hl_chain_why w;
	hl_chain_why_init(&w, NULL, "our chain's");
	int ret;
	if ((ret = hl_txn_need(e->env.txn)) < 0 || (ret = eng_load_in(e)) < 0 ||
	    (ret = cache_load(e)) < 0)
		return ret;
	if (too_far(e, it->seq, &w)) {
		eng_refuse_later(e, it->seq, hash, w.text);
		return 0;
	}
	/* Seen before? */
	ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, it->seq, &have,
				e->itembuf, HL_ITEM_MAX);
	if (ret == 0) {
		if (sodium_memcmp(have.hash, hash, HL_HASH_LEN) != 0)
			ret = on_equivocation(e, &have, r->item, r->item_len, hash);
		e->need_ack = true; /* a resend: acknowledge again */
		return ret;
	}
	if (ret != HL_ENOTFOUND)
		return ret;

	/* A held ITEM's signature was checked in hl_engine_drain() (IT is
	 * decoded from the same bytes above). */
	if (e->cur_verdict >= 0)
		ret = e->cur_verdict ? 0 : HL_EAUTH;
	else
		ret = hl_item_open(r->item, r->item_len, NULL, NULL, it);
	if (ret == HL_EAUTH)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_SIGNATURE, "signature does not verify");
	if (ret < 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_MALFORMED, "malformed item");
	if (sodium_memcmp(it->author, e->peer_sign, 32) != 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_SIGNATURE, "signed by another station");
	if (sodium_memcmp(it->counterpart, e->env.me->sign_pk, 32) != 0)
		return eng_tombstone(e, it->seq, hash, HL_REFUSE_RECIPIENT, "addressed to another station");
	return on_new_item(e, it, r, hash);
}

/* What eng_on_item added to the engine's memory, undone when the store's
 * savepoint is rolled back: nothing of a failed item may be half kept. */
struct item_mark {
	size_t nrcpt, nev, nref;
	bool need_ack;
};

static void item_undo(hl_engine *e, const struct item_mark *m, uint64_t seq)
{
	e->nrcpt = m->nrcpt;
	e->nev = m->nev;
	e->nref = m->nref;
	e->need_ack = m->need_ack;
	struct in_msg *im = eng_in_find(e, seq);
	if (im) {
		eng_in_unlink(e, im);
		eng_in_msg_free(im);
	}
	eng_cache_forget(e);
	e->tombs_known = false;
}

static int eng_on_item(hl_engine *e, const uint8_t *body, size_t len, uint64_t now)
{
	struct hl_rec_item r;
	uint8_t hash[HL_HASH_LEN];
	int ret;
	(void)now;

	if ((ret = hl_rec_item_decode(body, len, &r)) < 0) {
		eng_set_error(e, "malformed ITEM record");
		return ret;
	}
	if (r.item_len > HL_ITEM_MAX) {
		eng_set_error(e, "ITEM of %zu bytes", r.item_len);
		return HL_ETOOBIG;
	}
	hl_item_hash(r.item, r.item_len, hash);
	struct hl_item *it = xcalloc(1, sizeof(*it));
	bool decoded = hl_item_decode(r.item, r.item_len, it) == 0;
	/* One savepoint around everything this item writes: an item is
	 * stored whole or not at all, even when a write fails half-way (the
	 * burst's other items still commit). */
	struct item_mark mark = { e->nrcpt, e->nev, e->nref, e->need_ack };
	bool sp = false;
	if ((ret = hl_txn_need(e->env.txn)) == 0 && (ret = hl_store_savepoint(e->env.txn->store)) == 0)
		sp = true;
	if (ret == 0)
		ret = decoded ? on_decoded_item(e, it, &r, hash) : on_bad_item(e, &r, it, hash);
	if (ret < 0 && !e->error[0])
		eng_set_error(e, "store: %s", hl_store_errmsg(e->env.txn->store));
	if (ret == 0 && e->in_loaded)
		ret = eng_retry_waiting(e);
	if (sp && ret == 0 && (ret = hl_store_release(e->env.txn->store)) < 0)
		eng_set_error(e, "store: %s", hl_store_errmsg(e->env.txn->store));
	if (sp && ret < 0) {
		hl_store_rollback_to(e->env.txn->store);
		item_undo(e, &mark, it->seq);
	}
	if (decoded && it->kind == HL_ITEM_MESSAGE)
		hl_stage_in_resolve(e->stage, it->u.msg.id, it->seq);
	free(it);
	return ret;
}

static int complete_part(hl_engine *e, struct in_msg *m, unsigned idx)
{
	hl_store *st = e->env.txn->store;
	struct in_part *p = &m->parts[idx];
	uint8_t h[HL_HASH_LEN];
	int ret;

	if (p->pw) {
		ret = hl_partwriter_finish(p->pw);
		p->pw = NULL;
		if (ret < 0) {
			eng_set_error(e, "cannot write %s.part: %s", p->path, hl_strerror(ret));
			return ret;
		}
	}
	hl_parthash_final(&p->hs, h);
	if (idx == 0) {
		if (sodium_memcmp(h, m->body_hash, HL_HASH_LEN) != 0)
			return eng_refuse_stored(e, m, HL_REFUSE_CONTENT, "body does not match its hash");
		if ((ret = hl_store_set_body(st, m->id, m->body, m->body_size)) < 0)
			return ret;
		free(m->body);
		m->body = NULL;
	} else {
		if (sodium_memcmp(h, p->hash, HL_HASH_LEN) != 0)
			return eng_refuse_stored(e, m, HL_REFUSE_ATTACHMENT,
					     "attachment does not match its hash");
		/* fsync, rename into place, fsync the directory: then, and
		 * only then, the store may say it is whole. */
		char *tmp = eng_part_tmp_path(e, p), *fin = hl_path_join(e->env.dir, p->path);
		ret = 0;
		ret = hl_dio_finish(&p->w);
		if (ret == 0 && rename(tmp, fin) < 0)
			ret = -errno;
		hl_dio_close(&p->w);
		if (ret == 0)
			ret = hl_fsync_parent(fin);
		free(tmp);
		free(fin);
		if (ret < 0) {
			eng_set_error(e, "cannot store attachment %s: %s", p->path, hl_strerror(ret));
			return ret;
		}
		if ((ret = hl_store_set_part_done(st, m->id, idx - 1, p->size)) < 0)
			return ret;
		p->durable = p->done;
	}
	p->complete = true;
	m->ready = eng_in_all_complete(m);
	if (m->ready)
		return eng_try_visible(e, m, 0);
	return 0;
}

/* What a part's worker made durable goes into the store (here, and at
 * each precommit). */
static int eng_note_synced(hl_engine *e, struct in_msg *m, unsigned idx)
{
	struct in_part *p = &m->parts[idx];
	uint64_t synced = hl_partwriter_synced(p->pw);
	if (synced <= p->durable)
		return 0;
	int ret = hl_store_set_part_done(e->env.txn->store, m->id, idx - 1, synced);
	if (ret == 0)
		p->durable = synced;
	return ret;
}

/* A part's worker took in data (on its thread): the daemon's loop calls
 * hl_engine_credit(). */
static void eng_worker_wake(void *arg)
{
	hl_engine *e = arg;
	e->env.wake(e->env.user);
}

static int eng_on_chunk(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_rec_chunk c;
	int ret;
	if ((ret = hl_rec_chunk_decode(body, len, &c)) < 0) {
		eng_set_error(e, "malformed CHUNK record");
		return ret;
	}
	if ((ret = hl_txn_need(e->env.txn)) < 0 || (ret = eng_load_in(e)) < 0)
		return ret;
	struct in_msg *m = eng_in_find(e, c.seq);
	if (!m)
		return 0; /* complete, refused or unknown: a late resend */
	struct in_part *p = &m->parts[c.part];
	if (!p->present || p->complete ||
	    (c.offset < p->done && p->done - c.offset >= c.data_len))
		return 0; /* a resend of what we hold */
	if (c.offset < p->done) {
		/* A resend that overlaps what we hold: keep its new tail.  A
		 * courier bundle cuts its chunks from offset 0, which need not
		 * line up with where a session left a part. */
		size_t skip = (size_t)(p->done - c.offset);
		c.data += skip;
		c.data_len -= skip;
		c.offset = p->done;
	}
	if (c.offset > p->done || c.data_len > p->size - p->done) {
		eng_set_error(e, "CHUNK of message %llu part %u at offset %llu; expected %llu",
			  (unsigned long long)c.seq, c.part, (unsigned long long)c.offset,
			  (unsigned long long)p->done);
		return HL_EINVAL;
	}
	e->stats.chunks_in++;
	uint64_t every = p->size / 64;
	every = every < SYNC_MIN ? SYNC_MIN : every > SYNC_MAX ? SYNC_MAX : every;
	if (c.part == 0) {
		memcpy(m->body + p->done, c.data, c.data_len);
	} else {
		if (p->w.fd < 0) {
			if ((ret = eng_make_part_dir(e, p->path)) < 0 || (ret = part_open_writer(e, p)) < 0) {
				hl_dio_close(&p->w);
				eng_set_error(e, "cannot open %s.part: %s", p->path, hl_strerror(ret));
				return ret;
			}
		}
		struct hl_partwriter_progress progress = {
			.taken = e->env.wake ? &e->done_pw : NULL,
			.wake = e->env.wake ? eng_worker_wake : NULL,
			.arg = e,
			.step = CREDIT_STEP,
		};
		if (!p->pw && p->size - p->done >= WORKER_MIN &&
		    hl_partwriter_start(&p->pw, &p->w, &p->hs, p->done, every, &progress) < 0)
			p->pw = NULL; /* no thread: the same work, here */
		/* On an error the session ends; the next one starts again
		 * from what the store says is durable (and cuts the rest). */
		ret = p->pw ? hl_partwriter_push(p->pw, c.data, c.data_len)
			    : hl_dio_write(&p->w, c.data, c.data_len);
		if (p->pw && e->env.wake)
			e->pushed_now = c.data_len; /* the worker counts it taken */
		if (ret < 0) {
			eng_set_error(e, "cannot write %s.part: %s", p->path, hl_strerror(ret));
			return ret;
		}
	}
	if (!p->pw)
		hl_parthash_update(&p->hs, c.data, c.data_len);
	p->done += c.data_len;
	if (p->done == p->size)
		return complete_part(e, m, c.part);
	if (p->pw)
		return eng_note_synced(e, m, c.part); /* the worker syncs */
	if (c.part > 0 && p->done - p->durable >= every) {
		if ((ret = hl_dio_sync(&p->w)) < 0) {
			eng_set_error(e, "cannot sync %s.part: %s", p->path, hl_strerror(ret));
			return ret;
		}
		if ((ret = hl_store_set_part_done(e->env.txn->store, m->id, c.part - 1, p->done)) < 0)
			return ret;
		p->durable = p->done;
	}
	return 0;
}

/* ---- restores (RESTORES above) ---- */

/* The peer's first ACK leaves out items of ours the store had as
 * acknowledged: it lost them (restored from a backup).  They are sent
 * again; a peer that lies about it only makes us send our own items
 * twice, at most a window's worth per session. */
static int eng_peer_lost(hl_engine *e, const struct hl_rec_ack *a)
{
	uint64_t n = 0;
	int ret = hl_store_unack_lost(e->env.txn->store, e->peer_id, a->base,
				      (const uint64_t (*)[2])a->ranges, a->n, OUT_WINDOW, &n);
	if (ret < 0 || n == 0)
		return ret;
	hl_warn("peer %s no longer holds %llu item(s) of ours it had acknowledged (restored "
		"from a backup?): sending them again", e->peer_name, (unsigned long long)n);
	if (a->base < e->acked_base)
		e->acked_base = a->base;
	if (e->synced) {
		/* The window was loaded already: load it again, with them. */
		eng_queues_clear(e);
		ret = eng_load_initial(e);
	}
	return ret;
}

/* RECLAIM and RETURN go out first in pump(): a busy link (chunks of a
 * document) only delays them. */
static int send_reclaim(hl_engine *e, uint64_t seq)
{
	e->reclaim_pending = seq;
	return 0;
}

static void eng_resync_send(hl_engine *e, uint64_t now)
{
	struct hl_item_row row;
	if (e->reclaim_pending) {
		uint8_t body[HL_RECLAIM_LEN];
		hl_rec_credit_encode(e->reclaim_pending, body); /* the shape: one 8-byte integer */
		if (eng_send_rec(e, HL_REC_RECLAIM, body, sizeof(body), now) == 0)
			e->reclaim_pending = 0;
	}
	if (!e->return_pending)
		return;
	int ret = hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, e->return_pending,
				    &row, e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND || (ret == 0 && !row.encoded)) {
		hl_warn("peer %s asks for its item %llu back, which this station %s", e->peer_name,
			(unsigned long long)e->return_pending,
			ret == 0 ? "refused (no bytes kept)" : "does not hold");
		e->return_pending = 0;
		return;
	}
	if (ret < 0)
		return;
	e->rec[0] = (uint8_t)(row.encoded_len >> 8);
	e->rec[1] = (uint8_t)row.encoded_len;
	memcpy(e->rec + 2, row.encoded, row.encoded_len);
	if (eng_send_rec(e, HL_REC_RETURN, e->rec, 2 + row.encoded_len, now) == 0)
		e->return_pending = 0;
}

/* Resynchronised: the flag goes (in the burst's transaction), and the
 * session ends after the commit so that the next starts clean. */
static int resync_done(hl_engine *e, const char *how)
{
	int ret = hl_store_resync_done(e->env.txn->store, e->peer_id);
	if (ret < 0)
		return ret;
	hl_info("peer %s: resynchronised after a restore: %s", e->peer_name, how);
	e->resync = false;
	e->restart = e->link != NULL;
	return 0;
}

/* Restored: how far does the peer hold our chain?  Not beyond our head:
 * nothing was lost.  Beyond: reclaim the items after our head. */
static int eng_resync_check(hl_engine *e, const struct hl_rec_ack *a)
{
	struct hl_chain_head head;
	char how[160];
	if (!e->resync)
		return 0;
	uint64_t hold = a->base;
	for (unsigned i = 0; i < a->n; i++)
		hold = a->ranges[i][1] > hold ? a->ranges[i][1] : hold;
	int ret = hl_store_chain_head(e->env.txn->store, e->peer_id, HL_DIR_OUT, &head);
	if (ret < 0)
		return ret;
	if (hold <= head.seq) {
		snprintf(how, sizeof(how), "it holds our chain up to %llu, we hold %llu",
			 (unsigned long long)hold, (unsigned long long)head.seq);
		return resync_done(e, how);
	}
	if (!e->link) {
		/* A bundle's ACK: the items come back over the link only. */
		hl_warn("peer %s holds our chain up to %llu, this store only up to %llu (restored "
			"from an older backup): the daemon gets them back once the link is up",
			e->peer_name, (unsigned long long)hold, (unsigned long long)head.seq);
		return 0;
	}
	e->resync_hold = hold;
	e->resync_from = head.seq + 1;
	hl_warn("peer %s holds our chain up to %llu, this store only up to %llu (restored from "
		"an older backup): getting items %llu-%llu back from it", e->peer_name,
		(unsigned long long)hold, (unsigned long long)head.seq,
		(unsigned long long)head.seq + 1, (unsigned long long)hold);
	return send_reclaim(e, head.seq + 1);
}

/* The peer asks for the item of its own chain at SEQ: ours to give back
 * if we hold it (a tombstone has no bytes to give).  At most a window's
 * worth per session: a request costs the peer a round trip, and us a
 * read. */
static int eng_on_reclaim(hl_engine *e, const uint8_t *body, size_t len)
{
	uint64_t seq;
	int ret = hl_rec_reclaim_decode(body, len, &seq);
	if (ret < 0) {
		eng_set_error(e, "malformed RECLAIM record");
		return ret;
	}
	/* One answer pending at a time: an honest peer asks for the next
	 * only once it has the last. */
	if (e->link && ++e->reclaims <= OUT_WINDOW)
		e->return_pending = seq;
	return 0;
}

/* A message of ours that came back as its signed item only: its row
 * says what the item says (id, precedence, class_seq, sizes, attachment
 * names and hashes), so the next message takes the next class_seq and the
 * peer's receipt finds it; its contents stayed at the peer, so the row is
 * purged (docs/retention.md). */
static int recovered_message(hl_engine *e, const struct hl_item *it)
{
	const struct hl_item_message *m = &it->u.msg;
	char idhex[33];
	struct hl_msg_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_OUT, .seq = it->seq,
		.precedence = m->precedence, .class_seq = m->class_seq, .subject = "",
		.body_size = m->body_size, .sent_at = (int64_t)it->time_ms,
		.state = HL_MSG_SENT, .n_att = m->n_attachments,
	};
	memcpy(row.id, m->id, HL_MSG_ID_LEN);
	hl_msg_id_hex(m->id, idhex);
	row.att = xcalloc(m->n_attachments ? m->n_attachments : 1, sizeof(*row.att));
	for (unsigned i = 0; i < m->n_attachments; i++) {
		struct hl_att_row *a = &row.att[i];
		memcpy(a->name, m->att[i].name, m->att[i].name_len);
		a->size = m->att[i].size;
		memcpy(a->hash, m->att[i].hash, HL_HASH_LEN);
		snprintf(a->path, sizeof(a->path), "out/%s/%u", idhex, i);
	}
	int ret = hl_store_insert_message(e->env.txn->store, &row);
	if (ret == 0)
		ret = hl_store_set_purged(e->env.txn->store, m->id, hl_now_ms());
	free(row.att);
	return ret;
}

/* A receipt, check or answer of ours back from the peer states how much of
 * its chain we held: our next ones may not state less (store.h,
 * hl_store_signing_head). */
static int recovered_hold(hl_engine *e, const struct hl_item *it)
{
	const uint8_t *hash = NULL;
	uint64_t seq = 0;
	if (it->kind == HL_ITEM_RECEIPT) {
		seq = it->u.rcpt.peer_seq;
		hash = it->u.rcpt.peer_hash;
	} else if (it->kind == HL_ITEM_CHECK) {
		seq = it->u.chk.peer_seq;
		hash = it->u.chk.peer_hash;
	} else if (it->kind == HL_ITEM_ANSWER) {
		seq = it->u.ans.peer_seq;
		hash = it->u.ans.peer_hash;
	}
	return hash ? hl_store_claim_hold(e->env.txn->store, e->peer_id, seq, hash) : 0;
}

/* An item of our own chain back from the peer: it must be ours (our
 * signature, for this peer), the next position, linked to our head; it
 * is stored as acknowledged (the peer holds it: the store's trigger lets
 * exactly that in during a resync). */
static int eng_on_return(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_rec_item r;
	struct hl_chain_head head;
	hl_store *st = e->env.txn->store;
	int ret = hl_rec_return_decode(body, len, &r);
	if (ret < 0 || r.item_len > HL_ITEM_MAX) {
		eng_set_error(e, "malformed RETURN record");
		return ret < 0 ? ret : HL_ETOOBIG;
	}
	if (!e->resync || !e->resync_hold)
		return 0; /* not asked for */
	struct hl_item *it = xcalloc(1, sizeof(*it));
	if ((ret = hl_item_open(r.item, r.item_len, e->env.me->sign_pk, e->peer_sign, it)) < 0 ||
	    (ret = hl_store_chain_head(st, e->peer_id, HL_DIR_OUT, &head)) < 0)
		goto bad;
	if (it->seq != head.seq + 1 || sodium_memcmp(it->prev, head.hash, HL_HASH_LEN) != 0) {
		ret = HL_EAUTH;
		goto bad;
	}
	struct hl_item_row row = {
		.peer_id = e->peer_id, .dir = HL_DIR_OUT, .seq = it->seq, .kind = it->kind,
		.encoded = r.item, .encoded_len = r.item_len, .acked = true,
		.precedence = it->kind == HL_ITEM_MESSAGE ? it->u.msg.precedence : HL_PREC_FLASH,
		.stored_at = hl_now_ms(),
	};
	hl_item_hash(r.item, r.item_len, row.hash);
	if ((ret = hl_txn_need(e->env.txn)) == 0 && (ret = hl_store_insert_item(st, &row)) == 0)
		ret = it->kind == HL_ITEM_MESSAGE ? recovered_message(e, it) : recovered_hold(e, it);
	/* What it acknowledged is acknowledged for good: the copy that gets
	 * those messages again must not receipt them a second time. */
	for (unsigned i = 0; ret == 0 && it->kind == HL_ITEM_RECEIPT && i < it->u.rcpt.count; i++) {
		ret = hl_store_recovered_ack_add(st, e->peer_id, it->u.rcpt.entries[i].seq);
		e->recovered_acks = true;
	}
	free(it);
	if (ret < 0)
		return ret;
	if (row.seq < e->resync_hold)
		return send_reclaim(e, row.seq + 1);
	char how[160];
	snprintf(how, sizeof(how), "got our items %llu-%llu back from it",
		 (unsigned long long)e->resync_from, (unsigned long long)row.seq);
	return resync_done(e, how);
bad:
	free(it);
	/* Not what we asked for: say so, and stay held (the operator sees
	 * it in the log and in status). */
	eng_set_error(e, "the item of ours that %s sent back does not verify (%s): this station "
		  "stays unable to sign for it", e->peer_name, hl_strerror(ret));
	hl_warn("peer %s: %s", e->peer_name, e->error);
	return 0;
}

bool hl_engine_restart(hl_engine *e)
{
	bool r = e->restart;
	e->restart = false;
	return r;
}

static int eng_on_ack(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_rec_ack *a = xmalloc(sizeof(*a));
	hl_store *st = e->env.txn->store;
	int ret = hl_rec_ack_decode(body, len, a);
	if (ret < 0) {
		eng_set_error(e, "malformed ACK record");
		goto out;
	}
	if ((ret = hl_txn_need(e->env.txn)) < 0)
		goto out;
	if (e->first_ack) {
		e->first_ack = false;
		if ((e->link && (ret = eng_peer_lost(e, a)) < 0) || (ret = eng_resync_check(e, a)) < 0)
			goto out;
	}
	if (a->base > e->acked_base) {
		if ((ret = hl_store_ack_range(st, e->peer_id, e->acked_base + 1, a->base)) < 0)
			goto out;
		e->acked_base = a->base;
	}
	for (unsigned p = 0; p < HL_PREC_COUNT; p++) {
		for (struct out_entry *x = e->q[p].head; x; x = x->next) {
			if (x->acked)
				continue;
			bool in = x->seq <= a->base;
			for (unsigned i = 0; !in && i < a->n; i++)
				in = x->seq >= a->ranges[i][0] && x->seq <= a->ranges[i][1];
			if (!in)
				continue;
			if (x->seq > a->base &&
			    (ret = hl_store_ack_range(st, e->peer_id, x->seq, x->seq)) < 0)
				goto out;
			x->acked = true;
		}
		queue_prune(e, &e->q[p]);
	}
	ret = 0;
out:
	free(a);
	return ret;
}

static int eng_on_resume(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_rec_resume *r = xmalloc(sizeof(*r));
	int ret = hl_rec_resume_decode(body, len, r);
	if (ret < 0) {
		eng_set_error(e, "malformed RESUME record");
		free(r);
		return ret;
	}
	if (e->synced) {
		free(r);
		return 0; /* only the session's first one matters */
	}
	e->resume.e = xrealloc(e->resume.e, (r->n ? r->n : 1) * sizeof(*e->resume.e));
	memcpy(e->resume.e, r->e, r->n * sizeof(*r->e));
	e->resume.n = r->n;
	free(r);
	eng_queues_clear(e);
	if ((ret = eng_load_initial(e)) < 0)
		return ret;
	e->synced = true;
	eng_check_invariants(e);
	return 0;
}

static int eng_on_refuse(hl_engine *e, const uint8_t *body, size_t len, uint64_t now)
{
	struct hl_rec_refuse r;
	hl_store *st = e->env.txn->store;
	struct hl_item_row ours;
	int ret = hl_rec_refuse_decode(body, len, &r);
	if (ret < 0) {
		eng_set_error(e, "malformed REFUSE record");
		return ret;
	}
	ret = hl_store_get_item(st, e->peer_id, HL_DIR_OUT, r.seq, &ours, e->itembuf, HL_ITEM_MAX);
	if (ret == HL_ENOTFOUND || (ret == 0 && sodium_memcmp(ours.hash, r.hash, 32) != 0))
		return 0; /* not about anything we sent */
	if (ret < 0)
		return ret;
	char text[HL_REFUSE_TEXT_MAX + 1], reason[300];
	hl_sanitize((const char *)r.text, r.text_len, text, sizeof(text), 0);
	snprintf(reason, sizeof(reason), "%s: %s", hl_refuse_code_str(r.code), text);
	hl_warn("peer %s refused item %llu: %s", e->peer_name, (unsigned long long)r.seq, reason);
	for (unsigned p = 0; p < HL_PREC_COUNT; p++) {
		for (struct out_entry *x = e->q[p].head; x; x = x->next) {
			if (x->seq != r.seq)
				continue;
			if (r.code == HL_REFUSE_QUOTA) {
				/* Temporary: send the item again later.  Its
				 * precedence waits (order within it is kept);
				 * the others go on. */
				x->item_sent = false;
				x->retry_at = now + QUOTA_RETRY_MS;
				entry_reset_parts(x);
			} else {
				/* final: off the queue */
				x->item_sent = true;
				x->cur = x->nparts;
				x->acked = true;
			}
		}
		eng_queue_fix_cursor(&e->q[p]);
		queue_prune(e, &e->q[p]);
	}
	if (r.code == HL_REFUSE_QUOTA) {
		eng_set_error(e, "peer refused item %llu for now (retrying): %s",
			  (unsigned long long)r.seq, reason);
		return 0;
	}
	if ((ret = hl_txn_need(e->env.txn)) < 0)
		return ret;
	if ((ret = hl_store_ack_range(st, e->peer_id, r.seq, r.seq)) < 0)
		return ret;
	struct hl_msg_row row = { 0 };
	ret = hl_store_get_message_by_seq(st, e->peer_id, HL_DIR_OUT, r.seq, &row);
	if (ret == 0) {
		ret = hl_store_set_state(st, row.id, HL_MSG_REFUSED, reason, hl_now_ms());
		eng_add_event(e, HL_EV_REFUSED, row.id);
	}
	hl_msg_row_clear(&row);
	return ret == HL_ENOTFOUND ? 0 : ret;
}

/* ---- staging (deliver/stage.h, docs/messages.md "Staging") ---- */

/* How long the author waits for STAGED before sending a staged part's
 * CHUNKs from where it stands (the peer may have forgotten the staging). */
#define STAGED_WAIT_MS 5000

static void eng_stage_item_sent(hl_engine *e, struct out_entry *x, const uint8_t id[static 16],
			    uint64_t now)
{
	uint64_t mask = hl_stage_out_take(e->stage, id);
	if (!mask)
		return;
	x->stage_wait = mask;
	x->stage_wait_until = now + STAGED_WAIT_MS;
}

static bool eng_stage_waiting(const struct out_entry *x, uint64_t now)
{
	return x->item_sent && x->stage_wait && now < x->stage_wait_until;
}

/* Sends one STAGE record of a part whose precedence is above ABOVE: 1 when
 * one went, 0 when none had bytes (or CREDIT holds them back: the peer's
 * next CREDIT pumps again), negative when the link took nothing.  The only
 * place STAGE records are sent. */
static int eng_stage_pump(hl_engine *e, int above, uint64_t now)
{
	size_t len;
	unsigned token;
	/* CREDIT: STAGE data counts as CHUNK data does (at most a record's
	 * worth is assumed, so the check comes before the read) */
	size_t max = eng_data_max(e, HL_RECORD_BODY_MAX - HL_STAGE_HDR_LEN);
	if (eng_flow_holds(e, max))
		return 0;
	int ret = hl_stage_out_next(e->stage, above, max, e->rec, &len, &token, now);
	if (ret < 0)
		hl_warn("peer %s: staging stopped: %s", e->peer_name, hl_strerror(ret));
	if (ret <= 0)
		return 0;
	if ((ret = eng_send_rec(e, HL_REC_STAGE, e->rec, len, now)) < 0)
		return ret;
	hl_stage_out_sent(e->stage, token, len - HL_STAGE_HDR_LEN);
	eng_flow_sent(e, len - HL_STAGE_HDR_LEN, now);
	return 1;
}

/* The STAGED records the last ITEMs called for: after the commit that
 * stored those ITEMs (never inside the transaction, like ACKs). */
static void eng_stage_send_staged(hl_engine *e, uint64_t now)
{
	const struct hl_rec_staged *r;
	uint8_t buf[HL_STAGED_LEN];
	if (e->env.txn->open)
		return;
	while ((r = hl_stage_staged_peek(e->stage)) != NULL) {
		hl_rec_staged_encode(r, buf);
		if (eng_send_rec(e, HL_REC_STAGED, buf, sizeof(buf), now) < 0)
			return;
		hl_stage_staged_pop(e->stage);
	}
}

/* A message just stored (M, in memory): its staged parts become its
 * parts' files, their hash state going on where the staging left it. */
static int eng_stage_adopt(hl_engine *e, struct in_msg *m)
{
	for (unsigned i = 1; i < NPARTS_MAX; i++) {
		struct in_part *p = &m->parts[i];
		uint64_t done;
		char *staged = NULL;
		if (!p->present || p->size == 0 ||
		    hl_stage_in_take(e->stage, m->id, i, p->size, &p->hs, &done, &staged) != 1)
			continue;
		char *from = hl_path_join(e->env.dir, staged), *to = eng_part_tmp_path(e, p);
		int ret = eng_make_part_dir(e, p->path);
		if (ret == 0 && rename(from, to) < 0)
			ret = -errno;
		if (ret == 0) {
			p->done = done;
			p->hashed = true;
			hl_info("peer %s: message %llu part %u: %llu staged bytes adopted", e->peer_name,
				(unsigned long long)m->seq, i, (unsigned long long)done);
		} else {
			/* received again from 0: the hash state starts over */
			unlink(from);
			hl_parthash_doc(&p->hs);
			hl_warn("peer %s: cannot adopt %s: %s", e->peer_name, staged,
				hl_strerror(ret));
		}
		free(from);
		free(to);
		free(staged);
	}
	return 0;
}

static int eng_on_stage(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_rec_stage r;
	int ret = hl_rec_stage_decode(body, len, &r);
	if (ret < 0) {
		eng_set_error(e, "malformed STAGE record");
		return ret;
	}
	if (!e->link)
		return 0; /* a bundle: nothing is staged from one */
	uint64_t max_att = e->env.max_attachment ? e->env.max_attachment
						 : HL_DEFAULT_MAX_ATTACHMENT;
	uint64_t staged = hl_stage_in_bytes(e->stage), room = UINT64_MAX;
	if (e->env.quota_bytes) {
		/* asked of the store at most every FREE_CACHE_MS, not per record */
		int64_t t = hl_now_ms();
		if (!e->stage_usage_at || t - e->stage_usage_at >= FREE_CACHE_MS || t < e->stage_usage_at) {
			if ((ret = hl_store_peer_usage(e->env.txn->store, e->peer_id,
						       &e->stage_usage)) < 0)
				return ret;
			e->stage_usage_at = t;
		}
		uint64_t usage = e->stage_usage;
		room = e->env.quota_bytes > usage + staged ? e->env.quota_bytes - usage - staged : 0;
	}
	uint64_t reserve = eng_reserve_bytes(e);
	if (reserve) {
		uint64_t fb = eng_free_bytes(e);
		uint64_t r2 = fb > reserve ? fb - reserve : 0;
		room = r2 < room ? r2 : room;
	}
	if (room == 0)
		snprintf(e->refusing, sizeof(e->refusing),
			 "staged data dropped: over the peer's quota or the disk reserve");
	size_t pushed = 0;
	ret = hl_stage_in_data(e->stage, &r, room, max_att, &pushed);
	if (e->env.wake)
		e->pushed_now = pushed; /* the worker counts it taken */
	return ret;
}

static int eng_on_staged(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_rec_staged r;
	int ret = hl_rec_staged_decode(body, len, &r);
	if (ret < 0) {
		eng_set_error(e, "malformed STAGED record");
		return ret;
	}
	for (unsigned q = 0; q < HL_PREC_COUNT; q++) {
		for (struct out_entry *x = e->q[q].head; x; x = x->next) {
			if (x->seq != r.seq || !x->parts_known || r.part >= x->nparts)
				continue;
			struct out_part *p = &x->parts[r.part];
			/* The peer holds the first r.offset bytes: CHUNKs from
			 * there (never backwards: what went since is held). */
			if (r.offset > p->offset && r.offset <= p->size)
				p->offset = r.offset;
			x->stage_wait &= ~(UINT64_C(1) << (r.part - 1));
			x->cur = 0;
			while (x->cur < x->nparts && x->parts[x->cur].offset >= x->parts[x->cur].size)
				x->cur++;
			if (x->cur >= x->nparts) {
				hl_dio_rclose(&p->r);
				free(x->body);
				x->body = NULL;
			}
			eng_queue_fix_cursor(&e->q[q]);
			return 0;
		}
	}
	return 0; /* about nothing we hold: a late answer */
}

static int eng_on_credit(hl_engine *e, const uint8_t *body, size_t len, uint64_t now)
{
	uint64_t taken;
	if (hl_rec_credit_decode(body, len, &taken) < 0) {
		eng_set_error(e, "malformed CREDIT record (%zu bytes)", len);
		return HL_EINVAL;
	}
	if (!e->credit_on)
		return 0; /* not agreed in the HELLOs: nothing waits for it */
	if (taken < e->chunk_credit || taken > e->chunk_sent) {
		eng_set_error(e, "CREDIT for %llu bytes of CHUNK data; %llu sent, %llu credited before",
			  (unsigned long long)taken, (unsigned long long)e->chunk_sent,
			  (unsigned long long)e->chunk_credit);
		return HL_EINVAL;
	}
	e->chunk_credit = taken;
	if (e->flow)
		hl_flow_credited(e->flow, taken, flow_us(e, now));
	/* Inside a transaction, the postcommit pumps; otherwise now (a CREDIT
	 * alone needs no commit: the daemon does none for it). */
	if (!e->env.txn->open)
		hl_engine_pump(e, now);
	return 0;
}

static int dispatch(hl_engine *e, uint8_t type, const uint8_t *body, size_t len, uint64_t now)
{
	int ret;
	/* Restored and not yet resynchronised: nothing of the peer's is
	 * taken (it would call for receipts we may not sign yet); it comes
	 * again in the session after the resync. */
	if (e->resync && (type == HL_REC_ITEM || type == HL_REC_CHUNK ||
			  type == HL_REC_STAGE || type == HL_REC_STAGED))
		return 0;
	e->now = now;
	switch (type) {
	case HL_REC_ITEM: ret = eng_on_item(e, body, len, now); break;
	case HL_REC_CHUNK:
		e->pushed_now = 0;
		ret = eng_on_chunk(e, body, len);
		if (ret == 0 && len > HL_CHUNK_HDR_LEN) {
			e->taken += len - HL_CHUNK_HDR_LEN;
			e->pushed_pw += e->pushed_now;
			eng_credit_maybe(e, now, false);
		}
		break;
	case HL_REC_CREDIT: ret = eng_on_credit(e, body, len, now); break;
	case HL_REC_ACK: ret = eng_on_ack(e, body, len); break;
	case HL_REC_RESUME: ret = eng_on_resume(e, body, len); break;
	case HL_REC_REFUSE: ret = eng_on_refuse(e, body, len, now); break;
	case HL_REC_STAGE:
		/* STAGE data counts for CREDIT as CHUNK data does */
		e->pushed_now = 0;
		ret = eng_on_stage(e, body, len);
		if (ret == 0 && len > HL_STAGE_HDR_LEN) {
			e->taken += len - HL_STAGE_HDR_LEN;
			e->pushed_pw += e->pushed_now;
			eng_credit_maybe(e, now, false);
		}
		break;
	case HL_REC_STAGED: ret = eng_on_staged(e, body, len); break;
	case HL_REC_RECLAIM: ret = eng_on_reclaim(e, body, len); break;
	case HL_REC_RETURN: ret = eng_on_return(e, body, len); break;
	default:
		return 0; /* other application records are not ours */
	}
	if (ret < 0 && !e->error[0])
		eng_set_error(e, "%s", hl_strerror(ret));
	eng_check_invariants(e);
	return ret;
}

/* ---- held records: signatures checked on two threads ---- */

/* The verdict on one held ITEM: 1 when its signature verifies under the
 * author it names, 0 when not, -1 when it does not decode (eng_on_item then
 * handles it as it always does). */
static int8_t verdict_of(const uint8_t *body, size_t len, struct hl_item *it)
{
	struct hl_rec_item r;
	if (hl_rec_item_decode(body, len, &r) < 0 || r.item_len > HL_ITEM_MAX ||
	    hl_item_decode(r.item, r.item_len, it) < 0)
		return -1;
	return crypto_sign_verify_detached(it->sig, r.item, r.item_len - HL_SIG_LEN,
					   it->author) == 0;
}

struct verify_job {
	struct held *held;
	const uint8_t *buf;
	size_t from, to;
};

static void verify_range(const struct verify_job *j)
{
	struct hl_item *it = xmalloc(sizeof(*it));
	for (size_t i = j->from; i < j->to; i++) {
		struct held *h = &j->held[i];
		if (h->type == HL_REC_ITEM && !h->checked) {
			h->verdict = verdict_of(j->buf + h->off, h->len, it);
			h->checked = true;
		}
	}
	free(it);
}

/* One helper thread for the whole daemon (engines run on its one thread,
 * one drain at a time), started at the first large burst. */
static struct {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, stop, busy;
	struct verify_job job;
} verifier = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *verifier_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&verifier.mu);
	for (;;) {
		while (!verifier.busy && !verifier.stop)
			pthread_cond_wait(&verifier.cv, &verifier.mu);
		if (!verifier.busy)
			break;
		struct verify_job j = verifier.job;
		pthread_mutex_unlock(&verifier.mu);
		verify_range(&j);
		pthread_mutex_lock(&verifier.mu);
		verifier.busy = false;
		pthread_cond_broadcast(&verifier.cv);
	}
	pthread_mutex_unlock(&verifier.mu);
	return NULL;
}

static bool verifier_start(void)
{
	if (verifier.started)
		return true;
	verifier.stop = false;
	verifier.started = hl_thread_start(&verifier.th, verifier_main, NULL) == 0;
	return verifier.started;
}

static void eng_verifier_stop(void)
{
	if (!verifier.started)
		return;
	pthread_mutex_lock(&verifier.mu);
	verifier.stop = true;
	pthread_cond_broadcast(&verifier.cv);
	pthread_mutex_unlock(&verifier.mu);
	pthread_join(verifier.th, NULL);
	verifier.started = false;
}

/* Verifies every held ITEM: the second half on the helper thread while
 * this one does the first. */
static void eng_verify_held(hl_engine *e)
{
	size_t items = 0;
	for (size_t i = 0; i < e->nheld; i++)
		items += e->held[i].type == HL_REC_ITEM && !e->held[i].checked;
	struct verify_job all = { .held = e->held, .buf = e->hbuf, .from = 0, .to = e->nheld };
	if (items < PAR_VERIFY_MIN || !verifier_start()) {
		verify_range(&all);
		return;
	}
	/* split at the middle ITEM */
	size_t mid = 0;
	for (size_t seen = 0; mid < e->nheld && seen < items / 2; mid++)
		seen += e->held[mid].type == HL_REC_ITEM && !e->held[mid].checked;
	pthread_mutex_lock(&verifier.mu);
	verifier.job = (struct verify_job){ .held = e->held, .buf = e->hbuf, .from = mid,
					    .to = e->nheld };
	verifier.busy = true;
	pthread_cond_broadcast(&verifier.cv);
	pthread_mutex_unlock(&verifier.mu);
	all.to = mid;
	verify_range(&all);
	pthread_mutex_lock(&verifier.mu);
	while (verifier.busy)
		pthread_cond_wait(&verifier.cv, &verifier.mu);
	pthread_mutex_unlock(&verifier.mu);
}

static void held_drop(hl_engine *e)
{
	e->nheld = 0;
	e->hlen = 0;
	if (e->hcap > HOLD_MAX + HL_RECORD_BODY_MAX) {
		free(e->hbuf);
		e->hbuf = NULL;
		e->hcap = 0;
	}
}

int hl_engine_drain(hl_engine *e, uint64_t now)
{
	if (e->nheld == 0)
		return 0;
	eng_verify_held(e);
	int ret = 0;
	size_t i;
	for (i = 0; i < e->nheld && ret == 0; i++) {
		if (i > 0 && e->nev >= DRAIN_EVENTS_MAX)
			break;
		const struct held *h = &e->held[i];
		e->cur_verdict = h->verdict;
		ret = dispatch(e, h->type, e->hbuf + h->off, h->len, now);
	}
	e->cur_verdict = -1;
	if (ret == 0 && i < e->nheld) {
		/* the rest, for the next turn (their bytes stay where they are) */
		memmove(e->held, e->held + i, (e->nheld - i) * sizeof(*e->held));
		e->nheld -= i;
		return 0;
	}
	held_drop(e);
	return ret;
}

bool hl_engine_holding(const hl_engine *e)
{
	return e->nheld > 0;
}

int hl_engine_on_record(hl_engine *e, uint8_t type, const uint8_t *body, size_t len,
			uint64_t now)
{
	bool ours = type == HL_REC_ITEM || type == HL_REC_CHUNK || type == HL_REC_ACK ||
		    type == HL_REC_RESUME || type == HL_REC_REFUSE;
	if (!e->env.defer_items || !ours || (type != HL_REC_ITEM && e->nheld == 0))
		return dispatch(e, type, body, len, now);
	/* Held, in order, with everything after it: a CHUNK must not pass
	 * the ITEM of its message. */
	if (e->nheld == e->capheld) {
		e->capheld = e->capheld ? 2 * e->capheld : 256;
		e->held = xrealloc(e->held, e->capheld * sizeof(*e->held));
	}
	if (e->hlen + len > e->hcap) {
		while (e->hlen + len > e->hcap)
			e->hcap = e->hcap ? 2 * e->hcap : 256 * 1024;
		e->hbuf = xrealloc(e->hbuf, e->hcap);
	}
	memcpy(e->hbuf + e->hlen, body, len);
	e->held[e->nheld++] = (struct held){ .type = type, .verdict = -1, .off = e->hlen,
					     .len = len };
	e->hlen += len;
	return e->hlen >= HOLD_MAX ? hl_engine_drain(e, now) : 0;
}

/* ---- state at the start of a session ---- */

static int send_ack(hl_engine *e, uint64_t now)
{
	hl_store *st = e->env.txn->store;
	struct hl_chain_head head;
	struct hl_rec_ack *a = xcalloc(1, sizeof(*a));
	size_t n = 0, len;
	int ret = hl_store_in_contiguous(st, e->peer_id, &head);
	if (ret == 0)
		ret = hl_store_in_ranges(st, e->peer_id, head.seq, a->ranges, HL_ACK_MAX_RANGES, &n);
	if (ret == 0) {
		a->base = head.seq;
		a->n = (uint16_t)n;
		ret = hl_rec_ack_encode(a, e->rec, HL_RECORD_BODY_MAX, &len);
	}
	if (ret == 0)
		ret = eng_send_rec(e, HL_REC_ACK, e->rec, len, now);
	free(a);
	return ret;
}

static int refused_row(void *arg, const struct hl_msg_row *row)
{
	hl_engine *e = arg;
	struct hl_item_row irow;
	if (hl_store_get_item(e->env.txn->store, e->peer_id, HL_DIR_IN, row->seq, &irow,
			      e->itembuf, HL_ITEM_MAX) == 0)
		eng_queue_refusal(e, row->seq, irow.hash, HL_REFUSE_ATTACHMENT,
			      row->reason ? row->reason : "refused");
	return 0;
}

/* What the peer must be told and the link could not take yet (its output
 * above the high-water mark): the ACK (made afresh when sent, so it says
 * everything committed by then) and the REFUSEs, in order.  The link calls
 * on_writable once it drains, and the pump sends them first.  Only between
 * transactions: inside one, the store's view includes writes not yet
 * committed, which must not be acknowledged (invariant I3). */
static void eng_send_owed(hl_engine *e, uint64_t now)
{
	if (!e->link || hl_link_state(e->link) != HL_LINK_OPEN || e->env.txn->open)
		return;
	if (e->ack_owed) {
		int ret = send_ack(e, now);
		if (ret == -EAGAIN)
			return;
		if (ret < 0)
			hl_warn("peer %s: cannot send an ACK: %s", e->peer_name, hl_strerror(ret));
		e->ack_owed = false;
	}
	size_t i = 0;
	for (; i < e->nref; i++) {
		size_t len;
		struct refusal *r = &e->refusals[i];
		if (hl_rec_refuse_encode(r->seq, r->hash, r->code, r->text, e->rec,
					 HL_RECORD_BODY_MAX, &len) == 0 &&
		    eng_send_rec(e, HL_REC_REFUSE, e->rec, len, now) == -EAGAIN)
			break;
	}
	if (i > 0 && i < e->nref)
		memmove(e->refusals, e->refusals + i, (e->nref - i) * sizeof(*e->refusals));
	e->nref -= i;
}

static int send_resume(hl_engine *e, uint64_t now)
{
	struct hl_rec_resume *r = xcalloc(1, sizeof(*r));
	size_t len;
	for (struct in_msg *m = e->in; m && r->n < HL_RESUME_MAX; m = m->next) {
		for (unsigned i = 0; i < NPARTS_MAX && r->n < HL_RESUME_MAX; i++) {
			const struct in_part *p = &m->parts[i];
			if (!p->present)
				continue;
			r->e[r->n].seq = m->seq;
			r->e[r->n].part = (uint8_t)i;
			r->e[r->n].offset = p->complete ? p->size : p->durable;
			r->n++;
		}
		/* a message with no parts left still needs listing: its
		 * sender must not take it for whole */
		if (!m->parts[0].present && r->n < HL_RESUME_MAX) {
			bool any = false;
			for (unsigned i = 1; i < NPARTS_MAX; i++)
				any = any || m->parts[i].present;
			if (!any) {
				r->e[r->n].seq = m->seq;
				r->e[r->n].part = 0;
				r->e[r->n].offset = 0;
				r->n++;
			}
		}
	}
	int ret = hl_rec_resume_encode(r, e->rec, HL_RECORD_BODY_MAX, &len);
	if (ret == 0)
		ret = eng_send_rec(e, HL_REC_RESUME, e->rec, len, now);
	free(r);
	return ret;
}

void hl_engine_attach(hl_engine *e, hl_link *link, uint64_t now)
{
	held_drop(e); /* an earlier session's: never acknowledged, resent */
	hl_stage_reset(e->stage);
	e->link = link;
	e->synced = false;
	e->error[0] = '\0';
	eng_queues_clear(e);
	/* Durable state only: what an earlier session left in memory may be
	 * ahead of the store. */
	eng_in_clear(e);
	e->nref = 0;
	if (e->env.txn->open) {
		/* The caller attaches between commits; be safe. */
		hl_warn("peer %s: session opened inside a transaction", e->peer_name);
	}
	/* eng_in_clear() stopped the parts' workers: the counters are ours. */
	e->credit_on = (hl_link_own_flags(link) & hl_link_peer_flags(link) &
			HL_HELLO_FLAG_CREDIT) != 0;
	e->chunk_sent = e->chunk_credit = e->taken = e->pushed_pw = e->credit_sent = 0;
	atomic_store(&e->done_pw, 0);
	free(e->flow);   /* each session measures its path afresh */
	e->flow = NULL;
	e->stage_on = (hl_link_peer_flags(link) & HL_HELLO_FLAG_STAGE) != 0;
	e->first_ack = true;
	e->restart = false;
	e->resync_hold = 0;
	e->reclaims = 0;
	e->reclaim_pending = e->return_pending = 0;
	if (hl_store_resync_pending(e->env.txn->store, e->peer_id, &e->resync) < 0)
		e->resync = true; /* in doubt, sign nothing new (the store refuses it anyway) */
	if (e->resync) {
		eng_set_error(e, "restored from a backup: signing nothing new for %s until it says how "
			  "much of our chain it holds", e->peer_name);
		hl_warn("peer %s: this station was %s", e->peer_name, e->error);
	}
	if (eng_load_in(e) < 0) {
		hl_warn("peer %s: cannot load incoming state: %s", e->peer_name, e->error);
		return;
	}
	/* What we hold of each part is what the store says is durable. */
	for (struct in_msg *m = e->in; m; m = m->next)
		for (unsigned i = 0; i < NPARTS_MAX; i++)
			if (m->parts[i].present && !m->parts[i].complete && m->parts[i].done != m->parts[i].durable)
				m->parts[i].done = m->parts[i].durable;
	/* ACK, RESUME, then the REFUSEs of messages refused after they were
	 * stored (repeated each session). */
	e->ack_owed = true;
	eng_send_owed(e, now);
	if (send_resume(e, now) < 0)
		hl_warn("peer %s: cannot send session state", e->peer_name);
	if (hl_store_each_in_refused(e->env.txn->store, e->peer_id, refused_row, e) < 0)
		hl_warn("peer %s: cannot load refused messages: %s", e->peer_name,
			hl_store_errmsg(e->env.txn->store));
	eng_send_owed(e, now);
}

void hl_engine_detach(hl_engine *e)
{
	held_drop(e);
	hl_stage_reset(e->stage);
	e->link = NULL;
	e->synced = false;
	eng_queues_clear(e);
	free(e->flow);
	e->flow = NULL;
	free(e->resume.e);
	e->resume.e = NULL;
	e->resume.n = 0;
}

/* ---- around the commit ---- */

int hl_engine_precommit(hl_engine *e, uint64_t now)
{
	hl_store *st = e->env.txn->store;
	int ret;
	(void)now;
	for (struct in_msg *m = e->in; m; m = m->next)
		for (unsigned i = 1; i < NPARTS_MAX; i++)
			if (m->parts[i].pw && (ret = eng_note_synced(e, m, i)) < 0)
				return ret;
	/* After a restore: what our recovered receipts acknowledged already
	 * gets no second receipt. */
	if (e->recovered_acks) {
		size_t keep = 0;
		for (size_t i = 0; i < e->nrcpt; i++) {
			bool done;
			if ((ret = hl_store_recovered_ack_has(st, e->peer_id, e->rcpt[i].seq, &done)) < 0)
				return ret;
			if (!done)
				e->rcpt[keep++] = e->rcpt[i];
		}
		e->nrcpt = keep;
	}
	if (e->nrcpt == 0)
		return 0;
	struct hl_chain_head head, peer_head;
	if ((ret = hl_store_chain_head(st, e->peer_id, HL_DIR_OUT, &head)) < 0 ||
	    (ret = hl_store_signing_head(st, e->peer_id, &peer_head)) < 0)
		return ret;
	struct hl_item *it = xcalloc(1, sizeof(*it));
	for (size_t done = 0; done < e->nrcpt;) {
		size_t n = e->nrcpt - done;
		if (n > HL_MAX_RECEIPT_ENTRIES)
			n = HL_MAX_RECEIPT_ENTRIES;
		memset(it, 0, sizeof(*it));
		it->kind = HL_ITEM_RECEIPT;
		memcpy(it->author, e->env.me->sign_pk, 32);
		memcpy(it->counterpart, e->peer_sign, 32);
		it->seq = head.seq + 1;
		memcpy(it->prev, head.hash, HL_HASH_LEN);
		it->time_ms = (uint64_t)hl_now_ms();
		it->u.rcpt.peer_seq = peer_head.seq;
		memcpy(it->u.rcpt.peer_hash, peer_head.hash, HL_HASH_LEN);
		it->u.rcpt.count = (uint16_t)n;
		for (size_t i = 0; i < n; i++) {
			it->u.rcpt.entries[i].seq = e->rcpt[done + i].seq;
			memcpy(it->u.rcpt.entries[i].hash, e->rcpt[done + i].hash, HL_HASH_LEN);
		}
		size_t len;
		if ((ret = hl_item_encode_sign(it, e->env.me->sign_sk, e->itembuf, HL_ITEM_MAX, &len)) < 0)
			break;
		struct hl_item_row row = {
			.peer_id = e->peer_id, .dir = HL_DIR_OUT, .seq = it->seq,
			.kind = HL_ITEM_RECEIPT, .encoded = e->itembuf, .encoded_len = len,
			.precedence = HL_PREC_FLASH, .stored_at = hl_now_ms(),
		};
		hl_item_hash(e->itembuf, len, row.hash);
		if ((ret = hl_store_insert_item(st, &row)) < 0)
			break;
		head.seq = it->seq;
		memcpy(head.hash, row.hash, HL_HASH_LEN);
		done += n;
	}
	free(it);
	if (ret == 0)
		e->nrcpt = 0;
	return ret;
}

void hl_engine_postcommit(hl_engine *e, uint64_t now)
{
	eng_cache_forget(e);
	for (size_t i = 0; i < e->nev; i++)
		e->env.on_event(e->env.user, e->peer_name, &e->events[i]);
	e->nev = 0;
	if (e->link && hl_link_state(e->link) == HL_LINK_OPEN) {
		e->ack_owed = e->ack_owed || e->need_ack;
		hl_engine_refresh(e);
		hl_engine_pump(e, now); /* what is owed first */
	} else {
		e->nref = 0; /* no session: the peer offers the items again */
	}
	e->need_ack = false;
}

void hl_engine_abort(hl_engine *e)
{
	held_drop(e);
	eng_cache_forget(e);
	e->tombs_known = false;
	e->nev = 0;
	e->nrcpt = 0;
	e->nref = 0;
	e->need_ack = false;
	eng_in_clear(e);
}

/* ---- life ---- */

/* Scratch buffers for building and reading records.  Every engine runs on
 * the daemon's one thread and uses them only within one call, so all
 * engines share one pair: a station with a thousand pinned peers does not
 * keep 80 KiB of scratch per peer. */
static uint8_t *shared_rec, *shared_item;
static size_t shared_users;

static void shared_bufs_get(uint8_t **rec, uint8_t **item)
{
	if (shared_users++ == 0) {
		shared_rec = xmalloc(HL_RECORD_BODY_MAX);
		shared_item = xmalloc(HL_ITEM_MAX);
	}
	*rec = shared_rec;
	*item = shared_item;
}

static void shared_bufs_put(void)
{
	if (--shared_users == 0) {
		eng_verifier_stop();
		free(shared_rec);
		free(shared_item);
		shared_rec = shared_item = NULL;
	}
}

int hl_engine_new(hl_engine **out, const struct hl_engine_env *env, const hl_peer_conf *peer)
{
	hl_engine *e = xcalloc(1, sizeof(*e));
	int ret;
	e->env = *env;
	memcpy(e->peer_sign, peer->signing_key, 32);
	memcpy(e->peer_noise, peer->noise_key, 32);
	snprintf(e->peer_name, sizeof(e->peer_name), "%s", peer->name);
	if ((ret = hl_store_peer(env->txn->store, peer->signing_key, peer->noise_key, peer->name,
				 &e->peer_id)) < 0) {
		free(e);
		return ret;
	}
	shared_bufs_get(&e->rec, &e->itembuf);
	/* Staging files' workers report progress for CREDIT, as parts' do. */
	struct hl_partwriter_progress progress = {
		.taken = e->env.wake ? &e->done_pw : NULL,
		.wake = e->env.wake ? eng_worker_wake : NULL,
		.arg = e,
		.step = CREDIT_STEP,
	};
	e->stage = hl_stage_new(env->dir, e->peer_id, &progress);
	e->cur_verdict = -1;
	e->scratch = xmalloc(sizeof(*e->scratch));
	e->refuse_log = (struct hl_ratelimit)HL_RATELIMIT_INIT(20, 60);
	/* A bundle's engine (no link) sees the peer's ACK too. */
	e->first_ack = true;
	if (hl_store_resync_pending(env->txn->store, e->peer_id, &e->resync) < 0)
		e->resync = true;
	if (hl_store_recovered_acks_any(env->txn->store, e->peer_id, &e->recovered_acks) < 0)
		e->recovered_acks = true;   /* in doubt, look each time */
	*out = e;
	return 0;
}

void hl_engine_free(hl_engine *e)
{
	if (!e)
		return;
	eng_queues_clear(e);
	eng_in_clear(e);
	hl_stage_free(e->stage);
	free(e->flow);
	free(e->scratch);
	free(e->resume.e);
	free(e->rcpt);
	free(e->refusals);
	free(e->events);
	free(e->held);
	free(e->hbuf);
	shared_bufs_put();
	free(e);
}

int hl_engine_stage(hl_engine *e, const uint8_t id[static 16], unsigned part, unsigned prec,
		    const char *path, uint64_t size, uint64_t now)
{
	if (!e->link || !e->synced || !eng_prec_valid(prec))
		return HL_ESTATE;
	if (!e->stage_on)
		return HL_EUNSUPP; /* the peer would ignore it: its parts would wait */
	return hl_stage_out_add(e->stage, id, part, prec, path, size, now);
}

bool hl_engine_staging(const hl_engine *e)
{
	return e->link && hl_stage_out_active(e->stage);
}

int64_t hl_engine_peer_id(const hl_engine *e)
{
	return e->peer_id;
}

void hl_engine_stats(const hl_engine *e, struct hl_engine_stats *s)
{
	*s = e->stats;
	for (unsigned p = 0; p < HL_PREC_COUNT; p++)
		s->queued[p] = e->q[p].n;
	s->partial_in = e->nin;
	struct hl_stage_stats ss;
	hl_stage_stats(e->stage, &ss);
	s->stage_out_bytes = ss.out_bytes;
	s->stage_in_bytes = ss.in_bytes;
	s->stage_adopted_bytes = ss.adopted_bytes;
	s->credit_on = e->credit_on;
	s->refusing = e->refusing;
	s->chunk_data_sent = e->chunk_sent;
	s->chunk_data_credited = e->chunk_credit;
	if (e->credit_on && e->flow) {
		s->flow_window = hl_flow_window(e->flow);
		s->flow_ahead = hl_flow_ahead(e->flow);
		s->flow_rate = (uint64_t)e->flow->rate;
		s->flow_rtt_us = e->flow->rtt_us;
	}
}
