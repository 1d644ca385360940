/* util/thread.c — worker threads start with every signal blocked (see thread.h). */
#include "util/thread.h"

#include <signal.h>

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
