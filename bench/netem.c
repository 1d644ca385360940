/* bench/netem.c — bench_netem: an impairing bridge between two network
 * namespaces, for `make bench`'s slow-link figures (this kernel has no
 * `tc netem`), and a plain TCP transfer to compare hotline with.
 *
 *   bench_netem bridge NS_A NS_B [OPTIONS]
 *       Makes a TUN device "hlnet0" in each of the named network namespaces
 *       (as `ip netns add` made them: /run/netns/NAME), prints "ready" once
 *       both exist, and from then on moves every IP packet that one side
 *       sends to the other through the path model of bench/impair/impair.h,
 *       the same model each way, until SIGTERM or SIGINT; then prints what
 *       happened to the packets (one line per direction) on stderr.  The
 *       caller gives the devices their addresses and brings them up
 *       (`ip -n NS_A addr add 10.x.0.1 peer 10.x.0.2 dev hlnet0`, ...).
 *       OPTIONS: --delay MS --jitter MS --loss PCT --dup PCT --reorder PCT
 *       --reorder-gap MS --rate KBIT (kilobits a second; 0: none)
 *       --queue MS (the bottleneck's buffer, in time at RATE) --seed N.
 *   bench_netem tcp-sink HOST PORT
 *       Accepts one connection, reads until the sender shuts its side,
 *       answers one byte and prints the bytes it read.
 *   bench_netem tcp-send HOST PORT BYTES
 *       Connects, sends BYTES bytes, shuts its sending side, waits for the
 *       sink's byte and prints the seconds from the connect to that byte:
 *       the plain-TCP time for a transfer, acknowledged end to end.
 *
 * Why a TUN bridge and not a TCP relay: loss, duplication and reordering
 * only mean something to the TCP of the two stations if they happen to
 * their IP packets, and the stations' kernels then see the path's real
 * round-trip time and rate (what hotline's flow control measures).
 *
 * Exit 1 on a failure (one line on stderr), 2 on bad usage.  Needs root
 * (CAP_NET_ADMIN and CAP_SYS_ADMIN: setns, TUNSETIFF). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "impair/impair.h"
#include "util/mem.h"

#define PKT_MAX 65536
#define HELD_BYTES_MAX (256u << 20)   /* packets in flight in the bridge, at most */

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_netem bridge NS_A NS_B [--delay MS] [--jitter MS] [--loss PCT]\n"
			"           [--dup PCT] [--reorder PCT] [--reorder-gap MS] [--rate KBIT]\n"
			"           [--queue MS] [--seed N]\n"
			"       bench_netem tcp-sink HOST PORT\n"
			"       bench_netem tcp-send HOST PORT BYTES\n");
	return 2;
}

/* ---- the bridge ---- */

/* A packet on its way: a min-heap by (release time, order of arrival). */
struct pkt {
	uint64_t at, order;
	int to;              /* index of the device it goes out of */
	size_t len;
	uint8_t *data;
};

struct heap {
	struct pkt *v;
	size_t n, cap;
	uint64_t bytes;
};

static bool pkt_less(const struct pkt *a, const struct pkt *b)
{
	return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void heap_push(struct heap *h, struct pkt p)
{
	if (h->n == h->cap) {
		h->cap = h->cap ? 2 * h->cap : 1024;
		h->v = xrealloc(h->v, h->cap * sizeof(*h->v));
	}
	size_t i = h->n++;
	while (i > 0 && pkt_less(&p, &h->v[(i - 1) / 2])) {
		h->v[i] = h->v[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	h->v[i] = p;
	h->bytes += p.len;
}

static struct pkt heap_pop(struct heap *h)
{
	struct pkt top = h->v[0], last = h->v[--h->n];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= h->n)
			break;
		if (c + 1 < h->n && pkt_less(&h->v[c + 1], &h->v[c]))
			c++;
		if (!pkt_less(&h->v[c], &last))
			break;
		h->v[i] = h->v[c];
		i = c;
	}
	if (h->n)
		h->v[i] = last;
	h->bytes -= top.len;
	return top;
}

/* A TUN device "hlnet0" in the namespace /run/netns/NS. */
static int tun_in(const char *ns, int home)
{
	char path[512];
	snprintf(path, sizeof(path), "/run/netns/%s", ns);
	int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0) {
		fprintf(stderr, "bench_netem: %s: %s\n", path, strerror(errno));
		return -1;
	}
	int fd = -1;
	if (setns(nsfd, CLONE_NEWNET) < 0) {
		fprintf(stderr, "bench_netem: setns %s: %s\n", ns, strerror(errno));
		goto out;
	}
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "hlnet0");
	if (fd < 0 || ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "bench_netem: a TUN device in %s: %s\n", ns, strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	if (setns(home, CLONE_NEWNET) < 0) {
		fprintf(stderr, "bench_netem: setns back: %s\n", strerror(errno));
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
out:
	close(nsfd);
	return fd;
}

static int parse_params(int argc, char **argv, struct hl_impair_params *p)
{
	memset(p, 0, sizeof(*p));
	double queue_ms = 0;
	p->seed = 1;
	for (int i = 0; i < argc; i += 2) {
		if (i + 1 >= argc)
			return -1;
		double v = strtod(argv[i + 1], NULL);
		if (v < 0)
			return -1;
		const char *o = argv[i];
		if (strcmp(o, "--delay") == 0)
			p->delay_ms = v;
		else if (strcmp(o, "--jitter") == 0)
			p->jitter_ms = v;
		else if (strcmp(o, "--loss") == 0)
			p->loss = v / 100.0;
		else if (strcmp(o, "--dup") == 0)
			p->dup = v / 100.0;
		else if (strcmp(o, "--reorder") == 0)
			p->reorder = v / 100.0;
		else if (strcmp(o, "--reorder-gap") == 0)
			p->reorder_gap_ms = v;
		else if (strcmp(o, "--rate") == 0)
			p->rate = v * 1000.0 / 8.0;
		else if (strcmp(o, "--queue") == 0)
			queue_ms = v;
		else if (strcmp(o, "--seed") == 0)
			p->seed = strtoull(argv[i + 1], NULL, 10);
		else
			return -1;
	}
	if (p->loss > 1 || p->dup > 1 || p->reorder > 1)
		return -1;
	if (queue_ms > 0 && p->rate > 0)
		p->queue = (uint64_t)(p->rate * queue_ms / 1000.0);
	return 0;
}

static void print_stats(const char *dir, const struct hl_impair_stats *s)
{
	fprintf(stderr, "bench_netem: %s: %llu packets in (%llu bytes), %llu out, %llu lost, "
		"%llu duplicated, %llu dropped by the full queue, %llu reordered\n", dir,
		(unsigned long long)s->in, (unsigned long long)s->bytes_in,
		(unsigned long long)s->out, (unsigned long long)s->lost,
		(unsigned long long)s->dup, (unsigned long long)s->queue_drops,
		(unsigned long long)s->reordered);
}

/* Reads every packet device FROM has, each through model IM, into H. */
static void take_packets(int fd, int to, struct hl_impair *im, struct heap *h, uint64_t *order,
			 uint8_t *buf, uint64_t *overflow)
{
	for (;;) {
		ssize_t n = read(fd, buf, PKT_MAX);
		if (n <= 0)
			return;
		uint64_t at[2], now = now_us();
		unsigned copies = hl_impair_packet(im, now, (size_t)n, at);
		for (unsigned c = 0; c < copies; c++) {
			if (h->bytes + (uint64_t)n > HELD_BYTES_MAX) {
				(*overflow)++;
				continue;
			}
			struct pkt p = { .at = at[c], .order = (*order)++, .to = to, .len = (size_t)n,
					 .data = xmalloc((size_t)n) };
			memcpy(p.data, buf, (size_t)n);
			heap_push(h, p);
		}
	}
}

static int do_bridge(const char *ns_a, const char *ns_b, int argc, char **argv)
{
	struct hl_impair_params params;
	if (parse_params(argc, argv, &params) < 0)
		return usage();
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (home < 0) {
		fprintf(stderr, "bench_netem: /proc/self/ns/net: %s\n", strerror(errno));
		return 1;
	}
	int fd[2] = { tun_in(ns_a, home), -1 };
	if (fd[0] >= 0)
		fd[1] = tun_in(ns_b, home);
	close(home);
	if (fd[0] < 0 || fd[1] < 0)
		return 1;
	struct hl_impair im[2];   /* im[0]: A to B, im[1]: B to A */
	hl_impair_init(&im[0], &params);
	params.seed ^= 0x5bd1e995u;   /* the other direction draws its own fates */
	hl_impair_init(&im[1], &params);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	printf("ready\n");
	fflush(stdout);

	struct heap h = { 0 };
	uint64_t order = 0, overflow = 0, write_errors = 0;
	uint8_t *buf = xmalloc(PKT_MAX);
	while (!stopping) {
		uint64_t now = now_us();
		while (h.n && h.v[0].at <= now) {
			struct pkt p = heap_pop(&h);
			if (write(fd[p.to], p.data, p.len) != (ssize_t)p.len)
				write_errors++;
			free(p.data);
		}
		struct timespec ts = { 1, 0 }, *tsp = &ts;
		if (h.n) {
			uint64_t wait = h.v[0].at > now ? h.v[0].at - now : 0;
			ts.tv_sec = (time_t)(wait / 1000000u);
			ts.tv_nsec = (long)(wait % 1000000u) * 1000;
		}
		struct pollfd pfd[2] = { { fd[0], POLLIN, 0 }, { fd[1], POLLIN, 0 } };
		int r = ppoll(pfd, 2, tsp, NULL);
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "bench_netem: poll: %s\n", strerror(errno));
			break;
		}
		if (r > 0 && (pfd[0].revents & POLLIN))
			take_packets(fd[0], 1, &im[0], &h, &order, buf, &overflow);
		if (r > 0 && (pfd[1].revents & POLLIN))
			take_packets(fd[1], 0, &im[1], &h, &order, buf, &overflow);
	}
	print_stats("A to B", &im[0].st);
	print_stats("B to A", &im[1].st);
	if (overflow || write_errors)
		fprintf(stderr, "bench_netem: %llu packets over the bridge's memory, %llu writes failed\n",
			(unsigned long long)overflow, (unsigned long long)write_errors);
	while (h.n)
		free(heap_pop(&h).data);
	free(h.v);
	free(buf);
	close(fd[0]);
	close(fd[1]);
	return 0;
}

/* ---- plain TCP ---- */

static int addr_of(const char *host, const char *port, struct sockaddr_in *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_port = htons((uint16_t)strtoul(port, NULL, 10));
	if (inet_pton(AF_INET, host, &sa->sin_addr) != 1) {
		fprintf(stderr, "bench_netem: '%s' is not an IPv4 address\n", host);
		return -1;
	}
	return 0;
}

static int do_sink(const char *host, const char *port)
{
	struct sockaddr_in sa;
	if (addr_of(host, port, &sa) < 0)
		return 2;
	int one = 1, ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ls < 0 || bind(ls, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(ls, 1) < 0) {
		fprintf(stderr, "bench_netem: listen on %s:%s: %s\n", host, port, strerror(errno));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	int s = accept(ls, NULL, NULL);
	if (s < 0) {
		fprintf(stderr, "bench_netem: accept: %s\n", strerror(errno));
		return 1;
	}
	uint8_t *buf = xmalloc(1 << 20);
	uint64_t total = 0;
	ssize_t n;
	while ((n = read(s, buf, 1 << 20)) > 0)
		total += (uint64_t)n;
	if (n < 0 || write(s, "k", 1) != 1) {
		fprintf(stderr, "bench_netem: the sink's connection: %s\n", strerror(errno));
		return 1;
	}
	printf("%llu\n", (unsigned long long)total);
	free(buf);
	close(s);
	close(ls);
	return 0;
}

static int do_send(const char *host, const char *port, const char *bytes_arg)
{
	struct sockaddr_in sa;
	if (addr_of(host, port, &sa) < 0)
		return 2;
	uint64_t left = strtoull(bytes_arg, NULL, 10);
	uint8_t *buf = xmalloc(1 << 20);
	for (size_t i = 0; i < (1u << 20); i++)
		buf[i] = (uint8_t)(i * 2654435761u >> 24);
	uint64_t t0 = now_us();
	int s = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "bench_netem: connect to %s:%s: %s\n", host, port, strerror(errno));
		return 1;
	}
	while (left > 0) {
		ssize_t n = write(s, buf, left < (1u << 20) ? (size_t)left : (1u << 20));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "bench_netem: send: %s\n", strerror(errno));
			return 1;
		}
		left -= (uint64_t)n;
	}
	shutdown(s, SHUT_WR);
	char k;
	if (read(s, &k, 1) != 1) {
		fprintf(stderr, "bench_netem: no answer from the sink\n");
		return 1;
	}
	printf("%.3f\n", (double)(now_us() - t0) / 1e6);
	free(buf);
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && strcmp(argv[1], "bridge") == 0)
		return do_bridge(argv[2], argv[3], argc - 4, argv + 4);
	if (argc == 4 && strcmp(argv[1], "tcp-sink") == 0)
		return do_sink(argv[2], argv[3]);
	if (argc == 5 && strcmp(argv[1], "tcp-send") == 0)
		return do_send(argv[2], argv[3], argv[4]);
	return usage();
}
