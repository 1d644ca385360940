/* util/tzif.c — TZif files and POSIX TZ rules (tzif.h).
 *
 * The parsers take (buf, len), cap every count and do no I/O (fuzzed by
 * fuzz/fuzz_tzif.c); hl_tz_load is the one function that reads a file. */
#include "util/tzif.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

#define HOUR 3600
#define DAY 86400
#define RULE_TIME_MAX (167 * HOUR)       /* RFC 8536 3.3.1 */
#define OFFSET_MAX (25 * HOUR)           /* |utoff| of any zone, with room */

/* ---- calendar ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
	return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

int64_t hl_days_from_civil(int64_t y, int64_t m, int64_t d)
{
	/* Normalise the month, then Howard Hinnant's days_from_civil. */
	y += floor_div(m - 1, 12);
	m = m - 1 - floor_div(m - 1, 12) * 12 + 1;
	y -= m <= 2;
	int64_t era = floor_div(y, 400);
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468 + (d - 1);
}

void hl_civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int64_t era = floor_div(z, 146097);
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	*d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	*m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);
	*y = yoe + era * 400 + (*m <= 2);
}

static bool leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* ---- POSIX TZ rules ---- */

struct rp {
	const char *s;
	size_t len, off;
};

static int peek(const struct rp *p)
{
	return p->off < p->len ? (unsigned char)p->s[p->off] : -1;
}

static bool is_digit(int c)
{
	return c >= '0' && c <= '9';
}

static bool is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* A number of at most 3 digits, within [lo, hi]. */
static int num(struct rp *p, int lo, int hi, int *out)
{
	int v = 0, n = 0;
	while (is_digit(peek(p)) && n < 3) {
		v = v * 10 + (peek(p) - '0');
		p->off++;
		n++;
	}
	if (n == 0 || is_digit(peek(p)) || v < lo || v > hi)
		return HL_EINVAL;
	*out = v;
	return 0;
}

/* [+-]hh[:mm[:ss]], hours up to MAXH: seconds. */
static int hms(struct rp *p, int maxh, int32_t *out)
{
	int sign = 1, h, m = 0, s = 0;
	if (peek(p) == '+' || peek(p) == '-')
		sign = p->s[p->off++] == '-' ? -1 : 1;
	if (num(p, 0, maxh, &h) < 0)
		return HL_EINVAL;
	if (peek(p) == ':') {
		p->off++;
		if (num(p, 0, 59, &m) < 0)
			return HL_EINVAL;
		if (peek(p) == ':') {
			p->off++;
			if (num(p, 0, 59, &s) < 0)
				return HL_EINVAL;
		}
	}
	*out = sign * (h * HOUR + m * 60 + s);
	return 0;
}

/* A zone abbreviation: 3 or more letters, or <...> of letters, digits, + and -. */
static int abbr(struct rp *p)
{
	size_t n = 0;
	if (peek(p) == '<') {
		p->off++;
		while (peek(p) >= 0 && peek(p) != '>') {
			int c = peek(p);
			if (!is_alpha(c) && !is_digit(c) && c != '+' && c != '-')
				return HL_EINVAL;
			p->off++;
			n++;
		}
		if (peek(p) != '>')
			return HL_EINVAL;
		p->off++;
	} else {
		while (is_alpha(peek(p))) {
			p->off++;
			n++;
		}
	}
	return n >= 3 ? 0 : HL_EINVAL;
}

static int rule_date(struct rp *p, struct hl_tz_date *d)
{
	int v, w, wd;
	memset(d, 0, sizeof(*d));
	if (peek(p) == 'J') {
		p->off++;
		d->form = 'J';
		if (num(p, 1, 365, &v) < 0)
			return HL_EINVAL;
		d->day = (uint16_t)v;
	} else if (peek(p) == 'M') {
		p->off++;
		d->form = 'M';
		if (num(p, 1, 12, &v) < 0 || peek(p) != '.')
			return HL_EINVAL;
		p->off++;
		if (num(p, 1, 5, &w) < 0 || peek(p) != '.')
			return HL_EINVAL;
		p->off++;
		if (num(p, 0, 6, &wd) < 0)
			return HL_EINVAL;
		d->mon = (uint8_t)v;
		d->week = (uint8_t)w;
		d->wday = (uint8_t)wd;
	} else {
		d->form = 'D';
		if (num(p, 0, 365, &v) < 0)
			return HL_EINVAL;
		d->day = (uint16_t)v;
	}
	d->time = 2 * HOUR;
	if (peek(p) == '/') {
		p->off++;
		return hms(p, 167, &d->time);
	}
	return 0;
}

int hl_tz_rule_parse(const char *s, size_t len, struct hl_tz_rule *r)
{
	struct rp p = { .s = s, .len = len };
	int32_t off;
	memset(r, 0, sizeof(*r));
	if (len > HL_TZ_RULE_MAX || abbr(&p) < 0 || hms(&p, 24, &off) < 0)
		return HL_EINVAL;
	/* POSIX offsets are west of Greenwich; ours east. */
	r->std_off = -off;
	r->dst_off = r->std_off;
	if (p.off == len)
		return 0;
	if (abbr(&p) < 0)
		return HL_EINVAL;
	r->has_dst = true;
	r->dst_off = r->std_off + HOUR;
	if (peek(&p) != ',' && p.off < len) {
		if (hms(&p, 24, &off) < 0)
			return HL_EINVAL;
		r->dst_off = -off;
	}
	/* Without dates the rule is the United States' (POSIX leaves it to
	 * the implementation; tzcode does this). */
	if (p.off == len) {
		r->start = (struct hl_tz_date){ .form = 'M', .mon = 3, .week = 2, .time = 2 * HOUR };
		r->end = (struct hl_tz_date){ .form = 'M', .mon = 11, .week = 1, .time = 2 * HOUR };
		return 0;
	}
	if (peek(&p) != ',')
		return HL_EINVAL;
	p.off++;
	if (rule_date(&p, &r->start) < 0 || peek(&p) != ',')
		return HL_EINVAL;
	p.off++;
	if (rule_date(&p, &r->end) < 0 || p.off != len)
		return HL_EINVAL;
	return 0;
}

/* Local midnight (as seconds since the epoch on a local clock) of date D
 * in year Y. */
static int64_t date_day(const struct hl_tz_date *d, int64_t y)
{
	int64_t jan1 = hl_days_from_civil(y, 1, 1);
	switch (d->form) {
	case 'J':
		return jan1 + d->day - 1 + (leap(y) && d->day >= 60);
	case 'D':
		return jan1 + d->day;
	default: {
		int64_t first = hl_days_from_civil(y, d->mon, 1);
		/* 1970-01-01 was a Thursday (4). */
		int64_t wd1 = ((first % 7) + 7 + 4) % 7;
		int64_t day = first + (d->wday - wd1 + 7) % 7 + (int64_t)(d->week - 1) * 7;
		int64_t next = hl_days_from_civil(y, d->mon + 1, 1);
		while (day >= next)
			day -= 7;
		return day;
	}
	}
}

static bool rule_dst(const struct hl_tz_rule *r, int64_t t)
{
	if (!r->has_dst)
		return false;
	int64_t y;
	unsigned m, d;
	hl_civil_from_days(floor_div(t + r->std_off, DAY), &y, &m, &d);
	/* The year's DST starts in standard time and ends in DST; around New
	 * Year either year's period may hold T. */
	for (int64_t yy = y - 1; yy <= y + 1; yy++) {
		int64_t start = date_day(&r->start, yy) * DAY + r->start.time - r->std_off;
		int64_t end = date_day(&r->end, yy) * DAY + r->end.time - r->dst_off;
		if (start < end) {
			if (t >= start && t < end)
				return true;
		} else if (yy == y) {
			/* southern hemisphere: DST spans New Year */
			return !(t >= end && t < start);
		}
	}
	return false;
}

/* ---- TZif ---- */

struct tzif_head {
	uint8_t version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int read_head(struct hl_rbuf *r, struct tzif_head *h)
{
	const uint8_t *magic = hl_r_take(r, 4);
	if (!magic || memcmp(magic, "TZif", 4) != 0)
		return HL_EINVAL;
	h->version = hl_r_u8(r);
	(void)hl_r_take(r, 15);
	h->isutcnt = hl_r_u32(r);
	h->isstdcnt = hl_r_u32(r);
	h->leapcnt = hl_r_u32(r);
	h->timecnt = hl_r_u32(r);
	h->typecnt = hl_r_u32(r);
	h->charcnt = hl_r_u32(r);
	if (r->err || h->typecnt == 0 || h->typecnt > HL_TZIF_MAX_TYPES ||
	    h->timecnt > HL_TZIF_MAX_TIMES || h->charcnt == 0 || h->charcnt > 65536 ||
	    h->leapcnt > 65536 || (h->isutcnt && h->isutcnt != h->typecnt) ||
	    (h->isstdcnt && h->isstdcnt != h->typecnt))
		return HL_EINVAL;
	return 0;
}

/* One data block; TSIZE is 4 (version 1) or 8. */
static int read_data(struct hl_rbuf *r, const struct tzif_head *h, unsigned tsize,
		     struct hl_tz *tz)
{
	tz->ntimes = h->timecnt;
	tz->ntypes = h->typecnt;
	for (uint32_t i = 0; i < h->timecnt; i++) {
		tz->times[i] = tsize == 8 ? (int64_t)hl_r_u64(r) : (int64_t)(int32_t)hl_r_u32(r);
		if (i > 0 && tz->times[i] <= tz->times[i - 1])
			return HL_EINVAL;
	}
	for (uint32_t i = 0; i < h->timecnt; i++)
		if ((tz->idx[i] = hl_r_u8(r)) >= h->typecnt)
			return HL_EINVAL;
	for (uint32_t i = 0; i < h->typecnt; i++) {
		tz->utoff[i] = (int32_t)hl_r_u32(r);
		tz->isdst[i] = hl_r_u8(r);
		uint8_t abbrind = hl_r_u8(r);
		if (tz->utoff[i] < -OFFSET_MAX || tz->utoff[i] > OFFSET_MAX || tz->isdst[i] > 1 ||
		    abbrind >= h->charcnt)
			return HL_EINVAL;
	}
	size_t rest = (size_t)h->charcnt + (size_t)h->leapcnt * (tsize + 4) + h->isstdcnt +
		      h->isutcnt;
	(void)hl_r_take(r, rest);
	return r->err ? HL_EINVAL : 0;
}

int hl_tzif_parse(const uint8_t *buf, size_t len, struct hl_tz *tz)
{
	struct hl_rbuf r;
	struct tzif_head h;
	memset(tz, 0, sizeof(*tz));
	hl_rbuf_init(&r, buf, len);
	if (len > HL_TZIF_MAX_BYTES || read_head(&r, &h) < 0 || read_data(&r, &h, 4, tz) < 0)
		return HL_EINVAL;
	if (h.version == 0)
		return 0;
	/* Version 2 and later: the same again with 64-bit times, then the
	 * footer, "\n" RULE "\n" (the rule may be empty). */
	if (read_head(&r, &h) < 0 || read_data(&r, &h, 8, tz) < 0)
		return HL_EINVAL;
	const uint8_t *nl = hl_r_take(&r, 1);
	if (!nl || *nl != '\n')
		return HL_EINVAL;
	size_t left = hl_r_left(&r);
	const uint8_t *rest = hl_r_take(&r, left);
	const uint8_t *end = rest ? memchr(rest, '\n', left) : NULL;
	if (!end)
		return HL_EINVAL;
	size_t n = (size_t)(end - rest);
	if (n == 0)
		return 0;
	if (hl_tz_rule_parse((const char *)rest, n, &tz->rule) < 0)
		return HL_EINVAL;
	tz->has_rule = true;
	return 0;
}

int hl_tz_load(const char *zone, struct hl_tz **out)
{
	const char *base = getenv("TZDIR");
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	if (!base || !*base)
		base = "/usr/share/zoneinfo";
	char *path = hl_path_join(base, zone);
	int ret = hl_read_file(path, HL_TZIF_MAX_BYTES, &text, &len);
	free(path);
	if (ret == -ENOENT)
		return HL_ENOTFOUND;
	if (ret < 0)
		return ret;
	struct hl_tz *tz = xmalloc(sizeof(*tz));
	ret = hl_tzif_parse((const uint8_t *)text, len, tz);
	free(text);
	if (ret < 0) {
		free(tz);
		return ret;
	}
	*out = tz;
	return 0;
}

/* ---- offsets ---- */

int32_t hl_tz_offset(const struct hl_tz *tz, int64_t t, bool *isdst)
{
	bool dst;
	int32_t off;
	if (tz->has_rule && (tz->ntimes == 0 || t >= tz->times[tz->ntimes - 1])) {
		dst = rule_dst(&tz->rule, t);
		off = dst ? tz->rule.dst_off : tz->rule.std_off;
	} else if (tz->ntimes == 0 || t < tz->times[0]) {
		/* Before the first transition: type 0 (RFC 8536 3.2). */
		dst = tz->isdst[0];
		off = tz->utoff[0];
	} else {
		uint32_t lo = 0, hi = tz->ntimes - 1;   /* times[lo] <= t */
		while (lo < hi) {
			uint32_t mid = lo + (hi - lo + 1) / 2;
			if (tz->times[mid] <= t)
				lo = mid;
			else
				hi = mid - 1;
		}
		dst = tz->isdst[tz->idx[lo]];
		off = tz->utoff[tz->idx[lo]];
	}
	if (isdst)
		*isdst = dst;
	return off;
}

int64_t hl_tz_local_to_utc(const struct hl_tz *tz, int64_t local)
{
	/* The offsets in effect within a day either side hold every
	 * candidate: no zone changes its offset twice in a day. */
	int32_t before = hl_tz_offset(tz, local - DAY, NULL);
	int32_t after = hl_tz_offset(tz, local + DAY, NULL);
	int32_t cand[4] = { before, after, 0, 0 };
	cand[2] = hl_tz_offset(tz, local - before, NULL);
	cand[3] = hl_tz_offset(tz, local - after, NULL);
	int64_t best = 0;
	bool found = false;
	for (int i = 0; i < 4; i++) {
		int64_t t = local - cand[i];
		if (hl_tz_offset(tz, t, NULL) == cand[i] && (!found || t < best)) {
			best = t;
			found = true;
		}
	}
	if (found)
		return best;
	/* Skipped: read with the offset in effect before the change (a day
	 * earlier), which puts it the gap's length after the change. */
	return local - before;
}
