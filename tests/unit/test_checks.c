/* tests/unit/test_checks.c — line checks, agreements and equivocation
 * below the daemon: the schedule (CheckEvery, CheckAt in time zones across
 * daylight saving time), the configuration keys, and two stations' real
 * stores and delivery engines exchanging CHECK, ANSWER, AGREEMENT and
 * COUNTERSIGN items (the test carries the ITEM packets by hand, as a link
 * would), and a peer that signs two items at one position. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "conf/config.h"
#include "daemon/schedule.h"
#include "deliver/author.h"
#include "deliver/engine.h"
#include "wire/msgproto.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"

/* ---- the schedule ---- */

static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm t = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			.tm_min = mi };
	return (int64_t)timegm(&t) * 1000;
}

static hl_peer_conf at_conf(const char *at, const char *zone)
{
	hl_peer_conf pc;
	memset(&pc, 0, sizeof(pc));
	assert_int_equal(hl_check_at_parse(at, strlen(at), pc.check_at, &pc.n_check_at), 0);
	snprintf(pc.check_zone, sizeof(pc.check_zone), "%s", zone);
	return pc;
}

static void test_schedule_every(void **state)
{
	(void)state;
	hl_peer_conf pc;
	memset(&pc, 0, sizeof(pc));
	assert_int_equal(hl_check_next(&pc, 0, 1000), 0);   /* no schedule */
	pc.check_every_ms = 60000;
	assert_int_equal(hl_check_next(&pc, 0, 1000), 61000);
	assert_int_equal(hl_check_next(&pc, 30000, 50000), 90000);
	/* missed while down: not made up, the next is a full interval on */
	assert_int_equal(hl_check_next(&pc, 30000, 500000), 560000);
}

static void test_schedule_at_zones(void **state)
{
	(void)state;
	if (!hl_zone_exists("Asia/Seoul") || !hl_zone_exists("America/New_York")) {
		fprintf(stderr, "SKIPPED: the zoneinfo files (tzdata) are not installed\n");
		skip();
	}
	/* UTC */
	hl_peer_conf pc = at_conf("17:00, 09:00", "");
	assert_int_equal(pc.check_at[0], 9 * 60);
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 1, 15, 8, 0)), utc(2026, 1, 15, 9, 0));
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 1, 15, 9, 0)), utc(2026, 1, 15, 17, 0));
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 1, 15, 17, 0)), utc(2026, 1, 16, 9, 0));
	/* Seoul is UTC+9 all year: 09:00 and 17:00 KST are 00:00 and 08:00 UTC */
	pc = at_conf("09:00,17:00", "Asia/Seoul");
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 1, 15, 0, 30)), utc(2026, 1, 15, 8, 0));
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 1, 15, 8, 0)), utc(2026, 1, 16, 0, 0));
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 1, 14, 23, 59)), utc(2026, 1, 15, 0, 0));
	/* New York moves to daylight saving time on 2026-03-08: 09:00 is
	 * 14:00 UTC the day before and 13:00 UTC that day. */
	pc = at_conf("09:00", "America/New_York");
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 3, 7, 12, 0)), utc(2026, 3, 7, 14, 0));
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 3, 7, 15, 0)), utc(2026, 3, 8, 13, 0));
	/* and back on 2026-11-01 */
	assert_int_equal(hl_check_next(&pc, 0, utc(2026, 11, 1, 0, 0)), utc(2026, 11, 1, 14, 0));
	/* the process's own TZ is left as it was */
	setenv("TZ", "UTC", 1);
	(void)hl_check_next(&pc, 0, utc(2026, 3, 7, 12, 0));
	assert_string_equal(getenv("TZ"), "UTC");
	char text[128];
	hl_check_schedule_text(&pc, text, sizeof(text));
	assert_string_equal(text, "at 09:00 America/New_York");
}

/* ---- the schedule from many threads at once ----
 * The daemon's worker threads run while its loop schedules checks: a zone
 * computation must neither touch TZ nor see another thread's zone. */

struct worker {
	const char *zone;
	int64_t now, want;
	atomic_int *stop;
	long wrong, runs;
};

static void *work(void *arg)
{
	struct worker *w = arg;
	hl_peer_conf pc = at_conf("09:00", w->zone);
	while (!atomic_load(w->stop) && w->runs < 4000) {
		if (hl_check_next(&pc, 0, w->now) != w->want)
			w->wrong++;
		w->runs++;
	}
	return NULL;
}

struct watcher {
	atomic_int *stop;
	long changed, looks;
};

/* Whoever reads TZ meanwhile (another library, a log line in local time)
 * must see what the process was started with: here, none. */
static void *watch_env(void *arg)
{
	struct watcher *w = arg;
	while (!atomic_load(w->stop)) {
		if (getenv("TZ") != NULL)
			w->changed++;
		w->looks++;
	}
	return NULL;
}

static void test_zones_in_parallel_threads(void **state)
{
	(void)state;
	if (!hl_zone_exists("Asia/Seoul") || !hl_zone_exists("America/New_York")) {
		fprintf(stderr, "SKIPPED: the zoneinfo files (tzdata) are not installed\n");
		skip();
	}
	unsetenv("TZ");
	atomic_int stop = 0;
	/* 09:00 in each zone, the next after 2026-03-07 12:00 UTC. */
	struct worker w[4] = {
		{ "Asia/Seoul", utc(2026, 3, 7, 12, 0), utc(2026, 3, 8, 0, 0), &stop, 0, 0 },
		{ "America/New_York", utc(2026, 3, 7, 12, 0), utc(2026, 3, 7, 14, 0), &stop, 0, 0 },
		{ "Europe/London", utc(2026, 3, 7, 12, 0), utc(2026, 3, 8, 9, 0), &stop, 0, 0 },
		{ "Australia/Lord_Howe", utc(2026, 3, 7, 12, 0), utc(2026, 3, 7, 22, 0), &stop, 0, 0 },
	};
	struct watcher wt = { &stop, 0, 0 };
	pthread_t th[5];
	assert_int_equal(pthread_create(&th[4], NULL, watch_env, &wt), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	atomic_store(&stop, 1);
	pthread_join(th[4], NULL);
	for (int i = 0; i < 4; i++) {
		if (w[i].wrong)
			fail_msg("%s: %ld of %ld answers wrong while other threads computed other zones",
				 w[i].zone, w[i].wrong, w[i].runs);
	}
	if (wt.changed)
		fail_msg("TZ was set in the environment %ld times out of %ld looks", wt.changed,
			 wt.looks);
}

static void test_check_at_parse(void **state)
{
	(void)state;
	uint16_t m[HL_CHECK_AT_MAX];
	unsigned n;
	assert_int_equal(hl_check_at_parse("09:00", 5, m, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(hl_check_at_parse("23:59,00:00", 11, m, &n), 0);
	assert_int_equal(m[0], 0);
	assert_int_equal(m[1], 23 * 60 + 59);
	static const char *const bad[] = { "", "9:00", "24:00", "12:60", "09:00,", "09:00,09:00",
					   "09:00;17:00", "0900", "09:00 17:00", "aa:bb" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(hl_check_at_parse(bad[i], strlen(bad[i]), m, &n), HL_EINVAL);
	/* at most HL_CHECK_AT_MAX times */
	char many[HL_CHECK_AT_MAX * 6 + 16] = "";
	size_t k = 0;
	for (unsigned i = 0; i <= HL_CHECK_AT_MAX; i++)
		k += (size_t)snprintf(many + k, sizeof(many) - k, "%s%02u:%02u", i ? "," : "",
				      i / 2, (i % 2) * 30);
	assert_int_equal(hl_check_at_parse(many, k, m, &n), HL_EINVAL);
	assert_true(hl_zone_name_valid("Asia/Seoul"));
	assert_true(hl_zone_name_valid("Etc/GMT+9"));
	assert_false(hl_zone_name_valid("../etc/passwd"));
	assert_false(hl_zone_name_valid("Asia/../../x"));
	assert_false(hl_zone_name_valid("/Asia/Seoul"));
	assert_false(hl_zone_name_valid("Asia//Seoul"));
	assert_false(hl_zone_name_valid("Asia/Seoul;rm"));
}

/* ---- configuration ---- */

#define KEYS "NoiseKey = %s\nSigningKey = %s\n"

static char *conf_text(const char *station_extra, const char *peer_extra)
{
	hl_signer *id = NULL;
	assert_int_equal(hl_signer_generate(&id), 0);
	char nk[HL_KEY_B64_LEN], sk[HL_KEY_B64_LEN];
	hl_b64_key(hl_signer_noise_pub(id), nk);
	hl_b64_key(hl_signer_sign_pk(id), sk);
	hl_signer_free(id);
	return xasprintf("[Station]\nName = alpha\n%s\n[Peer]\nName = bravo\n" KEYS "%s",
			 station_extra, nk, sk, peer_extra);
}

static int parse(const char *station_extra, const char *peer_extra, hl_station_conf **c,
		 char *err)
{
	char *text = conf_text(station_extra, peer_extra);
	int r = hl_conf_parse(text, strlen(text), "station.conf", c, err);
	free(text);
	return r;
}

static void test_conf_keys(void **state)
{
	(void)state;
	hl_station_conf *c = NULL;
	char err[HL_CONF_ERR_LEN];
	assert_int_equal(parse("AlarmCommand = /usr/local/bin/alarm me", "CheckAt = 09:00, 17:00\n"
			       "CheckZone = Asia/Seoul\nCheckTimeout = 2m\nCheckMode = Operator\n",
			       &c, err), 0);
	assert_string_equal(c->alarm_command, "/usr/local/bin/alarm me");
	assert_int_equal(c->peers[0].n_check_at, 2);
	assert_int_equal(c->peers[0].check_at[1], 17 * 60);
	assert_string_equal(c->peers[0].check_zone, "Asia/Seoul");
	assert_int_equal(c->peers[0].check_timeout_ms, 120000);
	assert_int_equal(c->peers[0].check_mode, 1);
	assert_int_equal(c->peers[0].check_every_ms, 0);
	hl_conf_free(c);
	/* defaults */
	assert_int_equal(parse("", "CheckEvery = 1h\n", &c, err), 0);
	assert_int_equal(c->peers[0].check_every_ms, 3600000);
	assert_int_equal(c->peers[0].check_timeout_ms, HL_DEFAULT_CHECK_TIMEOUT_MS);
	assert_int_equal(c->peers[0].check_mode, 0);
	assert_string_equal(c->alarm_command, "");
	hl_conf_free(c);

	static const struct { const char *station, *peer, *want; } bad[] = {
		{ "", "CheckEvery = 5m\nCheckAt = 09:00\n", "choose one schedule" },
		{ "", "CheckZone = Asia/Seoul\n", "has no CheckAt" },
		{ "", "CheckEvery = 10s\nCheckTimeout = 10s\n", "shorter than CheckEvery" },
		{ "", "CheckEvery = 25h\n", "at most 24h" },
		{ "", "CheckTimeout = 2h\n", "at most 1h" },
		{ "", "CheckAt = 9am\n", "bad CheckAt '9am'" },
		{ "", "CheckAt = 09:00\nCheckZone = ../../etc/passwd\n", "bad CheckZone" },
		{ "", "CheckMode = robot\n", "bad CheckMode 'robot'" },
		{ "AlarmCommand = alarm.sh", "", "bad AlarmCommand 'alarm.sh'" },
		{ "CheckEvery = 5m", "", "unknown key 'CheckEvery' in [Station]" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		c = NULL;
		assert_int_equal(parse(bad[i].station, bad[i].peer, &c, err), HL_EINVAL);
		assert_null(c);
		if (!strstr(err, bad[i].want))
			fail_msg("case %zu: '%s' does not say '%s'", i, err, bad[i].want);
		assert_non_null(strstr(err, "station.conf:"));
	}
}

/* hl_conf_load also checks that the zone exists, naming the line. */
static void test_conf_unknown_zone(void **state)
{
	(void)state;
	char dir[] = "/tmp/hl-checks-conf-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *text = conf_text("", "CheckAt = 09:00\nCheckZone = Mars/Olympus_Mons\n");
	char *path = xasprintf("%s/station.conf", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	hl_station_conf *c = NULL;
	char err[HL_CONF_ERR_LEN];
	assert_int_equal(hl_conf_load(dir, &c, err), HL_EINVAL);
	assert_null(c);
	assert_non_null(strstr(err, ":9: unknown CheckZone 'Mars/Olympus_Mons'"));
	unlink(path);
	rmdir(dir);
	free(path);
	free(text);
}

/* ---- two stations' engines ---- */

struct side {
	char dir[64];
	hl_signer *id;
	hl_store *store;
	struct hl_txn txn;
	hl_peer_conf peer;
	hl_engine *eng;
	struct hl_engine_evinfo ev[16];
	size_t nev;
};

static struct side A, B;

static void on_event(void *user, const char *peer, const struct hl_engine_evinfo *ev)
{
	struct side *s = user;
	(void)peer;
	if (s->nev < 16)
		s->ev[s->nev++] = *ev;
}

static void side_up(struct side *s, const char *tag)
{
	memset(s, 0, sizeof(*s));
	snprintf(s->dir, sizeof(s->dir), "/tmp/hl-checks-%s-XXXXXX", tag);
	assert_non_null(mkdtemp(s->dir));
	assert_int_equal(hl_signer_generate(&s->id), 0);
	assert_int_equal(hl_store_open(s->dir, &s->store), 0);
	s->txn.store = s->store;
}

static void side_pin(struct side *s, const struct side *o, const char *name)
{
	snprintf(s->peer.name, sizeof(s->peer.name), "%s", name);
	memcpy(s->peer.noise_key, hl_signer_noise_pub(o->id), 32);
	memcpy(s->peer.signing_key, hl_signer_sign_pk(o->id), 32);
	struct hl_engine_env env = { .dir = s->dir, .txn = &s->txn, .me = s->id,
				     .on_event = on_event, .user = s };
	assert_int_equal(hl_engine_new(&s->eng, &env, &s->peer), 0);
}

static void side_down(struct side *s)
{
	hl_engine_free(s->eng);
	hl_store_close(s->store);
	hl_signer_free(s->id);
	char *cmd = xasprintf("rm -rf '%s'", s->dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

static int pair_up(void **state)
{
	(void)state;
	side_up(&A, "a");
	side_up(&B, "b");
	side_pin(&A, &B, "bravo");
	side_pin(&B, &A, "alpha");
	return 0;
}

static int pair_down(void **state)
{
	(void)state;
	side_down(&A);
	side_down(&B);
	return 0;
}

static struct hl_author_link link_of(struct side *s)
{
	struct hl_author_link l = { .st = s->store, .me = s->id,
				    .peer_id = hl_engine_peer_id(s->eng) };
	memcpy(l.peer_sign, s->peer.signing_key, 32);
	return l;
}

/* The group commit, as the daemon does it. */
static void commit(struct side *s)
{
	assert_int_equal(hl_engine_precommit(s->eng, 0), 0);
	if (s->txn.open) {
		assert_int_equal(hl_store_commit(s->store), 0);
		s->txn.open = false;
	}
	hl_engine_postcommit(s->eng, 0);
}

/* Carries item SEQ of FROM's chain to TO as an ITEM packet (raw bytes
 * when ENC is given). */
static void carry_bytes(struct side *to, const uint8_t *enc, size_t len)
{
	uint8_t *rec = xmalloc(2 + len);
	rec[0] = (uint8_t)(len >> 8);
	rec[1] = (uint8_t)len;
	memcpy(rec + 2, enc, len);
	assert_int_equal(hl_engine_on_packet(to->eng, HL_PKT_ITEM, rec, 2 + len, 0), 0);
	free(rec);
	commit(to);
}

static void carry(struct side *from, struct side *to, uint64_t seq)
{
	struct hl_item_row row;
	uint8_t *buf = xmalloc(HL_ITEM_MAX);
	assert_int_equal(hl_store_get_item(from->store, hl_engine_peer_id(from->eng), HL_DIR_OUT,
					   seq, &row, buf, HL_ITEM_MAX), 0);
	carry_bytes(to, buf, row.encoded_len);
	free(buf);
}

static void test_check_answered(void **state)
{
	(void)state;
	struct hl_author_link la = link_of(&A);
	struct hl_check_row c, got;
	assert_int_equal(hl_store_begin(A.store), 0);
	assert_int_equal(hl_author_check(&la, HL_CHECK_OPERATOR, true, 5000, false, 1000, &c), 0);
	assert_int_equal(hl_store_commit(A.store), 0);
	assert_int_equal(c.seq, 1);
	assert_int_equal(c.deadline, 6000);
	carry(&A, &B, 1);
	/* B recorded the check and the station answered at once */
	assert_int_equal(B.nev, 1);
	assert_int_equal(B.ev[0].ev, HL_EV_CHECK_IN);
	assert_int_equal(B.ev[0].by, HL_CHECK_OPERATOR);
	assert_int_equal(hl_store_get_check(B.store, hl_engine_peer_id(B.eng), HL_DIR_IN, c.id,
					    &got), 0);
	assert_int_equal(got.result, HL_CHECK_PENDING);   /* a person is still due */
	assert_true(got.station_at > 0);
	struct hl_item_row irow;
	uint8_t buf[HL_ITEM_MAX];
	struct hl_item it;
	assert_int_equal(hl_store_get_item(B.store, hl_engine_peer_id(B.eng), HL_DIR_OUT, 1, &irow,
					   buf, sizeof(buf)), 0);
	assert_int_equal(hl_item_open(buf, irow.encoded_len, hl_signer_sign_pk(B.id),
				      hl_signer_sign_pk(A.id), &it), 0);
	assert_int_equal(it.kind, HL_ITEM_ANSWER);
	assert_int_equal(it.u.ans.by, HL_ANSWER_STATION);
	assert_int_equal(it.u.ans.check_seq, 1);
	assert_int_equal(it.u.ans.peer_seq, 1);   /* B holds A's chain up to the check */
	carry(&B, &A, 1);
	assert_int_equal(hl_store_get_check(A.store, hl_engine_peer_id(A.eng), HL_DIR_OUT, c.id,
					    &got), 0);
	assert_int_equal(got.result, HL_CHECK_PENDING);   /* operator mode: not decided */
	assert_true(got.station_at > 0);
	assert_int_equal(A.ev[A.nev - 1].ev, HL_EV_ANSWER);
	/* a person at B answers */
	struct hl_author_link lb = link_of(&B);
	assert_int_equal(hl_store_get_check(B.store, lb.peer_id, HL_DIR_IN, c.id, &got), 0);
	assert_int_equal(hl_store_begin(B.store), 0);
	assert_int_equal(hl_author_answer(&lb, &got, HL_ANSWER_PERSON, 2000), 0);
	assert_int_equal(hl_store_commit(B.store), 0);
	assert_int_equal(got.result, HL_CHECK_OK);
	carry(&B, &A, 2);
	assert_int_equal(hl_store_get_check(A.store, la.peer_id, HL_DIR_OUT, c.id, &got), 0);
	assert_int_equal(got.result, HL_CHECK_OK);
	assert_true(got.person_at > 0);
	assert_int_equal(A.ev[A.nev - 1].by, HL_ANSWER_PERSON);
	/* an answer naming an item that is not our check changes nothing */
	size_t before = A.nev;
	assert_int_equal(hl_store_begin(B.store), 0);
	struct hl_item fake;
	memset(&fake, 0, sizeof(fake));
	fake.kind = HL_ITEM_ANSWER;
	fake.u.ans.check_seq = 1;
	memset(fake.u.ans.check_hash, 0x99, 32);
	uint8_t h[32];
	assert_int_equal(hl_author_item(&lb, &fake, h), 0);
	assert_int_equal(hl_store_commit(B.store), 0);
	carry(&B, &A, 3);
	assert_int_equal(A.nev, before);
	assert_int_equal(hl_store_verify(A.store), 0);
	assert_int_equal(hl_store_verify(B.store), 0);
}

static void test_agreement_countersigned(void **state)
{
	(void)state;
	struct hl_author_link la = link_of(&A), lb = link_of(&B);
	uint8_t doc_hash[32], msg_id[16], id[32];
	hl_doc_hash((const uint8_t *)"the treaty", 10, doc_hash);
	memset(msg_id, 0x5e, sizeof(msg_id));
	assert_int_equal(hl_store_begin(A.store), 0);
	assert_int_equal(hl_author_agreement(&la, "treaty.txt", 10, doc_hash, msg_id, 3000, id), 0);
	assert_int_equal(hl_store_commit(A.store), 0);
	struct hl_chain_head head;
	assert_int_equal(hl_store_chain_head(A.store, la.peer_id, HL_DIR_OUT, &head), 0);
	/* the id is the proposal item's hash */
	assert_memory_equal(head.hash, id, 32);
	carry(&A, &B, head.seq);
	struct hl_agreement_row g;
	char hex[65];
	hl_hex(id, 32, hex);
	hex[16] = '\0';
	assert_int_equal(hl_store_get_agreement(B.store, hex, &g), 0);
	assert_memory_equal(g.id, id, 32);   /* the same id at both stations */
	assert_int_equal(g.dir, HL_DIR_IN);
	assert_string_equal(g.name, "treaty.txt");
	assert_int_equal(g.sign_seq, 0);
	assert_int_equal(B.ev[B.nev - 1].ev, HL_EV_PROPOSAL);
	assert_int_equal(hl_store_begin(B.store), 0);
	assert_int_equal(hl_author_countersign(&lb, &g, 4000), 0);
	assert_int_equal(hl_author_countersign(&lb, &g, 4000), HL_EEXIST);
	assert_int_equal(hl_store_commit(B.store), 0);
	carry(&B, &A, g.sign_seq);
	assert_int_equal(hl_store_get_agreement_by_id(A.store, id, &g), 0);
	assert_int_equal(g.dir, HL_DIR_OUT);
	assert_true(g.sign_seq > 0 && g.signed_at > 0);
	assert_int_equal(A.ev[A.nev - 1].ev, HL_EV_SIGNED);
	assert_int_equal(hl_store_get_agreement(A.store, "zz", &g), HL_EINVAL);
	assert_int_equal(hl_store_get_agreement(A.store, "0000000000", &g), HL_ENOTFOUND);
}

static const uint8_t *equiv_pk;

struct evidence {
	size_t n;
	uint64_t seq;
	bool both_ok;
};

static int each(void *arg, const struct hl_equivocation_row *row)
{
	struct evidence *ev = arg;
	struct hl_item a, b;
	uint8_t h1[32], h2[32];
	hl_item_hash(row->first_item, row->first_len, h1);
	hl_item_hash(row->second_item, row->second_len, h2);
	ev->n++;
	ev->seq = row->seq;
	ev->both_ok = hl_item_open(row->first_item, row->first_len, equiv_pk, NULL, &a) == 0 &&
		      hl_item_open(row->second_item, row->second_len, equiv_pk, NULL, &b) == 0 &&
		      a.seq == b.seq && memcmp(h1, row->first_hash, 32) == 0 &&
		      memcmp(h2, row->second_hash, 32) == 0 && memcmp(h1, h2, 32) != 0;
	return 0;
}

/* A peer signs two different items at one position of its chain: both are
 * kept, once, and the pair verifies under the peer's key. */
static void test_equivocation_kept(void **state)
{
	(void)state;
	struct hl_author_link la = link_of(&A);
	struct hl_chain_head head;
	assert_int_equal(hl_store_chain_head(A.store, la.peer_id, HL_DIR_OUT, &head), 0);
	/* A's next item, delivered normally */
	struct hl_check_row c;
	assert_int_equal(hl_store_begin(A.store), 0);
	assert_int_equal(hl_author_check(&la, HL_CHECK_MACHINE, true, 1000, true, 5000, &c), 0);
	assert_int_equal(hl_store_commit(A.store), 0);
	carry(&A, &B, c.seq);
	/* ...and another item at the same position, signed by A */
	struct hl_item it;
	memset(&it, 0, sizeof(it));
	it.kind = HL_ITEM_CHECK;
	memcpy(it.author, hl_signer_sign_pk(A.id), 32);
	memcpy(it.counterpart, hl_signer_sign_pk(B.id), 32);
	it.seq = c.seq;
	memcpy(it.prev, head.hash, 32);
	it.time_ms = 5001;
	memset(it.u.chk.id, 0xee, HL_CHECK_ID_LEN);
	it.u.chk.timeout_ms = 1000;
	uint8_t enc[HL_ITEM_MAX];
	size_t len;
	assert_int_equal(hl_item_encode_sign(&it, A.id, enc, sizeof(enc), &len), 0);
	B.nev = 0;
	carry_bytes(&B, enc, len);
	assert_int_equal(B.nev, 1);
	assert_int_equal(B.ev[0].ev, HL_EV_EQUIVOCATION);
	assert_int_equal(B.ev[0].seq, c.seq);
	/* again: no second record, no second alarm */
	carry_bytes(&B, enc, len);
	assert_int_equal(B.nev, 1);
	/* a forgery at that position proves nothing and is not kept */
	enc[len - 1] ^= 1;
	carry_bytes(&B, enc, len);
	enc[len - 1] ^= 1;
	assert_int_equal(B.nev, 1);
	uint64_t n;
	int64_t peer_id = hl_engine_peer_id(B.eng);
	assert_int_equal(hl_store_count_equivocations(B.store, peer_id, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(hl_store_count_equivocations(B.store, peer_id + 100, &n), 0);
	assert_int_equal(n, 0);
	/* the store hands both items to the record exporter; both verify */
	struct evidence ev = { 0 };
	assert_int_equal(hl_store_each_equivocation(B.store, peer_id, each, &ev), 0);
	assert_int_equal(ev.n, 1);
	assert_int_equal(ev.seq, c.seq);
	assert_true(ev.both_ok);
	/* our copy of A's chain keeps the first */
	struct hl_item_row have;
	uint8_t buf[HL_ITEM_MAX];
	assert_int_equal(hl_store_get_item(B.store, peer_id, HL_DIR_IN, c.seq, &have, buf,
					   sizeof(buf)), 0);
	uint8_t second[32];
	hl_item_hash(enc, len, second);
	assert_memory_not_equal(have.hash, second, 32);
}

static int equiv_setup(void **state)
{
	equiv_pk = hl_signer_sign_pk(A.id);
	(void)state;
	return 0;
}

/* A store of schema version 2 keeps its items when it becomes version 3. */
static void test_migration_2_to_3(void **state)
{
	(void)state;
	char dir[] = "/tmp/hl-checks-mig-XXXXXX";
	assert_non_null(mkdtemp(dir));
	hl_store *st = NULL;
	assert_int_equal(hl_store_open_version(dir, 2, &st), 0);
	uint8_t sk[32], nk[32];
	memset(sk, 1, 32);
	memset(nk, 2, 32);
	int64_t peer;
	assert_int_equal(hl_store_peer(st, sk, nk, "bravo", &peer), 0);
	uint8_t enc[10] = "x";
	for (uint64_t seq = 1; seq <= 3; seq++) {
		struct hl_item_row row = { .peer_id = peer, .dir = HL_DIR_IN, .seq = seq,
					   .kind = HL_ITEM_RECEIPT, .encoded = enc,
					   .encoded_len = 1, .precedence = HL_PREC_FLASH };
		memset(row.hash, (int)seq, 32);
		assert_int_equal(hl_store_insert_item(st, &row), 0);
	}
	hl_store_close(st);
	assert_int_equal(hl_store_open(dir, &st), 0);
	struct hl_chain_head h;
	assert_int_equal(hl_store_in_contiguous(st, peer, &h), 0);
	assert_int_equal(h.seq, 3);
	struct hl_item_row row = { .peer_id = peer, .dir = HL_DIR_IN, .seq = 4,
				   .kind = HL_ITEM_COUNTERSIGN, .encoded = enc, .encoded_len = 1,
				   .precedence = HL_PREC_FLASH };
	assert_int_equal(hl_store_insert_item(st, &row), 0);
	row.seq = 5;
	row.kind = (enum hl_item_kind)(HL_ITEM_KIND_MAX + 1);
	assert_int_equal(hl_store_insert_item(st, &row), HL_EINVAL);
	assert_int_equal(hl_store_verify(st), 0);
	hl_store_close(st);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	const struct CMUnitTest unit[] = {
		cmocka_unit_test(test_schedule_every),
		cmocka_unit_test(test_schedule_at_zones),
		cmocka_unit_test(test_zones_in_parallel_threads),
		cmocka_unit_test(test_check_at_parse),
		cmocka_unit_test(test_conf_keys),
		cmocka_unit_test(test_conf_unknown_zone),
		cmocka_unit_test(test_migration_2_to_3),
	};
	const struct CMUnitTest engines[] = {
		cmocka_unit_test(test_check_answered),
		cmocka_unit_test(test_agreement_countersigned),
		cmocka_unit_test_setup(test_equivocation_kept, equiv_setup),
	};
	if (sodium_init() < 0)
		return 1;
	int r = cmocka_run_group_tests(unit, NULL, NULL);
	return r | cmocka_run_group_tests(engines, pair_up, pair_down);
}
