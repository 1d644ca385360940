/* cmd/record.c — `hotline record`: the record of a link, for a third party.
 *
 *   hotline record export PEER [-o FILE] [--with-attachments] [--only ID...]
 *   hotline record verify FILE --card A --card B
 *   hotline record show FILE
 *
 * export reads this station's store (one snapshot) and writes the record
 * (docs/record.md), sealed with this station's SigningKey; with -o it
 * replaces FILE atomically (a temporary in the same directory, fsynced,
 * renamed).  PEER may be a peer removed since (peer list --removed): the
 * store keeps its name and keys, so its history stays exportable.  verify and show need no station: they read FILE and, for
 * verify, the two cards given, and trust nothing else; they parse them in
 * the sandbox (daemon/sandbox.h, role decode: no file, no socket), once
 * the files are open.
 *
 * DIAGNOSTICS  verify exits 0 only when everything holds; otherwise it
 * prints one line naming the first bad entry and why, and exits 1.  Refused
 * and not-received positions, which hold but cannot be checked, and proven
 * equivocation are noted on stdout.  show exits 1 (after printing) when
 * the record does not verify against its own cards. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/box.h"
#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "record/export.h"
#include "record/format.h"
#include "record/show.h"
#include "record/verify.h"
#include "util/err.h"
#include "util/fdsink.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"

#define CMD_EXPORT "record export"
#define CMD_VERIFY "record verify"
#define CMD_SHOW "record show"

static void help(void)
{
	printf("usage: hotline record export PEER [-o FILE] [--with-attachments] [--only ID...]\n"
	       "       hotline record verify FILE --card A --card B\n"
	       "       hotline record show FILE\n\n"
	       "The record of the link with a peer: both stations' cards and every signed entry\n"
	       "of both chains, sealed by the exporting station, for a third party to check\n"
	       "with the two cards and nothing else (docs/record.md).\n\n"
	       "export  write this station's record of the link with PEER (pinned, or removed\n"
	       "        since: 'hotline peer list --removed'; a removed peer's fingerprint\n"
	       "        also names it)\n"
	       "  -o, --output FILE     write FILE (replaced atomically); default standard output\n"
	       "      --with-attachments  include the attachments of disclosed messages\n"
	       "      --only ID...      disclose only these messages' subjects and bodies (ids\n"
	       "                        or unique prefixes); the others stay proven by their\n"
	       "                        salted hashes without being revealed\n"
	       "verify  check every signature, link and reference against the cards given;\n"
	       "        exit 0 only if everything holds, else name the first bad entry (exit 1)\n"
	       "  -c, --card FILE       a station's card, as 'hotline card' prints it (twice)\n"
	       "show    print the history for people (verified against the record's own cards)\n\n"
	       "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

static void export_warn(void *arg, const char *line)
{
	(void)arg;
	fprintf(stderr, "hotline record export: warning: %s\n", line);
}

/* ---- export ---- */

static int do_export(struct hl_ctx *ctx, const char *peer_name, const char *output,
		     bool with_att, bool only, const char *const *ids, size_t nids)
{
	struct hl_station mc = { 0 };
	struct hl_fd_sink sink = { .fd = -1 };
	char *tmp = NULL, err[512];
	int ret;
	if (!output && isatty(STDOUT_FILENO)) {
		ret = hl_usage_error(CMD_EXPORT, "the record is binary: give -o FILE, or redirect "
				     "standard output");
		goto out;
	}
	if ((ret = hl_msgcmd_open(ctx, CMD_EXPORT, &mc, true)) != HL_EXIT_OK)
		goto out;
	/* A removed peer's history stays exportable: its card is rebuilt
	 * from the store (name and keys; no address, which a record does not
	 * need). */
	hl_peer_conf removed_conf;
	bool removed;
	if ((ret = hl_msgcmd_peer(&mc, CMD_EXPORT, peer_name, &removed_conf, &removed)) != HL_EXIT_OK)
		goto out;
	const hl_peer_conf *peer = &removed_conf;
	if (removed)
		fprintf(stderr, "hotline record export: note: %s is no longer pinned; its card "
			"comes from the store (without an address)\n", peer->name);
	if (output) {
		tmp = xasprintf("%s.tmp-%ld", output, (long)getpid());
		sink.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (sink.fd < 0) {
			ret = hl_fail(CMD_EXPORT, "cannot create %s: %s", tmp, strerror(errno));
			free(tmp);
			tmp = NULL;
			goto out;
		}
	} else {
		sink.fd = STDOUT_FILENO;
	}
	hl_fd_sink_init(&sink, sink.fd);
	struct hl_record_writer w;
	hl_record_writer_init(&w, hl_fd_sink_write, &sink);
	struct hl_record_export o = {
		.dir = ctx->dir, .store = mc.store, .me = mc.me, .conf = mc.conf, .peer = peer,
		.with_attachments = with_att, .only = only, .ids = ids, .nids = nids,
		.warn = export_warn,
	};
	struct hl_record_export_stats st;
	int r = hl_record_export(&o, &w, &st, err, sizeof(err));
	if (r == 0 && (r = hl_fd_sink_flush(&sink)) < 0)
		snprintf(err, sizeof(err), "%s: %s", output ? tmp : "standard output", strerror(-r));
	if (r == 0 && output && (fsync(sink.fd) < 0 || rename(tmp, output) < 0)) {
		r = -errno;
		snprintf(err, sizeof(err), "%s: %s", output, strerror(errno));
	}
	if (r == 0 && output)
		hl_fsync_parent(output);
	if (r < 0) {
		ret = hl_fail(CMD_EXPORT, "%s", err);
		goto out;
	}
	if (output) {
		free(tmp);
		tmp = NULL; /* renamed: nothing to remove */
	}
	FILE *f = output ? stdout : stderr;
	fprintf(f, "%s: %zu entries of %s, %zu of %s (%zu refused, %zu not received); "
		"%zu message(s) disclosed, %zu withheld; %zu attachment(s)",
		output ? output : "record", st.entries[0], mc.conf->name, st.entries[1], peer->name,
		st.refused, st.absent, st.disclosed, st.withheld, st.attachments);
	if (st.purged)
		fprintf(f, "; %zu message(s) purged (retention), listed as such", st.purged);
	if (st.evidence)
		fprintf(f, "; %zu piece(s) of evidence that %s equivocated", st.evidence,
			peer->name);
	fprintf(f, "\n");
	ret = HL_EXIT_OK;
out:
	if (sink.fd >= 0 && sink.fd != STDOUT_FILENO)
		close(sink.fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	hl_fd_sink_free(&sink);
	hl_msgcmd_close(&mc);
	return ret;
}

/* ---- reading a record file ---- */

/* PATH opened for reading; on failure prints the one line and returns -1. */
static int open_file(const char *cmd, const char *path)
{
	char q[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		hl_sanitize(path, strlen(path), q, sizeof(q), 0);
		hl_fail(cmd, "%s: %s", q, strerror(errno));
	}
	return fd;
}

/* Parses the record open on FD (read in pieces, never whole:
 * record/reader.h; FD is closed); on failure prints the one line and
 * returns HL_EXIT_FAIL. */
static int parse_record(const char *cmd, const char *path, int fd, struct hl_record **rec)
{
	char err[512], q[256];
	int r = hl_record_open(fd, rec, err, sizeof(err));
	close(fd);
	if (r < 0) {
		hl_sanitize(path, strlen(path), q, sizeof(q), 0);
		return hl_fail(cmd, "%s: %s", q, err);
	}
	return HL_EXIT_OK;
}

/* A card file's text (*TEXT, *LEN), read whole before the sandbox. */
static int read_card(const char *path, char **text, size_t *len)
{
	char q[256];
	int r = hl_read_file(path, HL_CARD_MAX_BYTES, text, len);
	if (r < 0) {
		hl_sanitize(path, strlen(path), q, sizeof(q), 0);
		return hl_fail(CMD_VERIFY, "card %s: %s", q, hl_strerror(r));
	}
	return HL_EXIT_OK;
}

static int parse_card(const char *path, const char *text, size_t len, hl_card *card)
{
	char err[HL_CONF_ERR_LEN], q[256];
	hl_sanitize(path, strlen(path), q, sizeof(q), 0);
	if (hl_card_parse(text, len, q, card, err) < 0)
		return hl_fail(CMD_VERIFY, "%s", err);
	return HL_EXIT_OK;
}

/* The two cards' texts and the record opened, then the sandbox (a record
 * and its cards come from anyone: docs/sandbox.md), then the parsing. */
static int load_verify(const char *path, const char *card_a, const char *card_b, hl_card *a,
		       hl_card *b, struct hl_record **rec)
{
	char *ta = NULL, *tb = NULL;
	size_t la = 0, lb = 0;
	int fd = -1, ret;
	if ((ret = read_card(card_a, &ta, &la)) != HL_EXIT_OK ||
	    (ret = read_card(card_b, &tb, &lb)) != HL_EXIT_OK)
		goto out;
	if ((fd = open_file(CMD_VERIFY, path)) < 0) {
		ret = HL_EXIT_FAIL;
		goto out;
	}
	if ((ret = hl_cmd_box(CMD_VERIFY, HL_SANDBOX_DECODE, NULL, NULL, true)) != HL_EXIT_OK ||
	    (ret = parse_card(card_a, ta, la, a)) != HL_EXIT_OK ||
	    (ret = parse_card(card_b, tb, lb, b)) != HL_EXIT_OK)
		goto out;
	ret = parse_record(CMD_VERIFY, path, fd, rec);
	fd = -1;
out:
	if (fd >= 0)
		close(fd);
	free(ta);
	free(tb);
	return ret;
}

/* Notes are printed only when the record verifies: beside a failure they
 * would bury the one line that matters. */
struct notes {
	char **line;
	size_t n, cap;
};

static void keep_note(void *arg, const char *line)
{
	struct notes *ns = arg;
	if (ns->n == ns->cap) {
		ns->cap = ns->cap ? ns->cap * 2 : 16;
		ns->line = xrealloc(ns->line, ns->cap * sizeof(*ns->line));
	}
	ns->line[ns->n++] = xstrdup(line);
}

static int do_verify(const char *path, const char *card_a, const char *card_b)
{
	hl_card a, b;
	struct hl_record *rec = NULL;
	struct hl_record_verdict v;
	struct notes notes = { 0 };
	char q[256];
	int ret;
	if ((ret = load_verify(path, card_a, card_b, &a, &b, &rec)) != HL_EXIT_OK)
		goto out;
	hl_sanitize(path, strlen(path), q, sizeof(q), 0);
	if (hl_record_verify(rec, &a, &b, keep_note, &notes, &v) < 0) {
		ret = hl_fail(CMD_VERIFY, "%s: %s", q, v.why);
		goto out;
	}
	for (size_t i = 0; i < notes.n; i++)
		printf("note: %s\n", notes.line[i]);
	const hl_card *exp = v.exporter ? &b : &a, *other = v.exporter ? &a : &b;
	printf("%s: verified: exported by %s; %zu items of %s, %zu of %s",
	       q, exp->name, v.items[0], exp->name, v.items[1], other->name);
	if (v.refused[1] || v.absent[1])
		printf(" (%zu refused and %zu not received: not checkable)", v.refused[1],
		       v.absent[1]);
	printf("; %zu message(s) disclosed, %zu withheld (proven by salted hashes", v.disclosed,
	       v.withheld);
	if (v.purged)
		printf("; %zu of them purged by %s", v.purged, exp->name);
	printf("); %zu attachment(s) checked\n", v.attachments);
	if (v.equivocations)
		printf("%s: EQUIVOCATION proven %zu time(s) (see the notes above)\n", q,
		       v.equivocations);
	ret = HL_EXIT_OK;
out:
	for (size_t i = 0; i < notes.n; i++)
		free(notes.line[i]);
	free(notes.line);
	hl_record_free(rec);
	return ret;
}

static int do_show(const char *path)
{
	struct hl_record *rec = NULL;
	int ret = HL_EXIT_FAIL, fd = open_file(CMD_SHOW, path);
	if (fd >= 0 && (ret = hl_cmd_box(CMD_SHOW, HL_SANDBOX_DECODE, NULL, NULL, true)) != HL_EXIT_OK)
		close(fd);
	else if (fd >= 0)
		ret = parse_record(CMD_SHOW, path, fd, &rec);
	if (ret == HL_EXIT_OK) {
		int r = hl_record_show(rec, stdout);
		if (fflush(stdout) != 0)
			ret = hl_fail(CMD_SHOW, "cannot write the output");
		else if (r < 0)
			ret = HL_EXIT_FAIL; /* the warning is at the top of the output */
	}
	hl_record_free(rec);
	return ret;
}

int record_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "with-attachments", no_argument, NULL, 'A' },
		{ "only", optional_argument, NULL, 'O' },
		{ "card", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *output = NULL, *cards[2] = { NULL, NULL };
	const char **ids = xcalloc((size_t)argc + 1, sizeof(*ids));
	size_t nids = 0, ncards = 0;
	bool with_att = false, only = false;
	int ret, c;

	while ((c = getopt_long(argc, argv, "o:c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			output = optarg;
			break;
		case 'A':
			with_att = true;
			break;
		case 'O':
			only = true;
			if (optarg)
				ids[nids++] = optarg;
			break;
		case 'c':
			if (ncards == 2) {
				ret = hl_usage_error("record", "--card is given twice, not more");
				goto out;
			}
			cards[ncards++] = optarg;
			break;
		case 'h':
			help();
			ret = HL_EXIT_OK;
			goto out;
		default:
			ret = hl_usage_error("record", "bad option");
			goto out;
		}
	}
	if (optind >= argc) {
		ret = hl_usage_error("record", "export, verify or show?");
		goto out;
	}
	const char *sub = argv[optind++];
	int npos = argc - optind;
	bool is_export = strcmp(sub, "export") == 0;
	if (!is_export && (output || with_att || only)) {
		ret = hl_usage_error("record", "-o, --with-attachments and --only are for export");
		goto out;
	}
	if (strcmp(sub, "verify") != 0 && ncards) {
		ret = hl_usage_error("record", "--card is for verify");
		goto out;
	}
	if (is_export) {
		if (npos < 1) {
			ret = hl_usage_error("record", "export: which peer? (hotline peer list)");
			goto out;
		}
		if (npos > 1 && !only) {
			ret = hl_usage_error("record", "export: one peer; message ids go after --only");
			goto out;
		}
		for (int i = optind + 1; i < argc; i++)
			ids[nids++] = argv[i];
		ret = do_export(ctx, argv[optind], output, with_att, only, ids, nids);
	} else if (strcmp(sub, "verify") == 0) {
		if (npos != 1 || ncards != 2) {
			ret = hl_usage_error("record", "verify takes one FILE and two --card options");
			goto out;
		}
		ret = do_verify(argv[optind], cards[0], cards[1]);
	} else if (strcmp(sub, "show") == 0) {
		if (npos != 1) {
			ret = hl_usage_error("record", "show takes one FILE");
			goto out;
		}
		ret = do_show(argv[optind]);
	} else {
		char q[64];
		hl_sanitize(sub, strlen(sub), q, sizeof(q), 0);
		ret = hl_usage_error("record", "unknown subcommand '%s' (export, verify or show)", q);
	}
out:
	free(ids);
	return ret;
}
