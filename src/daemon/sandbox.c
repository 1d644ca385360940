/* daemon/sandbox.c — entering the sandbox (sandbox.h): the order of the
 * steps, the check that the process is single-threaded, the SIGSYS
 * handler that names a refused system call before the process dies, the
 * key holder's entry, and the decoder child (a fork that enters the DECODE
 * sandbox).
 * The Landlock rules are sandbox_fs.c's, the seccomp filter
 * sandbox_sys.c's. */
#include "daemon/sandbox.h"

#include <errno.h>
#include <fcntl.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/privs.h"
#include "daemon/sandbox_int.h"
#include "util/err.h"
#include "util/log.h"

#define NAMES_MAX 512   /* system call numbers named in the SIGSYS line */

/* Read by the SIGSYS handler: set once, before the filter is loaded. */
static const char *role_name = "?";
static char *call_names[NAMES_MAX];

/* ---- the SIGSYS handler: async-signal-safe ---- */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v)
{
	char d[24];
	size_t n = 0;
	unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
	do
		d[n++] = (char)('0' + u % 10);
	while ((u /= 10) && n < sizeof(d));
	if (v < 0 && at < cap)
		buf[at++] = '-';
	while (n && at < cap)
		buf[at++] = d[--n];
	return at;
}

static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char line[256];
	size_t n = 0, cap = sizeof(line) - 1;
	int nr = si->si_syscall;
	(void)uc;
	n = put(line, n, cap, "hotline: sandbox: system call ");
	n = put_num(line, n, cap, nr);
	n = put(line, n, cap, " (");
	n = put(line, n, cap, nr >= 0 && nr < NAMES_MAX && call_names[nr] ? call_names[nr] : "?");
	n = put(line, n, cap, ") is not allowed in the ");
	n = put(line, n, cap, role_name);
	n = put(line, n, cap, " process: stopping (docs/sandbox.md)\n");
	(void)!write(STDERR_FILENO, line, n);
	/* Die of SIGSYS, as the kernel would have killed us: the default
	 * action, raised now, delivered when this handler returns. */
	signal(sig, SIG_DFL);
	raise(sig);
}

static int trap_handler(void)
{
	struct sigaction sa;
	for (int i = 0; i < NAMES_MAX; i++)
		if (!call_names[i])   /* the strings are kept for the process's life */
			call_names[i] = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, i);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	return sigaction(SIGSYS, &sa, NULL) == 0 ? 0 : -errno;
}

/* ---- the steps ---- */

/* Threads of this process from /proc/self/status; 1 when it cannot tell. */
static long threads(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	const char *t = strstr(buf, "\nThreads:");
	return t ? strtol(t + 9, NULL, 10) : 1;
}

static int fail(char *err, size_t errlen, int code, const char *what)
{
	snprintf(err, errlen, "sandbox: %s: %s", what, strerror(-code));
	return code;
}

int hl_sandbox_enter(const struct hl_sandbox_spec *spec, char note[static HL_SANDBOX_NOTE_LEN],
		     char *err, size_t errlen)
{
	int abi = 0, r;
	long nthreads = threads();
	note[0] = '\0';
	if (nthreads != 1 + (long)spec->other_threads) {
		snprintf(err, errlen, "sandbox: %ld threads run already; the sandbox must be entered "
			 "before any thread starts but the %u it binds itself (Landlock binds the "
			 "calling thread only)", nthreads, spec->other_threads);
		return -EINVAL;
	}
	role_name = hl_sandbox_role_name(spec->role);
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return fail(err, errlen, -errno, "PR_SET_DUMPABLE");
	if ((r = hl_privs_no_new_privs()) < 0)
		return fail(err, errlen, r, "PR_SET_NO_NEW_PRIVS");
	int fs = hl_sandbox_fs(spec, &abi, err, errlen);
	if (fs < 0)
		return fs;
	if ((r = trap_handler()) < 0)
		return fail(err, errlen, r, "the SIGSYS handler");
	if ((r = hl_sandbox_sys(spec, err, errlen)) < 0)
		return r;
	if (fs)
		snprintf(note, HL_SANDBOX_NOTE_LEN,
			 "sandbox (%s): not dumpable, no_new_privs, Landlock ABI %d, seccomp",
			 role_name, abi);
	else
		snprintf(note, HL_SANDBOX_NOTE_LEN,
			 "sandbox (%s): not dumpable, no_new_privs, seccomp; no Landlock (this "
			 "kernel has ABI %d, ABI 2 is needed): files are not narrowed",
			 role_name, abi);
	return 0;
}

int hl_sandbox_holder(const char *dir, char *err, size_t errlen)
{
	char note[HL_SANDBOX_NOTE_LEN];
	struct hl_sandbox_spec spec = { .role = HL_SANDBOX_HOLDER, .station = dir };
	int ret = hl_sandbox_enter(&spec, note, err, errlen);
	if (ret == 0)
		hl_info("key holder: %s", note);
	return ret;
}

/* ---- a decoder child ---- */

/* In the child: descriptor 3 the pipe, 0 and 1 /dev/null, 2 stderr,
 * nothing else; then the sandbox. */
static int child_setup(int wfd)
{
	char note[HL_SANDBOX_NOTE_LEN], err[256];
	struct hl_sandbox_spec spec = { .role = HL_SANDBOX_DECODE };
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(wfd, 3) < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0)
		return -1;
	close_range(4, ~0U, 0);
	if (hl_sandbox_enter(&spec, note, err, sizeof(err)) < 0) {
		fprintf(stderr, "hotline: %s\n", err);
		return -1;
	}
	return 0;
}

pid_t hl_sandbox_child(int (*fn)(void *arg, int fd), void *arg, int *fd, char *err,
		       size_t errlen)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0) {
		snprintf(err, errlen, "sandbox: pipe: %s", strerror(errno));
		return -errno;
	}
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		snprintf(err, errlen, "sandbox: fork: %s", strerror(e));
		return -e;
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		_exit(child_setup(p[1]) < 0 || fn(arg, 3) != 0 ? 1 : 0);
	}
	close(p[1]);
	*fd = p[0];
	return pid;
}

int hl_sandbox_child_status(pid_t pid, char *why, size_t whylen)
{
	int st;
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR) {
			snprintf(why, whylen, "waiting for the decoder: %s", strerror(errno));
			return HL_ESTATE;
		}
	if (WIFEXITED(st))
		return WEXITSTATUS(st) == 0 ? 0 : HL_EINVAL;
	snprintf(why, whylen, "the decoder was stopped by %s%s", strsignal(WTERMSIG(st)),
		 WTERMSIG(st) == SIGSYS ? " (its sandbox: docs/sandbox.md)" : "");
	return HL_ESTATE;
}
