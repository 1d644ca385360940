/* cmd/inbox.c — `hotline inbox`: the received messages (--json, --unread).
 * The listing itself is shared with the other box (cmd/msgcmd.c). */
#include "cmd/cmd.h"
#include "cmd/msgcmd.h"

int inbox_main(struct hl_ctx *ctx, int argc, char **argv)
{
	return hl_msgcmd_box(ctx, argc, argv, HL_DIR_IN);
}
