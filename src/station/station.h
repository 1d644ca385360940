/* station/station.h — the station facade: a station directory's files and
 * locks by name, and "open the station with what this command needs" in
 * one place.  Every command that works on a station (cmd/msgcmd.c for the
 * message commands, card, status) and the daemon (its daemon.lock) go
 * through it, so that the order of opening (station.conf, then the keys,
 * then the store) and its error lines are written once.
 *
 * The files of a station directory are named where their owner is
 * (conf/config.h: station.conf, identity.key and the locks of both;
 * store/store.h: store.db; holder/client.h: the key holder's socket and
 * lock; msg/retain.h: files.lock; station/control_proto.h: control.sock). */
#ifndef HL_STATION_STATION_H
#define HL_STATION_STATION_H

#include <stdbool.h>
#include <stddef.h>

#include "conf/config.h"
#include "crypto/signer.h"
#include "holder/client.h"
#include "store/store.h"

#define HL_STATION_ERR_LEN 512

/* What to open (hl_station_open's NEED).  station.conf is always read. */
enum {
	HL_OPEN_SIGN = 1u << 0,      /* the keys, to sign: the key holder, or in-process
					under its journal's lock (holder/client.h) */
	HL_OPEN_PUBLIC = 1u << 1,    /* the public keys only */
	HL_OPEN_STORE = 1u << 2,     /* the store, read-write (created or migrated) */
	HL_OPEN_STORE_RO = 1u << 3,  /* the store read-only */
	/* The keys and the store only if they open: a failure leaves them
	 * NULL and is no error (status, which shows what it can). */
	HL_OPEN_BEST_EFFORT = 1u << 4,
};

struct hl_station {
	const char *dir;             /* the caller's, not copied */
	hl_station_conf *conf;
	hl_keys *keys;               /* with HL_OPEN_SIGN or HL_OPEN_PUBLIC */
	const hl_signer *me;         /* the keys' signer face, while KEYS lives */
	hl_store *store;             /* with HL_OPEN_STORE or HL_OPEN_STORE_RO */
};

/* Opens what NEED names of the station in DIR into S (zeroed first).  0,
 * or a negative error with one line in ERR (HL_STATION_ERR_LEN bytes):
 * -ENOENT when DIR holds no station.conf (the caller says "no station",
 * cmd/cmd.h).  On failure what was opened stays in S for
 * hl_station_close. */
int hl_station_open(struct hl_station *s, const char *dir, unsigned need, char *err);
/* Closes what S holds; S may be zeroed or half open. */
void hl_station_close(struct hl_station *s);

/* Opens the lock file NAME of the station directory (DIRFD, or AT_FDCWD
 * for a NAME that is a whole path), creating it 0600, and flock()s it with
 * HOW (LOCK_SH or LOCK_EX, with LOCK_NB not to wait).  The descriptor, to
 * close to let go; else -errno (-EWOULDBLOCK: held, with LOCK_NB). */
int hl_station_lock(int dirfd, const char *name, int how);

#endif
