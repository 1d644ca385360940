/* main.c — the hotline binary: global options, then a table of subcommands
 * (one file each under cmd/).  Built twice: as hotline, and with
 * HOTLINE_DAEMON_BINARY as hotline-daemon, the same program whose Noise
 * transport encrypts its bulk data with libcrypto (crypto/aead.h), which
 * `hotline run` becomes (cmd/run.c says why).
 *
 * SYNOPSIS
 *   hotline [-d DIR] COMMAND [ARGS...]
 *
 * The station directory is -d DIR, else $HOTLINE_DIR, else ~/.hotline.
 * Exit status: 0 success, 1 failure, 2 usage error. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "util/mem.h"
#ifdef HOTLINE_DAEMON_BINARY
#include "crypto/aead.h"
#endif
#include "util/text.h"

static int help_main(struct hl_ctx *ctx, int argc, char **argv);

static const struct hl_command commands[] = {
	{ "init", init_main, "NAME [--listen HOST:PORT] [--address HOST:PORT]",
	  "create a station: keys, configuration, store" },
	{ "card", card_main, "[--fingerprint]", "print this station's card (its fingerprint on stderr)" },
	{ "peer", peer_main, "add FILE|- --fingerprint FP|--trust-without-checking [--address HOST:PORT] | list [--removed] | remove NAME",
	  "pin, list and remove peer stations" },
	{ "run", run_main, "", "the station daemon, in the foreground (logs to stderr)" },
	{ "status", status_main, "[--json]", "each link's state (exit 3: the daemon is not running)" },
	{ "send", send_main, "PEER [-p PRECEDENCE] [-s SUBJECT] [-a FILE]... [--wait[=SECONDS]] [--lines] [--allow-empty] [TEXT...]",
	  "queue a message to a peer" },
	{ "inbox", inbox_main, "[--json] [--unread]", "received messages" },
	{ "outbox", outbox_main, "[--json]", "sent messages with their state" },
	{ "read", read_main, "ID [--json] [--save DIR]", "one message, with its verification" },
	{ "watch", watch_main, "[--json] [--once]", "follow arrivals, receipts, checks and alarms as they happen" },
	{ "check", check_main, "PEER [--operator | --machine] [--timeout SECONDS] [--json]", "test the line to a peer now" },
	{ "answer", answer_main, "[ID] [--json]", "answer, as a person, the line checks that wait for one" },
	{ "agree", agree_main, "propose PEER FILE | sign ID [--yes] | list [--json]", "co-signed documents" },
	{ "record", record_main, "export PEER [-o FILE] [--with-attachments] [--only ID...] | verify FILE --card A --card B | show FILE", "the record of a link, verifiable by anyone" },
	{ "voice", voice_main, "send PEER [-p P] [-s SUBJECT] [--seconds N] [FILE.wav] | play ID [-o OUT.wav]",
	  "voice messages: record or encode speech and send it; play one" },
	{ "call", call_main, "PEER [-p P] [--input WAV] [--output WAV] | answer [PEER] | hangup [PEER]",
	  "live calls: ring a peer, answer, hang up" },
	{ "bundle", bundle_main, "export PEER -o FILE | import FILE", "the courier path: sealed files a peer imports" },
	{ "purge", purge_main, "[--before DATE | --older-than AGE] [--peer NAME] [--dry-run] [--yes]",
	  "purge old messages' contents; their signed record stays" },
	{ "key", key_main, "rotate [--reason routine|compromise]",
	  "new keys for the station, announced to every peer, signed by the old and the new key" },
	{ "backup", backup_main, "DIR", "a consistent copy of the station, while its daemon runs" },
	{ "help", help_main, "[COMMAND]", "this text, or COMMAND's (the same as 'hotline COMMAND --help')" },
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct hl_command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] COMMAND [ARGS...]\n\n"
		   "A secure direct line between stations that pin each other's keys.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].description);
	fprintf(f, "\nOptions:\n"
		   "  -d DIR     the station directory (default: $HOTLINE_DIR, else ~/.hotline)\n"
		   "  --help     this text; 'hotline help COMMAND' or 'hotline COMMAND --help'\n"
		   "             for a command\n"
		   "  --version  the version\n"
		   "\nExit status: 0 success, 1 failure (one line on standard error), 2 usage\n"
		   "error; 'hotline status' exits 3 when the daemon is not running.\n");
}

/* `hotline help [COMMAND]`: COMMAND's own --help, so the two never differ. */
static int help_main(struct hl_ctx *ctx, int argc, char **argv)
{
	if (argc == 1 || (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
					strcmp(argv[1], "-h") == 0))) {
		usage(stdout);
		return HL_EXIT_OK;
	}
	if (argc > 2)
		return hl_usage_error("help", "one command at a time");
	const struct hl_command *c = find_command(argv[1]);
	if (!c || c->fn == help_main) {
		if (c)
			return help_main(ctx, 1, argv);
		char q[64];
		hl_sanitize(argv[1], strlen(argv[1]), q, sizeof(q), 0);
		return hl_usage_error("help", "unknown command '%s' ('hotline help' lists them)", q);
	}
	char *sub_argv[] = { argv[1], (char *)"--help", NULL };
	optind = 0;
	return c->fn(ctx, 2, sub_argv);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct hl_ctx ctx = { 0 };
	char *home_dir = NULL;
	int c;

	/* '+': stop at the first non-option, the subcommand's name. */
	while ((c = getopt_long(argc, argv, "+d:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			ctx.dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return HL_EXIT_OK;
		case 'V':
			printf("hotline %s\n", HOTLINE_VERSION);
			return HL_EXIT_OK;
		default:
			usage(stderr);
			return HL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return HL_EXIT_USAGE;
	}
	if (!ctx.dir || !*ctx.dir)
		ctx.dir = getenv("HOTLINE_DIR");
	if (!ctx.dir || !*ctx.dir) {
		const char *home = getenv("HOME");
		if (home && *home) {
			home_dir = xasprintf("%s/.hotline", home);
			ctx.dir = home_dir;
		} else {
			/* No station to name; fine for what needs none ("record
			 * verify" by a third party): the rest refuse below. */
			ctx.dir = NULL;
		}
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "hotline: libsodium failed to initialise\n");
		return HL_EXIT_FAIL;
	}
#ifdef HOTLINE_DAEMON_BINARY
	hl_noise_set_bulk_aead(&hl_aead_evp);
#endif

	const char *name = argv[optind];
	const struct hl_command *cmd = find_command(name);
	if (cmd) {
		if (!ctx.dir && strcmp(name, "record") != 0 && strcmp(name, "help") != 0) {
			fprintf(stderr, "hotline: no station directory: give -d DIR or set HOTLINE_DIR\n");
			free(home_dir);
			return HL_EXIT_USAGE;
		}
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;
		/* glibc: optind = 0 makes the command's getopt start afresh. */
		optind = 0;
		int ret = cmd->fn(&ctx, sub_argc, sub_argv);
		free(home_dir);
		return ret;
	}
	fprintf(stderr, "hotline: unknown command '%s'\n", name);
	usage(stderr);
	free(home_dir);
	return HL_EXIT_USAGE;
}
