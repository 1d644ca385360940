/* daemon/spawn_proto.c — the spawner's messages (spawn_proto.h has the
 * format): encoders and checking decoders, pure. */
#include "daemon/spawn_proto.h"

#include <signal.h>
#include <string.h>

#include "util/bytes.h"
#include "util/err.h"

#define REPLY_TAG 'R'
#define EXIT_TAG 'E'

/* The variables an alarm carries (daemon/alarm.c); HOTLINE_DIR and
 * HOTLINE_STATION are accepted and replaced by the spawner's own. */
static const char *const alarm_keys[] = {
	"HOTLINE_ALARM", "HOTLINE_PEER", "HOTLINE_STATION", "HOTLINE_DIR", "HOTLINE_AT",
	"HOTLINE_DETAIL", "HOTLINE_COUNT", "HOTLINE_CHECK_ID", "HOTLINE_CHECK_MODE",
	"HOTLINE_SEQ", "HOTLINE_CALL_ID",
};

bool hl_spawn_env_ok(const char *kv, size_t len)
{
	const char *eq = memchr(kv, '=', len);
	if (!eq || len > HL_SPAWN_ENV_LEN)
		return false;
	bool known = false;
	for (size_t i = 0; i < sizeof(alarm_keys) / sizeof(alarm_keys[0]); i++)
		known |= strlen(alarm_keys[i]) == (size_t)(eq - kv) &&
			 memcmp(alarm_keys[i], kv, (size_t)(eq - kv)) == 0;
	for (const char *p = eq + 1; known && p < kv + len; p++)
		known = (unsigned char)*p >= 0x20 && *p != 0x7f;
	return known;
}

static int finish_w(const struct hl_wbuf *w)
{
	return w->err ? HL_ETOOBIG : (int)w->len;
}

int hl_spawn_request_encode(const struct hl_spawn_request *r, uint8_t *buf, size_t cap)
{
	struct hl_wbuf w;
	hl_wbuf_init(&w, buf, cap < HL_SPAWN_MSG_MAX ? cap : HL_SPAWN_MSG_MAX);
	hl_w_u8(&w, r->op);
	if (r->op == HL_SPAWN_OP_SPAWN) {
		hl_w_u8(&w, r->kind);
		hl_w_u32(&w, r->id);
		hl_w_u8(&w, r->flags);
		if (r->kind == HL_SPAWN_MAIL) {
			size_t n = strlen(r->peer);
			hl_w_u8(&w, (uint8_t)n);
			hl_w_bytes(&w, r->peer, n);
			hl_w_u64(&w, r->after);
		} else if (r->kind == HL_SPAWN_ALARM) {
			if (r->nenv > HL_SPAWN_ENV_MAX)
				return HL_ETOOBIG;
			hl_w_u8(&w, r->nenv);
			for (unsigned i = 0; i < r->nenv; i++) {
				size_t n = strlen(r->env[i]);
				hl_w_u16(&w, (uint16_t)n);
				hl_w_bytes(&w, r->env[i], n);
			}
		}
	} else if (r->op == HL_SPAWN_OP_KILL) {
		hl_w_u32(&w, r->id);
		hl_w_u8(&w, r->sig);
	}
	return finish_w(&w);
}

static int decode_spawn(struct hl_rbuf *rb, struct hl_spawn_request *r)
{
	r->kind = hl_r_u8(rb);
	r->id = hl_r_u32(rb);
	r->flags = hl_r_u8(rb);
	if (rb->err)
		return HL_ETRUNC;
	if (r->kind < HL_SPAWN_PICKUP || r->kind > HL_SPAWN_ALARM ||
	    (r->flags & ~HL_SPAWN_FLAGS_ALL) ||
	    ((r->flags & HL_SPAWN_FLAG_ERR_TO_OUT) && !(r->flags & HL_SPAWN_FLAG_STDOUT)))
		return HL_EINVAL;
	if (r->kind == HL_SPAWN_MAIL) {
		uint8_t n = hl_r_u8(rb);
		const uint8_t *p = hl_r_take(rb, n);
		r->after = hl_r_u64(rb);
		if (rb->err)
			return HL_ETRUNC;
		if (n > HL_NAME_MAX)
			return HL_ETOOBIG;
		memcpy(r->peer, p, n);
		r->peer[n] = '\0';
		if (strlen(r->peer) != n || !hl_name_valid(r->peer))
			return HL_EINVAL;
	} else if (r->kind == HL_SPAWN_ALARM) {
		r->nenv = hl_r_u8(rb);
		if (r->nenv > HL_SPAWN_ENV_MAX)
			return HL_ETOOBIG;
		for (unsigned i = 0; i < r->nenv; i++) {
			uint16_t n = hl_r_u16(rb);
			const uint8_t *p = hl_r_take(rb, n);
			if (rb->err)
				return HL_ETRUNC;
			if (n > HL_SPAWN_ENV_LEN)
				return HL_ETOOBIG;
			if (memchr(p, '\0', n) || !hl_spawn_env_ok((const char *)p, n))
				return HL_EINVAL;
			memcpy(r->env[i], p, n);
			r->env[i][n] = '\0';
		}
	}
	return 0;
}

int hl_spawn_request_decode(const uint8_t *buf, size_t len, struct hl_spawn_request *r)
{
	struct hl_rbuf rb;
	int ret = 0;
	memset(r, 0, sizeof(*r));
	if (len > HL_SPAWN_MSG_MAX)
		return HL_ETOOBIG;
	hl_rbuf_init(&rb, buf, len);
	r->op = hl_r_u8(&rb);
	switch (r->op) {
	case HL_SPAWN_OP_SPAWN:
		ret = decode_spawn(&rb, r);
		break;
	case HL_SPAWN_OP_KILL:
		r->id = hl_r_u32(&rb);
		r->sig = hl_r_u8(&rb);
		if (!rb.err && r->sig != SIGTERM && r->sig != SIGKILL)
			ret = HL_EINVAL;
		break;
	case HL_SPAWN_OP_CONF:
	case HL_SPAWN_OP_UNLINK_CONTROL:
		break;
	default:
		ret = rb.err ? HL_ETRUNC : HL_EINVAL;
	}
	if (ret == 0 && rb.err)
		ret = HL_ETRUNC;
	if (ret == 0 && hl_r_left(&rb))
		ret = HL_EINVAL;
	return ret;
}

int hl_spawn_reply_encode(const struct hl_spawn_reply *r, uint8_t *buf, size_t cap)
{
	struct hl_wbuf w;
	size_t n = strnlen(r->text, HL_SPAWN_TEXT_MAX);
	hl_wbuf_init(&w, buf, cap);
	hl_w_u8(&w, REPLY_TAG);
	hl_w_u32(&w, (uint32_t)r->status);
	hl_w_u32(&w, r->pid);
	hl_w_u16(&w, (uint16_t)n);
	hl_w_bytes(&w, r->text, n);
	return finish_w(&w);
}

int hl_spawn_reply_decode(const uint8_t *buf, size_t len, struct hl_spawn_reply *r)
{
	struct hl_rbuf rb;
	memset(r, 0, sizeof(*r));
	hl_rbuf_init(&rb, buf, len);
	uint8_t tag = hl_r_u8(&rb);
	r->status = (int32_t)hl_r_u32(&rb);
	r->pid = hl_r_u32(&rb);
	uint16_t n = hl_r_u16(&rb);
	const uint8_t *p = hl_r_take(&rb, n);
	if (rb.err)
		return HL_ETRUNC;
	if (tag != REPLY_TAG || r->status > 0 || hl_r_left(&rb))
		return HL_EINVAL;
	if (n > HL_SPAWN_TEXT_MAX)
		return HL_ETOOBIG;
	memcpy(r->text, p, n);
	r->text[n] = '\0';
	return strlen(r->text) == n ? 0 : HL_EINVAL;
}

int hl_spawn_exit_encode(const struct hl_spawn_exit *e, uint8_t *buf, size_t cap)
{
	struct hl_wbuf w;
	hl_wbuf_init(&w, buf, cap);
	hl_w_u8(&w, EXIT_TAG);
	hl_w_u32(&w, e->id);
	hl_w_u64(&w, (uint64_t)e->status);
	hl_w_u32(&w, (uint32_t)e->signal);
	return finish_w(&w);
}

int hl_spawn_exit_decode(const uint8_t *buf, size_t len, struct hl_spawn_exit *e)
{
	struct hl_rbuf rb;
	memset(e, 0, sizeof(*e));
	hl_rbuf_init(&rb, buf, len);
	uint8_t tag = hl_r_u8(&rb);
	e->id = hl_r_u32(&rb);
	e->status = (int64_t)hl_r_u64(&rb);
	e->signal = (int32_t)hl_r_u32(&rb);
	if (rb.err)
		return HL_ETRUNC;
	if (tag != EXIT_TAG || hl_r_left(&rb) || e->signal < 0 || e->signal > 64)
		return HL_EINVAL;
	return 0;
}
