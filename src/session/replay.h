/* session/replay.h — what a responder keeps across connections so that a
 * replayed handshake message 1 displaces nothing (docs/protocol.md section
 * 2.1): the timestamp message 1 carries in its payload (TAI64N, the wire
 * form and the rule), the greatest timestamp accepted from each peer
 * (hl_replay_window, one per pinned key, kept by the daemon), and the
 * ephemeral keys of the messages 1 read lately (hl_replay_cache, one per
 * station), which turns an exact replay away before any Diffie-Hellman.
 *
 * Pure: no clock (the caller gives the time), no I/O, no allocation except
 * the cache's own table. */
#ifndef HL_SESSION_REPLAY_H
#define HL_SESSION_REPLAY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HL_TAI64N_LEN 12
/* Message 1's payload: empty, or a timestamp and at most this many bytes in
 * all (the rest is room for later fields, ignored). */
#define HL_MSG1_PAYLOAD_MAX 256

/* A TAI64N timestamp as it travels: an 8-byte big-endian TAI64 label
 * (2^62 + 10 + Unix seconds, as libtai and WireGuard write it) and a
 * 4-byte big-endian count of nanoseconds below 10^9.  Comparing the bytes
 * (memcmp) compares the times. */
struct hl_stamp {
	uint8_t b[HL_TAI64N_LEN];
};

/* The timestamp of UNIX_NS (nanoseconds since 1970), its nanoseconds
 * rounded down to a multiple of 2^24 (about 17 ms), as WireGuard does, so
 * that a peer learns no more than that of this station's clock. */
void hl_stamp_from_unix_ns(uint64_t unix_ns, struct hl_stamp *out);
/* The timestamp for the next message 1 to one peer: that of UNIX_NS, or
 * one nanosecond after *LAST when that is not newer (two dials within one
 * rounding step, or a clock that went back while the daemon ran).  *LAST
 * (all zeros at first) becomes the result. */
void hl_stamp_next(struct hl_stamp *last, uint64_t unix_ns, struct hl_stamp *out);
/* <0, 0, >0 as A is older than, as old as, newer than B. */
int hl_stamp_cmp(const struct hl_stamp *a, const struct hl_stamp *b);
/* Unix nanoseconds of STAMP (for log lines; 0 before 1970, UINT64_MAX
 * after 2554). */
uint64_t hl_stamp_unix_ns(const struct hl_stamp *stamp);

/* Message 1's payload (BUF, LEN bytes): empty (*HAS false: a station that
 * predates timestamps), or a timestamp then up to HL_MSG1_PAYLOAD_MAX - 12
 * bytes that are ignored (*HAS true, *OUT set).  HL_ETRUNC for 1 to 11
 * bytes, HL_ETOOBIG above the maximum, HL_EINVAL for a label with its top
 * bit set or nanoseconds of 10^9 or more. */
int hl_msg1_payload_decode(const uint8_t *buf, size_t len, struct hl_stamp *out, bool *has);

/* The greatest timestamp accepted from one peer. */
struct hl_replay_window {
	struct hl_stamp greatest;
	bool any;
};

/* The rule: a timestamped message 1 is accepted only when its STAMP is
 * newer than every one accepted from the peer before (an equal one is the
 * same message again).  Returns 0 and advances the window, or HL_EREPLAY
 * and leaves it as it was. */
int hl_replay_window_accept(struct hl_replay_window *w, const struct hl_stamp *stamp);

/* The ephemeral keys (the first 32 bytes) of the last N messages 1 that
 * decrypted under this station's key: a legitimate initiator never sends
 * one twice, so a message 1 whose key is here is a replay, refused before
 * any Diffie-Hellman.  Keys are stored as 16-byte keyed hashes (the key is
 * random per cache, so nobody can aim collisions at it); the oldest is
 * forgotten first. */
typedef struct hl_replay_cache hl_replay_cache;

hl_replay_cache *hl_replay_cache_new(size_t n);
void hl_replay_cache_free(hl_replay_cache *c);   /* NULL-safe */
bool hl_replay_cache_seen(const hl_replay_cache *c, const uint8_t e[static 32]);
/* Remembers E (a no-op when it is already there). */
void hl_replay_cache_add(hl_replay_cache *c, const uint8_t e[static 32]);

#endif
