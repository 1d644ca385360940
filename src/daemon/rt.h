/* daemon/rt.h — the daemon's one real-time thread (the call media clock's,
 * daemon/calls.c), and how its priority outlives the privilege drop.
 *
 * A late voice frame is heard, and on a busy machine an ordinary thread
 * wakes milliseconds late; audio servers run their clock at a low
 * real-time priority for that.  Taking one needs CAP_SYS_NICE or
 * RLIMIT_RTPRIO, and the daemon gives up its capabilities at start
 * (privs.h), before the calls service exists.  So, around the drop:
 *
 *   hl_rt_claim()   before the drop: this thread takes SCHED_FIFO at
 *                   HL_RT_PRIORITY, if it may;
 *   hl_rt_park()    right after it: a new thread, parked, inherits that
 *                   policy (and the dropped credentials: it is made after
 *                   the drop), this thread goes back to SCHED_OTHER, and
 *                   RLIMIT_RTPRIO becomes 0, so nothing else the daemon is
 *                   or runs may take a real-time priority;
 *   hl_rt_on_parked() meanwhile: runs a job on the parked thread and waits
 *                   for it (the sandbox binds that thread too: Landlock
 *                   restricts only the thread that asks, daemon/sandbox.h);
 *   hl_rt_start()   later, once: the parked thread runs the media clock;
 *                   without one, a new ordinary thread does;
 *   hl_rt_release() at the end: a thread still parked exits.
 *
 * Everything runs on the main thread; one parked thread per process. */
#ifndef HL_DAEMON_RT_H
#define HL_DAEMON_RT_H

#include <pthread.h>
#include <stdbool.h>

#define HL_RT_PRIORITY 10   /* SCHED_FIFO 1..99: low, below the kernel's IRQ threads (50) */

void hl_rt_claim(void);
void hl_rt_park(void);
/* True while a thread is parked. */
bool hl_rt_parked(void);
/* Runs FN(ARG) on the parked thread, waits, and returns its result;
 * -ESRCH when no thread is parked. */
int hl_rt_on_parked(int (*fn)(void *), void *arg);
/* Runs FN(ARG) on the parked real-time thread (*REALTIME true), else on a
 * new ordinary thread; *T is the thread to join.  0 or a positive errno. */
int hl_rt_start(pthread_t *t, void *(*fn)(void *), void *arg, bool *realtime);
void hl_rt_release(void);

#endif
