/* cmd/watch.c — `hotline watch [--json] [--once]`: follow the daemon's events
 * (messages arriving, receipts, refusals) until interrupted.  Needs the
 * daemon at the start; when the stream ends (the daemon stopped or
 * restarts) it says so on stderr and reconnects with backoff, unless
 * --once.  With --json, one JSON object per line as the daemon sends it;
 * otherwise one line per event for people, with peer text sanitised. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "station/control_client.h"
#include "station/control_proto.h"
#include "util/err.h"
#include "util/text.h"
#include "voice/voicemsg.h"

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : "";
}

/* A field of EV, sanitised (a static buffer: one use per printf). */
static const char *reason_or(json_t *ev, const char *key)
{
	static char buf[600];
	hl_sanitize(jstr(ev, key), strlen(jstr(ev, key)), buf, sizeof(buf), 0);
	return buf;
}

static const char *rtt_text(json_t *ev)
{
	static char buf[32];
	json_t *r = json_object_get(ev, "rtt_ms");
	buf[0] = '\0';
	if (json_is_integer(r))
		snprintf(buf, sizeof(buf), " (%lld ms)", (long long)json_integer_value(r));
	return buf;
}

/* " [voice 0:42]" when message ID is a voice message (looked up in the
 * store: the event does not say), else "". */
static void voice_suffix(const char *dir, const char *id, char *out, size_t cap)
{
	hl_store *st = NULL;
	struct hl_msg_row row;
	char label[32] = "";
	memset(&row, 0, sizeof(row));
	out[0] = '\0';
	if (hl_store_open(dir, &st) == 0 && hl_store_get_message(st, id, &row) == 0)
		hl_voice_label(dir, &row, label, sizeof(label));
	hl_msg_row_clear(&row);
	hl_store_close(st);
	if (label[0])
		snprintf(out, cap, " [%s]", label);
}

/* A call's events (docs/voice.md section 6). */
static void print_call_event(json_t *ev, const char *what, const char *peer, const char *prec)
{
	const char *in = strcmp(jstr(ev, "direction"), "in") == 0 ? "from" : "to";
	if (strcmp(what, "ring") == 0)
		printf("%s  CALL RINGING: %s call from %s (hotline call answer %s)\n", jstr(ev, "at"),
		       prec, peer, peer);
	else if (strcmp(what, "ringing_out") == 0)
		printf("%s  calling %s (%s)\n", jstr(ev, "at"), peer, prec);
	else if (strcmp(what, "answered") == 0)
		printf("%s  call %s %s answered\n", jstr(ev, "at"), in, peer);
	else if (strcmp(what, "ended") == 0)
		printf("%s  call %s %s ended: %s, by %s\n", jstr(ev, "at"), in, peer,
		       jstr(ev, "reason"), strcmp(jstr(ev, "by"), "us") == 0 ? "this station" : peer);
	else
		printf("%s  call %s (%s)\n", jstr(ev, "at"), what, peer);
}

static void print_event(const char *dir, json_t *ev)
{
	char peer[96], subject[256], reason[256];
	const char *kind = jstr(ev, "event");
	const char *prec = jstr(ev, "precedence");
	char up[16] = "";
	for (size_t i = 0; prec[i] && i < sizeof(up) - 1; i++)
		up[i] = (char)(prec[i] >= 'a' && prec[i] <= 'z' ? prec[i] - 32 : prec[i]);
	hl_sanitize(jstr(ev, "peer"), strlen(jstr(ev, "peer")), peer, sizeof(peer), 0);
	hl_sanitize(jstr(ev, "subject"), strlen(jstr(ev, "subject")), subject, sizeof(subject), 0);
	hl_sanitize(jstr(ev, "reason"), strlen(jstr(ev, "reason")), reason, sizeof(reason), 0);
	char voice[40] = "";
	if (strcmp(kind, "arrived") == 0)
		voice_suffix(dir, jstr(ev, "id"), voice, sizeof(voice));
	if (strcmp(kind, "arrived") == 0)
		printf("%s  message from %s  %-9s %.12s  %s%s\n", jstr(ev, "at"), peer, up,
		       jstr(ev, "id"), subject, voice);
	else if (strcmp(kind, "delivered") == 0)
		printf("%s  receipt from %s for %.12s  %s\n", jstr(ev, "at"), peer, jstr(ev, "id"),
		       subject);
	else if (strcmp(kind, "refused") == 0)
		printf("%s  %s REFUSED %.12s: %s\n", jstr(ev, "at"), peer, jstr(ev, "id"), reason);
	else if (strcmp(kind, "refused_in") == 0)
		printf("%s  refused %.12s from %s: %s\n", jstr(ev, "at"), jstr(ev, "id"), peer, reason);
	else if (strcmp(kind, "alarm") == 0)
		printf("%s  ALARM %s %s: %s\n", jstr(ev, "at"), peer, jstr(ev, "alarm"), reason_or(ev, "detail"));
	else if (strcmp(kind, "check") == 0)
		printf("%s  line check to %s %.12s: %s%s\n", jstr(ev, "at"), peer, jstr(ev, "id"),
		       jstr(ev, "result"), rtt_text(ev));
	else if (strcmp(kind, "answer") == 0)
		printf("%s  %s answered check %.12s (%s)\n", jstr(ev, "at"), peer, jstr(ev, "id"),
		       jstr(ev, "by"));
	else if (strcmp(kind, "check_in") == 0 && strcmp(jstr(ev, "answer"), "no_person") == 0)
		printf("%s  nobody answered %s's check %.12s: recorded \"no person\"\n", jstr(ev, "at"),
		       peer, jstr(ev, "id"));
	else if (strcmp(kind, "check_in") == 0)
		printf("%s  line check from %s %.12s%s\n", jstr(ev, "at"), peer, jstr(ev, "id"),
		       json_is_true(json_object_get(ev, "waiting_for_person"))
			       ? ": WAITS FOR A PERSON (hotline answer)" : ", answered by the station");
	else if (strcmp(kind, "agreement_proposed") == 0 || strcmp(kind, "agreement_signed") == 0)
		printf("%s  agreement %.16s %s %s (%s)\n", jstr(ev, "at"), jstr(ev, "id"),
		       kind[10] == 'p' ? "proposed by" : "countersigned by", peer, reason_or(ev, "name"));
	else if (strncmp(kind, "call_", 5) == 0)
		print_call_event(ev, kind + 5, peer, up);
	else
		printf("%s  %s (%s)\n", jstr(ev, "at"), kind, peer);
	fflush(stdout);
}

/* Subscribes to the daemon's events: the stream (its {"ok":true} read),
 * or NULL with *RET the daemon's absence (HL_ENODAEMON) or the failure
 * already reported. */
static FILE *subscribe(struct hl_ctx *ctx, int *ret)
{
	int fd = -1;
	json_t *req = hl_ctl_request_json(&(struct hl_ctl_request){ .cmd = HL_CTL_WATCH });
	*ret = hl_control_send(ctx->dir, req, HL_CONTROL_TIMEOUT_MS, &fd);
	json_decref(req);
	if (*ret < 0)
		return NULL;
	/* From here on, plain blocking reads of one line at a time. */
	FILE *in = NULL;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) < 0 || !(in = fdopen(fd, "r"))) {
		*ret = hl_fail("watch", "control socket: %s", strerror(errno));
		close(fd);
		return NULL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n = getline(&line, &cap, in);
	json_error_t jerr;
	json_t *ok = n > 0 ? json_loadb(line, (size_t)n, 0, &jerr) : NULL;
	if (!json_is_true(json_object_get(ok, "ok"))) {
		char msg[256];
		const char *e = json_is_object(ok) ? jstr(ok, "error") : "no answer";
		hl_sanitize(e, strlen(e), msg, sizeof(msg), 0);
		*ret = hl_fail("watch", "the daemon refused: %s", msg);
		fclose(in);
		in = NULL;
	}
	json_decref(ok);
	free(line);
	return in;
}

/* Prints events from IN until the stream ends (0) or the daemon sends
 * something that is not an object (HL_EXIT_FAIL, reported). */
static int follow(const char *dir, FILE *in, bool json)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int ret = 0;
	while ((n = getline(&line, &cap, in)) > 0) {
		json_error_t jerr;
		json_t *ev = json_loadb(line, (size_t)n, 0, &jerr);
		if (!json_is_object(ev)) {
			json_decref(ev);
			ret = hl_fail("watch", "the daemon sent something that is not a JSON object");
			break;
		}
		if (json) {
			fwrite(line, 1, (size_t)n, stdout);
			fflush(stdout);
		} else {
			print_event(dir, ev);
		}
		json_decref(ev);
	}
	free(line);
	return ret;
}

int watch_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "once", no_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool json = false, once = false;
	int c, ret;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = true;
			break;
		case 'o':
			once = true;
			break;
		case 'h':
			printf("usage: hotline watch [--json] [--once]\n\n"
			       "Follow the daemon's events (arrivals, receipts, refusals, line checks,\n"
			       "alarms, agreements) until interrupted.  When the daemon stops or\n"
			       "restarts, watch says so on standard error and reconnects (after 0.1 s,\n"
			       "then backing off to every 5 s), for ever; events that happen while it\n"
			       "is not connected are not shown afterwards ('hotline inbox', 'outbox'\n"
			       "and 'status' show the state).\n\n"
			       "      --json  one JSON object per line\n"
			       "      --once  end when the stream ends instead of reconnecting\n\n"
			       "Exit status: 1 when the daemon is not running at the start (or, with\n"
			       "--once, when the stream ends); 2 usage error.  Otherwise watch runs\n"
			       "until it is interrupted.\n");
			return HL_EXIT_OK;
		default:
			return hl_usage_error("watch", "bad option");
		}
	}
	if ((ret = hl_args_done(ctx, "watch", argc, argv)) != HL_EXIT_OK)
		return ret;

	FILE *in = subscribe(ctx, &ret);
	if (!in && ret == HL_ENODAEMON)
		return hl_fail("watch", "the daemon of %s is not running (start it with 'hotline run')",
			       ctx->dir);
	if (!in)
		return ret < 0 ? hl_fail("watch", "control socket: %s", hl_strerror(ret)) : ret;
	for (;;) {
		ret = follow(ctx->dir, in, json);
		fclose(in);
		if (ret != 0)
			return ret;
		if (once)
			return hl_fail("watch", "the daemon closed the stream (stopped?)");
		fprintf(stderr, "hotline watch: the daemon closed the stream; reconnecting "
			"(events meanwhile are not shown)\n");
		/* Back off: a restart takes a moment; a stopped daemon is
		 * asked again every 5 s, without flooding its socket. */
		for (long ms = 100;; ms = ms * 2 > 5000 ? 5000 : ms * 2) {
			struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
			nanosleep(&ts, NULL);
			if ((in = subscribe(ctx, &ret)))
				break;
		}
		fprintf(stderr, "hotline watch: reconnected\n");
	}
}
