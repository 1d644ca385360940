/* util/bytes.h — bounds-checked big-endian readers and writers over
 * (buf, len).  Errors are sticky: after the first overrun every call is a
 * no-op (reads yield zeros) and ->err stays set, so a decoder can read a
 * whole structure and check once at the end. */
#ifndef HL_UTIL_BYTES_H
#define HL_UTIL_BYTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct hl_wbuf {
	uint8_t *p;
	size_t cap;
	size_t len;
	bool err;
};

struct hl_rbuf {
	const uint8_t *p;
	size_t len;
	size_t off;
	bool err;
};

static inline void hl_wbuf_init(struct hl_wbuf *w, uint8_t *p, size_t cap)
{
	w->p = p;
	w->cap = cap;
	w->len = 0;
	w->err = false;
}

static inline uint8_t *hl_w_reserve(struct hl_wbuf *w, size_t n)
{
	if (w->err || n > w->cap - w->len) {
		w->err = true;
		return NULL;
	}
	uint8_t *q = w->p + w->len;
	w->len += n;
	return q;
}

static inline void hl_w_bytes(struct hl_wbuf *w, const void *src, size_t n)
{
	uint8_t *q = hl_w_reserve(w, n);
	if (q && n)
		memcpy(q, src, n);
}

static inline void hl_w_u8(struct hl_wbuf *w, uint8_t v)
{
	hl_w_bytes(w, &v, 1);
}

static inline void hl_w_u16(struct hl_wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	hl_w_bytes(w, b, 2);
}

static inline void hl_w_u32(struct hl_wbuf *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	hl_w_bytes(w, b, 4);
}

static inline void hl_w_u64(struct hl_wbuf *w, uint64_t v)
{
	hl_w_u32(w, (uint32_t)(v >> 32));
	hl_w_u32(w, (uint32_t)v);
}

static inline void hl_rbuf_init(struct hl_rbuf *r, const uint8_t *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->err = false;
}

static inline size_t hl_r_left(const struct hl_rbuf *r)
{
	return r->err ? 0 : r->len - r->off;
}

/* Borrows N bytes from the input; NULL (and err) on overrun. */
static inline const uint8_t *hl_r_take(struct hl_rbuf *r, size_t n)
{
	if (r->err || n > r->len - r->off) {
		r->err = true;
		return NULL;
	}
	const uint8_t *q = r->p + r->off;
	r->off += n;
	return q;
}

static inline void hl_r_bytes(struct hl_rbuf *r, void *dst, size_t n)
{
	const uint8_t *q = hl_r_take(r, n);
	if (q)
		memcpy(dst, q, n);
	else
		memset(dst, 0, n);
}

static inline uint8_t hl_r_u8(struct hl_rbuf *r)
{
	const uint8_t *q = hl_r_take(r, 1);
	return q ? q[0] : 0;
}

static inline uint16_t hl_r_u16(struct hl_rbuf *r)
{
	const uint8_t *q = hl_r_take(r, 2);
	return q ? (uint16_t)((q[0] << 8) | q[1]) : 0;
}

static inline uint32_t hl_r_u32(struct hl_rbuf *r)
{
	const uint8_t *q = hl_r_take(r, 4);
	return q ? ((uint32_t)q[0] << 24) | ((uint32_t)q[1] << 16) |
			   ((uint32_t)q[2] << 8) | q[3]
		 : 0;
}

static inline uint64_t hl_r_u64(struct hl_rbuf *r)
{
	uint64_t hi = hl_r_u32(r);
	return (hi << 32) | hl_r_u32(r);
}

#endif
