/* util/fdsink.h — a buffered writer to a file descriptor, for the
 * streaming writers (record export, bundle export) that take a
 * `write(arg, p, n)` callback. */
#ifndef HL_UTIL_FDSINK_H
#define HL_UTIL_FDSINK_H

#include <stddef.h>
#include <stdint.h>

#define HL_FD_SINK_BUF (1u << 16)

struct hl_fd_sink {
	int fd;
	uint8_t *buf;           /* HL_FD_SINK_BUF bytes, xmalloc'd by init */
	size_t used;
	uint64_t total;         /* bytes written through the sink */
};

void hl_fd_sink_init(struct hl_fd_sink *s, int fd);
/* The callback: buffers P (N bytes); 0 or -errno. */
int hl_fd_sink_write(void *sink, const void *p, size_t n);
/* Writes what is buffered; 0 or -errno. */
int hl_fd_sink_flush(struct hl_fd_sink *s);
/* Frees the buffer (the descriptor stays the caller's).  NULL-safe. */
void hl_fd_sink_free(struct hl_fd_sink *s);

#endif
