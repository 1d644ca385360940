/* util/pfor.h — a loop run on the machine's cores: FN(ARG, i) for every i
 * in [0, N), split into as many contiguous ranges as there are cores (at
 * most HL_PFOR_MAX_THREADS), the calling thread taking the first.  For
 * work whose items are independent and costly (signature checks): it
 * returns once every item is done.  The threads are started for the call
 * and joined before it returns; if one cannot start, its range runs on
 * the calling thread.  FN must be safe to run on several threads at once
 * for different i. */
#ifndef HL_UTIL_PFOR_H
#define HL_UTIL_PFOR_H

#include <stddef.h>

#define HL_PFOR_MAX_THREADS 8

void hl_pfor(size_t n, void (*fn)(void *arg, size_t i), void *arg);

#endif
