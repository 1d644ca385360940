/* daemon/sandbox.h — what a process that reads an adversary's bytes may
 * still do: the sandbox of the network process (`hotline run` once it has
 * started), of the mail pickup child (`bundle import --maildir`), of a
 * command that parses what comes from outside (`bundle import FILE`,
 * `record verify` and `show`), of a decoder child that holds nothing
 * but its input and a pipe (`voice play`, hotline-voice's `play`), and of
 * the daemon's key holder, which reads what those processes ask of it.
 * docs/sandbox.md is the manual: each process, its rules, what a violation
 * does, how to diagnose one.
 *
 * hl_sandbox_enter() applies, to the calling process and for good, in this
 * order:
 *   1. PR_SET_DUMPABLE 0: no core file, no /proc/PID/mem, no ptrace attach
 *      by a process of the same user without CAP_SYS_PTRACE;
 *   2. no_new_privs (daemon/privs.h sets it already when it dropped root);
 *   3. Landlock, where the kernel has ABI 2 or later: the files it may
 *      open, by path (the station's store and attachment folders, the
 *      Maildir, the few /etc files name resolution reads); identity.key,
 *      station.conf and everything else refused with EACCES; nothing may be
 *      executed.  Without Landlock (or with ABI 1, which refuses every
 *      rename across folders) this step is left out and NOTE says so;
 *   4. a seccomp allow-list (libseccomp) of the system calls the role
 *      makes, some with their arguments checked (clone only for threads,
 *      socket only for the families the role uses, kill only of itself).
 *      What is not on the list stops the process with SIGSYS after one
 *      line on stderr; execve, ptrace, process_vm_readv/writev and fork
 *      kill it at once; clone3 gets ENOSYS (glibc then uses clone).
 * The caller must be single-threaded (Landlock binds the calling thread
 * and the threads it starts later); hl_sandbox_enter refuses otherwise.
 * Every step is for good: there is no way back, and a failure after the
 * first step leaves the process to stop. */
#ifndef HL_DAEMON_SANDBOX_H
#define HL_DAEMON_SANDBOX_H

#include <stddef.h>
#include <sys/types.h>

#include "daemon/sandbox_role.h"

#define HL_SANDBOX_NOTE_LEN 256

/* Applies SPEC's sandbox to this process (see the top of this file); NOTE
 * says what applied, for the log.  0, or a negative code with ERR saying
 * which step failed; the process must then stop. */
int hl_sandbox_enter(const struct hl_sandbox_spec *spec, char note[static HL_SANDBOX_NOTE_LEN],
		     char *err, size_t errlen);

/* On another thread of the process, during hl_sandbox_enter's
 * BIND_OTHERS: no_new_privs and the Landlock ruleset RULESET_FD for the
 * calling thread.  0 or -errno. */
int hl_sandbox_bind_thread(int ruleset_fd);

/* The key holder's sandbox (role HOLDER) for station DIR, entered by the
 * holder process itself once it has started (holder/proc.h's
 * hl_holder_confine, which the daemon hands down: holder/ is a lower layer
 * and cannot call this); the note goes to the log.  0, or a negative code
 * with ERR set; the holder must then stop. */
int hl_sandbox_holder(const char *dir, char *err, size_t errlen);

/* The kernel's Landlock ABI version; 0 when it has none. */
int hl_sandbox_landlock_abi(void);

/* FN(ARG, 3) in a child process under the DECODE sandbox, holding nothing
 * of the caller's but descriptor 3 (the write end of a pipe whose read end
 * is *FD, close-on-exec) and stderr (stdin and stdout are /dev/null): for
 * parsing bytes from outside in a process apart from the one that holds
 * the files, the store or a device.  The child exits 0 when FN returned
 * 0, else 1; a child stopped by its sandbox dies of SIGSYS.  The caller
 * reads *FD to its end and waits for the returned pid (see
 * hl_sandbox_child_status); -errno (ERR set) when no child started. */
pid_t hl_sandbox_child(int (*fn)(void *arg, int fd), void *arg, int *fd, char *err,
		       size_t errlen);

/* Waits for PID from hl_sandbox_child: 0 when FN succeeded, HL_EINVAL when
 * it failed, HL_ESTATE when the child was stopped (by its sandbox, or a
 * signal; WHY says which). */
int hl_sandbox_child_status(pid_t pid, char *why, size_t whylen);

#endif
