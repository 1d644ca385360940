/* deliver/flow.h — the sending side of CREDIT (docs/messages.md, "CREDIT"
 * and section 3), sized in time rather than in bytes.
 *
 * A fixed window in bytes is wrong at both ends: on a slow link it holds
 * seconds of a document ahead of every urgent packet, and on a long fat
 * link it caps a document at one window per round trip.  So the sender
 * measures, from the CREDITs that come back for the CHUNK (and STAGE) data
 * it sent, the path's delivery rate and its round trip, as BBR does from
 * TCP's acknowledgements, and sizes from them:
 *
 *   - the window: data sent and not yet credited, the bandwidth-delay
 *     product (rate x least round trip) times a gain, plus what may wait
 *     ahead, and never below HL_FLOW_WINDOW_MIN.  The gain is 2 while the
 *     rate still grows (the window doubles each round trip, as TCP's slow
 *     start does), 5/4 once three round trips in a row brought no quarter
 *     more (the pipe is full: a quarter of a round trip may queue in the
 *     path, and a faster path is still found, a quarter more each round);
 *   - what may wait ahead of an urgent packet at this end (the session's
 *     queue, and the socket's unsent bytes, which the daemon bounds with
 *     TCP_NOTSENT_LOWAT): what the path delivers in HL_FLOW_BUDGET_US at the
 *     measured rate, between HL_FLOW_AHEAD_MIN and HL_FLOW_AHEAD_MAX;
 *   - the largest CHUNK: no more than may wait ahead, so that on a slow
 *     link a FLASH packet never waits for a whole 64 KiB chunk.
 *
 * Estimates.  Each send is remembered with its time and what was credited
 * then; a CREDIT that covers it gives one sample: the round trip (now minus
 * the send) and the delivery rate, computed as BBR does: the bytes
 * credited since the CREDIT that was the last one at the send, over the
 * longer of the time since that CREDIT and the time over which those bytes
 * were sent.  A rate over the round trip alone would count a stalled
 * receiver's burst of credit, bytes queued before the send, as delivered
 * within one round trip.  The rate kept is the greatest of the last ten
 * round trips (at least HL_FLOW_RATE_WINDOW_MIN_US), so it follows a path
 * that slows down.  The round trip kept is the least seen; but the
 * sender's own queue lengthens every sample, and a window sized on such a
 * round trip keeps that queue for ever (the first chunks of a session,
 * sent at a guess, would set it).  So, as BBR does, the sender probes:
 * when the pipe is first found full, and whenever the least round trip is
 * HL_FLOW_PROBE_EVERY_US old, the window drops to half the bandwidth-delay
 * product (at least HL_FLOW_PROBE_WINDOW, and no chunk larger) until the
 * queue has drained, a chunk sent after that has been credited, and
 * HL_FLOW_PROBE_MIN_US have passed; the least round trip of the chunks
 * sent during the probe becomes the round trip, larger or smaller (a path
 * that got longer is followed too; a round trip much inflated by the
 * session's first guesses takes a probe or two to come down).  It costs
 * about half a round trip of sending every 10 s.  Before the first sample the window is
 * HL_FLOW_WINDOW_INIT and what waits ahead HL_FLOW_AHEAD_INIT.
 *
 * No I/O and no clock: the caller gives the times (microseconds on a
 * monotonic clock). */
#ifndef HL_DELIVER_FLOW_H
#define HL_DELIVER_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_FLOW_BUDGET_US 20000u              /* what waits ahead drains in 20 ms */
#define HL_FLOW_AHEAD_MIN 4096u
#define HL_FLOW_AHEAD_MAX (256u * 1024)
#define HL_FLOW_AHEAD_INIT (64u * 1024)
#define HL_FLOW_WINDOW_MIN (128u * 1024)
#define HL_FLOW_WINDOW_INIT 524000u           /* the fixed window it replaces */
#define HL_FLOW_WINDOW_MAX (64u << 20)
#define HL_FLOW_RATE_WINDOW_MIN_US 1000000u   /* 1 s */
#define HL_FLOW_SENDS 256                     /* sends remembered (a ring) */
#define HL_FLOW_PROBE_EVERY_US 10000000u      /* 10 s */
#define HL_FLOW_PROBE_MIN_US 20000u
#define HL_FLOW_PROBE_WINDOW (4u * HL_FLOW_AHEAD_MIN)

struct hl_flow_send {
	uint64_t end;         /* data sent up to here */
	uint64_t at_us;
	uint64_t credited;    /* what was credited then */
	uint64_t credited_us; /* and when that CREDIT came */
	uint64_t first_us;    /* when the newest send it covered went */
	bool probe;           /* sent during a probe of the round trip */
};

struct hl_flow {
	struct hl_flow_send sends[HL_FLOW_SENDS];
	unsigned first, n;
	uint64_t credited, credited_us, first_us;
	uint64_t rtt_us;                /* 0: no sample yet */
	double rate;                    /* bytes a second; 0: no sample yet */
	uint64_t rate_at_us;
	uint64_t samples;
	/* rounds (a round ends when what was sent at its start is credited),
	 * and whether the rate stopped growing */
	uint64_t round_end;
	double full_rate;
	unsigned flat_rounds;
	bool full;
	/* the round trip's probe: when the least one was last set, whether
	 * the probe after the pipe was found full was made, and the probe in
	 * progress (0: none): its earliest end and the least round trip of
	 * its chunks so far (0: none credited yet) */
	uint64_t rtt_at_us;
	bool drained;
	uint64_t probe_until_us, probe_rtt_us;
};

void hl_flow_init(struct hl_flow *f);
/* Data (CHUNK or STAGE) was sent up to offset END of the session's count. */
void hl_flow_sent(struct hl_flow *f, uint64_t end, uint64_t now_us);
/* A CREDIT for TAKEN arrived. */
void hl_flow_credited(struct hl_flow *f, uint64_t taken, uint64_t now_us);

/* Data that may be sent and not credited. */
uint64_t hl_flow_window(const struct hl_flow *f);
/* Bytes that may wait at this end ahead of an urgent packet. */
uint64_t hl_flow_ahead(const struct hl_flow *f);
/* The most data one CHUNK or STAGE packet should carry (at most MAX). */
size_t hl_flow_chunk(const struct hl_flow *f, size_t max);

#endif
