/* cmd/box.h — the sandbox of a command that parses bytes from outside
 * (docs/sandbox.md section 1): `bundle import FILE` and `--maildir`,
 * `record verify` and `show`.  Each opens what it needs first (the store,
 * the key holder — forked before, holder/client.h — the file it reads),
 * then enters its role's sandbox, then parses. */
#ifndef HL_CMD_BOX_H
#define HL_CMD_BOX_H

#include <stdbool.h>

#include "daemon/sandbox.h"

/* Enters ROLE's sandbox for command CMD (station DIR and MAILDIR, either
 * NULL where the role has none); ON false (station.conf's `Sandbox = off`)
 * leaves it out.  HL_EXIT_OK, or HL_EXIT_FAIL after one line. */
int hl_cmd_box(const char *cmd, enum hl_sandbox_role role, const char *dir, const char *maildir,
	       bool on);

#endif
