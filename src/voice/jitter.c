/* voice/jitter.c — the adaptive jitter buffer; the design is in jitter.h. */
#include <string.h>

#include "util/err.h"
#include "voice/jitter.h"

void hl_jb_init(struct hl_jb *jb, int samples_per_frame)
{
	memset(jb, 0, sizeof(*jb));
	jb->samples_per_frame = samples_per_frame;
	jb->target_ms = 2 * HL_JB_FRAME_MS;
	jb->since_loss = HL_JB_LOSS_MEMORY;
}

int hl_jb_target_ms(const struct hl_jb *jb)
{
	return jb->target_ms;
}

static int64_t min_transit(const struct hl_jb *jb)
{
	int64_t m = jb->transit[0];
	for (size_t i = 1; i < jb->ntransit; i++)
		if (jb->transit[i] < m)
			m = jb->transit[i];
	return m;
}

/* The target: the spread of recent transits (95th percentile over the
 * minimum) plus a frame, clamped. */
static void update_target(struct hl_jb *jb, int64_t base)
{
	int64_t v[HL_JB_HISTORY];
	size_t n = jb->ntransit;
	memcpy(v, jb->transit, n * sizeof(v[0]));
	/* insertion sort: at most 100 values, every 20 ms */
	for (size_t i = 1; i < n; i++) {
		int64_t x = v[i];
		size_t j = i;
		for (; j > 0 && v[j - 1] > x; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
	int64_t spread = v[(n - 1) * 95 / 100] - base;
	/* A frame of look-ahead (the next packet in hand, for its FEC copy)
	 * only while the path loses packets: a clean path plays sooner. */
	bool lossy = jb->since_loss < HL_JB_LOSS_MEMORY;
	int64_t t = spread + (lossy ? HL_JB_FRAME_MS : HL_JB_MARGIN_MS);
	if (t < HL_JB_MIN_MS)
		t = HL_JB_MIN_MS;
	if (t > HL_JB_MAX_MS)
		t = HL_JB_MAX_MS;
	jb->target_ms = (int)t;
}

static void clear_slots(struct hl_jb *jb)
{
	for (size_t i = 0; i < HL_JB_SLOTS; i++)
		jb->slot[i].full = false;
}

/* Playout starts again at SEQ: slots and transit history are dropped, and
 * the target is buffered up to before anything plays. */
static void restart(struct hl_jb *jb, uint64_t seq)
{
	clear_slots(jb);
	jb->next = seq;
	jb->playing = false;
	jb->ntransit = jb->tpos = 0;
	jb->late_run = 0;
	jb->st.resyncs++;
}

int hl_jb_put(struct hl_jb *jb, uint64_t seq, int64_t now_ms, const uint8_t *data, size_t len)
{
	if (len > HL_JB_FRAME_MAX)
		return HL_EINVAL;
	if (!jb->started) {
		jb->started = true;
		jb->next = jb->first = jb->highest = seq;
	}
	int64_t transit = now_ms - (int64_t)(seq * HL_JB_FRAME_MS);
	if (jb->st.packetsReceived > 0) {
		int64_t d = transit - jb->last_transit;
		if (d < 0)
			d = -d;
		jb->st.jitter += ((double)d / 1000.0 - jb->st.jitter) / 16.0;
	}
	jb->last_transit = transit;
	if (seq < jb->next) {
		/* Every packet late for HL_JB_RESYNC of them: the sender's clock
		 * stepped (it lost time and skipped ahead in real time, not in
		 * packets), so its frames will never be on time again here.
		 * Start again from this one, learning the path afresh. */
		if (++jb->late_run < HL_JB_RESYNC) {
			jb->st.packetsReceived++;
			jb->st.packetsDiscarded++;
			return 0;
		}
		restart(jb, seq);
	}
	jb->late_run = 0;
	struct hl_jb_slot *s = &jb->slot[seq % HL_JB_SLOTS];
	if (s->full && s->seq == seq) {
		jb->st.packetsDuplicated++;
		return 0;
	}
	jb->st.packetsReceived++;
	jb->transit[jb->tpos] = transit;
	jb->tpos = (jb->tpos + 1) % HL_JB_HISTORY;
	if (jb->ntransit < HL_JB_HISTORY)
		jb->ntransit++;
	if (seq > jb->highest)
		jb->highest = seq;
	if (seq >= jb->next + HL_JB_SLOTS)
		restart(jb, seq);   /* far ahead (after an outage): buffer afresh from here */
	s->full = true;
	s->seq = seq;
	s->arrival_ms = now_ms;
	s->len = (uint8_t)len;
	memcpy(s->data, data, len);
	return 1;
}

static struct hl_jb_slot *slot_of(struct hl_jb *jb, uint64_t seq)
{
	struct hl_jb_slot *s = &jb->slot[seq % HL_JB_SLOTS];
	return s->full && s->seq == seq ? s : NULL;
}

/* Drops frame NEXT (acceleration). */
static void drop_one(struct hl_jb *jb)
{
	struct hl_jb_slot *s = slot_of(jb, jb->next);
	if (s)
		s->full = false;
	jb->next++;
	jb->st.removedSamplesForAcceleration += (uint64_t)jb->samples_per_frame;
}

enum hl_jb_action hl_jb_get(struct hl_jb *jb, int64_t now_ms, const uint8_t **data,
			    size_t *len)
{
	const uint64_t spf = (uint64_t)jb->samples_per_frame;
	*data = NULL;
	*len = 0;
	if (!jb->started || jb->ntransit == 0)
		return HL_JB_WAIT;
	int64_t base = min_transit(jb);
	update_target(jb, base);
	uint64_t expected = jb->highest - jb->first + 1;
	jb->st.packetsLost = expected > jb->st.packetsReceived ? expected - jb->st.packetsReceived : 0;
	/* How late frame NEXT plays against its earliest possible time. */
#define DELAY() (now_ms - ((int64_t)(jb->next * HL_JB_FRAME_MS) + base))
	if (!jb->playing) {
		if (DELAY() < jb->target_ms)
			return HL_JB_WAIT;
		jb->playing = true;
		jb->last_adapt_ms = now_ms;
	}
	/* Far behind (a burst arrived at once): catch up now. */
	while (DELAY() > jb->target_ms + 3 * HL_JB_FRAME_MS && jb->next < jb->highest)
		drop_one(jb);
	if (now_ms - jb->last_adapt_ms >= HL_JB_ADAPT_MS) {
		if (DELAY() > jb->target_ms + HL_JB_FRAME_MS / 2 && jb->next < jb->highest) {
			drop_one(jb);
			jb->last_adapt_ms = now_ms;
		} else if (DELAY() < jb->target_ms - HL_JB_FRAME_MS / 2 && !jb->in_concealment) {
			jb->last_adapt_ms = now_ms;
			jb->st.insertedSamplesForDeceleration += spf;
			jb->st.concealedSamples += spf;
			return HL_JB_CONCEAL;
		}
	}
#undef DELAY
	struct hl_jb_slot *s = slot_of(jb, jb->next), *n = slot_of(jb, jb->next + 1);
	enum hl_jb_action a;
	jb->next++;
	if (jb->since_loss < UINT32_MAX)
		jb->since_loss++;
	if (!s)
		jb->since_loss = 0;
	jb->st.totalSamplesReceived += spf;
	jb->st.jitterBufferEmittedCount += spf;
	jb->st.jitterBufferTargetDelay += (double)spf * jb->target_ms / 1000.0;
	if (s) {
		s->full = false;
		*data = s->data;
		*len = s->len;
		jb->st.jitterBufferDelay += (double)spf * (double)(now_ms - s->arrival_ms) / 1000.0;
		jb->in_concealment = false;
		return HL_JB_FRAME;
	}
	if (n) {
		*data = n->data;
		*len = n->len;
		jb->st.fecPacketsReceived++;
		a = HL_JB_FEC;
	} else {
		jb->st.concealedSamples += spf;
		if (!jb->in_concealment)
			jb->st.concealmentEvents++;
		jb->in_concealment = true;
		a = HL_JB_CONCEAL;
	}
	return a;
}
