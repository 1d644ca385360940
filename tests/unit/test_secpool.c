/* tests/unit/test_secpool.c — crypto/secpool.c: slots come zeroed, are wiped
 * when given back and then reused, a bounded pool runs out and recovers,
 * foreign and double puts are refused without touching memory, slots never
 * overlap, and the process-wide allocator's size classes and large
 * fallback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/secpool.h"
#include "util/err.h"

/* Under AddressSanitizer the pool poisons free slots; looking at a freed
 * slot to see that it was wiped needs it unpoisoned first. */
#if defined(__SANITIZE_ADDRESS__)
#define ASAN_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN_BUILD 1
#endif
#endif
#ifdef ASAN_BUILD
#include <sanitizer/asan_interface.h>
#endif

static bool all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
#ifdef ASAN_BUILD
	ASAN_UNPOISON_MEMORY_REGION(p, n);
#endif
	for (size_t i = 0; i < n; i++)
		if (b[i] != 0)
			return false;
	return true;
}

static void test_bad_sizes(void **state)
{
	hl_secpool *p = (hl_secpool *)1;
	struct hl_secpool_stats st;
	(void)state;
	assert_int_equal(hl_secpool_new(&p, 0, 4, 0), HL_EINVAL);
	assert_null(p);
	assert_int_equal(hl_secpool_new(&p, 65537, 4, 0), HL_EINVAL);
	assert_int_equal(hl_secpool_new(&p, 64, 0, 0), HL_EINVAL);
	assert_int_equal(hl_secpool_new(&p, 64, 65537, 0), HL_EINVAL);
	/* 64 KiB slots, 65536 of them: a 4 GiB chunk is refused. */
	assert_int_equal(hl_secpool_new(&p, 65536, 65536, 0), HL_EINVAL);
	assert_int_equal(hl_secpool_new(NULL, 64, 4, 0), HL_EINVAL);
	/* Sizes are rounded up to 16; nothing is mapped before the first get. */
	assert_int_equal(hl_secpool_new(&p, 40, 4, 0), 0);
	hl_secpool_stats(p, &st);
	assert_int_equal(st.slot_size, 48);
	assert_int_equal(st.chunks, 0);
	assert_int_equal(st.slots, 0);
	assert_int_equal(st.in_use, 0);
	hl_secpool_free(p);
	hl_secpool_free(NULL);
}

static void test_zeroed_wiped_reused(void **state)
{
	hl_secpool *p = NULL;
	struct hl_secpool_stats st;
	(void)state;
	assert_int_equal(hl_secpool_new(&p, 96, 8, 0), 0);
	uint8_t *a = hl_secpool_get(p);
	assert_non_null(a);
	/* sodium_malloc fills new memory with a non-zero pattern; the pool
	 * hands out zeros. */
	assert_true(all_zero(a, 96));
	memset(a, 0xa5, 96);
	hl_secpool_stats(p, &st);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(st.slots, 8);
	assert_int_equal(st.in_use, 1);

	assert_int_equal(hl_secpool_put(p, a), 0);
	/* The slot stays mapped (the chunk is the pool's), so the wipe can be
	 * seen: every byte of the secret is gone. */
	assert_true(all_zero(a, 96));
	hl_secpool_stats(p, &st);
	assert_int_equal(st.in_use, 0);

	/* The slot given back last is the one handed out next, zeroed. */
	uint8_t *b = hl_secpool_get(p);
	assert_ptr_equal(b, a);
	assert_true(all_zero(b, 96));
	/* Reuse maps nothing new. */
	hl_secpool_stats(p, &st);
	assert_int_equal(st.chunks, 1);
	assert_int_equal(hl_secpool_put(p, b), 0);
	hl_secpool_free(p);
}

static void test_exhaustion(void **state)
{
	hl_secpool *p = NULL;
	struct hl_secpool_stats st;
	void *slots[8];
	(void)state;
	assert_int_equal(hl_secpool_new(&p, 64, 4, 2), 0);
	for (int i = 0; i < 8; i++) {
		slots[i] = hl_secpool_get(p);
		assert_non_null(slots[i]);
	}
	/* Two chunks of four: the ninth get finds the pool full. */
	assert_null(hl_secpool_get(p));
	hl_secpool_stats(p, &st);
	assert_int_equal(st.chunks, 2);
	assert_int_equal(st.slots, 8);
	assert_int_equal(st.in_use, 8);
	/* One back: one available again, and then full again. */
	memset(slots[5], 0x11, 64);
	assert_int_equal(hl_secpool_put(p, slots[5]), 0);
	void *again = hl_secpool_get(p);
	assert_ptr_equal(again, slots[5]);
	assert_true(all_zero(again, 64));
	assert_null(hl_secpool_get(p));
	for (int i = 0; i < 8; i++)
		assert_int_equal(hl_secpool_put(p, slots[i]), 0);
	hl_secpool_stats(p, &st);
	assert_int_equal(st.in_use, 0);
	/* All eight come back out (the free stack held every one). */
	for (int i = 0; i < 8; i++)
		assert_non_null(hl_secpool_get(p));
	assert_null(hl_secpool_get(p));
	hl_secpool_free(p);   /* slots still in use: wiped and unmapped too */
}

static void test_bad_puts(void **state)
{
	hl_secpool *p = NULL, *q = NULL;
	struct hl_secpool_stats st;
	uint8_t outside[64];
	(void)state;
	assert_int_equal(hl_secpool_new(&p, 64, 4, 0), 0);
	assert_int_equal(hl_secpool_new(&q, 64, 4, 0), 0);
	uint8_t *a = hl_secpool_get(p);
	uint8_t *b = hl_secpool_get(q);
	memset(a, 0x5a, 64);
	assert_int_equal(hl_secpool_put(p, NULL), 0);
	assert_int_equal(hl_secpool_put(NULL, a), HL_EINVAL);
	assert_int_equal(hl_secpool_put(p, outside), HL_EINVAL);
	assert_int_equal(hl_secpool_put(p, b), HL_EINVAL);      /* another pool's */
	assert_int_equal(hl_secpool_put(p, a + 16), HL_EINVAL); /* inside a slot */
	/* A refused put touches nothing: the live slot keeps its bytes. */
	for (int i = 0; i < 64; i++)
		assert_int_equal(a[i], 0x5a);
	hl_secpool_stats(p, &st);
	assert_int_equal(st.in_use, 1);
	assert_int_equal(hl_secpool_put(p, a), 0);
	assert_int_equal(hl_secpool_put(p, a), HL_EINVAL);      /* twice */
	/* A free slot that was never handed out is refused as well. */
	assert_int_equal(hl_secpool_put(p, a + 64), HL_EINVAL);
	hl_secpool_stats(p, &st);
	assert_int_equal(st.in_use, 0);
	assert_int_equal(hl_secpool_put(q, b), 0);
	hl_secpool_free(p);
	hl_secpool_free(q);
}

static void test_slots_distinct(void **state)
{
	enum { N = 3 * 5 + 2 };
	hl_secpool *p = NULL;
	uint8_t *s[N];
	(void)state;
	assert_int_equal(hl_secpool_new(&p, 48, 5, 0), 0);
	for (int i = 0; i < N; i++) {
		s[i] = hl_secpool_get(p);
		assert_non_null(s[i]);
		memset(s[i], i + 1, 48);
	}
	/* Every slot kept its own pattern: none overlaps another. */
	for (int i = 0; i < N; i++) {
		assert_int_equal((uintptr_t)s[i] % 16, 0);
		for (int j = 0; j < 48; j++)
			assert_int_equal(s[i][j], i + 1);
	}
	for (int i = 0; i < N; i++)
		assert_int_equal(hl_secpool_put(p, s[i]), 0);
	hl_secpool_free(p);
}

static void test_secmem(void **state)
{
	static const size_t sizes[] = { 1, 32, 33, 96, 552, 1024, 2048 };
	(void)state;
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint8_t *a = hl_secmem_alloc(n);
		assert_non_null(a);
		assert_true(all_zero(a, n));
		memset(a, 0xc3, n);
		hl_secmem_free(a, n);
		/* Pooled sizes: wiped on free, and the same slot comes back. */
		assert_true(all_zero(a, n));
		uint8_t *b = hl_secmem_alloc(n);
		assert_ptr_equal(b, a);
		assert_true(all_zero(b, n));
		hl_secmem_free(b, n);
	}
	/* Two live allocations of one class are distinct. */
	uint8_t *x = hl_secmem_alloc(96), *y = hl_secmem_alloc(96);
	assert_true(x + 128 <= y || y + 128 <= x);
	hl_secmem_free(x, 96);
	hl_secmem_free(y, 96);
	/* Above 2048 bytes: sodium_malloc itself, zeroed (its own fill
	 * pattern would not be). */
	uint8_t *big = hl_secmem_alloc(5000);
	assert_true(all_zero(big, 5000));
	memset(big, 0x77, 5000);
	hl_secmem_free(big, 5000);
	hl_secmem_free(NULL, 96);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_sizes),
		cmocka_unit_test(test_zeroed_wiped_reused),
		cmocka_unit_test(test_exhaustion),
		cmocka_unit_test(test_bad_puts),
		cmocka_unit_test(test_slots_distinct),
		cmocka_unit_test(test_secmem),
	};
	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
