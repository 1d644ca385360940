/* mail/mime.c — finds and decodes the bundle attachment of a mail
 * (mail/mime.h).  Line-oriented: a line ends at LF, a CR before it is
 * dropped; nothing is copied but one unfolded header field at a time
 * (capped) and the decoded bundle. */
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/mime.h"
#include "util/err.h"
#include "util/mem.h"

struct span {
	const uint8_t *p;
	size_t n;
};

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return code;
}

/* The line starting at *POS in S: its content (CR LF excluded) in LINE;
 * *POS moves past its LF.  False at the end of S. */
static bool next_line(struct span s, size_t *pos, struct span *line)
{
	if (*pos >= s.n)
		return false;
	const uint8_t *start = s.p + *pos;
	const uint8_t *nl = memchr(start, '\n', s.n - *pos);
	size_t n = nl ? (size_t)(nl - start) : s.n - *pos;
	*pos += n + (nl ? 1 : 0);
	if (n > 0 && start[n - 1] == '\r')
		n--;
	line->p = start;
	line->n = n;
	return true;
}

/* Splits S at its first empty line: HDR before it, BODY after it.  Without
 * an empty line, all of S is header and BODY is empty. */
static int split_header(struct span s, struct span *hdr, struct span *body)
{
	size_t pos = 0, start;
	struct span line;
	for (;;) {
		start = pos;
		if (start > HL_MAIL_MAX_HEADER)
			return HL_ETOOBIG;
		if (!next_line(s, &pos, &line)) {
			*hdr = s;
			body->p = s.p + s.n;
			body->n = 0;
			return 0;
		}
		if (line.n == 0)
			break;
	}
	hdr->p = s.p;
	hdr->n = start;
	body->p = s.p + pos;
	body->n = s.n - pos;
	return 0;
}

static bool is_wsp(uint8_t c)
{
	return c == ' ' || c == '\t';
}

/* The unfolded value of header field NAME in HDR, trimmed, NUL-terminated
 * in OUT.  1 found, 0 absent, HL_ETOOBIG over CAP, HL_EINVAL when the
 * field is given twice (a mail that says two things is not trusted). */
static int get_field(struct span hdr, const char *name, char *out, size_t cap)
{
	size_t pos = 0, nlen = strlen(name), o = 0;
	struct span line;
	int found = 0, in = 0;
	while (next_line(hdr, &pos, &line)) {
		if (in && line.n > 0 && is_wsp(line.p[0])) {
			if (o + line.n >= cap)
				return HL_ETOOBIG;
			memcpy(out + o, line.p, line.n);
			o += line.n;
			continue;
		}
		in = 0;
		size_t i = nlen;
		if (line.n <= nlen || strncasecmp((const char *)line.p, name, nlen) != 0)
			continue;
		while (i < line.n && is_wsp(line.p[i]))
			i++;
		if (i >= line.n || line.p[i] != ':')
			continue;
		if (found)
			return HL_EINVAL;
		found = in = 1;
		i++;
		if (line.n - i >= cap)
			return HL_ETOOBIG;
		memcpy(out, line.p + i, line.n - i);
		o = line.n - i;
	}
	if (!found)
		return 0;
	while (o > 0 && is_wsp((uint8_t)out[o - 1]))
		o--;
	out[o] = '\0';
	size_t lead = 0;
	while (is_wsp((uint8_t)out[lead]))
		lead++;
	memmove(out, out + lead, o - lead + 1);
	return 1;
}

/* True when the media type of a Content-Type value is TYPE. */
static bool media_is(const char *value, const char *type)
{
	size_t n = strcspn(value, "; \t");
	return n == strlen(type) && strncasecmp(value, type, n) == 0;
}

/* The parameter NAME of a Content-Type value, into OUT (at most CAP - 1
 * bytes).  1 found, 0 absent, HL_EINVAL malformed or too long. */
static int get_param(const char *value, const char *name, char *out, size_t cap)
{
	const char *p = strchr(value, ';');
	size_t nlen = strlen(name);
	while (p && *p == ';') {
		p++;
		while (is_wsp((uint8_t)*p))
			p++;
		const char *eq = strchr(p, '=');
		if (!eq)
			return 0;
		const char *ne = eq;
		while (ne > p && is_wsp((uint8_t)ne[-1]))
			ne--;
		bool want = (size_t)(ne - p) == nlen && strncasecmp(p, name, nlen) == 0;
		const char *v = eq + 1, *ve;
		while (is_wsp((uint8_t)*v))
			v++;
		if (*v == '"') {
			v++;
			ve = strchr(v, '"');
			if (!ve || memchr(v, '\\', (size_t)(ve - v)))
				return HL_EINVAL;   /* no escapes in what we accept */
			p = ve + 1;
		} else {
			ve = v + strcspn(v, "; \t");
			p = ve;
		}
		if (want) {
			size_t n = (size_t)(ve - v);
			if (n == 0 || n >= cap)
				return HL_EINVAL;
			memcpy(out, v, n);
			out[n] = '\0';
			return 1;
		}
		while (is_wsp((uint8_t)*p))
			p++;
	}
	return 0;
}

/* 0 not a delimiter line, 1 a delimiter, 2 the closing delimiter. */
static int delimiter(struct span line, const char *b, size_t blen)
{
	if (line.n < blen + 2 || line.p[0] != '-' || line.p[1] != '-' ||
	    memcmp(line.p + 2, b, blen) != 0)
		return 0;
	size_t i = blen + 2;
	int kind = 1;
	if (line.n >= i + 2 && line.p[i] == '-' && line.p[i + 1] == '-') {
		kind = 2;
		i += 2;
	}
	for (; i < line.n; i++)   /* transport padding only */
		if (!is_wsp(line.p[i]))
			return 0;
	return kind;
}

static int decode_part(struct span body, uint8_t **out, size_t *outlen, char *err,
		       size_t errlen)
{
	while (body.n > 0 && (is_wsp(body.p[body.n - 1]) || body.p[body.n - 1] == '\r' ||
			      body.p[body.n - 1] == '\n'))
		body.n--;
	if (body.n == 0)
		return fail(err, errlen, HL_EINVAL, "the bundle attachment is empty");
	size_t cap = body.n / 4 * 3 + 3;
	uint8_t *bin = xmalloc(cap);
	size_t n = 0;
	const char *end = NULL;
	if (sodium_base642bin(bin, cap, (const char *)body.p, body.n, " \t\r\n", &n, &end,
			      sodium_base64_VARIANT_ORIGINAL) != 0 ||
	    end != (const char *)body.p + body.n || n == 0) {
		free(bin);
		return fail(err, errlen, HL_EINVAL, "the bundle attachment is not valid base64");
	}
	*out = bin;
	*outlen = n;
	return 0;
}

int hl_mail_find_bundle(const uint8_t *buf, size_t len, uint8_t **out, size_t *outlen,
			char *err, size_t errlen)
{
	struct span mail = { buf, len }, hdr, body, line;
	char field[HL_MAIL_MAX_FIELD], boundary[HL_MAIL_BOUNDARY_MAX + 1];
	struct span bundle = { NULL, 0 };
	unsigned parts = 0;
	size_t pos = 0, part_start = 0, last_end = 0;
	bool in_part = false, closed = false;
	int r;

	*out = NULL;
	*outlen = 0;
	if (len > HL_MAIL_MAX_BYTES)
		return fail(err, errlen, HL_ETOOBIG, "mail larger than %llu bytes",
			    (unsigned long long)HL_MAIL_MAX_BYTES);
	if (split_header(mail, &hdr, &body) < 0)
		return fail(err, errlen, HL_ETOOBIG, "mail header over %u bytes",
			    HL_MAIL_MAX_HEADER);
	r = get_field(hdr, "Content-Type", field, sizeof(field));
	if (r <= 0)
		return fail(err, errlen, HL_EINVAL, "%s", r == 0 ? "no Content-Type: not a bundle mail"
						   : "bad or repeated Content-Type");
	if (!media_is(field, "multipart/mixed"))
		return fail(err, errlen, HL_EINVAL, "not multipart/mixed: not a bundle mail");
	if (get_param(field, "boundary", boundary, sizeof(boundary)) != 1)
		return fail(err, errlen, HL_EINVAL, "multipart without a usable boundary");
	size_t blen = strlen(boundary);

	while (!closed) {
		size_t ls = pos;
		if (!next_line(body, &pos, &line))
			break;
		int d = delimiter(line, boundary, blen);
		if (d == 0) {
			last_end = (size_t)(line.p - body.p) + line.n;
			continue;
		}
		if (in_part) {
			/* The line break before a delimiter belongs to it. */
			struct span part = { body.p + part_start,
					     ls == part_start ? 0 : last_end - part_start };
			struct span ph, pb;
			if (split_header(part, &ph, &pb) < 0)
				return fail(err, errlen, HL_ETOOBIG, "a part's header over %u bytes",
					    HL_MAIL_MAX_HEADER);
			r = get_field(ph, "Content-Type", field, sizeof(field));
			if (r < 0)
				return fail(err, errlen, HL_EINVAL, "a part with a bad Content-Type");
			if (r == 1 && media_is(field, HL_MAIL_BUNDLE_TYPE)) {
				if (bundle.p)
					return fail(err, errlen, HL_EINVAL, "two bundle attachments");
				r = get_field(ph, "Content-Transfer-Encoding", field, sizeof(field));
				if (r != 1 || strcasecmp(field, "base64") != 0)
					return fail(err, errlen, HL_EINVAL,
						    "the bundle attachment is not base64");
				bundle = pb;
			}
		}
		if (d == 2) {
			closed = true;
			break;
		}
		if (++parts > HL_MAIL_MAX_PARTS)
			return fail(err, errlen, HL_ETOOBIG, "more than %u parts", HL_MAIL_MAX_PARTS);
		in_part = true;
		part_start = pos;
		last_end = pos;
	}
	if (!closed)
		return fail(err, errlen, HL_ETRUNC, "no closing boundary: the mail is cut short");
	if (!bundle.p)
		return fail(err, errlen, HL_EINVAL, "no %s attachment", HL_MAIL_BUNDLE_TYPE);
	return decode_part(bundle, out, outlen, err, errlen);
}
