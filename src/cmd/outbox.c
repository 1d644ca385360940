/* cmd/outbox.c — `hotline outbox`: the sent messages with their state (--json).
 * The listing itself is shared with the other box (cmd/msgcmd.c). */
#include "cmd/cmd.h"
#include "cmd/msgcmd.h"

int outbox_main(struct hl_ctx *ctx, int argc, char **argv)
{
	return hl_msgcmd_box(ctx, argc, argv, HL_DIR_OUT);
}
