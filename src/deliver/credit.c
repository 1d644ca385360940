/* deliver/credit.c — how much data may be on its way, for the engine
 * (docs/messages.md, CREDIT; deliver/flow.h).  As a sender: the window,
 * sized in time, that the data in flight of CHUNK and STAGE packets must
 * fit (eng_flow_holds), and what may wait in the session ahead of an urgent
 * packet.  As a receiver: the CREDIT we send for what we took in (see
 * CREDIT_WINDOW in engine_int.h). */
#include "deliver/engine_int.h"

#include <stdatomic.h>

#include "util/mem.h"

/* Sends CREDIT once CREDIT_STEP has been taken in since the last one, or,
 * with ALL (the end of a burst, a worker's progress), for anything taken
 * (see CREDIT_WINDOW).  A CREDIT the session refuses now goes at the next
 * pump. */
void eng_credit_maybe(hl_engine *e, uint64_t now, bool all)
{
	if (!e->credit_on || !e->session || hl_session_state(e->session) != HL_SESSION_OPEN)
		return;
	/* Workers' rings may hold RING_SPARE bytes beyond the window: what
	 * they hold past that is not credited yet (see CREDIT_WINDOW). */
	uint64_t queued = e->pushed_pw - atomic_load_explicit(&e->done_pw, memory_order_acquire);
	uint64_t held = queued > RING_SPARE ? queued - RING_SPARE : 0;
	uint64_t taken = e->taken - held;
	if (taken <= e->credit_sent || (!all && taken - e->credit_sent < CREDIT_STEP))
		return;
	uint8_t body[HL_CREDIT_LEN];
	hl_pkt_credit_encode(taken, body);
	if (eng_send_pkt(e, HL_PKT_CREDIT, body, sizeof(body), now) == 0)
		e->credit_sent = taken;
}

void hl_engine_credit(hl_engine *e, uint64_t now)
{
	eng_credit_maybe(e, now, true);
}

uint64_t eng_flow_us(const hl_engine *e, uint64_t now_ms)
{
	return e->env.clock_us ? e->env.clock_us() : now_ms * 1000u;
}

/* The most data the next CHUNK or STAGE packet carries. */
size_t eng_data_max(const hl_engine *e, size_t max)
{
	return e->credit_on && e->flow ? hl_flow_chunk(e->flow, max) : max;
}

/* N more bytes of data went (the session's count is e->chunk_sent). */
void eng_flow_sent(hl_engine *e, size_t n, uint64_t now)
{
	e->chunk_sent += n;
	if (!e->credit_on)
		return;
	if (!e->flow) {
		e->flow = xmalloc(sizeof(*e->flow));
		hl_flow_init(e->flow);
	}
	hl_flow_sent(e->flow, e->chunk_sent, eng_flow_us(e, now));
}

/* With CREDIT, N more bytes of data must wait: they would take the data
 * in flight past the window, or the session's queue past what may wait
 * ahead of an urgent packet (then the session calls on_writable as its queue
 * drains, and the engine pumps again; a CREDIT pumps too). */
bool eng_flow_holds(hl_engine *e, uint64_t n)
{
	if (!e->credit_on)
		return false;
	uint64_t window = e->flow ? hl_flow_window(e->flow) : HL_FLOW_WINDOW_INIT;
	uint64_t ahead = e->flow ? hl_flow_ahead(e->flow) : HL_FLOW_AHEAD_INIT;
	/* (with nothing uncredited no CREDIT would come: a chunk always goes) */
	if (e->chunk_sent > e->chunk_credit && e->chunk_sent - e->chunk_credit + n > window)
		return true;
	size_t queued = hl_session_queued(e->session);
	if (queued > 0 && queued + n > ahead) {
		hl_session_notify_writable(e->session);
		return true;
	}
	return false;
}

uint64_t hl_engine_ahead(const hl_engine *e)
{
	return e->credit_on && e->flow ? hl_flow_ahead(e->flow) : HL_FLOW_AHEAD_INIT;
}
