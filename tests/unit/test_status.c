/* test_status.c — the status structure (station/status.c): the daemon's
 * answer goes through it to `status --json` unchanged, key for key and in
 * order, whatever keys the services add; an answer of the wrong shapes
 * loses the bad fields and nothing else. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "station/status.h"

/* A daemon's answer of today's shape, with a key no code knows yet. */
static const char answer[] =
	"{\"ok\": true, \"station\": {\"name\": \"washington\", \"fingerprint\": \"12345 67890\","
	" \"listen\": \"0.0.0.0:7373\", \"pid\": 4242, \"started_at\": \"2026-12-07T10:00:00Z\","
	" \"email\": {\"configured\": false}, \"call\": null, \"future\": [1, 2]},"
	" \"peers\": [{\"name\": \"pyongyang\", \"fingerprint\": \"54321 09876\", \"address\": null,"
	" \"state\": \"connected\", \"since\": \"2026-12-07T10:00:01Z\", \"dialed_by\": \"us\","
	" \"last_error\": null, \"last_error_at\": null, \"rtt_ms\": 0, \"sessions\": 3,"
	" \"session_since\": \"2026-12-07T10:00:01Z\", \"delivery\": {\"queued\": {\"flash\": 1}},"
	" \"paths\": {\"tcp\": {\"state\": \"up\"}}, \"check\": {\"schedule\": null},"
	" \"later\": \"kept\"}]}";

/* WANT and GOT print the same, byte for byte (GOT is freed). */
static void same_text(json_t *want, json_t *got)
{
	char *a = json_dumps(want, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	char *b = json_dumps(got, JSON_INDENT(2) | JSON_ENSURE_ASCII);
	assert_non_null(a);
	assert_non_null(b);
	assert_string_equal(b, a);
	free(a);
	free(b);
	json_decref(got);
}

static void test_daemon_answer_round_trip(void **state)
{
	(void)state;
	json_t *resp = json_loads(answer, 0, NULL);
	assert_non_null(resp);
	struct hl_status s;
	hl_status_from_json(resp, &s);
	assert_true(s.daemon);
	assert_int_equal(s.pid, 4242);
	assert_int_equal(s.npeers, 1);
	assert_string_equal(s.peers[0].state, "connected");
	assert_int_equal(s.peers[0].rtt_ms, 0);
	assert_null(s.peers[0].address);

	/* What `status --json` printed before the structure: the answer's
	 * station and peers as they came, "daemon" first. */
	json_t *want = json_pack("{s:b, s:O, s:O}", "daemon", 1, "station",
				 json_object_get(resp, "station"), "peers",
				 json_object_get(resp, "peers"));
	same_text(want, hl_status_json(&s, false));
	/* And the daemon's own answer, the same way. */
	same_text(resp, hl_status_json(&s, true));
	json_decref(want);
	json_decref(resp);
	hl_status_free(&s);
}

/* Core fields of the wrong types become null; the rest stays. */
static void test_bad_shapes(void **state)
{
	(void)state;
	json_t *resp = json_loads("{\"ok\": true, \"station\": [1], \"peers\": [{\"name\": 7,"
				  " \"rtt_ms\": \"fast\", \"check\": {}}, 5, {}]}", 0, NULL);
	assert_non_null(resp);
	struct hl_status s;
	hl_status_from_json(resp, &s);
	assert_null(s.name);
	assert_int_equal(s.pid, 0);
	assert_int_equal(s.npeers, 3);
	assert_null(s.peers[0].name);
	assert_int_equal(s.peers[0].rtt_ms, -1);
	assert_non_null(json_object_get(s.peers[0].more, "check"));
	json_t *out = hl_status_json(&s, false);
	assert_non_null(out);
	assert_true(json_is_null(json_object_get(json_object_get(out, "station"), "name")));
	json_decref(out);
	json_decref(resp);
	hl_status_free(&s);
}

/* Without a daemon there are no session fields, and pid is null. */
static void test_offline_shape(void **state)
{
	(void)state;
	struct hl_status s;
	hl_status_init(&s, false);
	hl_status_set(&s.name, "washington");
	struct hl_status_peer *e = hl_status_add_peer(&s);
	hl_status_set(&e->name, "pyongyang");
	json_t *out = hl_status_json(&s, false);
	json_t *p = json_array_get(json_object_get(out, "peers"), 0);
	assert_true(json_is_false(json_object_get(out, "daemon")));
	assert_null(json_object_get(p, "sessions"));
	assert_null(json_object_get(p, "session_since"));
	assert_true(json_is_null(json_object_get(p, "rtt_ms")));
	assert_true(json_is_null(json_object_get(json_object_get(out, "station"), "pid")));
	json_decref(out);
	hl_status_free(&s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daemon_answer_round_trip),
		cmocka_unit_test(test_bad_shapes),
		cmocka_unit_test(test_offline_shape),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
