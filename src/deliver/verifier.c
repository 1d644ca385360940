/* deliver/verifier.c — the signatures of held ITEMs (env.defer_items),
 * checked before hl_engine_drain() handles them: on this thread and one
 * helper thread for the whole process, so that the daemon's bursts of
 * thousands of messages are not bound by one core's Ed25519. */
#include "deliver/engine_int.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>

#include "util/mem.h"
#include "util/thread.h"

#define PAR_VERIFY_MIN 8             /* held ITEMs worth a second thread */

/* The verdict on one held ITEM: 1 when its signature verifies with KEY
 * (the peer's chain's key now), 0 when not, -1 when it does not decode
 * (eng_on_item then handles it as it always does). */
static int8_t verdict_of(const uint8_t *body, size_t len, const uint8_t *key, struct hl_item *it)
{
	struct hl_pkt_item r;
	if (hl_pkt_item_decode(body, len, &r) < 0 || r.item_len > HL_ITEM_MAX ||
	    hl_item_decode(r.item, r.item_len, it) < 0)
		return -1;
	return crypto_sign_verify_detached(it->sig, r.item, r.item_len - HL_SIG_LEN, key) == 0;
}

struct verify_job {
	struct held *held;
	const uint8_t *buf;
	const uint8_t *key;
	size_t from, to;
};

static void verify_range(const struct verify_job *j)
{
	struct hl_item *it = xmalloc(sizeof(*it));
	for (size_t i = j->from; i < j->to; i++) {
		struct held *h = &j->held[i];
		if (h->type == HL_PKT_ITEM && !h->checked) {
			h->verdict = verdict_of(j->buf + h->off, h->len, j->key, it);
			h->checked = true;
		}
	}
	free(it);
}

/* One helper thread for the whole daemon (engines run on its one thread,
 * one drain at a time), started at the first large burst. */
static struct {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool started, stop, busy;
	struct verify_job job;
} verifier = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER };

static void *verifier_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&verifier.mu);
	for (;;) {
		while (!verifier.busy && !verifier.stop)
			pthread_cond_wait(&verifier.cv, &verifier.mu);
		if (!verifier.busy)
			break;
		struct verify_job j = verifier.job;
		pthread_mutex_unlock(&verifier.mu);
		verify_range(&j);
		pthread_mutex_lock(&verifier.mu);
		verifier.busy = false;
		pthread_cond_broadcast(&verifier.cv);
	}
	pthread_mutex_unlock(&verifier.mu);
	return NULL;
}

static bool verifier_start(void)
{
	if (verifier.started)
		return true;
	verifier.stop = false;
	verifier.started = hl_thread_start(&verifier.th, verifier_main, NULL) == 0;
	return verifier.started;
}

void eng_verifier_stop(void)
{
	if (!verifier.started)
		return;
	pthread_mutex_lock(&verifier.mu);
	verifier.stop = true;
	pthread_cond_broadcast(&verifier.cv);
	pthread_mutex_unlock(&verifier.mu);
	pthread_join(verifier.th, NULL);
	verifier.started = false;
}

/* Verifies every held ITEM: the second half on the helper thread while
 * this one does the first. */
void eng_verify_held(hl_engine *e)
{
	size_t items = 0;
	for (size_t i = 0; i < e->nheld; i++)
		items += e->held[i].type == HL_PKT_ITEM && !e->held[i].checked;
	memcpy(e->verify_key, e->peer_keys.sign, 32);
	struct verify_job all = { .held = e->held, .buf = e->hbuf, .key = e->verify_key, .from = 0,
				  .to = e->nheld };
	if (items < PAR_VERIFY_MIN || !verifier_start()) {
		verify_range(&all);
		return;
	}
	/* split at the middle ITEM */
	size_t mid = 0;
	for (size_t seen = 0; mid < e->nheld && seen < items / 2; mid++)
		seen += e->held[mid].type == HL_PKT_ITEM && !e->held[mid].checked;
	pthread_mutex_lock(&verifier.mu);
	verifier.job = (struct verify_job){ .held = e->held, .buf = e->hbuf, .key = e->verify_key,
					    .from = mid, .to = e->nheld };
	verifier.busy = true;
	pthread_cond_broadcast(&verifier.cv);
	pthread_mutex_unlock(&verifier.mu);
	all.to = mid;
	verify_range(&all);
	pthread_mutex_lock(&verifier.mu);
	while (verifier.busy)
		pthread_cond_wait(&verifier.cv, &verifier.mu);
	pthread_mutex_unlock(&verifier.mu);
}
