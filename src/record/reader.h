/* record/reader.h — inside src/record/ only: reading a record file in
 * bounded memory (format.h says what the rest of hotline sees).
 *
 * A record comes from a file (read with pread through small buffers) or
 * from memory (tests, fuzzing); either way nothing of it is held whole.
 * The parser (format.c) reads it once, in order, hashing every byte for
 * the seal, and leaves behind a sparse index per chain: the file offset of
 * every few entries (at most HL_RECORD_CKPT_MAX per chain; the spacing
 * doubles when that fills up, so the index has a fixed size whatever the
 * file).  An entry named by position is then found from the checkpoint
 * before it (or from where the last look-up stopped, when that is nearer:
 * looks in order cost one walk in all), and the entries looked at lately
 * are kept in a cache of fixed size (HL_RECORD_CACHE_SLOTS, slots chosen by
 * a keyed hash so that a file cannot aim its references at one slot).
 *
 * Memory: a few MiB in all, whatever the file's size.  Time: the parse is
 * one pass; a look-up in order costs what the walk between the two entries
 * costs; a look-up out of order at most one index step (a few hundred
 * entry headers at the most). */
#ifndef HL_RECORD_READER_H
#define HL_RECORD_READER_H

#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "record/format.h"

#define HL_RRD_BUF (128u * 1024)           /* a reader's window */
#define HL_RRD_MAX_TAKE (32u * 1024)       /* the most one take() asks for */
#define HL_RECORD_CKPT_MAX (1u << 16)      /* checkpoints per chain */
#define HL_RECORD_CACHE_SLOTS (1u << 16)

/* Test knobs (tests/unit/test_record_reader.c): a thin index and a small
 * cache reach the index's thinning and the cache's evictions with small
 * records.  hotline itself never changes them.  HL_RECORD_CKPT_MAX and
 * HL_RECORD_CACHE_SLOTS by default; the first at least 2. */
extern uint32_t hl_record_ckpt_max, hl_record_cache_max;

struct hl_rsrc {
	int fd;                        /* -1: MEM */
	const uint8_t *mem;
	uint64_t len;
};

/* A buffered reader over a source.  Errors are sticky (HL_ETRUNC past the
 * end, -errno from the file): reads then yield zeros. */
struct hl_rrd {
	const struct hl_rsrc *src;
	const uint8_t *win;            /* bytes [win_off, win_off + win_len) of the file */
	uint64_t win_off;
	size_t win_len;
	uint64_t off;                  /* the next byte to read */
	uint8_t *buf;                  /* a file's window storage */
	crypto_generichash_state *hs;  /* set: every byte read is hashed, in order */
	int err;
};

void hl_rrd_init(struct hl_rrd *r, const struct hl_rsrc *src, uint64_t off);
void hl_rrd_free(struct hl_rrd *r);
const uint8_t *hl_rrd_take(struct hl_rrd *r, size_t n);
void hl_rrd_bytes(struct hl_rrd *r, void *dst, size_t n);
uint8_t hl_rrd_u8(struct hl_rrd *r);
uint16_t hl_rrd_u16(struct hl_rrd *r);
uint32_t hl_rrd_u32(struct hl_rrd *r);
uint64_t hl_rrd_u64(struct hl_rrd *r);
void hl_rrd_skip(struct hl_rrd *r, uint64_t n);
void hl_rrd_seek(struct hl_rrd *r, uint64_t off);   /* not while hashing */
uint64_t hl_rrd_left(const struct hl_rrd *r);

struct hl_record_ckpt {
	uint64_t seq, off;
};

struct hl_record_index {
	struct hl_record_ckpt *ck;
	size_t n, cap;
	uint64_t step_e, step_b;       /* a checkpoint every step_e entries or step_b bytes */
};

struct hl_record_slot {
	uint64_t key;                  /* chain << 62 | seq; 0: empty */
	struct hl_record_entry e;
	bool hashed;
};

/* What the parser leaves for the readers (hl_record.priv). */
struct hl_record_priv {
	struct hl_rsrc src;
	struct stat st;                /* a file's, when opened: to notice changes */
	struct hl_record_index idx[2];
	struct hl_record_slot *cache;  /* NSLOTS, made on first use */
	uint32_t nslots;
	uint64_t entries;              /* in both chains, once parsed */
	uint8_t cache_key[crypto_shorthash_KEYBYTES];
	struct hl_rrd look[2];         /* per chain: where the last look-up stopped */
	uint64_t look_seq[2];          /* the entry there; 0: not placed */
	struct hl_rrd scratch;
	uint8_t *item;                 /* HL_ITEM_MAX, for hashing looked-up items */
	/* where each section's elements begin, and chain 1's */
	uint64_t contents_off[2], atts_off[2], evidence_off;
	uint64_t contents_left[2], atts_left[2];   /* elements from there to the section's end */
};

struct hl_record_priv *hl_record_priv_new(int fd, const uint8_t *mem, uint64_t len);
void hl_record_priv_free(struct hl_record_priv *p);
/* The parser's note that chain C's entry SEQ starts at OFF (in order). */
void hl_record_index_add(struct hl_record_priv *p, unsigned c, uint64_t seq, uint64_t off);
/* Entry SEQ of chain C (1 <= SEQ <= rec->n[C]); its hash only when
 * WANT_HASH (the parser needs types only). */
int hl_record_locate(const struct hl_record *rec, unsigned c, uint64_t seq, bool want_hash,
		     struct hl_record_entry *e);

#endif
