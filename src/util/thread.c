/* util/thread.c — worker threads start with every signal blocked (see thread.h). */
#include "util/thread.h"

#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BULK_NICE 10

int hl_thread_start(pthread_t *th, void *(*fn)(void *), void *arg)
{
	sigset_t all, old;
	sigfillset(&all);
	/* The new thread inherits the mask in force when it is created. */
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(th, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

void hl_thread_bulk(void)
{
	/* On Linux, setpriority() on a thread id changes that thread only. */
	pid_t tid = (pid_t)syscall(SYS_gettid);
	int now = getpriority(PRIO_PROCESS, (id_t)tid);
	if (now < BULK_NICE)
		(void)setpriority(PRIO_PROCESS, (id_t)tid, BULK_NICE);
}
