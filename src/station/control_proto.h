/* station/control_proto.h — the control socket's protocol, shared by the
 * daemon (control.c) and its clients (control_client.c, the commands):
 * where the socket is, every request as a structure and as JSON, the
 * answers' common shapes, and RFC 3339 times (docs/protocol.md section 6).
 *
 * The socket is DIR/control.sock, but it is always addressed as
 * /proc/self/fd/N/control.sock, N being a descriptor of DIR opened with
 * O_PATH: a station directory may have a path longer than the 107 bytes a
 * sockaddr_un holds, and the kernel resolves the /proc link for bind() and
 * connect() alike.
 *
 * A request is one line: a JSON object whose "cmd" names one of the
 * requests below, with that request's fields.  hl_ctl_request_parse() turns
 * the line into a struct hl_ctl_request, checking every field, and
 * hl_ctl_request_json() turns the structure back into the JSON the daemon
 * parses: the daemon and the commands cannot disagree on a field.  What
 * the daemon does with each request is control.c's table. */
#ifndef HL_STATION_CONTROL_PROTO_H
#define HL_STATION_CONTROL_PROTO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include <time.h>

#include "item/types.h"

#define HL_CONTROL_MAX_LINE 65536     /* a request or response, newline included */
/* A response can be longer: `status` of a station with a thousand pinned
 * peers runs to several hundred KiB. */
#define HL_CONTROL_MAX_RESPONSE (8 * 1024 * 1024)
#define HL_CONTROL_CMD_MAX 32
#define HL_CONTROL_ERR_LEN 256

/* The sockaddr for the control socket of the directory open as DIRFD. */
int hl_control_sockaddr(int dirfd, struct sockaddr_un *sa);


/* The requests. */
enum hl_ctl_cmd {
	HL_CTL_STATUS,       /* the station, its peers, its paths */
	HL_CTL_RELOAD,       /* read station.conf again */
	HL_CTL_POKE,         /* the store has new work */
	HL_CTL_WATCH,        /* events, one a line, until the client closes */
	HL_CTL_SEND,         /* queue a text message: answered after the commit */
	HL_CTL_CHECK,        /* a line check now: answered when it is decided */
	HL_CTL_STAGE,        /* a hint: an attachment is being copied */
	HL_CTL_CALL,         /* ring a peer; the connection carries the audio */
	HL_CTL_CALL_ANSWER,  /* answer the call ringing; likewise */
	HL_CTL_CALL_HANGUP,  /* end the call */
	HL_CTL_ROTATE,       /* rotate the station's keys (docs/rotation.md) */
};
#define HL_CTL_COUNT 11

/* One request.  Strings are borrowed from JSON, which the structure owns
 * once parsed (hl_ctl_request_clear lets it go); for building, JSON is
 * NULL and the strings are the caller's. */
struct hl_ctl_request {
	enum hl_ctl_cmd cmd;
	const char *peer;             /* "peer"; NULL when absent (call_answer,
				       * call_hangup: whichever call) */
	union {
		struct hl_ctl_send {
			char hex[2 * HL_MSG_ID_LEN + 1];  /* the id: 32 hex digits, as given */
			uint8_t id[HL_MSG_ID_LEN];
			enum hl_precedence precedence;
			const char *subject;              /* no NUL inside */
			const uint8_t *body;
			size_t body_len;
			bool wait;                        /* then stream events */
		} send;
		struct hl_ctl_check {
			uint32_t timeout_ms;              /* 0: the peer's CheckTimeout */
			int mode;                         /* enum hl_check_mode; -1: CheckMode */
		} check;
		struct hl_ctl_stage {
			char hex[2 * HL_MSG_ID_LEN + 1];
			uint8_t id[HL_MSG_ID_LEN];
			unsigned part;                    /* 1 to HL_MAX_ATTACHMENTS */
			uint64_t size;
			enum hl_precedence precedence;
			const char *path;                 /* out/<id>/<part - 1> */
		} stage;
		struct hl_ctl_call {
			enum hl_precedence precedence;
			uint64_t ring_timeout_ms;         /* 0: the default */
		} call;
		struct hl_ctl_rotate {
			unsigned reason;                  /* enum hl_rotation_reason */
		} rotate;
	} u;
	json_t *json;
};

/* "status", "send", ...; NULL for a value out of range. */
const char *hl_ctl_cmd_name(enum hl_ctl_cmd cmd);

/* Parses one request line (BUF, LEN; a trailing newline is allowed) into
 * REQ.  On failure REQ holds nothing and ERR says why, naming the field
 * (or the unknown command), in text safe to send back. */
int hl_ctl_request_parse(const char *buf, size_t len, struct hl_ctl_request *req,
			 char err[static HL_CONTROL_ERR_LEN]);
void hl_ctl_request_clear(struct hl_ctl_request *req);

/* The JSON object of REQ, for sending; NULL when a string of it is not
 * UTF-8 (a body, say: JSON cannot carry it). */
json_t *hl_ctl_request_json(const struct hl_ctl_request *req);

/* The answers' common shapes: {"ok":true}, {"ok":true,"id":ID} and
 * {"ok":false,"error":TEXT}. */
json_t *hl_ctl_ok(void);
json_t *hl_ctl_ok_id(const char *id);
json_t *hl_ctl_error(const char *text);

/* Times on the control socket are RFC 3339 in UTC: util/timefmt.h. */
#include "util/timefmt.h"

#endif
