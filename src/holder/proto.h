/* holder/proto.h — the key holder's request protocol (docs/keyholder.md
 * section 4): the typed requests a network process, a command or the mail
 * pickup may send to the process that holds the station's private keys,
 * and their answers.  Pure (buf, len) codecs, no I/O; the parsers cap
 * every length and are fuzzed (fuzz/fuzz_holder.c).
 *
 * A message is a frame: a 4-byte big-endian length L (1 to
 * HL_HOLD_FRAME_MAX) and L bytes.  A request is version (1), type, then
 * its fields; an answer is version, the request's type, a status, then
 * fields.  There is no request for a signature over bytes the asker
 * chooses: an item is signed only as an item the holder decodes, checks
 * against the chain heads it keeps and encodes again itself. */
#ifndef HL_HOLDER_PROTO_H
#define HL_HOLDER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "crypto/signer.h"
#include "item/types.h"

#define HL_HOLD_VERSION 1
/* A frame's body: a run of HL_HOLD_RUN_MAX items of HL_ITEM_MAX bytes
 * with their notes, or one message with the largest body. */
#define HL_HOLD_FRAME_MAX (24u << 20)
/* Items signed in one request: `send --lines` signs a run of 256. */
#define HL_HOLD_RUN_MAX 256
/* A note (what the asker needs to store the item again should it lose
 * it: a message's content) is opaque to the holder. */
#define HL_HOLD_NOTE_MAX (HL_BODY_MAX + HL_SUBJECT_MAX + 64)
#define HL_HOLD_TEXT_MAX 240

enum hl_hold_type {
	HL_HOLD_KEYS = 1,       /* the public keys */
	HL_HOLD_SIGN = 2,       /* sign a run of consecutive items of one chain */
	HL_HOLD_DH = 3,         /* X25519 of the static key and a public key */
	HL_HOLD_SEAL = 4,       /* sign a record's seal over its hash */
	HL_HOLD_PENDING = 5,    /* a chain's head, and the items kept after a seq */
	HL_HOLD_ROTATE = 6,     /* rotate identity.key to the pre-committed next keys */
	HL_HOLD_DH_PREVIOUS = 7,/* X25519 of the previous static key (after a rotation) */
	HL_HOLD_SYNC = 8,       /* every position signed so far is durable: answered then */
};

enum hl_hold_status {
	HL_HOLD_OK = 0,
	HL_HOLD_REFUSED = 1,    /* well formed, and refused: see the reason */
	HL_HOLD_MALFORMED = 2,  /* not a request this holder takes */
	HL_HOLD_FAILED = 3,     /* the holder could not do it (its disk, a low-order key) */
};

enum hl_hold_refusal {
	/* A different item at a position of the chain already signed, or an
	 * item that does not follow the one signed there: the holder never
	 * signs two items at one position. */
	HL_HOLD_R_SIGNED = 1,
	/* An item that is not this station's own, or a run that is not one
	 * chain's consecutive items. */
	HL_HOLD_R_NOT_OURS = 2,
	/* A rotation item to keys that are not the ones the station committed
	 * to (its current keys since the holder rotated), or a rotation asked
	 * by another than the daemon, or before any rotation took place. */
	HL_HOLD_R_ROTATION = 3,
};

/* Bytes borrowed from the buffer a message was parsed from. */
struct hl_hold_blob {
	const uint8_t *p;
	size_t len;
};

struct hl_hold_entry {
	struct hl_hold_blob item;     /* SIGN: unsigned (64 zero bytes of signature);
	                               * PENDING: as signed */
	struct hl_hold_blob note;
};

struct hl_hold_request {
	enum hl_hold_type type;
	union {
		struct {
			uint16_t n;
			struct hl_hold_entry e[HL_HOLD_RUN_MAX];
		} sign;
		uint8_t dh_pub[32];
		uint8_t seal_hash[32];
		struct {
			uint8_t peer[32];     /* the chain's counterpart (signing key) */
			uint64_t after;
		} pending;
	} u;
};

struct hl_hold_response {
	enum hl_hold_type type;
	enum hl_hold_status status;
	union {
		/* KEYS and ROTATE: the keys now */
		struct hl_signer_public keys;
		struct {
			uint16_t n;
			const uint8_t *sigs;  /* n × 64 bytes, borrowed */
			uint16_t m;           /* the run's rotation items, in order: */
			const uint8_t *new_sigs; /* m × 64 bytes, their new_sig, borrowed */
		} sign;
		uint8_t dh[32];
		uint8_t seal_sig[64];
		struct {
			uint64_t head_seq;    /* 0: the holder signed nothing on that chain */
			uint8_t head_hash[32];
			uint16_t n;
			struct hl_hold_entry e[HL_HOLD_RUN_MAX];
		} pending;
		struct {
			uint8_t reason;       /* enum hl_hold_refusal */
			uint64_t head_seq;
			uint8_t head_hash[32];
		} refused;
	} u;
	/* REFUSED, MALFORMED, FAILED: why, for the logs; the holder's own
	 * words, cut to HL_HOLD_TEXT_MAX bytes. */
	struct hl_hold_blob text;
};

/* The body of a frame whose 4-byte header is HDR: its length, or 0 when
 * it is 0 or over HL_HOLD_FRAME_MAX. */
size_t hl_hold_frame_len(const uint8_t hdr[static 4]);
void hl_hold_frame_hdr(size_t len, uint8_t hdr[static 4]);

/* Parses a request body.  On failure WHY names the first bad field (static
 * text) and the return is HL_EINVAL, HL_ETRUNC or HL_ETOOBIG. */
int hl_hold_request_parse(const uint8_t *buf, size_t len, struct hl_hold_request *req,
			  const char **why);
/* Encodes R into a new buffer (*OUT, xmalloc'd, *LEN bytes). */
int hl_hold_request_encode(const struct hl_hold_request *r, uint8_t **out, size_t *len);

/* Parses an answer to a request of type TYPE. */
int hl_hold_response_parse(const uint8_t *buf, size_t len, enum hl_hold_type type,
			   struct hl_hold_response *resp);
int hl_hold_response_encode(const struct hl_hold_response *r, uint8_t **out, size_t *len);

/* "keys", "sign", ...; "?" for another value. */
const char *hl_hold_type_name(int type);

#endif
