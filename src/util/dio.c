/* util/dio.c — page-cache-free bulk file I/O (see dio.h). */
#include "util/dio.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"

#define ALIGN_DOWN(x) ((x) & ~(uint64_t)(HL_DIO_ALIGN - 1))
#define ALIGN_UP(x) ALIGN_DOWN((x) + HL_DIO_ALIGN - 1)

static uint8_t *aligned_buf(void)
{
	void *p = NULL;
	if (posix_memalign(&p, HL_DIO_ALIGN, HL_DIO_BUF) != 0)
		abort(); /* like xmalloc: out of memory is not an error we handle */
	return p;
}

/* The file system took O_DIRECT at open but refuses the I/O itself: go on
 * through the page cache. */
static bool drop_direct(int fd, bool *direct)
{
	int fl = fcntl(fd, F_GETFL);
	if (!*direct || fl < 0 || fcntl(fd, F_SETFL, fl & ~O_DIRECT) < 0)
		return false;
	*direct = false;
	return true;
}

static int open_maybe_direct(const char *path, int flags, mode_t mode, bool *direct)
{
	int fd = open(path, flags | O_DIRECT, mode);
	*direct = fd >= 0;
	if (fd < 0 && errno == EINVAL)
		fd = open(path, flags, mode);
	return fd < 0 ? -errno : fd;
}

static int pwrite_all(int fd, bool *direct, const uint8_t *p, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t w = pwrite(fd, p, n, (off_t)off);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EINVAL && drop_direct(fd, direct))
				continue;
			return -errno;
		}
		p += w;
		n -= (size_t)w;
		off += (uint64_t)w;
	}
	return 0;
}

int hl_dio_open(struct hl_dio_writer *w, const char *path, int flags, mode_t mode,
		uint64_t start)
{
	memset(w, 0, sizeof(*w));
	w->fd = -1;
	int ret = 0;
	int fd = open_maybe_direct(path, flags | O_RDWR, mode, &w->direct);
	if (fd < 0)
		return fd;
	w->fd = fd;
	w->buf = aligned_buf();
	struct stat sb;
	if (fstat(fd, &sb) < 0) {
		ret = -errno;
		goto out;
	}
	if ((uint64_t)sb.st_size < start) {
		ret = -EINVAL;
		goto out;
	}
	if (ftruncate(fd, (off_t)start) < 0) {
		ret = -errno;
		goto out;
	}
	w->base = ALIGN_DOWN(start);
	w->fill = (size_t)(start - w->base);
	/* The partial block before START: staged again, to be rewritten whole. */
	while (w->fill > 0) {
		ssize_t r = pread(fd, w->buf, HL_DIO_ALIGN, (off_t)w->base);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EINVAL && drop_direct(fd, &w->direct))
			continue;
		if (r < 0)
			ret = -errno;
		else if ((size_t)r < w->fill)
			ret = HL_ETRUNC;
		break;
	}
out:
	if (ret < 0)
		hl_dio_close(w);
	return ret;
}

/* Writes the staged bytes.  ALL: also the last partial block (padded with
 * zeros when direct, and kept staged); else only when the buffer is full. */
static int flush(struct hl_dio_writer *w, bool all)
{
	if (w->fill == 0 || (!all && w->fill < HL_DIO_BUF))
		return 0;
	size_t n = w->direct ? (size_t)ALIGN_UP(w->fill) : w->fill;
	if (n > w->fill)
		memset(w->buf + w->fill, 0, n - w->fill);
	int ret = pwrite_all(w->fd, &w->direct, w->buf, n, w->base);
	if (ret < 0)
		return ret;
	size_t keep = w->direct ? w->fill - (size_t)ALIGN_DOWN(w->fill) : 0;
	size_t done = w->fill - keep;
	if (keep)
		memmove(w->buf, w->buf + done, keep);
	w->base += done;
	w->fill = keep;
	return 0;
}

uint8_t *hl_dio_space(struct hl_dio_writer *w, size_t *avail)
{
	*avail = HL_DIO_BUF - w->fill;
	return w->buf + w->fill;
}

int hl_dio_commit(struct hl_dio_writer *w, size_t n)
{
	w->fill += n;
	return flush(w, false);
}

int hl_dio_write(struct hl_dio_writer *w, const void *data, size_t len)
{
	const uint8_t *p = data;
	while (len > 0) {
		size_t room = HL_DIO_BUF - w->fill;
		size_t n = len < room ? len : room;
		memcpy(w->buf + w->fill, p, n);
		int ret = hl_dio_commit(w, n);
		if (ret < 0)
			return ret;
		p += n;
		len -= n;
	}
	return 0;
}

uint64_t hl_dio_size(const struct hl_dio_writer *w)
{
	return w->base + w->fill;
}

int hl_dio_sync(struct hl_dio_writer *w)
{
	int ret = flush(w, true);
	if (ret == 0 && fdatasync(w->fd) < 0)
		ret = -errno;
	return ret;
}

int hl_dio_finish(struct hl_dio_writer *w)
{
	uint64_t size = hl_dio_size(w);
	int ret = flush(w, true);
	if (ret == 0 && ftruncate(w->fd, (off_t)size) < 0)
		ret = -errno;
	if (ret == 0 && fsync(w->fd) < 0)
		ret = -errno;
	return ret;
}

void hl_dio_close(struct hl_dio_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	w->fd = -1;
	free(w->buf);
	w->buf = NULL;
	w->fill = 0;
}

int hl_dio_ropen(struct hl_dio_reader *r, const char *path, int flags)
{
	memset(r, 0, sizeof(*r));
	r->fd = open_maybe_direct(path, flags | O_RDONLY, 0, &r->direct);
	if (r->fd < 0) {
		int ret = r->fd;
		r->fd = -1;
		return ret;
	}
	r->buf = aligned_buf();
	return 0;
}

int hl_dio_read(struct hl_dio_reader *r, uint64_t offset, void *out, size_t n)
{
	uint8_t *o = out;
	while (n > 0) {
		if (offset >= r->base && offset < r->base + r->len) {
			size_t at = (size_t)(offset - r->base);
			size_t k = r->len - at < n ? r->len - at : n;
			memcpy(o, r->buf + at, k);
			o += k;
			n -= k;
			offset += k;
			continue;
		}
		r->base = ALIGN_DOWN(offset);
		r->len = 0;
		ssize_t got = pread(r->fd, r->buf, HL_DIO_BUF, (off_t)r->base);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && errno == EINVAL && drop_direct(r->fd, &r->direct))
			continue;
		if (got < 0)
			return -errno;
		r->len = (size_t)got;
		if (r->base + r->len <= offset)
			return HL_ETRUNC;
	}
	return 0;
}

void hl_dio_rclose(struct hl_dio_reader *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
	r->len = 0;
}
