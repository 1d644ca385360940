/* holder/proto.c — the key holder's requests and answers as bytes (see
 * proto.h, docs/keyholder.md section 4).  Encoders and decoders mirror each
 * other field by field; every length is capped before it is used. */
#include "holder/proto.h"

#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"
#include "util/mem.h"

const char *hl_hold_type_name(int type)
{
	switch (type) {
	case HL_HOLD_KEYS: return "keys";
	case HL_HOLD_SIGN: return "sign";
	case HL_HOLD_DH: return "dh";
	case HL_HOLD_SEAL: return "seal";
	case HL_HOLD_PENDING: return "pending";
	case HL_HOLD_ROTATE: return "rotate";
	case HL_HOLD_DH_PREVIOUS: return "dh_previous";
	case HL_HOLD_SYNC: return "sync";
	default: return "?";
	}
}

size_t hl_hold_frame_len(const uint8_t hdr[static 4])
{
	size_t n = ((size_t)hdr[0] << 24) | ((size_t)hdr[1] << 16) | ((size_t)hdr[2] << 8) | hdr[3];
	return n > HL_HOLD_FRAME_MAX ? 0 : n;
}

void hl_hold_frame_hdr(size_t len, uint8_t hdr[static 4])
{
	hdr[0] = (uint8_t)(len >> 24);
	hdr[1] = (uint8_t)(len >> 16);
	hdr[2] = (uint8_t)(len >> 8);
	hdr[3] = (uint8_t)len;
}

/* ---- blobs: a 4-byte length and the bytes ---- */

static void take_blob(struct hl_rbuf *r, size_t max, struct hl_hold_blob *b, bool *too_big)
{
	uint32_t n = hl_r_u32(r);
	b->len = 0;
	b->p = NULL;
	if (n > max) {
		*too_big = true;
		r->err = true;
		return;
	}
	b->p = hl_r_take(r, n);
	b->len = b->p ? n : 0;
}

static void put_blob(struct hl_wbuf *w, const struct hl_hold_blob *b)
{
	hl_w_u32(w, (uint32_t)b->len);
	hl_w_bytes(w, b->p, b->len);
}

static size_t entries_size(const struct hl_hold_entry *e, size_t n)
{
	size_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += 8 + e[i].item.len + e[i].note.len;
	return s;
}

/* N entries (N read before), each an item of at most HL_ITEM_MAX bytes and
 * a note. */
static int take_entries(struct hl_rbuf *r, struct hl_hold_entry *e, size_t n, const char **why)
{
	bool big = false;
	for (size_t i = 0; i < n; i++) {
		take_blob(r, HL_ITEM_MAX, &e[i].item, &big);
		if (!r->err && e[i].item.len == 0) {
			*why = "an empty item";
			return HL_EINVAL;
		}
		take_blob(r, HL_HOLD_NOTE_MAX, &e[i].note, &big);
		if (r->err) {
			*why = big ? "an item or a note over its cap" : "an entry runs past the end";
			return big ? HL_ETOOBIG : HL_ETRUNC;
		}
	}
	return 0;
}

/* ---- requests ---- */

static int req_fields(struct hl_rbuf *r, struct hl_hold_request *req, const char **why)
{
	switch (req->type) {
	case HL_HOLD_KEYS:
	case HL_HOLD_ROTATE:
	case HL_HOLD_SYNC:
		return 0;
	case HL_HOLD_SIGN:
		req->u.sign.n = hl_r_u16(r);
		if (!r->err && (req->u.sign.n == 0 || req->u.sign.n > HL_HOLD_RUN_MAX)) {
			*why = "a run of 0 items or over 256";
			return HL_EINVAL;
		}
		return take_entries(r, req->u.sign.e, req->u.sign.n, why);
	case HL_HOLD_DH:
	case HL_HOLD_DH_PREVIOUS:
		hl_r_bytes(r, req->u.dh_pub, 32);
		return 0;
	case HL_HOLD_SEAL:
		hl_r_bytes(r, req->u.seal_hash, 32);
		return 0;
	case HL_HOLD_PENDING:
		hl_r_bytes(r, req->u.pending.peer, 32);
		req->u.pending.after = hl_r_u64(r);
		return 0;
	}
	*why = "an unknown request type";
	return HL_EINVAL;
}

int hl_hold_request_parse(const uint8_t *buf, size_t len, struct hl_hold_request *req,
			  const char **why)
{
	struct hl_rbuf r;
	int ret;
	*why = "";
	memset(req, 0, sizeof(*req));
	if (len > HL_HOLD_FRAME_MAX) {
		*why = "a request over the frame cap";
		return HL_ETOOBIG;
	}
	hl_rbuf_init(&r, buf, len);
	uint8_t version = hl_r_u8(&r);
	req->type = (enum hl_hold_type)hl_r_u8(&r);
	if (r.err) {
		*why = "a request shorter than its header";
		return HL_ETRUNC;
	}
	if (version != HL_HOLD_VERSION) {
		*why = "an unknown protocol version";
		return HL_EINVAL;
	}
	if ((ret = req_fields(&r, req, why)) < 0)
		return ret;
	if (r.err) {
		*why = "a request shorter than its fields";
		return HL_ETRUNC;
	}
	if (hl_r_left(&r) != 0) {
		*why = "bytes after the request's fields";
		return HL_EINVAL;
	}
	return 0;
}

static size_t req_size(const struct hl_hold_request *r)
{
	switch (r->type) {
	case HL_HOLD_SIGN:
		return 2 + 2 + entries_size(r->u.sign.e, r->u.sign.n);
	case HL_HOLD_DH:
	case HL_HOLD_DH_PREVIOUS:
	case HL_HOLD_SEAL:
		return 2 + 32;
	case HL_HOLD_PENDING:
		return 2 + 32 + 8;
	default:
		return 2;
	}
}

int hl_hold_request_encode(const struct hl_hold_request *r, uint8_t **out, size_t *len)
{
	size_t cap = req_size(r);
	struct hl_wbuf w;
	*out = NULL;
	if (cap > HL_HOLD_FRAME_MAX || (r->type == HL_HOLD_SIGN && r->u.sign.n > HL_HOLD_RUN_MAX))
		return HL_ETOOBIG;
	hl_wbuf_init(&w, xmalloc(cap), cap);
	hl_w_u8(&w, HL_HOLD_VERSION);
	hl_w_u8(&w, (uint8_t)r->type);
	switch (r->type) {
	case HL_HOLD_SIGN:
		hl_w_u16(&w, r->u.sign.n);
		for (size_t i = 0; i < r->u.sign.n; i++) {
			put_blob(&w, &r->u.sign.e[i].item);
			put_blob(&w, &r->u.sign.e[i].note);
		}
		break;
	case HL_HOLD_DH:
	case HL_HOLD_DH_PREVIOUS:
		hl_w_bytes(&w, r->u.dh_pub, 32);
		break;
	case HL_HOLD_SEAL:
		hl_w_bytes(&w, r->u.seal_hash, 32);
		break;
	case HL_HOLD_PENDING:
		hl_w_bytes(&w, r->u.pending.peer, 32);
		hl_w_u64(&w, r->u.pending.after);
		break;
	default:
		break;
	}
	*out = w.p;
	*len = w.len;
	return 0;
}

/* ---- answers ---- */

/* KEYS and ROTATE: 32 NoiseKey, 32 SigningKey, 1 flags (1: next keys,
 * 2: previous keys), 32 next-key hash, 32 previous NoiseKey, 32 previous
 * SigningKey, 8 when it rotated (the absent ones zero). */
#define KEYS_LEN (32 + 32 + 1 + 32 + 32 + 32 + 8)

static int take_keys(struct hl_rbuf *r, struct hl_signer_public *k)
{
	hl_r_bytes(r, k->noise_pub, 32);
	hl_r_bytes(r, k->sign_pk, 32);
	uint8_t flags = hl_r_u8(r);
	hl_r_bytes(r, k->next_hash, 32);
	hl_r_bytes(r, k->prev_noise, 32);
	hl_r_bytes(r, k->prev_sign, 32);
	k->rotated_at = (int64_t)hl_r_u64(r);
	k->has_next = flags & 1;
	k->has_prev = flags & 2;
	/* what is absent is zero, and a rotation has its time */
	if (flags > 3 || (!k->has_prev && k->rotated_at != 0) || (k->has_prev && k->rotated_at <= 0))
		return HL_EINVAL;
	return 0;
}

static void put_keys(struct hl_wbuf *w, const struct hl_signer_public *k)
{
	static const uint8_t zero[32];
	hl_w_bytes(w, k->noise_pub, 32);
	hl_w_bytes(w, k->sign_pk, 32);
	hl_w_u8(w, (uint8_t)((k->has_next ? 1 : 0) | (k->has_prev ? 2 : 0)));
	hl_w_bytes(w, k->has_next ? k->next_hash : zero, 32);
	hl_w_bytes(w, k->has_prev ? k->prev_noise : zero, 32);
	hl_w_bytes(w, k->has_prev ? k->prev_sign : zero, 32);
	hl_w_u64(w, k->has_prev ? (uint64_t)k->rotated_at : 0);
}

static int resp_ok_fields(struct hl_rbuf *r, struct hl_hold_response *resp)
{
	const char *why;
	switch (resp->type) {
	case HL_HOLD_KEYS:
	case HL_HOLD_ROTATE:
		return take_keys(r, &resp->u.keys);
	case HL_HOLD_SIGN:
		resp->u.sign.n = hl_r_u16(r);
		if (resp->u.sign.n > HL_HOLD_RUN_MAX)
			return HL_EINVAL;
		resp->u.sign.sigs = hl_r_take(r, (size_t)resp->u.sign.n * 64);
		resp->u.sign.m = hl_r_u16(r);
		if (resp->u.sign.m > resp->u.sign.n)
			return HL_EINVAL;
		resp->u.sign.new_sigs = hl_r_take(r, (size_t)resp->u.sign.m * 64);
		return 0;
	case HL_HOLD_DH:
	case HL_HOLD_DH_PREVIOUS:
		hl_r_bytes(r, resp->u.dh, 32);
		return 0;
	case HL_HOLD_SEAL:
		hl_r_bytes(r, resp->u.seal_sig, 64);
		return 0;
	case HL_HOLD_PENDING:
		resp->u.pending.head_seq = hl_r_u64(r);
		hl_r_bytes(r, resp->u.pending.head_hash, 32);
		resp->u.pending.n = hl_r_u16(r);
		if (resp->u.pending.n > HL_HOLD_RUN_MAX)
			return HL_EINVAL;
		return take_entries(r, resp->u.pending.e, resp->u.pending.n, &why);
	case HL_HOLD_SYNC:
		return 0;
	}
	return HL_EINVAL;
}

int hl_hold_response_parse(const uint8_t *buf, size_t len, enum hl_hold_type type,
			   struct hl_hold_response *resp)
{
	struct hl_rbuf r;
	bool big = false;
	int ret = 0;
	memset(resp, 0, sizeof(*resp));
	if (len > HL_HOLD_FRAME_MAX)
		return HL_ETOOBIG;
	hl_rbuf_init(&r, buf, len);
	uint8_t version = hl_r_u8(&r);
	resp->type = (enum hl_hold_type)hl_r_u8(&r);
	resp->status = (enum hl_hold_status)hl_r_u8(&r);
	if (r.err)
		return HL_ETRUNC;
	if (version != HL_HOLD_VERSION || resp->type != type)
		return HL_EINVAL;
	if (resp->status > HL_HOLD_FAILED)
		return HL_EINVAL;
	if (resp->status == HL_HOLD_OK) {
		ret = resp_ok_fields(&r, resp);
	} else {
		if (resp->status == HL_HOLD_REFUSED) {
			resp->u.refused.reason = hl_r_u8(&r);
			resp->u.refused.head_seq = hl_r_u64(&r);
			hl_r_bytes(&r, resp->u.refused.head_hash, 32);
		}
		take_blob(&r, HL_HOLD_TEXT_MAX, &resp->text, &big);
	}
	if (ret < 0)
		return ret;
	if (r.err)
		return big ? HL_ETOOBIG : HL_ETRUNC;
	return hl_r_left(&r) == 0 ? 0 : HL_EINVAL;
}

static size_t resp_size(const struct hl_hold_response *r)
{
	size_t text = 4 + (r->text.len > HL_HOLD_TEXT_MAX ? HL_HOLD_TEXT_MAX : r->text.len);
	if (r->status == HL_HOLD_REFUSED)
		return 3 + 1 + 8 + 32 + text;
	if (r->status != HL_HOLD_OK)
		return 3 + text;
	switch (r->type) {
	case HL_HOLD_KEYS:
	case HL_HOLD_ROTATE: return 3 + KEYS_LEN;
	case HL_HOLD_SIGN: return 3 + 2 + (size_t)r->u.sign.n * 64 + 2 + (size_t)r->u.sign.m * 64;
	case HL_HOLD_DH:
	case HL_HOLD_DH_PREVIOUS: return 3 + 32;
	case HL_HOLD_SEAL: return 3 + 64;
	case HL_HOLD_PENDING:
		return 3 + 8 + 32 + 2 + entries_size(r->u.pending.e, r->u.pending.n);
	case HL_HOLD_SYNC:
		return 3;
	}
	return 3;
}

static void put_ok_fields(struct hl_wbuf *w, const struct hl_hold_response *r)
{
	switch (r->type) {
	case HL_HOLD_KEYS:
	case HL_HOLD_ROTATE:
		put_keys(w, &r->u.keys);
		break;
	case HL_HOLD_SIGN:
		hl_w_u16(w, r->u.sign.n);
		hl_w_bytes(w, r->u.sign.sigs, (size_t)r->u.sign.n * 64);
		hl_w_u16(w, r->u.sign.m);
		hl_w_bytes(w, r->u.sign.new_sigs, (size_t)r->u.sign.m * 64);
		break;
	case HL_HOLD_DH:
	case HL_HOLD_DH_PREVIOUS:
		hl_w_bytes(w, r->u.dh, 32);
		break;
	case HL_HOLD_SEAL:
		hl_w_bytes(w, r->u.seal_sig, 64);
		break;
	case HL_HOLD_PENDING:
		hl_w_u64(w, r->u.pending.head_seq);
		hl_w_bytes(w, r->u.pending.head_hash, 32);
		hl_w_u16(w, r->u.pending.n);
		for (size_t i = 0; i < r->u.pending.n; i++) {
			put_blob(w, &r->u.pending.e[i].item);
			put_blob(w, &r->u.pending.e[i].note);
		}
		break;
	case HL_HOLD_SYNC:
		break;
	}
}

int hl_hold_response_encode(const struct hl_hold_response *r, uint8_t **out, size_t *len)
{
	size_t cap = resp_size(r);
	struct hl_wbuf w;
	*out = NULL;
	if (cap > HL_HOLD_FRAME_MAX)
		return HL_ETOOBIG;
	hl_wbuf_init(&w, xmalloc(cap), cap);
	hl_w_u8(&w, HL_HOLD_VERSION);
	hl_w_u8(&w, (uint8_t)r->type);
	hl_w_u8(&w, (uint8_t)r->status);
	if (r->status == HL_HOLD_OK) {
		put_ok_fields(&w, r);
	} else {
		struct hl_hold_blob t = r->text;
		if (t.len > HL_HOLD_TEXT_MAX)
			t.len = HL_HOLD_TEXT_MAX;
		if (r->status == HL_HOLD_REFUSED) {
			hl_w_u8(&w, r->u.refused.reason);
			hl_w_u64(&w, r->u.refused.head_seq);
			hl_w_bytes(&w, r->u.refused.head_hash, 32);
		}
		put_blob(&w, &t);
	}
	if (w.err) {
		free(w.p);
		return HL_ETOOBIG;
	}
	*out = w.p;
	*len = w.len;
	return 0;
}
