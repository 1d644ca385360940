/* msg/callitem.h — the call item's fields (docs/items.md section 2.7):
 * what one station signs about a call when it ends.  Its encoding sits in
 * this file pair so that item.c only dispatches to it. */
#ifndef HL_MSG_CALLITEM_H
#define HL_MSG_CALLITEM_H

#include <stdint.h>

#include "util/bytes.h"

#define HL_CALL_ITEM_ID_LEN 16

enum hl_call_role { HL_CALL_ROLE_CALLER = 0, HL_CALL_ROLE_CALLEE = 1 };
#define HL_CALL_PATH_UDP 0x01    /* media went by UDP */
#define HL_CALL_PATH_LINK 0x02   /* media went on the link (fallback) */

struct hl_item_call {
	uint8_t id[HL_CALL_ITEM_ID_LEN];   /* the call's id (both stations' items name it) */
	uint8_t role;                      /* enum hl_call_role: the author's */
	uint8_t precedence;
	uint64_t rang_at, answered_at, ended_at;   /* ms, the author's clock; answered 0: never */
	uint8_t reason;                    /* voice/signal.h enum hl_call_end, 1..6 */
	uint8_t ended_by;                  /* 0 the author's side, 1 the counterpart */
	uint64_t audio_size;               /* bytes of the call audio the author sent */
	uint8_t audio_hash[32];            /* its document hash, SHA-256 (zeros when never answered) */
	uint8_t recording[16];             /* the message carrying it, zeros: not kept */
	/* statistics, the author's side (webrtc-stats names in docs/voice.md) */
	uint64_t packets_sent, packets_received, packets_lost;
	uint64_t concealed_samples, fec_recovered;
	uint32_t jitter_us, buffer_delay_us, first_audio_ms;
	uint8_t paths;                     /* HL_CALL_PATH_* */
};

void hl_item_call_write(struct hl_wbuf *w, const struct hl_item_call *c);
void hl_item_call_read(struct hl_rbuf *r, struct hl_item_call *c);
/* NULL, or the rule a value the format forbids breaks (for `record verify`,
 * REFUSE texts and logs). */
const char *hl_item_call_validate(const struct hl_item_call *c);

#endif
