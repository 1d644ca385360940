/* tests/unit/test_text.c — hl_sanitize (util/text.h), for text a peer
 * chose: the characters that reorder or hide text become U+FFFD, what people
 * write (any script, emoji) passes unchanged, and the output never needs
 * more than 3 bytes per input byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "util/text.h"

static void expect(const char *in, int keep, const char *want)
{
	char out[512];
	hl_sanitize(in, strlen(in), out, sizeof(out), keep);
	if (strcmp(out, want) != 0)
		fail_msg("'%s' gave '%s', want '%s'", in, out, want);
}

static void test_format_characters_replaced(void **state)
{
	(void)state;
	expect("invoice \u202e" "fdp.exe\u202c", 0, "invoice \ufffd" "fdp.exe\ufffd");
	expect("a\u200bb\u200cc\u200dd\u2060e\ufeff", 0,
	       "a\ufffd" "b\ufffd" "c\ufffd" "d\ufffd" "e\ufffd");
	expect("\u2066x\u2069 \u061c \u00ad \U000E0041", 0, "\ufffdx\ufffd \ufffd \ufffd \ufffd");
	expect("one\u2028two\u2029three", 1, "one\ufffdtwo\ufffdthree");
	expect("\u3164\u115f", 0, "\ufffd\ufffd");
}

static void test_text_people_write_passes(void **state)
{
	(void)state;
	static const char *const ok[] = {
		"plain ASCII, with punctuation: 1-2 (3)", "\ud55c\uad6d\uc5b4 \ud14d\uc2a4\ud2b8",
		"\u0627\u0644\u0639\u0631\u0628\u064a\u0629", "caf\u00e9 \u00fcber", "\U0001F600 \u2713",
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		expect(ok[i], 0, ok[i]);
	expect("line one\n\tline two", 1, "line one\n\tline two");
	expect("line one\nline two", 0, "line oneline two");
}

static void test_output_bound(void **state)
{
	(void)state;
	/* the worst case: every 2-byte hidden character becomes 3 bytes */
	char in[200], out[sizeof(in) * 3 + 1];
	for (size_t i = 0; i + 1 < sizeof(in); i += 2)
		memcpy(in + i, "\xc2\xad", 2);
	size_t n = hl_sanitize(in, sizeof(in), out, sizeof(out), 0);
	assert_int_equal(n, sizeof(in) / 2 * 3);
	assert_true(hl_text_hidden(0x202e) && hl_text_hidden(0xe007f) && !hl_text_hidden(0x41));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_characters_replaced),
		cmocka_unit_test(test_text_people_write_passes),
		cmocka_unit_test(test_output_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
