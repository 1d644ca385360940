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
 * identity does not load, the Listen address is taken.
 *
 * The daemon binary.  `hotline run` replaces itself (execv, same process)
 * with hotline-daemon from beside the hotline binary: the same program
 * linked with libcrypto's ChaCha20-Poly1305 for the transport's bulk data
 * (crypto/aead.h), which the commands, started once per message, do not
 * carry (its tables would cost each start relocations).  Where
 * hotline-daemon is missing, or HOTLINE_NO_DAEMON_EXEC is set, the daemon
 * runs here with libsodium alone, and says so. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "crypto/noise.h"
#include "daemon/daemon.h"
#include "util/log.h"
#include "util/mem.h"

/* Replaces this process with hotline-daemon beside this binary, running
 * `-d DIR run ARGS...`; returns only when it cannot. */
static void exec_daemon_binary(const char *dir, int argc, char **argv)
{
	char self[4096];
	const char *env = getenv("HOTLINE_NO_DAEMON_EXEC");
	if (env && *env)
		return;
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n <= 0)
		return;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	if (!slash)
		return;
	*slash = '\0';
	char *path = xasprintf("%s/hotline-daemon", self);
	char **args = xcalloc((size_t)argc + 4, sizeof(*args));
	args[0] = path;
	args[1] = "-d";
	args[2] = (char *)dir;
	for (int i = 0; i < argc; i++)
		args[3 + i] = argv[i];
	execv(path, args);
	hl_warn("cannot run %s (%s): the daemon runs without libcrypto's ChaCha20-Poly1305, "
		"so documents move slower", path, strerror(errno));
	free(args);
	free(path);
}

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
	int ret = hl_args_done(ctx, "run", argc, argv);
	if (ret != HL_EXIT_OK)
		return ret;
	if (!hl_noise_bulk_aead())
		exec_daemon_binary(ctx->dir, argc, argv);
	if (hl_daemon_run(ctx->dir, err) < 0)
		return hl_fail("run", "%s", err);
	return HL_EXIT_OK;
}
