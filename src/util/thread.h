/* util/thread.h — starting the daemon's worker threads.
 *
 * The daemon's signals (SIGTERM, SIGINT, SIGCHLD for its children) are
 * handled by libuv on the event loop's thread; a worker thread that could
 * receive one would take it away from the loop.  So every worker starts
 * with all signals blocked. */
#ifndef HL_UTIL_THREAD_H
#define HL_UTIL_THREAD_H

#include <pthread.h>

/* pthread_create(TH, default attributes, FN, ARG) with every signal blocked
 * in the new thread.  0 or the positive error number pthread_create gave. */
int hl_thread_start(pthread_t *th, void *(*fn)(void *), void *arg);

/* Lowers the calling thread's CPU priority (nice +10, Linux: per thread),
 * for bulk work (hashing and writing a document) that must not take the
 * cores from the event loop, which handles urgent packets. Best effort. */
void hl_thread_bulk(void);

#endif
