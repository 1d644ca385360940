/* cmd/common.c — what every subcommand shares: error reporting, and the
 * one test (and the one message) for "there is no station here". */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "util/fsutil.h"
#include "util/text.h"

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

int hl_need_station(const struct hl_ctx *ctx, const char *cmd)
{
	struct stat sb;
	if (!ctx->dir)
		return hl_usage_error(cmd, "no station directory: give -d DIR or set HOTLINE_DIR");
	char *conf = hl_path_join(ctx->dir, HL_CONF_FILE);
	int r = lstat(conf, &sb);
	int err = errno;
	free(conf);
	/* Only "nothing there" is "no station": any other trouble (a file
	 * we may not read, a bad file) is named by the command that opens
	 * it, with its own cause. */
	if (r < 0 && (err == ENOENT || err == ENOTDIR))
		return hl_no_station(ctx, cmd);
	return HL_EXIT_OK;
}

int hl_no_station(const struct hl_ctx *ctx, const char *cmd)
{
	return hl_fail(cmd, "no station at %s (create one with 'hotline init NAME')", ctx->dir);
}

int hl_confirm(const char *cmd, bool yes, const char *question)
{
	char answer[16];
	if (yes)
		return 1;
	/* Only a person at a terminal can say yes: a script says --yes. */
	if (!isatty(STDIN_FILENO)) {
		hl_fail(cmd, "not on a terminal, so nobody can confirm: nothing was done "
			"(give --yes to confirm in advance)");
		return -1;
	}
	fprintf(stderr, "%s [y/N] ", question);
	fflush(stderr);
	if (!fgets(answer, sizeof(answer), stdin))
		return 0;
	return strcmp(answer, "y\n") == 0 || strcmp(answer, "yes\n") == 0 ||
	       strcmp(answer, "Y\n") == 0 || strcmp(answer, "YES\n") == 0;
}

int hl_args_done(const struct hl_ctx *ctx, const char *cmd, int argc, char **argv)
{
	if (optind < argc) {
		char q[128];
		hl_sanitize(argv[optind], strlen(argv[optind]), q, sizeof(q), 0);
		return hl_usage_error(cmd, "unexpected argument '%s'", q);
	}
	return hl_need_station(ctx, cmd);
}
