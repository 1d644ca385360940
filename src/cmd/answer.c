/* cmd/answer.c — `hotline answer`: a person answers the line checks that
 * wait for one (the peer's CheckMode = operator).
 *
 * SYNOPSIS
 *   hotline [-d DIR] answer [ID] [--json]
 *
 * Without ID, answers every check that waits for a person; with ID (a
 * prefix of at least 4 hex digits), that one.  Each answer is a signed
 * ANSWER item "by a person", stored before the command returns; the daemon
 * sends it (now, if it runs).  A check the station has already recorded
 * as "no person answered" cannot be answered any more.  Works with the
 * daemon running or not. */
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "deliver/author.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] answer [ID] [--json]\n\n"
		   "Answer, as a person, the line checks that wait for one (a peer's\n"
		   "CheckMode = operator): all of them, or the one whose id starts with ID.\n\n"
		   "      --json  the checks answered, as a JSON array\n"
		   "  -h, --help  this text\n");
}

struct pending {
	struct hl_check_row *rows;
	size_t n, cap;
};

static int collect(void *arg, const struct hl_check_row *row)
{
	struct pending *p = arg;
	if (row->mode != HL_CHECK_OPERATOR)
		return 0;
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 8;
		p->rows = xrealloc(p->rows, p->cap * sizeof(*p->rows));
	}
	p->rows[p->n++] = *row;
	return 0;
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

int answer_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, in_tx = false;
	int c, ret;
	struct hl_msgcmd mc = { 0 };
	struct pending pend = { 0 };
	json_t *out = json_array();
	const char *want = NULL;
	size_t answered = 0;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			ret = HL_EXIT_OK;
			goto out;
		default:
			ret = hl_usage_error("answer", "bad option");
			goto out;
		}
	}
	if (optind < argc)
		want = argv[optind++];
	if (optind < argc) {
		ret = hl_usage_error("answer", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (want && !hex_prefix_ok(want)) {
		ret = hl_usage_error("answer", "bad check id '%s' (4 to 32 lowercase hex digits)", want);
		goto out;
	}
	if ((ret = hl_msgcmd_open(ctx, "answer", &mc, true)) != HL_EXIT_OK)
		goto out;
	/* Under the writer lock, so the daemon cannot record "no person"
	 * for a check between our look and our answer. */
	if (hl_store_begin(mc.store) < 0) {
		ret = hl_fail("answer", "store: %s", hl_store_errmsg(mc.store));
		goto out;
	}
	in_tx = true;
	struct hl_check_filter f = { .dir = HL_DIR_IN, .open_only = true };
	if (hl_store_each_check(mc.store, &f, collect, &pend) < 0) {
		ret = hl_fail("answer", "store: %s", hl_store_errmsg(mc.store));
		goto out;
	}
	int64_t now = hl_now_ms();
	for (size_t i = 0; i < pend.n; i++) {
		struct hl_check_row *row = &pend.rows[i];
		char hex[33], at[HL_RFC3339_LEN];
		hl_hex(row->id, HL_CHECK_ID_LEN, hex);
		if (want && strncmp(hex, want, strlen(want)) != 0)
			continue;
		const hl_peer_conf *pc = hl_conf_peer_by_name(mc.conf, row->peer_name);
		if (!pc)
			continue;   /* a peer no longer pinned */
		struct hl_author_link l = { .st = mc.store, .me = mc.me, .peer_id = row->peer_id };
		memcpy(l.peer_sign, pc->signing_key, 32);
		if (hl_author_answer(&l, row, HL_ANSWER_PERSON, now) < 0) {
			ret = hl_fail("answer", "check %s: store: %s", hex, hl_store_errmsg(mc.store));
			goto out;
		}
		hl_rfc3339(row->created_at, at);
		json_array_append_new(out, json_pack("{s:s, s:s, s:s}", "id", hex, "peer", pc->name,
						     "received_at", at));
		answered++;
	}
	if (want && answered == 0) {
		ret = hl_fail("answer", "no check %s waits for an answer (hotline status shows those that do)",
			      want);
		goto out;
	}
	if (hl_store_commit(mc.store) < 0) {
		in_tx = false;
		ret = hl_fail("answer", "store: %s", hl_store_errmsg(mc.store));
		goto out;
	}
	in_tx = false;
	if (answered)
		hl_msgcmd_poke_daemon(ctx);
	if (json) {
		char *text = json_dumps(out, JSON_INDENT(2));
		printf("%s\n", text);
		free(text);
	} else if (answered == 0) {
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
	if (in_tx)
		hl_store_rollback(mc.store);
	hl_msgcmd_close(&mc);
	free(pend.rows);
	json_decref(out);
	return ret;
}
