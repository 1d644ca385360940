/* cmd/run.c — `hotline run`: the station daemon, in the foreground.
 *
 * SYNOPSIS
 *   hotline [-d DIR] run [--verbose | --quiet]
 *
 * Logs to stderr (--verbose adds debug lines, --quiet keeps warnings and
 * errors only; either wins over station.conf's LogLevel).  Started as root,
 * the daemon drops every privilege before it reads from the network
 * (daemon/privs.h).  Stops on SIGTERM or SIGINT
 * after sending CLOSE to every peer, and exits 0.  Exits 1 when it cannot
 * start: another daemon holds the station's lock, station.conf or the
 * identity does not load, the Listen address is taken. */
#include <getopt.h>
#include <stdio.h>

#include "cmd/cmd.h"
#include "daemon/daemon.h"
#include "util/log.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] run [--verbose | --quiet]\n\n"
		   "Runs the station daemon in the foreground: links to every pinned peer,\n"
		   "answers 'hotline status', logs to stderr (under systemd: the journal).\n"
		   "SIGTERM or SIGINT stops it.  Started as root, it drops every capability\n"
		   "and becomes station.conf's User, if set, before it reads from the network.\n\n"
		   "  -v, --verbose  debug log lines too\n"
		   "  -q, --quiet    only warnings and errors\n"
		   "  -h, --help     this text\n"
		   "\nWithout -v or -q, station.conf's LogLevel decides (default info).\n");
}

int run_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char err[HL_DAEMON_ERR_LEN];
	int c;

	while ((c = getopt_long(argc, argv, "vqh", opts, NULL)) != -1) {
		switch (c) {
		case 'v':
			hl_log_set_level(HL_LOG_DEBUG);
			break;
		case 'q':
			hl_log_set_level(HL_LOG_WARN);
			break;
		case 'h':
			usage(stdout);
			return HL_EXIT_OK;
		default:
			return hl_usage_error("run", "unknown option");
		}
	}
	if (optind < argc)
		return hl_usage_error("run", "unexpected argument '%s'", argv[optind]);
	if (hl_daemon_run(ctx->dir, err) < 0)
		return hl_fail("run", "%s", err);
	return HL_EXIT_OK;
}
