/* test_sandbox.c — daemon/sandbox.c: a process that applied the network
 * process's sandbox (the very function `hotline run` calls), the mail
 * pickup's, a `bundle import`'s, a decoder's (record verify, voice play) or
 * the key holder's, then tries what an attacker who took it over would try.  Each
 * attempt runs in a child of its own, which reports its outcome by its
 * exit status (0, an errno value) or dies by a signal; the parent asserts
 * the exact outcome the design gives (docs/sandbox.md):
 *   execve, ptrace, process_vm_readv, fork      killed by SIGSYS
 *   a system call not on the list               SIGSYS, after a line on stderr
 *   clone3                                      ENOSYS, and a thread still starts
 *                                               (but in the holder: SIGSYS)
 *   identity.key, station.conf                  EACCES (Landlock), but for
 *                                               the key holder, whose they are
 *   a file outside the station, in the holder   EACCES; a folder made: SIGSYS
 *   what the network process may do and the     SIGSYS (pipe2, connect, bind),
 *   holder need not                             EPERM (socket)
 *   socket(AF_PACKET), AF_INET in the pickup    EPERM
 *   and the import, any socket in a decoder
 *   the store, the Maildir in a decoder         EACCES; the Maildir in an import too
 *   PR_SET_DUMPABLE 1, PROT_EXEC, kill another  EPERM (the first allowed
 *                                               with AddressSanitizer, whose
 *                                               leak check needs it)
 * and that what the roles need still works (the store, a TCP socket, the
 * Maildir, the holder's rotation of identity.key: a new file beside it,
 * fsync'd, renamed over it, the folder fsync'd), so that the policy is not
 * simply "refuse everything".  The
 * Landlock cases skip, saying so, on a kernel without Landlock ABI 2. */
#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/sandbox.h"
#include "daemon/sandbox_int.h"
#include "util/err.h"
#include "util/mem.h"

#define ENTER_FAILED 250      /* exit status: hl_sandbox_enter failed */
#define WRONG 251             /* exit status: an outcome the child checks itself */

static char station[64];
static char maildir[96];
static pid_t test_pid;          /* this test's process, the children's parent */

static void touch(const char *dir, const char *name)
{
	char *p = xasprintf("%s/%s", dir, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "x", 1), 1);
	close(fd);
	free(p);
}

static int setup(void **state)
{
	(void)state;
	test_pid = getpid();
	snprintf(station, sizeof(station), "/tmp/hl-test-sandbox.XXXXXX");
	assert_non_null(mkdtemp(station));
	touch(station, "identity.key");
	touch(station, "station.conf");
	touch(station, "store.db");
	snprintf(maildir, sizeof(maildir), "%s/Maildir", station);
	assert_int_equal(mkdir(maildir, 0700), 0);
	for (int i = 0; i < 3; i++) {
		char *p = xasprintf("%s/%s", maildir, (const char *[]){ "new", "cur", "tmp" }[i]);
		assert_int_equal(mkdir(p, 0700), 0);
		free(p);
	}
	char *nd = xasprintf("%s/new", maildir);
	touch(nd, "1.mail");
	free(nd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", station);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

typedef int attempt_fn(void);

/* Runs ATTEMPT in a child under ROLE's sandbox; its wait status.  The
 * child's stderr goes to ERRBUF (when not NULL). */
static int run_child(enum hl_sandbox_role role, attempt_fn *attempt, char *errbuf, size_t errlen)
{
	int pfd[2];
	assert_int_equal(pipe(pfd), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char note[HL_SANDBOX_NOTE_LEN], err[256];
		struct hl_sandbox_spec spec = { .role = role, .station = station, .maildir = maildir };
		close(pfd[0]);
		dup2(pfd[1], 2);
		if (hl_sandbox_enter(&spec, note, err, sizeof(err)) < 0) {
			dprintf(2, "enter: %s\n", err);
			_exit(ENTER_FAILED);
		}
		_exit(attempt());
	}
	close(pfd[1]);
	char buf[1024];
	size_t got = 0;
	ssize_t n;
	while ((n = read(pfd[0], buf + got, sizeof(buf) - 1 - got)) > 0)
		got += (size_t)n;
	buf[got] = '\0';
	close(pfd[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	if (errbuf)
		snprintf(errbuf, errlen, "%s", buf);
	if (WIFEXITED(status) && WEXITSTATUS(status) == ENTER_FAILED)
		fail_msg("hl_sandbox_enter failed: %s", buf);
	return status;
}

static void expect_sigsys(enum hl_sandbox_role role, attempt_fn *attempt, const char *what)
{
	int st = run_child(role, attempt, NULL, 0);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
		fail_msg("%s: want death by SIGSYS, got %s %d", what,
			 WIFSIGNALED(st) ? "signal" : "exit", WIFSIGNALED(st) ? WTERMSIG(st)
									   : WEXITSTATUS(st));
}

static void expect_exit(enum hl_sandbox_role role, attempt_fn *attempt, int want, const char *what)
{
	int st = run_child(role, attempt, NULL, 0);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != want)
		fail_msg("%s: want exit %d (%s), got %s %d", what, want, want ? strerror(want) : "ok",
			 WIFSIGNALED(st) ? "signal" : "exit",
			 WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static int result(long r)
{
	return r < 0 ? errno : 0;
}

static bool have_landlock(void)
{
	if (hl_sandbox_landlock_abi() >= 2)
		return true;
	print_message("no Landlock ABI 2 on this kernel (%d): the path rules are not tested\n",
		      hl_sandbox_landlock_abi());
	return false;
}

/* ---- the attempts ---- */

static int do_execve(void)
{
	char *argv[] = { "/bin/true", NULL };
	execve(argv[0], argv, NULL);
	return result(-1);
}

static int do_ptrace(void)
{
	return result(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
}

static int do_process_vm_readv(void)
{
	char a[8] = "secret", b[8];
	struct iovec local = { b, sizeof(b) }, remote = { a, sizeof(a) };
	return result(process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
}

static int do_fork(void)
{
	pid_t p = fork();
	if (p == 0)
		_exit(0);
	return result(p);
}

static int do_unlisted(void)
{
	/* add_key: nothing hotline does, so not on any list */
	return result(syscall(SYS_add_key, "user", "x", "y", 1, -2));
}

static int open_in_station(const char *name, int flags)
{
	char *p = xasprintf("%s/%s", station, name);
	int fd = open(p, flags | O_CLOEXEC);
	free(p);
	if (fd >= 0)
		close(fd);
	return result(fd);
}

static int do_open_identity(void)
{
	return open_in_station("identity.key", O_RDONLY);
}

static int do_open_conf(void)
{
	return open_in_station("station.conf", O_RDONLY);
}

static int do_open_store(void)
{
	return open_in_station("store.db", O_RDWR);
}

static int do_write_conf(void)
{
	return open_in_station("station.conf", O_WRONLY | O_TRUNC);
}

static int do_open_maildir(void)
{
	return open_in_station("Maildir/new/1.mail", O_RDONLY);
}

/* A file outside the station that every role but the holder may read
 * (name resolution's, sandbox_fs.c). */
static int do_open_hosts(void)
{
	int fd = open("/etc/hosts", O_RDONLY | O_CLOEXEC);
	if (fd >= 0)
		close(fd);
	return result(fd);
}

static int do_mkdir_in_station(void)
{
	char *p = xasprintf("%s/newdir", station);
	int r = mkdir(p, 0700);
	free(p);
	return result(r);
}

/* What the key holder does to rotate identity.key (crypto/signer.c) and
 * its journal's segment (holder/heads.c): a new file beside the old one,
 * written, fsync'd, renamed over it, the folder fsync'd. */
static int do_replace_in_station(void)
{
	char *tmp = xasprintf("%s/identity.key.new", station);
	char *dst = xasprintf("%s/identity.key", station);
	errno = 0;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600), ret = 0;
	if (fd < 0 || fchmod(fd, 0600) < 0 || write(fd, "y", 1) != 1 || fsync(fd) < 0 ||
	    fdatasync(fd) < 0 || ftruncate(fd, 1) < 0)
		ret = errno ? errno : WRONG;
	if (fd >= 0)
		close(fd);
	if (ret == 0 && rename(tmp, dst) < 0)
		ret = errno;
	int dfd = ret == 0 ? open(station, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (ret == 0 && (dfd < 0 || fsync(dfd) < 0))
		ret = errno;
	if (dfd >= 0)
		close(dfd);
	free(tmp);
	free(dst);
	return ret;
}

static int do_pipe(void)
{
	int p[2];
	int r = pipe2(p, O_CLOEXEC);
	if (r == 0) {
		close(p[0]);
		close(p[1]);
	}
	return result(r);
}

static int do_bind(void)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };
	return result(bind(3, &sa, sizeof(sa)));
}

static int do_connect(void)
{
	struct sockaddr sa = { .sa_family = AF_UNIX };
	return result(connect(3, &sa, sizeof(sa)));
}

static int do_socket_packet(void)
{
	int s = socket(AF_PACKET, SOCK_RAW, 0);
	if (s >= 0)
		close(s);
	return result(s);
}

static int do_socket_inet(void)
{
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0)
		close(s);
	return result(s);
}

static int do_socket_unix(void)
{
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s >= 0)
		close(s);
	return result(s);
}

static void *thread_main(void *arg)
{
	*(int *)arg = 42;
	return NULL;
}

/* clone3 for a thread: 0 when it got ENOSYS. */
static int do_clone3(void)
{
	struct clone_args ca;
	memset(&ca, 0, sizeof(ca));
	ca.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD;
	long r = syscall(SYS_clone3, &ca, sizeof(ca));
	if (r >= 0 || errno != ENOSYS)
		return r >= 0 ? WRONG : errno;
	return 0;
}

static int do_clone3_then_thread(void)
{
	int r = do_clone3();
	if (r != 0)
		return r;
	pthread_t th;
	int v = 0;
	if (pthread_create(&th, NULL, thread_main, &v) != 0 || pthread_join(th, NULL) != 0)
		return WRONG + 1;
	return v == 42 ? 0 : WRONG + 2;
}

static int do_dumpable_again(void)
{
	return result(prctl(PR_SET_DUMPABLE, 1, 0, 0, 0));
}

static int do_prot_exec(void)
{
	void *p = mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p != MAP_FAILED)
		return WRONG;
	int e = errno;
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return WRONG + 1;
	if (mprotect(p, 4096, PROT_READ | PROT_EXEC) == 0 || errno != e)
		return WRONG + 2;
	return e;
}

static int do_kill_other(void)
{
	if (kill(getpid(), 0) != 0)
		return WRONG;
	return result(kill(test_pid, 0));
}

/* ---- the tests ---- */

/* The child enters, says so, and waits; the parent reads its
 * /proc/PID/status as anyone would (the child itself may not: /proc is
 * outside its rules); the child checks its own dumpable flag. */
static void check_status(enum hl_sandbox_role role)
{
	int ready[2], go[2];
	assert_int_equal(pipe(ready), 0);
	assert_int_equal(pipe(go), 0);
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		char note[HL_SANDBOX_NOTE_LEN], err[256], c = 0;
		struct hl_sandbox_spec spec = { .role = role, .station = station, .maildir = maildir };
		if (hl_sandbox_enter(&spec, note, err, sizeof(err)) < 0)
			_exit(ENTER_FAILED);
		(void)!write(ready[1], "x", 1);
		(void)!read(go[0], &c, 1);
		_exit(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0) == 0 ? 0 : WRONG);
	}
	char c, path[64], buf[4096];
	assert_int_equal(read(ready[0], &c, 1), 1);
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	int fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_int_equal(write(go[1], "x", 1), 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	for (int i = 0; i < 2; i++) {
		close(ready[i]);
		close(go[i]);
	}
	assert_non_null(strstr(buf, "\nSeccomp:\t2\n"));
	assert_non_null(strstr(buf, "\nNoNewPrivs:\t1\n"));
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static const enum hl_sandbox_role roles[] = { HL_SANDBOX_NETWORK, HL_SANDBOX_PICKUP,
					       HL_SANDBOX_IMPORT, HL_SANDBOX_DECODE,
					       HL_SANDBOX_HOLDER };
#define NROLES (sizeof(roles) / sizeof(roles[0]))
/* The roles kept from identity.key: all but the holder, the last. */
#define NKEYLESS (NROLES - 1)

static void test_status(void **state)
{
	(void)state;
	for (size_t r = 0; r < NROLES; r++)
		check_status(roles[r]);
}

static void test_fatal_calls(void **state)
{
	(void)state;
	for (size_t r = 0; r < NROLES; r++) {
		enum hl_sandbox_role role = roles[r];
		expect_sigsys(role, do_execve, "execve");
		expect_sigsys(role, do_ptrace, "ptrace");
		expect_sigsys(role, do_process_vm_readv, "process_vm_readv");
		expect_sigsys(role, do_fork, "fork");
	}
}

static void test_unlisted_call_says_why(void **state)
{
	(void)state;
	char err[1024];
	int st = run_child(HL_SANDBOX_NETWORK, do_unlisted, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	char want[64];
	snprintf(want, sizeof(want), "system call %d (add_key)", SYS_add_key);
	if (!strstr(err, want) || !strstr(err, "network"))
		fail_msg("stderr does not name the call and the process: '%s'", err);
	st = run_child(HL_SANDBOX_HOLDER, do_unlisted, err, sizeof(err));
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGSYS);
	if (!strstr(err, want) || !strstr(err, "in the holder process"))
		fail_msg("stderr does not name the call and the holder: '%s'", err);
}

static void test_clone3_enosys_threads_work(void **state)
{
	(void)state;
	expect_exit(HL_SANDBOX_NETWORK, do_clone3_then_thread, 0, "clone3 ENOSYS, then a thread");
	expect_exit(HL_SANDBOX_PICKUP, do_clone3_then_thread, 0, "pickup: clone3, a thread");
	/* the holder starts no thread: clone3 gets ENOSYS, clone kills */
	expect_exit(HL_SANDBOX_HOLDER, do_clone3, 0, "holder: clone3 ENOSYS");
	expect_sigsys(HL_SANDBOX_HOLDER, do_clone3_then_thread, "holder: a thread");
}

static void test_files(void **state)
{
	(void)state;
	expect_exit(HL_SANDBOX_NETWORK, do_open_store, 0, "the store, read-write");
	expect_exit(HL_SANDBOX_PICKUP, do_open_store, 0, "pickup: the store");
	expect_exit(HL_SANDBOX_PICKUP, do_open_maildir, 0, "pickup: a mail in new/");
	expect_exit(HL_SANDBOX_IMPORT, do_open_store, 0, "import: the store");
	expect_exit(HL_SANDBOX_HOLDER, do_open_identity, 0, "holder: identity.key");
	expect_exit(HL_SANDBOX_HOLDER, do_replace_in_station, 0, "holder: identity.key replaced");
	expect_exit(HL_SANDBOX_NETWORK, do_open_hosts, 0, "network: /etc/hosts");
	expect_sigsys(HL_SANDBOX_HOLDER, do_mkdir_in_station, "holder: a folder");
	if (!have_landlock())
		return;
	expect_exit(HL_SANDBOX_HOLDER, do_open_hosts, EACCES, "holder: /etc/hosts");
	for (size_t r = 0; r < NKEYLESS; r++) {
		enum hl_sandbox_role role = roles[r];
		expect_exit(role, do_open_identity, EACCES, "identity.key");
		expect_exit(role, do_open_conf, EACCES, "station.conf");
		expect_exit(role, do_write_conf, EACCES, "station.conf for writing");
	}
	expect_exit(HL_SANDBOX_NETWORK, do_open_maildir, EACCES, "network: a mail's content");
	expect_exit(HL_SANDBOX_IMPORT, do_open_maildir, EACCES, "import: a mail's content");
	expect_exit(HL_SANDBOX_DECODE, do_open_store, EACCES, "decode: the store");
	expect_exit(HL_SANDBOX_DECODE, do_open_maildir, EACCES, "decode: a mail's content");
}

static void test_sockets(void **state)
{
	(void)state;
	expect_exit(HL_SANDBOX_NETWORK, do_socket_packet, EPERM, "socket(AF_PACKET)");
	expect_exit(HL_SANDBOX_NETWORK, do_socket_inet, 0, "socket(AF_INET)");
	expect_exit(HL_SANDBOX_PICKUP, do_socket_inet, EPERM, "pickup: socket(AF_INET)");
	expect_exit(HL_SANDBOX_PICKUP, do_socket_unix, 0, "pickup: socket(AF_UNIX), the poke");
	expect_exit(HL_SANDBOX_IMPORT, do_socket_inet, EPERM, "import: socket(AF_INET)");
	expect_exit(HL_SANDBOX_IMPORT, do_socket_unix, 0, "import: socket(AF_UNIX), the poke");
	expect_exit(HL_SANDBOX_DECODE, do_socket_unix, EPERM, "decode: socket(AF_UNIX)");
	expect_exit(HL_SANDBOX_DECODE, do_socket_inet, EPERM, "decode: socket(AF_INET)");
	expect_exit(HL_SANDBOX_HOLDER, do_socket_unix, EPERM, "holder: socket(AF_UNIX)");
	expect_exit(HL_SANDBOX_HOLDER, do_socket_inet, EPERM, "holder: socket(AF_INET)");
}

/* The holder's list is its own, not the others' (sandbox_sys.c): what the
 * network process may call, the holder may not (bind and connect are
 * stopped before they look at their descriptor). */
static void test_holder_list(void **state)
{
	(void)state;
	expect_exit(HL_SANDBOX_NETWORK, do_pipe, 0, "network: pipe2");
	expect_sigsys(HL_SANDBOX_HOLDER, do_pipe, "holder: pipe2");
	expect_sigsys(HL_SANDBOX_HOLDER, do_bind, "holder: bind");
	expect_sigsys(HL_SANDBOX_HOLDER, do_connect, "holder: connect");
}

/* ---- the decoder child (hl_sandbox_child) ---- */

static int held_fd = -1;        /* the parent's, which the child must not have */

static int child_writes(void *arg, int fd)
{
	(void)arg;
	/* nothing of the parent's but the pipe: its descriptor is gone */
	if (fcntl(held_fd, F_GETFD) != -1 || errno != EBADF)
		return 1;
	return write(fd, "pcm", 3) == 3 ? 0 : 1;
}

static int child_fails(void *arg, int fd)
{
	(void)arg;
	(void)fd;
	return 1;
}

static int child_execs(void *arg, int fd)
{
	(void)arg;
	(void)fd;
	return do_execve() == 0 ? 0 : 2;
}

struct attempt {
	attempt_fn *fn;
};

/* 0 when the attempt is refused with EACCES (Landlock). */
static int child_opens(void *arg, int fd)
{
	(void)fd;
	return ((const struct attempt *)arg)->fn() == EACCES ? 0 : 1;
}

static pid_t start_child(int (*fn)(void *, int), void *arg, int *fd)
{
	char err[256];
	pid_t pid = hl_sandbox_child(fn, arg, fd, err, sizeof(err));
	if (pid < 0)
		fail_msg("hl_sandbox_child: %s", err);
	return pid;
}

static void test_decoder_child(void **state)
{
	(void)state;
	char buf[8] = "", why[256] = "";
	int fd;
	char *store = xasprintf("%s/store.db", station);
	held_fd = open(store, O_RDWR | O_CLOEXEC);
	free(store);
	assert_true(held_fd >= 0);
	pid_t pid = start_child(child_writes, NULL, &fd);
	assert_int_equal(read(fd, buf, sizeof(buf)), 3);
	assert_memory_equal(buf, "pcm", 3);
	close(fd);
	assert_int_equal(hl_sandbox_child_status(pid, why, sizeof(why)), 0);
	close(held_fd);

	pid = start_child(child_fails, NULL, &fd);
	close(fd);
	assert_int_equal(hl_sandbox_child_status(pid, why, sizeof(why)), HL_EINVAL);

	/* the forbidden: a program run, killed at once */
	pid = start_child(child_execs, NULL, &fd);
	close(fd);
	assert_int_equal(hl_sandbox_child_status(pid, why, sizeof(why)), HL_ESTATE);
	if (!strstr(why, "sandbox"))
		fail_msg("the status does not say the sandbox stopped it: '%s'", why);
	if (!have_landlock())
		return;
	struct attempt opens[] = { { do_open_identity }, { do_open_store }, { do_open_conf } };
	for (size_t i = 0; i < sizeof(opens) / sizeof(opens[0]); i++) {
		pid = start_child(child_opens, &opens[i], &fd);
		close(fd);
		assert_int_equal(hl_sandbox_child_status(pid, why, sizeof(why)), 0);
	}
}

static void test_no_way_back(void **state)
{
	(void)state;
	static const enum hl_sandbox_role some[] = { HL_SANDBOX_NETWORK, HL_SANDBOX_HOLDER };
	for (size_t r = 0; r < sizeof(some) / sizeof(some[0]); r++) {
		/* LeakSanitizer's tracer needs it: allowed in that build only */
		expect_exit(some[r], do_dumpable_again, HL_SANDBOX_SANITIZER ? 0 : EPERM,
			    "PR_SET_DUMPABLE 1");
		expect_exit(some[r], do_prot_exec, EPERM, "PROT_EXEC");
		expect_exit(some[r], do_kill_other, EPERM, "kill(parent)");
	}
}

static void *idle_main(void *arg)
{
	int *fd = arg;
	char c;
	(void)!read(*fd, &c, 1);
	return NULL;
}

/* Landlock binds the calling thread only: entering with a second thread
 * running would leave that thread outside. */
static void test_refuses_when_threaded(void **state)
{
	(void)state;
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int p[2];
		pthread_t th;
		char note[HL_SANDBOX_NOTE_LEN], err[256];
		struct hl_sandbox_spec spec = { .role = HL_SANDBOX_NETWORK, .station = station };
		if (pipe(p) < 0 || pthread_create(&th, NULL, idle_main, &p[0]) != 0)
			_exit(WRONG);
		int r = hl_sandbox_enter(&spec, note, err, sizeof(err));
		_exit(r < 0 && strstr(err, "thread") ? 0 : WRONG + 1);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_status),
		cmocka_unit_test(test_fatal_calls),
		cmocka_unit_test(test_unlisted_call_says_why),
		cmocka_unit_test(test_clone3_enosys_threads_work),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_sockets),
		cmocka_unit_test(test_holder_list),
		cmocka_unit_test(test_no_way_back),
		cmocka_unit_test(test_refuses_when_threaded),
		cmocka_unit_test(test_decoder_child),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
