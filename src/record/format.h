/* record/format.h — the record file (docs/record.md): its layout, the
 * parser and the writer.
 *
 * A record is what a station exports so that a third party can check the
 * history of one link with the two stations' cards and nothing else: both
 * cards, every entry of both chains (the signed items verbatim, refused
 * positions and positions not yet received marked as such), the disclosed
 * contents of messages, optionally their attachments, any evidence of
 * equivocation, (version 2) the messages whose contents the exporter
 * purged under its retention, and a seal: the exporter's signature over
 * everything before it.  An exporter writes version 1 when it purged
 * nothing, so readers of version 1 read every record without purges.
 *
 * The parser takes (buf, len), caps every length, does no I/O and keeps
 * pointers into BUF (which must outlive the parsed record).  It checks the
 * structure only (and hashes each item once, for the verifier's index);
 * signatures, links and cross-references are record/verify.h's job.
 *
 * The writer streams: each call appends to a sink and to the running hash
 * the seal will sign, so a record with gigabytes of attachments is never
 * held in memory.  It checks that sections come in order and that each
 * holds the number of elements it declared. */
#ifndef HL_RECORD_FORMAT_H
#define HL_RECORD_FORMAT_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "msg/item.h"

#define HL_RECORD_MAGIC "HLRECORD"       /* 8 bytes, no NUL */
#define HL_RECORD_MAGIC_LEN 8
#define HL_RECORD_VERSION 1
#define HL_RECORD_VERSION_PURGED 2        /* version 1 plus the purged section */
#define HL_RECORD_HEADER_LEN 18           /* magic, version, flags, exported_at */
#define HL_RECORD_SEAL_CTX "hotline/1 record seal"
#define HL_RECORD_SIG_LEN 64

/* Caps (docs/record.md, section 3). */
#define HL_RECORD_MAX_ENTRIES (1u << 24)     /* per chain */
#define HL_RECORD_MAX_ABSENT (1u << 20)      /* absent positions, whole record */
#define HL_RECORD_MAX_CONTENTS (1u << 24)
#define HL_RECORD_MAX_ATTACHMENTS (1u << 24)
#define HL_RECORD_MAX_EVIDENCE 4096
#define HL_RECORD_MAX_PURGED (1u << 24)
#define HL_RECORD_MAX_ATT_SIZE (UINT64_C(1) << 62)

/* Chain 0 is the exporter's (items it authored), chain 1 its peer's. */
#define HL_RECORD_EXPORTER 0
#define HL_RECORD_PEER 1

enum hl_record_entry_type {
	HL_RECORD_ITEM = 1,     /* the encoded item, as stored */
	HL_RECORD_REFUSED = 2,  /* a tombstone: the exporter refused the item with this hash */
	HL_RECORD_ABSENT = 3,   /* the exporter did not hold this position when it exported */
};

struct hl_record_entry {
	const uint8_t *item;           /* ITEM: borrowed from the buffer */
	size_t off;                    /* where the entry starts in the file */
	uint8_t hash[HL_HASH_LEN];     /* ITEM: BLAKE2b-256 of the item; REFUSED: as given */
	uint16_t len;                  /* ITEM: bytes of the item */
	uint8_t type;                  /* enum hl_record_entry_type */
	uint8_t code;                  /* REFUSED: the REFUSE code (docs/messages.md) */
	int32_t content;               /* index into contents[], or -1 */
	int32_t first_att;             /* index of its first attachment in atts[], or -1 */
	int32_t purged;                /* index into purged[], or -1 */
};

struct hl_record_content {
	uint8_t chain;
	uint64_t seq;
	const uint8_t *salt;           /* HL_SALT_LEN bytes */
	const uint8_t *subject;
	uint16_t subject_len;
	const uint8_t *body;
	uint32_t body_len;
};

struct hl_record_att {
	uint8_t chain;
	uint64_t seq;
	uint8_t index;                 /* the attachment's index in the message item */
	uint64_t size;
	const uint8_t *data;
};

struct hl_record_evidence {
	uint8_t chain;                 /* whose author signed it */
	const uint8_t *item;
	uint16_t len;
	uint8_t hash[HL_HASH_LEN];
};

/* Version 2: the exporter purged this message's contents at PURGED_AT
 * (its claim, sealed like the rest); the signed item stays. */
struct hl_record_purged {
	uint8_t chain;
	uint64_t seq;
	uint64_t purged_at;            /* ms, the exporter's clock */
};

struct hl_record {
	const uint8_t *buf;
	size_t len;
	uint8_t version;               /* 1, or 2 with the purged section */
	uint64_t exported_at;          /* ms, the exporter's clock (a claim) */
	const char *card_text[2];
	size_t card_len[2];
	hl_card card[2];               /* the embedded cards, parsed */
	size_t chain_off[2];           /* where each chain's count is in the file */
	struct hl_record_entry *entries[2];
	size_t n[2];                   /* entries (= the chain's last seq) */
	struct hl_record_content *contents;
	size_t ncontents;
	struct hl_record_att *atts;
	size_t natts;
	struct hl_record_evidence *evidence;
	size_t nevidence;
	struct hl_record_purged *purged;
	size_t npurged;
	const uint8_t *sig;            /* the seal */
	size_t signed_len;             /* bytes before the seal */
};

/* Parses BUF (LEN bytes).  On failure returns a negative code and puts one
 * line naming the bad part (section, chain and entry) in WHY. */
int hl_record_parse(const uint8_t *buf, size_t len, struct hl_record **out,
		    char *why, size_t whylen);
void hl_record_free(struct hl_record *rec);

/* The message the seal signs: the context string, NUL, then BLAKE2b-256 of
 * the SIGNED_LEN bytes before it. */
#define HL_RECORD_SEAL_MSG_LEN (sizeof(HL_RECORD_SEAL_CTX) + HL_HASH_LEN)
void hl_record_seal_msg(const uint8_t file_hash[static HL_HASH_LEN],
			uint8_t out[static HL_RECORD_SEAL_MSG_LEN]);

/* ---- the writer ---- */

/* The sink: writes all N bytes or returns a negative code. */
typedef int (*hl_record_sink)(void *arg, const void *p, size_t n);

struct hl_record_writer {
	hl_record_sink sink;
	void *arg;
	crypto_generichash_state hs;
	uint64_t written;
	int err;                       /* sticky: the first failure */
	int section;                   /* where we are (format.c) */
	uint64_t left;                 /* elements the current section still expects */
	uint64_t att_left;             /* bytes the current attachment still expects */
	uint8_t version;               /* of the header written */
};

void hl_record_writer_init(struct hl_record_writer *w, hl_record_sink sink, void *arg);
/* In this order: header, two cards (the exporter's first), chain 0 then
 * chain 1 (begin with its count, then that many entries), contents,
 * attachments, evidence, (version 2 only) purged, seal.  Each returns 0 or the writer's sticky
 * error (HL_ESTATE for a call out of order, HL_EINVAL for a value the
 * format forbids). */
int hl_record_write_header(struct hl_record_writer *w, uint64_t exported_at);
/* The header of VERSION (HL_RECORD_VERSION or HL_RECORD_VERSION_PURGED). */
int hl_record_write_header_version(struct hl_record_writer *w, uint64_t exported_at,
				   unsigned version);
int hl_record_write_card(struct hl_record_writer *w, const char *text, size_t len);
int hl_record_write_chain(struct hl_record_writer *w, uint32_t count);
int hl_record_write_item(struct hl_record_writer *w, const uint8_t *item, size_t len);
int hl_record_write_refused(struct hl_record_writer *w, const uint8_t hash[static HL_HASH_LEN],
			    uint8_t code);
int hl_record_write_absent(struct hl_record_writer *w);
int hl_record_write_contents(struct hl_record_writer *w, uint32_t count);
int hl_record_write_content(struct hl_record_writer *w, unsigned chain, uint64_t seq,
			    const uint8_t salt[static HL_SALT_LEN], const uint8_t *subject,
			    size_t subject_len, const uint8_t *body, size_t body_len);
int hl_record_write_attachments(struct hl_record_writer *w, uint32_t count);
int hl_record_write_att_begin(struct hl_record_writer *w, unsigned chain, uint64_t seq,
			      unsigned index, uint64_t size);
int hl_record_write_att_data(struct hl_record_writer *w, const void *p, size_t n);
int hl_record_write_evidence(struct hl_record_writer *w, uint32_t count);
int hl_record_write_evidence_item(struct hl_record_writer *w, unsigned chain,
				  const uint8_t *item, size_t len);
/* Version 2: COUNT purged messages, each (CHAIN, SEQ) in strictly
 * increasing order, a message ITEM without content, and when (ms). */
int hl_record_write_purged(struct hl_record_writer *w, uint32_t count);
int hl_record_write_purged_entry(struct hl_record_writer *w, unsigned chain, uint64_t seq,
				 uint64_t purged_at);
/* Signs the hash of everything written with SIGN_SK (the exporter's, the
 * key of the first card) and writes the signature. */
int hl_record_write_seal(struct hl_record_writer *w, const uint8_t sign_sk[static 64]);

/* Re-seals a whole record in memory (its last 64 bytes): for tests and
 * tools that build records by hand. */
void hl_record_reseal(uint8_t *buf, size_t len, const uint8_t sign_sk[static 64]);

#endif
