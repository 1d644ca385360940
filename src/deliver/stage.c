/* deliver/stage.c — staging of attachments still being copied (stage.h):
 * the author's staged parts and the counterpart's staging files, per peer
 * and per session. */
#include "deliver/stage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deliver/partwriter.h"
#include "msg/message.h"
#include "util/dio.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "wire/packet.h"

#define OUT_MAX 8            /* parts staged (or abandoned) per peer */
#define OUT_LIVE_MAX 4       /* of them being read */
/* A part whose file has not grown for this long is abandoned (the copying
 * command died or stalls); its ITEM, should it come, goes as usual. */
#define OUT_IDLE_MS 30000
#define IN_MAX 64            /* staged parts remembered per peer */
#define IN_LIVE_MAX 8        /* of them with a file */
#define STAGED_MAX 1024      /* STAGED packets waiting for the commit */
#define STAGE_DATA_MAX (HL_PACKET_BODY_MAX - HL_STAGE_HDR_LEN)
/* Staged bytes stay in memory until the writer's thread has them: the
 * staging file is not made durable until it is adopted. */
#define NO_SYNC (UINT64_MAX / 2)

struct out_ent {
	bool used, abandoned;
	uint8_t id[16];
	unsigned part, prec;
	char *path;                 /* absolute */
	uint64_t size;              /* announced; at most size - 1 is staged */
	struct hl_dio_reader r;
	uint64_t offset;            /* next byte to send */
	uint64_t avail;             /* readable (whole MiBs written) */
	uint64_t grew_at;
};

struct in_ent {
	bool live;                  /* its file holds `done` bytes */
	bool taken;                 /* adopted by the ITEM: `done` went over */
	uint8_t id[16];
	unsigned part;
	uint64_t done;
	uint64_t touched;           /* for eviction: the oldest goes first */
	char *relpath;
	struct hl_dio_writer w;
	hl_partwriter *pw;          /* when set, owns w and hs */
	hl_parthash hs;             /* SHA-256 of the first `done` bytes */
};

struct hl_stage {
	char *dir;
	int64_t peer_id;
	/* Allocated at first use: most peers never stage, and a station may
	 * pin thousands. */
	struct out_ent *out;        /* OUT_MAX of them */
	struct in_ent **in;         /* nin of capin, capin <= IN_MAX */
	size_t nin, capin;
	uint64_t tick;
	struct hl_pkt_staged *staged;   /* grown on demand: most peers never stage */
	size_t nstaged, capstaged;
	struct hl_stage_stats stats;
	struct hl_partwriter_progress progress;
};

hl_stage *hl_stage_new(const char *dir, int64_t peer_id,
		       const struct hl_partwriter_progress *progress)
{
	hl_stage *st = xcalloc(1, sizeof(*st));
	if (progress)
		st->progress = *progress;
	st->dir = xstrdup(dir);
	st->peer_id = peer_id;
	return st;
}

static void out_drop(struct out_ent *o)
{
	hl_dio_rclose(&o->r);
	free(o->path);
	memset(o, 0, sizeof(*o));
	o->r.fd = -1;
}

/* Stops writing E's file and removes it (unless adopted: renamed). */
static void in_close(hl_stage *st, struct in_ent *e)
{
	if (e->pw) {
		hl_partwriter_abort(e->pw);
		e->pw = NULL;
	}
	hl_dio_close(&e->w);
	if (e->live && e->relpath) {
		char *p = hl_path_join(st->dir, e->relpath);
		unlink(p);
		free(p);
	}
	e->live = false;
}

static void in_free_at(hl_stage *st, size_t i)
{
	struct in_ent *e = st->in[i];
	in_close(st, e);
	free(e->relpath);
	free(e);
	st->in[i] = st->in[--st->nin];
}

void hl_stage_reset(hl_stage *st)
{
	if (!st)
		return;
	for (unsigned i = 0; st->out && i < OUT_MAX; i++)
		if (st->out[i].used)
			out_drop(&st->out[i]);
	while (st->nin)
		in_free_at(st, st->nin - 1);
	st->nstaged = 0;
}

void hl_stage_free(hl_stage *st)
{
	if (!st)
		return;
	hl_stage_reset(st);
	free(st->out);
	free(st->in);
	free(st->staged);
	free(st->dir);
	free(st);
}

void hl_stage_clean_dir(const char *dir)
{
	char *sd = hl_path_join(dir, HL_STAGE_DIR);
	DIR *d = opendir(sd);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			char *p = hl_path_join(sd, de->d_name);
			unlink(p);
			free(p);
		}
		closedir(d);
	}
	rmdir(sd);
	free(sd);
}

void hl_stage_stats(const hl_stage *st, struct hl_stage_stats *s)
{
	*s = st->stats;
}

/* ---- the author's side ---- */

int hl_stage_out_add(hl_stage *st, const uint8_t id[static 16], unsigned part, unsigned prec,
		     const char *path, uint64_t size, uint64_t now_ms)
{
	struct out_ent *slot = NULL, *oldest_abandoned = NULL;
	unsigned live = 0;
	if (part < 1 || part > HL_MAX_ATTACHMENTS || size < 2)
		return HL_EINVAL;
	if (!st->out) {
		st->out = xcalloc(OUT_MAX, sizeof(*st->out));
		for (unsigned i = 0; i < OUT_MAX; i++)
			st->out[i].r.fd = -1;
	}
	for (unsigned i = 0; i < OUT_MAX; i++) {
		struct out_ent *o = &st->out[i];
		if (!o->used) {
			if (!slot)
				slot = o;
			continue;
		}
		if (memcmp(o->id, id, 16) == 0 && o->part == part)
			return HL_EEXIST;
		if (o->abandoned) {
			if (!oldest_abandoned || o->grew_at < oldest_abandoned->grew_at)
				oldest_abandoned = o;
		} else {
			live++;
		}
	}
	if (live >= OUT_LIVE_MAX)
		return HL_ETOOBIG;
	if (!slot) {
		if (!oldest_abandoned)
			return HL_ETOOBIG;
		/* forgotten: should its ITEM come, its parts go from 0 */
		out_drop(oldest_abandoned);
		slot = oldest_abandoned;
	}
	slot->used = true;
	memcpy(slot->id, id, 16);
	slot->part = part;
	slot->prec = prec;
	slot->path = hl_path_join(st->dir, path);
	slot->size = size;
	slot->grew_at = now_ms;
	return 0;
}

bool hl_stage_out_active(const hl_stage *st)
{
	for (unsigned i = 0; st->out && i < OUT_MAX; i++) {
		const struct out_ent *o = &st->out[i];
		if (o->used && !o->abandoned && o->offset < o->size - 1)
			return true;
	}
	return false;
}

static void out_abandon(struct out_ent *o)
{
	hl_dio_rclose(&o->r);
	o->abandoned = true;
}

/* Looks again at how much of O's file is written: whole MiBs only (the
 * writer appends whole buffers while copying; its last, padded, write
 * comes at the end and is cut to size), and never the last byte. */
static void out_refresh(struct out_ent *o, uint64_t now)
{
	struct stat sb;
	if (o->r.fd < 0) {
		int ret = hl_dio_ropen(&o->r, o->path, O_CLOEXEC | O_NOFOLLOW);
		if (ret < 0) {
			if (ret != -ENOENT || now - o->grew_at > OUT_IDLE_MS)
				out_abandon(o);
			return;
		}
	}
	if (fstat(o->r.fd, &sb) < 0 || sb.st_nlink == 0) {
		out_abandon(o);   /* removed: the command failed */
		return;
	}
	uint64_t whole = (uint64_t)sb.st_size / HL_DIO_BUF * HL_DIO_BUF;
	if (whole > o->size - 1)
		whole = o->size - 1;
	if (whole > o->avail) {
		o->avail = whole;
		o->grew_at = now;
	} else if (now - o->grew_at > OUT_IDLE_MS) {
		out_abandon(o);
	}
}

int hl_stage_out_next(hl_stage *st, int above, size_t max_data, uint8_t *rec, size_t *len,
		      unsigned *token, uint64_t now_ms)
{
	if (max_data == 0 || max_data > STAGE_DATA_MAX)
		max_data = STAGE_DATA_MAX;
	for (int p = HL_PREC_COUNT - 1; st->out && p > above; p--) {
		for (unsigned i = 0; i < OUT_MAX; i++) {
			struct out_ent *o = &st->out[i];
			if (!o->used || o->abandoned || o->prec != (unsigned)p ||
			    o->offset >= o->size - 1)
				continue;
			if (o->offset >= o->avail)
				out_refresh(o, now_ms);
			if (o->abandoned || o->offset >= o->avail)
				continue;
			uint64_t left = o->avail - o->offset;
			size_t n = left < max_data ? (size_t)left : max_data;
			int ret = hl_dio_read(&o->r, o->offset, rec + HL_STAGE_HDR_LEN, n);
			if (ret < 0) {
				out_abandon(o);
				return ret;
			}
			hl_pkt_stage_header(o->id, (uint8_t)o->part, o->offset, rec);
			*len = HL_STAGE_HDR_LEN + n;
			*token = i;
			return 1;
		}
	}
	return 0;
}

void hl_stage_out_sent(hl_stage *st, unsigned token, size_t data_len)
{
	if (!st->out || token >= OUT_MAX || !st->out[token].used)
		return;
	st->out[token].offset += data_len;
	st->stats.out_bytes += data_len;
	if (st->out[token].offset >= st->out[token].size - 1)
		hl_dio_rclose(&st->out[token].r);   /* all it will stage */
}

uint64_t hl_stage_out_take(hl_stage *st, const uint8_t id[static 16])
{
	uint64_t mask = 0;
	for (unsigned i = 0; st->out && i < OUT_MAX; i++) {
		struct out_ent *o = &st->out[i];
		if (!o->used || memcmp(o->id, id, 16) != 0)
			continue;
		if (o->offset > 0)
			mask |= UINT64_C(1) << (o->part - 1);
		out_drop(o);
	}
	return mask;
}

/* ---- the counterpart's side ---- */

static struct in_ent *in_find(hl_stage *st, const uint8_t id[static 16], unsigned part,
			      size_t *idx)
{
	for (size_t i = 0; i < st->nin; i++)
		if (st->in[i]->part == part && memcmp(st->in[i]->id, id, 16) == 0) {
			if (idx)
				*idx = i;
			return st->in[i];
		}
	return NULL;
}

uint64_t hl_stage_in_bytes(const hl_stage *st)
{
	uint64_t n = 0;
	for (size_t i = 0; i < st->nin; i++)
		if (st->in[i]->live)
			n += st->in[i]->done;
	return n;
}

/* Room for one more entry: the oldest dropped one goes, else the oldest. */
static void in_make_room(hl_stage *st)
{
	size_t live = 0, victim = SIZE_MAX, lvictim = SIZE_MAX;
	for (size_t i = 0; i < st->nin; i++) {
		const struct in_ent *e = st->in[i];
		if (e->live) {
			live++;
			if (lvictim == SIZE_MAX || e->touched < st->in[lvictim]->touched)
				lvictim = i;
		} else if (victim == SIZE_MAX || e->touched < st->in[victim]->touched) {
			victim = i;
		}
	}
	/* Too many files: the oldest becomes a marker (answered with 0). */
	if (live >= IN_LIVE_MAX && lvictim != SIZE_MAX)
		in_close(st, st->in[lvictim]);
	if (st->nin >= IN_MAX)
		in_free_at(st, victim != SIZE_MAX ? victim : lvictim);
}

static int in_open(hl_stage *st, struct in_ent *e)
{
	char idhex[33];
	hl_msg_id_hex(e->id, idhex);
	char *in = hl_path_join(st->dir, "in");
	char *sd = hl_path_join(st->dir, HL_STAGE_DIR);
	int ret = 0;
	if ((mkdir(in, 0700) < 0 && errno != EEXIST) || (mkdir(sd, 0700) < 0 && errno != EEXIST))
		ret = -errno;
	free(in);
	free(sd);
	if (ret < 0)
		return ret;
	e->relpath = xasprintf("%s/%lld.%s.%u", HL_STAGE_DIR, (long long)st->peer_id, idhex,
			       e->part);
	char *path = hl_path_join(st->dir, e->relpath);
	ret = hl_dio_open(&e->w, path, O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600, 0);
	free(path);
	if (ret < 0)
		return ret;
	e->live = true;
	hl_parthash_doc(&e->hs);
	if (hl_partwriter_start(&e->pw, &e->w, &e->hs, 0, NO_SYNC, &st->progress) < 0)
		e->pw = NULL;   /* no thread: the same work, here */
	return 0;
}

int hl_stage_in_data(hl_stage *st, const struct hl_pkt_stage *r, uint64_t room,
		     uint64_t max_part, size_t *pushed)
{
	*pushed = 0;
	struct in_ent *e = in_find(st, r->id, r->part, NULL);
	if (!e) {
		in_make_room(st);
		if (st->nin == st->capin) {
			st->capin = st->capin ? 2 * st->capin : 4;
			st->in = xrealloc(st->in, st->capin * sizeof(*st->in));
		}
		e = xcalloc(1, sizeof(*e));
		e->w.fd = -1;
		memcpy(e->id, r->id, 16);
		e->part = r->part;
		st->in[st->nin++] = e;
		if (r->offset == 0 && in_open(st, e) < 0)
			in_close(st, e);   /* kept as a marker: answered with 0 */
	}
	e->touched = ++st->tick;
	if (!e->live || e->taken)
		return 0;
	if (r->offset != e->done || r->data_len > room || e->done + r->data_len > max_part) {
		in_close(st, e);
		return 0;
	}
	int ret = e->pw ? hl_partwriter_push(e->pw, r->data, r->data_len)
			: hl_dio_write(&e->w, r->data, r->data_len);
	if (ret < 0) {
		in_close(st, e);   /* nothing of it was queued */
		return 0;
	}
	if (e->pw)
		*pushed = r->data_len;   /* the worker counts it, even if dropped later */
	if (!e->pw)
		hl_parthash_update(&e->hs, r->data, r->data_len);
	e->done += r->data_len;
	st->stats.in_bytes += r->data_len;
	return 0;
}

int hl_stage_in_take(hl_stage *st, const uint8_t id[static 16], unsigned part, uint64_t size,
		     hl_parthash *hs, uint64_t *done, char **path)
{
	struct in_ent *e = in_find(st, id, part, NULL);
	if (!e || !e->live || e->taken || e->done == 0 || e->done >= size)
		return 0;
	int ret = 0;
	if (e->pw) {
		ret = hl_partwriter_finish(e->pw);
		e->pw = NULL;
	}
	/* What is staged in the writer's buffer goes to the file (the
	 * adopter reopens it at `done`, cutting the padding). */
	if (ret == 0)
		ret = hl_dio_sync(&e->w);
	if (ret < 0) {
		in_close(st, e);
		return 0;
	}
	hl_dio_close(&e->w);
	*hs = e->hs;
	*done = e->done;
	*path = xstrdup(e->relpath);
	e->taken = true;
	e->live = false;   /* the file is the adopter's now */
	st->stats.adopted_bytes += e->done;
	return 1;
}

void hl_stage_in_resolve(hl_stage *st, const uint8_t id[static 16], uint64_t seq)
{
	for (size_t i = 0; i < st->nin;) {
		struct in_ent *e = st->in[i];
		if (memcmp(e->id, id, 16) != 0) {
			i++;
			continue;
		}
		if (st->nstaged == st->capstaged && st->capstaged < STAGED_MAX) {
			st->capstaged = st->capstaged ? 2 * st->capstaged : 8;
			st->staged = xrealloc(st->staged, st->capstaged * sizeof(*st->staged));
		}
		if (st->nstaged < st->capstaged) {
			struct hl_pkt_staged *s = &st->staged[st->nstaged++];
			s->seq = seq;
			s->part = (uint8_t)e->part;
			s->offset = e->taken ? e->done : 0;
		}
		in_free_at(st, i);   /* swaps the last one in: look at i again */
	}
}

const struct hl_pkt_staged *hl_stage_staged_peek(const hl_stage *st)
{
	return st->nstaged ? &st->staged[0] : NULL;
}

void hl_stage_staged_pop(hl_stage *st)
{
	if (!st->nstaged)
		return;
	memmove(st->staged, st->staged + 1, (st->nstaged - 1) * sizeof(*st->staged));
	st->nstaged--;
}
