/* record/export.h — `record export`: a station's record of one link, read
 * from its store in one snapshot and streamed through a record writer
 * (record/format.h), sealed with the station's SigningKey.
 *
 * Chain 0 is ours (the OUT chain, complete by construction), chain 1 the
 * peer's as we hold it: refused positions become REFUSED entries (their
 * hash and code), positions not yet received ABSENT entries.  Contents:
 * every message whose body we hold, or only those named; attachments
 * (of disclosed messages) only when asked, each hash-checked against its
 * signed hash while it is copied.  Evidence: every item the store keeps as
 * proof that the peer signed two different items at one position.  Purged
 * messages (retention) are withheld and listed as purged, with when: the
 * record is then of version 2 (docs/record.md). */
#ifndef HL_RECORD_EXPORT_H
#define HL_RECORD_EXPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "crypto/signer.h"
#include "record/format.h"
#include "store/store.h"

struct hl_record_export {
	const char *dir;                 /* the station directory (attachment files) */
	hl_store *store;
	const hl_signer *me;
	const hl_station_conf *conf;     /* our name and address, for our card */
	const hl_peer_conf *peer;
	bool with_attachments;
	bool only;                       /* disclose only the messages named in ids */
	const char *const *ids;          /* message ids: hex, or unique prefixes of 8+ digits */
	size_t nids;
	uint64_t exported_at;            /* ms; 0: now */
	/* Told about what could not be included (a message still arriving, a
	 * missing attachment file); may be NULL. */
	void (*warn)(void *arg, const char *line);
	void *warn_arg;
};

struct hl_record_export_stats {
	size_t entries[2];
	size_t refused, absent;
	size_t disclosed, withheld, attachments;
	size_t evidence;                 /* items proving the peer equivocated */
	size_t purged;                   /* messages whose contents retention purged */
};

/* Writes the whole record, seal included, to W.  On failure returns a
 * negative code with one line in ERR naming the bad value; what W received
 * must then be discarded. */
int hl_record_export(const struct hl_record_export *o, struct hl_record_writer *w,
		     struct hl_record_export_stats *stats, char *err, size_t errlen);

#endif
