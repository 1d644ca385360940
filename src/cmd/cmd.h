/* cmd/cmd.h — the subcommands.  Each lives in its own file cmd/NAME.c and
 * exposes NAME_main(ctx, argc, argv), where argv[0] is the subcommand name.
 *
 * Exit status contract (PRODUCT.md): 0 success, 1 failure (one clear line on
 * stderr), 2 usage error. */
#ifndef HL_CMD_CMD_H
#define HL_CMD_CMD_H

enum { HL_EXIT_OK = 0, HL_EXIT_FAIL = 1, HL_EXIT_USAGE = 2 };

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
int voice_main(struct hl_ctx *ctx, int argc, char **argv);
int call_main(struct hl_ctx *ctx, int argc, char **argv);

/* Reports a failure on stderr as "hotline NAME: MESSAGE" and returns
 * HL_EXIT_FAIL, so a command can `return fail(...)`. */
int hl_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for usage errors; returns HL_EXIT_USAGE. */
int hl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
