/* tests/unit/test_mail_mime.c — the mail parser (mail/mime.c): the layout
 * hotline-mail sends (libcurl's MIME as Postfix delivered it, copied from a
 * real delivery), the rewrites other mail systems may make (LF line ends,
 * folded and quoted Content-Type, header case), and what must be refused:
 * no closing boundary, two bundle parts, bad base64, no bundle part, not
 * base64, not multipart, too many parts, a bundle without its header. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "mail/mime.h"
#include "util/err.h"

/* "hotline/1 bundle" then the bytes 0..199: the seed bundle. */
static const char B64[] =
	"aG90bGluZS8xIGJ1bmRsZQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4fICEiIyQlJico\r\n"
	"KSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj9AQUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2Bh\r\n"
	"YmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ent8fX5/gIGCg4SFhoeIiYqLjI2Oj5CRkpOUlZaXmJma\r\n"
	"m5ydnp+goaKjpKWmp6ipqqusra6vsLGys7S1tre4ubq7vL2+v8DBwsPExcbH\r\n";

#define BND "------------------------6edf9d431ff2c639"
#define CT_TOP "Content-Type: multipart/mixed; boundary=" BND "\r\n"
#define TEXT_PART "--" BND "\r\nContent-Type: text/plain; charset=us-ascii\r\n" \
	"Content-Transfer-Encoding: 8bit\r\n\r\nThis mail carries a sealed bundle.\r\n\r\n"
#define BUNDLE_HDR "--" BND "\r\nContent-Disposition: attachment; filename=\"hotline.bundle\"\r\n" \
	"Content-Type: application/x-hotline-bundle\r\nContent-Transfer-Encoding: base64\r\n\r\n"
#define CLOSE "--" BND "--\r\n"
#define HEAD "Return-Path: <alpha@hotline.test>\r\nReceived: from vm (localhost [127.0.0.1])\r\n" \
	"\tby mail.hotline.test (Postfix)\r\n"
#define TAIL "Mime-Version: 1.0\r\nSubject: hotline bundle\r\n\r\n"

static char *cat(const char *a, const char *b, const char *c, const char *d, const char *e)
{
	size_t n = strlen(a) + strlen(b) + strlen(c) + strlen(d) + strlen(e) + 1;
	char *s = malloc(n);
	snprintf(s, n, "%s%s%s%s%s", a, b, c, d, e);
	return s;
}

/* Drops every CR (a mail system that stores LF line ends). */
static void lf_only(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++)
		if (*p != '\r')
			*o++ = *p;
	*o = '\0';
}

static int parse(const char *mail, uint8_t **out, size_t *outlen, char *err)
{
	return hl_mail_find_bundle((const uint8_t *)mail, strlen(mail), out, outlen, err, 256);
}

static void assert_seed_bundle(const uint8_t *out, size_t outlen)
{
	assert_int_equal(outlen, 16 + 200);
	assert_memory_equal(out, "hotline/1 bundle", 16);
	for (int i = 0; i < 200; i++)
		assert_int_equal(out[16 + i], i);
}

static void test_as_sent(void **state)
{
	(void)state;
	char *top = cat(HEAD, CT_TOP, TAIL, "", "");
	char *mail = cat(top, TEXT_PART, BUNDLE_HDR, B64, CLOSE);
	uint8_t *out;
	size_t n;
	char err[256];
	assert_int_equal(parse(mail, &out, &n, err), 0);
	assert_seed_bundle(out, n);
	free(out);
	/* LF line ends decode the same */
	lf_only(mail);
	assert_int_equal(parse(mail, &out, &n, err), 0);
	assert_seed_bundle(out, n);
	free(out);
	free(top);
	free(mail);
}

static void test_folded_quoted_case(void **state)
{
	(void)state;
	const char *top = HEAD "content-type: Multipart/Mixed;\r\n\tcharset=x;\r\n BOUNDARY=\"" BND
			  "\"\r\n" TAIL;
	char *mail = cat(top, "preamble\r\n", BUNDLE_HDR, B64, CLOSE "epilogue\r\n");
	uint8_t *out;
	size_t n;
	char err[256];
	assert_int_equal(parse(mail, &out, &n, err), 0);
	assert_seed_bundle(out, n);
	free(out);
	free(mail);
}

static void refused(const char *mail, int code, const char *why)
{
	uint8_t *out = (uint8_t *)1;
	size_t n = 7;
	char err[256] = "";
	assert_int_equal(parse(mail, &out, &n, err), code);
	assert_null(out);
	assert_int_equal(n, 0);
	if (!strstr(err, why))
		fail_msg("err '%s' lacks '%s'", err, why);
}

static void test_refusals(void **state)
{
	(void)state;
	char *top = cat(HEAD, CT_TOP, TAIL, "", "");
	char *m;

	m = cat(top, TEXT_PART, BUNDLE_HDR, B64, "");
	refused(m, HL_ETRUNC, "no closing boundary");
	free(m);

	char *two = cat(BUNDLE_HDR, B64, BUNDLE_HDR, B64, "");
	m = cat(top, TEXT_PART, two, CLOSE, "");
	refused(m, HL_EINVAL, "two bundle attachments");
	free(m);
	free(two);

	m = cat(top, BUNDLE_HDR, "aG9*bGlu\r\n", CLOSE, "");
	refused(m, HL_EINVAL, "not valid base64");
	free(m);

	m = cat(top, BUNDLE_HDR, "\r\n", CLOSE, "");
	refused(m, HL_EINVAL, "empty");
	free(m);

	m = cat(top, TEXT_PART, CLOSE, "", "");
	refused(m, HL_EINVAL, "no application/x-hotline-bundle");
	free(m);

	m = cat(top, "--" BND "\r\nContent-Type: application/x-hotline-bundle\r\n"
		     "Content-Transfer-Encoding: quoted-printable\r\n\r\n", B64, CLOSE, "");
	refused(m, HL_EINVAL, "not base64");
	free(m);

	refused(HEAD "Content-Type: text/plain\r\n" TAIL "hello\r\n", HL_EINVAL, "not multipart");
	refused(HEAD TAIL "hello\r\n", HL_EINVAL, "no Content-Type");
	refused(HEAD CT_TOP CT_TOP TAIL, HL_EINVAL, "repeated Content-Type");
	refused(HEAD "Content-Type: multipart/mixed\r\n" TAIL, HL_EINVAL, "boundary");

	size_t cap = (HL_MAIL_MAX_PARTS + 2) * strlen(TEXT_PART) + 1;
	char *many = calloc(1, cap);
	for (int i = 0; i < HL_MAIL_MAX_PARTS + 1; i++)
		strcat(many, TEXT_PART);
	m = cat(top, many, CLOSE, "", "");
	refused(m, HL_ETOOBIG, "more than");
	free(m);
	free(many);
	free(top);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_as_sent),
		cmocka_unit_test(test_folded_quoted_case),
		cmocka_unit_test(test_refusals),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
