/* cmd/run.c — `hotline run` (being written). */
#include "cmd/cmd.h"

int run_main(struct hl_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return hl_fail("run", "not implemented yet");
}
