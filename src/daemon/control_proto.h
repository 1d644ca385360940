/* daemon/control_proto.h — the control socket's protocol, shared by the
 * daemon (control.c) and its clients (control_client.c): where the socket
 * is, the request parser, and RFC 3339 times (docs/protocol.md section 6).
 *
 * The socket is DIR/control.sock, but it is always addressed as
 * /proc/self/fd/N/control.sock, N being a descriptor of DIR opened with
 * O_PATH: a station directory may have a path longer than the 107 bytes a
 * sockaddr_un holds, and the kernel resolves the /proc link for bind() and
 * connect() alike. */
#ifndef HL_DAEMON_CONTROL_PROTO_H
#define HL_DAEMON_CONTROL_PROTO_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/un.h>
#include <time.h>

#define HL_CONTROL_MAX_LINE 65536     /* a request or response, newline included */
/* A response can be longer: `status` of a station with a thousand pinned
 * peers runs to several hundred KiB. */
#define HL_CONTROL_MAX_RESPONSE (8 * 1024 * 1024)
#define HL_CONTROL_CMD_MAX 32
#define HL_CONTROL_ERR_LEN 256

/* The sockaddr for the control socket of the directory open as DIRFD. */
int hl_control_sockaddr(int dirfd, struct sockaddr_un *sa);

/* Parses one request line (BUF, LEN; a trailing newline is allowed): a JSON
 * object whose "cmd" is a short string.  On success *REQ holds the object
 * (the caller json_decref()s it) and CMD its command.  On failure ERR says
 * why, in text safe to send back. */
int hl_control_parse_request(const char *buf, size_t len, json_t **req,
			     char cmd[static HL_CONTROL_CMD_MAX + 1],
			     char err[static HL_CONTROL_ERR_LEN]);

/* Times on the control socket are RFC 3339 in UTC: util/timefmt.h. */
#include "util/timefmt.h"

#endif
