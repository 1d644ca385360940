/* voice/jitter.h — the adaptive jitter buffer of a call's receiving side,
 * with the W3C webrtc-stats counters of what it did (docs/voice.md
 * section 4).  No clock and no codec: the owner says when a packet came
 * (hl_jb_put) and asks every 20 ms what to play (hl_jb_get), then decodes
 * accordingly (a frame, the next frame's in-band FEC, or concealment).
 *
 * Why our own and not speexdsp's: the decision "this frame is missing but
 * the next is here, so decode its FEC copy" needs a look at the next
 * slot, which speexdsp's jitter_buffer_get() does not give; the rest is a
 * ring of 64 slots and a delay estimate.
 *
 * Timing.  Packet N is due at sender time N * 20 ms; its transit is its
 * arrival time minus that.  The buffer keeps the transits of the last
 * HL_JB_HISTORY packets; the target delay is their spread (95th
 * percentile minus minimum) plus one frame while packets were lost in the
 * last HL_JB_LOSS_MEMORY frames (so the next packet, whose FEC data
 * rebuilds a lost one, is at hand), else plus HL_JB_MARGIN_MS; between
 * HL_JB_MIN_MS and HL_JB_MAX_MS.  The playout point follows: when the frame about to play
 * is older than the target by more than a frame, one frame is dropped
 * (acceleration); when it is younger by more than half a frame, a
 * concealed frame is inserted (deceleration) — at most one change per
 * HL_JB_ADAPT_MS, so the buffer stays small on a good path and grows
 * only as far as the path's jitter needs.  A packet far ahead of the
 * playout point, or HL_JB_RESYNC late packets in a row (the sender's
 * clock stepped), restart the playout at that packet. */
#ifndef HL_VOICE_JITTER_H
#define HL_VOICE_JITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_JB_SLOTS 64
#define HL_JB_FRAME_MAX 96
#define HL_JB_HISTORY 100          /* 2 s of transits */
#define HL_JB_MIN_MS 10
#define HL_JB_MARGIN_MS 5          /* over the spread, on a path that loses nothing */
#define HL_JB_LOSS_MEMORY 250      /* frames (5 s) a loss keeps the FEC look-ahead */
#define HL_JB_MAX_MS 400
#define HL_JB_ADAPT_MS 100
#define HL_JB_FRAME_MS 20
#define HL_JB_RESYNC 10            /* late packets in a row that restart playout */

/* RTCInboundRtpStreamStats, the members this buffer can know (times in
 * seconds as there; sample counts at the decoder's rate, 16 kHz). */
struct hl_jb_stats {
	uint64_t packetsReceived;
	uint64_t packetsDuplicated;       /* not in webrtc-stats: replays are refused before */
	uint64_t packetsDiscarded;        /* arrived after their time to play */
	uint64_t packetsLost;             /* expected minus received */
	double jitter;                    /* RFC 3550 interarrival jitter, s */
	double jitterBufferDelay;         /* sum over emitted frames, s */
	double jitterBufferTargetDelay;   /* sum over emitted frames, s */
	uint64_t jitterBufferEmittedCount;
	uint64_t totalSamplesReceived;
	uint64_t concealedSamples;
	uint64_t concealmentEvents;
	uint64_t fecPacketsReceived;      /* frames rebuilt from the next packet's FEC */
	uint64_t insertedSamplesForDeceleration;
	uint64_t removedSamplesForAcceleration;
	uint64_t resyncs;                 /* not in webrtc-stats: playout restarted */
};

enum hl_jb_action {
	HL_JB_WAIT,     /* nothing received yet: play silence */
	HL_JB_FRAME,    /* decode FRAME */
	HL_JB_FEC,      /* FRAME is the next packet: decode its FEC data */
	HL_JB_CONCEAL,  /* decode nothing: packet-loss concealment */
};

struct hl_jb_slot {
	bool full;
	uint64_t seq;
	int64_t arrival_ms;
	uint8_t len;
	uint8_t data[HL_JB_FRAME_MAX];
};

struct hl_jb {
	struct hl_jb_slot slot[HL_JB_SLOTS];
	bool started;
	bool playing;                /* buffered up to the target once */
	uint64_t first;              /* the first seq received */
	uint64_t next;               /* the next seq to play */
	uint64_t highest;            /* highest seq received */
	int64_t transit[HL_JB_HISTORY];
	size_t ntransit, tpos;
	int64_t last_transit;
	int target_ms;
	int64_t last_adapt_ms;
	bool in_concealment;
	uint32_t since_loss;         /* frames played since one was missing */
	uint32_t late_run;           /* packets in a row that came too late */
	int samples_per_frame;
	struct hl_jb_stats st;
};

void hl_jb_init(struct hl_jb *jb, int samples_per_frame);

/* A packet SEQ arrived at NOW_MS (monotonic) with LEN bytes of DATA.
 * Returns 1 when it was kept, 0 when dropped (late, duplicate, too far
 * ahead), HL_EINVAL for a LEN over HL_JB_FRAME_MAX. */
int hl_jb_put(struct hl_jb *jb, uint64_t seq, int64_t now_ms, const uint8_t *data, size_t len);

/* What to play now.  For FRAME and FEC, *DATA / *LEN point into the
 * buffer (valid until the next call). */
enum hl_jb_action hl_jb_get(struct hl_jb *jb, int64_t now_ms, const uint8_t **data,
			    size_t *len);

/* The current target delay, ms. */
int hl_jb_target_ms(const struct hl_jb *jb);

#endif
