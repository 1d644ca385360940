/* session/backoff.c — dial backoff with jitter (see backoff.h). */
#include "session/backoff.h"

void hl_backoff_reset(struct hl_backoff *b)
{
	b->next_ms = HL_BACKOFF_BASE_MS;
}

uint32_t hl_backoff_next(struct hl_backoff *b, uint32_t random)
{
	if (b->next_ms < HL_BACKOFF_BASE_MS || b->next_ms > HL_BACKOFF_MAX_MS)
		hl_backoff_reset(b);
	uint64_t base = b->next_ms;
	/* base * (0.75 + 0.5 * random / 2^32), in integers. */
	uint64_t delay = base * 3 / 4 + ((base / 2) * (uint64_t)random >> 32);
	b->next_ms = base * 2 > HL_BACKOFF_MAX_MS ? HL_BACKOFF_MAX_MS : (uint32_t)(base * 2);
	return (uint32_t)delay;
}
