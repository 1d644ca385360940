/* bundle/courier.h — the courier path (docs/bundle.md): export everything a
 * peer has not acknowledged into a sealed bundle, and import a bundle
 * through the delivery engine's own receive path in one transaction.
 * Both work on the store directly, with or without a running daemon (the
 * daemon notices store changes by itself). */
#ifndef HL_BUNDLE_COURIER_H
#define HL_BUNDLE_COURIER_H

#include <stddef.h>
#include <stdint.h>

#include "bundle/seal.h"
#include "conf/config.h"
#include "crypto/signer.h"
#include "store/store.h"

/* At most this many items go in one bundle; the rest wait for the next. */
#define HL_BUNDLE_MAX_ITEMS 65536

struct hl_bundle_export_stats {
	uint64_t items, messages, chunks, packets;
	uint64_t bytes;               /* the bundle's size */
	uint64_t left;                /* unacknowledged items left for another bundle */
};

/* Seals, for PEER, an ACK of what this station holds of the peer's chain,
 * then every item the peer has not acknowledged (in seq order) and every
 * acknowledged message still short of a receipt, each message with its
 * content and all its parts (attachments read from DIR/out/), then END.
 * SINK gets the bytes.  ERR: one line on failure. */
int hl_bundle_export(const char *dir, hl_store *st, const hl_signer *me,
		     const hl_peer_conf *peer, hl_bundle_sink sink, void *arg,
		     struct hl_bundle_export_stats *stats, char *err, size_t errlen);
/* The same, incremental: only the unacknowledged items with seq > AFTER
 * (and the ACK); with FLASH_ONLY, of those only the FLASH ones (FLASH
 * messages, receipts, checks, answers, agreements) and no acknowledged
 * message is sent again.  AFTER 0 without FLASH_ONLY is hl_bundle_export(). */
int hl_bundle_export_after(const char *dir, hl_store *st, const hl_signer *me,
			   const hl_peer_conf *peer, uint64_t after, bool flash_only,
			   hl_bundle_sink sink, void *arg, struct hl_bundle_export_stats *stats,
			   char *err, size_t errlen);

struct hl_bundle_import_stats {
	char peer[HL_NAME_MAX + 1];   /* who sealed it */
	uint64_t items, messages, chunks, acks;
	uint64_t arrived, delivered;  /* messages that became visible / delivered */
};

/* Opens BUF (LEN bytes), a bundle addressed to ME and sealed by a peer
 * pinned in CONF, checks all of it (every frame decrypts, every item is
 * the peer's and verifies, every part matches its hash, END is last), and
 * only then ingests it through the delivery engine in one transaction,
 * authoring the receipts for what became visible.  Importing the same
 * bundle again stores nothing new.  ERR: one line on failure; nothing is
 * committed then. */
int hl_bundle_import(const char *dir, hl_store *st, const hl_signer *me,
		     const hl_station_conf *conf, const uint8_t *buf, size_t len,
		     struct hl_bundle_import_stats *stats, char *err, size_t errlen);

#endif
