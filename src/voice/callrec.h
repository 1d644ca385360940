/* voice/callrec.h — what a call leaves behind (docs/voice.md section 5):
 * its statistics, the hash of the encoded audio this side sent, and with
 * CallRecording = on, the recordings of what it sent and received.
 *
 * Call audio format (the recordings, and what the hash covers): for each
 * 20 ms frame in order, one length byte L then L bytes of Opus (16 kHz
 * mono); L = 0 for a frame with nothing in it.  The "sent" hash is the
 * document hash (SHA-256, msg/item.h's hl_doc_hash) over exactly those
 * bytes of every frame this side sent, so a disclosed recording is checked
 * like any attachment: its hash must be the one in the signed call item,
 * which is also its recording message's attachment hash.  The "received"
 * recording is what this side played (frames, or their FEC copies), for
 * the operator's own use: losses make it differ from the peer's. */
#ifndef HL_VOICE_CALLREC_H
#define HL_VOICE_CALLREC_H

#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "crypto/sha256.h"
#include "voice/jitter.h"
#include "voice/media.h"

#define HL_CALLREC_DIR "calls"

/* The sending side and transport counters (the receiving side's are the
 * jitter buffer's, struct hl_jb_stats). */
struct hl_callrec_stats {
	uint64_t packets_sent, bytes_sent;
	uint64_t udp_sent, tcp_sent, tcp_dropped;
	uint64_t udp_received, tcp_received;
	uint64_t rejected, replayed;       /* media packets refused */
	uint64_t frames_dropped;           /* operator audio dropped: input queue full */
	bool on_tcp;                       /* sending on the link now */
};

/* Frames waiting to be written (the media thread appends, the loop
 * writes: a real-time thread never waits for a disk). */
struct hl_callrec_buf {
	uint8_t *p;
	size_t len, cap;
};
#define HL_CALLREC_PENDING_MAX (1u << 20)   /* ~4 min of audio, should the loop stall */

struct hl_callrec {
	bool open;
	struct hl_callrec_buf pend[2];     /* [0] sent, [1] received */
	bool lost_bytes;                   /* a pending buffer overflowed */
	hl_sha256_state sent;              /* the document hash of what was sent */
	uint64_t sent_frames, sent_bytes;
	int fd_sent, fd_recv;              /* -1 unless recording */
	char *path_sent, *path_recv;       /* relative to the station directory */
};

/* Starts the record of call ID; with RECORDING, creates
 * DIR/calls/call-<id>.hla (what we sent: it becomes the attachment of the
 * recording message) and call-<id>-received.hla (mode 0600). */
void hl_callrec_begin(struct hl_callrec *r, const char *dir, bool recording,
		      const uint8_t id[static HL_CALL_ID_LEN], bool outgoing);
void hl_callrec_sent(struct hl_callrec *r, const uint8_t *opus, size_t len);
void hl_callrec_received(struct hl_callrec *r, const uint8_t *opus, size_t len, bool fec);
/* Moves the pending frames to OUT (empty on entry; free out[i].p after
 * writing them with hl_callrec_write): done under the lock the media
 * thread takes, the writing outside it. */
void hl_callrec_detach(struct hl_callrec *r, struct hl_callrec_buf out[static 2]);
void hl_callrec_write(const struct hl_callrec *r, struct hl_callrec_buf out[static 2]);

/* Writes what is pending, then closes the files (synced) and gives the sent hash; the paths stay in R
 * for the caller (NULL when not recording).  Frees nothing else. */
void hl_callrec_finish(struct hl_callrec *r, const char *dir, uint8_t sent_hash[static 32]);
/* Frees R's paths (after finish), or drops a record never finished. */
void hl_callrec_abort(struct hl_callrec *r);

/* {"inbound": {webrtc-stats names}, "outbound": {...}, "transport": {...}} */
json_t *hl_callrec_stats_json(const struct hl_callrec_stats *s, const struct hl_jb_stats *jb);

#endif
