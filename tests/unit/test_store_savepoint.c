/* tests/unit/test_store_savepoint.c — savepoints inside a caller's
 * transaction (hl_store_savepoint/release/rollback_to, store/store.h), as
 * the daemon uses them to queue a message inside its group commit: undoing
 * the savepoint undoes only what came after it, releasing keeps it, and the
 * transaction's own writes survive either way.  IN tombstones are the
 * writes, the IN contiguity mark (hl_store_in_contiguous) what is read
 * back.  Each test runs in a fresh mkdtemp directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/err.h"

struct fx {
	char dir[40];
	hl_store *st;
	int64_t peer;
};

static int setup(void **state)
{
	uint8_t sign[32], noise[32];
	if (sodium_init() < 0)
		return -1;
	struct fx *f = calloc(1, sizeof(*f));
	if (!f)
		return -1;
	snprintf(f->dir, sizeof(f->dir), "/tmp/hl-savept-XXXXXX");
	memset(sign, 0x42, sizeof(sign));
	memset(noise, 0x43, sizeof(noise));
	if (!mkdtemp(f->dir) || hl_store_open(f->dir, &f->st) != 0 ||
	    hl_store_peer(f->st, sign, noise, "peer", &f->peer) != 0) {
		hl_store_close(f->st);
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static int teardown(void **state)
{
	struct fx *f = *state;
	hl_store_close(f->st);
	nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(f);
	return 0;
}

static void tomb(struct fx *f, uint64_t seq)
{
	uint8_t hash[HL_HASH_LEN];
	memset(hash, (int)seq, sizeof(hash));
	assert_int_equal(hl_store_insert_tombstone(f->st, f->peer, seq, hash, 1), 0);
}

static uint64_t contig(struct fx *f)
{
	struct hl_chain_head h;
	assert_int_equal(hl_store_in_contiguous(f->st, f->peer, &h), 0);
	return h.seq;
}

static void test_rollback_to_undoes_only_the_savepoint(void **state)
{
	struct fx *f = *state;
	assert_int_equal(hl_store_begin(f->st), 0);
	tomb(f, 1);
	assert_int_equal(hl_store_savepoint(f->st), 0);
	tomb(f, 2);
	tomb(f, 3);
	assert_int_equal(contig(f), 3);
	hl_store_rollback_to(f->st);
	assert_int_equal(contig(f), 1);      /* 2 and 3 are gone, 1 stays */
	tomb(f, 2);                          /* the transaction goes on */
	assert_int_equal(hl_store_commit(f->st), 0);
	assert_int_equal(contig(f), 2);
}

static void test_release_keeps_the_writes(void **state)
{
	struct fx *f = *state;
	assert_int_equal(hl_store_begin(f->st), 0);
	assert_int_equal(hl_store_savepoint(f->st), 0);
	tomb(f, 1);
	assert_int_equal(hl_store_release(f->st), 0);
	assert_int_equal(hl_store_savepoint(f->st), 0);   /* a second one, same name */
	tomb(f, 2);
	assert_int_equal(hl_store_release(f->st), 0);
	assert_int_equal(hl_store_commit(f->st), 0);
	assert_int_equal(contig(f), 2);
	/* ... and a rollback of the whole transaction undoes released ones */
	assert_int_equal(hl_store_begin(f->st), 0);
	assert_int_equal(hl_store_savepoint(f->st), 0);
	tomb(f, 3);
	assert_int_equal(hl_store_release(f->st), 0);
	hl_store_rollback(f->st);
	assert_int_equal(contig(f), 2);
}

static void test_savepoint_needs_a_transaction(void **state)
{
	struct fx *f = *state;
	assert_int_equal(hl_store_savepoint(f->st), HL_ESTATE);
	hl_store_rollback_to(f->st);         /* harmless outside a transaction */
	hl_store_rollback_to(NULL);
	tomb(f, 1);                          /* autocommit still works */
	assert_int_equal(contig(f), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rollback_to_undoes_only_the_savepoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_release_keeps_the_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_savepoint_needs_a_transaction, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
