/* cmd/init.c — `hotline init` (being written). */
#include "cmd/cmd.h"

int init_main(struct hl_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return hl_fail("init", "not implemented yet");
}
