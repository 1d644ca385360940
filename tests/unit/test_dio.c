/* test_dio.c — util/dio.c: the O_DIRECT writer and reader give back exactly
 * the bytes appended, whatever the sizes and offsets (unaligned appends,
 * a sync in the middle of a block, reopening at an unaligned offset,
 * more than one staging buffer so the background writer and the
 * read-ahead run), both on a disk file system (/var/tmp, O_DIRECT) and on
 * tmpfs (/dev/shm, where O_DIRECT may be refused: the fallback). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include <cmocka.h>
#include <sodium.h>

#include "util/dio.h"
#include "util/err.h"
#include "util/mem.h"

#define TOTAL (3 * HL_DIO_BUF + 12345)

static uint8_t *pattern(size_t n)
{
	uint8_t *p = xmalloc(n);
	randombytes_buf(p, n);
	return p;
}

static char *tmp_path(const char *dir)
{
	struct stat sb;
	if (stat(dir, &sb) < 0)
		return NULL;
	char *path = xasprintf("%s/hl-test-dio.XXXXXX", dir);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	unlink(path);
	return path;
}

static void check_file(const char *path, const uint8_t *want, size_t n)
{
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal((uint64_t)sb.st_size, n);
	/* through the reader: in order, then a read across two buffers at an
	 * unaligned offset, then one past the end */
	struct hl_dio_reader r;
	assert_int_equal(hl_dio_ropen(&r, path, O_CLOEXEC), 0);
	uint8_t *got = xmalloc(n);
	for (size_t off = 0; off < n;) {
		size_t k = n - off < 65519 ? n - off : 65519;
		assert_int_equal(hl_dio_read(&r, off, got + off, k), 0);
		off += k;
	}
	assert_memory_equal(got, want, n);
	size_t at = HL_DIO_BUF - 17;
	assert_int_equal(hl_dio_read(&r, at, got, 100), 0);
	assert_memory_equal(got, want + at, 100);
	assert_int_equal(hl_dio_read(&r, n - 5, got, 10), HL_ETRUNC);
	hl_dio_rclose(&r);
	hl_dio_rclose(&r); /* idempotent */
	free(got);
}

static void round_trip(const char *dir)
{
	char *path = tmp_path(dir);
	if (!path) {
		print_message("%s is absent; skipped\n", dir);
		return;
	}
	uint8_t *data = pattern(TOTAL);
	struct hl_dio_writer w;

	/* appends of odd sizes, a sync in the middle of a block */
	assert_int_equal(hl_dio_open(&w, path, O_CREAT | O_EXCL | O_CLOEXEC, 0600, 0), 0);
	size_t off = 0, step = 1;
	while (off < HL_DIO_BUF + 5000) {
		size_t k = step < HL_DIO_BUF + 5000 - off ? step : HL_DIO_BUF + 5000 - off;
		assert_int_equal(hl_dio_write(&w, data + off, k), 0);
		off += k;
		step = step * 3 + 7;
	}
	assert_int_equal(hl_dio_size(&w), off);
	assert_int_equal(hl_dio_sync(&w), 0);
	size_t synced = off;
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true((uint64_t)sb.st_size >= off); /* may hold padding */
	/* appending goes on after the sync (rewriting the partial block),
	 * then the writer is dropped without finishing: a crash */
	assert_int_equal(hl_dio_write(&w, data + off, 3000), 0);
	hl_dio_close(&w);
	hl_dio_close(&w); /* idempotent */

	/* reopened at an unaligned offset short of what was synced: the
	 * rest is cut, then appended again (in place, through the space) */
	size_t restart = synced - 2222;
	assert_int_equal(hl_dio_open(&w, path, O_CLOEXEC, 0600, restart), 0);
	assert_int_equal(hl_dio_size(&w), restart);
	off = restart;
	while (off < TOTAL) {
		size_t room;
		uint8_t *p = hl_dio_space(&w, &room);
		assert_true(room > 0);
		size_t k = TOTAL - off < room ? TOTAL - off : room;
		k = k > 70000 ? 70000 : k;
		memcpy(p, data + off, k);
		assert_int_equal(hl_dio_commit(&w, k), 0);
		off += k;
	}
	assert_int_equal(hl_dio_finish(&w), 0);
	hl_dio_close(&w);
	check_file(path, data, TOTAL);

	/* a start past the end is refused */
	assert_int_equal(hl_dio_open(&w, path, O_CLOEXEC, 0600, TOTAL + 1), -EINVAL);
	assert_int_equal(w.fd, -1);
	unlink(path);
	free(path);
	free(data);
}

static void test_disk(void **state)
{
	(void)state;
	round_trip("/var/tmp");
}

static void test_tmpfs(void **state)
{
	(void)state;
	round_trip("/dev/shm");
}

static void test_empty_file(void **state)
{
	(void)state;
	char *path = tmp_path("/var/tmp");
	struct hl_dio_writer w;
	assert_int_equal(hl_dio_open(&w, path, O_CREAT | O_EXCL | O_CLOEXEC, 0600, 0), 0);
	assert_int_equal(hl_dio_finish(&w), 0);
	hl_dio_close(&w);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 0);
	struct hl_dio_reader r;
	uint8_t b;
	assert_int_equal(hl_dio_ropen(&r, path, O_CLOEXEC), 0);
	assert_int_equal(hl_dio_read(&r, 0, &b, 1), HL_ETRUNC);
	hl_dio_rclose(&r);
	unlink(path);
	free(path);
	assert_true(hl_dio_ropen(&r, "/nonexistent/hl-dio", O_CLOEXEC) == -ENOENT);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_disk),
		cmocka_unit_test(test_tmpfs),
		cmocka_unit_test(test_empty_file),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
