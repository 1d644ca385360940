/* tests/unit/test_pfor.c — util/pfor.c: every index done exactly once,
 * whatever N against the number of threads (none, fewer, many more), and
 * on more than one thread when there is more than one core. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/pfor.h"

struct counts {
	_Atomic unsigned *hits;
	pthread_t threads[64];
	_Atomic unsigned nthreads;
	pthread_mutex_t mu;
};

static void hit(void *arg, size_t i)
{
	struct counts *c = arg;
	atomic_fetch_add(&c->hits[i], 1);
	pthread_t me = pthread_self();
	pthread_mutex_lock(&c->mu);
	unsigned n = atomic_load(&c->nthreads), k;
	for (k = 0; k < n && !pthread_equal(c->threads[k], me); k++)
		;
	if (k == n && n < 64)
		c->threads[atomic_fetch_add(&c->nthreads, 1)] = me;
	pthread_mutex_unlock(&c->mu);
}

static void test_each_index_once(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 2, 3, 7, 1000, 100003 };
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t n = sizes[s];
		struct counts c = { .hits = calloc(n ? n : 1, sizeof(unsigned)) };
		pthread_mutex_init(&c.mu, NULL);
		hl_pfor(n, hit, &c);
		for (size_t i = 0; i < n; i++)
			assert_int_equal(atomic_load(&c.hits[i]), 1);
		if (n >= 1000 && sysconf(_SC_NPROCESSORS_ONLN) > 1)
			assert_true(atomic_load(&c.nthreads) > 1);
		assert_true(atomic_load(&c.nthreads) <= HL_PFOR_MAX_THREADS);
		pthread_mutex_destroy(&c.mu);
		free(c.hits);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_each_index_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
