/* deliver/staging.c — the engine's side of staging (deliver/stage.h owns
 * the staged files; docs/messages.md "Staging"), both ways, in one place:
 * the author sends STAGE packets of parts still being copied and holds
 * their CHUNKs until the peer's STAGED; the receiver takes STAGE data
 * within the peer's quota and adopts it as a part's file when the ITEM
 * comes. */
#include "deliver/engine_int.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chain/queue.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/timefmt.h"

/* How long the author waits for STAGED before sending a staged part's
 * CHUNKs from where it stands (the peer may have forgotten the staging). */
#define STAGED_WAIT_MS 5000

void eng_stage_item_sent(hl_engine *e, struct out_entry *x, const uint8_t id[static 16],
			 uint64_t now)
{
	uint64_t mask = hl_stage_out_take(e->stage, id);
	if (!mask)
		return;
	x->stage_wait = mask;
	x->stage_wait_until = now + STAGED_WAIT_MS;
}

bool eng_stage_waiting(const struct out_entry *x, uint64_t now)
{
	return x->item_sent && x->stage_wait && now < x->stage_wait_until;
}

/* Sends one STAGE packet of a part whose precedence is above ABOVE: 1 when
 * one went, 0 when none had bytes (or CREDIT holds them back: the peer's
 * next CREDIT pumps again), negative when the session took nothing.  The only
 * place STAGE packets are sent. */
int eng_stage_pump(hl_engine *e, int above, uint64_t now)
{
	size_t len;
	unsigned token;
	/* CREDIT: STAGE data counts as CHUNK data does (at most a packet's
	 * worth is assumed, so the check comes before the read) */
	size_t max = eng_data_max(e, HL_PACKET_BODY_MAX - HL_STAGE_HDR_LEN);
	if (eng_flow_holds(e, max))
		return 0;
	int ret = hl_stage_out_next(e->stage, above, max, e->rec, &len, &token, now);
	if (ret < 0)
		hl_warn("peer %s: staging stopped: %s", e->peer_name, hl_strerror(ret));
	if (ret <= 0)
		return 0;
	if ((ret = eng_send_pkt(e, HL_PKT_STAGE, e->rec, len, now)) < 0)
		return ret;
	hl_stage_out_sent(e->stage, token, len - HL_STAGE_HDR_LEN);
	eng_flow_sent(e, len - HL_STAGE_HDR_LEN, now);
	return 1;
}

/* The STAGED packets the last ITEMs called for: after the commit that
 * stored those ITEMs (never inside the transaction, like ACKs). */
void eng_stage_send_staged(hl_engine *e, uint64_t now)
{
	const struct hl_pkt_staged *r;
	uint8_t buf[HL_STAGED_LEN];
	if (e->env.txn->open)
		return;
	while ((r = hl_stage_staged_peek(e->stage)) != NULL) {
		hl_pkt_staged_encode(r, buf);
		if (eng_send_pkt(e, HL_PKT_STAGED, buf, sizeof(buf), now) < 0)
			return;
		hl_stage_staged_pop(e->stage);
	}
}

/* A message just stored (M, in memory): its staged parts become its
 * parts' files, their hash state going on where the staging left it. */
int eng_stage_adopt(hl_engine *e, struct in_msg *m)
{
	for (unsigned i = 1; i < NPARTS_MAX; i++) {
		struct in_part *p = &m->parts[i];
		uint64_t done;
		char *staged = NULL;
		if (!p->present || p->size == 0 ||
		    hl_stage_in_take(e->stage, m->id, i, p->size, &p->hs, &done, &staged) != 1)
			continue;
		char *from = hl_path_join(e->env.dir, staged), *to = eng_part_tmp_path(e, p);
		int ret = eng_make_part_dir(e, p->path);
		if (ret == 0 && rename(from, to) < 0)
			ret = -errno;
		if (ret == 0) {
			p->done = done;
			p->hashed = true;
			hl_info("peer %s: message %llu part %u: %llu staged bytes adopted", e->peer_name,
				(unsigned long long)m->seq, i, (unsigned long long)done);
		} else {
			/* received again from 0: the hash state starts over */
			unlink(from);
			hl_parthash_doc(&p->hs);
			hl_warn("peer %s: cannot adopt %s: %s", e->peer_name, staged,
				hl_strerror(ret));
		}
		free(from);
		free(to);
		free(staged);
	}
	return 0;
}

int eng_on_stage(hl_engine *e, const uint8_t *body, size_t len)
{
	struct hl_pkt_stage r;
	int ret = hl_pkt_stage_decode(body, len, &r);
	if (ret < 0) {
		eng_set_error(e, "malformed STAGE record");
		return ret;
	}
	if (!e->session)
		return 0; /* a bundle: nothing is staged from one */
	uint64_t max_att = e->env.max_attachment ? e->env.max_attachment
						 : HL_DEFAULT_MAX_ATTACHMENT;
	uint64_t staged = hl_stage_in_bytes(e->stage), room = UINT64_MAX;
	if (e->env.quota_bytes) {
		/* asked of the store at most every FREE_CACHE_MS, not per packet */
		int64_t t = hl_now_ms();
		if (!e->stage_usage_at || t - e->stage_usage_at >= FREE_CACHE_MS || t < e->stage_usage_at) {
			if ((ret = hl_store_peer_usage(e->env.txn->store, e->peer_id,
						       &e->stage_usage)) < 0)
				return ret;
			e->stage_usage_at = t;
		}
		uint64_t usage = e->stage_usage;
		room = e->env.quota_bytes > usage + staged ? e->env.quota_bytes - usage - staged : 0;
	}
	uint64_t reserve = eng_reserve_bytes(e);
	if (reserve) {
		uint64_t fb = eng_free_bytes(e);
		uint64_t r2 = fb > reserve ? fb - reserve : 0;
		room = r2 < room ? r2 : room;
	}
	if (room == 0)
		snprintf(e->refusing, sizeof(e->refusing),
			 "staged data dropped: over the peer's quota or the disk reserve");
	size_t pushed = 0;
	ret = hl_stage_in_data(e->stage, &r, room, max_att, &pushed);
	if (e->env.wake)
		e->pushed_now = pushed; /* the worker counts it taken */
	return ret;
}

int hl_engine_stage(hl_engine *e, const uint8_t id[static 16], unsigned part, unsigned prec,
		    const char *path, uint64_t size, uint64_t now)
{
	if (!e->session || !e->synced || !eng_prec_valid(prec))
		return HL_ESTATE;
	if (!e->stage_on)
		return HL_EUNSUPP; /* the peer would ignore it: its parts would wait */
	return hl_stage_out_add(e->stage, id, part, prec, path, size, now);
}

bool hl_engine_staging(const hl_engine *e)
{
	return e->session && hl_stage_out_active(e->stage);
}
