/* bench/impair/impair.h — the path model of bench_netem (bench/netem.c): what
 * happens to each IP packet on one direction of a slow, long or lossy link.
 * No I/O and no clock: the caller gives each packet's arrival time and
 * gets back when (and how many times) it leaves, so the model is tested
 * alone (tests/unit/test_impair.c) and the same seed gives the same fates.
 *
 * The stages, in order, as a packet meets them (the order of Linux's
 * netem, which this kernel lacks):
 *
 *   1. loss: dropped with probability LOSS;
 *   2. duplication: with probability DUP a second copy follows it;
 *   3. the bottleneck: a queue in front of a link of RATE bytes a second
 *      (0: no limit).  A packet that would take the bytes waiting (the one
 *      on the wire included) past QUEUE is dropped (tail drop, a router's
 *      full buffer); else it leaves the bottleneck once the packets before
 *      it and itself have been sent;
 *   4. the propagation delay: DELAY plus a jitter drawn uniformly from
 *      [-JITTER, +JITTER], never before a packet sent earlier (a path keeps
 *      its order; the jitter then shows as bunching, as on a real link);
 *   5. reordering: with probability REORDER a packet is instead held
 *      REORDER_GAP longer, so that the packets after it overtake it.
 *
 * Every random draw comes from one xoshiro-style generator seeded with
 * SEED: a run's fates depend only on the seed and on the packets offered. */
#ifndef HL_BENCH_IMPAIR_H
#define HL_BENCH_IMPAIR_H

#include <stddef.h>
#include <stdint.h>

struct hl_impair_params {
	double delay_ms;        /* one way */
	double jitter_ms;       /* uniform in [-jitter, +jitter] */
	double loss;            /* 0..1 */
	double dup;             /* 0..1 */
	double reorder;         /* 0..1 */
	double reorder_gap_ms;  /* how much longer a reordered packet is held */
	double rate;            /* bytes a second; 0: no bottleneck */
	uint64_t queue;         /* bytes the bottleneck's buffer holds; 0: no limit */
	uint64_t seed;
};

struct hl_impair_stats {
	uint64_t in, out, lost, dup, queue_drops, reordered;
	uint64_t bytes_in, bytes_out;
};

struct hl_impair {
	struct hl_impair_params p;
	uint64_t rng[2];
	uint64_t link_free_us;   /* when the bottleneck's link is next free */
	uint64_t last_release_us;
	struct hl_impair_stats st;
};

void hl_impair_init(struct hl_impair *im, const struct hl_impair_params *p);

/* A packet of LEN bytes arrives at NOW_US: how many copies leave (0, 1 or
 * 2) and when, in OUT_US[0..n-1] (never before NOW_US). */
unsigned hl_impair_packet(struct hl_impair *im, uint64_t now_us, size_t len,
			  uint64_t out_us[static 2]);

/* The next number of the generator, and a uniform double in [0, 1). */
uint64_t hl_impair_next(struct hl_impair *im);
double hl_impair_uniform(struct hl_impair *im);

#endif
