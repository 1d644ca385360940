/* util/pfor.c — a loop run on the machine's cores (pfor.h). */
#include "util/pfor.h"

#include <pthread.h>
#include <stdbool.h>
#include <unistd.h>

#include "util/thread.h"

struct range {
	void (*fn)(void *arg, size_t i);
	void *arg;
	size_t from, to;
	pthread_t th;
	bool started;
};

static void *run_range(void *p)
{
	struct range *r = p;
	for (size_t i = r->from; i < r->to; i++)
		r->fn(r->arg, i);
	return NULL;
}

void hl_pfor(size_t n, void (*fn)(void *arg, size_t i), void *arg)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	size_t t = cores < 1 ? 1 : (size_t)cores;
	if (t > HL_PFOR_MAX_THREADS)
		t = HL_PFOR_MAX_THREADS;
	if (t > n)
		t = n ? n : 1;
	struct range r[HL_PFOR_MAX_THREADS];
	for (size_t k = 0; k < t; k++) {
		r[k] = (struct range){ .fn = fn, .arg = arg, .from = n * k / t,
				       .to = n * (k + 1) / t };
		if (k > 0)
			r[k].started = hl_thread_start(&r[k].th, run_range, &r[k]) == 0;
	}
	run_range(&r[0]);
	for (size_t k = 1; k < t; k++) {
		if (r[k].started)
			pthread_join(r[k].th, NULL);
		else
			run_range(&r[k]);
	}
}
