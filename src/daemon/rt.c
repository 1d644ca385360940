/* daemon/rt.c — the parked real-time thread (contract in rt.h).
 *
 * STATES of the parked thread (park.state, under park.mu):
 *   NONE --hl_rt_park, policy held--> PARKED --hl_rt_start--> RUNNING
 *   PARKED --hl_rt_release--> NONE (the thread exits, joined)
 * Invariant: a thread exists iff state != NONE. */
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>

#include "daemon/rt.h"

enum park_state { PARK_NONE, PARK_PARKED, PARK_RUNNING };

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum park_state state;
	bool claimed;
	void *(*fn)(void *);            /* NULL while parked; set: run it (or exit) */
	void *arg;
	bool go;
	pthread_t thread;
} park = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PARK_NONE, false, NULL, NULL,
	   false, 0 };

void hl_rt_claim(void)
{
	struct sched_param sp = { .sched_priority = HL_RT_PRIORITY };
	park.claimed = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
}

static void *parked(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&park.mu);
	while (!park.go)
		pthread_cond_wait(&park.cv, &park.mu);
	void *(*fn)(void *) = park.fn;
	void *arg = park.arg;
	pthread_mutex_unlock(&park.mu);
	return fn ? fn(arg) : NULL;
}

void hl_rt_park(void)
{
	struct sched_param none = { .sched_priority = 0 };
	struct rlimit zero = { 0, 0 };
	if (park.claimed) {
		/* The default attributes inherit this thread's policy. */
		if (pthread_create(&park.thread, NULL, parked, NULL) == 0)
			park.state = PARK_PARKED;
		(void)sched_setscheduler(0, SCHED_OTHER, &none);
	}
	(void)setrlimit(RLIMIT_RTPRIO, &zero);
}

static void wake(void *(*fn)(void *), void *arg)
{
	pthread_mutex_lock(&park.mu);
	park.fn = fn;
	park.arg = arg;
	park.go = true;
	pthread_cond_signal(&park.cv);
	pthread_mutex_unlock(&park.mu);
}

int hl_rt_start(pthread_t *t, void *(*fn)(void *), void *arg, bool *realtime)
{
	*realtime = park.state == PARK_PARKED;
	if (!*realtime)
		return pthread_create(t, NULL, fn, arg);
	park.state = PARK_RUNNING;
	*t = park.thread;
	wake(fn, arg);
	return 0;
}

void hl_rt_release(void)
{
	if (park.state != PARK_PARKED)
		return;
	wake(NULL, NULL);
	pthread_join(park.thread, NULL);
	park.state = PARK_NONE;
}
