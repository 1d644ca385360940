/* station/control_client.c — one request/response over the control socket
 * (see control_client.h and docs/protocol.md section 6). */
#include "station/control_client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "station/control_proto.h"
#include "util/err.h"
#include "util/mem.h"

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for EVENTS on FD until DEADLINE (monotonic ms). */
static int wait_fd(int fd, short events, int64_t deadline)
{
	for (;;) {
		int64_t left = deadline - mono_ms();
		if (left <= 0)
			return HL_ETIMEOUT;
		struct pollfd pfd = { .fd = fd, .events = events };
		int n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n == 0)
			return HL_ETIMEOUT;
		if (errno != EINTR)
			return -errno;
	}
}

int hl_control_send(const char *dir, json_t *req, int timeout_ms, int *fdout)
{
	int64_t deadline = mono_ms() + timeout_ms;
	struct sockaddr_un sa;
	char *line = NULL;
	size_t len = 0, off = 0;
	int dirfd = -1, fd = -1, ret;

	*fdout = -1;
	dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		ret = -errno;
		goto out;
	}
	ret = hl_control_sockaddr(dirfd, &sa);
	if (ret < 0)
		goto out;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	/* Blocking connect: on a Unix socket it does not wait for the peer
	 * to accept (the backlog takes it). */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		ret = errno == ENOENT || errno == ECONNREFUSED ? HL_ENODAEMON : -errno;
		goto out;
	}
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		ret = -errno;
		goto out;
	}

	char *text = json_dumps(req, JSON_COMPACT);
	if (!text) {
		ret = HL_EINVAL;
		goto out;
	}
	len = strlen(text);
	line = xmalloc(len + 1);
	memcpy(line, text, len);
	line[len++] = '\n';
	free(text);
	while (off < len) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			ret = errno == EPIPE || errno == ECONNRESET ? HL_ENODAEMON : -errno;
			goto out;
		}
		ret = wait_fd(fd, POLLOUT, deadline);
		if (ret < 0)
			goto out;
	}
	*fdout = fd;
	fd = -1;
	ret = 0;
out:
	free(line);
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	return ret;
}

int hl_control_notify(const char *dir, json_t *req, int timeout_ms)
{
	int fd = -1;
	int ret = hl_control_send(dir, req, timeout_ms, &fd);
	if (fd >= 0)
		close(fd);
	return ret;
}

int hl_control_call(const char *dir, json_t *req, int timeout_ms, json_t **resp)
{
	int64_t deadline = mono_ms() + timeout_ms;
	char *buf = NULL;
	size_t off = 0, cap = 4096;
	int fd = -1, ret;

	*resp = NULL;
	if ((ret = hl_control_send(dir, req, timeout_ms, &fd)) < 0)
		return ret;
	/* Most answers are a few bytes: grow towards the cap (plus one byte,
	 * to see an over-long answer) only as needed. */
	buf = xmalloc(cap);
	off = 0;
	for (;;) {
		if (off == cap && cap < HL_CONTROL_MAX_RESPONSE + 1) {
			cap = cap * 4 < HL_CONTROL_MAX_RESPONSE + 1 ? cap * 4 : HL_CONTROL_MAX_RESPONSE + 1;
			buf = xrealloc(buf, cap);
		}
		ssize_t n = recv(fd, buf + off, cap - off, 0);
		if (n > 0) {
			char *nl = memchr(buf + off, '\n', (size_t)n);
			off += (size_t)n;
			if (nl) {
				off = (size_t)(nl - buf);
				break;
			}
			if (off > HL_CONTROL_MAX_RESPONSE) {
				ret = HL_ETOOBIG;
				goto out;
			}
			continue;
		}
		if (n == 0) {
			/* Closed without a full line. */
			ret = off ? HL_ETRUNC : HL_ENODAEMON;
			goto out;
		}
		if (errno != EAGAIN && errno != EINTR) {
			ret = errno == ECONNRESET ? HL_ENODAEMON : -errno;
			goto out;
		}
		ret = wait_fd(fd, POLLIN, deadline);
		if (ret < 0)
			goto out;
	}
	json_error_t jerr;
	*resp = json_loadb(buf, off, JSON_REJECT_DUPLICATES, &jerr);
	if (!*resp || !json_is_object(*resp)) {
		json_decref(*resp);
		*resp = NULL;
		ret = HL_EINVAL;
		goto out;
	}
	ret = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return ret;
}

/* The buffer outlives the call: what follows the line (events) is kept
 * for the next (control_client.h). */
int hl_control_read_line(int fd, uint64_t deadline, json_t **out)
{
	static char buf[HL_CONTROL_MAX_LINE + 1];
	static size_t len;
	*out = NULL;
	for (;;) {
		char *nl = memchr(buf, '\n', len);
		if (nl) {
			size_t n = (size_t)(nl - buf) + 1;
			json_error_t jerr;
			json_t *o = json_loadb(buf, n - 1, 0, &jerr);
			memmove(buf, buf + n, len - n);
			len -= n;
			if (!json_is_object(o)) {
				json_decref(o);
				return -1;
			}
			*out = o;
			return 1;
		}
		uint64_t now = (uint64_t)mono_ms();
		if (now >= deadline)
			return 0;
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int r = poll(&pfd, 1, (int)(deadline - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -1 : 0;
		if (len == sizeof(buf))
			return -1;
		ssize_t got = read(fd, buf + len, sizeof(buf) - len);
		if (got <= 0 && !(got < 0 && (errno == EAGAIN || errno == EINTR)))
			return -1;
		if (got > 0)
			len += (size_t)got;
	}
}

int hl_control_watch(const char *dir)
{
	int fd = -1;
	json_t *req = hl_ctl_request_json(&(struct hl_ctl_request){ .cmd = HL_CTL_WATCH });
	if (hl_control_send(dir, req, 1000, &fd) < 0)
		fd = -1;
	json_decref(req);
	return fd;
}

void hl_control_poke(const char *dir)
{
	/* The daemon also notices new work by watching the store
	 * (PRAGMA data_version); the poke only saves it the wait, so any
	 * failure (no daemon) is fine, and its answer is not awaited: the
	 * request is in the daemon's socket once sent. */
	json_t *req = hl_ctl_request_json(&(struct hl_ctl_request){ .cmd = HL_CTL_POKE });
	(void)hl_control_notify(dir, req, 1000);
	json_decref(req);
}
