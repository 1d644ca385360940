/* main.c — the hotline binary: global options, then a table of subcommands
 * (one file each under cmd/).
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

static const struct hl_command commands[] = {
	{ "init", init_main, "NAME [--listen HOST:PORT] [--address HOST:PORT]",
	  "create a station: keys, configuration, store" },
	{ "card", card_main, "", "print this station's card" },
	{ "peer", peer_main, "add FILE|- [--address HOST:PORT] [--fingerprint FP] | list | remove NAME",
	  "pin, list and remove peer stations" },
	{ "run", run_main, "", "the station daemon, in the foreground (logs to stderr)" },
	{ "status", status_main, "[--json]", "each link's state" },
	{ "send", send_main, "PEER [-p PRECEDENCE] [-s SUBJECT] [-a FILE]... [--wait[=SECONDS]] [--lines] [TEXT...]",
	  "queue a message to a peer" },
	{ "inbox", inbox_main, "[--json] [--unread]", "received messages" },
	{ "outbox", outbox_main, "[--json]", "sent messages with their state" },
	{ "read", read_main, "ID [--json] [--save DIR]", "one message, with its verification" },
	{ "watch", watch_main, "[--json]", "follow arrivals, receipts, checks and alarms as they happen" },
	{ "check", check_main, "PEER [--timeout SECONDS] [--json]", "test the line to a peer now" },
	{ "answer", answer_main, "[ID] [--json]", "answer, as a person, the line checks that wait for one" },
	{ "agree", agree_main, "propose PEER FILE | sign ID | list [--json]", "co-signed documents" },
	{ "record", record_main, "export PEER [-o FILE] [--with-attachments] [--only ID...] | verify FILE --card A --card B | show FILE", "the record of a link, verifiable by anyone" },
	{ "voice", voice_main, "send PEER [-p P] [-s SUBJECT] [--seconds N] [FILE.wav] | play ID [-o OUT.wav]",
	  "voice messages: record or encode speech and send it; play one" },
	{ "call", call_main, "PEER [-p P] [--input WAV] [--output WAV] | answer [PEER] | hangup [PEER]",
	  "live calls: ring a peer, answer, hang up" },
	{ "bundle", bundle_main, "export PEER -o FILE | import FILE", "the courier path: sealed files a peer imports" },
};

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] COMMAND [ARGS...]\n\n"
		   "A secure direct line between stations that pin each other's keys.\n\n"
		   "Commands:\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fprintf(f, "  %-8s %s\n", commands[i].name, commands[i].description);
	fprintf(f, "\nOptions:\n"
		   "  -d DIR     the station directory (default: $HOTLINE_DIR, else ~/.hotline)\n"
		   "  --help     this text; 'hotline COMMAND --help' for a command\n"
		   "  --version  the version\n");
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

	const char *name = argv[optind];
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(commands[i].name, name) == 0) {
			if (!ctx.dir && strcmp(name, "record") != 0) {
				fprintf(stderr, "hotline: no station directory: give -d DIR or set HOTLINE_DIR\n");
				free(home_dir);
				return HL_EXIT_USAGE;
			}
			int sub_argc = argc - optind;
			char **sub_argv = argv + optind;
			/* glibc: optind = 0 makes the command's getopt start afresh. */
			optind = 0;
			int ret = commands[i].fn(&ctx, sub_argc, sub_argv);
			free(home_dir);
			return ret;
		}
	}
	fprintf(stderr, "hotline: unknown command '%s'\n", name);
	usage(stderr);
	free(home_dir);
	return HL_EXIT_USAGE;
}
