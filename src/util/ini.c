/* util/ini.c — the incremental INI reader (syntax and contract in ini.h). */
#include "util/ini.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "util/text.h"

/* How much of an offending line an error message quotes. */
#define QUOTE_MAX 64

static int is_blank(char c)
{
	return c == ' ' || c == '\t';
}

static int is_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static int names_ok(const char *s, size_t len)
{
	if (len == 0 || len > HL_INI_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!is_name_char(s[i]))
			return 0;
	return 1;
}

/* Writes MSG and a sanitized, shortened quote of S into ini->err. */
static int fail(hl_ini *ini, int code, const char *msg, const char *s, size_t len)
{
	char q[QUOTE_MAX * 3 + 4];
	size_t n = len > QUOTE_MAX ? QUOTE_MAX : len;
	hl_sanitize(s, n, q, sizeof(q), 0);
	snprintf(ini->err, sizeof(ini->err), "%s '%s%s'", msg, q, n < len ? "..." : "");
	return code;
}

void hl_ini_init(hl_ini *ini, unsigned flags)
{
	memset(ini, 0, sizeof(*ini));
	ini->flags = flags;
}

void hl_ini_finish(hl_ini *ini)
{
	explicit_bzero(ini->err, sizeof(ini->err));
}

int hl_ini_feed(hl_ini *ini, const char *line, size_t len, hl_ini_item *item)
{
	memset(item, 0, sizeof(*item));
	ini->err[0] = '\0';
	item->line = ++ini->line;
	item->kind = HL_INI_NOTHING;

	if (len > 0 && line[len - 1] == '\r')
		len--;
	if (len > HL_INI_LINE_MAX) {
		snprintf(ini->err, sizeof(ini->err), "line longer than %d bytes",
			 HL_INI_LINE_MAX);
		return HL_ETOOBIG;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			snprintf(ini->err, sizeof(ini->err),
				 "control character 0x%02x in column %zu", c, i + 1);
			return HL_EINVAL;
		}
	}

	const char *s = line, *end = line + len;
	while (s < end && is_blank(*s))
		s++;
	while (end > s && is_blank(end[-1]))
		end--;
	if (s == end || *s == '#' || *s == ';')
		return 0;

	if (*s == '[') {
		if (end[-1] != ']' || end - s < 2)
			return fail(ini, HL_EINVAL, "a section header must be '[Name]', not",
				    s, (size_t)(end - s));
		const char *n = s + 1, *ne = end - 1;
		while (n < ne && is_blank(*n))
			n++;
		while (ne > n && is_blank(ne[-1]))
			ne--;
		if (!names_ok(n, (size_t)(ne - n)))
			return fail(ini, HL_EINVAL, "bad section name", s, (size_t)(end - s));
		item->kind = HL_INI_SECTION;
		item->name = n;
		item->name_len = (size_t)(ne - n);
		ini->in_section = 1;
		return 0;
	}

	const char *eq = memchr(s, '=', (size_t)(end - s));
	if (!eq)
		return fail(ini, HL_EINVAL, "expected 'Key = Value' or '[Section]', not",
			    s, (size_t)(end - s));
	const char *ke = eq;
	while (ke > s && is_blank(ke[-1]))
		ke--;
	if (!names_ok(s, (size_t)(ke - s)))
		return fail(ini, HL_EINVAL, "bad key", s, (size_t)(ke - s));
	if (!ini->in_section && !(ini->flags & HL_INI_GLOBAL_KEYS))
		return fail(ini, HL_EINVAL, "a key outside any section:", s, (size_t)(ke - s));
	const char *v = eq + 1;
	while (v < end && is_blank(*v))
		v++;
	item->kind = HL_INI_PAIR;
	item->name = s;
	item->name_len = (size_t)(ke - s);
	item->value = v;
	item->value_len = (size_t)(end - v);
	return 0;
}

int hl_ini_next_line(const char *buf, size_t len, size_t *pos, const char **line,
		     size_t *line_len)
{
	if (*pos >= len)
		return 0;
	const char *start = buf + *pos;
	const char *nl = memchr(start, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - start) : len - *pos;
	*line = start;
	*line_len = n;
	*pos += n + (nl ? 1 : 0);
	return 1;
}

int hl_ini_name_is(const hl_ini_item *item, const char *name)
{
	size_t n = strlen(name);
	return item->name_len == n && strncasecmp(item->name, name, n) == 0;
}
