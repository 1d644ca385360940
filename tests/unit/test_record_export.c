/* tests/unit/test_record_export.c — `record export` from a real store
 * (record/export.c and the store's export queries): the golden history
 * stored as a station holds it (its own chain, the peer's with a refused and
 * a missing position, messages with their contents and an attachment
 * file), exported with --only and --with-attachments, must give the golden
 * record byte for byte; the default export discloses every message held;
 * a message still arriving is withheld with a warning; bad --only ids are
 * refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crypto/keys.h"
#include "msg/message.h"
#include "record/export.h"
#include "record/format.h"
#include "record/verify.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

#include "test_record_fixture.h"

static char golden_dir[4096];

struct station {
	char dir[64];
	hl_store *store;
	const hl_signer *me;
	hl_station_conf conf;
	hl_peer_conf peer;
	int64_t peer_id;
	struct fx_hist *h;
	char ids[FX_MAXMSG][33];      /* by h->m index */
};

static void rm_rf(const char *dir)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
	free(cmd);
}

/* Stores history H at washington: its chain OUT, pyongyang's IN (refused
 * positions as tombstones, missing ones not at all), every message with
 * its contents (except those in PARTIAL, stored as still arriving), and
 * attachment 0 of each message as a file. */
static void station_up(struct station *s, struct fx_hist *h, const bool *partial)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/hl-rec-export-XXXXXX");
	assert_non_null(mkdtemp(s->dir));
	assert_int_equal(hl_store_open(s->dir, &s->store), 0);
	s->me = fx_signer[0]; /* washington's keys; the fixture keeps them */
	snprintf(s->conf.name, sizeof(s->conf.name), "washington");
	snprintf(s->conf.address, sizeof(s->conf.address), "127.0.0.1:7100");
	snprintf(s->peer.name, sizeof(s->peer.name), "pyongyang");
	snprintf(s->peer.address, sizeof(s->peer.address), "127.0.0.1:7101");
	memcpy(s->peer.signing_key, fx_pk[1], 32);
	memcpy(s->peer.noise_key, fx_nk[1], 32);
	s->h = h;
	assert_int_equal(hl_store_peer(s->store, fx_pk[1], fx_nk[1], "pyongyang", &s->peer_id), 0);

	struct hl_item *it = xcalloc(1, sizeof(*it));
	for (unsigned c = 0; c < 2; c++) {
		for (size_t i = 0; i < h->n[c]; i++) {
			const struct fx_ent *e = &h->e[c][i];
			if (e->type == HL_RECORD_ABSENT)
				continue;
			if (e->type == HL_RECORD_REFUSED) {
				assert_int_equal(hl_store_insert_tombstone(s->store, s->peer_id, i + 1,
									   e->hash, e->code), 0);
				continue;
			}
			assert_int_equal(hl_item_decode(e->item, e->len, it), 0);
			struct hl_item_row row = {
				.peer_id = s->peer_id, .dir = c ? HL_DIR_IN : HL_DIR_OUT, .seq = i + 1,
				.kind = it->kind, .encoded = e->item, .encoded_len = e->len,
				.precedence = it->kind == HL_ITEM_MESSAGE ? it->u.msg.precedence
									  : HL_PREC_FLASH,
				.stored_at = 1,
			};
			memcpy(row.hash, e->hash, 32);
			assert_int_equal(hl_store_insert_item(s->store, &row), 0);
		}
	}
	for (size_t i = 0; i < h->nm; i++) {
		const struct fx_msg *m = &h->m[i];
		const struct fx_ent *e = &h->e[m->chain][m->seq - 1];
		assert_int_equal(hl_item_decode(e->item, e->len, it), 0);
		const struct hl_item_message *im = &it->u.msg;
		hl_msg_id_hex(im->id, s->ids[i]);
		struct hl_att_row att[4];
		memset(att, 0, sizeof(att));
		for (unsigned a = 0; a < im->n_attachments; a++) {
			att[a].idx = a;
			memcpy(att[a].name, im->att[a].name, im->att[a].name_len);
			att[a].size = im->att[a].size;
			memcpy(att[a].hash, im->att[a].hash, 32);
			snprintf(att[a].path, sizeof(att[a].path), "%s/%s/%u",
				 m->chain ? "in" : "out", s->ids[i], a);
			att[a].done = m->chain ? att[a].size : 0;
		}
		bool arriving = partial && partial[i];
		struct hl_msg_row row = {
			.peer_id = s->peer_id, .dir = m->chain ? HL_DIR_IN : HL_DIR_OUT,
			.seq = m->seq, .precedence = im->precedence, .class_seq = im->class_seq,
			.subject = (char *)m->subject,
			.body = arriving ? NULL : (uint8_t *)m->body, .body_size = strlen(m->body),
			.sent_at = (int64_t)it->time_ms,
			.state = m->chain ? (arriving ? HL_MSG_PARTIAL : HL_MSG_COMPLETE)
					  : HL_MSG_DELIVERED,
			.n_att = im->n_attachments, .att = att,
		};
		memcpy(row.id, im->id, 16);
		memcpy(row.salt, m->salt, 32);
		assert_int_equal(hl_store_insert_message(s->store, &row), 0);
	}
	/* Attachment 0's bytes are here; attachment 1's file is not. */
	for (size_t i = 0; i < h->na; i++) {
		const struct fx_att *a = &h->a[i];
		size_t mi = 0;
		while (h->m[mi].chain != a->chain || h->m[mi].seq != a->seq)
			mi++;
		char *d1 = xasprintf("%s/%s", s->dir, a->chain ? "in" : "out");
		char *d2 = xasprintf("%s/%s", d1, s->ids[mi]);
		char *f = xasprintf("%s/%u", d2, a->index);
		mkdir(d1, 0700);
		mkdir(d2, 0700);
		assert_int_equal(hl_write_file_atomic(f, a->data, a->size, 0600), 0);
		free(d1);
		free(d2);
		free(f);
	}
	free(it);
}

static void station_down(struct station *s)
{
	hl_store_close(s->store);
	rm_rf(s->dir);
}

struct warnings {
	char text[4096];
	size_t n;
};

static void warn(void *arg, const char *line)
{
	struct warnings *w = arg;
	w->n++;
	size_t len = strlen(w->text);
	snprintf(w->text + len, sizeof(w->text) - len, "%s\n", line);
}

static int do_export(struct station *s, bool with_att, bool only, const char *const *ids,
		     size_t nids, uint8_t **buf, size_t *len, struct hl_record_export_stats *st,
		     struct warnings *w, char *err)
{
	struct fx_buf b = { 0 };
	struct hl_record_writer wr;
	hl_record_writer_init(&wr, fx_sink, &b);
	struct hl_record_export o = {
		.dir = s->dir, .store = s->store, .me = s->me, .conf = &s->conf, .peer = &s->peer,
		.with_attachments = with_att, .only = only, .ids = ids, .nids = nids,
		.exported_at = FX_T0 + 999999, .warn = warn, .warn_arg = w,
	};
	int ret = hl_record_export(&o, &wr, st, err, 512);
	*buf = b.p;
	*len = b.len;
	return ret;
}

static void test_export_reproduces_the_golden(void **state)
{
	(void)state;
	struct station s;
	struct fx_hist *h = fx_golden();
	station_up(&s, h, NULL);
	/* The golden discloses every message but washington's "Agenda". */
	const char *ids[FX_MAXMSG];
	size_t n = 0;
	for (size_t i = 0; i < h->nm; i++)
		if (h->m[i].disclose)
			ids[n++] = s.ids[i];
	uint8_t *buf;
	size_t len;
	struct hl_record_export_stats st;
	struct warnings w = { .n = 0 };
	char err[512];
	assert_int_equal(do_export(&s, true, true, ids, n, &buf, &len, &st, &w, err), 0);
	assert_int_equal(st.entries[0], 4);
	assert_int_equal(st.entries[1], 8);
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.absent, 1);
	assert_int_equal(st.disclosed, 5);
	assert_int_equal(st.withheld, 1);
	assert_int_equal(st.attachments, 1);
	assert_int_equal(w.n, 1);
	assert_non_null(strstr(w.text, "attachment 1 of message"));

	char *path = xasprintf("%s/golden.rec", golden_dir), *gold;
	size_t glen;
	assert_int_equal(hl_read_file(path, 1 << 20, &gold, &glen), 0);
	assert_int_equal(len, glen);
	assert_memory_equal(buf, gold, glen);
	free(gold);
	free(path);
	free(buf);

	/* By default every message held is disclosed, attachments not. */
	w.n = 0;
	assert_int_equal(do_export(&s, false, false, NULL, 0, &buf, &len, &st, &w, err), 0);
	assert_int_equal(st.disclosed, 6);
	assert_int_equal(st.withheld, 0);
	assert_int_equal(st.attachments, 0);
	assert_int_equal(w.n, 0);
	char why[640];
	assert_int_equal(fx_check(buf, len, 1, 0, why, sizeof(why)), 0);
	assert_non_null(memmem(buf, len, "Private draft agenda.", 21));
	free(buf);
	station_down(&s);
	free(h);
}

static void test_export_only_errors(void **state)
{
	(void)state;
	struct station s;
	struct fx_hist *h = fx_golden();
	station_up(&s, h, NULL);
	/* Another peer's message. */
	int64_t other;
	assert_int_equal(hl_store_peer(s.store, fx_pk[2], fx_nk[2], "moscow", &other), 0);
	struct fx_hist *h2 = fx_new();
	fx_message(h2, 0, HL_PREC_ROUTINE, "x", "y", 0, true);
	struct hl_item *it = xcalloc(1, sizeof(*it));
	assert_int_equal(hl_item_decode(h2->e[0][0].item, h2->e[0][0].len, it), 0);
	it->u.msg.id[0] ^= 0xff;
	memcpy(it->counterpart, fx_pk[2], 32);
	uint8_t enc[FX_ITEM];
	size_t elen;
	assert_int_equal(hl_item_encode_sign(it, fx_signer[0], enc, sizeof(enc), &elen), 0);
	struct hl_item_row ir = { .peer_id = other, .dir = HL_DIR_OUT, .seq = 1,
				  .kind = HL_ITEM_MESSAGE, .encoded = enc, .encoded_len = elen };
	hl_item_hash(enc, elen, ir.hash);
	assert_int_equal(hl_store_insert_item(s.store, &ir), 0);
	struct hl_msg_row mr = { .peer_id = other, .dir = HL_DIR_OUT, .seq = 1, .class_seq = 1,
				 .subject = "x", .body = (uint8_t *)"y", .body_size = 1,
				 .state = HL_MSG_QUEUED };
	memcpy(mr.id, it->u.msg.id, 16);
	assert_int_equal(hl_store_insert_message(s.store, &mr), 0);
	char other_id[33];
	hl_msg_id_hex(it->u.msg.id, other_id);
	free(it);
	free(h2);

	uint8_t *buf;
	size_t len;
	struct hl_record_export_stats st;
	struct warnings w = { .n = 0 };
	char err[512];
	const char *bad[][1] = { { "00000000000000000000000000000000" }, { other_id },
				 { "zz" }, { "0123" } };
	const char *want[] = { "no message with id", "is not on the link with pyongyang",
			       "is not a message id", "is not a message id" };
	for (size_t i = 0; i < 4; i++) {
		assert_int_not_equal(do_export(&s, false, true, bad[i], 1, &buf, &len, &st, &w,
					       err), 0);
		if (!strstr(err, want[i]))
			fail_msg("--only %s: '%s' does not say '%s'", bad[i][0], err, want[i]);
		free(buf);
	}
	/* A unique prefix of 8 digits names the message. */
	char prefix[9];
	memcpy(prefix, s.ids[2], 8);
	prefix[8] = '\0';
	const char *one[] = { prefix };
	assert_int_equal(do_export(&s, false, true, one, 1, &buf, &len, &st, &w, err), 0);
	assert_int_equal(st.disclosed, 1);
	assert_non_null(memmem(buf, len, "Private draft agenda.", 21));
	free(buf);
	station_down(&s);
	free(h);
}

static void test_export_withholds_what_is_still_arriving(void **state)
{
	(void)state;
	struct station s;
	struct fx_hist *h = fx_golden();
	bool partial[FX_MAXMSG] = { false };
	partial[h->nm - 1] = true; /* pyongyang's last message */
	station_up(&s, h, partial);
	uint8_t *buf;
	size_t len;
	struct hl_record_export_stats st;
	struct warnings w = { .n = 0 };
	char err[512], why[640];
	assert_int_equal(do_export(&s, false, false, NULL, 0, &buf, &len, &st, &w, err), 0);
	assert_int_equal(st.disclosed, 5);
	assert_int_equal(st.withheld, 1);
	assert_non_null(strstr(w.text, "still arriving"));
	assert_int_equal(fx_check(buf, len, 0, 1, why, sizeof(why)), 0);
	free(buf);
	/* Naming it is an error: its contents are not here yet. */
	const char *ids[] = { s.ids[h->nm - 1] };
	assert_int_not_equal(do_export(&s, false, true, ids, 1, &buf, &len, &st, &w, err), 0);
	assert_non_null(strstr(err, "still arriving"));
	free(buf);
	station_down(&s);
	free(h);
}

static void test_export_without_history(void **state)
{
	(void)state;
	struct station s;
	struct fx_hist *h = fx_new();
	station_up(&s, h, NULL);
	/* A peer the store has never seen: two empty chains. */
	memcpy(s.peer.signing_key, fx_pk[2], 32);
	memcpy(s.peer.noise_key, fx_nk[2], 32);
	snprintf(s.peer.name, sizeof(s.peer.name), "moscow");
	snprintf(s.peer.address, sizeof(s.peer.address), "127.0.0.1:7102");
	uint8_t *buf;
	size_t len;
	struct hl_record_export_stats st;
	struct warnings w = { .n = 0 };
	char err[512], why[640];
	assert_int_equal(do_export(&s, true, false, NULL, 0, &buf, &len, &st, &w, err), 0);
	assert_int_equal(st.entries[0] + st.entries[1], 0);
	assert_int_equal(fx_check(buf, len, 0, 2, why, sizeof(why)), 0);
	free(buf);
	station_down(&s);
	free(h);
}

static void test_export_carries_evidence(void **state)
{
	(void)state;
	struct station s;
	struct fx_hist *h = fx_golden(), *other = fx_new();
	station_up(&s, h, NULL);
	/* Pyongyang signed another item 2 (after the same item 1). */
	other->e[1][0] = h->e[1][0];
	other->n[1] = 1;
	other->t = h->t;
	fx_message(other, 1, HL_PREC_IMMEDIATE, "Reply", "Rejected outright.", 0, true);
	struct hl_equivocation_row row = {
		.peer_id = s.peer_id, .seq = 2,
		.first_item = h->e[1][1].item, .first_len = h->e[1][1].len,
		.second_item = other->e[1][1].item, .second_len = other->e[1][1].len,
		.detected_at = 5,
	};
	memcpy(row.first_hash, h->e[1][1].hash, 32);
	memcpy(row.second_hash, other->e[1][1].hash, 32);
	assert_int_equal(hl_store_insert_equivocation(s.store, &row), 0);
	uint8_t *buf;
	size_t len;
	struct hl_record_export_stats st;
	struct warnings w = { .n = 0 };
	char err[512], why[640];
	assert_int_equal(do_export(&s, false, false, NULL, 0, &buf, &len, &st, &w, err), 0);
	assert_int_equal(st.evidence, 1);
	struct hl_record *rec;
	assert_int_equal(hl_record_parse(buf, len, &rec, why, sizeof(why)), 0);
	assert_int_equal(rec->nevidence, 1);
	hl_record_cursor *cur;
	struct hl_record_evidence ev;
	assert_int_equal(hl_record_evidence_open(rec, &cur), 0);
	assert_int_equal(hl_record_evidence_next(cur, &ev), 1);
	assert_int_equal(ev.len, other->e[1][1].len);
	assert_memory_equal(ev.item, other->e[1][1].item, other->e[1][1].len);
	hl_record_cursor_free(cur);
	hl_card a, b;
	fx_card(0, &a);
	fx_card(1, &b);
	struct hl_record_verdict v;
	assert_int_equal(hl_record_verify(rec, &a, &b, NULL, NULL, &v), 0);
	assert_int_equal(v.equivocations, 1);
	hl_record_free(rec);
	free(buf);
	station_down(&s);
	free(h);
	free(other);
}

static int setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	fx_keys();
	return 0;
}

int main(void)
{
	char here[sizeof(golden_dir) - 32];
	snprintf(here, sizeof(here), "%s", __FILE__);
	snprintf(golden_dir, sizeof(golden_dir), "%s/../golden/record", dirname(here));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_export_reproduces_the_golden),
		cmocka_unit_test(test_export_only_errors),
		cmocka_unit_test(test_export_withholds_what_is_still_arriving),
		cmocka_unit_test(test_export_without_history),
		cmocka_unit_test(test_export_carries_evidence),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
