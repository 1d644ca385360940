/* daemon/spawn.h — the spawner: the small process outside the sandbox that
 * runs the daemon's children for it, and opens what the sandboxed daemon
 * may no longer open (docs/sandbox.md, "The spawner").
 *
 * Why.  The network process (daemon/sandbox.h) may not execute anything:
 * an attacker who took it over must not be able to run a program.  Yet
 * the daemon runs children — the mail pickup, `bundle mail` (which runs
 * hotline-mail), `purge`, AlarmCommand — and a child would inherit the
 * sandbox, which AlarmCommand (any program the operator chose) and
 * hotline-mail (libcurl, TLS) cannot live in.  So `hotline run` forks the
 * spawner at start, before it loads its identity, opens a socket or
 * starts a thread, and before the sandbox; the daemon then asks it, over
 * a socket pair, for one of four typed children (spawn_proto.h), never a
 * command line.  The spawner also opens station.conf for a reload (after
 * the check of who may change the station) and removes the control
 * socket when the daemon stops; both are files the sandbox keeps out of
 * reach.
 *
 * The spawner holds no key (it was forked before the identity was loaded)
 * and reads nothing from the network.  It ignores SIGINT and SIGTERM (a
 * terminal's ^C and a `kill` of the process group reach it too) and stops
 * when the daemon's end of the socket closes, sending SIGTERM to the
 * children still running.  If it dies, the daemon logs it and stops (it
 * cannot fork a new one from inside the sandbox); a supervisor restarts
 * both.
 *
 * Children look like libuv's: hl_spawn() starts one (synchronously: it
 * returns once the program runs, or why it could not), exit_cb is called
 * once when it ends (or, if the spawner dies, with SIGKILL), and until
 * then the struct must stay.  Everything runs on the loop's thread. */
#ifndef HL_DAEMON_SPAWN_H
#define HL_DAEMON_SPAWN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "conf/config.h"
#include "daemon/spawn_proto.h"

struct hl_daemon;
struct hl_child;

typedef void hl_child_exit_fn(struct hl_child *c, int64_t exit_status, int term_signal);

struct hl_child {
	hl_child_exit_fn *exit_cb;   /* set by the caller */
	void *data;                  /* the caller's */
	int pid;                     /* set by hl_spawn, for the log */
	uint32_t id;                 /* the spawner's name for it */
	struct hl_child *next;       /* the running children */
};

struct hl_spawn_req {
	enum hl_spawn_kind kind;
	const char *peer;            /* MAIL */
	uint64_t after;              /* MAIL: --after; 0 none */
	bool flash_only, if_items;   /* MAIL */
	const char *const *env;      /* ALARM: "HOTLINE_X=value", NULL-terminated */
	int out_fd;                  /* the child's stdout (passed, not closed); -1: /dev/null */
	bool err_to_out;             /* its stderr too; else the daemon's stderr */
};

/* Forks the spawner (call single-threaded, before the sandbox).  0, or a
 * negative code with ERR set. */
int hl_spawner_start(struct hl_daemon *d, char *err, size_t errlen);
/* Watches for the children's ends on D's loop (once the loop exists);
 * GONE(D) stops the daemon if the spawner dies (d->failed is set first). */
int hl_spawner_attach(struct hl_daemon *d, void (*gone)(struct hl_daemon *d));
/* The daemon stops: the watch ends once the last child has. */
void hl_spawner_detach(struct hl_daemon *d);
/* Closes the daemon's end: the spawner stops.  Waits a moment for it. */
void hl_spawner_close(struct hl_daemon *d);

/* Starts the child REQ asks for.  0 (C->pid set; C->exit_cb will run), or
 * a negative code with ERR saying why (nothing will run). */
int hl_spawn(struct hl_daemon *d, struct hl_child *c, const struct hl_spawn_req *req,
	     char *err, size_t errlen);
/* Sends SIG (SIGTERM or SIGKILL) to C (to its group, for MAIL). */
void hl_child_kill(struct hl_daemon *d, struct hl_child *c, int sig);
/* Stops watching C (it runs on): no exit_cb; C may go. */
void hl_child_forget(struct hl_daemon *d, struct hl_child *c);

/* station.conf for a reload, read through the spawner (it checks who may
 * change the station, then opens it); as hl_conf_load. */
int hl_spawner_conf_load(struct hl_daemon *d, hl_station_conf **out,
			 char err[static HL_CONF_ERR_LEN]);
/* Removes the control socket (the daemon is stopping). */
void hl_spawner_unlink_control(struct hl_daemon *d);

/* The socket pair's messages, both sides (spawner.c): one packet with at
 * most one descriptor out (PASS_FD, -1 none) and at most HL_SPAWN_FDS_MAX
 * in (any more are closed).  As sendmsg and recvmsg; a packet or its
 * descriptors cut short is -1 with EMSGSIZE, its descriptors closed. */
#define HL_SPAWN_FDS_MAX 2
ssize_t hl_spawn_send(int fd, const uint8_t *buf, size_t len, int pass_fd);
ssize_t hl_spawn_recv(int fd, uint8_t *buf, size_t cap, int fds[static HL_SPAWN_FDS_MAX],
		      int *nfds);

/* The spawner's side, for spawner.c: runs until the daemon's end closes;
 * never returns. */
_Noreturn void hl_spawner_main(const char *dir, const char *self, int call_fd, int event_fd);

#endif
