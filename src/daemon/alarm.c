/* daemon/alarm.c — alarms, and the service that acts on them
 * (service.h: "alarms"): log, `watch` events, AlarmCommand.
 *
 * ALARMS
 *   kinds no_connection, no_answer, no_person, equivocation, ring (a
 *   call, raised by calls.c), rotated and rotation_refused (a peer's key
 *   rotation taken or refused, raised by keys.c).  Logged as an
 *   error, sent to watchers ({"event": "alarm", ...}), and AlarmCommand, if
 *   set, is run — directly (by the spawner, daemon/spawn.h; never a
 *   shell), with the daemon's
 *   environment plus HOTLINE_ALARM, HOTLINE_PEER, HOTLINE_STATION,
 *   HOTLINE_DIR, HOTLINE_AT, HOTLINE_DETAIL, HOTLINE_COUNT, and
 *   HOTLINE_CHECK_ID, HOTLINE_CHECK_MODE (checks), HOTLINE_CALL_ID (ring)
 *   or HOTLINE_SEQ (equivocation, rotations).  Every value is hotline's own text (peer names are
 *   [a-z0-9._-]), never the peer's: a last error that may quote the peer's
 *   CLOSE goes to the log line and the watch event ("last_error") only.
 *   A peer can raise alarms fast (each equivocation is one), so: at most
 *   ALARM_PROCS_MAX commands run at once, whatever their cause; a cause (a
 *   kind for a peer) has at most one running and one waiting, and an alarm
 *   of a cause whose command already waits replaces it, HOTLINE_COUNT
 *   saying how many alarms the run stands for; waiting commands start
 *   oldest first as slots free up.  The ALARM log lines of one cause are
 *   rate-limited (ALARM_LOG_BURST, then ALARM_LOG_PER_MINUTE). An alarm whose cause
 *   is written in the group commit (a check decided) waits for that
 *   commit (hl_alarm_after_commit) and is forgotten if it fails. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/alarm.h"
#include "daemon/daemon_int.h"
#include "daemon/service.h"
#include "daemon/spawn.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

#define ALARM_PROCS_MAX 3             /* AlarmCommand processes at once, all causes */
#define ALARM_LOG_BURST 5             /* ALARM lines per cause, then ... */
#define ALARM_LOG_PER_MINUTE 6        /* ... this many a minute */

/* One cause of alarms: a kind for a peer.  Its repeats collapse: while a
 * command of the cause waits for a free slot, a new alarm of the cause
 * replaces it and counts one more; at most one command per cause runs. */
struct hl_alarm_cause {
	char kind[HL_ALARM_KIND_LEN];
	char peer[HL_NAME_MAX + 1];
	struct hl_ratelimit rl;       /* its log lines */
	struct hl_alarm *queued;      /* waiting for a slot; NULL none */
	uint64_t queued_order;        /* first come, first run */
	bool running;
	struct hl_alarm_cause *next;
};

struct hl_alarm_proc {
	struct hl_child child;        /* run by the spawner (daemon/spawn.h) */
	struct hl_alarms *al;
	struct hl_alarm_cause *cause;
	char kind[HL_ALARM_KIND_LEN];
	char peer[HL_NAME_MAX + 1];
	struct hl_alarm_proc *next;
};

struct hl_alarms {
	struct hl_daemon *d;
	struct hl_alarm *pending;          /* raised in this burst, for after its commit */
	struct hl_alarm_proc *procs;       /* AlarmCommand processes still running */
	unsigned n_procs;
	struct hl_alarm_cause *causes;     /* per kind and peer, what waits to run */
	uint64_t order;
};

struct hl_alarm *hl_alarm_new(const char *kind, const char *peer, const char *check_id,
			      unsigned mode, uint64_t seq, const char *detail)
{
	struct hl_alarm *a = xcalloc(1, sizeof(*a));
	snprintf(a->kind, sizeof(a->kind), "%s", kind);
	snprintf(a->peer, sizeof(a->peer), "%s", peer);
	snprintf(a->check_id, sizeof(a->check_id), "%s", check_id ? check_id : "");
	snprintf(a->detail, sizeof(a->detail), "%s", detail);
	a->mode = mode;
	a->seq = seq;
	a->at = hl_now_ms();
	a->count = 1;
	return a;
}

static struct hl_alarm_cause *cause_of(struct hl_alarms *al, const struct hl_alarm *a)
{
	struct hl_alarm_cause *c;
	for (c = al->causes; c; c = c->next)
		if (strcmp(c->kind, a->kind) == 0 && strcmp(c->peer, a->peer) == 0)
			return c;
	c = xcalloc(1, sizeof(*c));
	snprintf(c->kind, sizeof(c->kind), "%s", a->kind);
	snprintf(c->peer, sizeof(c->peer), "%s", a->peer);
	c->rl = (struct hl_ratelimit)HL_RATELIMIT_INIT(ALARM_LOG_BURST, ALARM_LOG_PER_MINUTE);
	c->next = al->causes;
	al->causes = c;
	return c;
}

static void pump(struct hl_alarms *al);

static void proc_unlink(struct hl_alarm_proc *ap)
{
	for (struct hl_alarm_proc **pp = &ap->al->procs; *pp; pp = &(*pp)->next) {
		if (*pp == ap) {
			*pp = ap->next;
			ap->al->n_procs--;
			return;
		}
	}
}

static void on_proc_exit(struct hl_child *c, int64_t status, int term_signal)
{
	struct hl_alarm_proc *ap = c->data;
	struct hl_alarms *al = ap->al;
	if (status != 0 || term_signal != 0)
		hl_warn("%s: AlarmCommand for %s exited with status %lld%s", ap->peer, ap->kind,
			(long long)status, term_signal ? " (killed by a signal)" : "");
	else
		hl_debug("%s: AlarmCommand for %s done", ap->peer, ap->kind);
	proc_unlink(ap);
	ap->cause->running = false;
	free(ap);
	pump(al);
}

/* Runs AlarmCommand for A (of cause C), through the spawner (daemon/spawn.h),
 * which reads the program's path from station.conf itself: argv is the
 * program alone; the alarm travels in the environment (the spawner's own
 * without HOTLINE_*, plus these; it sets HOTLINE_STATION and HOTLINE_DIR
 * itself).  0, or a negative code when it could not be started. */
static int run_command(struct hl_alarms *al, struct hl_alarm_cause *cause,
		       const struct hl_alarm *a)
{
	struct hl_daemon *d = al->d;
	char *env[12], at[HL_RFC3339_LEN], err[HL_SPAWN_TEXT_MAX];
	size_t k = 0;
	hl_rfc3339(a->at, at);
	env[k++] = xasprintf("HOTLINE_ALARM=%s", a->kind);
	env[k++] = xasprintf("HOTLINE_PEER=%s", a->peer);
	env[k++] = xasprintf("HOTLINE_STATION=%s", d->conf->name);
	env[k++] = xasprintf("HOTLINE_DIR=%s", d->dir);
	env[k++] = xasprintf("HOTLINE_AT=%s", at);
	env[k++] = xasprintf("HOTLINE_DETAIL=%s", a->detail);
	env[k++] = xasprintf("HOTLINE_COUNT=%u", a->count);
	if (a->check_id[0] && strcmp(a->kind, "ring") == 0) {
		env[k++] = xasprintf("HOTLINE_CALL_ID=%s", a->check_id);
	} else if (a->check_id[0]) {
		env[k++] = xasprintf("HOTLINE_CHECK_ID=%s", a->check_id);
		env[k++] = xasprintf("HOTLINE_CHECK_MODE=%s", a->mode ? "operator" : "machine");
	}
	if (a->seq)
		env[k++] = xasprintf("HOTLINE_SEQ=%llu", (unsigned long long)a->seq);
	env[k] = NULL;

	/* its output, both streams, goes to our log */
	struct hl_spawn_req req = { .kind = HL_SPAWN_ALARM, .env = (const char *const *)env,
				    .out_fd = STDERR_FILENO, .err_to_out = true };
	struct hl_alarm_proc *ap = xcalloc(1, sizeof(*ap));
	ap->al = al;
	ap->cause = cause;
	snprintf(ap->kind, sizeof(ap->kind), "%s", a->kind);
	snprintf(ap->peer, sizeof(ap->peer), "%s", a->peer);
	ap->child.data = ap;
	ap->child.exit_cb = on_proc_exit;
	int ret = hl_spawn(d, &ap->child, &req, err, sizeof(err));
	if (ret < 0) {
		hl_error("%s: cannot run AlarmCommand: %s", a->peer, err);
		free(ap);
	} else {
		ap->next = al->procs;
		al->procs = ap;
		al->n_procs++;
		cause->running = true;
	}
	for (size_t i = 0; i < k; i++)
		free(env[i]);
	return ret;
}

/* Starts the waiting alarms, oldest first, while slots are free. */
static void pump(struct hl_alarms *al)
{
	struct hl_daemon *d = al->d;
	while (!d->stopping && al->n_procs < ALARM_PROCS_MAX) {
		struct hl_alarm_cause *best = NULL;
		for (struct hl_alarm_cause *c = al->causes; c; c = c->next)
			if (c->queued && !c->running &&
			    (!best || c->queued_order < best->queued_order))
				best = c;
		if (!best)
			return;
		struct hl_alarm *a = best->queued;
		best->queued = NULL;
		if (d->conf->alarm_command[0])
			(void)run_command(al, best, a);
		free(a);
	}
}

/* Logs A, tells watchers, and queues AlarmCommand for it.  Takes A. */
void hl_alarm_act(struct hl_daemon *d, struct hl_alarm *a)
{
	struct hl_alarms *al = d->alarms;
	char at[HL_RFC3339_LEN];
	if (!al) {
		free(a);   /* the daemon has stopped: nobody acts on alarms */
		return;
	}
	struct hl_alarm_cause *cause = cause_of(al, a);
	hl_rfc3339(a->at, at);
	if (hl_ratelimit_allow(&cause->rl, hl_mono_ms()))
		hl_error("ALARM %s: %s: %s%s%s%s", a->peer, a->kind, a->detail,
			 a->context[0] ? " (" : "", a->context, a->context[0] ? ")" : "");
	json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s}", "event", "alarm", "at", at,
			       "peer", a->peer, "alarm", a->kind, "detail", a->detail);
	if (a->check_id[0])
		json_object_set_new(ev, "id", json_string(a->check_id));
	if (a->seq)
		json_object_set_new(ev, "seq", json_integer((json_int_t)a->seq));
	if (a->context[0])
		json_object_set_new(ev, "last_error", json_string(a->context));
	hl_control_emit(d, ev);
	json_decref(ev);
	if (!d->conf->alarm_command[0]) {
		free(a);
		return;
	}
	if (cause->queued) {
		/* A repeat while the last one still waits: one run for both. */
		a->count += cause->queued->count;
		free(cause->queued);
	} else {
		cause->queued_order = ++al->order;
	}
	cause->queued = a;
	pump(al);
}

void hl_alarm_after_commit(struct hl_daemon *d, struct hl_alarm *a)
{
	if (!d->alarms) {
		free(a);
		return;
	}
	/* keep them in the order raised */
	struct hl_alarm **tail = &d->alarms->pending;
	while (*tail)
		tail = &(*tail)->next;
	*tail = a;
}

/* After the burst's commit (ok) or its rollback: act on the alarms raised
 * in it, or forget them. */
static void alarms_after_commit(struct hl_daemon *d, bool committed)
{
	struct hl_alarm *a = d->alarms ? d->alarms->pending : NULL;
	if (d->alarms)
		d->alarms->pending = NULL;
	while (a) {
		struct hl_alarm *next = a->next;
		a->next = NULL;
		if (committed)
			hl_alarm_act(d, a);
		else
			free(a);
		a = next;
	}
}

static int alarms_start(struct hl_daemon *d, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	d->alarms = xcalloc(1, sizeof(*d->alarms));
	d->alarms->d = d;
	return 0;
}

/* After the last commit and the peers: running alarm commands go on by
 * themselves; we stop watching them, and those still waiting for a slot
 * are not run. */
static void alarms_release(struct hl_daemon *d)
{
	struct hl_alarms *al = d->alarms;
	alarms_after_commit(d, false);
	d->alarms = NULL;
	while (al->procs) {
		struct hl_alarm_proc *ap = al->procs;
		al->procs = ap->next;
		hl_child_forget(d, &ap->child);
		free(ap);
	}
	while (al->causes) {
		struct hl_alarm_cause *c = al->causes;
		al->causes = c->next;
		free(c->queued);
		free(c);
	}
	free(al);
}

const struct hl_service hl_alarm_service = {
	.name = "alarms",
	.start = alarms_start,
	.release = alarms_release,
	.after_commit = alarms_after_commit,
};
