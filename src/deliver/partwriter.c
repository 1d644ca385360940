/* deliver/partwriter.c — hashing and appending an incoming part on a
 * worker thread (see partwriter.h). */
#include "deliver/partwriter.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <stdbool.h>
#include <string.h>

#include "util/mem.h"
#include "util/thread.h"

#define SLOTS HL_PARTWRITER_SLOTS
#define SLOT_BYTES 65536

struct slot {
	size_t len;
	uint8_t data[SLOT_BYTES];
};

struct hl_partwriter {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t work;        /* a slot was filled, or stop */
	pthread_cond_t space;       /* a slot was freed, or the worker ended */
	struct slot *slots;
	unsigned head, count;       /* ring: slots[head..head+count) are queued */
	bool stop, discard, ended;
	int err;                    /* the worker's first error */
	uint64_t synced;            /* durable offset, published by the worker */
	/* the worker's own */
	struct hl_dio_writer *w;
	hl_parthash *hs;
	uint64_t sync_every, appended, last_sync;
	struct hl_partwriter_progress progress;
	uint64_t unwoken;           /* taken since the last wake */
};

/* After a slot: counts it, and wakes the loop when due (EMPTY: the ring
 * ran empty, so the sender may be waiting for exactly these bytes). */
static void report(hl_partwriter *pw, size_t len, bool empty)
{
	if (!pw->progress.taken)
		return;
	atomic_fetch_add_explicit(pw->progress.taken, len, memory_order_release);
	pw->unwoken += len;
	if (pw->progress.wake && (pw->unwoken >= pw->progress.step || empty)) {
		pw->unwoken = 0;
		pw->progress.wake(pw->progress.arg);
	}
}

static void *worker(void *arg)
{
	hl_partwriter *pw = arg;
	hl_thread_bulk();
	pthread_mutex_lock(&pw->mu);
	for (;;) {
		while (pw->count == 0 && !pw->stop)
			pthread_cond_wait(&pw->work, &pw->mu);
		if (pw->count == 0 || pw->discard)
			break;
		struct slot *s = &pw->slots[pw->head];
		bool failed = pw->err != 0;
		pthread_mutex_unlock(&pw->mu);

		int ret = 0;
		bool synced = false;
		if (!failed) {
			hl_parthash_update(pw->hs, s->data, s->len);
			ret = hl_dio_write(pw->w, s->data, s->len);
			pw->appended += s->len;
			if (ret == 0 && pw->appended - pw->last_sync >= pw->sync_every) {
				ret = hl_dio_sync(pw->w);
				pw->last_sync = pw->appended;
				synced = ret == 0;
			}
		}

		pthread_mutex_lock(&pw->mu);
		if (ret < 0 && pw->err == 0)
			pw->err = ret;
		if (synced)
			pw->synced = pw->last_sync;
		size_t len = s->len;
		pw->head = (pw->head + 1) % SLOTS;
		pw->count--;
		bool empty = pw->count == 0;
		pthread_cond_signal(&pw->space);
		if (pw->progress.taken) {
			pthread_mutex_unlock(&pw->mu);
			report(pw, len, empty);
			pthread_mutex_lock(&pw->mu);
		}
	}
	/* Dropped slots count as done: the engine's CREDIT must not wait for
	 * them (deliver/parts.c). */
	uint64_t dropped = 0;
	for (; pw->count > 0; pw->count--, pw->head = (pw->head + 1) % SLOTS)
		dropped += pw->slots[pw->head].len;
	if (dropped && pw->progress.taken)
		atomic_fetch_add_explicit(pw->progress.taken, dropped, memory_order_release);
	pw->ended = true;
	pthread_cond_broadcast(&pw->space);
	pthread_mutex_unlock(&pw->mu);
	return NULL;
}

int hl_partwriter_start(hl_partwriter **out, struct hl_dio_writer *w,
			hl_parthash *hs, uint64_t start, uint64_t sync_every,
			const struct hl_partwriter_progress *progress)
{
	hl_partwriter *pw = xcalloc(1, sizeof(*pw));
	if (progress)
		pw->progress = *progress;
	pw->slots = xmalloc(SLOTS * sizeof(*pw->slots));
	pw->w = w;
	pw->hs = hs;
	pw->sync_every = sync_every ? sync_every : 1;
	pw->appended = pw->last_sync = pw->synced = start;
	pthread_mutex_init(&pw->mu, NULL);
	pthread_cond_init(&pw->work, NULL);
	pthread_cond_init(&pw->space, NULL);
	int rc = hl_thread_start(&pw->th, worker, pw);
	if (rc != 0) {
		pthread_mutex_destroy(&pw->mu);
		pthread_cond_destroy(&pw->work);
		pthread_cond_destroy(&pw->space);
		free(pw->slots);
		free(pw);
		return -rc;
	}
	*out = pw;
	return 0;
}

int hl_partwriter_push(hl_partwriter *pw, const uint8_t *data, size_t len)
{
	int ret = 0;
	pthread_mutex_lock(&pw->mu);
	while (len > 0 && pw->err == 0) {
		while (pw->count == SLOTS && !pw->ended)
			pthread_cond_wait(&pw->space, &pw->mu);
		if (pw->ended)
			break;
		struct slot *s = &pw->slots[(pw->head + pw->count) % SLOTS];
		/* The slot is not the worker's until count covers it. */
		size_t n = len < SLOT_BYTES ? len : SLOT_BYTES;
		pthread_mutex_unlock(&pw->mu);
		memcpy(s->data, data, n);
		s->len = n;
		pthread_mutex_lock(&pw->mu);
		pw->count++;
		pthread_cond_signal(&pw->work);
		data += n;
		len -= n;
	}
	ret = pw->err;
	pthread_mutex_unlock(&pw->mu);
	return ret;
}

uint64_t hl_partwriter_synced(hl_partwriter *pw)
{
	pthread_mutex_lock(&pw->mu);
	uint64_t s = pw->synced;
	pthread_mutex_unlock(&pw->mu);
	return s;
}

static int stop(hl_partwriter *pw, bool discard)
{
	pthread_mutex_lock(&pw->mu);
	pw->stop = true;
	pw->discard = discard;
	pthread_cond_signal(&pw->work);
	pthread_mutex_unlock(&pw->mu);
	pthread_join(pw->th, NULL);
	int ret = pw->err;
	pthread_mutex_destroy(&pw->mu);
	pthread_cond_destroy(&pw->work);
	pthread_cond_destroy(&pw->space);
	free(pw->slots);
	free(pw);
	return ret;
}

int hl_partwriter_finish(hl_partwriter *pw)
{
	return stop(pw, false);
}

void hl_partwriter_abort(hl_partwriter *pw)
{
	if (pw)
		(void)stop(pw, true);
}
