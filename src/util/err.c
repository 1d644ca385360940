/* util/err.c — text for hotline's error codes (see err.h). */
#include "util/err.h"

#include <string.h>

const char *hl_strerror(int code)
{
	switch (code) {
	case HL_OK: return "success";
	case HL_EINVAL: return "malformed input";
	case HL_ETOOBIG: return "too large";
	case HL_EAUTH: return "authentication failed";
	case HL_EUNSUPP: return "not supported";
	case HL_ESTATE: return "operation out of order";
	case HL_ENOTFOUND: return "not found";
	case HL_EEXIST: return "already exists";
	case HL_EPEER: return "peer not pinned";
	case HL_ECRYPTO: return "cryptographic operation failed";
	case HL_ETRUNC: return "truncated input";
	case HL_ENODAEMON: return "the daemon is not running";
	case HL_ETIMEOUT: return "timed out";
	case HL_ESTORE: return "store error";
	case HL_EREPLAY: return "replayed";
	case HL_EKEYS: return "the station's keys were rotated since this process read them";
	case HL_EBUSY: return "over the limit for now";
	}
	if (code < 0 && code > -HL_E_BASE)
		return strerror(-code);
	return "unknown error";
}
