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
 * The parser reads a record from a file (hl_record_open) or from memory
 * (hl_record_parse: (buf, len), no I/O; the fuzz target's way in), in one
 * pass, checking the structure only and hashing every byte before the seal
 * for it.  It holds in memory what a record holds once (header, cards,
 * counts, seal) and a fixed-size index, never the entries: a 64 MiB record
 * of tiny entries is read in a few MiB (record/reader.h).  Entries, contents,
 * attachments and evidence are then read back on demand, by position
 * (hl_record_entry_get) or in order (the cursors); signatures, links and
 * cross-references are record/verify.h's job.
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
#include "crypto/signer.h"
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
	uint64_t off;                  /* where the entry starts in the file */
	uint64_t item_off;             /* ITEM: where its item's bytes start */
	uint8_t hash[HL_HASH_LEN];     /* ITEM: BLAKE2b-256 of the item; REFUSED: as given */
	uint16_t len;                  /* ITEM: bytes of the item */
	uint8_t type;                  /* enum hl_record_entry_type */
	uint8_t code;                  /* REFUSED: the REFUSE code (docs/messages.md) */
};

struct hl_record_content {
	uint8_t chain;
	uint64_t seq;
	uint8_t salt[HL_SALT_LEN];
	uint8_t subject[HL_SUBJECT_MAX];
	uint16_t subject_len;
	uint64_t body_off;             /* the body is read on demand: up to 16 MiB */
	uint32_t body_len;
};

struct hl_record_att {
	uint8_t chain;
	uint64_t seq;
	uint8_t index;                 /* the attachment's index in the message item */
	uint64_t size;
	uint64_t data_off;
};

struct hl_record_evidence {
	uint8_t chain;                 /* whose author signed it */
	const uint8_t *item;           /* valid until the cursor moves */
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

struct hl_record_priv;

struct hl_record {
	uint64_t len;                  /* the file's size */
	uint8_t version;               /* 1, or 2 with the purged section */
	uint64_t exported_at;          /* ms, the exporter's clock (a claim) */
	char card_text[2][HL_CARD_MAX_BYTES];
	size_t card_len[2];
	hl_card card[2];               /* the embedded cards, parsed */
	uint64_t chain_off[2];         /* where each chain's count is in the file */
	uint64_t n[2];                 /* entries (= the chain's last seq) */
	uint64_t ncontents, natts, nevidence, npurged;
	uint8_t sig[HL_RECORD_SIG_LEN];   /* the seal */
	uint64_t signed_len;           /* bytes before the seal */
	uint8_t signed_hash[HL_HASH_LEN]; /* BLAKE2b-256 of them, as the parser read them */
	struct hl_record_priv *priv;   /* record/reader.h */
};

/* Parses BUF (LEN bytes; it must outlive the record).  On failure returns
 * a negative code and puts one line naming the bad part (section, chain
 * and entry) in WHY. */
int hl_record_parse(const uint8_t *buf, size_t len, struct hl_record **out,
		    char *why, size_t whylen);
/* The same from the open file FD (a regular file; duplicated, so the
 * caller may close FD).  The file must not change while the record is
 * read: hl_record_unchanged() says whether it did. */
int hl_record_open(int fd, struct hl_record **out, char *why, size_t whylen);
void hl_record_free(struct hl_record *rec);
/* 0 while the file has the size, inode and change time it had when it
 * was opened (always 0 for memory); HL_ESTATE otherwise. */
int hl_record_unchanged(const struct hl_record *rec);

/* ---- reading what was parsed ----
 * Each returns 0 (or 1 for "one more") or a negative code: a file can
 * fail to read, or turn out shorter than when it was parsed. */

/* Entry SEQ (1..rec->n[C]) of chain C, its hash computed. */
int hl_record_entry_get(const struct hl_record *rec, unsigned c, uint64_t seq,
			struct hl_record_entry *e);
/* The item of the ITEM entry E, into BUF (HL_ITEM_MAX bytes). */
int hl_record_item(const struct hl_record *rec, const struct hl_record_entry *e, uint8_t *buf);
/* N bytes of the file from OFF. */
int hl_record_read(const struct hl_record *rec, uint64_t off, void *p, size_t n);
/* Feeds N bytes of the file from OFF to HS (a body's salted hash, an
 * attachment's document hash: msg/item.h). */
int hl_record_hash_range(const struct hl_record *rec, uint64_t off, uint64_t n,
			 hl_parthash *hs);

/* Cursors read one section in order, each with its own small buffer. */
typedef struct hl_record_cursor hl_record_cursor;
void hl_record_cursor_free(hl_record_cursor *cur);
/* Chain C's entries, first to last: 1 with the next (*ITEM: its bytes,
 * until the next call), 0 after the last. */
int hl_record_chain_open(const struct hl_record *rec, unsigned c, hl_record_cursor **out);
int hl_record_chain_next(hl_record_cursor *cur, struct hl_record_entry *e, const uint8_t **item);
/* Contents from chain C's first on.  content_for gives the content of
 * (C, SEQ) (1) or says there is none (0); asked in increasing (C, SEQ)
 * order. */
int hl_record_contents_open(const struct hl_record *rec, unsigned c, hl_record_cursor **out);
int hl_record_content_for(hl_record_cursor *cur, unsigned c, uint64_t seq,
			  struct hl_record_content *ct);
/* Attachments likewise: att_for gives the next attachment of (C, SEQ)
 * (1), or 0 when it has no more. */
int hl_record_atts_open(const struct hl_record *rec, unsigned c, hl_record_cursor **out);
int hl_record_att_for(hl_record_cursor *cur, unsigned c, uint64_t seq, struct hl_record_att *a);
/* Version 2's purged messages likewise: purged_for gives the purge of
 * (C, SEQ) (1) or says there is none (0), asked in increasing order. */
int hl_record_purged_open(const struct hl_record *rec, unsigned c, hl_record_cursor **out);
int hl_record_purged_for(hl_record_cursor *cur, unsigned c, uint64_t seq,
			 struct hl_record_purged *g);
/* The evidence, in order: 1 with the next, 0 after the last. */
int hl_record_evidence_open(const struct hl_record *rec, hl_record_cursor **out);
int hl_record_evidence_next(hl_record_cursor *cur, struct hl_record_evidence *ev);

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
/* Has SIGNER (the exporter's, whose SigningKey is the first card's) sign
 * the hash of everything written, under the seal's context, and writes the
 * signature. */
int hl_record_write_seal(struct hl_record_writer *w, const hl_signer *signer);

/* Re-seals a whole record in memory (its last 64 bytes): for tests and
 * tools that build records by hand.  HL_ETRUNC when LEN is shorter than a
 * seal. */
int hl_record_reseal(uint8_t *buf, size_t len, const hl_signer *signer);

#endif
