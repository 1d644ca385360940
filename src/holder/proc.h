/* holder/proc.h — the key-holder process (docs/keyholder.md section 2).
 *
 * `hotline run` starts it first, before the daemon opens its store or
 * reads anything from the network: a child of the daemon (fork) that
 * alone reads identity.key, is not dumpable, keeps the keys in locked
 * memory, opens no network socket and never opens the store; once it has
 * started, the daemon's holder runs in a sandbox of its own (below:
 * hl_holder_confine).  It answers
 * the requests of holder/proto.h with holder/serve.c's rules, on a
 * socketpair to the daemon and on DIR/keyholder.sock (mode 0600; a peer
 * whose uid is not the station's is refused) for the commands and the
 * mail pickup the daemon runs.  A command run while no daemon runs starts
 * one of its own (hl_holder_spawn_own), which serves that command alone.
 *
 * Its life is the daemon's: it exits when the socketpair closes (the
 * daemon stopped or died; PR_SET_PDEATHSIG too), and ignores SIGINT and
 * SIGTERM so that a daemon stopping can still sign its last receipts.  The
 * daemon notices the holder's death at once (the socketpair ends) and
 * stops (daemon/keys.c). */
#ifndef HL_HOLDER_PROC_H
#define HL_HOLDER_PROC_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The holder's name in /proc/PID/comm (and so in ps). */
#define HL_HOLDER_COMM "hotline-keys"

/* What a holder does to itself once it has started — its lock, keys,
 * journal and socket held — and before it reads a request: the daemon's
 * holder enters its sandbox (daemon/sandbox.h's hl_sandbox_holder, which
 * this lower layer cannot call, so the daemon hands it down; docs/
 * sandbox.md).  Runs in the holder, for station DIR; 0, or negative with
 * ERR set, and the holder then stops. */
typedef int hl_holder_confine(const char *dir, char *err, size_t errlen);

/* The holder's marks, in a page it shares with the process that started
 * it (an anonymous shared mapping made before the fork): how many journal
 * appends it has made (WRITTEN, stored before each answer leaves), how
 * many of them the disk has (ON_DISK, stored after each push: written out
 * and waited for, not yet flushed from the disk's cache) and how many are
 * durable (DURABLE, stored after each fdatasync that succeeded).  The last
 * two stop moving once a push or fdatasync failed.  The holder only stores
 * into the page, never reads it back: nothing the starter writes there
 * reaches the holder's decisions.  The starter reads them to spare itself
 * a SYNC round trip when what it was signed is durable already, or will be
 * once its own store's fdatasync (which begins after it read ON_DISK)
 * returns (holder/client.h, hl_keys_sync).  MOVED is a futex word it may
 * wait on for ON_DISK to move, a few microseconds after an answer.  A
 * starter that writes them
 * fools only itself, and could as well not ask SYNC at all
 * (docs/keyholder.md 5). */
struct hl_holder_marks {
	_Atomic uint64_t written;
	_Atomic uint64_t on_disk;
	_Atomic uint64_t durable;
	_Atomic uint32_t moved;       /* bumped, and futex-woken, when ON_DISK moves */
};
/* Unmaps M (NULL: nothing). */
void hl_holder_marks_free(struct hl_holder_marks *m);

/* Starts the key holder for station DIR, which enters CONFINE (NULL:
 * none; station.conf's `Sandbox = off`) before it serves.  *FD gets this
 * process's end of the socketpair (close-on-exec), *PID the holder's pid,
 * *MARKS (unless MARKS is NULL) the page of its marks, or NULL when none
 * could be mapped (then every sync is asked).
 * The child's own failures (identity.key does not load) reach its stderr
 * and end it: the caller's first request then fails. */
int hl_holder_spawn(const char *dir, hl_holder_confine *confine, int *fd, pid_t *pid,
		    struct hl_holder_marks **marks, char *err, size_t errlen);

/* The same for a command while no daemon runs (holder/client.c): the
 * same process, journal and lock, but it serves its socketpair alone (no
 * keyholder.sock: it ends with its command, and another command must not
 * be left talking to it).  It waits for keyholder.lock while another
 * holder has it; its first answer comes once it holds the lock. */
int hl_holder_spawn_own(const char *dir, int *fd, pid_t *pid, char *err, size_t errlen);

/* The holder's life, in the child: FD the socketpair's end.  Never
 * returns; exits 0 when the daemon's end closes, 1 when it cannot start. */
void hl_holder_main(const char *dir, int fd) __attribute__((noreturn));

#endif
