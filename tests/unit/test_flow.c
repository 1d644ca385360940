/* tests/unit/test_flow.c — CREDIT's sending side sized in time
 * (deliver/flow.c), against a simulated path: a bottleneck of a given rate,
 * a given one-way delay, a receiver that credits each chunk as it arrives.
 *
 * What it shows: on a long fat path the window grows (doubling each round
 * trip) to about twice the bandwidth-delay product and the path is kept
 * full, where a fixed 524,000-byte window would carry one window per round
 * trip; on a slow path what may wait ahead of an urgent packet, and so the
 * chunks, shrink to a few kilobytes (the old fixed sizes: 64 KiB chunks,
 * 128 KiB unsent in the kernel); on a loopback the window stays small; the
 * rate follows a path that slows down or speeds up, the round trip one
 * that gets longer (through the probes, which drain the sender's own
 * queue, so that a window never grows on it); a full record of sends is
 * harmless. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "deliver/flow.h"

#define CHUNK_MAX 65500

struct credit_ev {
	uint64_t at_us, taken;
};

/* The simulated session: a FIFO path, so credits come back in order. */
struct sim {
	struct hl_flow f;
	double rate;              /* bytes a second at the bottleneck */
	uint64_t delay_us;        /* one way */
	uint64_t burst_us;        /* the receiver credits only every this often (0: at once) */
	uint64_t t, link_free, sent, credited;
	struct credit_ev *q;
	size_t qhead, qn, qcap;
	uint64_t max_window, max_chunk, min_chunk;
};

static void sim_init(struct sim *s, double rate, uint64_t delay_us)
{
	memset(s, 0, sizeof(*s));
	hl_flow_init(&s->f);
	s->rate = rate;
	s->delay_us = delay_us;
	s->min_chunk = UINT64_MAX;
}

static void push(struct sim *s, uint64_t at, uint64_t taken)
{
	/* a receiver that credits in bursts sends one CREDIT per burst */
	if (s->qn > 0 && s->q[s->qhead + s->qn - 1].at_us == at) {
		s->q[s->qhead + s->qn - 1].taken = taken;
		return;
	}
	if (s->qhead + s->qn == s->qcap) {
		if (s->qhead > 0) {
			memmove(s->q, s->q + s->qhead, s->qn * sizeof(*s->q));
			s->qhead = 0;
		} else {
			s->qcap = s->qcap ? 2 * s->qcap : 1024;
			s->q = realloc(s->q, s->qcap * sizeof(*s->q));
			assert_non_null(s->q);
		}
	}
	s->q[s->qhead + s->qn++] = (struct credit_ev){ at, taken };
}

/* Runs until simulated time UNTIL_US: the sender sends whatever the
 * window allows, in chunks as flow control sizes them. */
static void sim_run(struct sim *s, uint64_t until_us)
{
	while (s->t < until_us) {
		for (;;) {
			uint64_t n = hl_flow_chunk(&s->f, CHUNK_MAX), w = hl_flow_window(&s->f);
			if (s->sent > s->credited && s->sent - s->credited + n > w)
				break;
			uint64_t start = s->link_free > s->t ? s->link_free : s->t;
			s->link_free = start + (uint64_t)((double)n / s->rate * 1e6) + 1;
			s->sent += n;
			hl_flow_sent(&s->f, s->sent, s->t);
			uint64_t at = s->link_free + s->delay_us;
			if (s->burst_us)
				at = (at / s->burst_us + 1) * s->burst_us;
			push(s, at + s->delay_us, s->sent);
			if (w > s->max_window)
				s->max_window = w;
			if (n > s->max_chunk)
				s->max_chunk = n;
			if (n < s->min_chunk)
				s->min_chunk = n;
		}
		assert_true(s->qn > 0);   /* something is in flight: a credit comes */
		struct credit_ev ev = s->q[s->qhead++];
		s->qn--;
		s->t = ev.at_us;
		s->credited = ev.taken;
		hl_flow_credited(&s->f, ev.taken, s->t);
	}
}

/* Bytes a second credited during the simulated [FROM, TO) (by running). */
static double sim_rate(struct sim *s, uint64_t from, uint64_t to)
{
	sim_run(s, from);
	uint64_t c0 = s->credited, t0 = s->t;
	sim_run(s, to);
	return (double)(s->credited - c0) * 1e6 / (double)(s->t - t0);
}

static void sim_free(struct sim *s)
{
	free(s->q);
}

static void test_before_any_credit(void **state)
{
	(void)state;
	struct hl_flow f;
	hl_flow_init(&f);
	assert_int_equal(hl_flow_window(&f), HL_FLOW_WINDOW_INIT);
	assert_int_equal(hl_flow_ahead(&f), HL_FLOW_AHEAD_INIT);
	assert_int_equal(hl_flow_chunk(&f, CHUNK_MAX), CHUNK_MAX);
	/* a CREDIT that covers no send gives no sample */
	hl_flow_credited(&f, 0, 1000);
	assert_int_equal(hl_flow_window(&f), HL_FLOW_WINDOW_INIT);
}

static void test_long_fat_path_is_kept_full(void **state)
{
	(void)state;
	struct sim s;
	const double rate = 12.5e6;                  /* 100 Mbit/s */
	sim_init(&s, rate, 200000);                  /* 200 ms one way */
	/* Within 3 s (7 round trips) the window has grown past 4 MB ... */
	sim_run(&s, 3000000);
	assert_true(s.max_window > 4000000);
	/* ... and the path runs full, but for the probes of the round trip
	 * (one after the pipe is found full, one every 10 s): a fixed
	 * 524,000-byte window would carry 1.3 MB/s here */
	double got = sim_rate(&s, 5000000, 25000000);
	assert_true(got > 0.93 * rate);
	/* the rate stopped growing: 5/4 of the bandwidth-delay product (5 MB)
	 * and what waits ahead */
	assert_true(s.f.full);
	uint64_t w = hl_flow_window(&s.f);
	assert_in_range(w, 6000000, 7000000);
	assert_in_range(s.f.rtt_us, 400000, 420000);
	assert_in_range(hl_flow_ahead(&s.f), 245000, 255000);   /* 20 ms of it */
	assert_int_equal(hl_flow_chunk(&s.f, CHUNK_MAX), CHUNK_MAX);
	sim_free(&s);
}

static void test_slow_path_waits_behind_little(void **state)
{
	(void)state;
	struct sim s;
	const double rate = 50e3;                    /* 400 kbit/s */
	sim_init(&s, rate, 200000);
	double got = sim_rate(&s, 10000000, 40000000);
	assert_true(got > 0.95 * rate);
	while (s.f.probe_until_us)   /* (out of a probe of the round trip) */
		sim_run(&s, s.t + 100000);
	/* what may wait ahead drains in the budget, and no chunk is larger */
	assert_int_equal(hl_flow_ahead(&s.f), HL_FLOW_AHEAD_MIN);   /* 1,000 B: the floor */
	assert_int_equal(hl_flow_chunk(&s.f, CHUNK_MAX), HL_FLOW_AHEAD_MIN);
	/* the window: the floor (5/4 of the 20 kB product is less) and that */
	assert_int_equal(hl_flow_window(&s.f), HL_FLOW_WINDOW_MIN + HL_FLOW_AHEAD_MIN);
	/* at 2 Mbit/s: 5 kB may wait ahead */
	sim_free(&s);
	sim_init(&s, 250e3, 200000);
	sim_run(&s, 20000000);
	assert_in_range(hl_flow_ahead(&s.f), 4900, 5100);
	assert_in_range(hl_flow_chunk(&s.f, CHUNK_MAX), 4900, 5100);
	sim_free(&s);
}

static void test_loopback_window_stays_small(void **state)
{
	(void)state;
	struct sim s;
	const double rate = 500e6;                   /* a receiver's CPU */
	sim_init(&s, rate, 50);                      /* 50 µs one way */
	double got = sim_rate(&s, 1000000, 5000000);
	assert_true(got > 0.95 * rate);
	/* a round trip's worth (a chunk's time on the wire counts) and what
	 * waits ahead: below the fixed 524,000 bytes it replaces */
	assert_true(hl_flow_window(&s.f) < HL_FLOW_WINDOW_INIT);
	assert_int_equal(hl_flow_ahead(&s.f), HL_FLOW_AHEAD_MAX);
	sim_free(&s);
}

static void test_receiver_bursts_do_not_inflate_the_rate(void **state)
{
	(void)state;
	struct sim s;
	/* a loopback whose receiver takes in 500 MB/s but credits in bursts,
	 * every 5 ms (a commit's fsync): the rate seen stays near the real
	 * one, and the window with it (a rate taken over the round trip alone
	 * would count the burst's backlog as delivered in 0.1 ms) */
	sim_init(&s, 500e6, 50);
	s.burst_us = 5000;
	double got = sim_rate(&s, 2000000, 4000000);
	assert_true(got > 0.5 * 500e6);
	assert_true(s.f.rate < 1.3 * 500e6);
	sim_free(&s);
}

static void test_estimates_follow_the_path(void **state)
{
	(void)state;
	struct sim s;
	sim_init(&s, 5e6, 50000);                    /* 100 ms round trip */
	sim_run(&s, 5000000);
	assert_in_range(s.f.rtt_us, 100000, 120000);
	assert_true(s.f.rate > 4.5e6);
	/* the path slows down: the rate (the greatest of the last ten round
	 * trips) goes with it, and the window with the rate */
	s.rate = 1e6;
	double got = sim_rate(&s, 10000000, 20000000);
	assert_true(s.f.rate < 1.2e6 && s.f.rate > 0.8e6);
	assert_true(got > 0.95e6);
	assert_true(hl_flow_window(&s.f) < 400000);
	/* and speeds up again: found, a quarter more each round trip */
	s.rate = 4e6;
	got = sim_rate(&s, 30000000, 40000000);
	assert_true(got > 0.9 * 4e6);
	/* it gets longer: the next probe of the round trip (at most 10 s
	 * on) finds it, and the window follows, so the path stays full */
	s.delay_us = 150000;
	got = sim_rate(&s, 55000000, 65000000);
	assert_in_range(s.f.rtt_us, 300000, 330000);
	assert_true(got > 0.9 * 4e6);
	sim_free(&s);
}

static void test_record_of_sends_full(void **state)
{
	(void)state;
	struct hl_flow f;
	hl_flow_init(&f);
	/* more sends than it remembers: the extra ones are not sampled */
	for (uint64_t i = 1; i <= 3 * HL_FLOW_SENDS; i++)
		hl_flow_sent(&f, i * 1000, i);
	assert_int_equal(f.n, HL_FLOW_SENDS);
	/* a credit for everything: one sample, from the last send remembered */
	hl_flow_credited(&f, 3 * HL_FLOW_SENDS * 1000, 10000);
	assert_int_equal(f.n, 0);
	assert_int_equal(f.samples, 1);
	assert_int_equal(f.rtt_us, 10000 - HL_FLOW_SENDS);
	/* credits that go nowhere new change nothing */
	hl_flow_credited(&f, 5, 20000);
	assert_int_equal(f.samples, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_before_any_credit),
		cmocka_unit_test(test_long_fat_path_is_kept_full),
		cmocka_unit_test(test_slow_path_waits_behind_little),
		cmocka_unit_test(test_loopback_window_stays_small),
		cmocka_unit_test(test_receiver_bursts_do_not_inflate_the_rate),
		cmocka_unit_test(test_estimates_follow_the_path),
		cmocka_unit_test(test_record_of_sends_full),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
