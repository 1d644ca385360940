/* util/ini.h — hotline's own small incremental INI reader.
 *
 * Why not inih: Debian's inih cannot tell two [Peer] sections apart and cuts
 * values at ';'.  This reader is shaped like wireguard-tools' config.c:
 * hl_ini_init(), then hl_ini_feed() once per line, then hl_ini_finish().  It
 * does no I/O and keeps no copy of values (items point into the line fed),
 * so it can be fuzzed and used on secret files.
 *
 * Syntax, per line (after trimming spaces and tabs at both ends):
 *   - empty: ignored;
 *   - starting with '#' or ';': a comment, ignored (comments are whole lines
 *     only, so a value may contain '#' and ';');
 *   - "[Name]": a section header; Name is [A-Za-z0-9._-]{1,64} and may have
 *     spaces inside the brackets;
 *   - "Key = Value": Key is [A-Za-z0-9._-]{1,64}; the value is everything
 *     after the first '=', trimmed, possibly empty.
 * A line is at most HL_INI_LINE_MAX bytes (a trailing '\r' is dropped) and
 * holds no control characters other than tab (so no NUL).  Keys and section
 * names are case-insensitive, as in WireGuard: compare them with
 * strncasecmp; the reader hands them on as written.
 *
 * Errors: hl_ini_feed() returns HL_EINVAL (or HL_ETOOBIG for a long line)
 * and leaves a message without file or line number in ini->err (the caller
 * prefixes "FILE:LINE: ", ini->line being the line number).  The message may
 * quote part of the line: hl_ini_finish() wipes it. */
#ifndef HL_UTIL_INI_H
#define HL_UTIL_INI_H

#include <stddef.h>

#define HL_INI_LINE_MAX 4096
#define HL_INI_NAME_MAX 64     /* section names and keys */
#define HL_INI_ERR_LEN 256

/* hl_ini_init() flags. */
#define HL_INI_GLOBAL_KEYS 1u  /* accept Key = Value before any section */

enum hl_ini_kind {
	HL_INI_NOTHING,  /* a blank line or a comment */
	HL_INI_SECTION,  /* name = the section name */
	HL_INI_PAIR,     /* name = the key, value = the value */
};

typedef struct hl_ini_item {
	enum hl_ini_kind kind;
	unsigned line;           /* 1-based */
	const char *name;        /* points into the line fed; not NUL-terminated */
	size_t name_len;
	const char *value;       /* HL_INI_PAIR only */
	size_t value_len;
} hl_ini_item;

typedef struct hl_ini {
	unsigned line;           /* the number of the line last fed */
	unsigned flags;
	int in_section;          /* a header has been seen */
	char err[HL_INI_ERR_LEN];
} hl_ini;

void hl_ini_init(hl_ini *ini, unsigned flags);
/* Parses one line (LINE, LEN, without its '\n') into ITEM. */
int hl_ini_feed(hl_ini *ini, const char *line, size_t len, hl_ini_item *item);
/* Ends the input and wipes what the reader holds (its error text may quote
 * the input). */
void hl_ini_finish(hl_ini *ini);

/* Splits BUF (LEN bytes) into lines: sets *LINE and *LINE_LEN to the line
 * starting at *POS (without its '\n') and advances *POS past it.  Returns 0
 * when no line is left.  A last line without '\n' counts. */
int hl_ini_next_line(const char *buf, size_t len, size_t *pos, const char **line,
		     size_t *line_len);

/* True when the item's name equals NAME, ignoring ASCII case. */
int hl_ini_name_is(const hl_ini_item *item, const char *name);

#endif
