/* daemon/sandbox_sys.c — the seccomp half of the sandbox (sandbox.h, step
 * 4): the system calls each role may make, in classes, with libseccomp.
 *
 * THE ACTIONS, and why.
 *   allow        the lists below.
 *   kill         (SECCOMP_RET_KILL_PROCESS) execve, execveat, fork, vfork,
 *                clone without CLONE_THREAD (in the key holder, which
 *                starts no thread, every clone), ptrace, process_vm_readv,
 *                process_vm_writev: nothing the network side does, and the
 *                first things a program that took it over would try (run
 *                a shell, read another process's memory).  The whole
 *                process dies at once, before the call does anything; the
 *                kernel's audit log names the call.
 *   ENOSYS       clone3: glibc and libuv try it first for a thread and fall
 *                back to clone on ENOSYS, where the flags can be checked
 *                (clone3 passes them in memory, out of the filter's reach).
 *   EPERM        a call the role makes with other arguments than these:
 *                socket of another family (glibc's getaddrinfo asks for a
 *                netlink socket and does without), PROT_EXEC in mmap and
 *                mprotect (no new code after start), PR_SET_DUMPABLE
 *                (no way back), kill or tgkill of another process.
 *   trap         everything else: SIGSYS, whose handler (sandbox.c) writes
 *                one line naming the call to stderr — the daemon's log —
 *                then dies of SIGSYS.  Dying rather than failing the call:
 *                a call that is not on the list is either an attacker's or
 *                a path nobody tested, and a daemon that goes on with a
 *                call failed under it may lose what it acknowledged; a
 *                supervisor restarts a daemon that died, and the store
 *                keeps everything committed (docs/sandbox.md).
 * Filesystem paths are Landlock's (sandbox_fs.c): seccomp cannot see them,
 * so openat, mkdir, rename and the like are allowed here.  chmod and chown
 * by path are not (a process that cannot open identity.key must not make
 * it readable to others either); fchmod and fchown work on what Landlock
 * let it open. */
#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <termios.h>
#include <unistd.h>

#include "daemon/sandbox_int.h"

/* A comparison with every field given (libseccomp's SCMP_A0 and the like
 * leave datum_b to the compiler).  MASKED_EQ: (argument & A) == B. */
#define CMP(arg, op, a, b) \
	((struct scmp_arg_cmp){ (arg), (op), (scmp_datum_t)(a), (scmp_datum_t)(b) })

#ifndef PR_SET_VMA
#define PR_SET_VMA 0x53564d41
#endif

/* Every role: memory, threads, time, signals, descriptors, the files
 * Landlock lets it open, polling, and its own identity. */
static const char *const base_calls[] = {
	/* memory (mmap and mprotect: below, without PROT_EXEC) */
	"brk", "munmap", "mremap", "madvise", "mlock", "munlock", "membarrier",
	/* threads and waiting */
	"futex", "set_robust_list", "get_robust_list", "set_tid_address", "rseq",
	"sched_yield", "sched_getaffinity", "sched_setscheduler", "sched_getscheduler",
	"sched_setparam", "sched_getparam", "sched_get_priority_max",
	"sched_get_priority_min", "setpriority", "getpriority", "nanosleep",
	"clock_nanosleep", "exit", "exit_group", "restart_syscall",
	/* time */
	"clock_gettime", "clock_getres", "gettimeofday", "time",
	/* signals (kill and tgkill: below, of itself only) */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "rt_sigtimedwait",
	"rt_sigpending",
	/* descriptors */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "preadv", "pwritev",
	"preadv2", "pwritev2", "lseek", "close", "close_range", "dup", "dup2", "dup3",
	"fcntl", "flock", "fstat", "fstatfs", "fsync", "fdatasync", "ftruncate", "fallocate",
	"fchmod", "fchown", "fadvise64", "getdents64", "pipe", "pipe2", "eventfd2",
	"sendfile", "copy_file_range", "splice",
	/* paths, where Landlock decides */
	"open", "openat", "stat", "lstat", "newfstatat", "statx", "statfs", "access",
	"faccessat", "faccessat2", "readlink", "readlinkat", "mkdir", "mkdirat", "rmdir",
	"unlink", "unlinkat", "rename", "renameat", "renameat2", "getcwd", "umask",
	"inotify_init1", "inotify_add_watch", "inotify_rm_watch",
	/* polling */
	"poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
	"epoll_pwait", "epoll_pwait2",
	/* who and where it is */
	"getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
	"getresuid", "getresgid", "getgroups", "uname", "sysinfo", "getrusage", "getrlimit",
	"getrandom", "wait4", "waitid",
	/* sockets it was given or made (socket itself: below, by family) */
	"connect", "getsockname", "getpeername", "setsockopt", "getsockopt", "sendto",
	"recvfrom", "sendmsg", "recvmsg", "sendmmsg", "recvmmsg", "shutdown",
};

/* The key holder (holder/proc.c) once it has started, instead of
 * base_calls: what its poll loop, its journal of heads (holder/heads.c)
 * and a rotation of identity.key (crypto/signer.c) call, and nothing else
 * (where glibc has two calls for one function, both).  No thread: clone
 * kills it (clones()).  docs/sandbox.md says why each is there. */
static const char *const holder_calls[] = {
	/* memory: malloc, libsodium's locked and guarded pages (mmap and
	 * mprotect: below, without PROT_EXEC) */
	"brk", "munmap", "mremap", "madvise", "mlock", "munlock",
	/* a poll a signal interrupted (SIGTERM, ignored, still wakes it);
	 * the end */
	"restart_syscall", "exit_group",
	/* time: the log's stamps, the journal's records */
	"clock_gettime", "gettimeofday", "time",
	/* signals: the SIGSYS handler (kill and tgkill: below, of itself
	 * only) */
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
	/* its descriptors: the log (stderr), the journal (written over its
	 * zeros ahead, handed to the disk, made durable, cut back after a
	 * failed write, read to take an item back), identity.key read and
	 * written anew at a rotation (fchmod 0600) */
	"read", "write", "pwrite64", "close", "fstat", "newfstatat", "statx", "fsync",
	"fdatasync", "sync_file_range", "ftruncate", "fchmod",
	/* paths, where Landlock decides: a segment or identity.key replaced
	 * (a new file renamed over it, the folder opened to fsync it),
	 * keyholder.sock removed at the end */
	"open", "openat", "rename", "renameat", "renameat2", "unlink", "unlinkat",
	/* its loop over the connections */
	"poll", "ppoll",
	/* the connections: accepting on keyholder.sock, the asker's uid
	 * (SO_PEERCRED), requests in, answers out */
	"accept", "accept4", "getsockopt", "recvfrom", "sendto",
	/* its starter woken when the journal's records are on the disk
	 * (the page of marks, holder/proc.h) */
	"futex",
	/* who it is: raise() in the SIGSYS handler, the asker's uid compared
	 * with its own; a rotation's next keys */
	"getpid", "gettid", "geteuid", "getrandom",
};

/* The network process also listens and accepts. */
static const char *const network_calls[] = {
	"bind", "listen", "accept", "accept4",
};

#if HL_SANDBOX_SANITIZER
/* LeakSanitizer's tracer lists the threads with the old getdents. */
static const char *const sanitizer_calls[] = { "getdents" };
/* The key holder, whose list is not base_calls: what the sanitizer's
 * runtime calls besides (its alternate signal stack, set up and taken down
 * around a process's or thread's life). */
static const char *const holder_sanitizer_calls[] = {
	"sigaltstack",
};
#endif

static const char *const fatal_calls[] = {
	"execve", "execveat", "fork", "vfork", "ptrace", "process_vm_readv", "process_vm_writev",
};

static const int network_families[] = { AF_UNIX, AF_INET, AF_INET6 };
static const int unix_families[] = { AF_UNIX };

static const unsigned long ioctls[] = { FIONBIO, FIOCLEX, FIONCLEX, FIONREAD, TCGETS,
					TIOCGWINSZ };
/* PR_SET_TIMERSLACK: the call media thread's wake-ups (daemon/calls.c). */
static const int prctls[] = { PR_GET_DUMPABLE, PR_SET_NAME, PR_GET_NAME, PR_GET_SECCOMP,
			      PR_GET_NO_NEW_PRIVS, PR_SET_VMA, PR_SET_TIMERSLACK,
			      PR_GET_TIMERSLACK };

/* A rule; a name this libseccomp does not know, or a call this
 * architecture does not have, is left out (there is nothing to allow). */
static int rule(scmp_filter_ctx ctx, uint32_t action, const char *name, unsigned n,
		const struct scmp_arg_cmp *arg)
{
	int nr = seccomp_syscall_resolve_name(name);
	if (nr == __NR_SCMP_ERROR || nr < 0)
		return 0;
	return seccomp_rule_add_array(ctx, action, nr, n, arg);
}

static int rule_list(scmp_filter_ctx ctx, uint32_t action, const char *const *names, size_t n)
{
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++)
		ret = rule(ctx, action, names[i], 0, NULL);
	return ret;
}

/* NAME allowed when its argument ARG is one of the FAMILIES (small values,
 * ascending); refused with EPERM for any other value, and for every value
 * when N is 0 (DECODE makes no socket). */
static int families_only(scmp_filter_ctx ctx, const char *name, const int *families, size_t n)
{
	if (n == 0)
		return rule(ctx, SCMP_ACT_ERRNO(EPERM), name, 0, NULL);
	int ret = 0, top = families[n - 1];
	struct scmp_arg_cmp a;
	for (int v = 0; v <= top && ret == 0; v++) {
		bool ok = false;
		for (size_t i = 0; i < n; i++)
			ok |= families[i] == v;
		a = CMP(0, SCMP_CMP_EQ, v, 0);
		ret = rule(ctx, ok ? SCMP_ACT_ALLOW : SCMP_ACT_ERRNO(EPERM), name, 1, &a);
	}
	a = CMP(0, SCMP_CMP_GT, top, 0);
	return ret ? ret : rule(ctx, SCMP_ACT_ERRNO(EPERM), name, 1, &a);
}

/* NAME allowed when (argument ARG & MASK) == 0, else EPERM. */
static int without_bits(scmp_filter_ctx ctx, const char *name, unsigned arg, scmp_datum_t mask)
{
	struct scmp_arg_cmp a = { arg, SCMP_CMP_MASKED_EQ, mask, 0 };
	int ret = rule(ctx, SCMP_ACT_ALLOW, name, 1, &a);
	a.datum_b = mask;
	return ret ? ret : rule(ctx, SCMP_ACT_ERRNO(EPERM), name, 1, &a);
}

/* kill and tgkill: of this process only. */
static int self_only(scmp_filter_ctx ctx, const char *name)
{
	struct scmp_arg_cmp a = CMP(0, SCMP_CMP_EQ, getpid(), 0);
	int ret = rule(ctx, SCMP_ACT_ALLOW, name, 1, &a);
	a.op = SCMP_CMP_NE;
	return ret ? ret : rule(ctx, SCMP_ACT_ERRNO(EPERM), name, 1, &a);
}

/* THREADS: whether the role may start threads (all but the holder). */
static int clones(scmp_filter_ctx ctx, bool threads)
{
	/* a thread: CLONE_THREAD set; anything else is a new process */
	struct scmp_arg_cmp thread = CMP(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD);
	int ret = rule(ctx, threads ? SCMP_ACT_ALLOW : SCMP_ACT_KILL_PROCESS, "clone", 1, &thread);
#if HL_SANDBOX_SANITIZER
	/* LeakSanitizer's tracer: CLONE_VM without CLONE_THREAD */
	struct scmp_arg_cmp tracer[] = { CMP(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_VM,
					     CLONE_VM) };
	struct scmp_arg_cmp proc = CMP(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD | CLONE_VM, 0);
	if (ret == 0)
		ret = rule(ctx, SCMP_ACT_ALLOW, "clone", 1, tracer);
	if (ret == 0)
		ret = rule(ctx, SCMP_ACT_KILL_PROCESS, "clone", 1, &proc);
#else
	struct scmp_arg_cmp proc = CMP(0, SCMP_CMP_MASKED_EQ, CLONE_THREAD, 0);
	if (ret == 0)
		ret = rule(ctx, SCMP_ACT_KILL_PROCESS, "clone", 1, &proc);
#endif
	return ret ? ret : rule(ctx, SCMP_ACT_ERRNO(ENOSYS), "clone3", 0, NULL);
}

static int values_only(scmp_filter_ctx ctx, const char *name, unsigned arg,
		       const unsigned long *v, size_t n)
{
	int ret = 0;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct scmp_arg_cmp a = { arg, SCMP_CMP_EQ, v[i], 0 };
		ret = rule(ctx, SCMP_ACT_ALLOW, name, 1, &a);
	}
	return ret;
}

static int prctl_rules(scmp_filter_ctx ctx)
{
	unsigned long v[sizeof(prctls) / sizeof(prctls[0])];
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
		v[i] = (unsigned long)prctls[i];
	int ret = values_only(ctx, "prctl", 0, v, sizeof(v) / sizeof(v[0]));
	struct scmp_arg_cmp a = CMP(0, SCMP_CMP_EQ, PR_SET_DUMPABLE, 0);
#if HL_SANDBOX_SANITIZER
	/* LeakSanitizer makes the process dumpable while its tracer attaches,
	 * names the tracer, and has it die with us */
	struct scmp_arg_cmp ptracer = CMP(0, SCMP_CMP_EQ, PR_SET_PTRACER, 0);
	struct scmp_arg_cmp pdeath = CMP(0, SCMP_CMP_EQ, PR_SET_PDEATHSIG, 0);
	if (ret == 0)
		ret = rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &a);
	if (ret == 0)
		ret = rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &ptracer);
	if (ret == 0)
		ret = rule(ctx, SCMP_ACT_ALLOW, "prctl", 1, &pdeath);
#else
	if (ret == 0)
		ret = rule(ctx, SCMP_ACT_ERRNO(EPERM), "prctl", 1, &a);
#endif
	return ret;
}

static int fatal_rules(scmp_filter_ctx ctx)
{
#if HL_SANDBOX_SANITIZER
	/* LeakSanitizer's tracer attaches to the threads; PTRACE_TRACEME
	 * (which would let a parent in) still kills */
	struct scmp_arg_cmp me = CMP(0, SCMP_CMP_EQ, PTRACE_TRACEME, 0);
	struct scmp_arg_cmp other = CMP(0, SCMP_CMP_NE, PTRACE_TRACEME, 0);
	int ret = rule(ctx, SCMP_ACT_KILL_PROCESS, "ptrace", 1, &me);
	if (ret == 0)
		ret = rule(ctx, SCMP_ACT_ALLOW, "ptrace", 1, &other);
	for (size_t i = 0; i < sizeof(fatal_calls) / sizeof(fatal_calls[0]) && ret == 0; i++)
		if (strcmp(fatal_calls[i], "ptrace") != 0)
			ret = rule(ctx, SCMP_ACT_KILL_PROCESS, fatal_calls[i], 0, NULL);
	return ret;
#else
	return rule_list(ctx, SCMP_ACT_KILL_PROCESS, fatal_calls,
			 sizeof(fatal_calls) / sizeof(fatal_calls[0]));
#endif
}

/* getrlimit by prlimit64(0, RESOURCE, NULL, OLD): reading, never setting. */
static int prlimit_rules(scmp_filter_ctx ctx)
{
	struct scmp_arg_cmp a = CMP(2, SCMP_CMP_EQ, 0, 0);
	return rule(ctx, SCMP_ACT_ALLOW, "prlimit64", 1, &a);
}

static int build(scmp_filter_ctx ctx, const struct hl_sandbox_spec *spec)
{
	bool net = spec->role == HL_SANDBOX_NETWORK, holder = spec->role == HL_SANDBOX_HOLDER;
	int ret = holder ? rule_list(ctx, SCMP_ACT_ALLOW, holder_calls,
				     sizeof(holder_calls) / sizeof(holder_calls[0]))
			 : rule_list(ctx, SCMP_ACT_ALLOW, base_calls,
				     sizeof(base_calls) / sizeof(base_calls[0]));
	if (ret == 0 && net)
		ret = rule_list(ctx, SCMP_ACT_ALLOW, network_calls,
				sizeof(network_calls) / sizeof(network_calls[0]));
	/* the network process dials and listens; the pickup and an import
	 * poke the daemon (AF_UNIX); a decoder and the key holder make no
	 * socket (the holder's listening one was made before) */
	size_t nunix = spec->role == HL_SANDBOX_DECODE || holder ? 0 : 1;
	if (ret == 0)
		ret = net ? families_only(ctx, "socket", network_families,
					  sizeof(network_families) / sizeof(network_families[0]))
			  : families_only(ctx, "socket", unix_families, nunix);
	if (ret == 0)
		ret = families_only(ctx, "socketpair", unix_families, nunix);
	if (ret == 0)
		ret = without_bits(ctx, "mmap", 2, PROT_EXEC);
	if (ret == 0)
		ret = without_bits(ctx, "mprotect", 2, PROT_EXEC);
	if (ret == 0)
		ret = without_bits(ctx, "pkey_mprotect", 2, PROT_EXEC);
	if (ret == 0)
		ret = self_only(ctx, "kill");
	if (ret == 0)
		ret = self_only(ctx, "tgkill");
	if (ret == 0)
		ret = values_only(ctx, "ioctl", 1, ioctls, sizeof(ioctls) / sizeof(ioctls[0]));
	if (ret == 0)
		ret = prctl_rules(ctx);
	if (ret == 0)
		ret = prlimit_rules(ctx);
	if (ret == 0)
		ret = clones(ctx, !holder);
	if (ret == 0)
		ret = fatal_rules(ctx);
#if HL_SANDBOX_SANITIZER
	if (ret == 0)
		ret = rule_list(ctx, SCMP_ACT_ALLOW, sanitizer_calls,
				sizeof(sanitizer_calls) / sizeof(sanitizer_calls[0]));
	if (ret == 0 && holder)
		ret = rule_list(ctx, SCMP_ACT_ALLOW, holder_sanitizer_calls,
				sizeof(holder_sanitizer_calls) / sizeof(holder_sanitizer_calls[0]));
#endif
	return ret;
}

int hl_sandbox_sys(const struct hl_sandbox_spec *spec, char *err, size_t errlen)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int ret;
	if (!ctx) {
		snprintf(err, errlen, "seccomp: cannot make a filter (out of memory?)");
		return -ENOMEM;
	}
	/* A binary tree of the calls rather than a list: every read and write
	 * of a bulk transfer runs the filter (libseccomp 2.5; an older one
	 * keeps the list). */
	(void)seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	/* every thread (TSYNC); no_new_privs is set already */
	if ((ret = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) < 0)
		snprintf(err, errlen, "seccomp: thread synchronisation: %s", strerror(-ret));
	else if ((ret = build(ctx, spec)) < 0)
		snprintf(err, errlen, "seccomp: building the %s filter: %s",
			 hl_sandbox_role_name(spec->role), strerror(-ret));
	else if ((ret = seccomp_load(ctx)) != 0)
		snprintf(err, errlen, "seccomp: loading the filter: %s",
			 strerror(ret < 0 ? -ret : EINVAL));
	seccomp_release(ctx);
	return ret > 0 ? -EINVAL : ret;
}
