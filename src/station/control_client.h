/* station/control_client.h — the commands' side of the control socket:
 * connect to the station's daemon, send one request, read one response
 * line (with a timeout), parse it. */
#ifndef HL_STATION_CONTROL_CLIENT_H
#define HL_STATION_CONTROL_CLIENT_H

#include <jansson.h>
#include <stdint.h>

#define HL_CONTROL_TIMEOUT_MS 5000

/* Sends REQ to the daemon of the station in DIR and waits up to TIMEOUT_MS
 * for its response, a JSON object in *RESP (the caller json_decref()s it).
 * HL_ENODAEMON when no daemon is listening, HL_ETIMEOUT when it did not
 * answer in time, HL_EINVAL when the answer is not a JSON object, HL_ETOOBIG
 * when it is too long, -errno for other failures. */
int hl_control_call(const char *dir, json_t *req, int timeout_ms, json_t **resp);

/* Connects and sends REQ, leaving the response to the caller: *FD is the
 * connected socket (non-blocking), for streaming requests such as
 * "watch".  The same errors as hl_control_call. */
int hl_control_send(const char *dir, json_t *req, int timeout_ms, int *fd);

/* Sends REQ and closes at once, without waiting for the response: for
 * requests whose answer the caller does not need ("poke").  The daemon
 * reads a request that is in its socket before the close, so it still
 * acts on it.  The same errors as hl_control_send. */
int hl_control_notify(const char *dir, json_t *req, int timeout_ms);

/* One line from the daemon on FD (a stream from hl_control_send), as a
 * JSON object in *OUT: 1, else 0 when DEADLINE (monotonic ms) passes
 * first, -1 when the stream fails or the line is not an object.  What
 * follows the line on the stream (events) is kept for the next call, in
 * one buffer for the process: one stream is read at a time. */
int hl_control_read_line(int fd, uint64_t deadline, json_t **out);

/* Subscribes to the daemon's event stream ("watch"): the socket, its
 * first line the subscription's {"ok":true}; -1 without a daemon. */
int hl_control_watch(const char *dir);

/* Best effort: asks a running daemon to look at the store now ("poke");
 * without a daemon, nothing happens (it reads the store when it starts). */
void hl_control_poke(const char *dir);

#endif
