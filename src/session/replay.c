/* session/replay.c — message 1's timestamp and the memory that refuses
 * replays (interface and rules in replay.h; docs/protocol.md section 2.1). */
#include "session/replay.h"

#include <sodium.h>
#include <string.h>

#include "util/err.h"
#include "util/mem.h"

#define TAI64_UNIX_EPOCH (((uint64_t)1 << 62) + 10)
#define NS_PER_S 1000000000u
#define STAMP_ROUND ((uint32_t)1 << 24)   /* nanoseconds dropped from our own stamps */

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	for (int i = 3; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

void hl_stamp_from_unix_ns(uint64_t unix_ns, struct hl_stamp *out)
{
	uint32_t ns = (uint32_t)(unix_ns % NS_PER_S);
	put_be64(out->b, TAI64_UNIX_EPOCH + unix_ns / NS_PER_S);
	put_be32(out->b + 8, ns - ns % STAMP_ROUND);
}

int hl_stamp_cmp(const struct hl_stamp *a, const struct hl_stamp *b)
{
	return memcmp(a->b, b->b, HL_TAI64N_LEN);
}

uint64_t hl_stamp_unix_ns(const struct hl_stamp *s)
{
	uint64_t label = get_be64(s->b);
	if (label < TAI64_UNIX_EPOCH)
		return 0;
	uint64_t secs = label - TAI64_UNIX_EPOCH;
	if (secs >= UINT64_MAX / NS_PER_S)
		return UINT64_MAX;   /* a peer's absurd timestamp: saturate */
	return secs * NS_PER_S + get_be32(s->b + 8);
}

void hl_stamp_next(struct hl_stamp *last, uint64_t unix_ns, struct hl_stamp *out)
{
	struct hl_stamp now;
	hl_stamp_from_unix_ns(unix_ns, &now);
	if (hl_stamp_cmp(&now, last) <= 0) {
		/* One nanosecond after the last: carry into the seconds. */
		uint64_t label = get_be64(last->b);
		uint32_t ns = get_be32(last->b + 8) + 1;
		if (ns >= NS_PER_S) {
			ns = 0;
			label++;
		}
		put_be64(now.b, label);
		put_be32(now.b + 8, ns);
	}
	*last = now;
	*out = now;
}

int hl_msg1_payload_decode(const uint8_t *buf, size_t len, struct hl_stamp *out, bool *has)
{
	*has = false;
	if (len == 0)
		return 0;
	if (len < HL_TAI64N_LEN)
		return HL_ETRUNC;
	if (len > HL_MSG1_PAYLOAD_MAX)
		return HL_ETOOBIG;
	/* TAI64 labels of 2^63 and above are reserved; nanoseconds are < 10^9. */
	if ((buf[0] & 0x80) || get_be32(buf + 8) >= NS_PER_S)
		return HL_EINVAL;
	memcpy(out->b, buf, HL_TAI64N_LEN);
	*has = true;
	return 0;
}

int hl_replay_window_accept(struct hl_replay_window *w, const struct hl_stamp *stamp)
{
	if (w->any && hl_stamp_cmp(stamp, &w->greatest) <= 0)
		return HL_EREPLAY;
	w->greatest = *stamp;
	w->any = true;
	return 0;
}

/* ---- the cache of ephemeral keys ----
 *
 * Set-associative: a key's keyed hash picks one set of WAYS entries; a new
 * key takes the place of the oldest entry of its set.  Lookups and inserts
 * touch one set, and nothing needs deleting. */

#define WAYS 8
#define DIGEST_LEN 16

struct set {
	uint8_t digest[WAYS][DIGEST_LEN];
	uint8_t used;       /* entries filled so far (up to WAYS) */
	uint8_t next;       /* the oldest entry: replaced next */
};

struct hl_replay_cache {
	uint8_t key[crypto_generichash_KEYBYTES];
	size_t nsets;       /* a power of two */
	struct set *sets;
};

static struct set *set_of(const hl_replay_cache *c, const uint8_t e[static 32],
			  uint8_t digest[static DIGEST_LEN])
{
	crypto_generichash(digest, DIGEST_LEN, e, 32, c->key, sizeof(c->key));
	uint64_t h = get_be64(digest);
	return &c->sets[h & (c->nsets - 1)];
}

hl_replay_cache *hl_replay_cache_new(size_t n)
{
	hl_replay_cache *c = xcalloc(1, sizeof(*c));
	c->nsets = 1;
	while (c->nsets * WAYS < n)
		c->nsets *= 2;
	c->sets = xcalloc(c->nsets, sizeof(*c->sets));
	randombytes_buf(c->key, sizeof(c->key));
	return c;
}

void hl_replay_cache_free(hl_replay_cache *c)
{
	if (!c)
		return;
	free(c->sets);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

static bool set_has(const struct set *s, const uint8_t digest[static DIGEST_LEN])
{
	for (unsigned i = 0; i < s->used; i++)
		if (memcmp(s->digest[i], digest, DIGEST_LEN) == 0)
			return true;
	return false;
}

bool hl_replay_cache_seen(const hl_replay_cache *c, const uint8_t e[static 32])
{
	uint8_t digest[DIGEST_LEN];
	const struct set *s = set_of(c, e, digest);
	return set_has(s, digest);
}

void hl_replay_cache_add(hl_replay_cache *c, const uint8_t e[static 32])
{
	uint8_t digest[DIGEST_LEN];
	struct set *s = set_of(c, e, digest);
	if (set_has(s, digest))
		return;
	if (s->used < WAYS) {
		memcpy(s->digest[s->used++], digest, DIGEST_LEN);
		return;
	}
	memcpy(s->digest[s->next], digest, DIGEST_LEN);
	s->next = (uint8_t)((s->next + 1) % WAYS);
}
