/* cmd/peer.c — `hotline peer` (being written). */
#include "cmd/cmd.h"

int peer_main(struct hl_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return hl_fail("peer", "not implemented yet");
}
