/* cmd/peer.c — `hotline peer add | list | remove`: pins, lists and removes
 * peer stations in station.conf.
 *
 * Edits go through hl_conf_add_peer / hl_conf_remove_peer, which lock
 * station.conf, re-read it, validate, and replace it atomically (rename into
 * place), so a running daemon that watches the file sees the whole change
 * or none of it, and a failed edit changes nothing. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "crypto/keys.h"
#include "holder/client.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"

static void help(void)
{
	printf("usage: hotline peer add FILE|- --fingerprint FP [--address HOST:PORT]\n"
	       "       hotline peer add FILE|- --trust-without-checking [--address HOST:PORT]\n"
	       "       hotline peer list [--removed]\n"
	       "       hotline peer remove NAME\n"
	       "\n"
	       "add     pins a peer from its card (a file, or '-' for stdin), as printed\n"
	       "        by 'hotline card' at the other station.\n"
	       "        --fingerprint FP  refuse the card unless its fingerprint is FP\n"
	       "                          (40 digits; spaces and dashes are ignored).\n"
	       "                          Get FP from the other station's operator by\n"
	       "                          a channel you trust, such as the telephone\n"
	       "                          ('hotline card' and 'hotline status' show it\n"
	       "                          there).  One of this option and the next is\n"
	       "                          required.\n"
	       "        --trust-without-checking  pin the card without checking its\n"
	       "                          fingerprint: whoever could change the card on\n"
	       "                          its way to you can then pose as the peer.\n"
	       "        --address HOST:PORT  dial the peer there instead of the card's\n"
	       "                          Address.  A peer with no address is not dialed:\n"
	       "                          it calls in.\n"
	       "        Refused, and nothing changed, when the card is malformed, its\n"
	       "        name is already pinned, or one of its keys is already pinned\n"
	       "        (under any name, or as this station's own).\n"
	       "list    prints one line per pinned peer: NAME, FINGERPRINT and ADDRESS\n"
	       "        ('-' when none), separated by tabs.\n"
	       "        --removed  the peers removed since, whose history the store keeps:\n"
	       "                   NAME, FINGERPRINT and 'removed' ('hotline record export\n"
	       "                   NAME' still exports it)\n"
	       "remove  unpins the peer NAME.  The history of the link stays in the store\n"
	       "        (record export, purge) and the peer shows in 'list --removed'.\n"
	       "\n"
	       "A running daemon notices the change by itself.\n"
	       "Exit status: 0 done, 1 failure, 2 usage error.\n");
}

/* Reports an option error for the subcommand SUB. */
static int option_error(const char *sub, int c, char **argv)
{
	char q[256];
	const char *arg = argv[optind - 1];
	hl_sanitize(arg, strlen(arg), q, sizeof(q), 0);
	if (c == ':')
		return hl_usage_error(sub, "'%s' needs a value", q);
	return hl_usage_error(sub, "unknown option '%s'", q);
}

static int conf_error(const char *sub, const struct hl_ctx *ctx, int r, const char *err)
{
	if (r == -ENOENT)
		return hl_no_station(ctx, sub);
	return hl_fail(sub, "%s", err);
}

/* Reads stdin, at most MAX bytes. */
static int read_stdin(size_t max, char **out, size_t *len)
{
	char *buf = xmalloc(max + 2);
	size_t used = 0;
	for (;;) {
		ssize_t n = read(STDIN_FILENO, buf + used, max + 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int r = -errno;
			free(buf);
			return r;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > max) {
			free(buf);
			return HL_ETOOBIG;
		}
	}
	buf[used] = '\0';
	*out = buf;
	*len = used;
	return 0;
}

/* peer add's options and operand (parse_add_args). */
struct add_args {
	const char *address, *fp_given, *file;
	bool unchecked;
};

/* Parses and checks ARGV into A: -1 to go on, else the exit status
 * (--help: 0). */
static int parse_add_args(int argc, char **argv, struct add_args *a)
{
	static const struct option opts[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "fingerprint", required_argument, NULL, 'f' },
		{ "trust-without-checking", no_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char q[256];
	uint8_t fp[HL_FP_LEN];
	int c;

	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			a->address = optarg;
			break;
		case 'f':
			a->fp_given = optarg;
			break;
		case 'T':
			a->unchecked = true;
			break;
		case 'h':
			help();
			return HL_EXIT_OK;
		default:
			return option_error("peer add", c, argv);
		}
	}
	if (optind != argc - 1)
		return hl_usage_error("peer add", optind >= argc ? "give the card's FILE, or -"
								 : "too many arguments");
	a->file = argv[optind];
	if (a->address && (strlen(a->address) > HL_ADDR_MAX ||
			   hl_addr_split(a->address, NULL, 0, NULL) < 0)) {
		hl_sanitize(a->address, strlen(a->address), q, sizeof(q), 0);
		return hl_usage_error("peer add",
				      "bad --address '%s': want HOST:PORT or [IPv6]:PORT", q);
	}
	/* Pinning is the one moment a station learns whom to trust: doing it
	 * without the check must be a choice the operator writes down. */
	if (!a->fp_given && !a->unchecked)
		return hl_usage_error("peer add", "give --fingerprint FP (read to you by the other "
				      "station's operator), or --trust-without-checking to pin the "
				      "card unchecked");
	if (a->fp_given && a->unchecked)
		return hl_usage_error("peer add", "--fingerprint and --trust-without-checking "
				      "exclude each other");
	memset(fp, 0, sizeof(fp));
	if (a->fp_given && hl_fingerprint_matches(a->fp_given, fp) < 0) {
		hl_sanitize(a->fp_given, strlen(a->fp_given), q, sizeof(q), 0);
		return hl_usage_error("peer add",
				      "bad --fingerprint '%s': want the 40 digits that "
				      "'hotline init' showed (8 groups of 5)", q);
	}
	return -1;
}

/* The card in FILE ('-': standard input) into CARD; *BUF holds its bytes
 * (freed by the caller).  HL_EXIT_OK, else the failure reported. */
static int read_card(const char *file, char **buf, hl_card *card)
{
	char err[HL_CONF_ERR_LEN];
	size_t len = 0;
	int from_stdin = strcmp(file, "-") == 0;
	const char *shown = from_stdin ? "stdin" : file;
	int r = from_stdin ? read_stdin(HL_CARD_MAX_BYTES, buf, &len)
			   : hl_read_file(file, HL_CARD_MAX_BYTES, buf, &len);
	if (r < 0)
		return hl_fail("peer add", "%s: %s", shown,
			       r == HL_ETOOBIG ? "larger than a card can be" : hl_strerror(r));
	if (hl_card_parse(*buf, len, shown, card, err) < 0)
		return hl_fail("peer add", "%s", err);
	return HL_EXIT_OK;
}

static int peer_add(struct hl_ctx *ctx, int argc, char **argv)
{
	struct add_args a = { 0 };
	char err[HL_CONF_ERR_LEN], q[256], fp_text[HL_FP_TEXT_LEN];
	char *buf = NULL;
	hl_card card;
	uint8_t fp[HL_FP_LEN];
	int ret, r;

	if ((ret = parse_add_args(argc, argv, &a)) >= 0)
		return ret;
	if ((ret = hl_need_station(ctx, "peer add")) != HL_EXIT_OK)
		return ret;
	if ((ret = read_card(a.file, &buf, &card)) != HL_EXIT_OK)
		goto out;
	hl_card_fingerprint(&card, fp);
	hl_fingerprint_text(fp, fp_text);
	if (a.fp_given && hl_fingerprint_matches(a.fp_given, fp) != 1) {
		/* The card's own fingerprint is not shown: copied from here into
		 * the next attempt, it would pin whatever card this is. */
		hl_sanitize(a.fp_given, strlen(a.fp_given), q, sizeof(q), 0);
		ret = hl_fail("peer add",
			      "fingerprint mismatch: the card of '%s' does not have the fingerprint "
			      "you gave (%s); not pinned.  Ask '%s''s operator to read you the "
			      "fingerprint that 'hotline card' or 'hotline status' shows at their "
			      "station, over a channel you trust, and get the card again if it differs",
			      card.name, q, card.name);
		goto out;
	}
	if (a.address)
		snprintf(card.address, sizeof(card.address), "%s", a.address);
	/* Our own keys, to refuse a card of ours: from the key holder while
	 * the daemon runs (identity.key is then read by it alone). */
	char kerr[HL_KEYS_ERR_LEN];
	hl_keys *keys = NULL;
	if ((r = hl_keys_open(ctx->dir, HL_KEYS_PUBLIC, &keys, kerr)) < 0) {
		ret = hl_fail("peer add", "%s", kerr);
		goto out;
	}
	const hl_signer *me = hl_keys_signer(keys);
	r = hl_conf_add_peer_own(ctx->dir, &card, hl_signer_noise_pub(me), hl_signer_sign_pk(me),
				 err);
	hl_keys_free(keys);
	if (r < 0) {
		ret = conf_error("peer add", ctx, r, err);
		goto out;
	}
	printf("Pinned peer '%s'.\nFingerprint: %s\n", card.name, fp_text);
	if (!a.fp_given)
		printf("NOT CHECKED (--trust-without-checking): check this fingerprint with the "
		       "other station's operator, over a channel you trust, before you rely on "
		       "the link.\n");
	ret = HL_EXIT_OK;
out:
	free(buf);
	return ret;
}

static int simple_opts(const char *sub, int argc, char **argv, int nargs, bool *removed)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "removed", no_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			help();
			return HL_EXIT_OK;
		}
		if (c == 'r' && removed) {
			*removed = true;
			continue;
		}
		return option_error(sub, c, argv);
	}
	if (argc - optind != nargs)
		return hl_usage_error(sub, nargs ? "give the peer's NAME" : "no arguments expected");
	return -1; /* go on */
}

struct removed_ctx {
	const hl_station_conf *conf;
	size_t n;
};

static int print_removed(void *arg, const struct hl_peer_row *row)
{
	struct removed_ctx *x = arg;
	char fp_text[HL_FP_TEXT_LEN];
	uint8_t fp[HL_FP_LEN];
	for (size_t i = 0; i < x->conf->npeers; i++)
		if (memcmp(x->conf->peers[i].signing_key, row->signing_key, 32) == 0)
			return 0;
	hl_fingerprint_next(row->noise_key, row->signing_key, row->has_next ? row->next_hash : NULL,
			    fp);
	hl_fingerprint_text(fp, fp_text);
	printf("%s\t%s\tremoved\n", row->name, fp_text);
	x->n++;
	return 0;
}

/* The peers the store knows that station.conf no longer pins. */
static int list_removed(struct hl_ctx *ctx, const hl_station_conf *conf)
{
	struct removed_ctx x = { conf, 0 };
	hl_store *st = NULL;
	/* Read-only: a station that never had a store has no history. */
	if (hl_store_open_readonly(ctx->dir, &st) == 0 &&
	    hl_store_each_peer(st, print_removed, &x) < 0) {
		int r = hl_fail("peer list", "store: %s", hl_store_errmsg(st));
		hl_store_close(st);
		return r;
	}
	hl_store_close(st);
	if (x.n == 0)
		fprintf(stderr, "hotline peer list: no removed peers\n");
	return fflush(stdout) == 0 ? HL_EXIT_OK : hl_fail("peer list", "cannot write the list");
}

static int peer_list(struct hl_ctx *ctx, int argc, char **argv)
{
	char err[HL_CONF_ERR_LEN], fp_text[HL_FP_TEXT_LEN];
	hl_station_conf *conf = NULL;
	bool removed = false;
	int r = simple_opts("peer list", argc, argv, 0, &removed);
	if (r >= 0)
		return r;
	if ((r = hl_need_station(ctx, "peer list")) != HL_EXIT_OK)
		return r;
	if ((r = hl_conf_load(ctx->dir, &conf, err)) < 0)
		return conf_error("peer list", ctx, r, err);
	if (removed) {
		r = list_removed(ctx, conf);
		hl_conf_free(conf);
		return r;
	}
	for (size_t i = 0; i < conf->npeers; i++) {
		const hl_peer_conf *p = &conf->peers[i];
		hl_fingerprint_text(p->fingerprint, fp_text);
		printf("%s\t%s\t%s\n", p->name, fp_text, p->address[0] ? p->address : "-");
	}
	if (conf->npeers == 0)
		fprintf(stderr, "hotline peer list: no peers pinned (add one with 'hotline peer add')\n");
	hl_conf_free(conf);
	return fflush(stdout) == 0 ? HL_EXIT_OK : hl_fail("peer list", "cannot write the list");
}

static int peer_remove(struct hl_ctx *ctx, int argc, char **argv)
{
	char err[HL_CONF_ERR_LEN];
	int r = simple_opts("peer remove", argc, argv, 1, NULL);
	if (r >= 0)
		return r;
	if ((r = hl_need_station(ctx, "peer remove")) != HL_EXIT_OK)
		return r;
	const char *name = argv[optind];
	if ((r = hl_conf_remove_peer(ctx->dir, name, err)) < 0)
		return conf_error("peer remove", ctx, r, err);
	printf("Removed peer '%s'. Its history stays in the store: 'hotline record export %s' "
	       "still exports it.\n", name, name); /* found, so a valid name */
	return HL_EXIT_OK;
}

int peer_main(struct hl_ctx *ctx, int argc, char **argv)
{
	char q[256];
	if (argc < 2)
		return hl_usage_error("peer", "give add, list or remove");
	const char *sub = argv[1];
	if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
		help();
		return HL_EXIT_OK;
	}
	if (strcmp(sub, "add") == 0)
		return peer_add(ctx, argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0)
		return peer_list(ctx, argc - 1, argv + 1);
	if (strcmp(sub, "remove") == 0)
		return peer_remove(ctx, argc - 1, argv + 1);
	hl_sanitize(sub, strlen(sub), q, sizeof(q), 0);
	return hl_usage_error("peer", "unknown subcommand '%s': want add, list or remove", q);
}
