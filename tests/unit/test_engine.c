/* tests/unit/test_engine.c — the messages protocol end to end without
 * sockets: two stations (real stores in temporary directories, real
 * identities), two sessions (real Noise handshakes) whose bytes the test carries
 * by hand, and one delivery engine on each side.  The test drives the
 * group commit as the daemon does: packets in, precommit, commit,
 * postcommit.
 *
 * What it shows: messages of every precedence arrive exactly once and in
 * order; receipts come back and mark them delivered; attachments arrive
 * whole with their hashes; a FLASH message overtakes a large document in
 * flight; a session torn down mid-transfer (uncommitted work lost, as in a
 * crash) resumes without loss, duplicates, or resending the document from
 * zero. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/engine.h"
#include "deliver/flow.h"
#include "wire/msgproto.h"
#include "chain/queue.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "wire/packet.h"

struct side {
	char dir[64];
	hl_signer *id;
	hl_store *store;
	struct hl_txn txn;
	hl_peer_conf peer;      /* the other side, as pinned here */
	hl_engine *eng;
	hl_session *session;
	uint64_t bytes_out;     /* session bytes this side sent */
};

static struct side A, B;
static uint64_t now_ms = 1000;

static struct hl_replay_window *authorize(void *user, hl_session *session, const uint8_t key[static 32])
{
	static struct hl_replay_window window;   /* each side is responder at most once */
	struct side *s = user;
	(void)session;
	return memcmp(key, s->peer.noise_key, 32) == 0 ? &window : NULL;
}

static void on_confirmed(void *user, hl_session *session)
{
	struct side *s = user;
	hl_engine_attach(s->eng, session, now_ms);
}

static void on_packet(void *user, hl_session *session, uint8_t type, const uint8_t *body, size_t len)
{
	struct side *s = user;
	int ret = hl_engine_on_packet(s->eng, type, body, len, now_ms);
	if (ret < 0)
		fail_msg("%s: engine refused a record: %s", s->dir, hl_engine_error(s->eng));
	(void)session;
}

static void on_writable(void *user, hl_session *session)
{
	struct side *s = user;
	(void)session;
	hl_engine_pump(s->eng, now_ms);
}

static const struct hl_session_ops ops = {
	.authorize = authorize,
	.on_confirmed = on_confirmed,
	.on_packet = on_packet,
	.on_writable = on_writable,
};

static void side_init(struct side *s, const char *tag)
{
	snprintf(s->dir, sizeof(s->dir), "/tmp/hl-engine-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(s->dir));
	assert_int_equal(hl_signer_generate(&s->id), 0);
	assert_int_equal(hl_store_open(s->dir, &s->store), 0);
	s->txn.store = s->store;
	s->txn.open = false;
}

static void side_pin(struct side *s, const struct side *other, const char *name)
{
	memset(&s->peer, 0, sizeof(s->peer));
	snprintf(s->peer.name, sizeof(s->peer.name), "%s", name);
	memcpy(s->peer.noise_key, hl_signer_noise_pub(other->id), 32);
	memcpy(s->peer.signing_key, hl_signer_sign_pk(other->id), 32);
	hl_fingerprint(s->peer.noise_key, s->peer.signing_key, s->peer.fingerprint);
}

static uint64_t quota_for_b;
static uint8_t session_flags;              /* HELLO flags of both sessions */
static atomic_uint wakes;               /* env.wake calls (workers' threads) */

static void test_wake(void *user)
{
	(void)user;
	atomic_fetch_add(&wakes, 1);
}

static void engine_up(struct side *s)
{
	struct hl_engine_env env = {
		.dir = s->dir, .txn = &s->txn, .me = s->id,
		.quota_bytes = s == &B ? quota_for_b : 0,
		.wake = test_wake,
	};
	assert_int_equal(hl_engine_new(&s->eng, &env, &s->peer), 0);
}

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static void side_free(struct side *s)
{
	hl_session_free(s->session);
	hl_engine_free(s->eng);
	hl_store_close(s->store);
	hl_signer_free(s->id);
	rm_rf(s->dir);
	memset(s, 0, sizeof(*s));
}

static void sessions_up(void)
{
	struct hl_session_params p = {
		.keepalive_ms = 25000, .keepalive_timeout_ms = 75000,
		.handshake_timeout_ms = 10000, .max_age_ms = 0,
		.hello_flags = session_flags,
	};
	assert_int_equal(hl_session_new(&A.session, HL_SESSION_INITIATOR, A.id,
				     hl_signer_noise_pub(B.id), &p, &ops, &A, now_ms), 0);
	assert_int_equal(hl_session_new(&B.session, HL_SESSION_RESPONDER, B.id, NULL, &p,
				     &ops, &B, now_ms), 0);
}

/* Tears the session down as a crash would: uncommitted work is lost. */
static void crash(struct side *s)
{
	if (s->txn.open) {
		hl_store_rollback(s->store);
		s->txn.open = false;
	}
	hl_engine_abort(s->eng);
	hl_engine_detach(s->eng);
	hl_engine_free(s->eng);
	s->eng = NULL;
	hl_session_free(s->session);
	s->session = NULL;
	engine_up(s);
}

/* The daemon's group commit. */
static void commit(struct side *s)
{
	if (s->txn.open) {
		assert_int_equal(hl_engine_precommit(s->eng, now_ms), 0);
		assert_int_equal(hl_store_commit(s->store), 0);
		s->txn.open = false;
	}
	hl_engine_postcommit(s->eng, now_ms);
}

/* Moves at most BUDGET bytes from FROM's session to TO's; returns the count. */
static size_t carry(struct side *from, struct side *to, size_t budget)
{
	const uint8_t *p;
	size_t n = hl_session_output(from->session, &p);
	if (n > budget)
		n = budget;
	if (n == 0)
		return 0;
	uint8_t *copy = xmalloc(n);
	memcpy(copy, p, n);
	hl_session_output_taken(from->session, n);
	hl_session_output_done(from->session, n);
	from->bytes_out += n;
	assert_int_equal(hl_session_recv(to->session, copy, n, now_ms), 0);
	free(copy);
	return n;
}

/* What the daemon does when a command queued work: look again, send. */
static void poke(void)
{
	hl_engine_refresh(A.eng);
	hl_engine_refresh(B.eng);
	hl_engine_pump(A.eng, now_ms);
	hl_engine_pump(B.eng, now_ms);
}

/* Runs until nothing moves, or until STOP returns true; BUDGET bytes per
 * direction per round (small budgets interleave the two directions).
 * Beyond one poke at the start, sending is driven only by what drives it
 * in the daemon: the commit, and on_writable when the session drains. */
static void run(size_t budget, bool (*stop)(void))
{
	poke();
	for (int rounds = 0; rounds < 2000000; rounds++) {
		/* as the daemon: a commit (and what follows it) only after a
		 * burst of input */
		size_t ab = carry(&A, &B, budget);
		if (ab)
			commit(&B);
		size_t ba = carry(&B, &A, budget);
		if (ba)
			commit(&A);
		size_t moved = ab + ba;
		now_ms++;
		if (stop && stop())
			return;
		if (moved == 0)
			return;
	}
	fail_msg("no quiescence");
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	session_flags = 0;
	side_init(&A, "a");
	side_init(&B, "b");
	side_pin(&A, &B, "bravo");
	side_pin(&B, &A, "alpha");
	engine_up(&A);
	engine_up(&B);
	sessions_up();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	side_free(&A);
	side_free(&B);
	return 0;
}

static void send_text(struct side *s, unsigned prec, const char *text, uint8_t id[16])
{
	struct hl_outgoing o = {
		.precedence = prec, .subject = "test",
		.body = (const uint8_t *)text, .body_len = strlen(text),
	};
	char err[256];
	if (hl_msg_send(s->dir, s->store, s->id, &s->peer, &o, id, err, sizeof(err)) < 0)
		fail_msg("send: %s", err);
}

static void send_file(struct side *s, unsigned prec, const char *path, uint8_t id[16])
{
	const char *atts[1] = { path };
	struct hl_outgoing o = {
		.precedence = prec, .subject = "document",
		.body = (const uint8_t *)"see attached", .body_len = 12,
		.attachments = atts, .n_attachments = 1,
	};
	char err[256];
	if (hl_msg_send(s->dir, s->store, s->id, &s->peer, &o, id, err, sizeof(err)) < 0)
		fail_msg("send: %s", err);
}

struct collect {
	size_t n;
	char bodies[4096][32];
	unsigned prec[4096];
	enum hl_msg_state state[4096];
};

static int collect_one(void *arg, const struct hl_msg_row *row)
{
	struct collect *c = arg;
	if (c->n >= 4096)
		return 1;
	snprintf(c->bodies[c->n], sizeof(c->bodies[0]), "%.*s",
		 row->body ? (int)row->body_size : 0, row->body ? (const char *)row->body : "");
	c->prec[c->n] = row->precedence;
	c->state[c->n] = row->state;
	c->n++;
	return 0;
}

static struct collect *collect(struct side *s, enum hl_dir dir)
{
	struct collect *c = xcalloc(1, sizeof(*c));
	struct hl_msg_filter f = { .dir = dir, .visible_only = dir == HL_DIR_IN };
	assert_int_equal(hl_store_each_message(s->store, &f, collect_one, c), 0);
	return c;
}

/* Every message once, delivered, and in order within each precedence. */
static void check_all_delivered(size_t want)
{
	struct collect *in = collect(&B, HL_DIR_IN), *out = collect(&A, HL_DIR_OUT);
	assert_int_equal(in->n, want);
	assert_int_equal(out->n, want);
	for (size_t i = 0; i < out->n; i++)
		assert_int_equal(out->state[i], HL_MSG_DELIVERED);
	/* bodies are "p<prec>-<n>"; within a precedence n must increase */
	long last[4] = { -1, -1, -1, -1 };
	for (size_t i = 0; i < in->n; i++) {
		unsigned p;
		long n;
		assert_int_equal(sscanf(in->bodies[i], "p%u-%ld", &p, &n), 2);
		assert_int_equal(p, in->prec[i]);
		assert_true(n > last[p]);
		last[p] = n;
	}
	free(in);
	free(out);
}

static void test_mixed_precedence(void **state)
{
	(void)state;
	uint8_t id[16];
	char body[32];
	long count[4] = { 0 };
	for (int i = 0; i < 400; i++) {
		unsigned p = (unsigned)(i * 7 % 4);
		snprintf(body, sizeof(body), "p%u-%ld", p, count[p]++);
		send_text(&A, p, body, id);
	}
	run(1 << 20, NULL);
	check_all_delivered(400);
}

static void make_file(const char *path, size_t size)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	uint8_t buf[4096];
	for (size_t done = 0; done < size;) {
		size_t n = size - done < sizeof(buf) ? size - done : sizeof(buf);
		randombytes_buf(buf, n);
		assert_int_equal(fwrite(buf, 1, n, f), n);
		done += n;
	}
	fclose(f);
}

static bool file_hash_equal(const char *a, const char *b)
{
	char *cmd = xasprintf("cmp -s '%s' '%s'", a, b);
	int r = system(cmd);
	free(cmd);
	return r == 0;
}

static uint8_t doc_id[16], flash_id[16];

static bool flash_arrived(void)
{
	struct hl_msg_row row = { 0 };
	bool yes = hl_store_get_message_by_id(B.store, flash_id, &row) == 0 &&
		   row.state == HL_MSG_COMPLETE;
	hl_msg_row_clear(&row);
	return yes;
}

/* B holds message doc_id, complete, its attachment equal to DOC. */
static void assert_doc_whole_at_b(const char *doc)
{
	struct hl_msg_row row = { 0 };
	assert_int_equal(hl_store_get_message_by_id(B.store, doc_id, &row), 0);
	assert_int_equal(row.state, HL_MSG_COMPLETE);
	char *got = hl_path_join(B.dir, row.att[0].path);
	assert_true(file_hash_equal(doc, got));
	free(got);
	hl_msg_row_clear(&row);
}

/* A FLASH message queued while a document is in flight arrives first. */
static void test_flash_overtakes_document(void **state)
{
	(void)state;
	char *doc = xasprintf("%s/doc.bin", A.dir);
	size_t size = 24u << 20;
	make_file(doc, size);
	send_file(&A, HL_PREC_ROUTINE, doc, doc_id);
	/* let the transfer start: a couple of MiB */
	for (int i = 0; i < 40; i++) {
		carry(&A, &B, 64 << 10);
		commit(&B);
		carry(&B, &A, 64 << 10);
		commit(&A);
	}
	send_text(&A, HL_PREC_FLASH, "p3-0", flash_id);
	run(64 << 10, flash_arrived);
	/* the document is still incomplete at the receiver */
	struct hl_msg_row row = { 0 };
	assert_int_equal(hl_store_get_message_by_id(B.store, doc_id, &row), 0);
	assert_int_equal(row.state, HL_MSG_PARTIAL);
	hl_msg_row_clear(&row);
	assert_true(A.bytes_out < size);
	run(1 << 20, NULL);
	assert_int_equal(hl_store_get_message_by_id(B.store, doc_id, &row), 0);
	assert_int_equal(row.state, HL_MSG_COMPLETE);
	assert_int_equal(row.n_att, 1);
	char *got = hl_path_join(B.dir, row.att[0].path);
	assert_true(file_hash_equal(doc, got));
	free(got);
	hl_msg_row_clear(&row);
	assert_int_equal(hl_store_get_message_by_id(A.store, doc_id, &row), 0);
	assert_int_equal(row.state, HL_MSG_DELIVERED);
	hl_msg_row_clear(&row);
	free(doc);
}

/* A session torn down in the middle of a document, with the receiver's
 * uncommitted work lost, resumes from what was durable. */
static void test_resume_after_crash(void **state)
{
	(void)state;
	char *doc = xasprintf("%s/big.bin", A.dir);
	size_t size = 40u << 20;
	make_file(doc, size);
	send_file(&A, HL_PREC_ROUTINE, doc, doc_id);
	/* about half */
	while (A.bytes_out < size / 2) {
		carry(&A, &B, 256 << 10);
		commit(&B);
		carry(&B, &A, 256 << 10);
		commit(&A);
	}
	uint64_t before = A.bytes_out;
	crash(&B);
	crash(&A);
	sessions_up();
	run(1 << 20, NULL);
	assert_doc_whole_at_b(doc);
	/* resent: at most what was not yet durable (progress is synced every
	 * size/64 bytes, at least 1 MiB) plus what was in flight: under 10% */
	uint64_t total = A.bytes_out;
	printf("resume: %llu bytes before the crash, %llu in all, document %zu\n",
	       (unsigned long long)before, (unsigned long long)total, size);
	assert_true(total < size + size / 10);
	free(doc);
}

/* Crashes at many points while text messages flow: exactly once, in
 * order. */
static void test_crashes_exactly_once(void **state)
{
	(void)state;
	uint8_t id[16];
	char body[32];
	long count[4] = { 0 };
	for (int i = 0; i < 1000; i++) {
		unsigned p = (unsigned)((i * 5 + i / 3) % 4);
		snprintf(body, sizeof(body), "p%u-%ld", p, count[p]++);
		send_text(&A, p, body, id);
	}
	for (int k = 0; k < 25; k++) {
		/* a random amount of traffic, then a crash of one side or both */
		uint32_t rounds = randombytes_uniform(30) + 1;
		for (uint32_t r = 0; r < rounds; r++) {
			carry(&A, &B, randombytes_uniform(8192) + 1);
			if (randombytes_uniform(3))
				commit(&B);
			carry(&B, &A, randombytes_uniform(8192) + 1);
			if (randombytes_uniform(3))
				commit(&A);
		}
		uint32_t who = randombytes_uniform(3);
		if (who != 1)
			crash(&A);
		else
			hl_session_free(A.session), A.session = NULL, hl_engine_detach(A.eng);
		if (who != 0)
			crash(&B);
		else
			hl_session_free(B.session), B.session = NULL, hl_engine_detach(B.eng);
		sessions_up();
	}
	run(1 << 20, NULL);
	check_all_delivered(1000);
}

/* A message over the receiver's quota is refused for now, not stored, not
 * lost: the sender keeps it queued, offers it again later, and it is
 * delivered once the receiver has room. */
static void test_quota_refuses_for_now(void **state)
{
	(void)state;
	char *doc = xasprintf("%s/big.bin", A.dir);
	make_file(doc, 2u << 20);
	quota_for_b = 1u << 20;
	crash(&B);
	crash(&A);
	sessions_up();
	send_file(&A, HL_PREC_ROUTINE, doc, doc_id);
	uint8_t id2[16];
	send_text(&A, HL_PREC_FLASH, "p3-0", id2);
	run(1 << 20, NULL);
	struct hl_msg_row row = { 0 };
	assert_int_equal(hl_store_get_message_by_id(B.store, doc_id, &row), HL_ENOTFOUND);
	hl_msg_row_clear(&row);
	/* the FLASH one was not held up by the refused ROUTINE one */
	assert_int_equal(hl_store_get_message_by_id(B.store, id2, &row), 0);
	assert_int_equal(row.state, HL_MSG_COMPLETE);
	hl_msg_row_clear(&row);
	assert_int_equal(hl_store_get_message_by_id(A.store, doc_id, &row), 0);
	assert_int_equal(row.state, HL_MSG_QUEUED);
	hl_msg_row_clear(&row);
	assert_non_null(strstr(hl_engine_error(A.eng), "for now"));
	assert_non_null(strstr(hl_engine_error(B.eng), "quota"));
	/* later, the same session offers it again (and is refused again) */
	uint64_t before = A.bytes_out;
	now_ms += 6000;
	run(1 << 20, NULL);
	assert_true(A.bytes_out > before);
	assert_int_equal(hl_store_get_message_by_id(B.store, doc_id, &row), HL_ENOTFOUND);
	/* room at the receiver: delivered */
	quota_for_b = 0;
	crash(&B);
	crash(&A);
	sessions_up();
	run(1 << 20, NULL);
	assert_int_equal(hl_store_get_message_by_id(B.store, doc_id, &row), 0);
	assert_int_equal(row.state, HL_MSG_COMPLETE);
	hl_msg_row_clear(&row);
	assert_int_equal(hl_store_get_message_by_id(A.store, doc_id, &row), 0);
	assert_int_equal(row.state, HL_MSG_DELIVERED);
	hl_msg_row_clear(&row);
	free(doc);
}

static bool delivered(struct side *s, const uint8_t id[16])
{
	struct hl_msg_row row = { 0 };
	bool yes = hl_store_get_message_by_id(s->store, id, &row) == 0 &&
		   row.state == HL_MSG_DELIVERED;
	hl_msg_row_clear(&row);
	return yes;
}

/* CHUNK data the sender has in flight (not yet credited by the peer). */
static uint64_t in_flight(struct side *s)
{
	struct hl_engine_stats st;
	hl_engine_stats(s->eng, &st);
	assert_true(st.chunk_data_sent >= st.chunk_data_credited);
	return st.chunk_data_sent - st.chunk_data_credited;
}

/* With CREDIT (both HELLOs say so), a sender never has more than the
 * window of CHUNK data in flight: a receiver that stops reading holds up
 * a document after HL_CREDIT_WINDOW bytes, not after what the socket
 * buffers would take, while ITEMs (a FLASH message) still go; once the
 * receiver reads and its part's worker takes the data in, CREDITs bring
 * the rest, whole. */
static void test_credit_window(void **state)
{
	(void)state;
	session_flags = HL_HELLO_FLAG_CREDIT;
	crash(&B);
	crash(&A);
	sessions_up();
	run(1 << 20, NULL); /* the session opens; nothing to send yet */
	char *doc = xasprintf("%s/credit.bin", A.dir);
	size_t size = 24u << 20; /* large enough for a worker thread */
	make_file(doc, size);
	send_file(&A, HL_PREC_ROUTINE, doc, doc_id);
	poke();
	/* B reads, but nothing of B's reaches A: no CREDIT */
	while (carry(&A, &B, 64 << 10))
		commit(&B);
	struct hl_engine_stats st;
	hl_engine_stats(A.eng, &st);
	assert_true(st.credit_on);
	assert_true(st.window_waits > 0);
	assert_true(st.chunk_data_sent <= HL_CREDIT_WINDOW);
	assert_true(st.chunk_data_sent > HL_CREDIT_WINDOW - 65536);
	assert_true(A.bytes_out < HL_CREDIT_WINDOW + (64u << 10));
	/* a FLASH message is not held by the window */
	send_text(&A, HL_PREC_FLASH, "p3-0", flash_id);
	poke();
	while (carry(&A, &B, 64 << 10))
		commit(&B);
	assert_true(flash_arrived());
	/* now both ways: CREDITs flow, the window (sized in time from what
	 * the CREDITs show, deliver/flow.h) holds, the rest arrives */
	unsigned idle = 0;
	uint64_t window = HL_CREDIT_WINDOW;   /* the largest the sender has had */
	while (!delivered(&A, doc_id)) {
		size_t moved = carry(&A, &B, 256 << 10);
		if (moved)
			commit(&B);
		hl_engine_credit(B.eng, now_ms); /* as the daemon does on env.wake */
		size_t back = carry(&B, &A, 256 << 10);
		if (back)
			commit(&A);
		hl_engine_stats(A.eng, &st);
		if (st.flow_window > window)
			window = st.flow_window;
		assert_true(in_flight(&A) <= window);
		assert_true(window <= HL_FLOW_WINDOW_MAX);
		now_ms++;
		if (moved + back == 0) {
			/* the receiver's worker is still hashing and writing */
			assert_true(++idle < 20000);
			usleep(500);
		}
	}
	assert_true(atomic_load(&wakes) > 0);
	hl_engine_stats(A.eng, &st);
	assert_true(st.chunk_data_sent >= size);
	/* a CREDIT that goes back, or beyond what was sent, is a violation */
	uint8_t body[HL_CREDIT_LEN];
	hl_pkt_credit_encode(st.chunk_data_credited - 1, body);
	assert_true(hl_engine_on_packet(A.eng, HL_PKT_CREDIT, body, sizeof(body), now_ms) < 0);
	assert_non_null(strstr(hl_engine_error(A.eng), "CREDIT"));
	hl_pkt_credit_encode(st.chunk_data_sent + 1, body);
	assert_true(hl_engine_on_packet(A.eng, HL_PKT_CREDIT, body, sizeof(body), now_ms) < 0);
	assert_true(hl_engine_on_packet(A.eng, HL_PKT_CREDIT, body, 7, now_ms) < 0);
	assert_doc_whole_at_b(doc);
	free(doc);
}

static void test_credit_packet(void **state)
{
	(void)state;
	uint8_t body[HL_CREDIT_LEN + 1] = { 0 };
	uint64_t taken = 0;
	hl_pkt_credit_encode(0x0102030405060708ull, body);
	assert_memory_equal(body, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	assert_int_equal(hl_pkt_credit_decode(body, 8, &taken), 0);
	assert_true(taken == 0x0102030405060708ull);
	assert_int_equal(hl_pkt_credit_decode(body, 7, &taken), HL_EINVAL);
	assert_int_equal(hl_pkt_credit_decode(body, 9, &taken), HL_EINVAL);
	assert_int_equal(hl_pkt_credit_decode(body, 0, &taken), HL_EINVAL);
}

/* An ITEM packet's head (and a RETURN packet): 2 item_len, the item; it
 * decodes back to the same item, and refuses an empty item or a short
 * buffer. */
static void test_item_packet(void **state)
{
	(void)state;
	uint8_t item[300], rec[400];
	struct hl_pkt_item r;
	size_t len = 0;
	for (size_t i = 0; i < sizeof(item); i++)
		item[i] = (uint8_t)(i * 7);
	assert_int_equal(hl_pkt_item_encode(item, sizeof(item), rec, sizeof(rec), &len), 0);
	assert_int_equal(len, 2 + sizeof(item));
	assert_int_equal(rec[0], 0x01);
	assert_int_equal(rec[1], 0x2c);
	assert_int_equal(hl_pkt_return_decode(rec, len, &r), 0);
	assert_int_equal(r.item_len, sizeof(item));
	assert_memory_equal(r.item, item, sizeof(item));
	assert_int_equal(hl_pkt_item_encode(item, 0, rec, sizeof(rec), &len), HL_EINVAL);
	assert_int_equal(hl_pkt_item_encode(item, sizeof(item), rec, sizeof(item) + 1, &len),
			 HL_ETOOBIG);
}

/* A peer whose HELLO has no CREDIT flag gets no window (and sends no
 * CREDIT): the document goes as before. */
static void test_no_credit_without_flag(void **state)
{
	(void)state;
	char *doc = xasprintf("%s/plain.bin", A.dir);
	make_file(doc, 12u << 20);
	send_file(&A, HL_PREC_ROUTINE, doc, doc_id);
	run(1 << 20, NULL);
	struct hl_engine_stats st;
	hl_engine_stats(A.eng, &st);
	assert_false(st.credit_on);
	assert_int_equal(st.window_waits, 0);
	assert_int_equal(st.chunk_data_credited, 0);
	assert_true(delivered(&A, doc_id));
	free(doc);
}

/* The receiver credits everything it took when its burst ends, not only
 * every quarter window: a sender whose window (sized in time) is smaller
 * than that, on a slow link, must not wait for ever. */
static void test_credit_at_burst_end(void **state)
{
	(void)state;
	session_flags = HL_HELLO_FLAG_CREDIT;
	crash(&B);
	crash(&A);
	sessions_up();
	run(1 << 20, NULL);
	char *doc = xasprintf("%s/burst.bin", A.dir);
	make_file(doc, 2u << 20);
	send_file(&A, HL_PREC_ROUTINE, doc, doc_id);
	poke();
	/* one burst: the ITEM and the first whole chunk (65,500 bytes of
	 * data, under a quarter window), then B's commit ends it */
	struct hl_engine_stats sb = { 0 };
	while (sb.chunks_in == 0) {
		assert_true(carry(&A, &B, 4096) > 0);
		hl_engine_stats(B.eng, &sb);
	}
	commit(&B);
	now_ms += 5;   /* the CREDIT comes back a round trip later */
	carry(&B, &A, 1 << 20);
	commit(&A);
	struct hl_engine_stats st;
	hl_engine_stats(A.eng, &st);
	assert_true(st.chunk_data_credited > 0);
	assert_true(st.chunk_data_credited < HL_CREDIT_WINDOW / 4);
	/* and from that CREDIT on, the sender measures the path */
	assert_true(st.flow_rtt_us > 0 && st.flow_rate > 0);
	run(1 << 20, NULL);
	assert_true(delivered(&A, doc_id));
	free(doc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_mixed_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flash_overtakes_document, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crashes_exactly_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_quota_refuses_for_now, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_window, setup, teardown),
		cmocka_unit_test_setup_teardown(test_credit_at_burst_end, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_credit_without_flag, setup, teardown),
		cmocka_unit_test(test_credit_packet),
		cmocka_unit_test(test_item_packet),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
