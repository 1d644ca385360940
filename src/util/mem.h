/* util/mem.h — allocation with hotline's one out-of-memory policy.
 *
 * Policy: running out of ordinary heap memory is fatal.  xmalloc and friends
 * print one line and abort().  This is safe because nothing is acknowledged
 * before it is durable in the store: a daemon that dies restarts and resumes
 * from disk.  Code therefore never checks xmalloc's result, and error paths
 * stay about bad input, not about memory.
 *
 * Secrets do not use these: they live in sodium_malloc() memory (locked,
 * wiped when released): small ones, such as handshake and cipher states, in
 * slots of crypto/secpool.h (sodium_malloc'd chunks reused, since a mapping
 * per handshake cost a quarter of a handshake's CPU), large ones in their
 * own guarded sodium_malloc() allocation. */
#ifndef HL_UTIL_MEM_H
#define HL_UTIL_MEM_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t nmemb, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* Like asprintf, but aborts on failure. */
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
