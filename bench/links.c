/* bench/links.c — bench_links: many authenticated sessions against one
 * hotline daemon, for `make bench` (handshakes.hotline and
 * memory.per_idle_link in docs/PERFORMANCE.md).
 *
 *   bench_links keygen N PREFIX KEYFILE
 *       makes N stations' keys: prints N [Peer] sections (Name = PREFIX0000...,
 *       NoiseKey, SigningKey) on stdout, to be appended to the daemon's
 *       station.conf, and writes the N X25519 private keys (hex, one a line)
 *       to KEYFILE (created 0600, never overwritten).  Throwaway keys for a
 *       benchmark on 127.0.0.1; the Ed25519 halves are not kept.
 *   bench_links idle HOST:PORT NOISEKEY KEYFILE N PID [SETTLE_SECONDS]
 *       reads the daemon PID's VmRSS, opens N sessions (one per key), waits
 *       until every one is confirmed both ways (the daemon's HELLO came) and
 *       SETTLE_SECONDS more (default 2; pings are answered meanwhile), reads
 *       VmRSS again, checks that all N are still open, and prints
 *       "BEFORE_KIB AFTER_KIB N PER_SESSION_KIB".
 *   bench_links handshakes HOST:PORT NOISEKEY KEYFILE SECONDS CONCURRENCY
 *       keeps CONCURRENCY connections handshaking for SECONDS: each dials,
 *       runs the IK handshake, sends its HELLO, and counts once the
 *       daemon's HELLO has arrived (key confirmation), then closes with
 *       CLOSE (shutdown) and dials again with the next key.  Prints
 *       "PER_SECOND COMPLETED FAILED".
 *
 * The client is hotline's own session state machine (session/session.h) on
 * non-blocking sockets and epoll, so it speaks exactly what the daemon
 * speaks.  Application records the daemon sends (ACK, RESUME) are
 * ignored.  Exit 1 on a failure (one line on stderr), 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/config.h"
#include "session/session.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

#define MAX_INFLIGHT_HANDSHAKES 32   /* below the daemon's 64 unauthenticated */
#define TICK_MS 100

struct conn {
	int fd;
	hl_session *session;
	size_t key;
	bool connecting;
	bool confirmed;
	bool dead;
	bool want_out;         /* EPOLLOUT armed */
	uint64_t started_ms;
};

struct bench {
	int ep;
	struct sockaddr_in addr;
	uint8_t server_key[32];
	hl_signer **keys;      /* one signer per key of KEYFILE */
	struct hl_stamp *stamps; /* the last message 1 timestamp sent with each key */
	size_t nkeys;
	size_t next_key;
	struct hl_session_params params;
	unsigned long completed, failed;
	char last_error[320];
};

static int usage(void)
{
	fprintf(stderr,
		"usage: bench_links keygen N PREFIX KEYFILE\n"
		"       bench_links idle HOST:PORT NOISEKEY KEYFILE N PID [SETTLE_SECONDS]\n"
		"       bench_links handshakes HOST:PORT NOISEKEY KEYFILE SECONDS CONCURRENCY\n");
	return 2;
}

static int die(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("bench_links: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

/* ---- keygen ---- */

static int keygen(long n, const char *prefix, const char *keyfile)
{
	int fd = open(keyfile, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return die("cannot create '%s': %s", keyfile, strerror(errno));
	FILE *kf = fdopen(fd, "w");
	if (!kf) {
		close(fd);
		return die("cannot open '%s': %s", keyfile, strerror(errno));
	}
	for (long i = 0; i < n; i++) {
		uint8_t priv[32], pub[32], spk[crypto_sign_PUBLICKEYBYTES], ssk[crypto_sign_SECRETKEYBYTES];
		char b64n[HL_KEY_B64_LEN], b64s[HL_KEY_B64_LEN], hex[65];
		randombytes_buf(priv, sizeof(priv));
		crypto_scalarmult_base(pub, priv);
		crypto_sign_keypair(spk, ssk);
		sodium_memzero(ssk, sizeof(ssk));
		hl_b64_key(pub, b64n);
		hl_b64_key(spk, b64s);
		hl_hex(priv, sizeof(priv), hex);
		printf("\n[Peer]\nName = %s%04ld\nNoiseKey = %s\nSigningKey = %s\n", prefix, i, b64n, b64s);
		fprintf(kf, "%s\n", hex);
		sodium_memzero(priv, sizeof(priv));
		sodium_memzero(hex, sizeof(hex));
	}
	if (fclose(kf) != 0)
		return die("writing '%s': %s", keyfile, strerror(errno));
	return 0;
}

static int load_keys(struct bench *b, const char *keyfile)
{
	FILE *f = fopen(keyfile, "r");
	char line[128];
	size_t cap = 0;
	if (!f)
		return die("cannot open '%s': %s", keyfile, strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		size_t binlen = 0;
		uint8_t key[32];
		if (b->nkeys == cap) {
			cap = cap ? cap * 2 : 1024;
			b->keys = xrealloc(b->keys, cap * sizeof(*b->keys));
		}
		if (sodium_hex2bin(key, 32, line, strlen(line), "\n", &binlen, NULL) != 0 ||
		    binlen != 32) {
			fclose(f);
			return die("%s: line %zu is not a 64-digit hex key", keyfile, b->nkeys + 1);
		}
		/* The bench's throwaway keys are raw bytes, so it makes its
		 * signers as the tests do; a station loads identity.key. */
		int ret = hl_signer_from_raw_for_tests(&b->keys[b->nkeys], key, NULL);
		sodium_memzero(key, sizeof(key));
		if (ret < 0) {
			fclose(f);
			return die("%s: line %zu is not a usable X25519 key", keyfile, b->nkeys + 1);
		}
		b->nkeys++;
	}
	fclose(f);
	if (b->nkeys == 0)
		return die("%s holds no keys", keyfile);
	b->stamps = xcalloc(b->nkeys, sizeof(*b->stamps));
	return 0;
}

static void free_keys(struct bench *b)
{
	for (size_t i = 0; i < b->nkeys; i++)
		hl_signer_free(b->keys[i]);
	free(b->keys);
}

static int setup(struct bench *b, const char *addr, const char *noisekey, const char *keyfile)
{
	char host[HL_ADDR_MAX + 1];
	uint16_t port;
	memset(b, 0, sizeof(*b));
	if (hl_addr_split(addr, host, sizeof(host), &port) < 0)
		return die("bad address '%s' (want IPv4:PORT)", addr);
	b->addr.sin_family = AF_INET;
	b->addr.sin_port = htons(port);
	if (inet_pton(AF_INET, host, &b->addr.sin_addr) != 1)
		return die("bad address '%s' (want IPv4:PORT)", addr);
	if (hl_b64_key_parse(noisekey, strlen(noisekey), b->server_key) < 0)
		return die("bad NoiseKey '%s'", noisekey);
	b->params = (struct hl_session_params){ .keepalive_ms = 25000, .keepalive_timeout_ms = 75000,
					     .handshake_timeout_ms = 10000, .max_age_ms = 0 };
	b->ep = epoll_create1(EPOLL_CLOEXEC);
	if (b->ep < 0)
		return die("epoll_create1: %s", strerror(errno));
	if (load_keys(b, keyfile))
		return 1;
	return 0;
}

/* ---- connections ---- */

static void on_confirmed(void *user, hl_session *session)
{
	(void)session;
	((struct conn *)user)->confirmed = true;
}

static void on_closed(void *user, hl_session *session)
{
	(void)session;
	((struct conn *)user)->dead = true;
}

static const struct hl_session_ops client_ops = {
	.on_confirmed = on_confirmed,
	.on_closed = on_closed,
};

static void conn_fail(struct bench *b, struct conn *c, const char *what)
{
	if (!c->dead && c->session && hl_session_state(c->session) == HL_SESSION_CLOSED)
		what = hl_session_error_text(c->session);
	snprintf(b->last_error, sizeof(b->last_error), "%s", what);
	c->dead = true;
}

static int conn_start(struct bench *b, struct conn *c)
{
	memset(c, 0, sizeof(*c));
	c->key = b->next_key++ % b->nkeys;
	c->started_ms = hl_mono_ms();
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return die("socket: %s", strerror(errno));
	int one = 1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (struct sockaddr *)&b->addr, sizeof(b->addr)) < 0 && errno != EINPROGRESS) {
		int e = errno;
		close(c->fd);
		c->fd = -1;
		return die("connect: %s", strerror(e));
	}
	c->connecting = true;
	struct hl_session_params params = b->params;
	struct hl_stamp stamp;
	/* A timestamped message 1, as a station sends (docs/protocol.md 2.1). */
	hl_stamp_next(&b->stamps[c->key], hl_wall_ms() * 1000000u, &stamp);
	params.msg1_stamp = &stamp;
	int ret = hl_session_new(&c->session, HL_SESSION_INITIATOR, b->keys[c->key], b->server_key,
			      &params, &client_ops, c, c->started_ms);
	if (ret < 0) {
		close(c->fd);
		c->fd = -1;
		return die("hl_session_new: %s", hl_strerror(ret));
	}
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
	c->want_out = true;
	if (epoll_ctl(b->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		return die("epoll_ctl: %s", strerror(errno));
	return 0;
}

static void conn_stop(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);   /* also leaves the epoll set */
	hl_session_free(c->session);
	c->fd = -1;
	c->session = NULL;
}

/* Writes what the session queued; arms EPOLLOUT while some is left. */
static void conn_flush(struct bench *b, struct conn *c)
{
	const uint8_t *p;
	size_t n;
	if (c->connecting || c->fd < 0)
		return;
	while ((n = hl_session_output(c->session, &p)) > 0) {
		ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w < 0) {
			conn_fail(b, c, strerror(errno));
			return;
		}
		hl_session_output_taken(c->session, (size_t)w);
		hl_session_output_done(c->session, (size_t)w);
	}
	bool want = n > 0;
	if (want != c->want_out) {
		struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };
		epoll_ctl(b->ep, EPOLL_CTL_MOD, c->fd, &ev);
		c->want_out = want;
	}
}

static void conn_event(struct bench *b, struct conn *c, uint32_t events)
{
	static uint8_t buf[65536];
	if (c->connecting && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) {
		int err = 0;
		socklen_t len = sizeof(err);
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			conn_fail(b, c, strerror(err));
			return;
		}
		c->connecting = false;
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		for (;;) {
			ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
				break;
			if (n <= 0) {
				conn_fail(b, c, n == 0 ? "the daemon closed the connection" : strerror(errno));
				return;
			}
			if (hl_session_recv(c->session, buf, (size_t)n, hl_mono_ms()) < 0 || c->dead) {
				conn_fail(b, c, hl_session_error_text(c->session));
				return;
			}
		}
	}
	conn_flush(b, c);
}

static void tick_all(struct bench *b, struct conn *conns, size_t n)
{
	uint64_t now = hl_mono_ms();
	for (size_t i = 0; i < n; i++) {
		struct conn *c = &conns[i];
		if (c->fd < 0 || c->dead)
			continue;
		if (now >= hl_session_deadline(c->session)) {
			hl_session_tick(c->session, now);
			if (c->dead)
				conn_fail(b, c, hl_session_error_text(c->session));
			else
				conn_flush(b, c);
		}
	}
}

static int poll_once(struct bench *b, int timeout_ms)
{
	struct epoll_event evs[256];
	int n = epoll_wait(b->ep, evs, 256, timeout_ms);
	if (n < 0 && errno != EINTR)
		return die("epoll_wait: %s", strerror(errno));
	for (int i = 0; i < n; i++)
		conn_event(b, evs[i].data.ptr, evs[i].events);
	return 0;
}

/* ---- idle: resident memory per session ---- */

static long vmrss_kib(long pid)
{
	char path[64], line[256];
	long kib = -1;
	snprintf(path, sizeof(path), "/proc/%ld/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static int idle(struct bench *b, size_t n, long pid, double settle)
{
	struct conn *conns = xcalloc(n, sizeof(*conns));
	size_t started = 0, confirmed = 0;
	uint64_t next_tick = 0, deadline = hl_mono_ms() + 120000;
	int ret = 1;

	for (size_t i = 0; i < n; i++)
		conns[i].fd = -1;
	if (n > b->nkeys) {
		die("%zu sessions need %zu keys; the key file has %zu", n, n, b->nkeys);
		goto out;
	}
	long before = vmrss_kib(pid);
	if (before < 0) {
		die("cannot read the VmRSS of process %ld", pid);
		goto out;
	}
	/* Open sessions, at most MAX_INFLIGHT_HANDSHAKES handshaking at once. */
	while (confirmed < n) {
		while (started < n && started - confirmed < MAX_INFLIGHT_HANDSHAKES) {
			if (conn_start(b, &conns[started]))
				goto out;
			started++;
		}
		if (poll_once(b, TICK_MS))
			goto out;
		confirmed = 0;
		for (size_t i = 0; i < started; i++) {
			if (conns[i].dead) {
				die("session %zu failed: %s", i, b->last_error);
				goto out;
			}
			confirmed += conns[i].confirmed;
		}
		if (hl_mono_ms() >= next_tick) {
			tick_all(b, conns, started);
			next_tick = hl_mono_ms() + TICK_MS;
		}
		if (hl_mono_ms() > deadline) {
			die("only %zu of %zu sessions confirmed after 120 s", confirmed, n);
			goto out;
		}
	}
	uint64_t settle_end = hl_mono_ms() + (uint64_t)(settle * 1000);
	while (hl_mono_ms() < settle_end) {
		if (poll_once(b, TICK_MS))
			goto out;
		tick_all(b, conns, n);
	}
	long after = vmrss_kib(pid);
	for (size_t i = 0; i < n; i++) {
		if (conns[i].dead) {
			die("session %zu died while idle: %s", i, b->last_error);
			goto out;
		}
	}
	if (after < 0) {
		die("cannot read the VmRSS of process %ld (did it exit?)", pid);
		goto out;
	}
	printf("%ld %ld %zu %.1f\n", before, after, n, (double)(after - before) / (double)n);
	ret = 0;
out:
	for (size_t i = 0; i < n; i++) {
		if (conns[i].session && !conns[i].dead) {
			hl_session_close(conns[i].session, 1, "benchmark over");
			conn_flush(b, &conns[i]);
		}
		conn_stop(&conns[i]);
	}
	free(conns);
	return ret;
}

/* ---- handshakes per second ---- */

static int handshakes(struct bench *b, double seconds, size_t conc)
{
	struct conn *conns = xcalloc(conc, sizeof(*conns));
	int ret = 1;
	for (size_t i = 0; i < conc; i++)
		conns[i].fd = -1;
	for (size_t i = 0; i < conc; i++)
		if (conn_start(b, &conns[i]))
			goto out;
	uint64_t t0 = hl_mono_ms(), end = t0 + (uint64_t)(seconds * 1000), next_tick = 0;
	while (hl_mono_ms() < end) {
		if (poll_once(b, TICK_MS))
			goto out;
		for (size_t i = 0; i < conc; i++) {
			struct conn *c = &conns[i];
			if (!c->confirmed && !c->dead)
				continue;
			if (c->confirmed && !c->dead) {
				b->completed++;
				hl_session_close(c->session, 1, "benchmark");
				conn_flush(b, c);
			} else {
				b->failed++;
			}
			conn_stop(c);
			if (conn_start(b, c))
				goto out;
		}
		if (hl_mono_ms() >= next_tick) {
			tick_all(b, conns, conc);
			next_tick = hl_mono_ms() + TICK_MS;
		}
	}
	double elapsed = (double)(hl_mono_ms() - t0) / 1000.0;
	printf("%.1f %lu %lu\n", (double)b->completed / elapsed, b->completed, b->failed);
	if (b->failed)
		fprintf(stderr, "bench_links: %lu handshakes failed; the last: %s\n", b->failed,
			b->last_error);
	ret = b->completed > 0 ? 0 : 1;
out:
	for (size_t i = 0; i < conc; i++)
		conn_stop(&conns[i]);
	free(conns);
	return ret;
}

int main(int argc, char **argv)
{
	struct bench b;
	int ret;
	if (argc < 2)
		return usage();
	if (sodium_init() < 0)
		return die("libsodium failed to initialise");
	signal(SIGPIPE, SIG_IGN);
	if (strcmp(argv[1], "keygen") == 0 && argc == 5) {
		long n = strtol(argv[2], NULL, 10);
		if (n < 1 || n > HL_CONF_MAX_PEERS)
			return usage();
		return keygen(n, argv[3], argv[4]);
	}
	if (strcmp(argv[1], "idle") == 0 && (argc == 7 || argc == 8)) {
		long n = strtol(argv[5], NULL, 10), pid = strtol(argv[6], NULL, 10);
		double settle = argc == 8 ? strtod(argv[7], NULL) : 2.0;
		if (n < 1 || n > 100000 || pid < 1 || settle < 0)
			return usage();
		if (setup(&b, argv[2], argv[3], argv[4]))
			return 1;
		ret = idle(&b, (size_t)n, pid, settle);
		free_keys(&b);
		free(b.stamps);
		close(b.ep);
		return ret;
	}
	if (strcmp(argv[1], "handshakes") == 0 && argc == 7) {
		double secs = strtod(argv[5], NULL);
		long conc = strtol(argv[6], NULL, 10);
		if (secs <= 0 || conc < 1 || conc > 4096)
			return usage();
		if (setup(&b, argv[2], argv[3], argv[4]))
			return 1;
		ret = handshakes(&b, secs, (size_t)conc);
		free_keys(&b);
		free(b.stamps);
		close(b.ep);
		return ret;
	}
	return usage();
}
