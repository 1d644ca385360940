/* cmd/status.c — `hotline status` (being written). */
#include "cmd/cmd.h"

int status_main(struct hl_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return hl_fail("status", "not implemented yet");
}
