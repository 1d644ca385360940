/* daemon/spawn_proto.h — the messages between the sandboxed network
 * process and the spawner (daemon/spawn.h), encoded and decoded over
 * (buf, len), no I/O.  docs/sandbox.md, "The spawner", is the reference.
 *
 * The channel is a pair of SOCK_SEQPACKET sockets (one message a packet,
 * descriptors alongside by SCM_RIGHTS):
 *   calls   the daemon sends a REQUEST and waits for its REPLY;
 *   events  the spawner sends an EXIT for each child that ended.
 * The spawner trusts nothing it is asked: a request is a small typed
 * structure from which it builds the command line itself (the program is
 * always this one, or station.conf's AlarmCommand as it reads it); it
 * never runs a path, an argument or an environment variable that the
 * daemon chose, beyond the checked fields below.
 *
 * REQUEST, big-endian:
 *   u8 op
 *   SPAWN:  u8 kind, u32 id, u8 flags, then by kind
 *           PICKUP, PURGE: nothing
 *           MAIL:  u8 n, n bytes peer name (hl_name_valid), u64 after
 *           ALARM: u8 n (<= HL_SPAWN_ENV_MAX), n times u16 len, len bytes
 *                  "KEY=VALUE": KEY one of the alarm's variables, VALUE
 *                  printable (no control character), len <= HL_SPAWN_ENV_LEN
 *           descriptors: the child's stdout when FLAG_STDOUT is set
 *   KILL:   u32 id, u8 signal (SIGTERM or SIGKILL)
 *   CONF:   nothing; the reply carries station.conf opened, or why not
 *   UNLINK_CONTROL: nothing (the daemon stops: its control socket goes)
 * REPLY:  u8 'R', i32 status (0, or a negative code), u32 pid (SPAWN),
 *         u16 n, n bytes of text (an error for people); CONF: a descriptor
 * EXIT:   u8 'E', u32 id, i64 exit status, i32 signal (0: it exited)
 * Nothing may follow the last field. */
#ifndef HL_DAEMON_SPAWN_PROTO_H
#define HL_DAEMON_SPAWN_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conf/config.h"

#define HL_SPAWN_MSG_MAX 16384          /* any message */
#define HL_SPAWN_ENV_MAX 12             /* variables of one alarm */
#define HL_SPAWN_ENV_LEN 1100           /* "KEY=VALUE" */
#define HL_SPAWN_TEXT_MAX 512           /* a reply's text */

enum hl_spawn_op {
	HL_SPAWN_OP_SPAWN = 1,
	HL_SPAWN_OP_KILL = 2,
	HL_SPAWN_OP_CONF = 3,
	HL_SPAWN_OP_UNLINK_CONTROL = 4,
};

enum hl_spawn_kind {
	HL_SPAWN_PICKUP = 1,   /* hotline -d DIR bundle import --maildir */
	HL_SPAWN_MAIL = 2,     /* hotline -d DIR bundle mail PEER [...], its own group */
	HL_SPAWN_PURGE = 3,    /* hotline -d DIR purge --yes */
	HL_SPAWN_ALARM = 4,    /* AlarmCommand, the alarm in its environment */
};

/* SPAWN's flags */
#define HL_SPAWN_FLAG_STDOUT 0x01       /* a descriptor for the child's stdout comes along */
#define HL_SPAWN_FLAG_ERR_TO_OUT 0x02   /* its stderr too (else the daemon's log) */
#define HL_SPAWN_FLAG_FLASH_ONLY 0x04   /* MAIL: --flash-only */
#define HL_SPAWN_FLAG_IF_ITEMS 0x08     /* MAIL: --if-items */
#define HL_SPAWN_FLAGS_ALL 0x0f

struct hl_spawn_request {
	uint8_t op, kind, flags, sig, nenv;
	uint32_t id;
	uint64_t after;                                 /* MAIL: --after, 0 none */
	char peer[HL_NAME_MAX + 1];                     /* MAIL */
	char env[HL_SPAWN_ENV_MAX][HL_SPAWN_ENV_LEN + 1]; /* ALARM */
};

struct hl_spawn_reply {
	int32_t status;
	uint32_t pid;
	char text[HL_SPAWN_TEXT_MAX + 1];
};

struct hl_spawn_exit {
	uint32_t id;
	int64_t status;
	int32_t signal;
};

/* Each encoder writes at most HL_SPAWN_MSG_MAX bytes into BUF and returns
 * the length, or a negative code when a field is out of bounds. */
int hl_spawn_request_encode(const struct hl_spawn_request *r, uint8_t *buf, size_t cap);
int hl_spawn_reply_encode(const struct hl_spawn_reply *r, uint8_t *buf, size_t cap);
int hl_spawn_exit_encode(const struct hl_spawn_exit *e, uint8_t *buf, size_t cap);

/* Each decoder checks every field (the list above) and that nothing
 * follows: 0, or HL_EINVAL / HL_ETOOBIG / HL_ETRUNC. */
int hl_spawn_request_decode(const uint8_t *buf, size_t len, struct hl_spawn_request *r);
int hl_spawn_reply_decode(const uint8_t *buf, size_t len, struct hl_spawn_reply *r);
int hl_spawn_exit_decode(const uint8_t *buf, size_t len, struct hl_spawn_exit *e);

/* Whether "KEY=VALUE" is one an alarm may carry (the request's rule). */
bool hl_spawn_env_ok(const char *kv, size_t len);

#endif
