/* cmd/msgcmd.c — shared plumbing of the message commands (see msgcmd.h). */
#include "cmd/msgcmd.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "station/control_client.h"
#include "station/control_proto.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"
#include "voice/voicemsg.h"

int hl_msgcmd_open(struct hl_ctx *ctx, const char *name, struct hl_station *mc,
		   bool need_identity)
{
	char err[HL_STATION_ERR_LEN];
	int ret;
	memset(mc, 0, sizeof(*mc));
	if ((ret = hl_need_station(ctx, name)) != HL_EXIT_OK)
		return ret;
	/* The key holder when the daemon runs; else the keys here, under the
	 * journal's lock (holder/client.h). */
	ret = hl_station_open(mc, ctx->dir, HL_OPEN_STORE | (need_identity ? HL_OPEN_SIGN : 0),
			      err);
	if (ret < 0)
		return ret == -ENOENT && !mc->conf ? hl_no_station(ctx, name) : hl_fail(name, "%s", err);
	return HL_EXIT_OK;
}

struct find_peer {
	const hl_station_conf *conf;
	const char *want;
	hl_peer_conf *out;
	size_t found;
};

static bool pinned_key(const hl_station_conf *conf, const uint8_t key[static 32])
{
	for (size_t i = 0; i < conf->npeers; i++)
		if (memcmp(conf->peers[i].signing_key, key, 32) == 0)
			return true;
	return false;
}

static int find_removed(void *arg, const struct hl_peer_row *row)
{
	struct find_peer *f = arg;
	uint8_t fp[HL_FP_LEN];
	if (pinned_key(f->conf, row->signing_key))
		return 0;
	hl_fingerprint_next(row->noise_key, row->signing_key, row->has_next ? row->next_hash : NULL,
			    fp);
	if (strcmp(row->name, f->want) != 0 && hl_fingerprint_matches(f->want, fp) != 1)
		return 0;
	if (f->found++ == 0) {
		memset(f->out, 0, sizeof(*f->out));
		/* Names in the store came from station.conf: valid, so short. */
		size_t n = strnlen(row->name, sizeof(f->out->name) - 1);
		memcpy(f->out->name, row->name, n);
		f->out->name[n] = '\0';
		memcpy(f->out->noise_key, row->noise_key, HL_KEY_LEN);
		memcpy(f->out->signing_key, row->signing_key, HL_KEY_LEN);
		f->out->has_next = row->has_next;
		memcpy(f->out->next_hash, row->next_hash, HL_KEY_LEN);
		memcpy(f->out->fingerprint, fp, HL_FP_LEN);
	}
	return 0;
}

int hl_msgcmd_peer(struct hl_station *mc, const char *cmd, const char *name, hl_peer_conf *out,
		   bool *removed)
{
	char q[128];
	const hl_peer_conf *pc = hl_conf_peer_by_name(mc->conf, name);
	*removed = false;
	if (pc) {
		*out = *pc;
		return HL_EXIT_OK;
	}
	hl_sanitize(name, strlen(name), q, sizeof(q), 0);
	struct find_peer f = { mc->conf, name, out, 0 };
	if (hl_store_each_peer(mc->store, find_removed, &f) < 0)
		return hl_fail(cmd, "store: %s", hl_store_errmsg(mc->store));
	if (f.found == 0)
		return hl_fail(cmd, "no peer named '%s', pinned or removed (hotline peer list "
			       "--removed)", q);
	if (f.found > 1)
		return hl_fail(cmd, "%zu removed peers were named '%s': give the fingerprint "
			       "instead (hotline peer list --removed)", f.found, q);
	*removed = true;
	return HL_EXIT_OK;
}

void hl_msgcmd_close(struct hl_station *mc)
{
	hl_station_close(mc);
	memset(mc, 0, sizeof(*mc));
}

void hl_msgcmd_print_ids(const uint8_t (*ids)[16], size_t n)
{
	char hex[33];
	for (size_t i = 0; i < n; i++) {
		hl_msg_id_hex(ids[i], hex);
		printf("%s\n", hex);
	}
	fflush(stdout);
}

void hl_msgcmd_poke_daemon(struct hl_ctx *ctx)
{
	hl_control_poke(ctx->dir);
}

/* The message's final state, or 0 while it is still on its way.  REASON
 * gets a refusal's reason, sanitised. */
static int final_state(struct hl_station *mc, const uint8_t id[static 16], char *reason,
		       size_t cap, int *err)
{
	struct hl_msg_row row = { 0 };
	*err = hl_store_get_message_by_id(mc->store, id, &row);
	int st = *err < 0 ? 0 : (int)row.state;
	if (row.reason)
		hl_sanitize(row.reason, strlen(row.reason), reason, cap, 0);
	else
		reason[0] = '\0';
	hl_msg_row_clear(&row);
	return st == HL_MSG_DELIVERED || st == HL_MSG_REFUSED ? st : 0;
}

enum watch_hit { W_FAILED = -1, W_TIMEOUT = 0, W_SUBSCRIBED, W_DELIVERED, W_REFUSED, W_OTHER };

/* What the daemon's "delivered" event said: to whom and when (the store's
 * delivered_at); empty when it said neither. */
struct delivery {
	char peer[HL_NAME_MAX + 1];
	char at[HL_RFC3339_LEN];
};

static void take_delivery(json_t *ev, struct delivery *dv)
{
	const char *peer = json_string_value(json_object_get(ev, "peer"));
	const char *at = json_string_value(json_object_get(ev, "at"));
	time_t t;
	/* a well-formed time and a name, or the store is asked instead */
	if (!peer || !at || strlen(at) >= sizeof(dv->at) || hl_rfc3339_parse(at, &t) < 0)
		return;
	hl_sanitize(peer, strlen(peer), dv->peer, sizeof(dv->peer), 0);
	memcpy(dv->at, at, strlen(at) + 1);
}

/* Reads the daemon's watch stream on FD until the subscription is
 * confirmed (*FIRST: its {"ok":true} is still to come), an event names
 * message HEX, the deadline passes or the stream fails.  REASON gets a
 * refusal's reason, sanitised; DV what a delivery event said. */
static enum watch_hit watch_for(int fd, const char *hex, uint64_t deadline, bool *first,
				char *reason, size_t cap, struct delivery *dv)
{
	for (;;) {
		json_t *ev;
		int r = hl_control_read_line(fd, deadline, &ev);
		if (r <= 0)
			return r < 0 ? W_FAILED : W_TIMEOUT;
		enum watch_hit hit = W_OTHER;
		if (*first) {
			*first = false;
			hit = json_is_true(json_object_get(ev, "ok")) ? W_SUBSCRIBED : W_FAILED;
		} else {
			const char *id = json_string_value(json_object_get(ev, "id"));
			const char *name = json_string_value(json_object_get(ev, "event"));
			const char *why = json_string_value(json_object_get(ev, "reason"));
			if (id && name && strcmp(id, hex) == 0) {
				if (strcmp(name, "delivered") == 0) {
					hit = W_DELIVERED;
					take_delivery(ev, dv);
				} else if (strcmp(name, "refused") == 0) {
					hit = W_REFUSED;
					why = why ? why : "";
					hl_sanitize(why, strlen(why), reason, cap, 0);
				}
			}
		}
		json_decref(ev);
		if (hit != W_OTHER)
			return hit;
	}
}

/* The line after the id once the receipt is in: to whom, and when the
 * receipt was stored here (the store's delivered_at, our clock) — as the
 * daemon's event said, or from the store when no event said it. */
static int print_delivered(struct hl_ctx *ctx, struct hl_station *mc, const uint8_t id[static 16],
			   const struct delivery *dv)
{
	struct hl_msg_row row = { 0 };
	char when[HL_RFC3339_LEN], peer[HL_NAME_MAX + 1];
	if (dv->at[0]) {
		printf("delivered to %s at %s (its signed receipt is stored)\n", dv->peer, dv->at);
		return fflush(stdout) == 0 ? HL_EXIT_OK : hl_fail("send", "cannot write the output");
	}
	if (!mc->store && hl_msgcmd_open(ctx, "send", mc, false) != HL_EXIT_OK)
		return HL_EXIT_FAIL;
	if (hl_store_get_message_by_id(mc->store, id, &row) < 0 || row.delivered_at <= 0) {
		hl_msg_row_clear(&row);
		return hl_fail("send", "store: %s", hl_store_errmsg(mc->store));
	}
	hl_rfc3339(row.delivered_at, when);
	hl_sanitize(row.peer_name, strlen(row.peer_name), peer, sizeof(peer), 0);
	printf("delivered to %s at %s (its signed receipt is stored)\n", peer, when);
	hl_msg_row_clear(&row);
	return fflush(stdout) == 0 ? HL_EXIT_OK : hl_fail("send", "cannot write the output");
}

int hl_msgcmd_wait_delivered(struct hl_ctx *ctx, struct hl_station *mc,
			     const uint8_t id[static 16], uint64_t timeout_ms, int watch_fd,
			     bool subscribed)
{
	uint64_t deadline = hl_mono_ms() + timeout_ms;
	char hex[33], reason[256] = "";
	struct delivery dv = { "", "" };
	int fd = watch_fd, err = 0, st = 0;
	bool first = !subscribed, look = !subscribed;
	hl_msg_id_hex(id, hex);

	/* With a daemon, its event stream says when the receipt is in: no
	 * polling delay.  Subscribe first (the caller may have done so
	 * already), then look at the store once the subscription is
	 * confirmed, so that a receipt between the two is not missed; a
	 * subscription made before the message was queued needs no look. */
	if (fd < 0) {
		fd = hl_control_watch(ctx->dir);
		first = look = true;
	}
	for (;;) {
		if (look || fd < 0) {
			if (!mc->store && hl_msgcmd_open(ctx, "send", mc, false) != HL_EXIT_OK) {
				if (fd >= 0)
					close(fd);
				return HL_EXIT_FAIL;
			}
			if ((st = final_state(mc, id, reason, sizeof(reason), &err)) != 0 || err < 0)
				break;
			look = false;
		}
		if (fd >= 0) {
			enum watch_hit r = watch_for(fd, hex, deadline, &first, reason, sizeof(reason),
							  &dv);
			if (r == W_TIMEOUT)
				break;
			if (r == W_DELIVERED || r == W_REFUSED) {
				st = r == W_DELIVERED ? HL_MSG_DELIVERED : HL_MSG_REFUSED;
				break;
			}
			if (r == W_FAILED) {
				close(fd); /* the stream failed: poll the store instead */
				fd = -1;
			}
			look = true;
			continue;
		}
		if (hl_mono_ms() >= deadline)
			break;
		struct timespec ts = { 0, 2 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	if (fd >= 0)
		close(fd);
	if (err < 0)
		return hl_fail("send", "message %s: %s", hex, hl_strerror(err));
	if (st == HL_MSG_DELIVERED)
		return print_delivered(ctx, mc, id, &dv);
	if (st == HL_MSG_REFUSED)
		return hl_fail("send", "message %s was refused by the peer: %s", hex, reason);
	return hl_fail("send", "message %s is queued, but no receipt came within %llu s (it will still be delivered)",
		       hex, (unsigned long long)(timeout_ms / 1000));
}

static json_t *time_or_null(int64_t ms)
{
	char buf[HL_RFC3339_LEN];
	if (ms <= 0)
		return json_null();
	hl_rfc3339(ms, buf);
	return json_string(buf);
}

/* jansson wants valid UTF-8; stored text from a peer is checked on
 * arrival, but be safe: fall back to a sanitised copy. */
static json_t *text_json(const char *s, size_t len)
{
	json_t *j = json_stringn(s, len);
	if (j)
		return j;
	char *clean = xmalloc(len * 3 + 1);
	hl_sanitize(s, len, clean, len * 3 + 1, 1);
	j = json_string(clean);
	free(clean);
	return j;
}

json_t *hl_msgcmd_json(const struct hl_msg_row *row)
{
	char hex[65];
	json_t *o = json_object();
	hl_msg_id_hex(row->id, hex);
	json_object_set_new(o, "id", json_string(hex));
	json_object_set_new(o, "peer", json_string(row->peer_name));
	json_object_set_new(o, "direction", json_string(row->dir == HL_DIR_OUT ? "out" : "in"));
	json_object_set_new(o, "precedence", json_string(hl_precedence_name(row->precedence)));
	json_object_set_new(o, "subject", text_json(row->subject ? row->subject : "",
						    row->subject ? strlen(row->subject) : 0));
	uint64_t size = row->body_size;
	for (unsigned i = 0; i < row->n_att; i++)
		size += row->att[i].size;
	json_object_set_new(o, "size", json_integer((json_int_t)size));
	json_object_set_new(o, "sent_at", time_or_null(row->sent_at));
	if (row->dir == HL_DIR_IN) {
		json_object_set_new(o, "received_at", time_or_null(row->received_at));
		json_object_set_new(o, "unread", json_boolean(row->unread));
	} else {
		json_object_set_new(o, "state", json_string(hl_msg_state_name(row->state)));
		json_object_set_new(o, "delivered_at", time_or_null(row->delivered_at));
		if (row->state == HL_MSG_REFUSED)
			json_object_set_new(o, "reason", json_string(row->reason ? row->reason : ""));
	}
	json_object_set_new(o, "body", row->body ? text_json((const char *)row->body, row->body_size)
						 : json_null());
	/* Retention: body null, subject "", the signed sizes and hashes kept. */
	json_object_set_new(o, "purged_at", time_or_null(row->purged_at));
	json_t *atts = json_array();
	for (unsigned i = 0; i < row->n_att; i++) {
		json_t *a = json_object();
		json_object_set_new(a, "name", text_json(row->att[i].name, strlen(row->att[i].name)));
		json_object_set_new(a, "size", json_integer((json_int_t)row->att[i].size));
		hl_hex(row->att[i].hash, HL_HASH_LEN, hex);
		json_object_set_new(a, "hash", json_string(hex));
		json_array_append_new(atts, a);
	}
	json_object_set_new(o, "attachments", atts);
	return o;
}

struct list_ctx {
	const char *station;
	bool json;
	json_t *arr;
	enum hl_dir dir;
	size_t count;
};

/* A short one-line preview: the subject, else the body's first line. */
static void preview(const struct hl_msg_row *row, char *out, size_t cap)
{
	const char *s = row->subject ? row->subject : "";
	size_t len = strlen(s);
	if (row->purged_at) {
		snprintf(out, cap, "(purged)");
		return;
	}
	if (len == 0 && row->body) {
		s = (const char *)row->body;
		const char *nl = memchr(s, '\n', row->body_size);
		len = nl ? (size_t)(nl - s) : row->body_size;
	}
	hl_sanitize(s, len, out, cap, 0);
}

static int list_one(void *arg, const struct hl_msg_row *row)
{
	struct list_ctx *lc = arg;
	lc->count++;
	if (lc->json) {
		json_t *o = hl_msgcmd_json(row);
		json_t *v = hl_voice_json(lc->station, row);
		if (v)
			json_object_set_new(o, "voice", v);
		json_array_append_new(lc->arr, o);
		return 0;
	}
	char hex[33], when[HL_RFC3339_LEN], text[61], peer[HL_NAME_MAX + 1];
	hl_msg_id_hex(row->id, hex);
	hl_rfc3339(row->dir == HL_DIR_IN ? row->received_at : row->sent_at, when);
	when[16] = '\0'; /* to the minute: 2026-11-27T22:43 */
	when[10] = ' ';
	preview(row, text, sizeof(text));
	hl_sanitize(row->peer_name, strlen(row->peer_name), peer, sizeof(peer), 0);
	char upper[16];
	const char *pn = hl_precedence_name(row->precedence);
	size_t i = 0;
	for (; pn[i] && i < sizeof(upper) - 1; i++)
		upper[i] = (char)(pn[i] - 32);
	upper[i] = '\0';
	char extra[32] = "", voice[24];
	hl_voice_label(lc->station, row, voice, sizeof(voice));
	if (voice[0])
		snprintf(extra, sizeof(extra), " [%s]", voice);
	else if (row->n_att)
		snprintf(extra, sizeof(extra), " [%u attachment%s]", row->n_att, row->n_att > 1 ? "s" : "");
	if (row->dir == HL_DIR_IN)
		printf("%.12s  %s  %-12s %-9s %s%s%s\n", hex, when, peer, upper,
		       row->unread ? "* " : "  ", text, extra);
	else
		printf("%.12s  %s  %-12s %-9s %-9s %s%s\n", hex, when, peer, upper,
		       hl_msg_state_name(row->state), text, extra);
	return 0;
}

int hl_msgcmd_list(struct hl_ctx *ctx, const char *name, enum hl_dir dir, bool json,
		   bool unread_only)
{
	struct hl_station mc;
	int ret = hl_msgcmd_open(ctx, name, &mc, false);
	if (ret != HL_EXIT_OK) {
		hl_msgcmd_close(&mc);
		return ret;
	}
	struct hl_msg_filter f = { .dir = dir, .unread_only = unread_only,
				   .visible_only = dir == HL_DIR_IN };
	struct list_ctx lc = { .station = ctx->dir, .json = json, .dir = dir };
	if (json)
		lc.arr = json_array();
	else if (dir == HL_DIR_IN)
		printf("%-12s  %-16s  %-12s %-9s   %s\n", "ID", "RECEIVED (UTC)", "FROM", "PREC", "SUBJECT");
	else
		printf("%-12s  %-16s  %-12s %-9s %-9s %s\n", "ID", "SENT (UTC)", "TO", "PREC", "STATE", "SUBJECT");
	int r = hl_store_each_message(mc.store, &f, list_one, &lc);
	if (r < 0) {
		ret = hl_fail(name, "store: %s", hl_store_errmsg(mc.store));
	} else if (json) {
		char *s = json_dumps(lc.arr, JSON_COMPACT | JSON_ENSURE_ASCII);
		printf("%s\n", s);
		free(s);
	}
	json_decref(lc.arr);
	hl_msgcmd_close(&mc);
	return ret;
}

int hl_msgcmd_box(struct hl_ctx *ctx, int argc, char **argv, enum hl_dir dir)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "unread", no_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = dir == HL_DIR_IN ? "inbox" : "outbox";
	bool json = false, unread = false;
	int c;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'u':
			if (dir != HL_DIR_IN)
				return hl_usage_error(name, "--unread is for the inbox");
			unread = true;
			break;
		case 'h':
			if (dir == HL_DIR_IN)
				printf("usage: hotline inbox [--json] [--unread]\n\n"
				       "The received messages, oldest first; * marks the unread.\n\n"
				       "      --json    one JSON array of message objects\n"
				       "      --unread  only the messages not yet read\n");
			else
				printf("usage: hotline outbox [--json]\n\n"
				       "The sent messages, oldest first, with their state:\n"
				       "queued, sent, delivered or refused.\n\n"
				       "      --json    one JSON array of message objects\n");
			return HL_EXIT_OK;
		default:
			return hl_usage_error(name, "bad option");
		}
	}
	if (optind < argc)
		return hl_usage_error(name, "unexpected argument '%s'", argv[optind]);
	return hl_msgcmd_list(ctx, name, dir, json, unread);
}
