/* deliver/stage.h — staging (docs/messages.md, "Staging"): the bytes of a
 * large attachment travel while `hotline send` is still copying and
 * hashing it into out/, before its signed ITEM exists.
 *
 * Why: the copy (read, SHA-256, write, fsync) and the transfer (read,
 * encrypt; the peer decrypts, hashes, writes) each bind one core; one after
 * the other, one core idles during the copy.  Staged, they overlap.
 *
 * The author's side (out): the daemon is told over the control socket that
 * out/<id>/<i> is being written (hl_stage_out_add); it sends STAGE packets
 * of what is in the file so far (the writer appends whole 1 MiB blocks, so
 * only whole MiBs are read, and never the part's last byte: the final
 * ITEM's CHUNKs carry the tail).  When the ITEM goes out
 * (hl_stage_out_take), the engine waits for the peer's STAGED before
 * sending CHUNKs of the parts it staged.
 *
 * The counterpart's side (in): STAGE data is appended to
 * in/.staging/<peer row>.<idhex>.<part> and hashed on a part writer thread
 * (deliver/partwriter.h); when the ITEM arrives and is accepted, the
 * engine adopts the file as the part's .part file with the hash state so
 * far (hl_stage_in_take); every staged part of that message is then
 * answered with a STAGED (hl_stage_in_resolve).  Nothing staged is ever
 * acknowledged or durable: a session's staging is dropped when it ends,
 * and whatever was staged is sent again as CHUNKs. */
#ifndef HL_DELIVER_STAGE_H
#define HL_DELIVER_STAGE_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "deliver/partwriter.h"
#include "wire/msgproto.h"

/* Attachments worth staging (smaller ones are copied in a blink). */
#define HL_STAGE_MIN (8u << 20)
/* The folder of staging files, relative to the station directory. */
#define HL_STAGE_DIR "in/.staging"

typedef struct hl_stage hl_stage;

/* PROGRESS (copied; may be NULL): what the staging files' part writers
 * report their progress to (the engine's CREDIT accounting). */
hl_stage *hl_stage_new(const char *dir, int64_t peer_id,
		       const struct hl_partwriter_progress *progress);
void hl_stage_free(hl_stage *st);   /* NULL-safe; drops everything */
/* The session ended: drops both directions (staging files removed). */
void hl_stage_reset(hl_stage *st);
/* Removes DIR/in/.staging and everything in it (daemon start). */
void hl_stage_clean_dir(const char *dir);

/* ---- the author's side ---- */

/* Part PART (1..64) of message ID, of SIZE bytes, is being written to
 * PATH (relative to the station directory) at precedence PREC.  HL_EEXIST
 * when staged already, HL_ETOOBIG when enough parts are staged. */
int hl_stage_out_add(hl_stage *st, const uint8_t id[static 16], unsigned part, unsigned prec,
		     const char *path, uint64_t size, uint64_t now_ms);
/* Parts being staged, waiting for bytes (the daemon polls then). */
bool hl_stage_out_active(const hl_stage *st);
/* The next STAGE packet of a part whose precedence is above ABOVE (-1:
 * any), with at most MAX_DATA bytes of data (flow control's chunk size),
 * into REC (capacity HL_PACKET_BODY_MAX): 1 and *LEN when there is one, 0
 * when no staged part has bytes to send, negative on a local failure (that
 * part is dropped).  *TOKEN names the part for hl_stage_out_sent(), to be
 * called once the packet is sent. */
int hl_stage_out_next(hl_stage *st, int above, size_t max_data, uint8_t *rec, size_t *len,
		      unsigned *token, uint64_t now_ms);
void hl_stage_out_sent(hl_stage *st, unsigned token, size_t data_len);
/* The ITEM of message ID is going out: the parts of it STAGE packets were
 * sent of, as a mask (bit p for part p); staging of ID stops. */
uint64_t hl_stage_out_take(hl_stage *st, const uint8_t id[static 16]);

/* ---- the counterpart's side ---- */

/* A STAGE packet.  ROOM: how many more bytes this peer's staging may
 * hold (quota, disk reserve); MAX_PART: the largest attachment accepted.
 * Data that does not fit drops that part's staging (answered with offset
 * 0 later).  *PUSHED: the bytes handed to a part writer (which reports
 * them to PROGRESS), else 0.  0, or negative on a protocol violation. */
int hl_stage_in_data(hl_stage *st, const struct hl_pkt_stage *r, uint64_t room,
		     uint64_t max_part, size_t *pushed);
/* Bytes held in staging files. */
uint64_t hl_stage_in_bytes(const hl_stage *st);
/* The ITEM of message ID was accepted: if part PART (of SIZE bytes) was
 * staged, its file (DIR-relative path in *PATH, the caller frees it) is
 * closed and handed over with its first *DONE bytes hashed into HS, and 1
 * is returned; 0 when not staged.  The caller renames the file. */
int hl_stage_in_take(hl_stage *st, const uint8_t id[static 16], unsigned part, uint64_t size,
		     hl_parthash *hs, uint64_t *done, char **path);
/* The ITEM of message ID (at SEQ) was handled: every part of it that was
 * staged gets a STAGED (the offset taken, else 0), to be sent after the
 * commit; staging files not taken are removed. */
void hl_stage_in_resolve(hl_stage *st, const uint8_t id[static 16], uint64_t seq);
/* The STAGED packets waiting to be sent: the first one, or NULL. */
const struct hl_pkt_staged *hl_stage_staged_peek(const hl_stage *st);
void hl_stage_staged_pop(hl_stage *st);

struct hl_stage_stats {
	uint64_t out_bytes;      /* STAGE data sent */
	uint64_t in_bytes;       /* STAGE data received */
	uint64_t adopted_bytes;  /* staged bytes that became part data */
};
void hl_stage_stats(const hl_stage *st, struct hl_stage_stats *s);

#endif
