/* cmd/agree.c — `hotline agree`: co-signed documents.
 *
 * SYNOPSIS
 *   hotline [-d DIR] agree propose PEER FILE [-p PRECEDENCE]
 *   hotline [-d DIR] agree sign ID [--yes]
 *   hotline [-d DIR] agree list [--json]
 *
 * propose sends FILE to PEER as the attachment of an ordinary message (so
 * it travels, resumes and is acknowledged like any document), then signs
 * an AGREEMENT item naming the document's name, size and SHA-256 hash
 * and that message, and prints the agreement's id: the hash of that item,
 * which the peer computes alike.  sign, at the peer, checks that the
 * document has arrived whole with that hash, and signs a COUNTERSIGN of the
 * agreement id and the hash, once it has shown what it signs (name, size,
 * hash, proposer) and a person confirmed on a terminal (or --yes; without
 * either nothing is signed).  Both items are in both stations' copies of
 * both chains: an agreement signed by both carries both signatures.  list
 * shows each agreement's state: "proposed" (by the peer, waiting for our
 * signature), "signed by us" (our proposal, waiting for the peer's), or
 * "signed by both".  Works with the daemon running or not. */
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "deliver/author.h"
#include "chain/queue.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] agree propose PEER FILE [-p PRECEDENCE]\n"
		   "       hotline [-d DIR] agree sign ID [--yes]\n"
		   "       hotline [-d DIR] agree list [--json]\n\n"
		   "Co-signed documents.  propose sends FILE to PEER and signs it, printing the\n"
		   "agreement's id (the same at both stations); sign countersigns an agreement the\n"
		   "peer proposed, once its document has arrived, after showing the document's name,\n"
		   "size and hash and who proposed it and asking (on a terminal); list shows each\n"
		   "agreement's state.\n\n"
		   "  -p, --precedence P  of the message carrying the document (default routine)\n"
		   "      --json          list: one JSON array\n"
		   "      --yes           sign: do not ask (needed when not on a terminal)\n"
		   "  -h, --help          this text\n");
}

static const char *state_json(const struct hl_agreement_row *g)
{
	if (g->sign_seq)
		return "signed_by_both";
	return g->dir == HL_DIR_OUT ? "signed_by_us" : "proposed";
}

/* Whether the document has arrived whole with the signed hash (IN), or is
 * still ours to send (OUT: always "here"). */
static const char *document_state(hl_store *st, const struct hl_agreement_row *g)
{
	struct hl_msg_row m = { 0 };
	const char *s = "missing";
	if (hl_store_get_message_by_id(st, g->msg_id, &m) == 0) {
		bool whole = m.dir == HL_DIR_OUT || m.state == HL_MSG_COMPLETE;
		bool same = m.n_att >= 1 && m.att[0].size == g->size &&
			    sodium_memcmp(m.att[0].hash, g->doc_hash, HL_HASH_LEN) == 0;
		if (!same)
			s = "mismatch";
		else if (m.purged_at)
			s = "purged";
		else if (m.state == HL_MSG_REFUSED_IN)
			s = "refused";
		else
			s = whole ? "here" : "arriving";
	}
	hl_msg_row_clear(&m);
	return s;
}

static int propose(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "precedence", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hl_msgcmd mc = { 0 };
	struct hl_msg_row m = { 0 };
	enum hl_precedence prec = HL_PREC_ROUTINE;
	int c, ret;
	while ((c = getopt_long(argc, argv, "p:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (hl_precedence_parse(optarg, &prec) < 0)
				return hl_usage_error("agree", "unknown precedence '%s'", optarg);
			break;
		case 'h':
			usage(stdout);
			return HL_EXIT_OK;
		default:
			return hl_usage_error("agree", "bad option");
		}
	}
	if (argc - optind != 2)
		return hl_usage_error("agree", "propose takes PEER and FILE");
	const char *peer_name = argv[optind], *file = argv[optind + 1];
	if ((ret = hl_msgcmd_open(ctx, "agree", &mc, true)) != HL_EXIT_OK)
		return ret;
	const hl_peer_conf *peer = hl_conf_peer_by_name(mc.conf, peer_name);
	if (!peer) {
		char q[100];
		hl_sanitize(peer_name, strlen(peer_name), q, sizeof(q), 0);
		ret = hl_fail("agree", "no peer named '%s' (hotline peer list)", q);
		goto out;
	}
	const char *base = strrchr(file, '/') ? strrchr(file, '/') + 1 : file;
	char *subject = xasprintf("Agreement proposed: %s", base);
	static const char body[] =
		"The attached document is proposed for agreement: its hash is signed in the\n"
		"agreement that follows this message.  'hotline agree list' shows it and its id;\n"
		"'hotline agree sign ID' countersigns it.\n";
	const char *att[1] = { file };
	struct hl_outgoing o = {
		.precedence = prec, .subject = subject, .body = (const uint8_t *)body,
		.body_len = sizeof(body) - 1, .attachments = att, .n_attachments = 1,
		.max_attachment = mc.conf->max_attachment,
	};
	uint8_t msg_id[HL_MSG_ID_LEN], id[HL_HASH_LEN];
	char err[512];
	ret = hl_msg_send(ctx->dir, mc.store, mc.me, peer, &o, msg_id, err, sizeof(err));
	free(subject);
	if (ret < 0) {
		ret = hl_fail("agree", "%s", err);
		goto out;
	}
	/* The message is durable; its stored attachment row has the name,
	 * size and hash of the copy that travels. */
	if (hl_store_get_message_by_id(mc.store, msg_id, &m) < 0 || m.n_att != 1) {
		ret = hl_fail("agree", "store: %s", hl_store_errmsg(mc.store));
		goto out;
	}
	struct hl_author_link l = { .st = mc.store, .me = mc.me, .peer_id = m.peer_id };
	memcpy(l.peer_sign, peer->signing_key, 32);
	if (hl_store_begin(mc.store) < 0) {
		ret = hl_fail("agree", "store: %s", hl_store_errmsg(mc.store));
		goto out;
	}
	if (hl_author_agreement(&l, m.att[0].name, m.att[0].size, m.att[0].hash, msg_id,
				hl_now_ms(), id) < 0 || hl_store_commit(mc.store) < 0) {
		char mid[33];
		hl_msg_id_hex(msg_id, mid);
		ret = hl_fail("agree", "store: %s (the document went as message %s, without an agreement)",
			      hl_store_errmsg(mc.store), mid);
		hl_store_rollback(mc.store);
		goto out;
	}
	char hex[65];
	hl_hex(id, HL_HASH_LEN, hex);
	printf("%s\n", hex);
	fflush(stdout);
	hl_msgcmd_poke_daemon(ctx);
	ret = HL_EXIT_OK;
out:
	hl_msg_row_clear(&m);
	hl_msgcmd_close(&mc);
	return ret;
}

/* The agreement WANT (a prefix), unsigned and proposed by the peer, with its
 * document here: HL_EXIT_OK, else the one line (nothing signed). */
static int sign_target(struct hl_msgcmd *mc, const char *want, struct hl_agreement_row *g)
{
	char q[100], hex[65];
	hl_sanitize(want, strlen(want), q, sizeof(q), 0);
	int r = hl_store_get_agreement(mc->store, want, g);
	if (r == HL_ENOTFOUND || r == HL_EINVAL || r == HL_EEXIST)
		return hl_fail("agree", "%s agreement '%s' (hotline agree list)",
			       r == HL_EEXIST ? "ambiguous" : "no", q);
	if (r < 0)
		return hl_fail("agree", "store: %s", hl_store_errmsg(mc->store));
	hl_hex(g->id, HL_HASH_LEN, hex);
	if (g->dir == HL_DIR_OUT)
		return hl_fail("agree", "agreement %.16s is our own proposal: %s signs it", hex,
			       g->peer_name);
	if (g->sign_seq)
		return hl_fail("agree", "agreement %.16s is already signed by both", hex);
	const char *doc = document_state(mc->store, g);
	if (strcmp(doc, "here") != 0) {
		char mid[33];
		hl_msg_id_hex(g->msg_id, mid);
		return hl_fail("agree", "the document of agreement %.16s is %s (message %s): nothing "
			       "was signed", hex, strcmp(doc, "arriving") == 0 ? "still arriving"
			       : strcmp(doc, "missing") == 0 ? "not here yet" : doc, mid);
	}
	if (!hl_conf_peer_by_name(mc->conf, g->peer_name))
		return hl_fail("agree", "peer '%s' is no longer pinned", g->peer_name);
	return HL_EXIT_OK;
}

/* What the signature will commit to, for the person about to sign. */
static void show_agreement(const struct hl_agreement_row *g)
{
	char hex[65], doc_hex[65], name[300], when[HL_RFC3339_LEN], mid[33];
	hl_hex(g->id, HL_HASH_LEN, hex);
	hl_hex(g->doc_hash, HL_HASH_LEN, doc_hex);
	hl_sanitize(g->name, strlen(g->name), name, sizeof(name), 0);
	hl_rfc3339(g->proposed_at, when);
	hl_msg_id_hex(g->msg_id, mid);
	printf("Agreement:  %s\n", hex);
	printf("Proposed:   by %s at %s\n", g->peer_name, when);
	printf("Document:   %s (%llu bytes; 'hotline read %.12s --save DIR' writes it)\n", name,
	       (unsigned long long)g->size, mid);
	printf("SHA-256:    %s\n", doc_hex);
	fflush(stdout);
}

static int sign(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct hl_msgcmd mc = { 0 };
	struct hl_agreement_row g;
	bool in_tx = false, yes = false;
	int c, ret;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'y':
			yes = true;
			break;
		case 'h':
			usage(stdout);
			return HL_EXIT_OK;
		default:
			return hl_usage_error("agree", "bad option");
		}
	}
	if (argc - optind != 1)
		return hl_usage_error("agree", "sign takes the agreement's ID");
	const char *want = argv[optind];
	if ((ret = hl_msgcmd_open(ctx, "agree", &mc, true)) != HL_EXIT_OK)
		return ret;
	/* Show and ask outside any transaction: the daemon goes on while a
	 * person reads. */
	if ((ret = sign_target(&mc, want, &g)) != HL_EXIT_OK)
		goto out;
	show_agreement(&g);
	int ok = hl_confirm("agree", yes, "Countersign this document with this station's key?");
	if (ok != 1) {
		ret = ok == 0 ? hl_fail("agree", "not confirmed: nothing was signed") : HL_EXIT_FAIL;
		goto out;
	}
	char hex[65];
	hl_hex(g.id, HL_HASH_LEN, hex);
	if (hl_store_begin(mc.store) < 0) {
		ret = hl_fail("agree", "store: %s", hl_store_errmsg(mc.store));
		goto out;
	}
	in_tx = true;
	/* Again under the writer lock: it may have changed meanwhile. */
	struct hl_agreement_row again;
	if ((ret = sign_target(&mc, hex, &again)) != HL_EXIT_OK)
		goto out;
	const hl_peer_conf *pc = hl_conf_peer_by_name(mc.conf, again.peer_name);
	struct hl_author_link l = { .st = mc.store, .me = mc.me, .peer_id = again.peer_id };
	memcpy(l.peer_sign, pc->signing_key, 32);
	if (hl_author_countersign(&l, &again, hl_now_ms()) < 0 || hl_store_commit(mc.store) < 0) {
		ret = hl_fail("agree", "store: %s", hl_store_errmsg(mc.store));
		goto out;
	}
	in_tx = false;
	char doc_hex[65], name[300];
	hl_hex(again.doc_hash, HL_HASH_LEN, doc_hex);
	hl_sanitize(again.name, strlen(again.name), name, sizeof(name), 0);
	printf("signed agreement %s with %s: %s (%llu bytes, " HL_DOC_HASH_NAME " %s); signed by both\n",
	       hex, again.peer_name, name, (unsigned long long)again.size, doc_hex);
	fflush(stdout);
	hl_msgcmd_poke_daemon(ctx);
	ret = HL_EXIT_OK;
out:
	if (in_tx)
		hl_store_rollback(mc.store);
	hl_msgcmd_close(&mc);
	return ret;
}

struct list_ctx {
	hl_store *st;
	json_t *arr;
};

static json_t *time_json(int64_t ms)
{
	char t[HL_RFC3339_LEN];
	if (ms <= 0)
		return json_null();
	hl_rfc3339(ms, t);
	return json_string(t);
}

static int list_row(void *arg, const struct hl_agreement_row *g)
{
	struct list_ctx *x = arg;
	char hex[65], doc_hex[65], mid[33];
	hl_hex(g->id, HL_HASH_LEN, hex);
	hl_hex(g->doc_hash, HL_HASH_LEN, doc_hex);
	hl_msg_id_hex(g->msg_id, mid);
	json_t *name = json_string(g->name);
	json_array_append_new(x->arr, json_pack(
		"{s:s, s:s, s:s, s:o, s:I, s:s, s:s, s:s, s:s, s:o, s:o}",
		"id", hex, "peer", g->peer_name, "proposed_by", g->dir == HL_DIR_OUT ? "us" : "them",
		"name", name ? name : json_string("?"), "size", (json_int_t)g->size,
		"hash", doc_hex, "message", mid, "state", state_json(g),
		"document", document_state(x->st, g),
		"proposed_at", time_json(g->proposed_at), "signed_at", time_json(g->signed_at)));
	return 0;
}

static int list(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false;
	int c, ret;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return HL_EXIT_OK;
		default:
			return hl_usage_error("agree", "bad option");
		}
	}
	if (optind < argc)
		return hl_usage_error("agree", "unexpected argument '%s'", argv[optind]);
	struct hl_msgcmd mc = { 0 };
	if ((ret = hl_msgcmd_open(ctx, "agree", &mc, false)) != HL_EXIT_OK)
		return ret;
	struct list_ctx x = { .st = mc.store, .arr = json_array() };
	if (hl_store_each_agreement(mc.store, 0, list_row, &x) < 0) {
		ret = hl_fail("agree", "store: %s", hl_store_errmsg(mc.store));
		goto out;
	}
	if (json) {
		char *text = json_dumps(x.arr, JSON_INDENT(2) | JSON_ENSURE_ASCII);
		printf("%s\n", text);
		free(text);
	} else if (json_array_size(x.arr) == 0) {
		printf("no agreements\n");
	} else {
		printf("%-16s  %-12s %-16s %-10s %s\n", "ID", "PEER", "STATE", "DOCUMENT", "NAME (SIZE)");
		size_t i;
		json_t *o;
		json_array_foreach(x.arr, i, o) {
			char name[300];
			const char *nm = json_string_value(json_object_get(o, "name"));
			hl_sanitize(nm, strlen(nm), name, sizeof(name), 0);
			const char *st = json_string_value(json_object_get(o, "state"));
			printf("%.16s  %-12s %-16s %-10s %s (%lld bytes)\n",
			       json_string_value(json_object_get(o, "id")),
			       json_string_value(json_object_get(o, "peer")),
			       strcmp(st, "signed_by_both") == 0 ? "signed by both"
			       : strcmp(st, "signed_by_us") == 0 ? "signed by us" : "proposed",
			       json_string_value(json_object_get(o, "document")), name,
			       (long long)json_integer_value(json_object_get(o, "size")));
		}
	}
	ret = HL_EXIT_OK;
out:
	json_decref(x.arr);
	hl_msgcmd_close(&mc);
	return ret;
}

int agree_main(struct hl_ctx *ctx, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? HL_EXIT_USAGE : HL_EXIT_OK;
	}
	const char *sub = argv[1];
	/* the subcommand's options start after its name */
	optind = 0;
	if (strcmp(sub, "propose") == 0)
		return propose(ctx, argc - 1, argv + 1);
	if (strcmp(sub, "sign") == 0)
		return sign(ctx, argc - 1, argv + 1);
	if (strcmp(sub, "list") == 0)
		return list(ctx, argc - 1, argv + 1);
	return hl_usage_error("agree", "unknown subcommand '%s' (propose, sign or list)", sub);
}
