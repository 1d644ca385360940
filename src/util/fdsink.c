/* util/fdsink.c — the buffered descriptor writer (see fdsink.h). */
#include "util/fdsink.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/mem.h"

void hl_fd_sink_init(struct hl_fd_sink *s, int fd)
{
	s->fd = fd;
	s->buf = xmalloc(HL_FD_SINK_BUF);
	s->used = 0;
	s->total = 0;
}

int hl_fd_sink_flush(struct hl_fd_sink *s)
{
	size_t off = 0;
	while (off < s->used) {
		ssize_t n = write(s->fd, s->buf + off, s->used - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	s->used = 0;
	return 0;
}

int hl_fd_sink_write(void *arg, const void *p, size_t n)
{
	struct hl_fd_sink *s = arg;
	const uint8_t *q = p;
	s->total += n;
	while (n > 0) {
		if (s->used == HL_FD_SINK_BUF) {
			int ret = hl_fd_sink_flush(s);
			if (ret < 0)
				return ret;
		}
		size_t k = HL_FD_SINK_BUF - s->used < n ? HL_FD_SINK_BUF - s->used : n;
		memcpy(s->buf + s->used, q, k);
		s->used += k;
		q += k;
		n -= k;
	}
	return 0;
}

void hl_fd_sink_free(struct hl_fd_sink *s)
{
	if (!s)
		return;
	free(s->buf);
	s->buf = NULL;
}
