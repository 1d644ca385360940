/* cmd/common.c — error reporting shared by the subcommands. */
#include <stdarg.h>
#include <stdio.h>

#include "cmd/cmd.h"

int hl_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "hotline %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return HL_EXIT_FAIL;
}

int hl_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "hotline %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'hotline %s --help'.\n", cmd);
	return HL_EXIT_USAGE;
}
