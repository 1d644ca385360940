/* cmd/cmd.h — the subcommands.  Each lives in its own file cmd/NAME.c and
 * exposes NAME_main(ctx, argc, argv), where argv[0] is the subcommand name.
 *
 * Exit status contract: 0 success, 1 failure (one clear line on stderr),
 * 2 usage error; `status` adds 3 (the daemon is not running). */
#ifndef HL_CMD_CMD_H
#define HL_CMD_CMD_H

#include <stdbool.h>

enum { HL_EXIT_OK = 0, HL_EXIT_FAIL = 1, HL_EXIT_USAGE = 2 };
/* `status` only: the daemon is not running (the status is printed all the
 * same), as an LSB init script's status action says "not running". */
enum { HL_EXIT_NOT_RUNNING = 3 };

struct hl_ctx {
	/* The station directory: -d DIR, else $HOTLINE_DIR, else ~/.hotline. */
	const char *dir;
};

struct hl_command {
	const char *name;
	int (*fn)(struct hl_ctx *ctx, int argc, char **argv);
	const char *usage;        /* arguments, after the name */
	const char *description;  /* one line */
};

int init_main(struct hl_ctx *ctx, int argc, char **argv);
int card_main(struct hl_ctx *ctx, int argc, char **argv);
int peer_main(struct hl_ctx *ctx, int argc, char **argv);
int run_main(struct hl_ctx *ctx, int argc, char **argv);
int status_main(struct hl_ctx *ctx, int argc, char **argv);
int send_main(struct hl_ctx *ctx, int argc, char **argv);
int inbox_main(struct hl_ctx *ctx, int argc, char **argv);
int outbox_main(struct hl_ctx *ctx, int argc, char **argv);
int read_main(struct hl_ctx *ctx, int argc, char **argv);
int watch_main(struct hl_ctx *ctx, int argc, char **argv);
int check_main(struct hl_ctx *ctx, int argc, char **argv);
int answer_main(struct hl_ctx *ctx, int argc, char **argv);
int agree_main(struct hl_ctx *ctx, int argc, char **argv);
int record_main(struct hl_ctx *ctx, int argc, char **argv);
int bundle_main(struct hl_ctx *ctx, int argc, char **argv);
int purge_main(struct hl_ctx *ctx, int argc, char **argv);
int backup_main(struct hl_ctx *ctx, int argc, char **argv);
int voice_main(struct hl_ctx *ctx, int argc, char **argv);
int call_main(struct hl_ctx *ctx, int argc, char **argv);
int key_main(struct hl_ctx *ctx, int argc, char **argv);

/* Reports a failure on stderr as "hotline NAME: MESSAGE" and returns
 * HL_EXIT_FAIL, so a command can `return fail(...)`. */
int hl_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for usage errors; returns HL_EXIT_USAGE. */
int hl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Every command that works on a station calls this first (after its
 * options, so --help needs none): HL_EXIT_OK when CTX->dir holds a
 * station (its station.conf), else the one message every command gives,
 * "no station at DIR (create one with 'hotline init NAME')", and
 * HL_EXIT_FAIL. */
int hl_need_station(const struct hl_ctx *ctx, const char *cmd);
/* After a command's options: HL_EXIT_USAGE for an argument left over
 * (ARGV[optind]), else hl_need_station(). */
int hl_args_done(const struct hl_ctx *ctx, const char *cmd, int argc, char **argv);
/* That message alone (for a command that found out later, say from
 * hl_conf_load's -ENOENT); returns HL_EXIT_FAIL. */
int hl_no_station(const struct hl_ctx *ctx, const char *cmd);

/* Asks QUESTION (on stderr) and reads the answer from the terminal: 1 yes,
 * 0 anything else.  YES (--yes) answers in advance.  Without a terminal on
 * stdin and without YES: -1, after the one line saying nothing was done. */
int hl_confirm(const char *cmd, bool yes, const char *question);

#endif
