/* session/backoff.h — when to dial a peer again: exponential backoff with
 * jitter (docs/protocol.md section 4): 0.5 s doubling to 60 s, each delay
 * spread by +-25 %, reset when a session is confirmed.  Pure: the caller
 * supplies the randomness, so tests can pin it. */
#ifndef HL_SESSION_BACKOFF_H
#define HL_SESSION_BACKOFF_H

#include <stdint.h>

#define HL_BACKOFF_BASE_MS 500u
#define HL_BACKOFF_MAX_MS 60000u

struct hl_backoff {
	uint32_t next_ms;   /* the un-jittered delay the next failure gets */
};

void hl_backoff_reset(struct hl_backoff *b);
/* The delay before the next attempt, jittered by RANDOM (uniform over
 * 32 bits) into [0.75, 1.25] x the base delay; doubles the base, capped. */
uint32_t hl_backoff_next(struct hl_backoff *b, uint32_t random);

#endif
