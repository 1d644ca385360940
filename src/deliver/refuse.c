/* deliver/refuse.c — refusing the peer's items, for the engine
 * (docs/messages.md section 4): for good, with a tombstone at the item's
 * position (it broke a rule), or for now, with nothing stored and nothing
 * acknowledged (over the peer's quota or the disk reserve, or too many
 * tombstones kept), so that the author offers it again; with what storing
 * an item costs the peer's quota, and a rate-limited log of refusals. */
#include "deliver/engine_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/statvfs.h>

#include "util/log.h"
#include "util/timefmt.h"

/* Refused positions (tombstones) kept per peer: past this, an item that
 * breaks a rule is refused for now (nothing stored, not acknowledged), so a
 * peer cannot make the store keep a row per item it sends
 * (docs/messages.md section 4). */
#define TOMBSTONES_MAX 10000

/* Warnings about what the peer sent that we refuse: rate-limited, so a
 * flood cannot fill the log and push an ALARM line out of a journal. */
void eng_refuse_log(hl_engine *e, const char *fmt, ...)
{
	char line[512];
	if (!hl_ratelimit_allow(&e->refuse_log, (uint64_t)hl_now_ms()))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	hl_warn("peer %s: %s", e->peer_name, line);
}

/* Refused for now: nothing stored, not acknowledged; the author offers it
 * again (REFUSE code 7), and `status` says why. */
void eng_refuse_later(hl_engine *e, uint64_t seq, const uint8_t *hash, const char *text)
{
	eng_refuse_log(e, "item %llu refused for now: %s", (unsigned long long)seq, text);
	eng_queue_refusal(e, seq, hash, HL_REFUSE_QUOTA, text);
	snprintf(e->refusing, sizeof(e->refusing), "item %llu: %.130s", (unsigned long long)seq,
		 text);
	e->stats.refused_later++;
}

int eng_tombstone(hl_engine *e, uint64_t seq, const uint8_t *hash, uint8_t code,
		  const char *text)
{
	hl_store *st = e->env.txn->store;
	int ret = hl_txn_need(e->env.txn);
	if (ret == 0 && !e->tombs_known && (ret = hl_store_count_tombstones(st, e->peer_id,
									   &e->tombs)) == 0)
		e->tombs_known = true;
	if (ret < 0)
		return ret;
	bool over;
	if ((ret = eng_over_limits(e, HL_STORE_ROW_COST, &over)) < 0)
		return ret;
	if (over) {
		eng_refuse_later(e, seq, hash, "over quota or disk reserve");
		return 0;
	}
	if (e->tombs >= TOMBSTONES_MAX) {
		char why[160];
		snprintf(why, sizeof(why), "%.100s (%llu refused items kept already)", text,
			 (unsigned long long)e->tombs);
		eng_refuse_later(e, seq, hash, why);
		return 0;
	}
	if ((ret = hl_store_insert_tombstone(st, e->peer_id, seq, hash, code)) < 0)
		return ret;
	e->tombs++;
	eng_cache_note(e, seq);
	eng_refuse_log(e, "refused item %llu: %s: %s", (unsigned long long)seq,
		       hl_refuse_code_str(code), text);
	eng_queue_refusal(e, seq, hash, code, text);
	e->stats.refused_items++;
	e->need_ack = true;
	return 0;
}

/* ---- the peer's quota and the disk reserve ---- */

/* Free space in the station's file system, asked of the kernel at most
 * every FREE_CACHE_MS (a stream of small messages would otherwise make a
 * statvfs() call each); what was accepted since is subtracted. */
uint64_t eng_free_bytes(hl_engine *e)
{
	int64_t now = hl_now_ms();
	if (!e->free_at || now - e->free_at >= FREE_CACHE_MS || now < e->free_at) {
		struct statvfs sv;
		bool ok = statvfs(e->env.dir, &sv) == 0;
		e->free_cache = ok ? (uint64_t)sv.f_bavail * sv.f_frsize : UINT64_MAX;
		/* DiskReserve = N% scales with the file system */
		e->reserve_cache = hl_disk_reserve(e->env.reserve_bytes, e->env.reserve_pct,
						   ok ? (uint64_t)sv.f_blocks * sv.f_frsize : 0);
		e->free_at = now;
	}
	return e->free_cache;
}

/* The disk reserve in bytes (DiskReserve), as eng_free_bytes() last saw. */
uint64_t eng_reserve_bytes(hl_engine *e)
{
	(void)eng_free_bytes(e);
	return e->reserve_cache;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* What storing a message costs the peer's quota, as the store counts it
 * (store.h, hl_store_peer_usage): the item's row and bytes, the message's
 * row, subject and body, a directory and a file per attachment (at least
 * a block each); saturating, so no declared size can wrap the sum. */
uint64_t eng_message_charge(const struct hl_item_message *m, size_t enc_len,
			    size_t subject_len)
{
	uint64_t c = 2 * HL_STORE_ROW_COST + enc_len + subject_len;
	c = sat_add(c, m->body_size);
	if (m->n_attachments)
		c = sat_add(c, HL_STORE_BLOCK_COST);
	for (unsigned i = 0; i < m->n_attachments; i++) {
		uint64_t sz = m->att[i].size, blocks = sz / HL_STORE_BLOCK_COST +
						       (sz % HL_STORE_BLOCK_COST != 0);
		c = sat_add(c, HL_STORE_ROW_COST);
		c = sat_add(c, (blocks ? blocks : 1) * HL_STORE_BLOCK_COST);
	}
	return c;
}

/* Would storing CHARGE more bytes for the peer pass its quota, or take
 * the disk's free space below the reserve?  Both are "for now": the
 * author offers the item again later. */
int eng_over_limits(hl_engine *e, uint64_t charge, bool *over)
{
	uint64_t usage = 0;
	int ret;
	*over = false;
	if (e->env.quota_bytes) {
		if ((ret = hl_store_peer_usage(e->env.txn->store, e->peer_id, &usage)) < 0)
			return ret;
		*over = sat_add(usage, charge) > e->env.quota_bytes;
	}
	uint64_t reserve = eng_reserve_bytes(e);
	if (reserve && eng_free_bytes(e) < sat_add(reserve, charge))
		*over = true;
	return 0;
}
