/* holder/serve.c — the key holder's answers (see serve.h for the rules,
 * docs/keyholder.md for the protocol). */
#include "holder/serve.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holder/proto.h"
#include "msg/item.h"
#include "util/err.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

struct hl_holder {
	hl_signer *keys;
	hl_signer *prev;              /* keys' previous keys (DH only); NULL none */
	char *identity;               /* identity.key's path; NULL: in memory */
	hl_heads *heads;
	int sync_error;               /* a journal fdatasync failed: signs nothing more */
	uint64_t refusals;
	struct hl_item *items;        /* HL_HOLD_RUN_MAX, for every run (2.6 MB once,
	                               * not page faults at every request) */
};

struct hl_holder *hl_holder_new(hl_signer *keys, hl_heads *heads)
{
	struct hl_holder *h = xcalloc(1, sizeof(*h));
	h->keys = keys;
	h->heads = heads;
	(void)hl_signer_previous(keys, &h->prev);
	return h;
}

void hl_holder_set_identity(struct hl_holder *h, const char *path)
{
	free(h->identity);
	h->identity = path ? xstrdup(path) : NULL;
}

void hl_holder_free(struct hl_holder *h)
{
	if (!h)
		return;
	hl_signer_free(h->keys);
	hl_signer_free(h->prev);
	free(h->identity);
	hl_heads_free(h->heads);
	free(h->items);
	free(h);
}

uint64_t hl_holder_refusals(const struct hl_holder *h)
{
	return h->refusals;
}

/* An answer that is not OK: STATUS, and a text that is logged too. */
struct answer {
	struct hl_hold_response r;
	char text[HL_HOLD_TEXT_MAX];
};

static void say(struct answer *a, enum hl_hold_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void say(struct answer *a, enum hl_hold_status status, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->text, sizeof(a->text), fmt, ap);
	va_end(ap);
	a->r.status = status;
	a->r.text.p = (const uint8_t *)a->text;
	a->r.text.len = strlen(a->text);
}

/* A refusal at the head (SEQ, HASH) of the chain asked for. */
static void refuse(struct hl_holder *h, struct answer *a, uint8_t reason, uint64_t seq,
		   const uint8_t *hash, const char *what)
{
	h->refusals++;
	say(a, HL_HOLD_REFUSED, "%s", what);
	a->r.u.refused.reason = reason;
	a->r.u.refused.head_seq = seq;
	if (hash)
		memcpy(a->r.u.refused.head_hash, hash, 32);
}

/* ---- SIGN ---- */

struct run {
	size_t n;
	struct hl_item *it;           /* the holder's (h->items) */
	uint8_t **enc;                /* each item as signed */
	size_t *len;
	uint8_t (*hash)[32];
	bool foreign;                 /* authored by a key the holder does not hold
	                               * (our card's before a rotation): continues
	                               * a chain signed here, or is refused */
	size_t nrot;                  /* rotation items in the run */
};

static void run_free(struct run *r)
{
	for (size_t i = 0; r->enc && i < r->n; i++)
		free(r->enc[i]);
	free(r->enc);
	free(r->len);
	free(r->hash);
}



/* Whether AUTHOR is a key of this station's that the holder holds: the
 * current SigningKey or, after a rotation, the previous one. */
static bool ours(const struct hl_holder *h, const uint8_t author[static 32])
{
	const uint8_t *prev = hl_signer_prev_sign_pk(h->keys);
	return sodium_memcmp(author, hl_signer_sign_pk(h->keys), 32) == 0 ||
	       (prev && sodium_memcmp(author, prev, 32) == 0);
}

/* Rule 5 (serve.h): a rotation item announces the keys the holder holds
 * now, which the station committed to before it rotated, and commits to
 * the next ones it holds; its new_sig is the holder's to make. */
static int check_rotation(struct hl_holder *h, struct answer *a, const struct hl_item *it,
			  size_t i)
{
	uint8_t next[32];
	const struct hl_item_rotation *r = &it->u.rot;
	if (!sodium_is_zero(r->new_sig, HL_SIG_LEN)) {
		say(a, HL_HOLD_MALFORMED, "item %zu of the run, a rotation, carries its new_sig", i);
		return HL_EINVAL;
	}
	const char *bad = NULL;
	if (!hl_signer_prev_sign_pk(h->keys))
		bad = "a rotation item, and the station's keys never rotated";
	else if (sodium_memcmp(r->signing_key, hl_signer_sign_pk(h->keys), 32) != 0 ||
		 sodium_memcmp(r->noise_key, hl_signer_noise_pub(h->keys), 32) != 0)
		bad = "a rotation to keys that are not the ones the station committed to";
	else if (hl_signer_next_hash(h->keys, next) < 0 ||
		 sodium_memcmp(r->next_hash, next, 32) != 0)
		bad = "a rotation that commits to next keys the station does not hold";
	if (!bad)
		return 0;
	refuse(h, a, HL_HOLD_R_ROTATION, 0, NULL, bad);
	return HL_EAUTH;
}

/* Rules 1 and 2 (serve.h) for entry I: decoded into R->it[I]. */
static int check_entry(struct hl_holder *h, struct answer *a, const struct hl_hold_request *q,
		       struct run *r, size_t i)
{
	const struct hl_hold_blob *b = &q->u.sign.e[i].item;
	struct hl_item *it = &r->it[i];
	/* encoded here once, then signed in place (sign_run) */
	uint8_t *again = r->enc[i] = xmalloc(b->len);
	size_t len = 0;
	int ret = HL_EINVAL;
	if (hl_item_decode(b->p, b->len, it) < 0)
		say(a, HL_HOLD_MALFORMED, "item %zu of the run is not an item (%s)", i,
		    it->bad ? it->bad : "does not decode");
	else if (!sodium_is_zero(it->sig, HL_SIG_LEN))
		say(a, HL_HOLD_MALFORMED, "item %zu of the run carries a signature", i);
	else if (i > 0 && memcmp(it->author, r->it[0].author, 32) != 0)
		refuse(h, a, HL_HOLD_R_NOT_OURS, 0, NULL, "a run of two authors");
	else if (i > 0 && memcmp(it->counterpart, r->it[0].counterpart, 32) != 0)
		refuse(h, a, HL_HOLD_R_NOT_OURS, 0, NULL, "a run over two chains");
	else if (it->seq != r->it[0].seq + i)
		refuse(h, a, HL_HOLD_R_NOT_OURS, 0, NULL, "a run of positions that do not follow");
	else if (i > 0 && !sodium_is_zero(it->prev, HL_HASH_LEN))
		say(a, HL_HOLD_MALFORMED, "item %zu of the run names its prev", i);
	else if (hl_item_encode(it, again, b->len, &len) < 0 || len != b->len ||
		 memcmp(again, b->p, len) != 0)
		say(a, HL_HOLD_MALFORMED, "item %zu of the run is not in its one encoding", i);
	else if (it->kind == HL_ITEM_ROTATION && check_rotation(h, a, it, i) < 0)
		;
	else
		ret = 0;
	r->len[i] = len;
	if (ret == 0 && i == 0)
		r->foreign = !ours(h, it->author);
	if (ret == 0 && it->kind == HL_ITEM_ROTATION)
		r->nrot++;
	return ret;
}

/* Rule 3's first half: where the run starts against the head. */
static int check_position(struct hl_holder *h, struct answer *a, const struct run *r,
			  bool have, uint64_t hs, const uint8_t hh[static 32], const char *who)
{
	uint64_t s = r->it[0].seq, last = s + r->n - 1;
	char what[HL_HOLD_TEXT_MAX];
	/* An author the holder does not hold only continues a chain it signed. */
	if (r->foreign && (!have || s > hs + 1)) {
		refuse(h, a, HL_HOLD_R_NOT_OURS, have ? hs : 0, have ? hh : NULL,
		       "an item authored by another key, on no chain signed here");
		return HL_EAUTH;
	}
	if (!have || s > hs + 1) {
		if (have)
			hl_warn("key holder: %s signs from position %llu of a chain whose last "
				"signed position is %llu", who, (unsigned long long)s,
				(unsigned long long)hs);
		return 0;
	}
	if (s == hs + 1 && sodium_memcmp(r->it[0].prev, hh, 32) == 0)
		return 0;
	if (s <= hs && last >= hs)
		return 0; /* the same items again? checked once signed */
	snprintf(what, sizeof(what),
		 s == hs + 1 ? "an item at position %llu that does not follow the one signed at %llu"
			     : "a different item at position %llu, already signed (last signed: %llu)",
		 (unsigned long long)s, (unsigned long long)hs);
	refuse(h, a, HL_HOLD_R_SIGNED, hs, hh, what);
	return HL_EAUTH;
}

/* Where an item's prev lies in its encoding: after the context and its
 * NUL, the author, the counterpart and the seq (docs/items.md section 1). */
static size_t prev_at(const uint8_t *enc)
{
	return strlen((const char *)enc) + 1 + 32 + 32 + 8;
}

/* Signs the run in order, each prev the hash of the one before: the
 * holder's own encodings (check_entry), the prev written in, signed under
 * the context they begin with. */
static int sign_run(struct hl_holder *h, struct answer *a, struct run *r)
{
	for (size_t i = 0; i < r->n; i++) {
		struct hl_item *it = &r->it[i];
		uint8_t *enc = r->enc[i];
		size_t at = prev_at(enc);
		if (i > 0) {
			memcpy(it->prev, r->hash[i - 1], HL_HASH_LEN);
			memcpy(enc + at, it->prev, HL_HASH_LEN);
		}
		if (at + HL_HASH_LEN > r->len[i] - HL_SIG_LEN ||
		    sodium_memcmp(enc + at, it->prev, HL_HASH_LEN) != 0 ||
		    (it->kind == HL_ITEM_ROTATION &&
		     hl_item_sign_rotation_new(it, h->keys, enc, r->len[i]) < 0) ||
		    hl_signer_sign(h->keys, (const char *)enc, enc, r->len[i] - HL_SIG_LEN,
				   it->sig) < 0) {
			say(a, HL_HOLD_FAILED, "item %zu of the run could not be signed", i);
			return HL_ECRYPTO;
		}
		memcpy(enc + r->len[i] - HL_SIG_LEN, it->sig, HL_SIG_LEN);
		hl_item_hash(enc, r->len[i], r->hash[i]);
	}
	return 0;
}

/* Rule 4: the positions past the head, durably. */
static int record_run(struct hl_holder *h, struct answer *a, const struct run *r,
		      const struct hl_hold_request *q, bool have, uint64_t hs)
{
	struct hl_heads_rec *rec = xcalloc(r->n, sizeof(*rec));
	uint64_t now = hl_wall_ms();
	size_t m = 0;
	for (size_t i = 0; i < r->n; i++) {
		if (have && r->it[i].seq <= hs)
			continue;
		memcpy(rec[m].peer, r->it[i].counterpart, 32);
		rec[m].seq = r->it[i].seq;
		memcpy(rec[m].hash, r->hash[i], 32);
		rec[m].time_ms = now;
		rec[m].item = r->enc[i];
		rec[m].item_len = r->len[i];
		rec[m].note = q->u.sign.e[i].note.p;
		rec[m].note_len = q->u.sign.e[i].note.len;
		m++;
	}
	int ret = m ? hl_heads_append(h->heads, rec, m, now) : 0;
	free(rec);
	if (ret < 0)
		say(a, HL_HOLD_FAILED, "the journal of heads could not be written (%s): "
		    "nothing signed", hl_strerror(ret));
	return ret;
}

static void answer_sign(struct hl_holder *h, const struct hl_hold_request *q, const char *who,
			struct answer *a, uint8_t **sigs)
{
	struct run r = { .n = q->u.sign.n };
	uint64_t hs = 0;
	uint8_t hh[32] = { 0 };
	if (!h->items)
		h->items = xcalloc(HL_HOLD_RUN_MAX, sizeof(*h->items));
	r.it = h->items;
	r.enc = xcalloc(r.n, sizeof(*r.enc));
	r.len = xcalloc(r.n, sizeof(*r.len));
	r.hash = xcalloc(r.n, sizeof(*r.hash));
	for (size_t i = 0; i < r.n; i++)
		if (check_entry(h, a, q, &r, i) < 0)
			goto out;
	bool have = hl_heads_get(h->heads, r.it[0].counterpart, &hs, hh);
	if (check_position(h, a, &r, have, hs, hh, who) < 0 || sign_run(h, a, &r) < 0)
		goto out;
	if (have && r.it[0].seq <= hs && sodium_memcmp(r.hash[hs - r.it[0].seq], hh, 32) != 0) {
		char what[HL_HOLD_TEXT_MAX];
		snprintf(what, sizeof(what), "a different item at position %llu, already signed",
			 (unsigned long long)hs);
		refuse(h, a, HL_HOLD_R_SIGNED, hs, hh, what);
		goto out;
	}
	if (record_run(h, a, &r, q, have, hs) < 0)
		goto out;
	/* the signatures, then the rotations' new_sigs */
	*sigs = xmalloc((r.n + r.nrot) * 64);
	for (size_t i = 0, m = 0; i < r.n; i++) {
		memcpy(*sigs + i * 64, r.it[i].sig, 64);
		if (r.it[i].kind == HL_ITEM_ROTATION)
			memcpy(*sigs + (r.n + m++) * 64, r.it[i].u.rot.new_sig, 64);
	}
	a->r.u.sign.n = (uint16_t)r.n;
	a->r.u.sign.sigs = *sigs;
	a->r.u.sign.m = (uint16_t)r.nrot;
	a->r.u.sign.new_sigs = *sigs + r.n * 64;
	if (r.nrot)
		hl_info("key holder: %s had the rotation to the keys now held signed on a chain "
			"(%zu item(s) from position %llu)", who, r.n,
			(unsigned long long)r.it[0].seq);
out:
	run_free(&r);
}

/* ---- PENDING ---- */

struct collect {
	struct answer *a;
	size_t bytes;
};

static int collect_one(void *arg, const struct hl_heads_rec *rec)
{
	struct collect *c = arg;
	struct hl_hold_response *r = &c->a->r;
	size_t need = 8 + rec->item_len + rec->note_len;
	if (r->u.pending.n == HL_HOLD_RUN_MAX || c->bytes + need > HL_HOLD_FRAME_MAX - 64)
		return 1; /* the asker asks again from the last one it got */
	struct hl_hold_entry *e = &r->u.pending.e[r->u.pending.n++];
	uint8_t *copy = xmalloc(rec->item_len + rec->note_len + 1);
	memcpy(copy, rec->item, rec->item_len);
	if (rec->note_len)
		memcpy(copy + rec->item_len, rec->note, rec->note_len);
	e->item = (struct hl_hold_blob){ copy, rec->item_len };
	e->note = (struct hl_hold_blob){ copy + rec->item_len, rec->note_len };
	c->bytes += need;
	return 0;
}

static void answer_pending(struct hl_holder *h, const struct hl_hold_request *q,
			   struct answer *a)
{
	struct collect c = { a, 0 };
	hl_heads_get(h->heads, q->u.pending.peer, &a->r.u.pending.head_seq,
		     a->r.u.pending.head_hash);
	int ret = hl_heads_each(h->heads, q->u.pending.peer, q->u.pending.after, collect_one, &c);
	if (ret < 0)
		say(a, HL_HOLD_FAILED, "the journal of heads could not be read (%s)",
		    hl_strerror(ret));
}

/* ---- ROTATE ---- */

/* The station's keys rotate to the next ones (crypto/signer.h: identity.key
 * replaced atomically); asked by the daemon, or a command while no daemon
 * runs (MAY_ROTATE) — never by another process beside a running daemon,
 * which would leave the daemon signing with keys it does not know. */
static void answer_rotate(struct hl_holder *h, struct answer *a, const char *who,
			  bool may_rotate)
{
	if (!may_rotate) {
		refuse(h, a, HL_HOLD_R_ROTATION, 0, NULL,
		       "a rotation of the station's keys, asked by another than the daemon");
		return;
	}
	int ret = hl_signer_rotate(h->keys, h->identity, (int64_t)hl_wall_ms());
	if (ret < 0) {
		say(a, HL_HOLD_FAILED, "identity.key could not be rotated: %s",
		    ret == HL_EUNSUPP ? "it has no next keys (made before key rotation existed)"
		    : ret == HL_EKEYS ? "its keys are not the ones this holder loaded"
				      : hl_strerror(ret));
		return;
	}
	hl_signer_free(h->prev);
	h->prev = NULL;
	(void)hl_signer_previous(h->keys, &h->prev);
	hl_signer_public(h->keys, &a->r.u.keys);
	hl_info("key holder: rotated the station's keys, asked by %s", who);
}

/* ---- the rest ---- */

static void answer_small(struct hl_holder *h, const struct hl_hold_request *q,
			 struct answer *a)
{
	uint8_t msg[sizeof(HL_HOLD_SEAL_CTX) + 32];
	switch (q->type) {
	case HL_HOLD_KEYS:
		hl_signer_public(h->keys, &a->r.u.keys);
		break;
	case HL_HOLD_DH:
		if (hl_signer_dh(h->keys, q->u.dh_pub, a->r.u.dh) < 0)
			say(a, HL_HOLD_FAILED, "a low-order public key");
		break;
	case HL_HOLD_DH_PREVIOUS:
		if (!h->prev)
			say(a, HL_HOLD_FAILED, "no previous key: the station's keys never rotated");
		else if (hl_signer_dh(h->prev, q->u.dh_pub, a->r.u.dh) < 0)
			say(a, HL_HOLD_FAILED, "a low-order public key");
		break;
	case HL_HOLD_SEAL:
		memcpy(msg, HL_HOLD_SEAL_CTX, sizeof(HL_HOLD_SEAL_CTX)); /* with its NUL */
		memcpy(msg + sizeof(HL_HOLD_SEAL_CTX), q->u.seal_hash, 32);
		if (hl_signer_sign(h->keys, HL_HOLD_SEAL_CTX, msg, sizeof(msg), a->r.u.seal_sig) < 0)
			say(a, HL_HOLD_FAILED, "the seal could not be signed");
		break;
	default:
		break;
	}
}

/* RET of a settle or push: a failure is kept, and said once. */
static int kept(struct hl_holder *h, int ret)
{
	if (ret < 0 && !h->sync_error) {
		h->sync_error = ret;
		hl_error("key holder: the journal of heads could not be made durable (%s): "
			 "signing nothing more", hl_strerror(ret));
	}
	return ret;
}

int hl_holder_settle(struct hl_holder *h)
{
	return h->sync_error ? h->sync_error : kept(h, hl_heads_sync(h->heads));
}

int hl_holder_push(struct hl_holder *h)
{
	return h->sync_error ? h->sync_error : kept(h, hl_heads_push(h->heads));
}

void hl_holder_journal_marks(const struct hl_holder *h, uint64_t *written, uint64_t *pushed,
			     uint64_t *durable)
{
	hl_heads_marks(h->heads, written, pushed, durable);
}

/* SYNC: what was signed is durable (the loop settled after the last answer;
 * an in-process holder settles here). */
static void answer_sync(struct hl_holder *h, struct answer *a)
{
	if (hl_holder_settle(h) < 0)
		say(a, HL_HOLD_FAILED, "the journal of heads could not be made durable (%s)",
		    hl_strerror(h->sync_error));
}

void hl_holder_answer(struct hl_holder *h, const uint8_t *req, size_t len, const char *who,
		      bool may_rotate, uint8_t **resp, size_t *resp_len)
{
	struct hl_hold_request *q = xmalloc(sizeof(*q));
	struct answer *a = xcalloc(1, sizeof(*a));
	uint8_t *sigs = NULL;
	const char *why;
	int ret = hl_hold_request_parse(req, len, q, &why);
	a->r.type = ret < 0 ? (len >= 2 ? (enum hl_hold_type)req[1] : 0) : q->type;
	if (ret < 0)
		say(a, HL_HOLD_MALFORMED, "a malformed request: %s", why);
	else if (q->type == HL_HOLD_SYNC)
		answer_sync(h, a);
	else if (h->sync_error && (q->type == HL_HOLD_SIGN || q->type == HL_HOLD_ROTATE))
		say(a, HL_HOLD_FAILED, "the journal of heads could not be made durable (%s): "
		    "this holder signs nothing more", hl_strerror(h->sync_error));
	else if (q->type == HL_HOLD_SIGN)
		answer_sign(h, q, who, a, &sigs);
	else if (q->type == HL_HOLD_PENDING)
		answer_pending(h, q, a);
	else if (q->type == HL_HOLD_ROTATE)
		answer_rotate(h, a, who, may_rotate);
	else
		answer_small(h, q, a);
	if (a->r.status != HL_HOLD_OK)
		hl_warn("key holder: %s request from %s %s: %s", hl_hold_type_name(a->r.type), who,
			a->r.status == HL_HOLD_FAILED ? "failed" : "refused", a->text);
	if (hl_hold_response_encode(&a->r, resp, resp_len) < 0) {
		/* Only a PENDING answer can grow; collect_one keeps it small. */
		say(a, HL_HOLD_FAILED, "the answer does not fit a frame");
		hl_hold_response_encode(&a->r, resp, resp_len);
	}
	if (a->r.type == HL_HOLD_PENDING && a->r.status == HL_HOLD_OK)
		for (size_t i = 0; i < a->r.u.pending.n; i++)
			free((void *)a->r.u.pending.e[i].item.p);
	sodium_memzero(a, sizeof(*a)); /* a DH result */
	free(a);
	free(sigs);
	free(q);
}
