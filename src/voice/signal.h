/* voice/signal.h — call signalling packets on the link (docs/voice.md
 * section 2): their types and bodies.  Pure functions over (buf, len);
 * fixed sizes; a longer body is accepted and its tail ignored (room for
 * later fields), up to HL_CALL_REC_MAX.  Fuzzed by fuzz/fuzz_voice_signal.c.
 *
 *   CALL_RING    0x30  call id 16, precedence 1, flags 1, caller's public
 *                      key 32, caller's tag 4, caller's UDP port 2   (56)
 *   CALL_RINGING 0x31  call id 16: the ring reached the peer's station  (16)
 *   CALL_ANSWER  0x32  call id 16, answerer's public key 32, answerer's
 *                      tag 4, answerer's UDP port 2                     (54)
 *   CALL_END     0x33  call id 16, reason 1                             (17)
 *   CALL_MEDIA   0x34  one media packet (voice/media.h), when UDP does
 *                      not get through                                 (128)
 *
 * Integers are big-endian. */
#ifndef HL_VOICE_SIGNAL_H
#define HL_VOICE_SIGNAL_H

#include <stddef.h>
#include <stdint.h>

#include "voice/media.h"

enum {
	HL_PKT_CALL_RING = 0x30,
	HL_PKT_CALL_RINGING = 0x31,
	HL_PKT_CALL_ANSWER = 0x32,
	HL_PKT_CALL_END = 0x33,
	HL_PKT_CALL_MEDIA = 0x34,
	HL_PKT_CALL_FIRST = 0x30,
	HL_PKT_CALL_LAST = 0x37,   /* 0x35-0x37: reserved for calls, ignored */
};

#define HL_CALL_REC_MAX 256
#define HL_CALL_RING_LEN 56
#define HL_CALL_RINGING_LEN 16
#define HL_CALL_ANSWER_LEN 54
#define HL_CALL_END_LEN 17

/* Why a call ended (CALL_END's reason; also the call item's). */
enum hl_call_end {
	HL_CALL_HANGUP = 1,      /* a person hung up */
	HL_CALL_BUSY = 2,        /* the peer's line is taken (by a call of equal or higher precedence) */
	HL_CALL_NO_ANSWER = 3,   /* nobody answered in time */
	HL_CALL_PREEMPTED = 4,   /* a call of higher precedence took the line (MLPP) */
	HL_CALL_LOST = 5,        /* no media in either path for too long */
	HL_CALL_FAILED = 6,      /* a key exchange or media setup that failed */
	HL_CALL_END_MAX = 6,
};
/* "hangup", "busy", ...; "unknown" otherwise. */
const char *hl_call_end_name(unsigned reason);

struct hl_call_ring {
	uint8_t id[HL_CALL_ID_LEN];
	uint8_t precedence;     /* enum hl_precedence */
	uint8_t flags;          /* none defined: 0 */
	uint8_t pub[HL_CALL_PUB_LEN];
	uint32_t tag;
	uint16_t port;          /* 0: no UDP (media on the link only) */
};

struct hl_call_answer {
	uint8_t id[HL_CALL_ID_LEN];
	uint8_t pub[HL_CALL_PUB_LEN];
	uint32_t tag;
	uint16_t port;
};

struct hl_call_endrec {
	uint8_t id[HL_CALL_ID_LEN];
	uint8_t reason;
};

void hl_call_ring_encode(const struct hl_call_ring *r, uint8_t out[static HL_CALL_RING_LEN]);
void hl_call_answer_encode(const struct hl_call_answer *a,
			   uint8_t out[static HL_CALL_ANSWER_LEN]);
void hl_call_end_encode(const struct hl_call_endrec *e, uint8_t out[static HL_CALL_END_LEN]);

/* HL_ETRUNC when short, HL_ETOOBIG over HL_CALL_REC_MAX, HL_EINVAL for a
 * value out of range (precedence over FLASH, reason 0 or unknown, a public
 * key of all zeros). */
int hl_call_ring_decode(const uint8_t *buf, size_t len, struct hl_call_ring *r);
int hl_call_ringing_decode(const uint8_t *buf, size_t len, uint8_t id[static HL_CALL_ID_LEN]);
int hl_call_answer_decode(const uint8_t *buf, size_t len, struct hl_call_answer *a);
int hl_call_end_decode(const uint8_t *buf, size_t len, struct hl_call_endrec *e);

#endif
