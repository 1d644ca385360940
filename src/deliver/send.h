/* deliver/send.h — what the sending side of the engine (send.c) gives the
 * rest of the station: the ITEM and CHUNK packets of our items, built one
 * way for a session and for a courier bundle (bundle/export.c), so that
 * the two cannot drift apart. */
#ifndef HL_DELIVER_SEND_H
#define HL_DELIVER_SEND_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct hl_dio_reader;

/* The ITEM packet (docs/messages.md) of our item at SEQ on the link with
 * the peer PEER_ID: the signed item and, for a message, its content, into
 * REC (HL_PACKET_BODY_MAX bytes), *LEN its length; ITEMBUF (HL_ITEM_MAX
 * bytes) holds the item.  IROW gets the item's row, ROW a message's row
 * (clear it with hl_msg_row_clear, also after a failure).  A message purged
 * here (docs/retention.md) is HL_ESTATE: it has nothing to send.  On
 * failure ERR (ERRLEN bytes) says why, naming the seq. */
int hl_send_item_packet(hl_store *st, int64_t peer_id, uint64_t seq, uint8_t *itembuf,
			uint8_t *rec, size_t *len, struct hl_item_row *irow,
			struct hl_msg_row *row, char *err, size_t errlen);

/* The CHUNK packet (docs/messages.md) of N bytes of part PART of our
 * message at SEQ, from OFFSET, into REC (HL_CHUNK_HDR_LEN + N bytes, N at
 * most a packet's room past the header): the bytes of part 0 (a body too
 * large to travel inline) from BODY, an attachment's read through R, its
 * file open.  0, or the read's error (HL_ETRUNC: the file is shorter). */
int hl_send_chunk_packet(uint64_t seq, unsigned part, uint64_t offset, size_t n,
			 const uint8_t *body, struct hl_dio_reader *r, uint8_t *rec);

#endif
