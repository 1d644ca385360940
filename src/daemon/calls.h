/* daemon/calls.h — live calls in the daemon (docs/voice.md): the control
 * requests they answer.  The service itself is hl_calls_service
 * (service.h); everything else of calls is in calls.c. */
#ifndef HL_DAEMON_CALLS_H
#define HL_DAEMON_CALLS_H

#include <jansson.h>

struct hl_daemon;
struct hl_control_client;

/* Control requests "call", "call_answer", "call_hangup": an answer, or
 * NULL when the connection was taken over for the call's audio stream. */
json_t *hl_calls_control(struct hl_daemon *d, const char *cmd, json_t *req,
			 struct hl_control_client *cl);

#endif
