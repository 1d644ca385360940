/* util/fsutil.h — file helpers with the durability hotline promises:
 * whole-file reads with a size cap, and atomic replacement (write a
 * temporary, fsync it, rename it over, fsync the directory). */
#ifndef HL_UTIL_FSUTIL_H
#define HL_UTIL_FSUTIL_H

#include <stddef.h>
#include <sys/types.h>

/* Reads all of PATH into a NUL-terminated xmalloc'd buffer, refusing files
 * over MAX bytes (HL_ETOOBIG).  Returns 0 or a negative code. */
int hl_read_file(const char *path, size_t max, char **out, size_t *len);
/* The same from the descriptor FD, which it closes whatever happens. */
int hl_read_fd(int fd, size_t max, char **out, size_t *len);

/* Replaces PATH atomically with BUF (mode MODE), durable on return. */
int hl_write_file_atomic(const char *path, const void *buf, size_t len, mode_t mode);

/* fsync the directory that holds PATH. */
int hl_fsync_parent(const char *path);

/* Joins DIR and NAME into an xmalloc'd path. */
char *hl_path_join(const char *dir, const char *name);

#endif
