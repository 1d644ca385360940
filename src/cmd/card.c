/* cmd/card.c — `hotline card` (being written). */
#include "cmd/cmd.h"

int card_main(struct hl_ctx *ctx, int argc, char **argv)
{
	(void)ctx;
	(void)argc;
	(void)argv;
	return hl_fail("card", "not implemented yet");
}
