/* cmd/key.c — `hotline key rotate`: new keys for the station, announced to
 * every peer (docs/rotation.md).
 *
 * SYNOPSIS
 *   hotline [-d DIR] key rotate [--reason routine|compromise]
 *
 * The station's next keys, committed to by its card, become its keys;
 * new next keys are made; identity.key is replaced whole (crypto/signer.h,
 * hl_signer_rotate); and a rotation item, signed by the old key and the
 * new one, goes on the station's chain with every peer
 * (deliver/rotate.h), which each peer takes by itself.  With the daemon
 * running, the daemon does it (control request "rotate": it holds the
 * keys its links and engines use); without, this command does, holding
 * the daemon's lock so that none starts meanwhile.  A rotation that a
 * crash left half done (identity.key rotated, the chains not) is
 * completed, and nothing more: run the command again to rotate again.
 *
 * Prints the new fingerprint: peers pinned from now on pin the new card
 * (`hotline card`).  Exit 0, 1 on failure (one line), 2 usage. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "crypto/signer.h"
#include "station/control_client.h"
#include "station/control_proto.h"
#include "deliver/rotate.h"
#include "holder/client.h"
#include "msg/item.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/text.h"
#include "util/timefmt.h"

#define CMD "key rotate"
#define ROTATE_TIMEOUT_MS 60000   /* the daemon writes a file and a commit */

static void usage(FILE *f)
{
	fprintf(f, "usage: hotline [-d DIR] key rotate [--reason routine|compromise]\n\n"
		   "Replace the station's keys by the next keys its card committed to, make\n"
		   "new next keys, and announce the new keys to every peer, signed by the old\n"
		   "key and the new one; each peer takes them by itself, and its operator is\n"
		   "told the new fingerprint.  Works with the daemon running or not.\n"
		   "Peers pinned from now on need the new card ('hotline card').\n\n"
		   "  -r, --reason R   routine (default) or compromise: the old keys may be\n"
		   "                   known to someone else (the peers' operators are told)\n"
		   "  -h, --help       this text\n");
}

static void report(const char *fp, long long chains, bool completed)
{
	if (completed)
		printf("Completed the key rotation begun earlier (identity.key was rotated, its "
		       "chains were not): %lld chain(s).\nRun 'hotline key rotate' again to "
		       "rotate once more.\n", chains);
	else
		printf("Rotated the station's keys: a rotation item on %lld chain(s); each peer "
		       "takes it by itself.\nGive peers pinned from now on the new card "
		       "('hotline card').\n", chains);
	printf("Fingerprint: %s\n", fp);
}

/* Through the running daemon: 1 done, 0 no daemon, or an exit status. */
static int via_daemon(struct hl_ctx *ctx, unsigned reason)
{
	struct hl_ctl_request r = { .cmd = HL_CTL_ROTATE };
	json_t *resp = NULL, *req;
	r.u.rotate.reason = reason;
	req = hl_ctl_request_json(&r);
	int ret = hl_control_call(ctx->dir, req, ROTATE_TIMEOUT_MS, &resp);
	json_decref(req);
	if (ret == HL_ENODAEMON)
		return 0;
	if (ret < 0)
		return hl_fail(CMD, "asking the daemon: %s (it may have rotated: see its log and "
			       "'hotline card --fingerprint')", hl_strerror(ret));
	if (!json_is_true(json_object_get(resp, "ok"))) {
		const char *e = json_string_value(json_object_get(resp, "error"));
		char clean[600];
		hl_sanitize(e ? e : "refused", strlen(e ? e : "refused"), clean, sizeof(clean), 0);
		json_decref(resp);
		return hl_fail(CMD, "%s", clean);
	}
	const char *fp = json_string_value(json_object_get(resp, "fingerprint"));
	char clean[HL_FP_TEXT_LEN + 8];
	hl_sanitize(fp ? fp : "", strlen(fp ? fp : ""), clean, sizeof(clean), 0);
	report(clean, (long long)json_integer_value(json_object_get(resp, "chains")), false);
	json_decref(resp);
	return 1;
}

/* The daemon's lock, so that no daemon starts while we rotate: the fd, or
 * -1 when a daemon holds it (or it cannot be had: *ERR). */
static int take_daemon_lock(const char *dir, int *err)
{
	char *path = hl_path_join(dir, HL_DAEMON_LOCK_FILE);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	*err = fd < 0 ? errno : 0;
	free(path);
	if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) < 0) {
		*err = errno == EWOULDBLOCK ? 0 : errno;
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Without a daemon: the identity file, then the chains. */
static int rotate_here(struct hl_ctx *ctx, unsigned reason)
{
	hl_station_conf *conf = NULL;
	hl_keys *keys = NULL;
	const hl_signer *me = NULL;
	hl_store *st = NULL;
	char err[HL_CONF_ERR_LEN], fp[HL_FP_TEXT_LEN], kerr[HL_KEYS_ERR_LEN];
	char *path = hl_path_join(ctx->dir, HL_IDENTITY_FILE);
	bool pending = false;
	size_t n = 0;
	uint8_t f[HL_FP_LEN];
	int ret = hl_conf_load(ctx->dir, &conf, err);
	if (ret < 0) {
		ret = ret == -ENOENT ? hl_no_station(ctx, CMD) : hl_fail(CMD, "%s", err);
		goto out;
	}
	/* no daemon: a key holder this command starts (holder/client.c), under its lock */
	if ((ret = hl_keys_open(ctx->dir, HL_KEYS_SIGN, &keys, kerr)) < 0) {
		ret = hl_fail(CMD, "%s", kerr);
		goto out;
	}
	me = hl_keys_signer(keys);
	if ((ret = hl_store_open(ctx->dir, &st)) < 0 ||
	    (ret = hl_rotate_pending(st, me, &pending)) < 0)
		goto store_err;
	if (!pending && (ret = hl_keys_rotate(keys)) < 0) {
		ret = hl_fail(CMD, "cannot rotate %s: %s", path,
			      ret == HL_EUNSUPP ? "it has no next keys (made before key rotation "
						  "existed): this station cannot rotate"
						: "the key holder did not rotate it (see above)");
		goto out;
	}
	if ((ret = hl_store_begin(st)) < 0)
		goto store_err;
	if ((ret = hl_rotate_chains(st, me, conf, reason, &n)) < 0 ||
	    (ret = hl_store_commit(st)) < 0) {
		hl_store_rollback(st);
		goto store_err;
	}
	hl_signer_fingerprint(me, f);
	hl_fingerprint_text(f, fp);
	report(fp, (long long)n, pending);
	ret = HL_EXIT_OK;
	goto out;
store_err:
	ret = hl_fail(CMD, "%s%s: %s", pending ? "" : "identity.key holds the new keys, but ",
		      pending ? "completing the rotation" : "the chains could not be told",
		      ret == HL_EKEYS ? "the store's chains are at keys that are neither the "
					"identity's current nor its previous ones"
		      : st ? hl_store_errmsg(st) : hl_strerror(ret));
out:
	hl_store_close(st);
	hl_keys_free(keys);
	hl_conf_free(conf);
	free(path);
	return ret;
}

/* Parses ARGV: -1 to go on (*REASON set), else the exit status. */
static int parse_args(struct hl_ctx *ctx, int argc, char **argv, unsigned *reason)
{
	static const struct option opts[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	*reason = HL_ROTATE_ROUTINE;
	if (argc < 2 || strcmp(argv[1], "rotate") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
			usage(stdout);
			return HL_EXIT_OK;
		}
		usage(stderr);
		return HL_EXIT_USAGE;
	}
	argc--, argv++;
	optind = 1;
	while ((c = getopt_long(argc, argv, "r:h", opts, NULL)) != -1) {
		if (c == 'h') {
			usage(stdout);
			return HL_EXIT_OK;
		}
		if (c == 'r' && strcmp(optarg, "compromise") == 0)
			*reason = HL_ROTATE_COMPROMISE;
		else if (c != 'r' || strcmp(optarg, "routine") != 0)
			return hl_usage_error(CMD, "--reason is routine or compromise");
	}
	int ret = hl_args_done(ctx, CMD, argc, argv);
	return ret == HL_EXIT_OK ? -1 : ret;
}

int key_main(struct hl_ctx *ctx, int argc, char **argv)
{
	unsigned reason;
	int ret = parse_args(ctx, argc, argv, &reason);
	if (ret >= 0)
		return ret;
	for (int attempt = 0; attempt < 2; attempt++) {
		if ((ret = via_daemon(ctx, reason)) != 0)
			return ret == 1 ? HL_EXIT_OK : ret;
		int lock_err;
		int fd = take_daemon_lock(ctx->dir, &lock_err);
		if (fd < 0 && lock_err)
			return hl_fail(CMD, "cannot lock %s/%s: %s", ctx->dir, HL_DAEMON_LOCK_FILE,
				       strerror(lock_err));
		if (fd < 0)
			continue; /* a daemon started meanwhile: ask it */
		ret = rotate_here(ctx, reason);
		close(fd); /* releases the lock */
		return ret;
	}
	return hl_fail(CMD, "a daemon holds %s/%s but does not answer", ctx->dir,
		       HL_DAEMON_LOCK_FILE);
}
