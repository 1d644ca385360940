/* tests/unit/test_impair.c — the path model of the benchmark's impairing
 * bridge (bench/impair/impair.c): a seed gives the same fates every time
 * and another seed other ones; loss and duplication come at the rates
 * asked; the delay, its jitter and the kept order; the bottleneck's rate
 * and its full buffer; reordered packets overtaken by the later ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "impair/impair.h"

#define N 100000

/* The fates of N packets of 1200 bytes, one every 100 µs: a digest of
 * how many copies each got and when. */
static uint64_t run(const struct hl_impair_params *p, struct hl_impair_stats *st)
{
	struct hl_impair im;
	uint64_t digest = 1469598103934665603ULL, out[2];
	hl_impair_init(&im, p);
	for (uint64_t i = 0; i < N; i++) {
		unsigned n = hl_impair_packet(&im, 1000000 + i * 100, 1200, out);
		digest = (digest ^ n) * 1099511628211ULL;
		for (unsigned c = 0; c < n; c++)
			digest = (digest ^ out[c]) * 1099511628211ULL;
	}
	*st = im.st;
	return digest;
}

static void test_seeded(void **state)
{
	(void)state;
	struct hl_impair_params p = { .delay_ms = 200, .jitter_ms = 50, .loss = 0.1, .dup = 0.01,
				      .reorder = 0.01, .reorder_gap_ms = 20, .seed = 15 };
	struct hl_impair_stats a, b, c;
	uint64_t d1 = run(&p, &a), d2 = run(&p, &b);
	assert_true(d1 == d2);
	assert_memory_equal(&a, &b, sizeof(a));
	p.seed = 16;
	assert_true(run(&p, &c) != d1);
}

static void test_rates(void **state)
{
	(void)state;
	struct hl_impair_params p = { .loss = 0.10, .dup = 0.01, .reorder = 0.01, .seed = 3 };
	struct hl_impair_stats st;
	run(&p, &st);
	assert_int_equal(st.in, N);
	/* within 5 standard deviations of what was asked */
	assert_in_range(st.lost, 10000 - 480, 10000 + 480);
	assert_in_range(st.dup, 900 - 150, 900 + 150);        /* 1 % of the 90 % kept */
	assert_in_range(st.reordered, 909 - 150, 909 + 150);  /* 1 % of every copy */
	assert_int_equal(st.out, st.in - st.lost + st.dup);
	assert_int_equal(st.queue_drops, 0);
}

static void test_delay_jitter_order(void **state)
{
	(void)state;
	struct hl_impair im;
	uint64_t out[2], last = 0;
	struct hl_impair_params p = { .delay_ms = 200, .seed = 1 };
	hl_impair_init(&im, &p);
	/* no jitter: exactly the delay */
	assert_int_equal(hl_impair_packet(&im, 5000, 100, out), 1);
	assert_int_equal(out[0], 5000 + 200000);
	p.jitter_ms = 50;
	hl_impair_init(&im, &p);
	unsigned bunched = 0;
	for (uint64_t i = 0; i < 10000; i++) {
		uint64_t now = i * 1000;
		assert_int_equal(hl_impair_packet(&im, now, 100, out), 1);
		/* within the jitter, or held back behind an earlier packet */
		assert_true(out[0] >= now + 150000);
		assert_true(out[0] <= now + 250000 || out[0] == last);
		/* never before a packet sent earlier: the path keeps its order */
		assert_true(out[0] >= last);
		bunched += out[0] == last;
		last = out[0];
	}
	assert_true(bunched > 0);   /* the jitter shows, as bunching */
}

static void test_bottleneck(void **state)
{
	(void)state;
	struct hl_impair im;
	uint64_t out[2];
	/* 1,000 bytes a second, a buffer of 3,000 bytes (the packet on the
	 * wire counts): three packets of 1,000 bytes at once leave 1 s apart;
	 * a fourth finds the buffer full */
	struct hl_impair_params p = { .rate = 1000, .queue = 3000, .seed = 1 };
	hl_impair_init(&im, &p);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hl_impair_packet(&im, 0, 1000, out), 1);
		assert_int_equal(out[0], (uint64_t)(i + 1) * 1000000);
	}
	assert_int_equal(hl_impair_packet(&im, 0, 1000, out), 0);
	assert_int_equal(im.st.queue_drops, 1);
	/* once the link has sent them, it is free again */
	assert_int_equal(hl_impair_packet(&im, 10000000, 500, out), 1);
	assert_int_equal(out[0], 10500000);
}

static void test_reordering(void **state)
{
	(void)state;
	struct hl_impair im;
	uint64_t out[2], prev = 0, held = 0;
	struct hl_impair_params p = { .delay_ms = 10, .reorder = 0.05, .reorder_gap_ms = 20,
				      .seed = 9 };
	hl_impair_init(&im, &p);
	unsigned overtaken = 0;
	for (uint64_t i = 0; i < 2000; i++) {
		uint64_t now = i * 1000;   /* one packet a millisecond */
		assert_int_equal(hl_impair_packet(&im, now, 100, out), 1);
		if (out[0] == now + 30000) {
			held = out[0];   /* held 20 ms longer */
			continue;
		}
		assert_int_equal(out[0], now + 10000);
		overtaken += held && out[0] < held;
		assert_true(out[0] >= prev);
		prev = out[0];
	}
	assert_true(im.st.reordered > 50 && im.st.reordered < 150);
	assert_true(overtaken > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seeded),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_delay_jitter_order),
		cmocka_unit_test(test_bottleneck),
		cmocka_unit_test(test_reordering),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
