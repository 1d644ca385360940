/* mail/pickup.h — the receiving half of the email path (docs/bundle.md,
 * "By email"): each mail in the station's Maildir/new is parsed
 * (mail/mime.h), its bundle imported (bundle/courier.h) and only after the
 * store commit moved to Maildir/cur.  A mail that is not a hotline bundle
 * mail, or whose bundle is refused (corrupt, forged, for another station),
 * goes to the quarantine folder beside the Maildir (MAILDIR.quarantine/)
 * with a NAME.why file saying why, and harms nothing.  A mail that fails
 * for a passing reason (the store busy, a full disk) stays in new/ for the
 * next pickup. */
#ifndef HL_MAIL_PICKUP_H
#define HL_MAIL_PICKUP_H

#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"
#include "crypto/signer.h"
#include "store/store.h"

#define HL_MAIL_PICKUP_MAX 4096       /* mails looked at in one pass */

struct hl_mail_pickup_stats {
	unsigned seen, imported, quarantined, left;
	uint64_t arrived, delivered;  /* messages that became visible / of ours delivered */
};

/* Called once per mail: its file name in new/ and what became of it. */
typedef void (*hl_mail_pickup_report)(void *arg, const char *name, const char *what);

/* One pass over CONF's Maildir/new (CONF must have an [Email] section).
 * 0 when every mail was imported or quarantined; HL_ESTATE when some were
 * left in new/ (STATS->left); a negative code with ERR when the Maildir
 * cannot be read. */
int hl_mail_pickup(const char *dir, hl_store *st, const hl_signer *me,
		   const hl_station_conf *conf, struct hl_mail_pickup_stats *stats,
		   hl_mail_pickup_report report, void *arg, char *err, size_t errlen);

#endif
