/* test_spawn.c — the spawner (daemon/spawner.c) and its messages
 * (daemon/spawn_proto.c), from the side of a network process taken over:
 * what it may ask, and what it gets.
 *
 * The messages: every kind round-trips; a peer name that getopt would take
 * for an option, a variable outside the alarm's (LD_PRELOAD), a value
 * with a line break, a signal other than SIGTERM and SIGKILL, a byte too
 * many, an unknown op are each refused by the decoder.  The spawner, run
 * as `hotline run` runs it (hl_spawner_main in a child, over socket
 * pairs), in a station whose AlarmCommand writes its environment to a
 * file: a request it refuses runs nothing; an alarm runs station.conf's
 * AlarmCommand with HOTLINE_DIR and HOTLINE_STATION its own, whatever the
 * request said, and the EXIT event follows; CONF hands over station.conf
 * open; the daemon's end closed, the spawner exits. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/spawn.h"
#include "daemon/spawn_proto.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

static char dir[64], out[96];

/* ---- the messages ---- */

static int roundtrip(const struct hl_spawn_request *r, struct hl_spawn_request *back)
{
	uint8_t buf[HL_SPAWN_MSG_MAX];
	int n = hl_spawn_request_encode(r, buf, sizeof(buf));
	assert_true(n > 0);
	return hl_spawn_request_decode(buf, (size_t)n, back);
}

static void test_requests_roundtrip(void **state)
{
	(void)state;
	static struct hl_spawn_request r, back;
	memset(&r, 0, sizeof(r));
	r.op = HL_SPAWN_OP_SPAWN;
	r.kind = HL_SPAWN_MAIL;
	r.id = 7;
	r.flags = HL_SPAWN_FLAG_STDOUT | HL_SPAWN_FLAG_FLASH_ONLY;
	r.after = 99;
	snprintf(r.peer, sizeof(r.peer), "pyongyang");
	assert_int_equal(roundtrip(&r, &back), 0);
	assert_string_equal(back.peer, "pyongyang");
	assert_int_equal(back.after, 99);
	assert_int_equal(back.id, 7);
	r.kind = HL_SPAWN_ALARM;
	r.nenv = 2;
	snprintf(r.env[0], sizeof(r.env[0]), "HOTLINE_ALARM=ring");
	snprintf(r.env[1], sizeof(r.env[1]), "HOTLINE_DETAIL=a call ringing");
	assert_int_equal(roundtrip(&r, &back), 0);
	assert_int_equal(back.nenv, 2);
	assert_string_equal(back.env[1], "HOTLINE_DETAIL=a call ringing");
	/* a peer's key rotation, taken or refused (daemon/rotation.c) */
	r.nenv = 3;
	snprintf(r.env[0], sizeof(r.env[0]), "HOTLINE_ALARM=rotation_refused");
	snprintf(r.env[1], sizeof(r.env[1]), "HOTLINE_SEQ=7");
	snprintf(r.env[2], sizeof(r.env[2]), "HOTLINE_DETAIL=washington rotated its keys at "
		 "position 7 of its chain, to keys its card committed to; its new fingerprint is "
		 "03138 45458 91465 31879 33131 67451 05354 71465");
	assert_int_equal(roundtrip(&r, &back), 0);
	assert_int_equal(back.nenv, 3);
	assert_string_equal(back.env[0], "HOTLINE_ALARM=rotation_refused");
	assert_string_equal(back.env[1], "HOTLINE_SEQ=7");
}

static void test_requests_refused(void **state)
{
	(void)state;
	static struct hl_spawn_request r, back;
	const char *peers[] = { "--output=/tmp/x", "-d", "Pyongyang", "" };
	for (size_t i = 0; i < sizeof(peers) / sizeof(peers[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.op = HL_SPAWN_OP_SPAWN;
		r.kind = HL_SPAWN_MAIL;
		snprintf(r.peer, sizeof(r.peer), "%s", peers[i]);
		assert_int_equal(roundtrip(&r, &back), HL_EINVAL);
	}
	const char *envs[] = { "LD_PRELOAD=/tmp/x.so", "HOTLINE_DETAIL=two\nlines", "HOTLINE_X=1",
			       "HOTLINE_ALARM" };
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++) {
		memset(&r, 0, sizeof(r));
		r.op = HL_SPAWN_OP_SPAWN;
		r.kind = HL_SPAWN_ALARM;
		r.nenv = 1;
		snprintf(r.env[0], sizeof(r.env[0]), "%s", envs[i]);
		assert_int_equal(roundtrip(&r, &back), HL_EINVAL);
	}
	memset(&r, 0, sizeof(r));
	r.op = HL_SPAWN_OP_KILL;
	r.sig = SIGSTOP;
	assert_int_equal(roundtrip(&r, &back), HL_EINVAL);
	r.op = HL_SPAWN_OP_SPAWN;
	r.kind = HL_SPAWN_PICKUP;
	r.flags = HL_SPAWN_FLAG_ERR_TO_OUT;   /* stderr to a stdout that is not given */
	assert_int_equal(roundtrip(&r, &back), HL_EINVAL);
	const uint8_t extra[] = { HL_SPAWN_OP_CONF, 0 }, unknown[] = { 9 };
	assert_int_equal(hl_spawn_request_decode(extra, sizeof(extra), &back), HL_EINVAL);
	assert_int_equal(hl_spawn_request_decode(unknown, sizeof(unknown), &back), HL_EINVAL);
	assert_int_equal(hl_spawn_request_decode(extra, 0, &back), HL_ETRUNC);
}

/* ---- the spawner ---- */

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(chmod(path, mode), 0);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/hl-test-spawn.XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s/alarm.env", dir);
	char *script = xasprintf("%s/alarm.sh", dir);
	/* the environment exactly as the spawner passed it */
	char *body = xasprintf("#!/bin/sh\ntr '\\0' '\\n' < /proc/$$/environ > %s.tmp && "
			       "mv %s.tmp %s\n", out, out, out);
	write_file(script, body, 0700);
	char *conf = xasprintf("[Station]\nName = alpha\nAlarmCommand = %s\n", script);
	char *cpath = hl_path_join(dir, "station.conf");
	write_file(cpath, conf, 0600);
	free(cpath);
	free(conf);
	free(body);
	free(script);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	return 0;
}

struct spawner {
	pid_t pid;
	int call, event;
};

static void start(struct spawner *s)
{
	int call[2], ev[2];
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, call), 0);
	assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ev), 0);
	fflush(NULL);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		close(call[0]);
		close(ev[0]);
		hl_spawner_main(dir, "/bin/false", call[1], ev[1]);
	}
	close(call[1]);
	close(ev[1]);
	s->call = call[0];
	s->event = ev[0];
}

/* Sends RQ, returns the reply; *FD the descriptor that came with it. */
static struct hl_spawn_reply ask(struct spawner *s, const struct hl_spawn_request *rq, int *fd)
{
	uint8_t buf[HL_SPAWN_MSG_MAX];
	struct hl_spawn_reply rp;
	int fds[HL_SPAWN_FDS_MAX], nfds;
	int n = hl_spawn_request_encode(rq, buf, sizeof(buf));
	assert_true(n > 0);
	assert_int_equal(hl_spawn_send(s->call, buf, (size_t)n, -1), n);
	ssize_t got = hl_spawn_recv(s->call, buf, sizeof(buf), fds, &nfds);
	assert_true(got > 0);
	assert_int_equal(hl_spawn_reply_decode(buf, (size_t)got, &rp), 0);
	assert_true(nfds <= 1);
	*fd = nfds ? fds[0] : -1;
	return rp;
}

static void test_spawner_runs_only_what_it_may(void **state)
{
	(void)state;
	static struct hl_spawn_request rq;
	struct spawner s;
	int fd;
	start(&s);

	/* a request the decoder refuses: a reply, nothing run */
	uint8_t bad[] = { HL_SPAWN_OP_SPAWN, HL_SPAWN_MAIL, 0, 0, 0, 1, 0, 2, '-', 'd',
			  0, 0, 0, 0, 0, 0, 0, 0 };
	assert_int_equal(send(s.call, bad, sizeof(bad), 0), (ssize_t)sizeof(bad));
	uint8_t buf[HL_SPAWN_MSG_MAX];
	struct hl_spawn_reply rp;
	ssize_t got = recv(s.call, buf, sizeof(buf), 0);
	assert_int_equal(hl_spawn_reply_decode(buf, (size_t)got, &rp), 0);
	assert_int_equal(rp.status, HL_EINVAL);

	/* station.conf, open */
	memset(&rq, 0, sizeof(rq));
	rq.op = HL_SPAWN_OP_CONF;
	rp = ask(&s, &rq, &fd);
	assert_int_equal(rp.status, 0);
	char *text = NULL;
	size_t len;
	assert_true(fd >= 0);
	assert_int_equal(hl_read_fd(fd, 4096, &text, &len), 0);
	assert_non_null(strstr(text, "Name = alpha"));
	free(text);

	/* an alarm that claims another folder: the spawner's own wins */
	memset(&rq, 0, sizeof(rq));
	rq.op = HL_SPAWN_OP_SPAWN;
	rq.kind = HL_SPAWN_ALARM;
	rq.id = 42;
	rq.nenv = 3;
	snprintf(rq.env[0], sizeof(rq.env[0]), "HOTLINE_ALARM=ring");
	snprintf(rq.env[1], sizeof(rq.env[1]), "HOTLINE_DIR=/etc");
	snprintf(rq.env[2], sizeof(rq.env[2]), "HOTLINE_STATION=mallory");
	rp = ask(&s, &rq, &fd);
	assert_int_equal(rp.status, 0);
	assert_true(rp.pid > 0);
	got = recv(s.event, buf, sizeof(buf), 0);
	struct hl_spawn_exit e;
	assert_int_equal(hl_spawn_exit_decode(buf, (size_t)got, &e), 0);
	assert_int_equal(e.id, 42);
	assert_int_equal(e.status, 0);
	assert_int_equal(e.signal, 0);
	assert_int_equal(hl_read_file(out, 65536, &text, &len), 0);
	char *want = xasprintf("HOTLINE_DIR=%s\n", dir);
	assert_non_null(strstr(text, want));
	assert_non_null(strstr(text, "HOTLINE_STATION=alpha\n"));
	assert_non_null(strstr(text, "HOTLINE_ALARM=ring\n"));
	assert_null(strstr(text, "/etc\n"));
	assert_null(strstr(text, "mallory"));
	free(want);
	free(text);

	/* the daemon's end closed: the spawner goes */
	close(s.call);
	close(s.event);
	int st;
	assert_int_equal(waitpid(s.pid, &st, 0), s.pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_roundtrip),
		cmocka_unit_test(test_requests_refused),
		cmocka_unit_test(test_spawner_runs_only_what_it_may),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
