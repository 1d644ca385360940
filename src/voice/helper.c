/* voice/helper.c — running hotline-voice; see helper.h. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/mem.h"
#include "util/progpath.h"
#include "voice/helper.h"

#define MAX_ARGS 16

char *hl_voice_helper_path(void)
{
	/* the lookup hotline-mail uses: beside this program, installed or not */
	return hl_helper_path("hotline-voice", "HOTLINE_VOICE");
}

pid_t hl_voice_helper_spawn(const char *const *args, int *in_fd, int *out_fd)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 };
	char *path = hl_voice_helper_path();
	const char *argv[MAX_ARGS + 2] = { path };
	size_t n = 0;
	for (; args[n] && n < MAX_ARGS; n++)
		argv[n + 1] = args[n];
	argv[n + 1] = NULL;
	if ((in_fd && pipe2(pin, O_CLOEXEC) < 0) || (out_fd && pipe2(pout, O_CLOEXEC) < 0)) {
		free(path);
		return -1;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (getppid() != parent)
			_exit(127);   /* we died before the line above */
		signal(SIGINT, SIG_DFL);
		if (in_fd)
			dup2(pin[0], STDIN_FILENO);
		if (out_fd)
			dup2(pout[1], STDOUT_FILENO);
		execv(path, (char *const *)argv);
		fprintf(stderr, "hotline: cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	free(path);
	if (in_fd) {
		close(pin[0]);
		*in_fd = pid > 0 ? pin[1] : (close(pin[1]), -1);
	}
	if (out_fd) {
		close(pout[1]);
		*out_fd = pid > 0 ? pout[0] : (close(pout[0]), -1);
	}
	return pid;
}

int hl_voice_helper_run(const char *const *args, bool hold_int)
{
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	if (hold_int)
		sigaction(SIGINT, &ign, &old);
	pid_t pid = hl_voice_helper_spawn(args, NULL, NULL);
	int status = 0, ret = -1;
	if (pid > 0) {
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (WIFEXITED(status))
			ret = WEXITSTATUS(status);
	}
	if (hold_int)
		sigaction(SIGINT, &old, NULL);
	return ret;
}

int hl_pcm_pump(int fd, hl_pcm_sink sink, void *arg)
{
	int16_t pcm[4096];
	size_t have = 0;
	for (;;) {
		ssize_t n = read(fd, (uint8_t *)pcm + have, sizeof(pcm) - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		have += (size_t)n;
		size_t frames = have / 2;
		int r = frames ? sink(arg, pcm, frames) : 0;
		if (r)
			return r;
		memmove(pcm, (uint8_t *)pcm + frames * 2, have - frames * 2);
		have -= frames * 2;
	}
}
