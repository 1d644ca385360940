/* daemon/sandbox_role.c — the sandbox's roles: their names, for the log
 * lines of sandbox.c and the errors of sandbox_sys.c (sandbox_role.h). */
#include "daemon/sandbox_role.h"

const char *hl_sandbox_role_name(enum hl_sandbox_role role)
{
	switch (role) {
	case HL_SANDBOX_NETWORK: return "network";
	case HL_SANDBOX_PICKUP: return "pickup";
	case HL_SANDBOX_IMPORT: return "import";
	case HL_SANDBOX_HOLDER: return "holder";
	default: return "decode";
	}
}
