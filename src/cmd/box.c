/* cmd/box.c — a command entering its sandbox (see box.h). */
#include "cmd/box.h"

#include "cmd/cmd.h"

int hl_cmd_box(const char *cmd, enum hl_sandbox_role role, const char *dir, const char *maildir,
	       bool on)
{
	struct hl_sandbox_spec spec = { .role = role, .station = dir, .maildir = maildir };
	char note[HL_SANDBOX_NOTE_LEN], err[512];
	if (on && hl_sandbox_enter(&spec, note, err, sizeof(err)) < 0)
		return hl_fail(cmd, "%s", err);
	return HL_EXIT_OK;
}
