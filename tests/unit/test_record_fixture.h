/* tests/unit/test_record_fixture.h — builds link histories for the record
 * tests: two stations (washington, chain 0, the exporter; pyongyang, chain
 * 1) and a third (moscow) for wrong-card tests, all from fixed seeds, with
 * real signed items (msg/item.h), so that everything — and the golden
 * record — comes out byte for byte the same on every run.
 *
 * A history is a list of entries per chain (items, refused positions,
 * positions the exporter never received) with the contents of their
 * messages; write_record() turns it into a record through the real writer,
 * optionally reordered, thinned or re-sealed by a variant, so tests can
 * make the forgeries a dishonest exporter could make. */
#ifndef TEST_RECORD_FIXTURE_H
#define TEST_RECORD_FIXTURE_H

#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"
#include "msg/item.h"
#include "record/format.h"
#include "record/verify.h"
#include "util/mem.h"

#define FX_MAXE 4096
#define FX_ITEM 2048
#define FX_MAXMSG 4096
#define FX_MAXATT 16
#define FX_T0 1795000000000ull

/* The stations' keys: raw (fx_sk signs forgeries by hand) and as signers
 * (what a station signs with), the same keys. */
static uint8_t fx_pk[3][32], fx_sk[3][64], fx_nk[3][32];
static hl_signer *fx_signer[3];
static const char *const fx_names[3] = { "washington", "pyongyang", "moscow" };
/* Key rotation (docs/rotation.md): set before fx_keys(), the stations get
 * next keys (from fixed seeds too) and their cards a NextKeyHash; the
 * golden record is made without. */
static bool fx_rotating;

static inline void fx_keys(void)
{
	uint8_t seed[32], nseed[32], nsk[32], next_seed[32], next_x[32];
	for (int i = 0; i < 3; i++) {
		memset(seed, 0x31 + i, sizeof(seed));
		crypto_sign_seed_keypair(fx_pk[i], fx_sk[i], seed);
		memset(nseed, 0x61 + i, sizeof(nseed));
		crypto_box_seed_keypair(fx_nk[i], nsk, nseed);
		hl_signer_free(fx_signer[i]);
		memset(next_seed, 0x91 + i, sizeof(next_seed));
		memset(next_x, 0xc1 + i, sizeof(next_x));
		if ((fx_rotating ? hl_signer_with_next_for_tests(&fx_signer[i], nsk, seed, next_x,
								 next_seed)
				 : hl_signer_from_raw_for_tests(&fx_signer[i], nsk, seed)) < 0)
			abort();
	}
}

/* The card text of station I (as `hotline card` prints it). */
static inline char *fx_card_text(int i)
{
	hl_card c;
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "%s", fx_names[i]);
	memcpy(c.noise_key, fx_nk[i], 32);
	memcpy(c.signing_key, fx_pk[i], 32);
	c.has_next = hl_signer_next_hash(fx_signer[i], c.next_hash) == 0;
	snprintf(c.address, sizeof(c.address), "127.0.0.1:%d", 7100 + i);
	return hl_card_format(&c);
}

static inline void fx_card(int i, hl_card *out)
{
	char err[HL_CONF_ERR_LEN];
	char *t = fx_card_text(i);
	if (hl_card_parse(t, strlen(t), "fixture", out, err) < 0)
		abort();
	free(t);
}

struct fx_ent {
	uint8_t type;                 /* HL_RECORD_ITEM, _REFUSED, _ABSENT */
	uint8_t code;
	uint8_t item[FX_ITEM];        /* the item (also for refused and absent ones) */
	size_t len;
	uint8_t hash[HL_HASH_LEN];
	enum hl_item_kind kind;
};

struct fx_msg {
	unsigned chain;
	uint64_t seq;
	uint8_t salt[HL_SALT_LEN];
	char subject[64];
	char body[128];
	bool disclose;
};

struct fx_att {
	unsigned chain;
	uint64_t seq;
	unsigned index;
	uint8_t data[48];
	size_t size;
};

struct fx_hist {
	struct fx_ent e[2][FX_MAXE];
	size_t n[2];
	uint64_t class_seq[2][HL_PREC_COUNT];
	struct fx_msg m[FX_MAXMSG];
	size_t nm;
	struct fx_att a[FX_MAXATT];
	size_t na;
	uint64_t t;
	struct fx_ent ev[4];
	unsigned ev_chain[4];
	size_t nev;
	hl_signer *key[2];            /* chain C's signer after its rotations (fx_rotation) */
};

/* The signer of chain C now. */
static inline const hl_signer *fx_key(const struct fx_hist *h, unsigned c)
{
	return h->key[c] ? h->key[c] : fx_signer[c];
}

static inline void fx_free(struct fx_hist *h)
{
	hl_signer_free(h->key[0]);
	hl_signer_free(h->key[1]);
	free(h);
}

static inline struct fx_hist *fx_new(void)
{
	struct fx_hist *h = xcalloc(1, sizeof(*h));
	h->t = FX_T0;
	return h;
}

/* IT's common fields as the next item of chain C. */
static inline void fx_header(struct fx_hist *h, unsigned c, struct hl_item *it)
{
	it->seq = h->n[c] + 1;
	memcpy(it->author, fx_pk[c], 32);
	memcpy(it->counterpart, fx_pk[1 - c], 32);
	if (h->n[c])
		memcpy(it->prev, h->e[c][h->n[c] - 1].hash, HL_HASH_LEN);
	it->time_ms = h->t += 1000;
}

/* A new item at the end of chain C, signed by station SIGNER (normally C). */
static inline struct fx_ent *fx_sign(struct fx_hist *h, unsigned c, struct hl_item *it, int signer)
{
	struct fx_ent *e = &h->e[c][h->n[c]];
	fx_header(h, c, it);
	if (signer != (int)c) {
		/* Signed by another station's key, a forgery: by hand, with
		 * that station's raw key. */
		memset(it->sig, 0, sizeof(it->sig));
		if (hl_item_encode(it, e->item, sizeof(e->item), &e->len) < 0)
			abort();
		crypto_sign_detached(e->item + e->len - 64, NULL, e->item, e->len - 64, fx_sk[signer]);
	} else if (hl_item_encode_sign(it, fx_key(h, c), e->item, sizeof(e->item), &e->len) < 0) {
		abort();
	}
	hl_item_hash(e->item, e->len, e->hash);
	e->type = HL_RECORD_ITEM;
	e->kind = it->kind;
	h->n[c]++;
	return e;
}

/* A message at the end of chain C; NATT attachments (the first one's bytes
 * go in the record).  Returns its seq. */
static inline uint64_t fx_message_signed(struct fx_hist *h, unsigned c, unsigned prec, const char *subject,
				  const char *body, unsigned natt, bool disclose, int signer)
{
	static const uint8_t names[4][12] = { "annex-0.txt", "annex-1.txt", "annex-2.txt",
					      "annex-3.txt" };
	struct hl_item *it = xcalloc(1, sizeof(*it));
	struct fx_msg *m = &h->m[h->nm++];
	it->kind = HL_ITEM_MESSAGE;
	struct hl_item_message *im = &it->u.msg;
	m->chain = c;
	m->seq = h->n[c] + 1;
	m->disclose = disclose;
	snprintf(m->subject, sizeof(m->subject), "%s", subject);
	snprintf(m->body, sizeof(m->body), "%s", body);
	/* Fixed, distinct ids and salts. */
	for (size_t i = 0; i < HL_MSG_ID_LEN; i++)
		im->id[i] = (uint8_t)(0x10 * c + m->seq * 7 + i);
	for (size_t i = 0; i < HL_SALT_LEN; i++)
		m->salt[i] = (uint8_t)(0xa0 + c * 3 + m->seq * 11 + i);
	im->precedence = (uint8_t)prec;
	im->class_seq = ++h->class_seq[c][prec];
	hl_salted_hash(m->salt, HL_LABEL_SUBJECT, (const uint8_t *)m->subject, strlen(m->subject),
		       im->subject_hash);
	hl_salted_hash(m->salt, HL_LABEL_BODY, (const uint8_t *)m->body, strlen(m->body),
		       im->body_hash);
	im->body_size = strlen(m->body);
	im->n_attachments = (uint8_t)natt;
	for (unsigned i = 0; i < natt; i++) {
		uint8_t data[48];
		for (size_t j = 0; j < sizeof(data); j++)
			data[j] = (uint8_t)('a' + (j + i + m->seq) % 26);
		im->att[i].name = names[i];
		im->att[i].name_len = 11;
		im->att[i].size = sizeof(data) - i;
		hl_doc_hash(data, sizeof(data) - i, im->att[i].hash);
		if (i == 0) {
			struct fx_att *a = &h->a[h->na++];
			a->chain = c;
			a->seq = m->seq;
			a->index = 0;
			memcpy(a->data, data, sizeof(data));
			a->size = sizeof(data);
		}
	}
	fx_sign(h, c, it, signer);
	free(it);
	return m->seq;
}

static inline uint64_t fx_message(struct fx_hist *h, unsigned c, unsigned prec, const char *subject,
			   const char *body, unsigned natt, bool disclose)
{
	return fx_message_signed(h, c, prec, subject, body, natt, disclose, (int)c);
}

/* The highest seq S of chain C such that 1..S are all held (refused ones
 * count), as a receipt's peer_seq says. */
static inline uint64_t fx_contig(const struct fx_hist *h, unsigned c)
{
	uint64_t s = 0;
	while (s < h->n[c] && h->e[c][s].type != HL_RECORD_ABSENT)
		s++;
	return s;
}

/* A receipt at the end of chain C acknowledging the other chain's ACKS. */
static inline uint64_t fx_receipt(struct fx_hist *h, unsigned c, const uint64_t *acks, unsigned n)
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	unsigned o = 1 - c;
	it->kind = HL_ITEM_RECEIPT;
	it->u.rcpt.peer_seq = fx_contig(h, o);
	if (it->u.rcpt.peer_seq)
		memcpy(it->u.rcpt.peer_hash, h->e[o][it->u.rcpt.peer_seq - 1].hash, 32);
	it->u.rcpt.count = (uint16_t)n;
	for (unsigned i = 0; i < n; i++) {
		it->u.rcpt.entries[i].seq = acks[i];
		memcpy(it->u.rcpt.entries[i].hash, h->e[o][acks[i] - 1].hash, 32);
	}
	fx_sign(h, c, it, (int)c);
	free(it);
	return h->n[c];
}

/* A message of chain C that the exporter refused (CODE) or never received
 * (CODE 0): the author made it, so later items link to its hash. */
static inline void fx_missing(struct fx_hist *h, unsigned c, unsigned code)
{
	fx_message(h, c, HL_PREC_ROUTINE, "lost", "never seen", 0, false);
	h->nm--; /* no content: the exporter never held it */
	struct fx_ent *e = &h->e[c][h->n[c] - 1];
	e->type = code ? HL_RECORD_REFUSED : HL_RECORD_ABSENT;
	e->code = (uint8_t)code;
}

/* A line check by chain C, holding the other chain's head. */
static inline uint64_t fx_line_check(struct fx_hist *h, unsigned c, unsigned mode, bool link)
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	unsigned o = 1 - c;
	it->kind = HL_ITEM_CHECK;
	for (size_t i = 0; i < HL_CHECK_ID_LEN; i++)
		it->u.chk.id[i] = (uint8_t)(0xc0 + c + h->n[c] + i);
	it->u.chk.mode = (uint8_t)mode;
	it->u.chk.link = link;
	it->u.chk.timeout_ms = 30000;
	it->u.chk.peer_seq = fx_contig(h, o);
	if (it->u.chk.peer_seq)
		memcpy(it->u.chk.peer_hash, h->e[o][it->u.chk.peer_seq - 1].hash, 32);
	fx_sign(h, c, it, (int)c);
	free(it);
	return h->n[c];
}

/* An answer by chain C to the other chain's check at CHECK_SEQ. */
static inline uint64_t fx_answer(struct fx_hist *h, unsigned c, uint64_t check_seq, unsigned by)
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	unsigned o = 1 - c;
	it->kind = HL_ITEM_ANSWER;
	it->u.ans.check_seq = check_seq;
	memcpy(it->u.ans.check_hash, h->e[o][check_seq - 1].hash, 32);
	it->u.ans.by = (uint8_t)by;
	it->u.ans.peer_seq = fx_contig(h, o);
	if (it->u.ans.peer_seq)
		memcpy(it->u.ans.peer_hash, h->e[o][it->u.ans.peer_seq - 1].hash, 32);
	fx_sign(h, c, it, (int)c);
	free(it);
	return h->n[c];
}

/* An agreement proposed by chain C on a document DOC. */
static inline uint64_t fx_agreement(struct fx_hist *h, unsigned c, const char *doc)
{
	static const uint8_t name[] = "treaty.txt";
	struct hl_item *it = xcalloc(1, sizeof(*it));
	it->kind = HL_ITEM_AGREEMENT;
	it->u.agr.name = name;
	it->u.agr.name_len = sizeof(name) - 1;
	it->u.agr.size = strlen(doc);
	hl_doc_hash((const uint8_t *)doc, strlen(doc), it->u.agr.doc_hash);
	memset(it->u.agr.msg_id, 0x3c, HL_MSG_ID_LEN);
	fx_sign(h, c, it, (int)c);
	free(it);
	return h->n[c];
}

/* Chain C countersigns the other chain's agreement at PROPOSAL_SEQ on DOC. */
static inline uint64_t fx_countersign(struct fx_hist *h, unsigned c, uint64_t proposal_seq,
				      const char *doc)
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	it->kind = HL_ITEM_COUNTERSIGN;
	it->u.csig.proposal_seq = proposal_seq;
	memcpy(it->u.csig.agreement_id, h->e[1 - c][proposal_seq - 1].hash, 32);
	hl_doc_hash((const uint8_t *)doc, strlen(doc), it->u.csig.doc_hash);
	fx_sign(h, c, it, (int)c);
	free(it);
	return h->n[c];
}

/* The golden history (docs: tests/golden/record/README.md). */
/* A rotation of chain C to the keys its signer committed to: chain C is
 * signed by the new key from here on.  Returns its seq. */
static inline uint64_t fx_rotation(struct fx_hist *h, unsigned c, unsigned reason)
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	hl_signer *r = NULL, *old = h->key[c];
	if (hl_signer_rotated_for_tests(fx_key(h, c), (int64_t)h->t, &r) < 0)
		abort();
	it->kind = HL_ITEM_ROTATION;
	memcpy(it->u.rot.noise_key, hl_signer_noise_pub(r), 32);
	memcpy(it->u.rot.signing_key, hl_signer_sign_pk(r), 32);
	if (hl_signer_next_hash(r, it->u.rot.next_hash) < 0)
		abort();
	it->u.rot.reason = (uint8_t)reason;
	h->key[c] = r;   /* signs the rotation: the new key, then the previous one */
	fx_sign(h, c, it, (int)c);
	hl_signer_free(old);
	free(it);
	return h->n[c];
}

/* A rotation of chain C (which has not rotated yet) to fresh keys nobody
 * committed to, signed as a thief with only the current key would sign it:
 * new_sig by the new key, sig by chain C's real key.  Chain C's keys do not
 * change.  Returns its seq. */
static inline uint64_t fx_rotation_forged(struct fx_hist *h, unsigned c)
{
	struct hl_item *it = xcalloc(1, sizeof(*it));
	uint8_t seed[32], pk[32], sk[64], x[32], msg[512];
	memset(seed, 0xee, sizeof(seed));
	crypto_sign_seed_keypair(pk, sk, seed);
	crypto_box_seed_keypair(it->u.rot.noise_key, x, seed);
	it->kind = HL_ITEM_ROTATION;
	memcpy(it->u.rot.signing_key, pk, 32);
	memset(it->u.rot.next_hash, 0x4e, 32);
	struct fx_ent *e = &h->e[c][h->n[c]];
	fx_header(h, c, it);
	if (hl_item_encode(it, e->item, sizeof(e->item), &e->len) < 0)
		abort();
	size_t body = e->len - 128;
	memcpy(msg, HL_CTX_ROTATION_NEW, sizeof(HL_CTX_ROTATION_NEW));
	memcpy(msg + sizeof(HL_CTX_ROTATION_NEW), e->item, body);
	crypto_sign_detached(e->item + body, NULL, msg, sizeof(HL_CTX_ROTATION_NEW) + body, sk);
	crypto_sign_detached(e->item + e->len - 64, NULL, e->item, e->len - 64, fx_sk[c]);
	hl_item_hash(e->item, e->len, e->hash);
	e->type = HL_RECORD_ITEM;
	e->kind = HL_ITEM_ROTATION;
	h->n[c]++;
	sodium_memzero(sk, sizeof(sk));
	free(it);
	return h->n[c];
}

static inline struct fx_hist *fx_golden(void)
{
	struct fx_hist *h = fx_new();
	const unsigned W = 0, P = 1;
	fx_message(h, W, HL_PREC_FLASH, "Proposal", "We propose talks on the 28th.", 2, true);
	fx_receipt(h, P, (const uint64_t[]){ 1 }, 1);
	fx_message(h, P, HL_PREC_IMMEDIATE, "Reply", "Received. Considering.", 0, true);
	fx_message(h, W, HL_PREC_ROUTINE, "Agenda", "Private draft agenda.", 0, false);
	fx_missing(h, P, 4);
	fx_message(h, P, HL_PREC_ROUTINE, "Second reply", "The 28th is possible.", 0, true);
	fx_missing(h, P, 0);
	fx_message(h, P, HL_PREC_PRIORITY, "Third", "Delegation of five.", 0, true);
	fx_receipt(h, W, (const uint64_t[]){ 2, 4, 6 }, 3);
	fx_receipt(h, P, (const uint64_t[]){ 2 }, 1);
	fx_message(h, P, HL_PREC_ROUTINE, "Confirmed", "Agreed: the 28th.", 0, true);
	fx_receipt(h, W, (const uint64_t[]){ 8 }, 1);
	return h;
}

/* ---- writing ---- */

struct fx_buf {
	uint8_t *p;
	size_t len, cap;
};

static inline int fx_sink(void *arg, const void *p, size_t n)
{
	struct fx_buf *b = arg;
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 1024;
		b->p = xrealloc(b->p, b->cap);
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

/* How to write a history: the entries of each chain in ORDER (indexes into
 * h->e, default all in order), which contents and attachments, evidence,
 * and who seals. */
struct fx_variant {
	int order[2][FX_MAXE + 8];
	size_t count[2];
	bool custom_order;
	bool no_contents;
	bool no_atts;
	int sealer;                   /* station index; default 0 */
	const bool *disclose;         /* per h->m; NULL: each message's own flag */
	/* Version 2: the (chain, seq) of purged messages, in the order given;
	 * none: version 1. */
	const uint64_t (*purged)[2];
	size_t npurged;
};

static inline void fx_default(const struct fx_hist *h, struct fx_variant *v)
{
	memset(v, 0, sizeof(*v));
	for (unsigned c = 0; c < 2; c++) {
		for (size_t i = 0; i < h->n[c]; i++)
			v->order[c][i] = (int)i;
		v->count[c] = h->n[c];
	}
}

static inline bool fx_disclosed(const struct fx_hist *h, const struct fx_variant *v, size_t i)
{
	return v->disclose ? v->disclose[i] : h->m[i].disclose;
}

static inline void fx_write(const struct fx_hist *h, const struct fx_variant *vv, uint8_t **out,
		     size_t *outlen)
{
	struct fx_variant dv;
	const struct fx_variant *v = vv;
	if (!v || !v->custom_order) {
		fx_default(h, &dv);
		if (v) {
			dv.no_contents = v->no_contents;
			dv.no_atts = v->no_atts;
			dv.sealer = v->sealer;
			dv.disclose = v->disclose;
			dv.purged = v->purged;
			dv.npurged = v->npurged;
		}
		v = &dv;
	}
	struct fx_buf b = { 0 };
	struct hl_record_writer w;
	hl_record_writer_init(&w, fx_sink, &b);
	hl_record_write_header_version(&w, FX_T0 + 999999, v->npurged ? HL_RECORD_VERSION_PURGED
								      : HL_RECORD_VERSION);
	for (int i = 0; i < 2; i++) {
		char *t = fx_card_text(i);
		hl_record_write_card(&w, t, strlen(t));
		free(t);
	}
	for (unsigned c = 0; c < 2; c++) {
		hl_record_write_chain(&w, (uint32_t)v->count[c]);
		for (size_t i = 0; i < v->count[c]; i++) {
			const struct fx_ent *e = &h->e[c][v->order[c][i]];
			if (e->type == HL_RECORD_ITEM)
				hl_record_write_item(&w, e->item, e->len);
			else if (e->type == HL_RECORD_REFUSED)
				hl_record_write_refused(&w, e->hash, e->code);
			else
				hl_record_write_absent(&w);
		}
	}
	uint32_t nc = 0;
	for (size_t i = 0; i < h->nm && !v->no_contents; i++)
		nc += fx_disclosed(h, v, i);
	hl_record_write_contents(&w, nc);
	for (unsigned c = 0; c < 2 && !v->no_contents; c++)
		for (size_t i = 0; i < h->nm; i++) {
			const struct fx_msg *m = &h->m[i];
			if (m->chain == c && fx_disclosed(h, v, i))
				hl_record_write_content(&w, c, m->seq, m->salt,
							(const uint8_t *)m->subject, strlen(m->subject),
							(const uint8_t *)m->body, strlen(m->body));
		}
	uint32_t na = 0;
	for (size_t i = 0; i < h->na; i++) {
		bool ok = !v->no_contents && !v->no_atts;
		for (size_t j = 0; ok && j < h->nm; j++)
			if (h->m[j].chain == h->a[i].chain && h->m[j].seq == h->a[i].seq)
				ok = fx_disclosed(h, v, j);
		na += ok;
	}
	hl_record_write_attachments(&w, na);
	for (size_t i = 0; i < h->na && na; i++) {
		bool ok = true;
		for (size_t j = 0; j < h->nm; j++)
			if (h->m[j].chain == h->a[i].chain && h->m[j].seq == h->a[i].seq)
				ok = fx_disclosed(h, v, j);
		if (!ok)
			continue;
		hl_record_write_att_begin(&w, h->a[i].chain, h->a[i].seq, h->a[i].index, h->a[i].size);
		hl_record_write_att_data(&w, h->a[i].data, h->a[i].size);
	}
	hl_record_write_evidence(&w, (uint32_t)h->nev);
	for (size_t i = 0; i < h->nev; i++)
		hl_record_write_evidence_item(&w, h->ev_chain[i], h->ev[i].item, h->ev[i].len);
	if (v->npurged)
		hl_record_write_purged(&w, (uint32_t)v->npurged);
	for (size_t i = 0; i < v->npurged; i++)
		hl_record_write_purged_entry(&w, (unsigned)v->purged[i][0], v->purged[i][1],
					     FX_T0 + 500000 + i);
	if (hl_record_write_seal(&w, v->sealer < 2 ? fx_key(h, (unsigned)v->sealer)
						   : fx_signer[v->sealer]) != 0) {
		fprintf(stderr, "fixture: writer error %d\n", w.err);
		abort();
	}
	*out = b.p;
	*outlen = b.len;
}

/* Parses and verifies BUF against cards of stations A and B: 0 or the
 * failure; WHY (optional) gets the reason. */
static inline int fx_check(const uint8_t *buf, size_t len, int a, int b, char *why, size_t whylen)
{
	struct hl_record *rec = NULL;
	char w[640];
	hl_card ca, cb;
	fx_card(a, &ca);
	fx_card(b, &cb);
	int ret = hl_record_parse(buf, len, &rec, w, sizeof(w));
	if (ret == 0) {
		struct hl_record_verdict v;
		ret = hl_record_verify(rec, &ca, &cb, NULL, NULL, &v);
		if (ret < 0)
			snprintf(w, sizeof(w), "%s", v.why);
	}
	if (why)
		snprintf(why, whylen, "%s", ret ? w : "");
	hl_record_free(rec);
	return ret;
}

#endif
