/* daemon/alarm.h — raising an alarm (alarm.c): checks and calls raise
 * them; the alarms service acts on them (log, `watch`, AlarmCommand). */
#ifndef HL_DAEMON_ALARM_H
#define HL_DAEMON_ALARM_H

#include <stdint.h>

#include "conf/config.h"

#define HL_ALARM_CONTEXT_LEN 400
#define HL_ALARM_KIND_LEN 24          /* "rotation_refused" and a NUL, with room */

struct hl_daemon;

struct hl_alarm {
	char kind[HL_ALARM_KIND_LEN];
	char peer[HL_NAME_MAX + 1];
	char check_id[33];            /* "" for equivocation */
	unsigned mode;
	uint64_t seq;                 /* equivocation */
	int64_t at;
	char detail[512];             /* hotline's own text only: it reaches AlarmCommand */
	char context[HL_ALARM_CONTEXT_LEN]; /* for the log and watchers only (may quote the peer) */
	unsigned count;               /* alarms of its cause this one stands for */
	struct hl_alarm *next;
};

/* A new alarm of KIND (no_connection, no_answer, no_person, equivocation,
 * ring, rotated, rotation_refused) about PEER: CHECK_ID (a check's, a call's; NULL none), MODE (a
 * check's), SEQ (equivocation's position, a rotation's), DETAIL (hotline's own text:
 * it reaches AlarmCommand).  CONTEXT is empty: the raiser may fill it. */
struct hl_alarm *hl_alarm_new(const char *kind, const char *peer, const char *check_id,
			      unsigned mode, uint64_t seq, const char *detail);
/* Acts on A (taken) now: its cause is recorded already, or is not of the
 * store (a call ringing). */
void hl_alarm_act(struct hl_daemon *d, struct hl_alarm *a);
/* Acts on A (taken) right after the group commit that records its cause,
 * in the order raised; forgets it when that commit fails: nothing is
 * alarmed that is not recorded. */
void hl_alarm_after_commit(struct hl_daemon *d, struct hl_alarm *a);

#endif
