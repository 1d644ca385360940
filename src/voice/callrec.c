/* voice/callrec.c — a call's statistics, sent-audio hash and recordings;
 * the formats are in callrec.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/mem.h"
#include "voice/callrec.h"

static int open_rec(const char *dir, const char *rel)
{
	char *full = xasprintf("%s/%s", dir, rel);
	int fd = open(full, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	free(full);
	return fd;
}

void hl_callrec_begin(struct hl_callrec *r, const char *dir, bool recording,
		      const uint8_t id[static HL_CALL_ID_LEN], bool outgoing)
{
	(void)outgoing;
	memset(r, 0, sizeof(*r));
	r->open = true;
	r->fd_sent = r->fd_recv = -1;
	hl_sha256_init(&r->sent);
	if (!recording)
		return;
	char hex[33];
	sodium_bin2hex(hex, sizeof(hex), id, HL_CALL_ID_LEN);
	char *sub = xasprintf("%s/%s", dir, HL_CALLREC_DIR);
	if (mkdir(sub, 0700) < 0 && errno != EEXIST) {
		free(sub);
		return;
	}
	free(sub);
	r->path_sent = xasprintf("%s/call-%s.hla", HL_CALLREC_DIR, hex);
	r->path_recv = xasprintf("%s/call-%s-received.hla", HL_CALLREC_DIR, hex);
	r->fd_sent = open_rec(dir, r->path_sent);
	r->fd_recv = open_rec(dir, r->path_recv);
}

/* One frame in the call audio format, appended to B (for FD).  Past the
 * cap the frame is lost and the recording no longer matches its hash,
 * which the record then shows. */
static void put_frame(struct hl_callrec *r, int fd, struct hl_callrec_buf *b,
		      const uint8_t *opus, size_t len)
{
	if (fd < 0 || len > 255)
		return;
	if (b->len + 1 + len > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		if (cap > HL_CALLREC_PENDING_MAX) {
			r->lost_bytes = true;
			return;
		}
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	b->p[b->len++] = (uint8_t)len;
	memcpy(b->p + b->len, opus, len);
	b->len += len;
}

void hl_callrec_sent(struct hl_callrec *r, const uint8_t *opus, size_t len)
{
	uint8_t l = (uint8_t)len;
	if (!r->open || len > 255)
		return;
	hl_sha256_update(&r->sent, &l, 1);
	hl_sha256_update(&r->sent, opus, len);
	r->sent_frames++;
	r->sent_bytes += 1 + len;
	put_frame(r, r->fd_sent, &r->pend[0], opus, len);
}

void hl_callrec_received(struct hl_callrec *r, const uint8_t *opus, size_t len, bool fec)
{
	(void)fec;
	if (r->open)
		put_frame(r, r->fd_recv, &r->pend[1], opus, len);
}

void hl_callrec_detach(struct hl_callrec *r, struct hl_callrec_buf out[static 2])
{
	for (int i = 0; i < 2; i++) {
		out[i] = r->pend[i];
		memset(&r->pend[i], 0, sizeof(r->pend[i]));
	}
}

static void write_all(int fd, const uint8_t *p, size_t n)
{
	while (fd >= 0 && n > 0) {
		ssize_t k = write(fd, p, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;   /* the recording is short: its hash shows it */
		p += k;
		n -= (size_t)k;
	}
}

void hl_callrec_write(const struct hl_callrec *r, struct hl_callrec_buf out[static 2])
{
	write_all(r->fd_sent, out[0].p, out[0].len);
	write_all(r->fd_recv, out[1].p, out[1].len);
	for (int i = 0; i < 2; i++) {
		free(out[i].p);
		memset(&out[i], 0, sizeof(out[i]));
	}
}

static void close_fd(int *fd)
{
	if (*fd >= 0) {
		fsync(*fd);
		close(*fd);
	}
	*fd = -1;
}

void hl_callrec_finish(struct hl_callrec *r, const char *dir, uint8_t sent_hash[static 32])
{
	struct hl_callrec_buf rest[2];
	(void)dir;
	hl_callrec_detach(r, rest);
	hl_callrec_write(r, rest);
	hl_sha256_final(&r->sent, sent_hash);
	close_fd(&r->fd_sent);
	close_fd(&r->fd_recv);
	r->open = false;
}

void hl_callrec_abort(struct hl_callrec *r)
{
	for (int i = 0; i < 2; i++) {
		free(r->pend[i].p);
		memset(&r->pend[i], 0, sizeof(r->pend[i]));
	}
	if (r->open) {
		close_fd(&r->fd_sent);
		close_fd(&r->fd_recv);
		r->open = false;
	}
	free(r->path_sent);
	free(r->path_recv);
	r->path_sent = r->path_recv = NULL;
}

json_t *hl_callrec_stats_json(const struct hl_callrec_stats *s, const struct hl_jb_stats *j)
{
	json_t *in = json_pack(
		"{s:I, s:I, s:I, s:I, s:f, s:f, s:f, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"packetsReceived", (json_int_t)j->packetsReceived,
		"packetsLost", (json_int_t)j->packetsLost,
		"packetsDiscarded", (json_int_t)j->packetsDiscarded,
		"packetsDuplicated", (json_int_t)j->packetsDuplicated,
		"jitter", j->jitter,
		"jitterBufferDelay", j->jitterBufferDelay,
		"jitterBufferTargetDelay", j->jitterBufferTargetDelay,
		"jitterBufferEmittedCount", (json_int_t)j->jitterBufferEmittedCount,
		"totalSamplesReceived", (json_int_t)j->totalSamplesReceived,
		"concealedSamples", (json_int_t)j->concealedSamples,
		"concealmentEvents", (json_int_t)j->concealmentEvents,
		"fecPacketsReceived", (json_int_t)j->fecPacketsReceived,
		"insertedSamplesForDeceleration", (json_int_t)j->insertedSamplesForDeceleration,
		"removedSamplesForAcceleration", (json_int_t)j->removedSamplesForAcceleration);
	json_object_set_new(in, "resyncs", json_integer((json_int_t)j->resyncs));
	json_t *out = json_pack("{s:I, s:I}", "packetsSent", (json_int_t)s->packets_sent,
				"bytesSent", (json_int_t)s->bytes_sent);
	json_t *tr = json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			       "path", s->on_tcp ? "tcp" : "udp",
			       "udpSent", (json_int_t)s->udp_sent,
			       "tcpSent", (json_int_t)s->tcp_sent,
			       "tcpDropped", (json_int_t)s->tcp_dropped,
			       "udpReceived", (json_int_t)s->udp_received,
			       "tcpReceived", (json_int_t)s->tcp_received,
			       "rejected", (json_int_t)s->rejected,
			       "replayed", (json_int_t)s->replayed,
			       "operatorFramesDropped", (json_int_t)s->frames_dropped);
	return json_pack("{s:o, s:o, s:o}", "inbound", in, "outbound", out, "transport", tr);
}
