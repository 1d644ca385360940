/* test_progpath.c — util/progpath.c: where hotline finds hotline-mail.
 * $HOTLINE_MAIL wins; then the program beside the running binary (the
 * build tree, or PREFIX/bin once installed, also under a DESTDIR staging
 * copy); then the configured bin directory; then the bare name for $PATH.
 * A file that is there but not executable does not count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util/mem.h"
#include "util/progpath.h"

struct dirs {
	char root[64];
	char *bin, *stage, *self, *staged_self;
};

static void touch(const char *path, mode_t mode)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

/* ROOT/usr/bin (the configured bindir) and ROOT/stage/usr/bin (a DESTDIR copy). */
static int setup(void **state)
{
	struct dirs *d = xcalloc(1, sizeof(*d));
	snprintf(d->root, sizeof(d->root), "/tmp/hl-progpath.XXXXXX");
	if (!mkdtemp(d->root))
		return -1;
	d->bin = xasprintf("%s/bin", d->root);
	d->stage = xasprintf("%s/stage", d->root);
	d->self = xasprintf("%s/hotline", d->bin);
	d->staged_self = xasprintf("%s/hotline", d->stage);
	mkdir(d->bin, 0755);
	mkdir(d->stage, 0755);
	*state = d;
	return 0;
}

static int teardown(void **state)
{
	struct dirs *d = *state;
	char *cmd = xasprintf("rm -rf '%s'", d->root);
	int r = system(cmd);
	free(cmd);
	free(d->bin);
	free(d->stage);
	free(d->self);
	free(d->staged_self);
	free(d);
	return r == 0 ? 0 : -1;
}

static void expect(const char *want, char *got)
{
	assert_string_equal(got, want);
	free(got);
}

static void test_lookup_order(void **state)
{
	struct dirs *d = *state;
	char *beside_bin = xasprintf("%s/hotline-mail", d->bin);
	char *beside_stage = xasprintf("%s/hotline-mail", d->stage);

	/* nothing anywhere: the bare name, for $PATH */
	expect("hotline-mail", hl_helper_path_in("hotline-mail", NULL, d->staged_self, d->bin));
	/* installed in the configured bindir only */
	touch(beside_bin, 0755);
	expect(beside_bin, hl_helper_path_in("hotline-mail", NULL, d->staged_self, d->bin));
	expect(beside_bin, hl_helper_path_in("hotline-mail", "", NULL, d->bin));
	/* beside the running binary wins over the bindir (a staged copy) */
	touch(beside_stage, 0755);
	expect(beside_stage, hl_helper_path_in("hotline-mail", NULL, d->staged_self, d->bin));
	/* not executable: passed over */
	chmod(beside_stage, 0644);
	expect(beside_bin, hl_helper_path_in("hotline-mail", NULL, d->staged_self, d->bin));
	/* the environment wins over everything */
	expect("/x/y", hl_helper_path_in("hotline-mail", "/x/y", d->staged_self, d->bin));
	free(beside_bin);
	free(beside_stage);
}

/* The real thing: this test program's directory holds no hotline-mail
 * unless the build put one there (it does not: tests/ is separate). */
static void test_real_lookup_uses_env(void **state)
{
	(void)state;
	setenv("HOTLINE_TEST_HELPER", "/bin/true", 1);
	expect("/bin/true", hl_helper_path("hotline-mail", "HOTLINE_TEST_HELPER"));
	unsetenv("HOTLINE_TEST_HELPER");
	char *p = hl_helper_path("no-such-helper-program", "HOTLINE_TEST_HELPER");
	assert_true(strcmp(p, "no-such-helper-program") == 0);
	free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup_order, setup, teardown),
		cmocka_unit_test(test_real_lookup_uses_env),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
