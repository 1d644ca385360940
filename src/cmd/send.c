/* cmd/send.c — `hotline send`: queue a message to a peer, durably.
 *
 *   hotline send PEER [-p PRECEDENCE] [-s SUBJECT] [-a FILE]... [--wait[=SECONDS]]
 *                [--lines] [TEXT...]
 *
 * The body is the TEXT words joined by spaces, else standard input.  The
 * message is on disk when its id is printed.  A running daemon is handed
 * a text message (it has the store open and sends it at once); otherwise,
 * and for attachments, the command writes the store itself and the daemon
 * (if running, or when it starts) sends it.  --lines queues one message
 * per line of standard input, many per commit, printing each id once it
 * is durable.
 * --wait returns once the peer's receipt is in, printing a second line
 * "delivered to PEER at TIME" (the first stays the id): exit 1 on timeout.
 * An empty body without attachments is refused (exit 2: standard input
 * was probably not what the operator meant) unless --allow-empty says so. */
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "daemon/control_client.h"
#include "daemon/control_proto.h"
#include "deliver/stage.h"
#include "chain/queue.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/timefmt.h"

#define LINES_PER_COMMIT 2000
#define DEFAULT_WAIT_SECONDS 300

static void help(void)
{
	printf("usage: hotline send PEER [-p PRECEDENCE] [-s SUBJECT] [-a FILE]... [--wait[=SECONDS]] [TEXT...]\n"
	       "       hotline send PEER --lines [-p PRECEDENCE] [-s SUBJECT] < FILE\n\n"
	       "Queue a message to PEER and print its id once it is on disk.\n"
	       "The body is TEXT (words joined by spaces), else standard input; UTF-8 text.\n\n"
	       "  -p, --precedence P  flash, immediate, priority or routine (default routine)\n"
	       "  -s, --subject S     the subject line\n"
	       "  -a, --attach FILE   attach a file (repeatable; any kind of file)\n"
	       "  -w, --wait[=SECS]   wait for the peer's receipt (default %d s), then print a\n"
	       "                      second line: delivered to PEER at TIME; exit 1 on timeout\n"
	       "      --lines         one message per line of standard input\n"
	       "      --allow-empty   send an empty body without attachments (else refused)\n\n"
	       "The first line printed is always the message's id.\n"
	       "Exit status: 0 queued (with --wait: delivered), 1 failure, 2 usage error\n"
	       "(an empty message without --allow-empty is one).\n",
	       DEFAULT_WAIT_SECONDS);
}

/* Reads all of stdin, at most MAX bytes (one more is an error). */
static int read_stdin(size_t max, char **out, size_t *len)
{
	size_t cap = 4096, used = 0;
	char *buf = xmalloc(cap);
	for (;;) {
		if (used == cap) {
			cap *= 2;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = read(STDIN_FILENO, buf + used, cap - used);
		if (n < 0) {
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			free(buf);
			return HL_ETOOBIG;
		}
	}
	*out = buf;
	*len = used;
	return 0;
}

static char *join_words(int n, char **words)
{
	size_t len = 1;
	for (int i = 0; i < n; i++)
		len += strlen(words[i]) + 1;
	char *s = xmalloc(len), *p = s;
	for (int i = 0; i < n; i++) {
		size_t w = strlen(words[i]);
		memcpy(p, words[i], w);
		p += w;
		if (i + 1 < n)
			*p++ = ' ';
	}
	*p = '\0';
	return s;
}

/* --lines: one message per line, LINES_PER_COMMIT per transaction. */
static int send_lines(struct hl_ctx *ctx, struct hl_msgcmd *mc, const hl_peer_conf *peer,
		      struct hl_outgoing *o)
{
	char err[256];
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned long lineno = 0, batch = 0;
	int ret = HL_EXIT_OK;
	uint8_t (*ids)[HL_MSG_ID_LEN] = xmalloc(LINES_PER_COMMIT * sizeof(*ids));
	bool in_tx = false;
	struct hl_msg_batch chain;

	hl_msg_batch_init(&chain);
	while ((n = getline(&line, &cap, stdin)) >= 0) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if (!in_tx) {
			if (hl_store_begin(mc->store) < 0) {
				ret = hl_fail("send", "store: %s", hl_store_errmsg(mc->store));
				goto out;
			}
			in_tx = true;
			hl_msg_batch_init(&chain); /* valid for one transaction */
		}
		o->body = (const uint8_t *)line;
		o->body_len = (size_t)n;
		if (hl_msg_queue_text_batch(mc->store, mc->me, peer, o, &chain, ids[batch], err,
					    sizeof(err)) < 0) {
			ret = hl_fail("send", "line %lu: %s (the %lu message(s) of this batch were not queued)",
				      lineno, err, batch);
			goto out;
		}
		if (++batch == LINES_PER_COMMIT) {
			if (hl_msg_batch_flush(&chain, err, sizeof(err)) < 0) {
				ret = hl_fail("send", "%s (the %lu message(s) of this batch were not queued)",
					      err, batch);
				goto out;
			}
			hl_msg_batch_drop(&chain);
			if (hl_store_commit(mc->store) < 0) {
				in_tx = false;
				ret = hl_fail("send", "store: %s", hl_store_errmsg(mc->store));
				goto out;
			}
			in_tx = false;
			hl_msgcmd_print_ids(ids, batch);
			batch = 0;
			/* The daemon sends this batch while we sign the next
			 * (else it waits for its store poll, or for the end). */
			hl_msgcmd_poke_daemon(ctx);
		}
	}
	if (in_tx) {
		if (hl_msg_batch_flush(&chain, err, sizeof(err)) < 0) {
			ret = hl_fail("send", "%s (the %lu message(s) of this batch were not queued)",
				      err, batch);
			goto out;
		}
		in_tx = false;
		if (hl_store_commit(mc->store) < 0) {
			ret = hl_fail("send", "store: %s", hl_store_errmsg(mc->store));
			goto out;
		}
		hl_msgcmd_print_ids(ids, batch);
	}
out:
	if (in_tx)
		hl_store_rollback(mc->store);
	hl_msg_batch_drop(&chain);
	free(ids);
	free(line);
	return ret;
}

static bool in_store(struct hl_msgcmd *mc, const uint8_t id[static HL_MSG_ID_LEN])
{
	struct hl_msg_row row = { 0 };
	bool found = hl_store_get_message_by_id(mc->store, id, &row) == 0;
	hl_msg_row_clear(&row);
	return found;
}

/* What the staging hint needs (stage_hint). */
struct stage_ctx {
	struct hl_ctx *ctx;
	const char *peer;
	unsigned precedence;
	const uint8_t *id;
};

/* A large attachment's copy into out/ has begun: the running daemon may
 * send its bytes while we copy and hash (daemon/control_stage.c).  Only a
 * hint: its answer is not awaited, and a failure changes nothing.
 * HOTLINE_NO_STAGE=1 in the environment turns it off (for measuring). */
static void stage_hint(void *user, unsigned idx, uint64_t size, const char *path)
{
	const struct stage_ctx *sc = user;
	const char *off = getenv("HOTLINE_NO_STAGE");
	if (size < HL_STAGE_MIN || (off && strcmp(off, "1") == 0) ||
	    sc->precedence >= HL_PREC_COUNT)
		return;
	struct hl_ctl_request r = { .cmd = HL_CTL_STAGE, .peer = sc->peer };
	hl_msg_id_hex(sc->id, r.u.stage.hex);
	r.u.stage.precedence = (enum hl_precedence)sc->precedence;
	r.u.stage.part = idx + 1;
	r.u.stage.size = size;
	r.u.stage.path = path;
	json_t *req = hl_ctl_request_json(&r);
	if (req)
		(void)hl_control_notify(sc->ctx->dir, req, 1000);
	json_decref(req);
}

/* Queues O (its id chosen) through the store, without the daemon.  ASKED:
 * the daemon was asked and did not answer, so it may have queued it.
 * WAIT: subscribe to the daemon's events first (*WATCH_FD), so that its
 * answer comes while the commit waits for the disk. */
static int queue_direct(struct hl_ctx *ctx, struct hl_msgcmd *mc, const char *peer_name,
			const struct hl_outgoing *o, bool asked, bool wait, int *watch_fd)
{
	uint8_t id[HL_MSG_ID_LEN];
	char err[512];
	int ret;
	if ((ret = hl_msgcmd_open(ctx, "send", mc, true)) != HL_EXIT_OK)
		return ret;
	if (asked && in_store(mc, o->id))
		return HL_EXIT_OK;
	const hl_peer_conf *peer = hl_conf_peer_by_name(mc->conf, peer_name);
	if (!peer)
		return hl_fail("send", "no peer named '%s' (hotline peer list)", peer_name);
	if (wait && *watch_fd < 0)
		*watch_fd = hl_msgcmd_watch_start(ctx);
	ret = hl_msg_send(ctx->dir, mc->store, mc->me, peer, o, id, err, sizeof(err));
	/* The daemon's late commit got there first: queued all the same. */
	if (ret == HL_EEXIST && in_store(mc, o->id))
		return HL_EXIT_OK;
	if (ret < 0)
		return hl_fail("send", "%s", err);
	return HL_EXIT_OK;
}

/* send's options and operands (parse_args). */
struct send_args {
	struct hl_outgoing o;
	const char **att;       /* -a FILE..., argc + 1 slots */
	long wait_secs;         /* -1: no --wait */
	bool lines, allow_empty;
	const char *peer_name;
};

/* Parses ARGV into A (A->att allocated by the caller): -1 to go on, else
 * the exit status (--help: 0). */
static int parse_args(int argc, char **argv, struct send_args *a)
{
	static const struct option opts[] = {
		{ "precedence", required_argument, NULL, 'p' },
		{ "subject", required_argument, NULL, 's' },
		{ "attach", required_argument, NULL, 'a' },
		{ "wait", optional_argument, NULL, 'w' },
		{ "lines", no_argument, NULL, 'L' },
		{ "allow-empty", no_argument, NULL, 'E' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "p:s:a:w::h", opts, NULL)) != -1) {
		switch (c) {
		case 'p': {
			enum hl_precedence p;
			if (hl_precedence_parse(optarg, &p) < 0)
				return hl_usage_error("send", "unknown precedence '%s' (want flash, immediate, priority or routine)", optarg);
			a->o.precedence = p;
			break;
		}
		case 's':
			a->o.subject = optarg;
			break;
		case 'a':
			a->att[a->o.n_attachments++] = optarg;
			break;
		case 'w':
			a->wait_secs = DEFAULT_WAIT_SECONDS;
			if (optarg) {
				char *end;
				a->wait_secs = strtol(optarg, &end, 10);
				if (*optarg == '\0' || *end || a->wait_secs <= 0 ||
				    a->wait_secs > 86400 * 30)
					return hl_usage_error("send", "bad --wait value '%s' (seconds, 1 or more)", optarg);
			}
			break;
		case 'L':
			a->lines = true;
			break;
		case 'E':
			a->allow_empty = true;
			break;
		case 'h':
			help();
			return HL_EXIT_OK;
		default:
			return hl_usage_error("send", "bad option");
		}
	}
	if (optind >= argc)
		return hl_usage_error("send", "which peer? (hotline peer list)");
	a->peer_name = argv[optind++];
	if (a->lines && (a->o.n_attachments || optind < argc || a->wait_secs >= 0))
		return hl_usage_error("send", "--lines takes the messages from standard input, without TEXT, -a or --wait");
	a->o.attachments = a->att;
	return -1;
}

/* --lines: the store opened, the peer found, standard input's lines queued. */
static int queue_lines(struct hl_ctx *ctx, struct hl_msgcmd *mc, struct send_args *a)
{
	int ret;
	if ((ret = hl_msgcmd_open(ctx, "send", mc, true)) != HL_EXIT_OK)
		return ret;
	const hl_peer_conf *peer = hl_conf_peer_by_name(mc->conf, a->peer_name);
	if (!peer)
		return hl_fail("send", "no peer named '%s' (hotline peer list)", a->peer_name);
	ret = send_lines(ctx, mc, peer, &a->o);
	hl_msgcmd_poke_daemon(ctx);
	return ret;
}

/* The body into *BODY (freed by the caller) and A->o: the words of TEXT
 * (ARGV from optind), else standard input.  -1 to go on, else the exit
 * status: an empty message is refused without --allow-empty. */
static int read_body(int argc, char **argv, struct send_args *a, char **body)
{
	size_t body_len;
	if (optind < argc) {
		*body = join_words(argc - optind, argv + optind);
		body_len = strlen(*body);
	} else {
		int r = read_stdin(HL_BODY_MAX, body, &body_len);
		if (r == HL_ETOOBIG)
			return hl_fail("send", "the body on standard input is over %u bytes; send it as an attachment with -a", HL_BODY_MAX);
		else if (r < 0)
			return hl_fail("send", "cannot read standard input");
	}
	if (body_len == 0 && a->o.n_attachments == 0 && !a->allow_empty)
		return hl_usage_error("send", "the message is empty (no TEXT, nothing on standard input, "
				      "no -a FILE); nothing was sent (--allow-empty sends it anyway)");
	a->o.body = (const uint8_t *)*body;
	a->o.body_len = body_len;
	return -1;
}

/* Names the message, queues it (through the running daemon, else the store
 * directly), prints its id and, with --wait, waits for the peer's receipt.
 * *WATCH_FD: the daemon's event subscription, closed by the caller. */
static int queue_one(struct hl_ctx *ctx, struct hl_msgcmd *mc, struct send_args *a,
		     int *watch_fd)
{
	int ret;
	/* The message is named here, whichever way it is queued. */
	uint8_t id[HL_MSG_ID_LEN];
	randombytes_buf(id, sizeof(id));
	a->o.id = id;
	struct stage_ctx sc = { ctx, a->peer_name, a->o.precedence, id };
	a->o.on_copy = stage_hint;
	a->o.copy_user = &sc;
	int by = hl_msgcmd_daemon_send(ctx, a->peer_name, &a->o, a->wait_secs > 0, id, watch_fd);
	if (by != 1) {
		if ((ret = queue_direct(ctx, mc, a->peer_name, &a->o, by < 0, a->wait_secs > 0,
					watch_fd)) != HL_EXIT_OK)
			return ret;
	}
	hl_msgcmd_print_ids(&id, 1);
	if (by != 1)
		hl_msgcmd_poke_daemon(ctx);
	if (a->wait_secs > 0) {
		ret = hl_msgcmd_wait_delivered(ctx, mc, id, (uint64_t)a->wait_secs * 1000, *watch_fd,
					       by == 1);
		*watch_fd = -1;
		return ret;
	}
	return HL_EXIT_OK;
}

int send_main(struct hl_ctx *ctx, int argc, char **argv)
{
	struct send_args a = {
		.o = { .precedence = HL_PREC_ROUTINE, .subject = "" },
		.att = xcalloc((size_t)argc + 1, sizeof(*a.att)),
		.wait_secs = -1,
	};
	char *body = NULL;
	struct hl_msgcmd mc = { 0 };
	int ret, watch_fd = -1;

	if ((ret = parse_args(argc, argv, &a)) >= 0)
		goto out;
	if ((ret = hl_need_station(ctx, "send")) != HL_EXIT_OK)
		goto out;
	if (a.lines)
		ret = queue_lines(ctx, &mc, &a);
	else if ((ret = read_body(argc, argv, &a, &body)) < 0)
		ret = queue_one(ctx, &mc, &a, &watch_fd);
out:
	if (watch_fd >= 0)
		close(watch_fd);
	hl_msgcmd_close(&mc);
	free(body);
	free(a.att);
	return ret;
}
