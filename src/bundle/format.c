/* bundle/format.c — the bundle header and the check of a bundle's
 * plaintext packet stream (format.h, docs/bundle.md). */
#include "bundle/format.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/msgproto.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/mem.h"
#include "wire/packet.h"

void hl_bundle_key_id(const uint8_t noise_pub[static 32], uint8_t id[static HL_BUNDLE_KEYID_LEN])
{
	uint8_t h[32];
	crypto_generichash(h, sizeof(h), noise_pub, 32, NULL, 0);
	memcpy(id, h, HL_BUNDLE_KEYID_LEN);
}

void hl_bundle_header(const uint8_t recipient_noise[static 32], uint8_t out[static HL_BUNDLE_HDR_LEN])
{
	memcpy(out, HL_BUNDLE_MAGIC, HL_BUNDLE_MAGIC_LEN);
	hl_bundle_key_id(recipient_noise, out + HL_BUNDLE_MAGIC_LEN);
}

int hl_bundle_header_parse(const uint8_t *buf, size_t len, uint8_t keyid[static HL_BUNDLE_KEYID_LEN])
{
	if (len < HL_BUNDLE_HDR_LEN)
		return HL_ETRUNC;
	if (memcmp(buf, HL_BUNDLE_MAGIC, HL_BUNDLE_MAGIC_LEN) != 0)
		return HL_EINVAL;
	memcpy(keyid, buf + HL_BUNDLE_MAGIC_LEN, HL_BUNDLE_KEYID_LEN);
	return 0;
}

static int fail(struct hl_bundle_validator *c, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int fail(struct hl_bundle_validator *c, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return code;
}

void hl_bundle_validator_init(struct hl_bundle_validator *c, const uint8_t author[static 32],
			  const uint8_t counterpart[static 32])
{
	memset(c, 0, sizeof(*c));
	memcpy(c->author, author, 32);
	memcpy(c->counterpart, counterpart, 32);
}

/* Moves to the next part that has bytes to come (empty attachments and an
 * inline body have none), and starts its hash. */
static void next_part(struct hl_bundle_validator *c)
{
	while (c->part < c->nparts && c->part_size[c->part] == 0)
		c->part++;
	c->offset = 0;
	if (c->part >= c->nparts)
		return;
	if (c->part_salted[c->part])
		hl_parthash_body(&c->hs, c->salt);
	else
		hl_parthash_doc(&c->hs);
}

/* The message before this point must have had all its parts. */
static int msg_whole(struct hl_bundle_validator *c)
{
	if (c->in_msg && c->part < c->nparts)
		return fail(c, HL_EINVAL, "message item %llu: part %u ends at byte %llu of %llu",
			    (unsigned long long)c->seq, c->part, (unsigned long long)c->offset,
			    (unsigned long long)c->part_size[c->part]);
	c->in_msg = false;
	return 0;
}

/* The key that signs the item in R (docs/rotation.md): after a rotation
 * earlier in the bundle, its new key; else the caller's key_at. */
static int item_key(struct hl_bundle_validator *c, const struct hl_pkt_item *r, uint8_t key[static 32])
{
	uint64_t seq;
	if (hl_item_peek_seq(r->item, r->item_len, &seq) < 0)
		return fail(c, HL_EINVAL, "record %llu: malformed item", (unsigned long long)c->packets);
	if (c->rot_seq && seq > c->rot_seq)
		memcpy(key, c->rot_key, 32);
	else if (!c->key_at)
		memcpy(key, c->author, 32);
	else if (c->key_at(c->key_arg, seq, key) < 0)
		return fail(c, HL_EINVAL, "record %llu: the keys of item %llu cannot be looked up",
			    (unsigned long long)c->packets, (unsigned long long)seq);
	return 0;
}

static int check_item(struct hl_bundle_validator *c, const uint8_t *body, size_t len)
{
	struct hl_pkt_item r;
	struct hl_item it;
	uint8_t key[32];
	int ret = msg_whole(c);
	if (ret < 0)
		return ret;
	if (hl_pkt_item_decode(body, len, &r) < 0 || r.item_len > HL_ITEM_MAX)
		return fail(c, HL_EINVAL, "record %llu: malformed ITEM", (unsigned long long)c->packets);
	if ((ret = item_key(c, &r, key)) < 0)
		return ret;
	ret = hl_item_open_key(r.item, r.item_len, c->author, c->counterpart, key, &it);
	if (ret == HL_EAUTH)
		return fail(c, HL_EAUTH, "record %llu: an item whose signature does not verify",
			    (unsigned long long)c->packets);
	if (ret == HL_EPEER)
		return fail(c, HL_EAUTH, "record %llu: an item not from the sender to this station",
			    (unsigned long long)c->packets);
	if (ret < 0)
		return fail(c, HL_EINVAL, "record %llu: malformed item", (unsigned long long)c->packets);
	c->items++;
	if (it.kind == HL_ITEM_ROTATION && it.seq > c->rot_seq) {
		c->rot_seq = it.seq;
		memcpy(c->rot_key, it.u.rot.signing_key, 32);
	}
	if (it.kind != HL_ITEM_MESSAGE) {
		if (r.rest_len)
			return fail(c, HL_EINVAL, "item %llu: bytes after a %s item",
				    (unsigned long long)it.seq, hl_item_kind_name(it.kind));
		return 0;
	}
	struct hl_msg_content mc;
	if (hl_msg_content_decode(r.rest, r.rest_len, &mc) < 0)
		return fail(c, HL_EINVAL, "message item %llu: malformed content",
			    (unsigned long long)it.seq);
	if (hl_msg_content_verify(&it.u.msg, &mc) < 0)
		return fail(c, HL_EAUTH, "message item %llu: subject or body does not match its hash",
			    (unsigned long long)it.seq);
	c->messages++;
	c->in_msg = true;
	c->seq = it.seq;
	c->nparts = 1u + it.u.msg.n_attachments;
	memcpy(c->salt, mc.salt, HL_SALT_LEN);
	c->part_size[0] = mc.inline_body ? 0 : it.u.msg.body_size;
	memcpy(c->part_hash[0], it.u.msg.body_hash, HL_HASH_LEN);
	c->part_salted[0] = true;
	for (unsigned i = 0; i < it.u.msg.n_attachments; i++) {
		c->part_size[i + 1] = it.u.msg.att[i].size;
		memcpy(c->part_hash[i + 1], it.u.msg.att[i].hash, HL_HASH_LEN);
		c->part_salted[i + 1] = false;
	}
	c->part = 0;
	next_part(c);
	return 0;
}

static int check_chunk(struct hl_bundle_validator *c, const uint8_t *body, size_t len)
{
	struct hl_pkt_chunk k;
	if (hl_pkt_chunk_decode(body, len, &k) < 0)
		return fail(c, HL_EINVAL, "record %llu: malformed CHUNK", (unsigned long long)c->packets);
	if (!c->in_msg || k.seq != c->seq || k.part != c->part || c->part >= c->nparts ||
	    k.offset != c->offset)
		return fail(c, HL_EINVAL, "record %llu: CHUNK of item %llu part %u at %llu out of order",
			    (unsigned long long)c->packets, (unsigned long long)k.seq, k.part,
			    (unsigned long long)k.offset);
	if (k.data_len > c->part_size[c->part] - c->offset)
		return fail(c, HL_EINVAL, "item %llu part %u: more bytes than its size",
			    (unsigned long long)k.seq, k.part);
	c->chunks++;
	hl_parthash_update(&c->hs, k.data, k.data_len);
	c->offset += k.data_len;
	if (c->offset == c->part_size[c->part]) {
		uint8_t h[HL_HASH_LEN];
		hl_parthash_final(&c->hs, h);
		if (sodium_memcmp(h, c->part_hash[c->part], HL_HASH_LEN) != 0)
			return fail(c, HL_EAUTH, "item %llu part %u does not match its signed hash",
				    (unsigned long long)k.seq, k.part);
		c->part++;
		next_part(c);
	}
	return 0;
}

int hl_bundle_validate_packet(struct hl_bundle_validator *c, const uint8_t *rec, size_t len)
{
	struct hl_packet r;
	int ret;
	if (c->ended)
		return fail(c, HL_EINVAL, "data after the end record");
	if (c->packets >= HL_BUNDLE_MAX_PACKETS)
		return fail(c, HL_ETOOBIG, "more than %llu records",
			    (unsigned long long)HL_BUNDLE_MAX_PACKETS);
	if (hl_packet_decode(rec, len, &r) < 0)
		return fail(c, HL_EINVAL, "record %llu: malformed or not version 1",
			    (unsigned long long)c->packets);
	switch (r.type) {
	case HL_PKT_ITEM:
		ret = check_item(c, r.body, r.body_len);
		break;
	case HL_PKT_CHUNK:
		ret = check_chunk(c, r.body, r.body_len);
		break;
	case HL_PKT_ACK: {
		struct hl_pkt_ack *a = xmalloc(sizeof(*a));
		ret = hl_pkt_ack_decode(r.body, r.body_len, a) == 0
			      ? 0 : fail(c, HL_EINVAL, "record %llu: malformed ACK",
					 (unsigned long long)c->packets);
		free(a);
		c->acks++;
		break;
	}
	case HL_PKT_BUNDLE_END: {
		if ((ret = msg_whole(c)) < 0)
			return ret;
		uint64_t n = 0;
		if (r.body_len != HL_BUNDLE_END_LEN)
			return fail(c, HL_EINVAL, "malformed end record");
		for (unsigned i = 0; i < 8; i++)
			n = n << 8 | r.body[i];
		if (n != c->packets)
			return fail(c, HL_EINVAL, "end record counts %llu records; %llu came",
				    (unsigned long long)n, (unsigned long long)c->packets);
		c->ended = true;
		return 0;
	}
	default:
		return fail(c, HL_EINVAL, "record %llu: type 0x%02x has no place in a bundle",
			    (unsigned long long)c->packets, r.type);
	}
	if (ret == 0)
		c->packets++;
	return ret;
}

int hl_bundle_validator_finish(struct hl_bundle_validator *c)
{
	if (!c->ended)
		return fail(c, HL_ETRUNC, "the bundle ends without its end record (truncated)");
	return 0;
}
