/* deliver/rotate.h — a key rotation on this station's chains
 * (docs/rotation.md section 2): the rotation items, one on every link,
 * appended in the caller's transaction.  The identity file is rotated
 * first (crypto/signer.h, hl_signer_rotate): this completes what that
 * began, and completes it again after a crash in between. */
#ifndef HL_DELIVER_ROTATE_H
#define HL_DELIVER_ROTATE_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "crypto/signer.h"
#include "store/store.h"

/* ME holds the new keys (current) and the ones rotated away from
 * (previous).  Appends a rotation item (REASON: enum hl_rotation_reason)
 * to this station's chain on every link whose key is still the previous
 * one — every peer the store knows, and every peer of CONF, which it adds
 * to the store — and records the new keys as the station's, all in the
 * transaction the caller holds.  *CHAINS: how many items (0: nothing was
 * pending, nothing written).  HL_EKEYS when the store's keys are neither
 * ME's previous nor its current ones (nothing written). */
int hl_rotate_chains(hl_store *st, const hl_signer *me, const hl_station_conf *conf,
		     unsigned reason, size_t *chains);

/* Whether ST's chains are behind ME's keys (a rotation to complete). */
int hl_rotate_pending(hl_store *st, const hl_signer *me, bool *pending);

/* The keys of the peer's chain (row PEER_ID, card PEER) at position SEQ
 * (INT64_MAX: now): its card's, or its last rotation's before SEQ.  *SEQ_AT
 * (may be NULL): that rotation's position, 0 for the card's.  PEER_ID 0:
 * the card's. */
int hl_rotate_peer_keys(hl_store *st, int64_t peer_id, const hl_peer_conf *peer, uint64_t seq,
			struct hl_own_keys *out, uint64_t *seq_at);

/* Whether the peer of row PEER_ID still pins our keys before ME's last
 * rotation: it has not acknowledged the rotation item on our chain with
 * it (docs/rotation.md section 4).  False when ME has no previous keys or
 * the chain has no rotation (the peer pinned our card of now). */
bool hl_rotate_peer_pins_previous(hl_store *st, int64_t peer_id, const hl_signer *me);

#endif
