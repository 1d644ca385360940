/* cmd/answer.c — `hotline answer`: a person answers the line checks that
 * wait for one (the peer's CheckMode = operator).
 *
 * SYNOPSIS
 *   hotline [-d DIR] answer [ID] [--yes] [--json]
 *
 * Without ID, answers every check that waits for a person; with ID (a
 * prefix of at least 4 hex digits), that one.  Each answer is a signed
 * ANSWER item "a person answered", stored before the command returns; the
 * daemon sends it (now, if it runs).  A check the station has already
 * recorded as "no person answered" cannot be answered any more.  Works
 * with the daemon running or not.
 *
 * What is signed is the station's word that a person is there, so the
 * command first lists the checks it would answer (id, from whom, when it
 * came, its deadline) and, on a terminal, asks; without a terminal it
 * signs only with --yes.  The question is asked outside the store's
 * writer lock (the daemon goes on meanwhile); the answers are then signed
 * under it, for the checks listed that still wait. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "deliver/author.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define CMD "answer"

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] answer [ID] [--yes] [--json]\n\n"
		   "Answer, as a person, the line checks that wait for one (a peer's\n"
		   "CheckMode = operator): all of them, or the one whose id starts with ID.\n"
		   "It lists them and, on a terminal, asks before it signs.\n\n"
		   "  -y, --yes   sign without asking (needed when not on a terminal)\n"
		   "      --json  the checks answered, as a JSON array\n"
		   "  -h, --help  this text\n");
}

struct pending {
	struct hl_check_row *rows;
	size_t n, cap;
	const char *want;             /* an id prefix, or NULL */
};

static int collect(void *arg, const struct hl_check_row *row)
{
	struct pending *p = arg;
	char hex[33];
	if (row->mode != HL_CHECK_OPERATOR)
		return 0;
	hl_hex(row->id, HL_CHECK_ID_LEN, hex);
	if (p->want && strncmp(hex, p->want, strlen(p->want)) != 0)
		return 0;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 8;
		p->rows = xrealloc(p->rows, p->cap * sizeof(*p->rows));
	}
	p->rows[p->n++] = *row;
	return 0;
}

static int collect_all(struct hl_station *mc, struct pending *p)
{
	struct hl_check_filter f = { .dir = HL_DIR_IN, .open_only = true };
	p->n = 0;
	if (hl_store_each_check(mc->store, &f, collect, p) < 0)
		return hl_fail(CMD, "store: %s", hl_store_errmsg(mc->store));
	return HL_EXIT_OK;
}

static bool hex_prefix_ok(const char *s)
{
	size_t n = strlen(s);
	if (n < 4 || n > 32)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return false;
	return true;
}

/* What would be signed, one line per check. */
static void show_plan(FILE *f, const struct pending *p)
{
	fprintf(f, "This signs \"a person answered\" for %zu line check(s):\n", p->n);
	for (size_t i = 0; i < p->n; i++) {
		const struct hl_check_row *row = &p->rows[i];
		char hex[33], at[HL_RFC3339_LEN], dl[HL_RFC3339_LEN], name[sizeof(row->peer_name) * 3];
		hl_hex(row->id, HL_CHECK_ID_LEN, hex);
		hl_rfc3339(row->created_at, at);
		hl_rfc3339(row->deadline, dl);
		hl_sanitize(row->peer_name, strlen(row->peer_name), name, sizeof(name), 0);
		fprintf(f, "  %s  from %s, came at %s, deadline %s\n", hex, name, at, dl);
	}
}

/* Asks on the terminal; true for y or yes. */
static bool confirm(size_t n)
{
	char *line = NULL;
	size_t cap = 0;
	printf("Sign %zu answer(s) \"a person answered\"? [y/N] ", n);
	fflush(stdout);
	bool yes = getline(&line, &cap, stdin) > 0 &&
		   (strcasecmp(line, "y\n") == 0 || strcasecmp(line, "yes\n") == 0);
	free(line);
	return yes;
}

/* Was ROW among those shown? */
static bool shown(const struct pending *plan, const struct hl_check_row *row)
{
	for (size_t i = 0; i < plan->n; i++)
		if (plan->rows[i].peer_id == row->peer_id &&
		    memcmp(plan->rows[i].id, row->id, HL_CHECK_ID_LEN) == 0)
			return true;
	return false;
}

/* Signs, under the writer lock, the answers to the checks of PLAN that
 * still wait; appends each to OUT. */
static int sign_all(struct hl_station *mc, const struct pending *plan, json_t *out)
{
	struct pending now = { .want = plan->want };
	bool in_tx = false;
	int ret;
	/* Under the writer lock, so the daemon cannot record "no person"
	 * for a check between our look and our answer. */
	if (hl_store_begin(mc->store) < 0) {
		ret = hl_fail(CMD, "store: %s", hl_store_errmsg(mc->store));
		goto out;
	}
	in_tx = true;
	if ((ret = collect_all(mc, &now)) != HL_EXIT_OK)
		goto out;
	int64_t t = hl_now_ms();
	for (size_t i = 0; i < now.n; i++) {
		struct hl_check_row *row = &now.rows[i];
		char hex[33], at[HL_RFC3339_LEN];
		hl_hex(row->id, HL_CHECK_ID_LEN, hex);
		const hl_peer_conf *pc = hl_conf_peer_by_name(mc->conf, row->peer_name);
		if (!pc || !shown(plan, row))
			continue;   /* a peer no longer pinned; a check not shown */
		struct hl_author_link l = { .st = mc->store, .me = mc->me, .peer_id = row->peer_id };
		memcpy(l.peer_sign, pc->signing_key, 32);
		if (hl_author_answer(&l, row, HL_ANSWER_PERSON, t) < 0) {
			ret = hl_fail(CMD, "check %s: store: %s", hex, hl_store_errmsg(mc->store));
			goto out;
		}
		hl_rfc3339(row->created_at, at);
		json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "id", hex, "peer", pc->name,
						     "received_at", at));
	}
	in_tx = false;
	if (hl_store_commit(mc->store) < 0) {
		ret = hl_fail(CMD, "store: %s", hl_store_errmsg(mc->store));
		goto out;
	}
	ret = HL_EXIT_OK;
out:
	if (in_tx)
		hl_store_rollback(mc->store);
	free(now.rows);
	return ret;
}

int answer_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, yes = false;
	int c, ret;
	struct hl_station mc = { 0 };
	struct pending plan = { 0 };
	json_t *out = json_array();

	while ((c = getopt_long(argc, argv, "yh", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'y':
			yes = true;
			break;
		case 'h':
			usage(stdout);
			ret = HL_EXIT_OK;
			goto out;
		default:
			ret = hl_usage_error(CMD, "bad option");
			goto out;
		}
	}
	if (optind < argc)
		plan.want = argv[optind++];
	if (optind < argc) {
		ret = hl_usage_error(CMD, "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (plan.want && !hex_prefix_ok(plan.want)) {
		ret = hl_usage_error(CMD, "bad check id '%s' (4 to 32 lowercase hex digits)", plan.want);
		goto out;
	}
	if ((ret = hl_msgcmd_open(ctx, CMD, &mc, true)) != HL_EXIT_OK ||
	    (ret = collect_all(&mc, &plan)) != HL_EXIT_OK)
		goto out;
	if (plan.want && plan.n == 0) {
		ret = hl_fail(CMD, "no check %s waits for an answer (hotline status shows those that do)",
			      plan.want);
		goto out;
	}
	if (plan.n && !yes) {
		if (!isatty(STDIN_FILENO)) {
			ret = hl_fail(CMD, "%zu check(s) wait for a person, and this is not a terminal "
				      "to ask on: give --yes to sign without asking", plan.n);
			goto out;
		}
		show_plan(stdout, &plan);
		if (!confirm(plan.n)) {
			ret = hl_fail(CMD, "nothing signed");
			goto out;
		}
	}
	if (plan.n && (ret = sign_all(&mc, &plan, out)) != HL_EXIT_OK)
		goto out;
	if (json_array_size(out))
		hl_msgcmd_poke_daemon(ctx);
	if (json) {
		char *text = json_dumps(out, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", text);
		free(text);
	} else if (json_array_size(out) == 0) {
		printf("no line check waits for an answer\n");
	} else {
		size_t i;
		json_t *o;
		json_array_foreach(out, i, o) {
			printf("answered check %s from %s (it came at %s)\n",
			       json_string_value(json_object_get(o, "id")),
			       json_string_value(json_object_get(o, "peer")),
			       json_string_value(json_object_get(o, "received_at")));
		}
	}
	ret = HL_EXIT_OK;
out:
	hl_msgcmd_close(&mc);
	free(plan.rows);
	json_decref(out);
	return ret;
}
