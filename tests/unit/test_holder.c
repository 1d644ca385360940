/* test_holder.c — the key holder's rules (holder/serve.c), its journal of
 * heads (holder/heads.c), its protocol (holder/proto.c) and the append path
 * that uses it (chain/ours.c, chain/adopt.c):
 *
 *   - an item is signed only as an item: arbitrary bytes, an item carrying
 *     a signature, one not in its one encoding, one of another author, a
 *     run over two chains: refused, and the holder answers the next request;
 *   - never two items at one position: a different item at a signed
 *     position, or one that does not follow the last signed, is refused,
 *     with the head in the answer; the same bytes again get the same
 *     signature; all of this survives reopening the journal from its file;
 *   - a torn last record is cut off, the records before it kept;
 *   - a run is chained by the holder, prev by prev;
 *   - an item signed and then lost by its asker's store is taken back,
 *     byte for byte, with its message text from the note, before anything
 *     new is signed; the journal's segments rotate past their size;
 *   - a key rotation (docs/rotation.md) is the holder's: its face takes the
 *     new keys, the previous key's face does the previous key's DH, the
 *     DHs remembered for pinned peers are forgotten (they were made with
 *     the old static key), a rotation item is signed only to the keys
 *     committed to, its new_sig by the new key and its signature by the
 *     old one. */
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "chain/ours.h"
#include "chain/queue.h"
#include "holder/client.h"
#include "holder/heads.h"
#include "holder/proc.h"
#include "holder/proto.h"
#include "holder/serve.h"
#include "msg/item.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

static char tmpdir[64];
static uint8_t peer_pk[32], other_pk[32];

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/hl-test-holder-XXXXXX");
	memset(peer_pk, 0x42, 32);
	memset(other_pk, 0x43, 32);
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	int r = system(cmd);
	free(cmd);
	return r == 0 ? 0 : -1;
}

/* A holder over fresh keys (*SIGNER: a copy of them, for checking) and a
 * journal at PATH (NULL: in memory). */
static struct hl_holder *new_holder(const char *path, hl_signer **signer)
{
	uint8_t x[32], seed[32];
	hl_signer *s = NULL;
	hl_heads *heads = NULL;
	char err[200];
	randombytes_buf(x, 32);
	randombytes_buf(seed, 32);
	assert_int_equal(hl_signer_from_raw_for_tests(&s, x, seed), 0);
	assert_int_equal(hl_signer_from_raw_for_tests(signer, x, seed), 0);
	assert_int_equal(hl_heads_open(path, &heads, err, sizeof(err)), 0);
	return hl_holder_new(s, heads);
}

/* A check item of ours at SEQ after PREV, toward PEER. */
static void check_item(const hl_signer *me, const uint8_t peer[32], uint64_t seq,
		       const uint8_t *prev, uint64_t t, struct hl_item *it)
{
	memset(it, 0, sizeof(*it));
	it->kind = HL_ITEM_CHECK;
	memcpy(it->author, hl_signer_sign_pk(me), 32);
	memcpy(it->counterpart, peer, 32);
	it->seq = seq;
	if (prev)
		memcpy(it->prev, prev, 32);
	it->time_ms = t;
	memset(it->u.chk.id, (int)seq, HL_CHECK_ID_LEN);
	it->u.chk.timeout_ms = 1000;
}

/* Asks H for a run of the items IT[0..N) (unsigned, prev of the first as
 * given, the others' zeroed), returning the parsed answer (*BUF its bytes). */
static struct hl_hold_response ask_sign(struct hl_holder *h, struct hl_item *it, size_t n,
					uint8_t **buf)
{
	struct hl_hold_request *q = xcalloc(1, sizeof(*q));
	uint8_t *enc = xmalloc(n * HL_ITEM_MAX);
	struct hl_hold_response a;
	uint8_t *req;
	size_t len, rlen;
	q->type = HL_HOLD_SIGN;
	q->u.sign.n = (uint16_t)n;
	for (size_t i = 0; i < n; i++) {
		struct hl_item x = it[i];
		memset(x.sig, 0, 64);
		if (i > 0)
			memset(x.prev, 0, 32);
		assert_int_equal(hl_item_encode(&x, enc + i * HL_ITEM_MAX, HL_ITEM_MAX, &len), 0);
		q->u.sign.e[i].item = (struct hl_hold_blob){ enc + i * HL_ITEM_MAX, len };
	}
	assert_int_equal(hl_hold_request_encode(q, &req, &len), 0);
	hl_holder_answer(h, req, len, "the test", true, buf, &rlen);
	assert_int_equal(hl_hold_response_parse(*buf, rlen, HL_HOLD_SIGN, &a), 0);
	free(req);
	free(enc);
	free(q);
	return a;
}

/* Answers raw request bytes; the answer's status. */
static enum hl_hold_status ask_raw(struct hl_holder *h, const uint8_t *req, size_t len)
{
	uint8_t *buf;
	size_t rlen;
	struct hl_hold_response a;
	hl_holder_answer(h, req, len, "the test", true, &buf, &rlen);
	/* an answer always parses, whatever the request's type byte */
	enum hl_hold_type t = len >= 2 ? (enum hl_hold_type)req[1] : 0;
	assert_int_equal(hl_hold_response_parse(buf, rlen, t, &a), 0);
	free(buf);
	return a.status;
}

static void expect_keys(struct hl_holder *h, const hl_signer *me)
{
	const uint8_t req[2] = { HL_HOLD_VERSION, HL_HOLD_KEYS };
	uint8_t *buf;
	size_t rlen;
	struct hl_hold_response a;
	hl_holder_answer(h, req, 2, "the test", true, &buf, &rlen);
	assert_int_equal(hl_hold_response_parse(buf, rlen, HL_HOLD_KEYS, &a), 0);
	assert_int_equal(a.status, HL_HOLD_OK);
	assert_memory_equal(a.u.keys.sign_pk, hl_signer_sign_pk(me), 32);
	free(buf);
}

/* The encoding of IT with SIG, and its hash. */
static void signed_hash(struct hl_item *it, const uint8_t *sig, uint8_t hash[32])
{
	uint8_t enc[HL_ITEM_MAX];
	size_t len;
	memcpy(it->sig, sig, 64);
	assert_int_equal(hl_item_encode(it, enc, sizeof(enc), &len), 0);
	hl_item_hash(enc, len, hash);
}

static void test_position_rules(void **state)
{
	(void)state;
	hl_signer *me;
	char *path = hl_path_join(tmpdir, "rules.heads");
	struct hl_holder *h = new_holder(path, &me);
	struct hl_item it[3], other;
	uint8_t *buf, sig1[64], h1[32];

	check_item(me, peer_pk, 1, NULL, 1000, &it[0]);
	struct hl_hold_response a = ask_sign(h, it, 1, &buf);
	assert_int_equal(a.status, HL_HOLD_OK);
	memcpy(sig1, a.u.sign.sigs, 64);
	free(buf);
	signed_hash(&it[0], sig1, h1);
	uint8_t enc[HL_ITEM_MAX];
	size_t len;
	struct hl_item opened;
	assert_int_equal(hl_item_encode(&it[0], enc, sizeof(enc), &len), 0);
	assert_int_equal(hl_item_open(enc, len, hl_signer_sign_pk(me), peer_pk, &opened), 0);

	/* the same bytes: the same signature, nothing new */
	a = ask_sign(h, it, 1, &buf);
	assert_int_equal(a.status, HL_HOLD_OK);
	assert_memory_equal(a.u.sign.sigs, sig1, 64);
	free(buf);

	/* another item at position 1: refused, the head in the answer */
	check_item(me, peer_pk, 1, NULL, 2000, &other);
	a = ask_sign(h, &other, 1, &buf);
	assert_int_equal(a.status, HL_HOLD_REFUSED);
	assert_int_equal(a.u.refused.reason, HL_HOLD_R_SIGNED);
	assert_int_equal(a.u.refused.head_seq, 1);
	assert_memory_equal(a.u.refused.head_hash, h1, 32);
	free(buf);

	/* position 2 after another prev: refused */
	uint8_t bogus[32];
	memset(bogus, 7, 32);
	check_item(me, peer_pk, 2, bogus, 3000, &other);
	a = ask_sign(h, &other, 1, &buf);
	assert_int_equal(a.status, HL_HOLD_REFUSED);
	free(buf);

	/* a run of two after it, chained by the holder */
	check_item(me, peer_pk, 2, h1, 4000, &it[1]);
	check_item(me, peer_pk, 3, NULL, 4001, &it[2]);
	a = ask_sign(h, &it[1], 2, &buf);
	assert_int_equal(a.status, HL_HOLD_OK);
	uint8_t h2[32];
	signed_hash(&it[1], a.u.sign.sigs, h2);
	memcpy(it[2].prev, h2, 32);
	memcpy(it[2].sig, a.u.sign.sigs + 64, 64);
	assert_int_equal(hl_item_encode(&it[2], enc, sizeof(enc), &len), 0);
	assert_int_equal(hl_item_open(enc, len, hl_signer_sign_pk(me), peer_pk, &opened), 0);
	free(buf);

	/* another chain is another head */
	check_item(me, other_pk, 1, NULL, 5000, &other);
	a = ask_sign(h, &other, 1, &buf);
	assert_int_equal(a.status, HL_HOLD_OK);
	free(buf);
	assert_int_equal(hl_holder_refusals(h), 2);
	hl_holder_free(h);

	/* the journal remembers: position 1 is still taken after a reopen */
	hl_signer *me2;
	hl_heads *heads;
	char err[200];
	assert_int_equal(hl_heads_open(path, &heads, err, sizeof(err)), 0);
	uint64_t seq;
	uint8_t hash[32];
	assert_true(hl_heads_get(heads, peer_pk, &seq, hash));
	assert_int_equal(seq, 3);
	hl_heads_free(heads);
	(void)me2;
	hl_signer_free(me);
	free(path);
}

static void test_not_an_oracle(void **state)
{
	(void)state;
	hl_signer *me, *stranger;
	struct hl_holder *h = new_holder(NULL, &me);
	struct hl_item it, x;
	uint8_t *buf, enc[HL_ITEM_MAX], req[HL_ITEM_MAX + 64];
	size_t len;

	/* bytes that begin like an item, but are none */
	static const char junk[] = "hotline/1 message\0 please sign these bytes";
	struct hl_hold_request *q = xcalloc(1, sizeof(*q));
	q->type = HL_HOLD_SIGN;
	q->u.sign.n = 1;
	q->u.sign.e[0].item = (struct hl_hold_blob){ (const uint8_t *)junk, sizeof(junk) };
	uint8_t *r;
	assert_int_equal(hl_hold_request_encode(q, &r, &len), 0);
	assert_int_equal(ask_raw(h, r, len), HL_HOLD_MALFORMED);
	free(r);

	/* an item that carries a signature already */
	check_item(me, peer_pk, 1, NULL, 1, &it);
	memset(it.sig, 1, 64);
	assert_int_equal(hl_item_encode(&it, enc, sizeof(enc), &len), 0);
	q->u.sign.e[0].item = (struct hl_hold_blob){ enc, len };
	assert_int_equal(hl_hold_request_encode(q, &r, &len), 0);
	assert_int_equal(ask_raw(h, r, len), HL_HOLD_MALFORMED);
	free(r);

	/* an item of another author */
	assert_int_equal(hl_signer_generate(&stranger), 0);
	check_item(stranger, peer_pk, 1, NULL, 1, &x);
	struct hl_hold_response a = ask_sign(h, &x, 1, &buf);
	assert_int_equal(a.status, HL_HOLD_REFUSED);
	assert_int_equal(a.u.refused.reason, HL_HOLD_R_NOT_OURS);
	free(buf);

	/* a run over two chains */
	struct hl_item two[2];
	check_item(me, peer_pk, 1, NULL, 1, &two[0]);
	check_item(me, other_pk, 2, NULL, 1, &two[1]);
	a = ask_sign(h, two, 2, &buf);
	assert_int_equal(a.status, HL_HOLD_REFUSED);
	free(buf);

	/* malformed: truncated, trailing bytes, unknown type or version */
	req[0] = HL_HOLD_VERSION;
	req[1] = HL_HOLD_DH;
	assert_int_equal(ask_raw(h, req, 10), HL_HOLD_MALFORMED);
	memset(req + 2, 9, 33);
	assert_int_equal(ask_raw(h, req, 35), HL_HOLD_MALFORMED);
	req[1] = 99;
	assert_int_equal(ask_raw(h, req, 2), HL_HOLD_MALFORMED);
	req[0] = 2;
	req[1] = HL_HOLD_KEYS;
	assert_int_equal(ask_raw(h, req, 2), HL_HOLD_MALFORMED);
	assert_int_equal(ask_raw(h, req, 0), HL_HOLD_MALFORMED);
	/* a low-order key for DH: failed, no zero secret */
	req[0] = HL_HOLD_VERSION;
	req[1] = HL_HOLD_DH;
	memset(req + 2, 0, 32);
	assert_int_equal(ask_raw(h, req, 34), HL_HOLD_FAILED);

	/* and it answers the next request as ever */
	expect_keys(h, me);
	free(q);
	hl_signer_free(stranger);
	hl_signer_free(me);
	hl_holder_free(h);
}

static void test_torn_tail(void **state)
{
	(void)state;
	hl_signer *me;
	char *path = hl_path_join(tmpdir, "torn.heads");
	struct hl_holder *h = new_holder(path, &me);
	struct hl_item it;
	uint8_t *buf;
	check_item(me, peer_pk, 1, NULL, 1, &it);
	struct hl_hold_response a = ask_sign(h, &it, 1, &buf);
	assert_int_equal(a.status, HL_HOLD_OK);
	free(buf);
	hl_holder_free(h);
	/* half a record after the good one, as a machine that stopped before
	 * the fdatasync returned leaves it */
	FILE *f = fopen(path, "ab");
	assert_non_null(f);
	fwrite("\0\0\0\x60partial", 1, 11, f);
	fclose(f);
	hl_heads *heads;
	char err[200];
	uint64_t seq;
	uint8_t hash[32];
	assert_int_equal(hl_heads_open(path, &heads, err, sizeof(err)), 0);
	assert_true(hl_heads_get(heads, peer_pk, &seq, hash));
	assert_int_equal(seq, 1);
	hl_heads_free(heads);
	char *text;
	size_t len;
	assert_int_equal(hl_read_file(path, 1 << 20, &text, &len), 0);
	assert_int_equal(memcmp(text + len - 7, "partial", 7) != 0, 1); /* cut off */
	free(text);
	/* not a journal at all: refused, left alone */
	char *bad = hl_path_join(tmpdir, "bad.heads");
	assert_int_equal(hl_write_file_atomic(bad, "not a journal", 13, 0600), 0);
	assert_true(hl_heads_open(bad, &heads, err, sizeof(err)) < 0);
	free(bad);
	hl_signer_free(me);
	free(path);
}

/* The journal has a run's records once its answer is made (written: a
 * holder process that dies now leaves them for the next), and SYNC is
 * answered once they are durable. */
static void test_written_then_synced(void **state)
{
	(void)state;
	hl_signer *me;
	char *path = hl_path_join(tmpdir, "sync.heads");
	struct hl_holder *h = new_holder(path, &me);
	const uint8_t sync[2] = { HL_HOLD_VERSION, HL_HOLD_SYNC };
	struct hl_item it;
	uint8_t *buf;
	assert_int_equal(ask_raw(h, sync, 2), HL_HOLD_OK); /* nothing signed yet */
	check_item(me, peer_pk, 1, NULL, 1, &it);
	struct hl_hold_response a = ask_sign(h, &it, 1, &buf);
	assert_int_equal(a.status, HL_HOLD_OK);
	free(buf);
	/* before any sync, another reader of the file sees position 1 */
	hl_heads *again;
	char err[200];
	uint64_t seq = 0;
	uint8_t hash[32];
	assert_int_equal(hl_heads_open(path, &again, err, sizeof(err)), 0);
	assert_true(hl_heads_get(again, peer_pk, &seq, hash));
	assert_int_equal(seq, 1);
	hl_heads_free(again);
	/* the marks a holder process publishes: written, not yet durable */
	uint64_t written, pushed, durable;
	hl_holder_journal_marks(h, &written, &pushed, &durable);
	assert_int_equal(written, 1);
	assert_int_equal(durable, 0);
	assert_int_equal(hl_holder_settle(h), 0);
	hl_holder_journal_marks(h, &written, &pushed, &durable);
	assert_int_equal(durable, 1);
	assert_int_equal(ask_raw(h, sync, 2), HL_HOLD_OK);
	/* a SYNC with bytes after it is malformed */
	const uint8_t bad[3] = { HL_HOLD_VERSION, HL_HOLD_SYNC, 0 };
	assert_int_equal(ask_raw(h, bad, 3), HL_HOLD_MALFORMED);
	hl_holder_free(h);
	hl_signer_free(me);
	free(path);
}

/* A holder process and the page of marks it shares with its starter.
 * After each answer the holder pushes its journal's records to the disk
 * (no fdatasync); the starter's hl_keys_sync then asks no SYNC when its
 * own fdatasync began after the push (hl_keys_flush_begins, on one
 * filesystem: hl_keys_ride_flush), or when the page says durable; else
 * the SYNC goes to the holder, which makes the journal durable. */
static void test_marks_spare_sync(void **state)
{
	(void)state;
	char *dir = hl_path_join(tmpdir, "marks");
	char *id = hl_path_join(dir, "identity.key");
	char err[300], why[200];
	hl_signer *me;
	hl_keys *k;
	struct hl_holder_marks *m;
	struct hl_item it, *itp = &it;
	uint8_t sig[64], h1[32];
	uint64_t asked, spared;
	int fd;
	pid_t pid;
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(hl_signer_generate(&me), 0);
	assert_int_equal(hl_signer_write_new(id, me), 0);
	assert_int_equal(hl_holder_spawn(dir, NULL, &fd, &pid, &m, err, sizeof(err)), 0);
	assert_non_null(m);
	assert_int_equal(hl_keys_over_fd(fd, &k, err), 0);
	hl_keys_defer_sync(k);
	hl_keys_share_marks(k, m);

	/* signed: written, then pushed, not made durable */
	check_item(me, peer_pk, 1, NULL, 1, &it);
	assert_int_equal(hl_keys_sign_run(k, &itp, 1, NULL, sig, why, sizeof(why)), 0);
	assert_true(atomic_load(&m->written) >= 1);
	for (int i = 0; i < 5000 && atomic_load(&m->on_disk) < atomic_load(&m->written); i++)
		usleep(1000); /* the holder's push, after its answer */
	assert_int_equal(atomic_load(&m->on_disk), atomic_load(&m->written));
	assert_true(atomic_load(&m->durable) < atomic_load(&m->written));
	/* an owner whose fdatasyncs do not count: the SYNC is asked, and the
	 * holder's fdatasync makes it durable */
	hl_keys_flush_begins(k);
	assert_int_equal(hl_keys_sync(k), 0);
	hl_keys_sync_counts(k, &asked, &spared);
	assert_int_equal(asked, 1);
	assert_int_equal(spared, 0);
	assert_int_equal(atomic_load(&m->durable), atomic_load(&m->written));

	/* one that rides: its fdatasync begins after the push, no SYNC */
	hl_keys_ride_flush(k);
	signed_hash(&it, sig, h1);
	check_item(me, peer_pk, 2, h1, 2, &it);
	assert_int_equal(hl_keys_sign_run(k, &itp, 1, NULL, sig, why, sizeof(why)), 0);
	hl_keys_flush_begins(k); /* waits for the push */
	assert_int_equal(hl_keys_sync(k), 0);
	hl_keys_sync_counts(k, &asked, &spared);
	assert_int_equal(asked, 1);
	assert_int_equal(spared, 1);
	assert_true(atomic_load(&m->durable) < atomic_load(&m->written));

	/* no fdatasync of its own began since the signature: asked */
	signed_hash(&it, sig, h1);
	check_item(me, peer_pk, 3, h1, 3, &it);
	assert_int_equal(hl_keys_sign_run(k, &itp, 1, NULL, sig, why, sizeof(why)), 0);
	assert_int_equal(hl_keys_sync(k), 0);
	hl_keys_sync_counts(k, &asked, &spared);
	assert_int_equal(asked, 2);
	assert_int_equal(spared, 1);

	/* a page that says durable past the signature: spared */
	signed_hash(&it, sig, h1);
	check_item(me, peer_pk, 4, h1, 4, &it);
	assert_int_equal(hl_keys_sign_run(k, &itp, 1, NULL, sig, why, sizeof(why)), 0);
	for (int i = 0; i < 5000 && atomic_load(&m->on_disk) < atomic_load(&m->written); i++)
		usleep(1000); /* the holder's last store into the page */
	atomic_store(&m->durable, UINT64_MAX);
	assert_int_equal(hl_keys_sync(k), 0);
	hl_keys_sync_counts(k, &asked, &spared);
	assert_int_equal(asked, 2);
	assert_int_equal(spared, 2);

	hl_keys_free(k); /* the socketpair closes: the holder ends */
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	hl_signer_free(me);
	free(id);
	free(dir);
}

/* ---- chain/ours.c over an in-process holder ---- */

struct store_fix {
	hl_store *st;
	hl_keys *keys;
	int64_t peer_id;
	hl_signer *copy;
};

static void store_fix(struct store_fix *f, const char *name)
{
	char *dir = hl_path_join(tmpdir, name);
	uint8_t seed[32], noise[32];
	hl_signer *s;
	assert_int_equal(mkdir(dir, 0700), 0);
	assert_int_equal(hl_store_open(dir, &f->st), 0);
	randombytes_buf(seed, 32);
	randombytes_buf(noise, 32);
	assert_int_equal(hl_signer_from_raw_for_tests(&s, noise, seed), 0);
	assert_int_equal(hl_signer_from_raw_for_tests(&f->copy, noise, seed), 0);
	f->keys = hl_keys_in_memory(s);
	assert_int_equal(hl_store_peer(f->st, peer_pk, other_pk, "peer", &f->peer_id), 0);
	free(dir);
}

static int refusals_seen;
static void on_refusal(void *user, const char *text)
{
	(void)user;
	assert_non_null(strstr(text, "position 2"));
	refusals_seen++;
}

static void test_taken_back(void **state)
{
	(void)state;
	struct store_fix f;
	store_fix(&f, "ours");
	const hl_signer *me = hl_keys_signer(f.keys);
	hl_peer_conf peer = { 0 };
	memcpy(peer.signing_key, peer_pk, 32);
	memcpy(peer.noise_key, other_pk, 32);
	strcpy(peer.name, "peer");
	uint8_t id[HL_MSG_ID_LEN];
	char err[300];
	struct hl_outgoing o = { .precedence = HL_PREC_FLASH, .subject = "first",
				 .body = (const uint8_t *)"one", .body_len = 3 };

	/* one message, committed */
	assert_int_equal(hl_store_begin(f.st), 0);
	assert_int_equal(hl_msg_queue_text(f.st, me, &peer, &o, id, err, sizeof(err)), 0);
	assert_int_equal(hl_store_commit(f.st), 0);

	/* the second is signed, then its transaction is lost */
	o.subject = "lost";
	o.body = (const uint8_t *)"two";
	uint8_t lost_id[HL_MSG_ID_LEN];
	assert_int_equal(hl_store_begin(f.st), 0);
	assert_int_equal(hl_msg_queue_text(f.st, me, &peer, &o, lost_id, err, sizeof(err)), 0);
	struct hl_item_row row;
	uint8_t lost[HL_ITEM_MAX];
	assert_int_equal(hl_store_get_item(f.st, f.peer_id, HL_DIR_OUT, 2, &row, lost,
					   sizeof(lost)), 0);
	size_t lost_len = row.encoded_len;
	hl_store_rollback(f.st);
	struct hl_chain_head head;
	assert_int_equal(hl_store_chain_head(f.st, f.peer_id, HL_DIR_OUT, &head), 0);
	assert_int_equal(head.seq, 1);

	/* the next message: position 2 comes back as signed, text and all;
	 * the new one is 3 */
	o.subject = "third";
	o.body = (const uint8_t *)"three";
	assert_int_equal(hl_store_begin(f.st), 0);
	assert_int_equal(hl_msg_queue_text(f.st, me, &peer, &o, id, err, sizeof(err)), 0);
	assert_int_equal(hl_store_commit(f.st), 0);
	uint8_t back[HL_ITEM_MAX];
	assert_int_equal(hl_store_get_item(f.st, f.peer_id, HL_DIR_OUT, 2, &row, back,
					   sizeof(back)), 0);
	assert_int_equal(row.encoded_len, lost_len);
	assert_memory_equal(back, lost, lost_len);
	struct hl_msg_row m = { 0 };
	assert_int_equal(hl_store_get_message_by_id(f.st, lost_id, &m), 0);
	assert_string_equal(m.subject, "lost");
	assert_int_equal(m.body_size, 3);
	assert_memory_equal(m.body, "two", 3);
	assert_int_equal(m.seq, 2);
	hl_msg_row_clear(&m);
	assert_int_equal(hl_store_chain_head(f.st, f.peer_id, HL_DIR_OUT, &head), 0);
	assert_int_equal(head.seq, 3);
	/* and its class order holds: the third message's class_seq is 3 */
	assert_int_equal(hl_store_get_message_by_id(f.st, id, &m), 0);
	assert_int_equal(m.class_seq, 3);
	hl_msg_row_clear(&m);

	/* the face signs no item itself: items go through hl_keys_sign_run */
	struct hl_item it, *itp = &it;
	check_item(me, peer_pk, 9, NULL, 1, &it);
	uint8_t enc[HL_ITEM_MAX], sigs[64];
	size_t len;
	assert_true(hl_item_encode_sign(&it, me, enc, sizeof(enc), &len) < 0);

	/* a refusal reaches the asker's callback (the daemon's alarm) */
	char why[300];
	hl_keys_on_refusal(f.keys, on_refusal, NULL);
	check_item(me, peer_pk, 2, NULL, 77, &it);
	assert_int_equal(hl_keys_sign_run(f.keys, &itp, 1, NULL, sigs, why, sizeof(why)),
			 HL_ESTATE);
	assert_int_equal(refusals_seen, 1);
	assert_non_null(strstr(why, "already signed"));
	hl_store_close(f.st);
	hl_keys_free(f.keys);
	hl_signer_free(f.copy);
}

static int count(void *arg, const struct hl_heads_rec *rec)
{
	(void)rec;
	(*(size_t *)arg)++;
	return 0;
}

static off_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_size;
}

static bool zeros_from(const char *path, off_t from)
{
	char *text;
	size_t len;
	bool z = true;
	assert_int_equal(hl_read_file(path, 64u << 20, &text, &len), 0);
	for (size_t i = (size_t)from; i < len; i++)
		z = z && text[i] == 0;
	free(text);
	return z;
}

/* A segment's records are written over zeros already in the file, so that
 * their fdatasync writes data alone: the file's length moves only once a
 * megabyte; a torn write over the zeros is cut back at open. */
static void test_zeros_ahead(void **state)
{
	(void)state;
	char *path = hl_path_join(tmpdir, "zeros.heads");
	const off_t ahead = 1 << 20;
	hl_heads *h;
	char err[200];
	uint8_t item[64] = { 1 }, note[16] = { 2 };
	struct hl_heads_rec r = { .item = item, .item_len = sizeof(item), .note = note,
				  .note_len = sizeof(note) };
	const off_t rec = 4 + 81 + 8 + (off_t)sizeof(item) + (off_t)sizeof(note) + 16;
	memcpy(r.peer, peer_pk, 32);
	assert_int_equal(hl_heads_open(path, &h, err, sizeof(err)), 0);
	off_t first = file_size(path);
	assert_true(first >= 8 + ahead); /* zeros from the start */
	uint64_t written, pushed, durable;
	for (uint64_t s = 1; s <= 20; s++) {
		r.seq = s;
		memset(r.hash, (int)s, 32);
		assert_int_equal(hl_heads_append(h, &r, 1, s), 0);
		/* over the zeros: a push hands it to the disk, no fdatasync */
		assert_int_equal(hl_heads_push(h), 0);
		hl_heads_marks(h, &written, &pushed, &durable);
		assert_int_equal(pushed, s);
		assert_int_equal(durable, s == 1 ? 0 : 1);
		if (s == 1)
			assert_int_equal(hl_heads_sync(h), 0);
		assert_int_equal(file_size(path), first);
	}
	/* a record that passes the zeros: new zeros after it */
	uint8_t *big = xcalloc(1, (size_t)ahead);
	memset(big, 3, (size_t)ahead);
	struct hl_heads_rec b = r;
	b.seq = 21;
	b.note = big;
	b.note_len = (size_t)ahead;
	assert_int_equal(hl_heads_append(h, &b, 1, 21), 0);
	/* the file grew: the push is an fdatasync */
	assert_int_equal(hl_heads_push(h), 0);
	hl_heads_marks(h, &written, &pushed, &durable);
	assert_int_equal(durable, 21);
	off_t end = first - ahead + 20 * rec + (rec - (off_t)sizeof(note) + ahead);
	assert_int_equal(file_size(path), end + ahead);
	assert_true(zeros_from(path, end));
	hl_heads_free(h);
	/* opened again: the zeros are the clean end, left in place */
	uint64_t seq;
	uint8_t hash[32];
	assert_int_equal(hl_heads_open(path, &h, err, sizeof(err)), 0);
	assert_true(hl_heads_get(h, peer_pk, &seq, hash));
	assert_int_equal(seq, 21);
	assert_int_equal(file_size(path), end + ahead);
	hl_heads_free(h);
	/* half a record over the zeros, as a machine that stopped before its
	 * fdatasync returned leaves it: cut back to the records at open, and
	 * the next write brings the zeros back */
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\0\0\0\x60partial", 11, end), 11);
	close(fd);
	assert_int_equal(hl_heads_open(path, &h, err, sizeof(err)), 0);
	assert_true(hl_heads_get(h, peer_pk, &seq, hash));
	assert_int_equal(seq, 21);
	assert_int_equal(file_size(path), end);
	r.seq = 22;
	assert_int_equal(hl_heads_append(h, &r, 1, 22), 0);
	assert_int_equal(file_size(path), end + rec + ahead);
	assert_true(zeros_from(path, end + rec));
	hl_heads_free(h);
	assert_int_equal(hl_heads_open(path, &h, err, sizeof(err)), 0);
	assert_true(hl_heads_get(h, peer_pk, &seq, hash));
	assert_int_equal(seq, 22);
	hl_heads_free(h);
	free(big);
	free(path);
}

/* A write that fails half-way (the file may not grow: RLIMIT_FSIZE, as a
 * full disk) leaves nothing of its record: the segment is cut back to its
 * records, the next write goes where it would have, and the journal opens
 * with the head before it. */
static void test_failed_write_cut_back(void **state)
{
	(void)state;
	char *path = hl_path_join(tmpdir, "failed.heads");
	hl_heads *h;
	char err[200];
	uint8_t item[64] = { 1 }, note[16] = { 2 };
	struct hl_heads_rec r = { .item = item, .item_len = sizeof(item), .note = note,
				  .note_len = sizeof(note), .seq = 1 };
	memcpy(r.peer, peer_pk, 32);
	assert_int_equal(hl_heads_open(path, &h, err, sizeof(err)), 0);
	assert_int_equal(hl_heads_append(h, &r, 1, 1), 0);
	off_t before = file_size(path);
	/* a record that must pass the zeros, into a file that may not grow */
	size_t big_len = 2u << 20;
	uint8_t *big = xcalloc(1, big_len);
	memset(big, 'x', big_len);
	struct hl_heads_rec b = r;
	b.seq = 2;
	b.note = big;
	b.note_len = big_len;
	struct rlimit old, lim = { (rlim_t)before + 4096, RLIM_INFINITY };
	void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim.rlim_max = old.rlim_max;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	int ret = hl_heads_append(h, &b, 1, 2);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	signal(SIGXFSZ, was);
	assert_true(ret < 0);
	uint64_t seq;
	uint8_t hash[32];
	assert_true(hl_heads_get(h, peer_pk, &seq, hash));
	assert_int_equal(seq, 1);
	/* cut back to the records: nothing of the failed one past them */
	off_t records = 8 + (4 + 81 + 8 + (off_t)sizeof(item) + (off_t)sizeof(note) + 16);
	assert_int_equal(file_size(path), records);
	/* the next write takes its place, with zeros after it again */
	r.seq = 2;
	assert_int_equal(hl_heads_append(h, &r, 1, 2), 0);
	assert_true(zeros_from(path, 2 * records - 8));
	hl_heads_free(h);
	assert_int_equal(hl_heads_open(path, &h, err, sizeof(err)), 0);
	assert_true(hl_heads_get(h, peer_pk, &seq, hash));
	assert_int_equal(seq, 2);
	hl_heads_free(h);
	free(big);
	free(path);
}

static void test_rotation(void **state)
{
	(void)state;
	char *path = hl_path_join(tmpdir, "rotate.heads");
	char *old = hl_path_join(tmpdir, "rotate.heads.old");
	hl_heads *h;
	char err[200];
	assert_int_equal(hl_heads_open(path, &h, err, sizeof(err)), 0);
	uint8_t *note = xcalloc(1, 3u << 20), item[64] = { 1 };
	struct hl_heads_rec r = { .item = item, .item_len = sizeof(item), .note = note,
				  .note_len = 3u << 20 };
	memcpy(r.peer, peer_pk, 32);
	/* 3 MiB a record: the segment passes 8 MiB at the 3rd, rotates at the
	 * 4th (1-3 in the old one), and again at the 7th (4-6 old, 1-3 gone) */
	for (uint64_t s = 1; s <= 7; s++) {
		r.seq = s;
		memset(r.hash, (int)s, 32);
		assert_int_equal(hl_heads_append(h, &r, 1, s), 0);
	}
	uint64_t seq;
	uint8_t hash[32];
	assert_true(hl_heads_get(h, peer_pk, &seq, hash));
	assert_int_equal(seq, 7);
	size_t n = 0;
	assert_int_equal(hl_heads_each(h, peer_pk, 3, count, &n), 0);
	assert_int_equal(n, 4); /* 4..7, across the two segments */
	n = 0;
	assert_int_equal(hl_heads_each(h, peer_pk, 0, count, &n), 0);
	assert_int_equal(n, 0); /* 1 is gone: nothing from 1 on */
	hl_heads_free(h);
	/* a rotation cut after its rename: the new segment is made at open,
	 * and the head is still 7 */
	assert_int_equal(rename(path, old), 0);
	assert_int_equal(hl_heads_open(path, &h, err, sizeof(err)), 0);
	assert_true(hl_heads_get(h, peer_pk, &seq, hash));
	assert_int_equal(seq, 7);
	memset(hash, 7, 32);
	hl_heads_free(h);
	free(note);
	free(path);
	free(old);
}

static bool always(void *user, const uint8_t pub[static 32])
{
	(void)user, (void)pub;
	return true;
}

/* A rotation item of ours at SEQ toward the peer (author: the key before
 * the rotation), to NOISE and SIGN, committing to NEXT. */
static void rotation_item(const uint8_t *author, uint64_t seq, const uint8_t *noise,
			  const uint8_t *sign, const uint8_t *next, struct hl_item *it)
{
	memset(it, 0, sizeof(*it));
	it->kind = HL_ITEM_ROTATION;
	memcpy(it->author, author, 32);
	memcpy(it->counterpart, peer_pk, 32);
	it->seq = seq;
	it->time_ms = 1767225600000ull;
	memcpy(it->u.rot.noise_key, noise, 32);
	memcpy(it->u.rot.signing_key, sign, 32);
	memcpy(it->u.rot.next_hash, next, 32);
}

static void test_key_rotation(void **state)
{
	(void)state;
	uint8_t x[32], seed[32], nx[32], nseed[32], pub[32], theirs[32], dh[32], want[32];
	uint8_t old_sign[32], old_noise[32], next_before[32], sigs[64], enc[HL_ITEM_MAX];
	char why[300];
	hl_signer *s;
	randombytes_buf(x, 32);
	randombytes_buf(seed, 32);
	randombytes_buf(nx, 32);
	randombytes_buf(nseed, 32);
	randombytes_buf(theirs, 32);
	assert_int_equal(crypto_scalarmult_base(pub, theirs), 0);
	assert_int_equal(hl_signer_with_next_for_tests(&s, x, seed, nx, nseed), 0);
	hl_keys *k = hl_keys_in_memory(s);
	const hl_signer *face = hl_keys_signer(k);
	hl_keys_remember_statics(k, always, NULL);
	memcpy(old_sign, hl_signer_sign_pk(face), 32);
	memcpy(old_noise, hl_signer_noise_pub(face), 32);
	assert_int_equal(hl_signer_next_hash(face, next_before), 0);

	/* before: no rotation item is signed, the DH is remembered */
	struct hl_item it;
	rotation_item(old_sign, 1, old_noise, old_sign, next_before, &it);
	struct hl_item *its[1] = { &it };
	assert_int_equal(hl_keys_sign_run(k, its, 1, NULL, sigs, why, sizeof(why)), HL_ESTATE);
	assert_non_null(strstr(why, "never rotated"));
	assert_int_equal(hl_signer_dh(face, pub, dh), 0);
	assert_int_equal(crypto_scalarmult(want, x, pub), 0);
	assert_memory_equal(dh, want, 32);

	assert_int_equal(hl_keys_rotate(k), 0);
	/* the face follows: the next keys are current, the old ones previous */
	uint8_t nsign[32], nnoise[32], nsk[64], committed[32], next_now[32];
	crypto_sign_seed_keypair(nsign, nsk, nseed);
	assert_int_equal(crypto_scalarmult_base(nnoise, nx), 0);
	hl_next_hash(nnoise, nsign, committed);
	assert_memory_equal(committed, next_before, 32);
	assert_memory_equal(hl_signer_sign_pk(face), nsign, 32);
	assert_memory_equal(hl_signer_noise_pub(face), nnoise, 32);
	assert_memory_equal(hl_signer_prev_sign_pk(face), old_sign, 32);
	assert_true(hl_signer_rotated_at(face) > 0);
	assert_int_equal(hl_signer_next_hash(face, next_now), 0);
	assert_memory_not_equal(next_now, next_before, 32);
	/* the DH remembered with the old static key is gone (it failed on a
	 * cache kept across the rotation: the old key's result came back) */
	assert_int_equal(hl_signer_dh(face, pub, dh), 0);
	assert_int_equal(crypto_scalarmult(want, nx, pub), 0);
	assert_memory_equal(dh, want, 32);
	hl_signer *prev;
	assert_int_equal(hl_signer_previous(face, &prev), 0);
	assert_int_equal(hl_signer_dh(prev, pub, dh), 0);
	assert_int_equal(crypto_scalarmult(want, x, pub), 0);
	assert_memory_equal(dh, want, 32);
	hl_signer_free(prev);

	/* a rotation to keys never committed to: refused */
	rotation_item(old_sign, 1, old_noise, old_sign, next_now, &it);
	assert_int_equal(hl_keys_sign_run(k, its, 1, NULL, sigs, why, sizeof(why)), HL_ESTATE);
	assert_non_null(strstr(why, "not the ones the station committed to"));
	/* to the committed keys, with the next hash held: signed by both keys */
	rotation_item(old_sign, 1, nnoise, nsign, next_now, &it);
	assert_int_equal(hl_keys_sign_run(k, its, 1, NULL, sigs, why, sizeof(why)), 0);
	memcpy(it.sig, sigs, 64);
	size_t len;
	struct hl_item opened;
	assert_int_equal(hl_item_encode(&it, enc, sizeof(enc), &len), 0);
	assert_int_equal(hl_item_open_key(enc, len, old_sign, peer_pk, old_sign, &opened), 0);
	assert_true(hl_item_rotation_sig_ok(enc, len, &opened));
	hl_keys_free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_position_rules),
		cmocka_unit_test(test_not_an_oracle),
		cmocka_unit_test(test_torn_tail),
		cmocka_unit_test(test_zeros_ahead),
		cmocka_unit_test(test_failed_write_cut_back),
		cmocka_unit_test(test_written_then_synced),
		cmocka_unit_test(test_marks_spare_sync),
		cmocka_unit_test(test_taken_back),
		cmocka_unit_test(test_rotation),
		cmocka_unit_test(test_key_rotation),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, setup, teardown);
}
