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
	crypto_generichash_init(&r->sent, NULL, 0, 32);
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

/* One frame in the call audio format.  A short write loses the recording
 * (the file is then unusable, and the item says so by its hash). */
static void put_frame(int fd, const uint8_t *opus, size_t len)
{
	uint8_t b[1 + 255];
	if (fd < 0 || len > 255)
		return;
	b[0] = (uint8_t)len;
	memcpy(b + 1, opus, len);
	if (write(fd, b, 1 + len) != (ssize_t)(1 + len))
		return;
}

void hl_callrec_sent(struct hl_callrec *r, const uint8_t *opus, size_t len)
{
	uint8_t l = (uint8_t)len;
	if (!r->open || len > 255)
		return;
	crypto_generichash_update(&r->sent, &l, 1);
	crypto_generichash_update(&r->sent, opus, len);
	r->sent_frames++;
	r->sent_bytes += 1 + len;
	put_frame(r->fd_sent, opus, len);
}

void hl_callrec_received(struct hl_callrec *r, const uint8_t *opus, size_t len, bool fec)
{
	(void)fec;
	if (r->open)
		put_frame(r->fd_recv, opus, len);
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
	(void)dir;
	crypto_generichash_final(&r->sent, sent_hash, 32);
	close_fd(&r->fd_sent);
	close_fd(&r->fd_recv);
	r->open = false;
}

void hl_callrec_abort(struct hl_callrec *r)
{
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
