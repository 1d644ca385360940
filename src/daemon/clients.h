/* daemon/clients.h — the control socket's side of its connections, as the
 * server (control.c) uses them; what the services use to answer is in
 * daemon_int.h ("clients.c"). */
#ifndef HL_DAEMON_CLIENTS_H
#define HL_DAEMON_CLIENTS_H

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

struct hl_daemon;
struct hl_control_client;

/* A complete request line (LEN bytes at LINE, perhaps with its newline)
 * arrived on CL: the server answers it, now or later. */
typedef void hl_client_line_fn(struct hl_daemon *d, struct hl_control_client *cl,
			       const char *line, size_t len);

/* The set of clients, empty, whose lines go to ON_LINE; closed, with every
 * client still connected, by hl_clients_close(). */
void hl_clients_open(struct hl_daemon *d, hl_client_line_fn *on_line);
void hl_clients_close(struct hl_daemon *d);
/* Accepts the connection waiting on SERVER. */
void hl_clients_accept(struct hl_daemon *d, uv_stream_t *server);

/* Answers CL with RESP (taken), one line, and closes it. */
void hl_control_respond(struct hl_control_client *cl, json_t *resp);
/* CL becomes a `watch` stream: {"ok":true}, then every event. */
void hl_control_start_watch(struct hl_control_client *cl);

#endif
