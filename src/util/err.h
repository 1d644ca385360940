/* util/err.h — hotline's error codes.
 *
 * Internally every fallible function returns 0 on success or a negative
 * HL_E* code.  Errors are reported once, at the edge (a command's main, the
 * daemon's log), with the offending value quoted; hl_strerror() turns a code
 * into text.  System errors are passed through as -errno (all errno values
 * are below HL_E_BASE in magnitude). */
#ifndef HL_UTIL_ERR_H
#define HL_UTIL_ERR_H

enum {
	HL_OK = 0,
	HL_E_BASE = 1000,
	HL_EINVAL = -1001,     /* malformed input */
	HL_ETOOBIG = -1002,    /* a length over its cap */
	HL_EAUTH = -1003,      /* a MAC or signature did not verify */
	HL_EUNSUPP = -1004,    /* an unsupported version, pattern or feature */
	HL_ESTATE = -1005,     /* an operation out of order */
	HL_ENOTFOUND = -1006,  /* no such peer, message, file */
	HL_EEXIST = -1007,     /* already exists */
	HL_EPEER = -1008,      /* the peer is not pinned */
	HL_ECRYPTO = -1009,    /* a primitive failed (bad public key, ...) */
	HL_ETRUNC = -1010,     /* input ended early */
	HL_ENODAEMON = -1011,  /* the daemon is not running */
	HL_ETIMEOUT = -1012,
	HL_ESTORE = -1013,     /* the store failed */
	/* The handshake's guards (session/replay.h, daemon/guard.c); numbered
	 * apart from the list above so that codes added there do not clash. */
	HL_EREPLAY = -1030,    /* a handshake message seen before, or not newer */
	HL_EBUSY = -1031,      /* refused for load: over a budget or a limit */
	/* Key rotation (docs/rotation.md). */
	HL_EKEYS = -1040,      /* the station's keys are not the ones this process holds */
};

const char *hl_strerror(int code);

#endif
