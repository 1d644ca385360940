/* cmd/purge.c — `hotline purge`: retention by hand (msg/retain.h,
 * docs/retention.md).
 *
 * SYNOPSIS
 *   hotline [-d DIR] purge [--before DATE | --older-than AGE] [--peer NAME]
 *                          [--dry-run] [--yes]
 *
 * Without --before or --older-than, does now what the daemon does on its
 * own: every peer's `Retain` (else the station's).  With them, purges the
 * contents of every message done before that time (of PEER only with
 * --peer, a pinned peer or one removed since).  Contents are the body, the
 * subject and the attachment files; the signed items stay, so the record
 * still verifies and says what was purged.  It says how much it will purge
 * and asks on a terminal (--yes for scripts; refused without either);
 * --dry-run only says.  Works with the daemon running or not.
 *
 * DIAGNOSTICS  one line on stderr and exit 1 on failure; exit 2 for a bad
 * option or date. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "msg/retain.h"
#include "util/err.h"
#include "util/text.h"
#include "util/timefmt.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] purge [--before DATE | --older-than AGE] [--peer NAME]\n"
		   "                             [--dry-run] [--yes]\n\n"
		   "Purge the contents (body, subject, attachment files) of messages that are\n"
		   "done (ours delivered or refused, the peer's received or refused).  Their\n"
		   "signed items stay: the record still verifies, and says which were purged\n"
		   "and when.  What a peer's messages held no longer counts for its quota.\n\n"
		   "Without --before or --older-than: what Retain in station.conf asks (each\n"
		   "peer's, else the station's); the daemon also does this by itself.\n\n"
		   "  --before DATE      messages done before DATE: 2025-01-31 (midnight UTC)\n"
		   "                     or 2025-01-31T12:00:00Z\n"
		   "  --older-than AGE   messages done more than AGE ago: 90d, 12h, 30m, 10s\n"
		   "  --peer NAME        only this peer's (pinned, or removed: 'peer list --removed')\n"
		   "  --dry-run          say what would be purged; change nothing\n"
		   "  --yes              do not ask (needed when not on a terminal)\n"
		   "  -h, --help         this text\n\n"
		   "Exit status: 0 done (or nothing to do), 1 failure or not confirmed,\n"
		   "2 usage error.\n");
}

/* "2025-01-31" (midnight UTC) or RFC 3339 UTC, in ms. */
static int parse_date(const char *s, int64_t *ms)
{
	time_t t;
	char buf[32];
	if (strlen(s) == 10 && s[4] == '-' && s[7] == '-') {
		snprintf(buf, sizeof(buf), "%sT00:00:00Z", s);
		s = buf;
	}
	if (hl_rfc3339_parse(s, &t) < 0)
		return HL_EINVAL;
	*ms = (int64_t)t * 1000;
	return 0;
}

static void print_result(const struct hl_retain_result *r, bool dry_run)
{
	if (dry_run) {
		printf("would purge the contents of %llu message(s), %llu bytes\n",
		       (unsigned long long)r->messages, (unsigned long long)r->bytes);
		return;
	}
	if (!r->messages && !r->files && !r->mails && !r->files_left) {
		printf("nothing to purge\n");
		return;
	}
	printf("purged the contents of %llu message(s), %llu bytes; %llu file(s) removed",
	       (unsigned long long)r->messages, (unsigned long long)r->bytes,
	       (unsigned long long)r->files);
	if (r->mails)
		printf("; %llu old mail(s) removed from the Maildir", (unsigned long long)r->mails);
	printf("\n");
	if (r->files_left)
		printf("%llu file(s) wait for a backup to finish; the next purge removes them\n",
		       (unsigned long long)r->files_left);
}

struct opts {
	const char *before, *older, *peer;
	bool dry_run, yes;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "before", required_argument, NULL, 'b' },
		{ "older-than", required_argument, NULL, 'o' },
		{ "peer", required_argument, NULL, 'p' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "yes", no_argument, NULL, 'y' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	memset(o, 0, sizeof(*o));
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'b': o->before = optarg; break;
		case 'o': o->older = optarg; break;
		case 'p': o->peer = optarg; break;
		case 'n': o->dry_run = true; break;
		case 'y': o->yes = true; break;
		case 'h':
			usage(stdout);
			return HL_EXIT_OK;
		default:
			return hl_usage_error("purge", "bad option");
		}
	}
	if (optind < argc) {
		char q[128];
		hl_sanitize(argv[optind], strlen(argv[optind]), q, sizeof(q), 0);
		return hl_usage_error("purge", "unexpected argument '%s'", q);
	}
	if (o->before && o->older)
		return hl_usage_error("purge", "--before and --older-than exclude each other");
	if (o->peer && !o->before && !o->older)
		return hl_usage_error("purge", "--peer goes with --before or --older-than");
	return -1;
}

/* The cut-off of --before or --older-than, in ms. */
static int cutoff(const struct opts *o, int64_t now, int64_t *before)
{
	char q[64];
	uint64_t age;
	if (o->before) {
		if (parse_date(o->before, before) < 0) {
			hl_sanitize(o->before, strlen(o->before), q, sizeof(q), 0);
			return hl_usage_error("purge", "bad --before '%s': want 2025-01-31 or "
					      "2025-01-31T12:00:00Z", q);
		}
		return HL_EXIT_OK;
	}
	if (hl_retain_parse(o->older, strlen(o->older), &age) < 0 || age == 0 ||
	    age >= (uint64_t)now) {
		hl_sanitize(o->older, strlen(o->older), q, sizeof(q), 0);
		return hl_usage_error("purge", "bad --older-than '%s': want an age such as 90d "
				      "(a whole number and s, m, h or d)", q);
	}
	*before = now - (int64_t)age;
	return HL_EXIT_OK;
}

int purge_main(struct hl_ctx *ctx, int argc, char **argv)
{
	struct opts o;
	struct hl_station mc = { 0 };
	struct hl_retain_result r = { 0 };
	char err[512], q[700];
	int64_t now = hl_now_ms(), before = 0, peer_id = 0;
	int ret = parse_opts(argc, argv, &o);
	if (ret >= 0)
		return ret;
	bool by_conf = !o.before && !o.older;
	if (!by_conf && (ret = cutoff(&o, now, &before)) != HL_EXIT_OK)
		return ret;
	if ((ret = hl_msgcmd_open(ctx, "purge", &mc, false)) != HL_EXIT_OK)
		goto out;
	if (o.peer) {
		hl_peer_conf pc;
		bool removed;
		if ((ret = hl_msgcmd_peer(&mc, "purge", o.peer, &pc, &removed)) != HL_EXIT_OK)
			goto out;
		if (hl_store_peer_find(mc.store, pc.signing_key, &peer_id) < 0) {
			printf("nothing to purge: nothing was ever exchanged with %s\n", pc.name);
			ret = HL_EXIT_OK;
			goto out;
		}
	}
	if (by_conf) {
		bool any = mc.conf->retain_ms != 0;
		for (size_t i = 0; i < mc.conf->npeers; i++)
			any = any || hl_conf_retain_ms(mc.conf, &mc.conf->peers[i]) != 0;
		if (!any) {
			printf("no Retain is set in station.conf: nothing is purged by age "
			       "(give --before DATE or --older-than AGE)\n");
			ret = HL_EXIT_OK;
			goto out;
		}
		if (hl_retain_apply(ctx->dir, mc.store, mc.conf, now, SIZE_MAX, true, &r, err,
				    sizeof(err)) < 0) {
			ret = hl_fail("purge", "%s", err);
			goto out;
		}
		snprintf(q, sizeof(q), "Purge the contents of %llu message(s) (%llu bytes), as "
			 "Retain in station.conf allows? Their signed items stay; the contents "
			 "cannot be brought back.", (unsigned long long)r.messages,
			 (unsigned long long)r.bytes);
	}
	/* Say what will go, then ask. */
	if (!by_conf) {
		if (hl_retain_purge(ctx->dir, mc.store, peer_id, before, now, 0, true, &r, err,
				    sizeof(err)) < 0) {
			ret = hl_fail("purge", "%s", err);
			goto out;
		}
		char when[HL_RFC3339_LEN];
		hl_rfc3339(before, when);
		snprintf(q, sizeof(q), "Purge the contents of %llu message(s) (%llu bytes) done "
			 "before %s%s%s? Their signed items stay; the contents cannot be brought "
			 "back.", (unsigned long long)r.messages, (unsigned long long)r.bytes, when,
			 o.peer ? " with " : "", o.peer ? o.peer : "");
	}
	/* Nothing old enough: still remove what an earlier purge left queued. */
	if (o.dry_run || (r.messages == 0 && !by_conf)) {
		print_result(&r, true);
		ret = HL_EXIT_OK;
		goto out;
	}
	int yes = r.messages ? hl_confirm("purge", o.yes, q) : 1;
	if (yes != 1) {
		if (yes == 0)
			ret = hl_fail("purge", "not confirmed: nothing was purged");
		else
			ret = HL_EXIT_FAIL;
		goto out;
	}
	memset(&r, 0, sizeof(r));
	if ((by_conf ? hl_retain_apply(ctx->dir, mc.store, mc.conf, now, SIZE_MAX, false, &r, err,
				       sizeof(err))
		     : hl_retain_purge(ctx->dir, mc.store, peer_id, before, now, SIZE_MAX, false,
				       &r, err, sizeof(err))) < 0) {
		ret = hl_fail("purge", "%s", err);
		goto out;
	}
	print_result(&r, false);
	hl_msgcmd_poke_daemon(ctx);
	ret = HL_EXIT_OK;
out:
	hl_msgcmd_close(&mc);
	return ret;
}
