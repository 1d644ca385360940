/* crypto/secpool.h — secure memory for short-lived secrets, reused instead of
 * mapped afresh for each one.
 *
 * Why.  sodium_malloc() gives every allocation its own mapping with guard
 * pages, mprotect()s them, mlock()s the page and wipes it on sodium_free():
 * about ten system calls and two resident pages for a 48-byte cipher state.
 * A daemon that makes a handshake state and two cipher states per
 * connection spent a quarter of each handshake's CPU in that, and every
 * idle session pinned 16 KiB of locked memory for 96 bytes of keys.
 *
 * What.  A pool (hl_secpool) hands out fixed-size slots carved from chunks
 * of sodium_malloc() memory: locked, guarded at the chunk's ends, excluded
 * from core dumps like any sodium_malloc() memory.  A slot is zero when
 * handed out and is wiped with sodium_memzero() when given back; a chunk,
 * once made, stays until the pool is freed (the pool keeps its high-water
 * mark), and hl_secpool_free() wipes and unmaps everything.  What is lost
 * against one mapping per secret: no guard page between two slots of a
 * chunk, so an overrun of one slot would reach its neighbour.  Slots hold
 * fixed-size structures written field by field, never variable-length data.
 *
 * Exhaustion.  A pool made with MAX_CHUNKS > 0 never holds more than that
 * many chunks: hl_secpool_get() returns NULL when every slot is taken.  A
 * pool with MAX_CHUNKS 0 grows without bound; NULL then means the system is
 * out of memory.
 *
 * The process-wide allocator hl_secmem_alloc() / hl_secmem_free() keeps one
 * unbounded pool per size class (32 to 2048 bytes, powers of two) and
 * follows util/mem.h's policy: out of memory is fatal.  Larger requests go
 * to sodium_malloc() itself.  noise.c (handshake states) and session.c
 * (session cipher states) use it.
 *
 * Threads.  A pool and the process-wide allocator may be used from several
 * threads: each pool has a mutex. */
#ifndef HL_CRYPTO_SECPOOL_H
#define HL_CRYPTO_SECPOOL_H

#include <stddef.h>

typedef struct hl_secpool hl_secpool;

struct hl_secpool_stats {
	size_t slot_size;   /* bytes per slot (the requested size rounded up to 16) */
	size_t chunks;      /* chunks mapped */
	size_t slots;       /* slots in those chunks */
	size_t in_use;      /* slots handed out and not given back */
};

/* A pool of SLOT_SIZE-byte slots (1 to 65536), SLOTS_PER_CHUNK (1 to 65536)
 * to a chunk, at most MAX_CHUNKS chunks (0: no limit).  Maps nothing yet.
 * HL_EINVAL for sizes out of range. */
int hl_secpool_new(hl_secpool **out, size_t slot_size, size_t slots_per_chunk,
		   size_t max_chunks);
/* Wipes and unmaps every chunk, slots in use included.  NULL-safe. */
void hl_secpool_free(hl_secpool *pool);

/* A zeroed slot, or NULL when the pool is full (or memory is out). */
void *hl_secpool_get(hl_secpool *pool);
/* Wipes SLOT and makes it free again.  NULL-safe (returns 0).  HL_EINVAL,
 * touching nothing, when SLOT is not a slot of this pool or is already free. */
int hl_secpool_put(hl_secpool *pool, void *slot);

void hl_secpool_stats(const hl_secpool *pool, struct hl_secpool_stats *st);

/* Process-wide: SIZE bytes (at least 1) of zeroed secure memory; aborts
 * when out of memory.  Give it back with hl_secmem_free() and the same
 * SIZE; the memory is wiped then.  NULL-safe. */
void *hl_secmem_alloc(size_t size);
void hl_secmem_free(void *p, size_t size);
/* Pooled allocations not yet freed, all size classes together (the
 * sodium_malloc fallback is not counted): for tests that check that
 * every secret was given back. */
size_t hl_secmem_in_use(void);

#endif
