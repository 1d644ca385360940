/* daemon/calls.h — live calls in the daemon (docs/voice.md): the hooks the
 * rest of the daemon calls.  Everything else of calls is in calls.c. */
#ifndef HL_DAEMON_CALLS_H
#define HL_DAEMON_CALLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hl_daemon;
struct hl_conn;
struct hl_control_client;

/* At start (after the listener) and at stop (before the links close). */
int hl_calls_start(struct hl_daemon *d, char *err, size_t errlen);
void hl_calls_stop(struct hl_daemon *d);

/* True for the record types calls own (voice/signal.h). */
bool hl_calls_owns(uint8_t type);
/* A call record arrived on C's session. */
void hl_calls_record(struct hl_conn *c, uint8_t type, const uint8_t *body, size_t len);

/* Control requests "call", "call_answer", "call_hangup": an answer, or
 * NULL when the connection was taken over for the call's audio stream. */
json_t *hl_calls_control(struct hl_daemon *d, const char *cmd, json_t *req,
			 struct hl_control_client *cl);

/* The station's call for `status --json` (null when none). */
json_t *hl_calls_status_json(struct hl_daemon *d);

#endif
