/* msg/item.c — encoding, decoding and signatures of items (docs/items.md).
 *
 * The encoder and decoder mirror each other field by field; the golden and
 * round-trip tests in tests/unit/test_item.c hold them together, and
 * fuzz/fuzz_item.c checks that whatever decodes re-encodes to the same
 * bytes (one encoding per item, so one hash per item). */
#include "msg/item.h"

#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "util/bytes.h"
#include "util/err.h"
#include "util/text.h"

static const char *const prec_names[HL_PREC_COUNT] = {
	"routine", "priority", "immediate", "flash",
};

const char *hl_precedence_name(unsigned prec)
{
	return prec < HL_PREC_COUNT ? prec_names[prec] : NULL;
}

int hl_precedence_parse(const char *s, enum hl_precedence *out)
{
	for (unsigned i = 0; i < HL_PREC_COUNT; i++) {
		if (strcasecmp(s, prec_names[i]) == 0 ||
		    (s[0] && !s[1] && (s[0] | 0x20) == prec_names[i][0])) {
			*out = (enum hl_precedence)i;
			return 0;
		}
	}
	return HL_EINVAL;
}

int hl_attachment_name_valid(const uint8_t *name, size_t len)
{
	if (len == 0 || len > 255)
		return 0;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	/* UTF-8, and no C0 or C1 control, DEL, or path separator */
	if (!hl_utf8_text_valid(name, len))
		return 0;
	for (size_t i = 0; i < len; i++) {
		if (name[i] == '/' || name[i] == '\\' || name[i] < 0x20 || name[i] == 0x7f)
			return 0;
		if (name[i] == 0xc2 && i + 1 < len && name[i + 1] >= 0x80 && name[i + 1] <= 0x9f)
			return 0;
	}
	return 1;
}

static const struct {
	const char *ctx, *name;
	enum hl_item_kind kind;
} kinds[] = {
	{ HL_CTX_MESSAGE, "message", HL_ITEM_MESSAGE },
	{ HL_CTX_RECEIPT, "receipt", HL_ITEM_RECEIPT },
	{ HL_CTX_CHECK, "check", HL_ITEM_CHECK },
	{ HL_CTX_ANSWER, "answer", HL_ITEM_ANSWER },
	{ HL_CTX_AGREEMENT, "agreement", HL_ITEM_AGREEMENT },
	{ HL_CTX_COUNTERSIGN, "countersign", HL_ITEM_COUNTERSIGN },
	{ HL_CTX_CALL, "call", HL_ITEM_CALL },
	{ HL_CTX_ROTATION, "rotation", HL_ITEM_ROTATION },
};
#define NKINDS (sizeof(kinds) / sizeof(kinds[0]))

int hl_item_kind_valid(int kind)
{
	return kind >= HL_ITEM_MESSAGE && kind <= HL_ITEM_KIND_MAX;
}

const char *hl_item_kind_name(int kind)
{
	for (size_t i = 0; i < NKINDS; i++)
		if ((int)kinds[i].kind == kind)
			return kinds[i].name;
	return NULL;
}

static const char *kind_context(enum hl_item_kind kind)
{
	for (size_t i = 0; i < NKINDS; i++)
		if (kinds[i].kind == kind)
			return kinds[i].ctx;
	return NULL;
}

static bool is_zero(const uint8_t *p, size_t n)
{
	return sodium_is_zero(p, n) == 1;
}

/* A rule the item breaks: WHY names it (for `record verify`, REFUSE texts
 * and logs). */
static int bad(const struct hl_item *it, int code, const char *why)
{
	((struct hl_item *)it)->bad = why;
	return code;
}

static int validate_common(const struct hl_item *it)
{
	if (it->seq == 0)
		return bad(it, HL_EINVAL, "seq 0");
	if (it->seq == 1 && !is_zero(it->prev, HL_HASH_LEN))
		return bad(it, HL_EINVAL, "seq 1 with a non-zero prev");
	return 0;
}

static int validate_message(const struct hl_item *it)
{
	const struct hl_item_message *m = &it->u.msg;
	if (m->precedence >= HL_PREC_COUNT)
		return bad(it, HL_EINVAL, "precedence above 3");
	if (m->class_seq == 0)
		return bad(it, HL_EINVAL, "class_seq 0");
	if (m->body_size > HL_BODY_MAX)
		return bad(it, HL_EINVAL, "body_size over 16 MiB");
	if (m->n_attachments > HL_MAX_ATTACHMENTS)
		return bad(it, HL_EINVAL, "more than 64 attachments");
	for (unsigned i = 0; i < m->n_attachments; i++) {
		if (!hl_attachment_name_valid(m->att[i].name, m->att[i].name_len))
			return bad(it, HL_EINVAL, "an attachment name that is not a base name");
		if (m->att[i].size > (UINT64_C(1) << 62))
			return bad(it, HL_EINVAL, "an attachment size over 2^62");
	}
	return 0;
}

/* A head (seq, hash) names nothing when seq is 0: its hash must be zero. */
static int validate_head(const struct hl_item *it, uint64_t seq, const uint8_t hash[static HL_HASH_LEN])
{
	return seq == 0 && !is_zero(hash, HL_HASH_LEN)
		       ? bad(it, HL_EINVAL, "peer_seq 0 with a non-zero peer_hash") : 0;
}

static int validate_receipt(const struct hl_item *it)
{
	const struct hl_item_receipt *r = &it->u.rcpt;
	if (r->count == 0 || r->count > HL_MAX_RECEIPT_ENTRIES)
		return bad(it, HL_EINVAL, "a receipt count outside 1..256");
	for (unsigned i = 0; i < r->count; i++) {
		if (r->entries[i].seq == 0)
			return bad(it, HL_EINVAL, "a receipt acknowledging seq 0");
	}
	return validate_head(it, r->peer_seq, r->peer_hash);
}

static int validate_check(const struct hl_item *it)
{
	const struct hl_item_check *c = &it->u.chk;
	if (c->mode > HL_CHECK_OPERATOR)
		return bad(it, HL_EINVAL, "a check mode above 1");
	if (c->link > 1)
		return bad(it, HL_EINVAL, "a check link above 1");
	if (c->timeout_ms == 0 || c->timeout_ms > HL_CHECK_TIMEOUT_MAX)
		return bad(it, HL_EINVAL, "a check timeout outside 1 ms..24 h");
	return validate_head(it, c->peer_seq, c->peer_hash);
}

static int validate_answer(const struct hl_item *it)
{
	const struct hl_item_answer *a = &it->u.ans;
	if (a->check_seq == 0)
		return bad(it, HL_EINVAL, "an answer with check_seq 0");
	if (a->by > HL_ANSWER_NO_PERSON)
		return bad(it, HL_EINVAL, "an answer's by above 2");
	return validate_head(it, a->peer_seq, a->peer_hash);
}

static int validate_agreement(const struct hl_item *it)
{
	const struct hl_item_agreement *g = &it->u.agr;
	if (!g->name || !hl_attachment_name_valid(g->name, g->name_len))
		return bad(it, HL_EINVAL, "an agreement name that is not a base name");
	if (g->size > (UINT64_C(1) << 62))
		return bad(it, HL_EINVAL, "an agreement size over 2^62");
	return 0;
}

static int validate_countersign(const struct hl_item *it)
{
	return it->u.csig.proposal_seq == 0
		       ? bad(it, HL_EINVAL, "a countersign with proposal_seq 0") : 0;
}

static int validate_rotation(const struct hl_item *it)
{
	const struct hl_item_rotation *r = &it->u.rot;
	if (r->reason > HL_ROTATE_COMPROMISE)
		return bad(it, HL_EINVAL, "a rotation reason above 1");
	if (!hl_noise_key_usable(r->noise_key))
		return bad(it, HL_EINVAL, "a rotation to a NoiseKey that is not a usable X25519 key");
	if (!hl_signing_key_usable(r->signing_key))
		return bad(it, HL_EINVAL, "a rotation to a SigningKey that is not a usable Ed25519 key");
	if (is_zero(r->next_hash, HL_HASH_LEN))
		return bad(it, HL_EINVAL, "a rotation with an all-zero next_hash");
	return 0;
}

static int validate_item(const struct hl_item *it)
{
	int ret = validate_common(it);
	if (ret < 0)
		return ret;
	switch (it->kind) {
	case HL_ITEM_MESSAGE: return validate_message(it);
	case HL_ITEM_RECEIPT: return validate_receipt(it);
	case HL_ITEM_CHECK: return validate_check(it);
	case HL_ITEM_ANSWER: return validate_answer(it);
	case HL_ITEM_AGREEMENT: return validate_agreement(it);
	case HL_ITEM_COUNTERSIGN: return validate_countersign(it);
	case HL_ITEM_CALL: {
		const char *why = hl_item_call_validate(&it->u.call);
		return why ? bad(it, HL_EINVAL, why) : 0;
	}
	case HL_ITEM_ROTATION: return validate_rotation(it);
	}
	return bad(it, HL_EINVAL, "an unknown kind");
}

/* Everything before the signature. */
static void write_unsigned(struct hl_wbuf *w, const struct hl_item *it)
{
	const char *ctx = kind_context(it->kind);
	hl_w_bytes(w, ctx, strlen(ctx) + 1);
	hl_w_bytes(w, it->author, 32);
	hl_w_bytes(w, it->counterpart, 32);
	hl_w_u64(w, it->seq);
	hl_w_bytes(w, it->prev, HL_HASH_LEN);
	hl_w_u64(w, it->time_ms);
	if (it->kind == HL_ITEM_MESSAGE) {
		const struct hl_item_message *m = &it->u.msg;
		hl_w_bytes(w, m->id, HL_MSG_ID_LEN);
		hl_w_u8(w, m->precedence);
		hl_w_u64(w, m->class_seq);
		hl_w_bytes(w, m->subject_hash, HL_HASH_LEN);
		hl_w_bytes(w, m->body_hash, HL_HASH_LEN);
		hl_w_u64(w, m->body_size);
		hl_w_u8(w, m->n_attachments);
		for (unsigned i = 0; i < m->n_attachments; i++) {
			hl_w_u8(w, m->att[i].name_len);
			hl_w_bytes(w, m->att[i].name, m->att[i].name_len);
			hl_w_u64(w, m->att[i].size);
			hl_w_bytes(w, m->att[i].hash, HL_HASH_LEN);
		}
	} else if (it->kind == HL_ITEM_RECEIPT) {
		const struct hl_item_receipt *r = &it->u.rcpt;
		hl_w_u64(w, r->peer_seq);
		hl_w_bytes(w, r->peer_hash, HL_HASH_LEN);
		hl_w_u16(w, r->count);
		for (unsigned i = 0; i < r->count; i++) {
			hl_w_u64(w, r->entries[i].seq);
			hl_w_bytes(w, r->entries[i].hash, HL_HASH_LEN);
		}
	} else if (it->kind == HL_ITEM_CHECK) {
		const struct hl_item_check *c = &it->u.chk;
		hl_w_bytes(w, c->id, HL_CHECK_ID_LEN);
		hl_w_u8(w, c->mode);
		hl_w_u8(w, c->link);
		hl_w_u32(w, c->timeout_ms);
		hl_w_u64(w, c->peer_seq);
		hl_w_bytes(w, c->peer_hash, HL_HASH_LEN);
	} else if (it->kind == HL_ITEM_ANSWER) {
		const struct hl_item_answer *a = &it->u.ans;
		hl_w_u64(w, a->check_seq);
		hl_w_bytes(w, a->check_hash, HL_HASH_LEN);
		hl_w_u8(w, a->by);
		hl_w_u64(w, a->peer_seq);
		hl_w_bytes(w, a->peer_hash, HL_HASH_LEN);
	} else if (it->kind == HL_ITEM_AGREEMENT) {
		const struct hl_item_agreement *g = &it->u.agr;
		hl_w_u8(w, g->name_len);
		hl_w_bytes(w, g->name, g->name_len);
		hl_w_u64(w, g->size);
		hl_w_bytes(w, g->doc_hash, HL_HASH_LEN);
		hl_w_bytes(w, g->msg_id, HL_MSG_ID_LEN);
	} else if (it->kind == HL_ITEM_CALL) {
		hl_item_call_write(w, &it->u.call);
	} else if (it->kind == HL_ITEM_ROTATION) {
		const struct hl_item_rotation *r = &it->u.rot;
		hl_w_bytes(w, r->noise_key, 32);
		hl_w_bytes(w, r->signing_key, 32);
		hl_w_bytes(w, r->next_hash, HL_HASH_LEN);
		hl_w_u8(w, r->reason);
		hl_w_bytes(w, r->new_sig, HL_SIG_LEN);
	} else {
		const struct hl_item_countersign *c = &it->u.csig;
		hl_w_u64(w, c->proposal_seq);
		hl_w_bytes(w, c->agreement_id, HL_HASH_LEN);
		hl_w_bytes(w, c->doc_hash, HL_HASH_LEN);
	}
}

/* Encodes IT with the signature field as given; MAX_CAP bounds OUT. */
static int encode(const struct hl_item *it, uint8_t *out, size_t cap, size_t *len)
{
	int ret = validate_item(it);
	if (ret < 0)
		return ret;
	struct hl_wbuf w;
	hl_wbuf_init(&w, out, cap < HL_ITEM_MAX ? cap : HL_ITEM_MAX);
	write_unsigned(&w, it);
	hl_w_bytes(&w, it->sig, HL_SIG_LEN);
	if (w.err)
		return HL_ETOOBIG;
	*len = w.len;
	return 0;
}

int hl_item_encode(const struct hl_item *it, uint8_t *out, size_t cap, size_t *len)
{
	return encode(it, out, cap, len);
}

_Static_assert(HL_ITEM_MAX <= HL_SIGNER_MSG_MAX, "the signer takes every item");

/* A rotation's new_sig, in the item's encoding at OUT (LEN bytes, its
 * new_sig field the 64 bytes before the signature): the new key signs
 * HL_CTX_ROTATION_NEW, its NUL, and the bytes before new_sig. */
#define ROT_NEW_CTX_LEN (sizeof(HL_CTX_ROTATION_NEW))
#define ROT_MSG_MAX 512 /* a rotation item is 359 bytes */

/* The message the new key signs into MSG (ROT_MSG_MAX): its length, or 0
 * when LEN cannot be a rotation's. */
static size_t rotation_msg(const uint8_t *buf, size_t len, uint8_t msg[static ROT_MSG_MAX])
{
	if (len < 2 * HL_SIG_LEN || len - 2 * HL_SIG_LEN + ROT_NEW_CTX_LEN > ROT_MSG_MAX)
		return 0;
	size_t body = len - 2 * HL_SIG_LEN;
	memcpy(msg, HL_CTX_ROTATION_NEW, ROT_NEW_CTX_LEN);
	memcpy(msg + ROT_NEW_CTX_LEN, buf, body);
	return ROT_NEW_CTX_LEN + body;
}

int hl_item_sign_rotation_new(struct hl_item *it, const hl_signer *signer, uint8_t *out,
			      size_t len)
{
	uint8_t msg[ROT_MSG_MAX];
	size_t n = rotation_msg(out, len, msg);
	if (n == 0)
		return HL_EINVAL;
	int ret = hl_signer_sign(signer, HL_CTX_ROTATION_NEW, msg, n, it->u.rot.new_sig);
	if (ret == 0)
		memcpy(out + len - 2 * HL_SIG_LEN, it->u.rot.new_sig, HL_SIG_LEN);
	return ret;
}

bool hl_item_rotation_sig_ok(const uint8_t *buf, size_t len, const struct hl_item *it)
{
	uint8_t msg[ROT_MSG_MAX];
	size_t n = it->kind == HL_ITEM_ROTATION ? rotation_msg(buf, len, msg) : 0;
	return n > 0 && crypto_sign_verify_detached(it->u.rot.new_sig, msg, n,
						    it->u.rot.signing_key) == 0;
}

int hl_item_encode_sign(struct hl_item *it, const hl_signer *signer,
			uint8_t *out, size_t cap, size_t *len)
{
	int ret = encode(it, out, cap, len);
	if (ret < 0)
		return ret;
	/* A rotation: first the new key, over the item up to new_sig (so the
	 * old key's signature below covers the new one's). */
	if (it->kind == HL_ITEM_ROTATION && (ret = hl_item_sign_rotation_new(it, signer, out, *len)) < 0)
		return ret;
	/* The signed bytes are the encoding up to the signature, which begins
	 * with the kind's context string and its NUL. */
	ret = hl_signer_sign(signer, kind_context(it->kind), out, *len - HL_SIG_LEN, it->sig);
	if (ret < 0)
		return ret;
	memcpy(out + *len - HL_SIG_LEN, it->sig, HL_SIG_LEN);
	return 0;
}

static int read_context(struct hl_rbuf *r, enum hl_item_kind *kind)
{
	const uint8_t *p = r->p + r->off;
	size_t left = hl_r_left(r);
	const uint8_t *nul = memchr(p, 0, left < 64 ? left : 64);
	if (!nul)
		return HL_EINVAL; /* the caller names it */
	size_t n = (size_t)(nul - p);
	for (size_t i = 0; i < NKINDS; i++) {
		if (strlen(kinds[i].ctx) == n && memcmp(kinds[i].ctx, p, n) == 0) {
			*kind = kinds[i].kind;
			hl_r_take(r, n + 1);
			return 0;
		}
	}
	return HL_EUNSUPP;
}

int hl_item_decode(const uint8_t *buf, size_t len, struct hl_item *it)
{
	struct hl_rbuf r;
	int ret;
	memset(it, 0, sizeof(*it));
	if (len > HL_ITEM_MAX)
		return bad(it, HL_ETOOBIG, "longer than 16,384 bytes");
	hl_rbuf_init(&r, buf, len);
	if ((ret = read_context(&r, &it->kind)) < 0)
		return bad(it, ret, ret == HL_EUNSUPP ? "an unknown context string"
						      : "no context string (no NUL in 64 bytes)");
	hl_r_bytes(&r, it->author, 32);
	hl_r_bytes(&r, it->counterpart, 32);
	it->seq = hl_r_u64(&r);
	hl_r_bytes(&r, it->prev, HL_HASH_LEN);
	it->time_ms = hl_r_u64(&r);
	if (it->kind == HL_ITEM_MESSAGE) {
		struct hl_item_message *m = &it->u.msg;
		hl_r_bytes(&r, m->id, HL_MSG_ID_LEN);
		m->precedence = hl_r_u8(&r);
		m->class_seq = hl_r_u64(&r);
		hl_r_bytes(&r, m->subject_hash, HL_HASH_LEN);
		hl_r_bytes(&r, m->body_hash, HL_HASH_LEN);
		m->body_size = hl_r_u64(&r);
		m->n_attachments = hl_r_u8(&r);
		if (m->n_attachments > HL_MAX_ATTACHMENTS)
			return bad(it, HL_EINVAL, "more than 64 attachments");
		for (unsigned i = 0; i < m->n_attachments; i++) {
			m->att[i].name_len = hl_r_u8(&r);
			m->att[i].name = hl_r_take(&r, m->att[i].name_len);
			m->att[i].size = hl_r_u64(&r);
			hl_r_bytes(&r, m->att[i].hash, HL_HASH_LEN);
			if (r.err)
				return bad(it, HL_ETRUNC, "a field runs past the end");
		}
	} else if (it->kind == HL_ITEM_RECEIPT) {
		struct hl_item_receipt *rc = &it->u.rcpt;
		rc->peer_seq = hl_r_u64(&r);
		hl_r_bytes(&r, rc->peer_hash, HL_HASH_LEN);
		rc->count = hl_r_u16(&r);
		if (rc->count > HL_MAX_RECEIPT_ENTRIES)
			return bad(it, HL_EINVAL, "a receipt count outside 1..256");
		for (unsigned i = 0; i < rc->count; i++) {
			rc->entries[i].seq = hl_r_u64(&r);
			hl_r_bytes(&r, rc->entries[i].hash, HL_HASH_LEN);
		}
	} else if (it->kind == HL_ITEM_CHECK) {
		struct hl_item_check *c = &it->u.chk;
		hl_r_bytes(&r, c->id, HL_CHECK_ID_LEN);
		c->mode = hl_r_u8(&r);
		c->link = hl_r_u8(&r);
		c->timeout_ms = hl_r_u32(&r);
		c->peer_seq = hl_r_u64(&r);
		hl_r_bytes(&r, c->peer_hash, HL_HASH_LEN);
	} else if (it->kind == HL_ITEM_ANSWER) {
		struct hl_item_answer *a = &it->u.ans;
		a->check_seq = hl_r_u64(&r);
		hl_r_bytes(&r, a->check_hash, HL_HASH_LEN);
		a->by = hl_r_u8(&r);
		a->peer_seq = hl_r_u64(&r);
		hl_r_bytes(&r, a->peer_hash, HL_HASH_LEN);
	} else if (it->kind == HL_ITEM_AGREEMENT) {
		struct hl_item_agreement *g = &it->u.agr;
		g->name_len = hl_r_u8(&r);
		g->name = hl_r_take(&r, g->name_len);
		g->size = hl_r_u64(&r);
		hl_r_bytes(&r, g->doc_hash, HL_HASH_LEN);
		hl_r_bytes(&r, g->msg_id, HL_MSG_ID_LEN);
	} else if (it->kind == HL_ITEM_CALL) {
		hl_item_call_read(&r, &it->u.call);
	} else if (it->kind == HL_ITEM_ROTATION) {
		struct hl_item_rotation *rot = &it->u.rot;
		hl_r_bytes(&r, rot->noise_key, 32);
		hl_r_bytes(&r, rot->signing_key, 32);
		hl_r_bytes(&r, rot->next_hash, HL_HASH_LEN);
		rot->reason = hl_r_u8(&r);
		hl_r_bytes(&r, rot->new_sig, HL_SIG_LEN);
	} else {
		struct hl_item_countersign *c = &it->u.csig;
		c->proposal_seq = hl_r_u64(&r);
		hl_r_bytes(&r, c->agreement_id, HL_HASH_LEN);
		hl_r_bytes(&r, c->doc_hash, HL_HASH_LEN);
	}
	hl_r_bytes(&r, it->sig, HL_SIG_LEN);
	if (r.err)
		return bad(it, HL_ETRUNC, "a field runs past the end");
	if (hl_r_left(&r) != 0)
		return bad(it, HL_EINVAL, "bytes left over after the signature");
	return validate_item(it);
}

int hl_item_peek_seq(const uint8_t *buf, size_t len, uint64_t *seq)
{
	struct hl_rbuf r;
	if (len > HL_ITEM_MAX)
		return HL_ETOOBIG;
	const uint8_t *nul = memchr(buf, 0, len < 64 ? len : 64);
	if (!nul)
		return HL_EINVAL;
	hl_rbuf_init(&r, buf, len);
	hl_r_take(&r, (size_t)(nul - buf) + 1 + 64);
	*seq = hl_r_u64(&r);
	if (r.err || *seq == 0 || len < HL_SIG_LEN)
		return HL_ETRUNC;
	return 0;
}

/* hl_item_open, with the signature's verdict given (SIG_OK) or, when
 * NULL, checked here with KEY (NULL: the author's). */
static int open_item(const uint8_t *buf, size_t len, const uint8_t *author,
		     const uint8_t *counterpart, const uint8_t *key, const bool *sig_ok,
		     struct hl_item *it)
{
	int ret = hl_item_decode(buf, len, it);
	if (ret < 0)
		return ret;
	if ((author && sodium_memcmp(author, it->author, 32) != 0) ||
	    (counterpart && sodium_memcmp(counterpart, it->counterpart, 32) != 0))
		return HL_EPEER;
	if (sig_ok ? !*sig_ok
		   : crypto_sign_verify_detached(it->sig, buf, len - HL_SIG_LEN,
						 key ? key : it->author) != 0)
		return HL_EAUTH;
	if (it->kind == HL_ITEM_ROTATION && !hl_item_rotation_sig_ok(buf, len, it))
		return bad(it, HL_EAUTH, "the rotation's signature by its new key does not verify");
	return 0;
}

int hl_item_open(const uint8_t *buf, size_t len, const uint8_t *author,
		 const uint8_t *counterpart, struct hl_item *it)
{
	return open_item(buf, len, author, counterpart, NULL, NULL, it);
}

int hl_item_open_key(const uint8_t *buf, size_t len, const uint8_t *author,
		     const uint8_t *counterpart, const uint8_t *key, struct hl_item *it)
{
	return open_item(buf, len, author, counterpart, key, NULL, it);
}

bool hl_item_sig_ok(const uint8_t *buf, size_t len, const uint8_t key[static 32])
{
	return len > HL_SIG_LEN && len <= HL_ITEM_MAX &&
	       crypto_sign_verify_detached(buf + len - HL_SIG_LEN, buf, len - HL_SIG_LEN,
					   key) == 0;
}

int hl_item_open_with_verdict(const uint8_t *buf, size_t len, const uint8_t *author,
			 const uint8_t *counterpart, bool sig_ok, struct hl_item *it)
{
	return open_item(buf, len, author, counterpart, NULL, &sig_ok, it);
}

void hl_item_hash(const uint8_t *buf, size_t len, uint8_t out[static HL_HASH_LEN])
{
	crypto_generichash(out, HL_HASH_LEN, buf, len, NULL, 0);
}

static void salted_init(crypto_generichash_state *st, const uint8_t salt[static HL_SALT_LEN],
			const char *label)
{
	crypto_generichash_init(st, salt, HL_SALT_LEN, HL_HASH_LEN);
	crypto_generichash_update(st, (const uint8_t *)label, strlen(label) + 1);
}

void hl_salted_hash(const uint8_t salt[static HL_SALT_LEN], const char *label,
		    const uint8_t *data, size_t len, uint8_t out[static HL_HASH_LEN])
{
	crypto_generichash_state st;
	salted_init(&st, salt, label);
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, out, HL_HASH_LEN);
}

void hl_doc_hash(const uint8_t *data, size_t len, uint8_t out[static HL_HASH_LEN])
{
	hl_sha256(data, len, out);
}

void hl_parthash_body(hl_parthash *h, const uint8_t salt[static HL_SALT_LEN])
{
	h->body = true;
	salted_init(&h->u.body, salt, HL_LABEL_BODY);
}

void hl_parthash_doc(hl_parthash *h)
{
	h->body = false;
	hl_sha256_init(&h->u.doc);
}

void hl_parthash_update(hl_parthash *h, const uint8_t *data, size_t len)
{
	if (h->body)
		crypto_generichash_update(&h->u.body, data, len);
	else
		hl_sha256_update(&h->u.doc, data, len);
}

void hl_parthash_final(hl_parthash *h, uint8_t out[static HL_HASH_LEN])
{
	if (h->body)
		crypto_generichash_final(&h->u.body, out, HL_HASH_LEN);
	else
		hl_sha256_final(&h->u.doc, out);
	sodium_memzero(h, sizeof(*h));
}
