/* util/dio.c — page-cache-free bulk file I/O (see dio.h). */
#include "util/dio.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/err.h"
#include "util/mem.h"
#include "util/thread.h"

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

/* The background writer: one full buffer in flight at a time. */
struct hl_dio_bg {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct hl_dio_writer *w;
	uint8_t *spare;       /* the caller's next buffer, when idle */
	uint8_t *pending;     /* being written while busy */
	uint64_t poff;
	bool busy, stop;
	int err;              /* the first write error */
};

static void *bg_main(void *arg)
{
	struct hl_dio_bg *bg = arg;
	pthread_mutex_lock(&bg->mu);
	for (;;) {
		while (!bg->busy && !bg->stop)
			pthread_cond_wait(&bg->cv, &bg->mu);
		if (!bg->busy)
			break;
		pthread_mutex_unlock(&bg->mu);
		/* w->fd and w->direct are ours while busy */
		int ret = pwrite_all(bg->w->fd, &bg->w->direct, bg->pending, HL_DIO_BUF, bg->poff);
		pthread_mutex_lock(&bg->mu);
		if (ret < 0 && bg->err == 0)
			bg->err = ret;
		bg->spare = bg->pending;
		bg->pending = NULL;
		bg->busy = false;
		pthread_cond_broadcast(&bg->cv);
	}
	pthread_mutex_unlock(&bg->mu);
	return NULL;
}

static struct hl_dio_bg *bg_start(struct hl_dio_writer *w)
{
	struct hl_dio_bg *bg = xcalloc(1, sizeof(*bg));
	bg->w = w;
	bg->spare = aligned_buf();
	pthread_mutex_init(&bg->mu, NULL);
	pthread_cond_init(&bg->cv, NULL);
	if (hl_thread_start(&bg->th, bg_main, bg) != 0) {
		pthread_mutex_destroy(&bg->mu);
		pthread_cond_destroy(&bg->cv);
		free(bg->spare);
		free(bg);
		return NULL;
	}
	return bg;
}

/* Waits until no buffer is in flight; the first write error, if any. */
static int bg_wait(struct hl_dio_bg *bg)
{
	if (!bg)
		return 0;
	pthread_mutex_lock(&bg->mu);
	while (bg->busy)
		pthread_cond_wait(&bg->cv, &bg->mu);
	int ret = bg->err;
	pthread_mutex_unlock(&bg->mu);
	return ret;
}

static void bg_stop(struct hl_dio_bg *bg)
{
	if (!bg)
		return;
	pthread_mutex_lock(&bg->mu);
	bg->stop = true;
	pthread_cond_broadcast(&bg->cv);
	pthread_mutex_unlock(&bg->mu);
	pthread_join(bg->th, NULL);
	pthread_mutex_destroy(&bg->mu);
	pthread_cond_destroy(&bg->cv);
	free(bg->spare);
	free(bg->pending);
	free(bg);
}

/* Hands the full buffer to the background writer and takes the other. */
static int bg_hand_over(struct hl_dio_writer *w)
{
	if (!w->bg && !(w->bg = bg_start(w)))
		return pwrite_all(w->fd, &w->direct, w->buf, HL_DIO_BUF, w->base);
	struct hl_dio_bg *bg = w->bg;
	pthread_mutex_lock(&bg->mu);
	while (bg->busy)
		pthread_cond_wait(&bg->cv, &bg->mu);
	int ret = bg->err;
	if (ret == 0) {
		bg->pending = w->buf;
		bg->poff = w->base;
		bg->busy = true;
		w->buf = bg->spare;
		bg->spare = NULL;
		pthread_cond_broadcast(&bg->cv);
	}
	pthread_mutex_unlock(&bg->mu);
	return ret;
}

/* Writes the staged bytes.  ALL: also the last partial block (padded with
 * zeros when direct, and kept staged); else only when the buffer is full. */
static int flush(struct hl_dio_writer *w, bool all)
{
	if (w->fill == 0 || (!all && w->fill < HL_DIO_BUF))
		return 0;
	int ret;
	if (!all) {
		if ((ret = bg_hand_over(w)) < 0)
			return ret;
		w->base += HL_DIO_BUF;
		w->fill = 0;
		return 0;
	}
	if ((ret = bg_wait(w->bg)) < 0)
		return ret;
	size_t n = w->direct ? (size_t)ALIGN_UP(w->fill) : w->fill;
	if (n > w->fill)
		memset(w->buf + w->fill, 0, n - w->fill);
	if ((ret = pwrite_all(w->fd, &w->direct, w->buf, n, w->base)) < 0)
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
	bg_stop(w->bg);
	w->bg = NULL;
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

/* The reader's read-ahead: one buffer at a time. */
struct hl_dio_rbg {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd;
	uint8_t *nbuf;        /* the next buffer (the thread's while busy) */
	uint64_t noff;
	size_t nlen;
	bool want, busy, ready, stop;
};

static void *rbg_main(void *arg)
{
	struct hl_dio_rbg *bg = arg;
	pthread_mutex_lock(&bg->mu);
	for (;;) {
		while (!bg->want && !bg->stop)
			pthread_cond_wait(&bg->cv, &bg->mu);
		if (bg->stop)
			break;
		bg->want = false;
		bg->busy = true;
		pthread_mutex_unlock(&bg->mu);
		ssize_t got;
		do
			got = pread(bg->fd, bg->nbuf, HL_DIO_BUF, (off_t)bg->noff);
		while (got < 0 && errno == EINTR);
		pthread_mutex_lock(&bg->mu);
		/* a failed read-ahead is no error: the caller reads again */
		bg->ready = got > 0;
		bg->nlen = got > 0 ? (size_t)got : 0;
		bg->busy = false;
		pthread_cond_broadcast(&bg->cv);
	}
	pthread_mutex_unlock(&bg->mu);
	return NULL;
}

static struct hl_dio_rbg *rbg_start(int fd)
{
	struct hl_dio_rbg *bg = xcalloc(1, sizeof(*bg));
	bg->fd = fd;
	bg->nbuf = aligned_buf();
	pthread_mutex_init(&bg->mu, NULL);
	pthread_cond_init(&bg->cv, NULL);
	if (hl_thread_start(&bg->th, rbg_main, bg) != 0) {
		pthread_mutex_destroy(&bg->mu);
		pthread_cond_destroy(&bg->cv);
		free(bg->nbuf);
		free(bg);
		return NULL;
	}
	return bg;
}

static void rbg_stop(struct hl_dio_rbg *bg)
{
	if (!bg)
		return;
	pthread_mutex_lock(&bg->mu);
	bg->stop = true;
	pthread_cond_broadcast(&bg->cv);
	pthread_mutex_unlock(&bg->mu);
	pthread_join(bg->th, NULL);
	pthread_mutex_destroy(&bg->mu);
	pthread_cond_destroy(&bg->cv);
	free(bg->nbuf);
	free(bg);
}

/* Fills r->buf from the aligned offset AT: from the read-ahead when it
 * holds that, else by reading; then asks for the buffer after it. */
static int refill(struct hl_dio_reader *r, uint64_t at)
{
	struct hl_dio_rbg *bg = r->bg;
	bool have = false;
	if (bg) {
		pthread_mutex_lock(&bg->mu);
		while (bg->busy || bg->want)
			pthread_cond_wait(&bg->cv, &bg->mu);
		if (bg->ready && bg->noff == at) {
			uint8_t *t = r->buf;
			r->buf = bg->nbuf;
			bg->nbuf = t;
			r->len = bg->nlen;
			have = true;
		}
		bg->ready = false;
		pthread_mutex_unlock(&bg->mu);
	}
	r->base = at;
	if (!have) {
		r->len = 0;
		for (;;) {
			ssize_t got = pread(r->fd, r->buf, HL_DIO_BUF, (off_t)at);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0 && errno == EINVAL && drop_direct(r->fd, &r->direct))
				continue;
			if (got < 0)
				return -errno;
			r->len = (size_t)got;
			break;
		}
	}
	if (++r->refills == 2 && r->direct)
		r->bg = bg = rbg_start(r->fd);
	if (bg && r->len == HL_DIO_BUF) {
		pthread_mutex_lock(&bg->mu);
		bg->noff = at + HL_DIO_BUF;
		bg->want = true;
		pthread_cond_broadcast(&bg->cv);
		pthread_mutex_unlock(&bg->mu);
	}
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
		int ret = refill(r, ALIGN_DOWN(offset));
		if (ret < 0)
			return ret;
		if (r->base + r->len <= offset)
			return HL_ETRUNC;
	}
	return 0;
}

void hl_dio_rclose(struct hl_dio_reader *r)
{
	if (!r)
		return;
	rbg_stop(r->bg);
	r->bg = NULL;
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
	free(r->buf);
	r->buf = NULL;
	r->len = 0;
}
