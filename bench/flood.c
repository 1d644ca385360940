/* bench/flood.c — bench_flood: a handshake flood against one hotline
 * daemon, for the integration tests of docs/protocol.md section 5
 * (tests/integration/test_handshake_flood.py) and for measuring what an
 * unauthenticated message 1 costs the daemon.
 *
 *   bench_flood HOST:PORT SECONDS CONCURRENCY FRAMEFILE SOURCE...
 *       keeps CONCURRENCY connections going for SECONDS: each connects from
 *       one of the IPv4 SOURCE addresses in turn (127.0.0.2, say: every
 *       loopback address is this machine's), sends one of the frames of
 *       FRAMEFILE in turn, and waits until the daemon closes the connection
 *       (or half a second passes), so that the daemon has done whatever work
 *       the frame asks; then it closes and connects again.  FRAMEFILE holds
 *       frames as on the wire (a 2-byte big-endian length, then that many
 *       bytes), back to back.  The flood does no cryptography: the frames
 *       are made once (valid messages 1 of unpinned keys, replays, random
 *       bytes) by whoever wrote the file.  Prints "CONNECTIONS ANSWERED
 *       PER_SECOND": connections made, how many got any byte back, and the
 *       rate.  SIGTERM ends the flood early (and still prints).
 *
 * Closing only after the daemon did keeps this side's ports out of
 * TIME_WAIT (the daemon closes first), so the flood can go on for as long as
 * asked from a few source addresses.  Exit 1 on a failure (one line on
 * stderr), 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/config.h"
#include "util/mem.h"
#include "util/timefmt.h"

#define MAX_FRAMES 1024
#define MAX_SOURCES 256
#define HOLD_MS 500            /* give up waiting for the daemon after this */

struct fconn {
	int fd;
	bool sent;
	bool answered;
	uint64_t started_ms;
};

struct flood {
	int ep;
	struct sockaddr_in target;
	struct in_addr sources[MAX_SOURCES];
	size_t nsources, next_source;
	uint8_t *frames[MAX_FRAMES];
	size_t frame_len[MAX_FRAMES];
	size_t nframes, next_frame;
	unsigned long made, answered;
};

static volatile sig_atomic_t stopping;

static void on_term(int sig)
{
	(void)sig;
	stopping = 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_flood HOST:PORT SECONDS CONCURRENCY FRAMEFILE SOURCE...\n");
	return 2;
}

static int die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_flood: %s: %s\n", what, detail);
	return 1;
}

static int load_frames(struct flood *f, const char *path)
{
	FILE *in = fopen(path, "rb");
	uint8_t hdr[2];
	if (!in)
		return die(path, strerror(errno));
	while (f->nframes < MAX_FRAMES && fread(hdr, 1, 2, in) == 2) {
		size_t n = (size_t)hdr[0] << 8 | hdr[1];
		uint8_t *fr = xmalloc(n + 2);
		memcpy(fr, hdr, 2);
		if (fread(fr + 2, 1, n, in) != n) {
			free(fr);
			fclose(in);
			return die(path, "a frame runs past the end of the file");
		}
		f->frames[f->nframes] = fr;
		f->frame_len[f->nframes++] = n + 2;
	}
	fclose(in);
	return f->nframes ? 0 : die(path, "no frames");
}

static void fconn_close(struct fconn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int fconn_start(struct flood *f, struct fconn *c)
{
	struct sockaddr_in src = { .sin_family = AF_INET };
	int one = 1;
	memset(c, 0, sizeof(*c));
	c->started_ms = hl_mono_ms();
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return die("socket", strerror(errno));
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(c->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	src.sin_addr = f->sources[f->next_source++ % f->nsources];
	if (bind(c->fd, (struct sockaddr *)&src, sizeof(src)) < 0) {
		/* Out of ports for this source for now: try again later. */
		fconn_close(c);
		return 0;
	}
	if (connect(c->fd, (struct sockaddr *)&f->target, sizeof(f->target)) < 0 &&
	    errno != EINPROGRESS) {
		fconn_close(c);
		return 0;
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(f->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		return die("epoll_ctl", strerror(errno));
	f->made++;
	return 0;
}

static void fconn_event(struct flood *f, struct fconn *c, uint32_t events)
{
	static uint8_t buf[4096];
	if (!c->sent && (events & EPOLLOUT)) {
		size_t i = f->next_frame++ % f->nframes;
		c->sent = true;
		if (send(c->fd, f->frames[i], f->frame_len[i], MSG_NOSIGNAL) < 0) {
			fconn_close(c);
			return;
		}
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		epoll_ctl(f->ep, EPOLL_CTL_MOD, c->fd, &ev);
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0 && !c->answered) {
			c->answered = true;
			f->answered++;
		}
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			fconn_close(c);
	}
}

static int run(struct flood *f, double seconds, size_t conc)
{
	struct fconn *conns = xcalloc(conc, sizeof(*conns));
	struct epoll_event evs[256];
	uint64_t t0 = hl_mono_ms(), end = t0 + (uint64_t)(seconds * 1000);
	int ret = 1;

	for (size_t i = 0; i < conc; i++)
		conns[i].fd = -1;
	while (!stopping && hl_mono_ms() < end) {
		uint64_t now = hl_mono_ms();
		for (size_t i = 0; i < conc; i++) {
			struct fconn *c = &conns[i];
			if (c->fd >= 0 && now - c->started_ms > HOLD_MS)
				fconn_close(c);
			if (c->fd < 0 && fconn_start(f, c))
				goto out;
		}
		int n = epoll_wait(f->ep, evs, 256, 10);
		if (n < 0 && errno != EINTR) {
			die("epoll_wait", strerror(errno));
			goto out;
		}
		for (int i = 0; i < n; i++)
			fconn_event(f, evs[i].data.ptr, evs[i].events);
	}
	double elapsed = (double)(hl_mono_ms() - t0) / 1000.0;
	printf("%lu %lu %.1f\n", f->made, f->answered, (double)f->made / elapsed);
	ret = 0;
out:
	for (size_t i = 0; i < conc; i++)
		fconn_close(&conns[i]);
	free(conns);
	return ret;
}

int main(int argc, char **argv)
{
	static struct flood f;
	char host[HL_ADDR_MAX + 1];
	uint16_t port;

	if (argc < 6)
		return usage();
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_term);
	double secs = strtod(argv[2], NULL);
	long conc = strtol(argv[3], NULL, 10);
	if (secs <= 0 || conc < 1 || conc > 4096)
		return usage();
	if (hl_addr_split(argv[1], host, sizeof(host), &port) < 0)
		return die("bad address (want IPv4:PORT)", argv[1]);
	f.target.sin_family = AF_INET;
	f.target.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &f.target.sin_addr) != 1)
		return die("bad address (want IPv4:PORT)", argv[1]);
	for (int i = 5; i < argc && f.nsources < MAX_SOURCES; i++)
		if (inet_pton(AF_INET, argv[i], &f.sources[f.nsources++]) != 1)
			return die("bad source address", argv[i]);
	if (load_frames(&f, argv[4]))
		return 1;
	f.ep = epoll_create1(EPOLL_CLOEXEC);
	if (f.ep < 0)
		return die("epoll_create1", strerror(errno));
	int ret = run(&f, secs, (size_t)conc);
	close(f.ep);
	for (size_t i = 0; i < f.nframes; i++)
		free(f.frames[i]);
	return ret;
}
