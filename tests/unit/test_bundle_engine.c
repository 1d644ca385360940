/* tests/unit/test_bundle_engine.c — the delivery engine's receive path used
 * with no link attached, as `bundle import` uses it: a message and its
 * parts stored through hl_engine_on_packet in one transaction, the receipt
 * authored in precommit, nothing sent; the same packets again store
 * nothing new; and a resend whose chunks overlap what is held (a bundle
 * cuts chunks from offset 0, a session may have stopped anywhere) keeps
 * only the new tail. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "deliver/engine.h"
#include "wire/msgproto.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/mem.h"
#include "wire/packet.h"

#define ATT_LEN 200000

static hl_signer *ida, *idb;
static char dir[64];
static hl_store *st;
static struct hl_txn txn;
static hl_peer_conf peer_a;
static uint8_t att[ATT_LEN];
static uint8_t item_rec[HL_PACKET_BODY_MAX];
static size_t item_rec_len;
static uint8_t msg_id[16];
static unsigned arrived;

static void on_event(void *user, const char *peer, const struct hl_engine_evinfo *ev)
{
	(void)user;
	(void)peer;
	if (ev->ev == HL_EV_ARRIVED)
		arrived++;
}

static void build_item(void)
{
	static const uint8_t name[] = "doc.bin";
	struct hl_item it;
	const char *subject = "s", *body = "body";
	struct hl_msg_content c = {
		.subject = (const uint8_t *)subject, .subject_len = 1, .inline_body = 1,
		.body = (const uint8_t *)body, .body_len = 4,
	};
	size_t len, clen;
	randombytes_buf(c.salt, sizeof(c.salt));
	memset(&it, 0, sizeof(it));
	it.kind = HL_ITEM_MESSAGE;
	memcpy(it.author, hl_signer_sign_pk(ida), 32);
	memcpy(it.counterpart, hl_signer_sign_pk(idb), 32);
	it.seq = 1;
	randombytes_buf(msg_id, sizeof(msg_id));
	memcpy(it.u.msg.id, msg_id, 16);
	it.u.msg.class_seq = 1;
	hl_salted_hash(c.salt, HL_LABEL_SUBJECT, c.subject, 1, it.u.msg.subject_hash);
	hl_salted_hash(c.salt, HL_LABEL_BODY, c.body, 4, it.u.msg.body_hash);
	it.u.msg.body_size = 4;
	it.u.msg.n_attachments = 1;
	it.u.msg.att[0].name = name;
	it.u.msg.att[0].name_len = sizeof(name) - 1;
	it.u.msg.att[0].size = ATT_LEN;
	hl_doc_hash(att, ATT_LEN, it.u.msg.att[0].hash);
	assert_int_equal(hl_item_encode_sign(&it, ida, item_rec + 2, HL_ITEM_MAX, &len), 0);
	item_rec[0] = (uint8_t)(len >> 8);
	item_rec[1] = (uint8_t)len;
	assert_int_equal(hl_msg_content_encode(&c, item_rec + 2 + len,
					       sizeof(item_rec) - 2 - len, &clen), 0);
	item_rec_len = 2 + len + clen;
}

static int feed_chunk(hl_engine *e, uint64_t off, size_t n)
{
	assert_true(n <= HL_PACKET_BODY_MAX - HL_CHUNK_HDR_LEN);
	static uint8_t rec[HL_PACKET_BODY_MAX];
	hl_pkt_chunk_header(1, 1, off, rec);
	memcpy(rec + HL_CHUNK_HDR_LEN, att + off, n);
	return hl_engine_on_packet(e, HL_PKT_CHUNK, rec, HL_CHUNK_HDR_LEN + n, 1000);
}

static hl_engine *engine(void)
{
	struct hl_engine_env env = { .dir = dir, .txn = &txn, .me = idb, .on_event = on_event };
	hl_engine *e;
	assert_int_equal(hl_engine_new(&e, &env, &peer_a), 0);
	return e;
}

static void commit(hl_engine *e)
{
	assert_int_equal(hl_txn_need(&txn), 0);
	assert_int_equal(hl_engine_precommit(e, 1000), 0);
	assert_int_equal(hl_store_commit(st), 0);
	txn.open = false;
	hl_engine_postcommit(e, 1000);   /* no link: sends nothing, must not crash */
}

static int count_in(void *arg, const struct hl_msg_row *row)
{
	(void)row;
	(*(unsigned *)arg)++;
	return 0;
}

static unsigned inbox_count(void)
{
	unsigned n = 0;
	struct hl_msg_filter f = { .dir = HL_DIR_IN, .visible_only = true };
	assert_int_equal(hl_store_each_message(st, &f, count_in, &n), 0);
	return n;
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0 || hl_signer_generate(&ida) < 0 || hl_signer_generate(&idb) < 0)
		return -1;
	randombytes_buf(att, sizeof(att));
	snprintf(dir, sizeof(dir), "/tmp/hl-bundle-engine-XXXXXX");
	if (!mkdtemp(dir) || hl_store_open(dir, &st) < 0)
		return -1;
	txn.store = st;
	snprintf(peer_a.name, sizeof(peer_a.name), "alpha");
	memcpy(peer_a.noise_key, hl_signer_noise_pub(ida), 32);
	memcpy(peer_a.signing_key, hl_signer_sign_pk(ida), 32);
	build_item();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hl_store_close(st);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	int r = system(cmd);
	free(cmd);
	hl_signer_free(ida);
	hl_signer_free(idb);
	return r == 0 ? 0 : -1;
}

static void test_detached_overlapping_resend(void **state)
{
	(void)state;
	hl_engine *e = engine();
	/* the item and the first 100000 bytes, committed */
	assert_int_equal(hl_engine_on_packet(e, HL_PKT_ITEM, item_rec, item_rec_len, 1000), 0);
	assert_int_equal(feed_chunk(e, 0, 60000), 0);
	assert_int_equal(feed_chunk(e, 60000, 40000), 0);
	commit(e);
	assert_int_equal(inbox_count(), 0);
	/* a resend cut differently: overlapping, then the rest */
	assert_int_equal(feed_chunk(e, 50000, 60000), 0);
	assert_int_equal(feed_chunk(e, 110000, 60000), 0);
	assert_int_equal(feed_chunk(e, 170000, ATT_LEN - 170000), 0);
	commit(e);
	assert_int_equal(arrived, 1);
	assert_int_equal(inbox_count(), 1);

	/* the receipt was authored, unacknowledged, for the next path */
	struct hl_chain_head head;
	int64_t pid;
	assert_int_equal(hl_store_peer_find(st, hl_signer_sign_pk(ida), &pid), 0);
	assert_int_equal(hl_store_chain_head(st, pid, HL_DIR_OUT, &head), 0);
	assert_int_equal(head.seq, 1);

	/* the file is the attachment, byte for byte */
	char idhex[33];
	hl_msg_id_hex(msg_id, idhex);
	char *path = xasprintf("%s/in/%s/0", dir, idhex);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	uint8_t *back = xmalloc(ATT_LEN + 1);
	assert_int_equal(fread(back, 1, ATT_LEN + 1, f), ATT_LEN);
	assert_memory_equal(back, att, ATT_LEN);
	fclose(f);
	free(back);
	free(path);
	hl_engine_free(e);

	/* everything again, with a fresh engine (a second import): nothing new */
	e = engine();
	arrived = 0;
	assert_int_equal(hl_engine_on_packet(e, HL_PKT_ITEM, item_rec, item_rec_len, 1000), 0);
	for (uint64_t off = 0; off < ATT_LEN; off += 65000)
		assert_int_equal(feed_chunk(e, off, ATT_LEN - off < 65000 ? ATT_LEN - off : 65000), 0);
	commit(e);
	assert_int_equal(arrived, 0);
	assert_int_equal(inbox_count(), 1);
	assert_int_equal(hl_store_chain_head(st, pid, HL_DIR_OUT, &head), 0);
	assert_int_equal(head.seq, 1);   /* no second receipt */
	hl_engine_free(e);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detached_overlapping_resend),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
