/* fuzz_holder.c — libFuzzer target for the key holder's requests
 * (holder/proto.c, holder/serve.c) and its journal (holder/heads.c).
 *
 * The first byte chooses: even, the rest is a request body, answered by a
 * holder with fixed keys whose in-memory journal already holds positions
 * 1 to 3 of a chain — with bit 1 set, a holder whose keys rotated once
 * (docs/rotation.md: fixed previous, current and next keys, read from an
 * identity text); odd, the rest is a journal image to replay.
 *
 * What must hold, whatever the bytes:
 *   - a request that parses encodes back to exactly its bytes;
 *   - every answer parses as an answer to its request's type;
 *   - an OK answer to SIGN signs only items of ours: each item, completed
 *     with its prev and the signature given, verifies with our key; and at
 *     positions 1 to 3 it is the very item signed there before (the holder
 *     never signs a second item at a signed position); a rotation item
 *     among them verifies with the key before the rotation and, by its
 *     new_sig, with the keys it announces, which are the ones committed to
 *     (the current keys of the rotated holder), committing to its next;
 *   - a journal's replay stops at the end of its whole records.
 *
 * Seeds: run the target with HOTLINE_FUZZ_SEEDS=DIR and it writes its seed
 * corpus (fuzz/corpus/fuzz_holder/) there, then exits. */
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "holder/heads.h"
#include "holder/proto.h"
#include "holder/serve.h"
#include "msg/item.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/text.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)
#define SIGNED 3

static const uint8_t X25519[32] = { 0x11, 0x11, 0x11 }, SEED[32] = { 0x22, 0x22, 0x22 };
/* the rotated holder's: current (the keys committed to) and next */
static const uint8_t X25519_1[32] = { 0x33, 0x33 }, SEED_1[32] = { 0x44, 0x44 };
static const uint8_t X25519_2[32] = { 0x55, 0x55 }, SEED_2[32] = { 0x66, 0x66 };
static uint8_t peer[32], our_pk[32];
/* [0] the holder as made, [1] the rotated one */
static struct hl_signer_public pub[2];
static uint8_t *setup_req[2][SIGNED];
static size_t setup_len[2][SIGNED];
static uint8_t signed_hash[2][SIGNED + 1][32]; /* [1..3] */

static void check_item(uint64_t seq, const uint8_t *prev, uint64_t t, struct hl_item *it)
{
	memset(it, 0, sizeof(*it));
	it->kind = HL_ITEM_CHECK;
	memcpy(it->author, our_pk, 32);
	memcpy(it->counterpart, peer, 32);
	it->seq = seq;
	if (prev)
		memcpy(it->prev, prev, 32);
	it->time_ms = t;
	it->u.chk.timeout_ms = 5000;
}

/* A SIGN request for the run IT[0..N). */
static void sign_req(struct hl_item *it, size_t n, uint8_t **out, size_t *len)
{
	struct hl_hold_request *q = xcalloc(1, sizeof(*q));
	uint8_t *enc = xmalloc(n * HL_ITEM_MAX);
	q->type = HL_HOLD_SIGN;
	q->u.sign.n = (uint16_t)n;
	for (size_t i = 0; i < n; i++) {
		size_t l;
		struct hl_item x = it[i];
		if (i > 0)
			memset(x.prev, 0, 32);
		CHECK(hl_item_encode(&x, enc + i * HL_ITEM_MAX, HL_ITEM_MAX, &l) == 0);
		q->u.sign.e[i].item = (struct hl_hold_blob){ enc + i * HL_ITEM_MAX, l };
		q->u.sign.e[i].note = (struct hl_hold_blob){ (const uint8_t *)"note", 4 };
	}
	CHECK(hl_hold_request_encode(q, out, len) == 0);
	free(enc);
	free(q);
}

/* "NAME = <base64 of KEY>\n" at the end of TEXT. */
static void key_line(char *text, const char *name, const uint8_t key[static 32])
{
	char b64[HL_KEY_B64_LEN];
	hl_b64_key(key, b64);
	snprintf(text + strlen(text), 1024 - strlen(text), "%s = %s\n", name, b64);
}

/* A holder over the keys of before (ROTATED 0) or after the rotation. */
static struct hl_holder *new_holder(int rotated)
{
	hl_signer *s;
	hl_heads *h;
	char err[100], text[1024] = "";
	if (!rotated) {
		CHECK(hl_signer_from_raw_for_tests(&s, X25519, SEED) == 0);
	} else {
		key_line(text, "NoisePrivateKey", X25519_1);
		key_line(text, "SigningPrivateKey", SEED_1);
		key_line(text, "NextNoisePrivateKey", X25519_2);
		key_line(text, "NextSigningPrivateKey", SEED_2);
		key_line(text, "PreviousNoisePrivateKey", X25519);
		key_line(text, "PreviousSigningPrivateKey", SEED);
		strcat(text, "RotatedAt = 1767225600000\n");
		CHECK(hl_signer_parse(text, strlen(text), &s) == 0);
	}
	CHECK(hl_heads_open(NULL, &h, err, sizeof(err)) == 0);
	return hl_holder_new(s, h);
}

/* Answers REQ; the parsed answer (its bytes in *BUF). */
static struct hl_hold_response answer(struct hl_holder *h, const uint8_t *req, size_t len,
				      enum hl_hold_type type, uint8_t **buf)
{
	struct hl_hold_response a;
	size_t rlen;
	hl_holder_answer(h, req, len, "fuzz", true, buf, &rlen);
	CHECK(hl_hold_response_parse(*buf, rlen, type, &a) == 0);
	return a;
}

/* Positions 1..3 signed, once, at start, by the holder R: their requests
 * and hashes; and its keys. */
static void make_setup(int r)
{
	struct hl_holder *h = new_holder(r);
	uint8_t *buf, prev[32] = { 0 };
	const uint8_t keys[2] = { HL_HOLD_VERSION, HL_HOLD_KEYS };
	struct hl_hold_response k = answer(h, keys, 2, HL_HOLD_KEYS, &buf);
	pub[r] = k.u.keys;
	free(buf);
	for (uint64_t s = 1; s <= SIGNED; s++) {
		struct hl_item it;
		uint8_t enc[HL_ITEM_MAX];
		size_t len;
		check_item(s, s > 1 ? prev : NULL, 1000 + s, &it);
		sign_req(&it, 1, &setup_req[r][s - 1], &setup_len[r][s - 1]);
		struct hl_hold_response a = answer(h, setup_req[r][s - 1], setup_len[r][s - 1],
						   HL_HOLD_SIGN, &buf);
		CHECK(a.status == HL_HOLD_OK);
		memcpy(it.sig, a.u.sign.sigs, 64);
		CHECK(hl_item_encode(&it, enc, sizeof(enc), &len) == 0);
		hl_item_hash(enc, len, signed_hash[r][s]);
		memcpy(prev, signed_hash[r][s], 32);
		free(buf);
	}
	hl_holder_free(h);
}

/* A rotation item of ours at position 4 of the rotated holder's chain, to
 * NOISE and SIGN, committing to NEXT. */
static void rotation_item(const uint8_t *noise, const uint8_t *sign, const uint8_t *next,
			  struct hl_item *it)
{
	check_item(4, signed_hash[1][3], 5000, it);
	memset(&it->u, 0, sizeof(it->u));
	it->kind = HL_ITEM_ROTATION;
	memcpy(it->u.rot.noise_key, noise, 32);
	memcpy(it->u.rot.signing_key, sign, 32);
	memcpy(it->u.rot.next_hash, next, 32);
}

static void write_seed(const char *dir, const char *name, uint8_t mode, const uint8_t *p,
		       size_t n)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	CHECK(f && fwrite(&mode, 1, 1, f) == 1 && fwrite(p, 1, n, f) == n && fclose(f) == 0);
}

static void write_seeds(const char *dir)
{
	struct hl_item it[2];
	uint8_t *req;
	size_t len;
	const uint8_t keys[2] = { HL_HOLD_VERSION, HL_HOLD_KEYS };
	uint8_t dh[34] = { HL_HOLD_VERSION, HL_HOLD_DH, 9 }, seal[34] = { HL_HOLD_VERSION,
									 HL_HOLD_SEAL };
	uint8_t pending[42] = { HL_HOLD_VERSION, HL_HOLD_PENDING };
	memcpy(pending + 2, peer, 32);
	write_seed(dir, "keys", 0, keys, 2);
	write_seed(dir, "dh", 0, dh, 34);
	write_seed(dir, "seal", 0, seal, 34);
	write_seed(dir, "pending", 0, pending, 42);
	write_seed(dir, "same_at_3", 0, setup_req[0][2], setup_len[0][2]);
	check_item(3, signed_hash[0][2], 9999, &it[0]);
	sign_req(it, 1, &req, &len);
	write_seed(dir, "other_at_3", 0, req, len);
	free(req);
	check_item(4, signed_hash[0][3], 5000, &it[0]);
	check_item(5, NULL, 5001, &it[1]);
	sign_req(it, 2, &req, &len);
	write_seed(dir, "run_4_5", 0, req, len);
	free(req);
	/* the rotated holder: its rotation item and a check after it, one to
	 * keys never committed to, the rotation asked, the previous key's DH */
	rotation_item(pub[1].noise_pub, pub[1].sign_pk, pub[1].next_hash, &it[0]);
	check_item(5, NULL, 5001, &it[1]);
	sign_req(it, 2, &req, &len);
	write_seed(dir, "rotation_4_5", 2, req, len);
	free(req);
	rotation_item(pub[0].noise_pub, pub[0].sign_pk, pub[1].next_hash, &it[0]);
	sign_req(it, 1, &req, &len);
	write_seed(dir, "rotation_uncommitted", 2, req, len);
	free(req);
	const uint8_t rotate[2] = { HL_HOLD_VERSION, HL_HOLD_ROTATE };
	const uint8_t sync[2] = { HL_HOLD_VERSION, HL_HOLD_SYNC };
	write_seed(dir, "sync", 0, sync, 2);
	uint8_t dh_prev[34] = { HL_HOLD_VERSION, HL_HOLD_DH_PREVIOUS, 9 };
	write_seed(dir, "rotate", 0, rotate, 2);
	write_seed(dir, "dh_previous", 2, dh_prev, 34);
	/* a journal: the heads of a file holder over the same three requests */
	char path[512];
	snprintf(path, sizeof(path), "%s/.journal", dir);
	hl_signer *s;
	hl_heads *h;
	char err[100], *img;
	CHECK(hl_signer_from_raw_for_tests(&s, X25519, SEED) == 0);
	remove(path);
	CHECK(hl_heads_open(path, &h, err, sizeof(err)) == 0);
	struct hl_holder *hd = hl_holder_new(s, h);
	for (int i = 0; i < SIGNED; i++) {
		uint8_t *buf;
		answer(hd, setup_req[0][i], setup_len[0][i], HL_HOLD_SIGN, &buf);
		free(buf);
	}
	hl_holder_free(hd);
	FILE *f = fopen(path, "rb");
	img = xmalloc(1 << 16);
	len = fread(img, 1, 1 << 16, f);
	fclose(f);
	remove(path);
	write_seed(dir, "journal", 1, (uint8_t *)img, len);
	free(img);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	hl_signer *s;
	CHECK(sodium_init() >= 0);
	hl_log_set_level(HL_LOG_ERROR); /* every refusal is a warning line */
	memset(peer, 0x42, 32);
	CHECK(hl_signer_from_raw_for_tests(&s, X25519, SEED) == 0);
	memcpy(our_pk, hl_signer_sign_pk(s), 32);
	hl_signer_free(s);
	make_setup(0);
	make_setup(1);
	CHECK(pub[1].has_prev && memcmp(pub[1].prev_sign, our_pk, 32) == 0);
	const char *seeds = getenv("HOTLINE_FUZZ_SEEDS");
	if (seeds) {
		write_seeds(seeds);
		exit(0);
	}
	return 0;
}

/* The oracle for an OK answer to SIGN from holder R (the top of this
 * file). */
static void check_signed(int r, const struct hl_hold_request *q, const struct hl_hold_response *a)
{
	uint8_t prev[32], enc[HL_ITEM_MAX];
	struct hl_item it, opened;
	size_t len, m = 0;
	CHECK(a->u.sign.n == q->u.sign.n);
	for (size_t i = 0; i < q->u.sign.n; i++) {
		CHECK(hl_item_decode(q->u.sign.e[i].item.p, q->u.sign.e[i].item.len, &it) == 0);
		bool rot = it.kind == HL_ITEM_ROTATION;
		if (i > 0)
			memcpy(it.prev, prev, 32);
		memcpy(it.sig, a->u.sign.sigs + 64 * i, 64);
		if (rot) {
			/* only the rotated holder, only to the keys committed to */
			CHECK(r == 1 && m < a->u.sign.m);
			CHECK(memcmp(it.u.rot.signing_key, pub[1].sign_pk, 32) == 0 &&
			      memcmp(it.u.rot.noise_key, pub[1].noise_pub, 32) == 0 &&
			      memcmp(it.u.rot.next_hash, pub[1].next_hash, 32) == 0);
			memcpy(it.u.rot.new_sig, a->u.sign.new_sigs + 64 * m++, 64);
		}
		CHECK(hl_item_encode(&it, enc, sizeof(enc), &len) == 0);
		CHECK(hl_item_open_key(enc, len, NULL, NULL, rot ? pub[r].prev_sign : pub[r].sign_pk,
				       &opened) == 0);
		hl_item_hash(enc, len, prev);
		if (memcmp(it.counterpart, peer, 32) == 0 && it.seq <= SIGNED)
			CHECK(memcmp(prev, signed_hash[r][it.seq], 32) == 0);
	}
	CHECK(m == a->u.sign.m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		hl_heads *h;
		char err[100];
		size_t good;
		CHECK(hl_heads_open(NULL, &h, err, sizeof(err)) == 0);
		if (hl_heads_replay(h, data + 1, size - 1, &good) == 0)
			CHECK(good <= size - 1);
		hl_heads_free(h);
		return 0;
	}
	int r = (data[0] >> 1) & 1;
	struct hl_holder *h = new_holder(r);
	struct hl_hold_request *q = xmalloc(sizeof(*q));
	uint8_t *buf, *again;
	size_t len;
	const char *why;
	for (int i = 0; i < SIGNED; i++) {
		answer(h, setup_req[r][i], setup_len[r][i], HL_HOLD_SIGN, &buf);
		free(buf);
	}
	int parsed = hl_hold_request_parse(data + 1, size - 1, q, &why);
	if (parsed == 0) {
		CHECK(hl_hold_request_encode(q, &again, &len) == 0);
		CHECK(len == size - 1 && memcmp(again, data + 1, len) == 0);
		free(again);
	}
	enum hl_hold_type type = parsed == 0 ? q->type : (size >= 3 ? data[2] : 0);
	struct hl_hold_response a = answer(h, data + 1, size - 1, type, &buf);
	if (parsed == 0 && q->type == HL_HOLD_SIGN && a.status == HL_HOLD_OK)
		check_signed(r, q, &a);
	free(buf);
	free(q);
	hl_holder_free(h);
	return 0;
}
