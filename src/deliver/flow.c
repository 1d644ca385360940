/* deliver/flow.c — CREDIT's sending side sized in time (flow.h). */
#include "deliver/flow.h"

#include <string.h>

void hl_flow_init(struct hl_flow *f)
{
	memset(f, 0, sizeof(*f));
}

void hl_flow_sent(struct hl_flow *f, uint64_t end, uint64_t now_us)
{
	/* A full ring skips this send: the next one covers its bytes, and a
	 * sample is only an estimate. */
	if (f->n == HL_FLOW_SENDS)
		return;
	struct hl_flow_send *s = &f->sends[(f->first + f->n) % HL_FLOW_SENDS];
	s->end = end;
	s->at_us = now_us;
	s->credited = f->credited;
	s->credited_us = f->credited_us ? f->credited_us : now_us;
	s->first_us = f->first_us ? f->first_us : now_us;
	s->probe = f->probe_until_us != 0;
	f->n++;
}

static uint64_t rate_window(const struct hl_flow *f)
{
	uint64_t w = 10 * f->rtt_us;
	return w > HL_FLOW_RATE_WINDOW_MIN_US ? w : HL_FLOW_RATE_WINDOW_MIN_US;
}

/* A round ended: has the rate grown by a quarter since the last growth? */
static void round_over(struct hl_flow *f)
{
	if (f->rate >= 1.25 * f->full_rate) {
		f->full_rate = f->rate;
		f->flat_rounds = 0;
	} else if (++f->flat_rounds >= 3) {
		f->full = true;
	}
	f->round_end = f->sends[(f->first + f->n - 1) % HL_FLOW_SENDS].end;
}

/* A sample during a probe: only chunks sent during it count (they went
 * once the window had dropped); it ends once one of them was credited and
 * its time is up. */
static void probe_sample(struct hl_flow *f, const struct hl_flow_send *last, uint64_t rtt,
			 uint64_t now_us)
{
	if (!last->probe)
		return;
	if (f->probe_rtt_us == 0 || rtt < f->probe_rtt_us)
		f->probe_rtt_us = rtt;
	if (now_us < f->probe_until_us)
		return;
	f->rtt_us = f->probe_rtt_us;
	f->rtt_at_us = now_us;
	f->probe_until_us = 0;
}

void hl_flow_credited(struct hl_flow *f, uint64_t taken, uint64_t now_us)
{
	const struct hl_flow_send *last = NULL;
	while (f->n > 0 && f->sends[f->first].end <= taken) {
		last = &f->sends[f->first];
		f->first = (f->first + 1) % HL_FLOW_SENDS;
		f->n--;
	}
	if (taken > f->credited) {
		f->credited = taken;
		f->credited_us = now_us;
	}
	if (!last || now_us <= last->at_us)
		return;
	f->first_us = last->at_us;
	uint64_t rtt = now_us - last->at_us;
	uint64_t acked = now_us - last->credited_us, sent = last->at_us - last->first_us;
	uint64_t interval = acked > sent ? acked : sent;
	double rate = (double)(taken - last->credited) * 1e6 / (double)(interval ? interval : 1);
	f->samples++;
	if (f->probe_until_us) {
		probe_sample(f, last, rtt, now_us);
		return;   /* a probe's rates are its own making */
	}
	if (f->rtt_us == 0 || rtt <= f->rtt_us) {
		f->rtt_us = rtt;
		f->rtt_at_us = now_us;
	}
	if (rate >= f->rate || now_us - f->rate_at_us > rate_window(f)) {
		f->rate = rate;
		f->rate_at_us = now_us;
	}
	if (taken >= f->round_end && f->n > 0)
		round_over(f);
	if ((f->full && !f->drained) || now_us - f->rtt_at_us > HL_FLOW_PROBE_EVERY_US) {
		/* probe: the window drops until the queue drains (flow.h) */
		f->drained = true;
		f->probe_until_us = now_us + (f->rtt_us > HL_FLOW_PROBE_MIN_US ? f->rtt_us
									: HL_FLOW_PROBE_MIN_US);
		f->probe_rtt_us = 0;
	}
}

/* During a probe: half the bandwidth-delay product, which drains the
 * queue a window of 5/4 of it keeps while the path stays half busy (at
 * least HL_FLOW_PROBE_WINDOW). */
static uint64_t probe_window(const struct hl_flow *f)
{
	double w = f->rate * (double)f->rtt_us / 2e6;
	return w > HL_FLOW_PROBE_WINDOW ? (uint64_t)w : HL_FLOW_PROBE_WINDOW;
}

uint64_t hl_flow_ahead(const struct hl_flow *f)
{
	if (f->samples == 0)
		return HL_FLOW_AHEAD_INIT;
	double a = f->rate * HL_FLOW_BUDGET_US / 1e6;
	if (a < HL_FLOW_AHEAD_MIN)
		return HL_FLOW_AHEAD_MIN;
	if (a > HL_FLOW_AHEAD_MAX)
		return HL_FLOW_AHEAD_MAX;
	return (uint64_t)a;
}

uint64_t hl_flow_window(const struct hl_flow *f)
{
	if (f->samples == 0)
		return HL_FLOW_WINDOW_INIT;
	if (f->probe_until_us)
		return probe_window(f);
	double gain = f->full ? 1.25 : 2.0;
	double w = gain * f->rate * (double)f->rtt_us / 1e6;
	if (w < HL_FLOW_WINDOW_MIN)
		w = HL_FLOW_WINDOW_MIN;
	w += (double)hl_flow_ahead(f);
	return w > HL_FLOW_WINDOW_MAX ? HL_FLOW_WINDOW_MAX : (uint64_t)w;
}

size_t hl_flow_chunk(const struct hl_flow *f, size_t max)
{
	uint64_t a = hl_flow_ahead(f);
	if (f->probe_until_us && a > probe_window(f))
		a = probe_window(f);   /* a chunk fits the probe's window */
	return a < max ? (size_t)a : max;
}
