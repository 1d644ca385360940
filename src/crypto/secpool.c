/* crypto/secpool.c — pools of fixed-size slots of sodium_malloc() memory
 * (why and what: secpool.h).
 *
 * A pool is a list of chunks, each one sodium_malloc() mapping cut into
 * slots, and a stack of the free slots.  Bookkeeping (the chunk list, the
 * free stack, one "in use" byte per slot) lives in ordinary memory: it holds
 * addresses, never secrets.
 *
 * Invariants (while the pool's mutex is not held):
 *   1. Every slot of every chunk is either on the free stack (exactly once,
 *      used byte 0, every byte of it zero) or handed out (used byte 1).
 *   2. in_use + nfree == nchunks * per_chunk.
 *   3. max_chunks == 0 or nchunks <= max_chunks.
 * Slots are zero on the stack because a chunk is wiped when it is mapped
 * (sodium_malloc fills new memory with a non-zero pattern) and a slot is
 * wiped before it is pushed back. */
#include "crypto/secpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "util/err.h"
#include "util/mem.h"

/* Under AddressSanitizer, free slots are poisoned, so a use after free of
 * a key is caught in tests and fuzzing.  (Between slots there are no guard
 * pages; this partly makes up for it where it matters most.) */
#if defined(__SANITIZE_ADDRESS__)
#define SECPOOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SECPOOL_ASAN 1
#endif
#endif
#ifdef SECPOOL_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define SLOT_ALIGN 16                     /* enough for any field of a struct */
#define MAX_SLOT_SIZE 65536
#define MAX_PER_CHUNK 65536
#define MAX_CHUNK_BYTES (16u * 1024 * 1024)

struct chunk {
	uint8_t *base;       /* sodium_malloc'd, per_chunk * slot_size bytes */
	uint8_t *used;       /* per_chunk bytes: 1 while the slot is handed out */
};

struct hl_secpool {
	pthread_mutex_t mu;
	size_t slot_size, per_chunk, max_chunks;
	struct chunk *chunks;
	size_t nchunks, chunks_cap;
	void **free_slots;   /* a stack; the top is reused first (still in cache) */
	size_t nfree, free_cap;
	size_t in_use;
};

int hl_secpool_new(hl_secpool **out, size_t slot_size, size_t slots_per_chunk,
		   size_t max_chunks)
{
	hl_secpool *p;

	if (!out)
		return HL_EINVAL;
	*out = NULL;
	if (slot_size < 1 || slot_size > MAX_SLOT_SIZE || slots_per_chunk < 1 ||
	    slots_per_chunk > MAX_PER_CHUNK)
		return HL_EINVAL;
	slot_size = (slot_size + SLOT_ALIGN - 1) / SLOT_ALIGN * SLOT_ALIGN;
	if (slot_size * slots_per_chunk > MAX_CHUNK_BYTES)
		return HL_EINVAL;
	p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	p->slot_size = slot_size;
	p->per_chunk = slots_per_chunk;
	p->max_chunks = max_chunks;
	*out = p;
	return 0;
}

void hl_secpool_free(hl_secpool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nchunks; i++) {
		UNPOISON(p->chunks[i].base, p->slot_size * p->per_chunk);
		sodium_free(p->chunks[i].base);   /* wipes the whole chunk */
		free(p->chunks[i].used);
	}
	free(p->chunks);
	free(p->free_slots);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* Maps one more chunk and pushes its slots, the lowest address on top.
 * Called with the mutex held.  HL_ETOOBIG when the pool is at its limit,
 * -ENOMEM when sodium_malloc fails. */
static int add_chunk(hl_secpool *p)
{
	size_t bytes = p->slot_size * p->per_chunk;
	struct chunk c;

	if (p->max_chunks && p->nchunks >= p->max_chunks)
		return HL_ETOOBIG;
	if (sodium_init() < 0)
		return HL_ECRYPTO;
	c.base = sodium_malloc(bytes);
	if (!c.base)
		return -ENOMEM;
	sodium_memzero(c.base, bytes);
	POISON(c.base, bytes);
	c.used = xcalloc(p->per_chunk, 1);
	if (p->nchunks == p->chunks_cap) {
		p->chunks_cap = p->chunks_cap ? p->chunks_cap * 2 : 4;
		p->chunks = xrealloc(p->chunks, p->chunks_cap * sizeof(*p->chunks));
	}
	p->chunks[p->nchunks++] = c;
	/* The stack has room for every slot of every chunk, so that a put
	 * never needs to grow it. */
	if (p->free_cap < p->nchunks * p->per_chunk) {
		while (p->free_cap < p->nchunks * p->per_chunk)
			p->free_cap = p->free_cap ? p->free_cap * 2 : p->per_chunk;
		p->free_slots = xrealloc(p->free_slots, p->free_cap * sizeof(*p->free_slots));
	}
	for (size_t i = p->per_chunk; i-- > 0;)
		p->free_slots[p->nfree++] = c.base + i * p->slot_size;
	return 0;
}

/* The chunk holding SLOT and its index there, or NULL when SLOT is not the
 * start of one of this pool's slots.  Called with the mutex held. */
static struct chunk *find_slot(hl_secpool *p, const void *slot, size_t *idx)
{
	uintptr_t a = (uintptr_t)slot;
	size_t bytes = p->slot_size * p->per_chunk;

	for (size_t i = 0; i < p->nchunks; i++) {
		uintptr_t base = (uintptr_t)p->chunks[i].base;
		if (a < base || a - base >= bytes)
			continue;
		if ((a - base) % p->slot_size != 0)
			return NULL;
		*idx = (a - base) / p->slot_size;
		return &p->chunks[i];
	}
	return NULL;
}

void *hl_secpool_get(hl_secpool *p)
{
	void *slot = NULL;
	struct chunk *c;
	size_t idx = 0;

	if (!p)
		return NULL;
	pthread_mutex_lock(&p->mu);
	if (p->nfree == 0 && add_chunk(p) < 0)
		goto out;
	slot = p->free_slots[--p->nfree];
	c = find_slot(p, slot, &idx);
	c->used[idx] = 1;
	p->in_use++;
	UNPOISON(slot, p->slot_size);
out:
	pthread_mutex_unlock(&p->mu);
	return slot;
}

int hl_secpool_put(hl_secpool *p, void *slot)
{
	struct chunk *c;
	size_t idx = 0;
	int ret = 0;

	if (!slot)
		return 0;
	if (!p)
		return HL_EINVAL;
	pthread_mutex_lock(&p->mu);
	c = find_slot(p, slot, &idx);
	if (!c || !c->used[idx]) {
		ret = HL_EINVAL;   /* not ours, or given back twice */
		goto out;
	}
	sodium_memzero(slot, p->slot_size);
	POISON(slot, p->slot_size);
	c->used[idx] = 0;
	p->in_use--;
	/* add_chunk sized the stack for every slot; a push always fits. */
	p->free_slots[p->nfree++] = slot;
out:
	pthread_mutex_unlock(&p->mu);
	return ret;
}

void hl_secpool_stats(const hl_secpool *p, struct hl_secpool_stats *st)
{
	hl_secpool *mp = (hl_secpool *)p;   /* the mutex, not the pool, changes */

	memset(st, 0, sizeof(*st));
	if (!p)
		return;
	pthread_mutex_lock(&mp->mu);
	st->slot_size = p->slot_size;
	st->chunks = p->nchunks;
	st->slots = p->nchunks * p->per_chunk;
	st->in_use = p->in_use;
	pthread_mutex_unlock(&mp->mu);
}

/* ------------------------------------------------------------------------
 * The process-wide allocator: one pool per power-of-two size class.
 */

#define CLASS_MIN_SHIFT 5     /* 32 bytes */
#define CLASS_MAX_SHIFT 11    /* 2048 bytes */
#define NCLASSES (CLASS_MAX_SHIFT - CLASS_MIN_SHIFT + 1)
#define CLASS_CHUNK_BYTES 16384

static hl_secpool *classes[NCLASSES];
static pthread_once_t classes_once = PTHREAD_ONCE_INIT;

static void classes_init(void)
{
	for (int i = 0; i < NCLASSES; i++) {
		size_t size = (size_t)1 << (CLASS_MIN_SHIFT + i);
		if (hl_secpool_new(&classes[i], size, CLASS_CHUNK_BYTES / size, 0) < 0)
			abort();   /* the constants above are wrong */
	}
}

/* The size class for SIZE, or -1 when it is too big for one. */
static int class_of(size_t size)
{
	int i = 0;
	while (i < NCLASSES && ((size_t)1 << (CLASS_MIN_SHIFT + i)) < size)
		i++;
	return i < NCLASSES ? i : -1;
}

static void out_of_memory(size_t size) __attribute__((noreturn));
static void out_of_memory(size_t size)
{
	/* mem.h's policy: running out of memory is fatal. */
	fprintf(stderr, "hotline: out of memory (secure memory, %zu bytes)\n", size);
	abort();
}

void *hl_secmem_alloc(size_t size)
{
	int k = class_of(size ? size : 1);
	void *p = NULL;

	if (k < 0) {
		if (sodium_init() < 0 || !(p = sodium_malloc(size)))
			out_of_memory(size);
		sodium_memzero(p, size);
		return p;
	}
	pthread_once(&classes_once, classes_init);
	p = hl_secpool_get(classes[k]);
	if (!p)
		out_of_memory(size);
	return p;
}

void hl_secmem_free(void *p, size_t size)
{
	int k = class_of(size ? size : 1);

	if (!p)
		return;
	if (k < 0) {
		sodium_free(p);   /* wipes */
		return;
	}
	pthread_once(&classes_once, classes_init);
	if (hl_secpool_put(classes[k], p) < 0) {
		/* A wrong size or a double free: memory is corrupt somewhere. */
		fprintf(stderr, "hotline: hl_secmem_free of a pointer that is not a live "
			"%zu-byte slot\n", size);
		abort();
	}
}

size_t hl_secmem_in_use(void)
{
	struct hl_secpool_stats st;
	size_t n = 0;

	pthread_once(&classes_once, classes_init);
	for (int i = 0; i < NCLASSES; i++) {
		hl_secpool_stats(classes[i], &st);
		n += st.in_use;
	}
	return n;
}
