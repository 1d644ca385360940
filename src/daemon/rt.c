/* daemon/rt.c — the parked real-time thread (contract in rt.h).
 *
 * STATES of the parked thread (park.state, under park.mu):
 *   NONE --hl_rt_park, policy held--> PARKED --hl_rt_start--> RUNNING
 *   PARKED --hl_rt_release--> NONE (the thread exits, joined)
 * While PARKED it may run jobs (hl_rt_on_parked), one at a time, and
 * park again.
 * Invariant: a thread exists iff state != NONE. */
#include <errno.h>
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
	int (*job)(void *);             /* a job to run while parked; NULL none */
	void *job_arg;
	int job_ret;
	bool job_done;
} park = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER,
	   .state = PARK_NONE };

void hl_rt_claim(void)
{
	struct sched_param sp = { .sched_priority = HL_RT_PRIORITY };
	park.claimed = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
}

static void *parked(void *unused)
{
	(void)unused;
	pthread_mutex_lock(&park.mu);
	while (!park.go) {
		if (park.job && !park.job_done) {
			park.job_ret = park.job(park.job_arg);
			park.job_done = true;
			pthread_cond_broadcast(&park.cv);
			continue;
		}
		pthread_cond_wait(&park.cv, &park.mu);
	}
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

bool hl_rt_parked(void)
{
	return park.state == PARK_PARKED;
}

int hl_rt_on_parked(int (*fn)(void *), void *arg)
{
	if (park.state != PARK_PARKED)
		return -ESRCH;
	pthread_mutex_lock(&park.mu);
	park.job = fn;
	park.job_arg = arg;
	park.job_done = false;
	pthread_cond_broadcast(&park.cv);
	while (!park.job_done)
		pthread_cond_wait(&park.cv, &park.mu);
	int ret = park.job_ret;
	park.job = NULL;
	pthread_mutex_unlock(&park.mu);
	return ret;
}

static void wake(void *(*fn)(void *), void *arg)
{
	pthread_mutex_lock(&park.mu);
	park.fn = fn;
	park.arg = arg;
	park.go = true;
	pthread_cond_broadcast(&park.cv);
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
