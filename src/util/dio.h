/* util/dio.h — bulk file data that bypasses the page cache (O_DIRECT).
 *
 * Why: on the machines hotline is measured on, writing a file through the
 * page cache costs about 2.4 s of CPU per GiB (allocating and copying
 * folios), while the same bytes written with O_DIRECT from aligned 1 MiB
 * buffers take 0.2 s of CPU and half a second of wall time.  Documents are
 * written once (the sender's copy, the receiver's part file) and read once
 * (by the sending daemon), so the cache buys nothing for them.
 *
 * A writer appends bytes at the end of a file through two aligned staging
 * buffers; whole blocks go out with O_DIRECT, full buffers from a thread
 * of the writer's own while the caller fills the other.  hl_dio_sync() makes every
 * byte appended so far durable (the last partial block is written padded,
 * and kept in the buffer to be rewritten with what follows: so the file may
 * be longer than what was appended until hl_dio_finish() cuts it).  Where
 * the file system refuses O_DIRECT (tmpfs, some FUSE), the same calls fall
 * back to ordinary writes.
 *
 * A reader serves reads at any offset from an aligned buffer it refills
 * with O_DIRECT reads (or ordinary ones, same fallback), reading the next
 * buffer ahead on a thread when the reads go on in order. */
#ifndef HL_UTIL_DIO_H
#define HL_UTIL_DIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HL_DIO_ALIGN 4096u
#define HL_DIO_BUF (1u << 20)

struct hl_dio_bg;

struct hl_dio_writer {
	int fd;
	bool direct;          /* O_DIRECT is on for fd */
	uint8_t *buf;         /* HL_DIO_BUF bytes, HL_DIO_ALIGN-aligned */
	size_t fill;          /* bytes staged in buf */
	uint64_t base;        /* file offset of buf[0] (aligned) */
	/* Full buffers are written by a thread of the writer's own (started
	 * at the first full buffer), while the caller fills the next one: an
	 * O_DIRECT write waits for the device. */
	struct hl_dio_bg *bg;
};

/* Opens PATH for writing (FLAGS as for open(2), without the access mode;
 * O_WRONLY/O_RDWR is added) and positions the writer at byte START, which
 * must not be past the file's end: bytes after START are cut.  Returns 0
 * or -errno.  W is left with fd -1 on failure. */
int hl_dio_open(struct hl_dio_writer *w, const char *path, int flags, mode_t mode,
		uint64_t start);
/* Appends LEN bytes.  0 or -errno. */
int hl_dio_write(struct hl_dio_writer *w, const void *data, size_t len);
/* Room for appending in place: a pointer to at least *AVAIL (> 0) bytes,
 * to be followed by hl_dio_commit() of how many were filled. */
uint8_t *hl_dio_space(struct hl_dio_writer *w, size_t *avail);
int hl_dio_commit(struct hl_dio_writer *w, size_t n);
/* The number of bytes appended since the start of the file. */
uint64_t hl_dio_size(const struct hl_dio_writer *w);
/* Everything appended so far is durable (fdatasync) on return. */
int hl_dio_sync(struct hl_dio_writer *w);
/* Writes what is staged, cuts the file to its true size and fsyncs it. */
int hl_dio_finish(struct hl_dio_writer *w);
/* Closes the file and frees the buffer (NULL-safe, idempotent). */
void hl_dio_close(struct hl_dio_writer *w);

struct hl_dio_rbg;

struct hl_dio_reader {
	int fd;
	bool direct;
	uint8_t *buf;
	uint64_t base;        /* file offset of buf[0] */
	size_t len;           /* valid bytes in buf */
	unsigned refills;
	/* From the second refill on, a thread of the reader's own reads the
	 * next buffer ahead (an O_DIRECT read waits for the device). */
	struct hl_dio_rbg *bg;
};

/* Opens PATH read-only.  0 or -errno. */
int hl_dio_ropen(struct hl_dio_reader *r, const char *path, int flags);
/* Reads exactly N bytes at OFFSET into OUT.  0, -errno, or HL_ETRUNC when
 * the file ends first. */
int hl_dio_read(struct hl_dio_reader *r, uint64_t offset, void *out, size_t n);
void hl_dio_rclose(struct hl_dio_reader *r);

#endif
