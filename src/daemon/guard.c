/* daemon/guard.c — what an inbound connection may cost before it is
 * authenticated (docs/protocol.md section 5): the list of unauthenticated
 * connections and its limits, per source address and in all, and the CPU
 * budgets that message 1's Diffie-Hellman work is paid from.
 *
 * A source is an IPv4 address, or an IPv6 /64 (what one host usually
 * holds).  TCP proved it (the three-way handshake), so a limit per source
 * cannot be dodged by forging addresses, and no cookie round trip is needed
 * to prove it again.  The rules, in the order a connection meets them:
 *
 *   1. Early drop (OpenSSH's MaxStartups, 48:30:64).  While more than
 *      DROP_START connections are unauthenticated, a new one from an unknown
 *      source is closed at once with a probability that grows from 30 % to
 *      100 % at HL_MAX_UNAUTH; likewise, with the same shape, while the
 *      station's budget (rule 4) is below half.  A known source (one from
 *      or to which a session with a pinned peer was confirmed since the
 *      daemon started) is never dropped early.
 *   2. A source whose budget (rule 4) is spent has its connections closed
 *      at once: nothing it sent could be read now anyway.
 *   3. Room.  A source holds at most SRC_MAX_UNAUTH unauthenticated
 *      connections (a new one closes its own oldest) and the station
 *      HL_MAX_UNAUTH (a new one closes the oldest of the source that holds
 *      the most), so a flood of idle connections delays but cannot lock out
 *      another source.
 *   4. Budgets.  Before message 1's first DH (session.c's admit), the source
 *      spends a token (SRC_RATE a second, SRC_BURST at most), and an
 *      unknown source also one of the station's (ALL_RATE, ALL_BURST); with
 *      none left, the connection closes unread.  A message 1 that proves to
 *      be a pinned peer's newest (timestamped) gives the tokens back at once,
 *      one with an empty payload when its session is confirmed: what is
 *      spent is the work that authenticated nobody.  So an unauthenticated
 *      source costs at most SRC_RATE messages 1 a second (each at most five
 *      X25519 operations), unknown sources together ALL_RATE, and the real
 *      peers' handshakes are not counted at all.
 *   5. A pinned peer's accepted messages 1 are counted too (PEER_RATE,
 *      PEER_BURST): a hostile peer holds valid keys, and its handshakes
 *      must be bounded as well.
 *   6. (conn.c) At most ACCEPTS_PER_TURN connections are accepted per turn
 *      of the event loop.
 *
 * Sources are kept in a fixed table (keyed hash, a short probe); a source
 * that finds no free entry shares the overflow entry, so memory is bounded
 * whatever the number of sources.  The known sources are the last KNOWN_MAX
 * seen. */
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "daemon/daemon_int.h"
#include "util/mem.h"

#define SLOTS 1024             /* sources tracked at once (a power of two) */
#define PROBE 8
#define KNOWN_MAX 64
#define SRC_MAX_UNAUTH 32
#define DROP_START 48
#define DROP_FROM_PCT 30
#define SRC_RATE 16.0          /* unproven messages 1 a second, per source */
#define SRC_BURST 32.0
#define ALL_RATE 256.0         /* from unknown sources, all together */
#define ALL_BURST 512.0
#define PEER_RATE 32.0         /* accepted messages 1 a second, per pinned peer */
#define PEER_BURST 64.0

struct source_state {
	struct hl_source src;
	bool used;
	uint32_t n_unauth;
	struct hl_bucket budget;
};

struct known_source {
	struct hl_source src;
	uint64_t last_ms;
};

struct hl_guard {
	uint8_t hash_key[crypto_shorthash_KEYBYTES];
	struct source_state slots[SLOTS];
	struct source_state overflow;
	struct known_source known[KNOWN_MAX];
	struct hl_bucket all;
	struct hl_ratelimit rl;        /* the log lines below */
};

#define OVERFLOW_SLOT (-1)

/* ---- buckets ---- */

static void bucket_fill(struct hl_bucket *b, double rate, double burst, uint64_t now)
{
	if (!b->init) {
		b->tokens = burst;
		b->init = true;
	} else if (now > b->last_ms) {
		b->tokens += (double)(now - b->last_ms) * rate / 1000.0;
		if (b->tokens > burst)
			b->tokens = burst;
	}
	b->last_ms = now;
}

static bool bucket_take(struct hl_bucket *b, double rate, double burst, uint64_t now)
{
	bucket_fill(b, rate, burst, now);
	if (b->tokens < 1.0)
		return false;
	b->tokens -= 1.0;
	return true;
}

static void bucket_give(struct hl_bucket *b, double burst)
{
	b->tokens += 1.0;
	if (b->tokens > burst)
		b->tokens = burst;
}

/* ---- sources ---- */

void hl_source_of(const struct sockaddr *sa, struct hl_source *out)
{
	memset(out, 0, sizeof(*out));
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		out->addr[10] = out->addr[11] = 0xff;   /* ::ffff:a.b.c.d */
		memcpy(out->addr + 12, &in->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		const uint8_t *a = in6->sin6_addr.s6_addr;
		static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		/* A mapped IPv4 address is that address; IPv6 counts by /64. */
		memcpy(out->addr, a, memcmp(a, v4mapped, 12) == 0 ? 16 : 8);
	}
}

static bool same_source(const struct hl_source *a, const struct hl_source *b)
{
	return memcmp(a->addr, b->addr, sizeof(a->addr)) == 0;
}

static size_t source_hash(const struct hl_guard *g, const struct hl_source *s)
{
	uint8_t h[crypto_shorthash_BYTES];
	crypto_shorthash(h, s->addr, sizeof(s->addr), g->hash_key);
	return ((size_t)h[0] | (size_t)h[1] << 8) & (SLOTS - 1);
}

/* An entry that holds nothing worth keeping: no connection, a full budget. */
static bool slot_idle(struct source_state *st, uint64_t now)
{
	if (!st->used)
		return true;
	if (st->n_unauth > 0)
		return false;
	bucket_fill(&st->budget, SRC_RATE, SRC_BURST, now);
	return st->budget.tokens >= SRC_BURST;
}

/* The slot index of SRC: its entry, else a free one taken for it, else
 * OVERFLOW_SLOT. */
static int source_slot(struct hl_guard *g, const struct hl_source *src, uint64_t now)
{
	size_t h = source_hash(g, src);
	int free_slot = OVERFLOW_SLOT;
	for (size_t i = 0; i < PROBE; i++) {
		size_t k = (h + i) & (SLOTS - 1);
		struct source_state *st = &g->slots[k];
		if (st->used && same_source(&st->src, src))
			return (int)k;
		if (free_slot == OVERFLOW_SLOT && slot_idle(st, now))
			free_slot = (int)k;
	}
	if (free_slot != OVERFLOW_SLOT) {
		struct source_state *st = &g->slots[free_slot];
		memset(st, 0, sizeof(*st));
		st->src = *src;
		st->used = true;
	}
	return free_slot;
}

static struct source_state *slot_state(struct hl_guard *g, int slot)
{
	return slot == OVERFLOW_SLOT ? &g->overflow : &g->slots[slot];
}

/* SRC's entry if it has one (nothing is taken for it). */
static struct source_state *source_find(struct hl_guard *g, const struct hl_source *src)
{
	size_t h = source_hash(g, src);
	for (size_t i = 0; i < PROBE; i++) {
		struct source_state *st = &g->slots[(h + i) & (SLOTS - 1)];
		if (st->used && same_source(&st->src, src))
			return st;
	}
	return NULL;
}

static bool is_known(const struct hl_guard *g, const struct hl_source *src)
{
	for (size_t i = 0; i < KNOWN_MAX; i++)
		if (g->known[i].last_ms && same_source(&g->known[i].src, src))
			return true;
	return false;
}

void hl_guard_known(struct hl_daemon *d, const struct hl_source *src)
{
	struct hl_guard *g = d->guard;
	uint64_t now = uv_now(&d->loop) + 1;   /* 0 marks an empty entry */
	size_t victim = 0;
	for (size_t i = 0; i < KNOWN_MAX; i++) {
		if (g->known[i].last_ms && same_source(&g->known[i].src, src)) {
			g->known[i].last_ms = now;
			return;
		}
		if (g->known[i].last_ms < g->known[victim].last_ms)
			victim = i;
	}
	g->known[victim].src = *src;
	g->known[victim].last_ms = now;
}

/* ---- the list of unauthenticated connections ---- */

static void unauth_append(struct hl_daemon *d, struct hl_conn *c)
{
	c->uprev = d->unauth_tail;
	c->unext = NULL;
	if (d->unauth_tail)
		d->unauth_tail->unext = c;
	else
		d->unauth_head = c;
	d->unauth_tail = c;
	c->in_unauth = true;
	d->n_unauth++;
	slot_state(d->guard, c->guard_slot)->n_unauth++;
}

void hl_guard_unauth_remove(struct hl_daemon *d, struct hl_conn *c)
{
	if (!c->in_unauth)
		return;
	if (c->uprev)
		c->uprev->unext = c->unext;
	else
		d->unauth_head = c->unext;
	if (c->unext)
		c->unext->uprev = c->uprev;
	else
		d->unauth_tail = c->uprev;
	c->uprev = c->unext = NULL;
	c->in_unauth = false;
	d->n_unauth--;
	slot_state(d->guard, c->guard_slot)->n_unauth--;
}

/* The connection to close when the station is full: the oldest of the
 * source that holds the most (so no source can crowd out another). */
static struct hl_conn *crowd_victim(struct hl_daemon *d)
{
	struct hl_conn *victim = NULL;
	uint32_t most = 0;
	for (struct hl_conn *o = d->unauth_head; o; o = o->unext) {
		uint32_t n = slot_state(d->guard, o->guard_slot)->n_unauth;
		if (n > most) {
			most = n;
			victim = o;
		}
	}
	return victim;
}

static struct hl_conn *oldest_of_slot(struct hl_daemon *d, int slot)
{
	for (struct hl_conn *o = d->unauth_head; o; o = o->unext)
		if (o->guard_slot == slot)
			return o;
	return NULL;
}

/* ---- admission ---- */

/* Rule 1's probability, in percent, of closing a new connection from an
 * unknown source now. */
static uint32_t early_drop_pct(struct hl_daemon *d, uint64_t now)
{
	struct hl_guard *g = d->guard;
	uint32_t pct = 0;
	if (d->n_unauth >= DROP_START) {
		size_t over = d->n_unauth - DROP_START, span = HL_MAX_UNAUTH - DROP_START;
		pct = over >= span ? 100 : DROP_FROM_PCT + (uint32_t)((100 - DROP_FROM_PCT) * over / span);
	}
	bucket_fill(&g->all, ALL_RATE, ALL_BURST, now);
	if (g->all.tokens < ALL_BURST / 2) {
		uint32_t b = DROP_FROM_PCT +
			     (uint32_t)((100 - DROP_FROM_PCT) * (1.0 - g->all.tokens / (ALL_BURST / 2)));
		if (b > pct)
			pct = b;
	}
	return pct;
}

bool hl_guard_accept(struct hl_daemon *d, struct hl_conn *c, struct hl_conn **evict)
{
	struct hl_guard *g = d->guard;
	uint64_t now = uv_now(&d->loop);
	bool known = is_known(g, &c->src);
	uint32_t pct = known ? 0 : early_drop_pct(d, now);

	if (pct && randombytes_uniform(100) < pct) {
		if (hl_ratelimit_allow(&g->rl, now))
			hl_warn("busy (%zu unauthenticated connections): closing a new one from %s "
				"at once, as %u %% of those from unknown sources now", d->n_unauth,
				c->remote, pct);
		return false;
	}
	c->guard_slot = source_slot(g, &c->src, now);
	struct source_state *st = slot_state(g, c->guard_slot);
	bucket_fill(&st->budget, SRC_RATE, SRC_BURST, now);
	if (st->budget.tokens < 1.0) {
		if (hl_ratelimit_allow(&g->rl, now))
			hl_warn("closing a connection from %s at once: that source spent its budget "
				"of handshakes that authenticate nobody", c->remote);
		return false;
	}
	*evict = NULL;
	if (st->n_unauth >= SRC_MAX_UNAUTH)
		*evict = oldest_of_slot(d, c->guard_slot);
	else if (d->n_unauth >= HL_MAX_UNAUTH)
		*evict = crowd_victim(d);
	if (*evict && hl_ratelimit_allow(&g->rl, now))
		hl_warn("%zu unauthenticated connections (%u from %s): closing the oldest, from %s",
			d->n_unauth, st->n_unauth, c->remote, (*evict)->remote);
	unauth_append(d, c);
	return true;
}

bool hl_guard_spend(struct hl_daemon *d, struct hl_conn *c)
{
	struct hl_guard *g = d->guard;
	uint64_t now = uv_now(&d->loop);
	struct source_state *st = slot_state(g, c->in_unauth ? c->guard_slot : OVERFLOW_SLOT);
	bool known = is_known(g, &c->src);

	if (!known && !bucket_take(&g->all, ALL_RATE, ALL_BURST, now))
		return false;
	if (!bucket_take(&st->budget, SRC_RATE, SRC_BURST, now)) {
		if (!known)
			bucket_give(&g->all, ALL_BURST);
		return false;
	}
	c->spent = true;
	c->spent_all = !known;
	return true;
}

void hl_guard_refund(struct hl_daemon *d, struct hl_conn *c)
{
	struct hl_guard *g = d->guard;
	if (!c->spent)
		return;
	struct source_state *st = c->in_unauth ? slot_state(g, c->guard_slot)
					       : source_find(g, &c->src);
	if (st)
		bucket_give(&st->budget, SRC_BURST);
	if (c->spent_all)
		bucket_give(&g->all, ALL_BURST);
	c->spent = c->spent_all = false;
}

bool hl_guard_peer_handshake(struct hl_daemon *d, struct hl_peer *p)
{
	return bucket_take(&p->hs_budget, PEER_RATE, PEER_BURST, uv_now(&d->loop));
}

struct hl_guard *hl_guard_new(void)
{
	struct hl_guard *g = xcalloc(1, sizeof(*g));
	randombytes_buf(g->hash_key, sizeof(g->hash_key));
	g->rl = (struct hl_ratelimit)HL_RATELIMIT_INIT(5, 10);
	return g;
}

void hl_guard_free(struct hl_guard *g)
{
	free(g);
}
