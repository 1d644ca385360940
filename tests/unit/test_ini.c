/* test_ini.c — the incremental INI reader (util/ini.c): sections repeated,
 * values kept whole with ';' and '#', whole-line comments, trimming, errors
 * with the right line numbers, the line cap and forbidden bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "util/ini.h"
#include "util/err.h"

#define MAX_ITEMS 32

struct run {
	int ret;                 /* the first error, or 0 */
	unsigned err_line;       /* the line of the first error */
	char err[HL_INI_ERR_LEN];
	size_t n;
	hl_ini_item items[MAX_ITEMS];
};

/* Feeds TEXT line by line, keeping the section and pair items (pointers
 * into TEXT, which the caller keeps alive). */
static void run_text(const char *text, size_t len, unsigned flags, struct run *r)
{
	hl_ini ini;
	size_t pos = 0;
	const char *line;
	size_t line_len;
	memset(r, 0, sizeof(*r));
	hl_ini_init(&ini, flags);
	while (hl_ini_next_line(text, len, &pos, &line, &line_len)) {
		hl_ini_item it;
		int ret = hl_ini_feed(&ini, line, line_len, &it);
		if (ret < 0) {
			r->ret = ret;
			r->err_line = ini.line;
			memcpy(r->err, ini.err, sizeof(r->err));
			break;
		}
		if (it.kind != HL_INI_NOTHING) {
			assert_true(r->n < MAX_ITEMS);
			r->items[r->n++] = it;
		}
	}
	hl_ini_finish(&ini);
	assert_int_equal(ini.err[0], 0); /* finish wipes the message */
}

static void run_str(const char *text, struct run *r)
{
	run_text(text, strlen(text), 0, r);
}

static void assert_span(const char *p, size_t n, const char *want)
{
	assert_int_equal(n, strlen(want));
	assert_memory_equal(p, want, n);
}

static void test_repeated_sections(void **state)
{
	(void)state;
	struct run r;
	run_str("[Station]\nName = a\n\n[Peer]\nName = b\n[Peer]\nName = c\n", &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.n, 6);
	assert_int_equal(r.items[0].kind, HL_INI_SECTION);
	assert_span(r.items[0].name, r.items[0].name_len, "Station");
	assert_int_equal(r.items[2].kind, HL_INI_SECTION);
	assert_int_equal(r.items[2].line, 4);
	assert_int_equal(r.items[4].kind, HL_INI_SECTION);
	assert_int_equal(r.items[4].line, 6);
	assert_span(r.items[3].value, r.items[3].value_len, "b");
	assert_span(r.items[5].value, r.items[5].value_len, "c");
	assert_int_equal(r.items[5].line, 7);
}

static void test_values_kept_whole(void **state)
{
	(void)state;
	struct run r;
	run_str("[S]\nA = x;y # not a comment\nB=a=b\nC =\n  D\t=\t v  v \t\nE = ;#\n", &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.n, 6);
	assert_span(r.items[1].name, r.items[1].name_len, "A");
	assert_span(r.items[1].value, r.items[1].value_len, "x;y # not a comment");
	assert_span(r.items[2].value, r.items[2].value_len, "a=b");
	assert_span(r.items[3].name, r.items[3].name_len, "C");
	assert_int_equal(r.items[3].value_len, 0);
	assert_span(r.items[4].name, r.items[4].name_len, "D");
	assert_span(r.items[4].value, r.items[4].value_len, "v  v");
	assert_span(r.items[5].value, r.items[5].value_len, ";#");
}

static void test_comments_and_blanks(void **state)
{
	(void)state;
	struct run r;
	run_str("# top\n; also\n\n   \t\n[S]\n  # indented comment = x\n\t; k = v\nK = v\n", &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.n, 2);
	assert_int_equal(r.items[0].line, 5);
	assert_int_equal(r.items[1].line, 8);
}

static void test_crlf_and_header_spaces(void **state)
{
	(void)state;
	struct run r;
	run_str("[ Peer ]\r\nKey = v\r\n", &r);
	assert_int_equal(r.ret, 0);
	assert_span(r.items[0].name, r.items[0].name_len, "Peer");
	assert_span(r.items[1].value, r.items[1].value_len, "v");
}

static void test_name_is_case_insensitive(void **state)
{
	(void)state;
	struct run r;
	run_str("[pEER]\nnoisekey = v\n", &r);
	assert_int_equal(r.ret, 0);
	assert_true(hl_ini_name_is(&r.items[0], "Peer"));
	assert_true(hl_ini_name_is(&r.items[1], "NoiseKey"));
	assert_false(hl_ini_name_is(&r.items[1], "NoiseKe"));
	assert_false(hl_ini_name_is(&r.items[1], "NoiseKeys"));
}

static void expect_error(const char *text, size_t len, unsigned flags, int code,
			 unsigned line, const char *needle)
{
	struct run r;
	run_text(text, len, flags, &r);
	assert_int_equal(r.ret, code);
	assert_int_equal(r.err_line, line);
	if (needle && !strstr(r.err, needle))
		fail_msg("error '%s' does not contain '%s'", r.err, needle);
}

static void test_errors_name_line(void **state)
{
	(void)state;
	const char *t;
	t = "[S]\nA = 1\njust words\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 3, "'just words'");
	t = "[S]\n\n\nNoise Key = x\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 4, "'Noise Key'");
	t = "[S]\n= x\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 2, "bad key");
	t = "# c\nK = v\n[S]\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 2, "outside any section");
	t = "[S]\n[Peer\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 2, "'[Peer'");
	t = "[]\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 1, "'[]'");
	t = "[a b]\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 1, "bad section name");
	t = "[S] x\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 1, NULL);
	t = "[S]\nK\x01 = v\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 2, "0x01 in column 2");
	t = "[S]\nK = v\x7f\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 2, "0x7f");
	/* a lone '\r' inside a line is a control character, not a line end */
	t = "[S]\nK = a\rb\n";
	expect_error(t, strlen(t), 0, HL_EINVAL, 2, "0x0d");
}

static void test_nul_byte_refused(void **state)
{
	(void)state;
	static const char t[] = "[S]\nK = a\0b\n";
	expect_error(t, sizeof(t) - 1, 0, HL_EINVAL, 2, "0x00");
}

static void test_global_keys_flag(void **state)
{
	(void)state;
	struct run r;
	const char *t = "# header\nK = v\n";
	run_text(t, strlen(t), HL_INI_GLOBAL_KEYS, &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.n, 1);
	assert_int_equal(r.items[0].kind, HL_INI_PAIR);
}

static void test_line_cap(void **state)
{
	(void)state;
	char buf[HL_INI_LINE_MAX + 16];
	struct run r;
	/* "[S]\n" then a line of exactly HL_INI_LINE_MAX bytes: accepted. */
	memcpy(buf, "[S]\nK = ", 8);
	size_t len = 4 + HL_INI_LINE_MAX;
	memset(buf + 8, 'v', len - 8);
	run_text(buf, len, 0, &r);
	assert_int_equal(r.ret, 0);
	assert_int_equal(r.items[1].value_len, HL_INI_LINE_MAX - 4);
	/* One byte more: refused, on line 2.  With "\r\n" the '\r' does not count. */
	buf[len] = 'v';
	run_text(buf, len + 1, 0, &r);
	assert_int_equal(r.ret, HL_ETOOBIG);
	assert_int_equal(r.err_line, 2);
	buf[len] = '\r';
	run_text(buf, len + 1, 0, &r);
	assert_int_equal(r.ret, 0);
}

static void test_error_quote_sanitized_and_short(void **state)
{
	(void)state;
	char buf[600];
	struct run r;
	/* invalid UTF-8 in a bad line is replaced, a long line is shortened */
	memcpy(buf, "[S]\n\xff\xfe", 6);
	memset(buf + 6, 'x', 500);
	run_text(buf, 506, 0, &r);
	assert_int_equal(r.ret, HL_EINVAL);
	assert_null(strchr(r.err, '\xff'));
	assert_non_null(strstr(r.err, "\xef\xbf\xbd"));
	assert_non_null(strstr(r.err, "...'"));
	assert_true(strlen(r.err) < 300);
}

static void test_next_line(void **state)
{
	(void)state;
	size_t pos = 0, n;
	const char *line;
	const char *t = "a\n\nbc";
	assert_int_equal(hl_ini_next_line(t, 5, &pos, &line, &n), 1);
	assert_span(line, n, "a");
	assert_int_equal(hl_ini_next_line(t, 5, &pos, &line, &n), 1);
	assert_int_equal(n, 0);
	assert_int_equal(hl_ini_next_line(t, 5, &pos, &line, &n), 1);
	assert_span(line, n, "bc");
	assert_int_equal(hl_ini_next_line(t, 5, &pos, &line, &n), 0);
	pos = 0;
	assert_int_equal(hl_ini_next_line("", 0, &pos, &line, &n), 0);
	pos = 0;
	assert_int_equal(hl_ini_next_line("x\n", 2, &pos, &line, &n), 1);
	assert_int_equal(hl_ini_next_line("x\n", 2, &pos, &line, &n), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repeated_sections),
		cmocka_unit_test(test_values_kept_whole),
		cmocka_unit_test(test_comments_and_blanks),
		cmocka_unit_test(test_crlf_and_header_spaces),
		cmocka_unit_test(test_name_is_case_insensitive),
		cmocka_unit_test(test_errors_name_line),
		cmocka_unit_test(test_nul_byte_refused),
		cmocka_unit_test(test_global_keys_flag),
		cmocka_unit_test(test_line_cap),
		cmocka_unit_test(test_error_quote_sanitized_and_short),
		cmocka_unit_test(test_next_line),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
