/* bench/limits.c — bench_limits: what this machine allows, measured the way
 * `make bench` compares hotline against it (docs/PERFORMANCE.md).
 *
 *   bench_limits aead [SECONDS]             MB/s, one core, ChaCha20-Poly1305 (IETF) as the
 *                                           daemon's transport runs it: libcrypto's EVP
 *                                           (crypto/aead.c), packets of 65,519 bytes
 *   bench_limits aead_libsodium [SECONDS]   MB/s, the same with libsodium, 64 KiB buffers
 *   bench_limits sha256 [SECONDS]           MB/s, one core, the document hash (libcrypto
 *                                           SHA-256, crypto/sha256.c), 64 KiB buffers
 *   bench_limits blake2b [SECONDS]          MB/s, one core, libsodium BLAKE2b-256, 64 KiB buffers
 *   bench_limits ed25519_verify [SECONDS]   ops/s, one core, signatures of 200-byte messages
 *   bench_limits x25519 [SECONDS]           ops/s, one core, crypto_scalarmult
 *   bench_limits fsync DIR [SAMPLES]        ms (p50 and p95): append 4 KiB + fdatasync in DIR
 *   bench_limits disk_write DIR [MIB]       MB/s: write MIB MiB (default 1024) + fdatasync in DIR
 *
 * Each prints one line "VALUE" (fsync: "P50 P95") on stdout, so that
 * scripts/bench.sh can put it into its BENCH lines.  CPU figures run one
 * thread for SECONDS (default 2) after a short warm-up, in five slices, and
 * report the best slice (whole operations divided by the time they took).  The files written in DIR
 * are removed.  Exit 1 on a failure (one line on stderr), 2 on bad usage. */
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "crypto/aead.h"
#include "crypto/noise.h"
#include "crypto/sha256.h"
#include "util/mem.h"

#define AEAD_BUF (64 * 1024)
#define PACKET_MAX (HL_NOISE_MAX_MSG - HL_NOISE_TAGLEN)   /* a transport packet's text */
#define HASH_BUF (64 * 1024)
#define SIG_MSG_LEN 200
#define SIG_KEYS 64            /* distinct signers, as a receiver sees several */
#define FSYNC_BLOCK 4096
#define DISK_CHUNK (1024 * 1024)

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void)
{
	fprintf(stderr, "usage: bench_limits aead|aead_libsodium|sha256|blake2b|ed25519_verify|x25519"
			" [SECONDS]\n"
			"       bench_limits fsync DIR [SAMPLES] | disk_write DIR [MIB]\n");
	return 2;
}

static double seconds_arg(int argc, char **argv, int i)
{
	double s = i < argc ? strtod(argv[i], NULL) : 2.0;
	return s > 0 ? s : 2.0;
}

/* Runs OP in batches of BATCH for SECONDS, in SLICES slices of equal
 * length; returns the best slice's ops/s.  On a shared machine other jobs
 * only ever slow a slice down, so the best slice is the nearest to what
 * one core can do. */
#define SLICES 5
static double rate(void (*op)(void *), void *arg, unsigned batch, double seconds)
{
	double best = 0;
	for (unsigned i = 0; i < batch; i++)   /* warm-up: caches, frequency */
		op(arg);
	for (int s = 0; s < SLICES; s++) {
		double t0 = mono_s(), t;
		unsigned long long n = 0;
		do {
			for (unsigned i = 0; i < batch; i++)
				op(arg);
			n += batch;
			t = mono_s();
		} while (t - t0 < seconds / SLICES);
		if ((double)n / (t - t0) > best)
			best = (double)n / (t - t0);
	}
	return best;
}

struct aead_arg {
	uint8_t *buf;
	uint8_t key[crypto_aead_chacha20poly1305_ietf_KEYBYTES];
	uint8_t nonce[crypto_aead_chacha20poly1305_ietf_NPUBBYTES];
	uint8_t tag[crypto_aead_chacha20poly1305_ietf_ABYTES];
};

static void aead_op(void *p)
{
	struct aead_arg *a = p;
	unsigned long long taglen;
	sodium_increment(a->nonce, sizeof(a->nonce));
	crypto_aead_chacha20poly1305_ietf_encrypt_detached(a->buf, a->tag, &taglen, a->buf,
							   AEAD_BUF, NULL, 0, NULL, a->nonce, a->key);
}

/* The daemon's implementation: one context, a nonce per record. */
struct evp_arg {
	uint8_t *buf, *out;
	struct hl_aead *a;
	uint64_t n;
};

static void evp_op(void *p)
{
	struct evp_arg *a = p;
	uint8_t nonce[12] = { 0 };
	a->n++;
	memcpy(nonce + 4, &a->n, 8);
	if (hl_aead_evp.seal(a->a, nonce, NULL, 0, a->buf, PACKET_MAX, a->out) < 0)
		abort();
}

struct hash_arg {
	uint8_t *buf;
	hl_sha256_state sha;
	crypto_generichash_state b2;
};

static void sha256_op(void *p)
{
	struct hash_arg *a = p;
	hl_sha256_update(&a->sha, a->buf, HASH_BUF);
}

static void blake2b_op(void *p)
{
	struct hash_arg *a = p;
	crypto_generichash_update(&a->b2, a->buf, HASH_BUF);
}

static int do_hash(const char *what, double seconds)
{
	struct hash_arg *a = xcalloc(1, sizeof(*a));
	a->buf = xmalloc(HASH_BUF);
	randombytes_buf(a->buf, HASH_BUF);
	hl_sha256_init(&a->sha);
	crypto_generichash_init(&a->b2, NULL, 0, 32);
	double r = rate(strcmp(what, "sha256") == 0 ? sha256_op : blake2b_op, a, 64, seconds);
	printf("%.1f\n", r * HASH_BUF / 1e6);
	free(a->buf);
	free(a);
	return 0;
}

struct sig_arg {
	uint8_t msg[SIG_KEYS][SIG_MSG_LEN];
	uint8_t sig[SIG_KEYS][crypto_sign_BYTES];
	uint8_t pk[SIG_KEYS][crypto_sign_PUBLICKEYBYTES];
	unsigned i;
	unsigned failures;
};

static void verify_op(void *p)
{
	struct sig_arg *a = p;
	unsigned k = a->i++ % SIG_KEYS;
	if (crypto_sign_verify_detached(a->sig[k], a->msg[k], SIG_MSG_LEN, a->pk[k]) != 0)
		a->failures++;
}

struct dh_arg {
	uint8_t sk[crypto_scalarmult_SCALARBYTES];
	uint8_t pk[crypto_scalarmult_BYTES];
	uint8_t out[crypto_scalarmult_BYTES];
	unsigned failures;
};

static void x25519_op(void *p)
{
	struct dh_arg *a = p;
	if (crypto_scalarmult(a->out, a->sk, a->pk) != 0)
		a->failures++;
	/* Chain the result into the next scalar, so no call can be skipped. */
	a->sk[0] ^= a->out[0];
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted V (N values). */
static double percentile(const double *v, size_t n, double p)
{
	size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static char *temp_path(const char *dir, const char *what)
{
	return xasprintf("%s/bench-%s.%ld", dir, what, (long)getpid());
}

static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int do_fsync(const char *dir, long samples)
{
	char *path = temp_path(dir, "fsync");
	double *t = xcalloc((size_t)samples, sizeof(*t));
	uint8_t block[FSYNC_BLOCK];
	int ret = 1;
	randombytes_buf(block, sizeof(block));
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "bench_limits: cannot create '%s': %s\n", path, strerror(errno));
		goto out;
	}
	/* Appends, as a write-ahead log does: each fdatasync also makes the
	 * new file size durable. */
	for (long i = 0; i < samples; i++) {
		double t0 = mono_s();
		if (write_all(fd, block, sizeof(block)) < 0 || fdatasync(fd) < 0) {
			fprintf(stderr, "bench_limits: writing '%s': %s\n", path, strerror(errno));
			goto out;
		}
		t[i] = (mono_s() - t0) * 1000.0;
	}
	qsort(t, (size_t)samples, sizeof(*t), cmp_double);
	printf("%.3f %.3f\n", percentile(t, (size_t)samples, 50), percentile(t, (size_t)samples, 95));
	ret = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(t);
	free(path);
	return ret;
}

static int do_disk_write(const char *dir, long mib)
{
	char *path = temp_path(dir, "disk");
	uint8_t *buf = xmalloc(DISK_CHUNK);
	int ret = 1;
	randombytes_buf(buf, DISK_CHUNK);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "bench_limits: cannot create '%s': %s\n", path, strerror(errno));
		goto out;
	}
	double t0 = mono_s();
	for (long i = 0; i < mib; i++) {
		buf[0] = (uint8_t)i;   /* every chunk differs */
		if (write_all(fd, buf, DISK_CHUNK) < 0) {
			fprintf(stderr, "bench_limits: writing '%s': %s\n", path, strerror(errno));
			goto out;
		}
	}
	if (fdatasync(fd) < 0) {
		fprintf(stderr, "bench_limits: fdatasync '%s': %s\n", path, strerror(errno));
		goto out;
	}
	double secs = mono_s() - t0;
	printf("%.1f\n", (double)mib * DISK_CHUNK / 1e6 / secs);
	ret = 0;
out:
	if (fd >= 0) {
		close(fd);
		unlink(path);
	}
	free(buf);
	free(path);
	return ret;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (sodium_init() < 0) {
		fprintf(stderr, "bench_limits: libsodium failed to initialise\n");
		return 1;
	}
	const char *what = argv[1];
	if (strcmp(what, "aead") == 0) {
		uint8_t key[32];
		struct evp_arg a = { .buf = xmalloc(PACKET_MAX), .out = xmalloc(HL_NOISE_MAX_MSG) };
		randombytes_buf(a.buf, PACKET_MAX);
		randombytes_buf(key, sizeof(key));
		a.a = hl_aead_evp.make(key, true);
		double r = rate(evp_op, &a, 64, seconds_arg(argc, argv, 2));
		printf("%.1f\n", r * PACKET_MAX / 1e6);
		hl_aead_evp.free(a.a);
		free(a.buf);
		free(a.out);
		return 0;
	}
	if (strcmp(what, "sha256") == 0 || strcmp(what, "blake2b") == 0)
		return do_hash(what, seconds_arg(argc, argv, 2));
	if (strcmp(what, "aead_libsodium") == 0) {
		struct aead_arg a;
		a.buf = xmalloc(AEAD_BUF);
		randombytes_buf(a.buf, AEAD_BUF);
		crypto_aead_chacha20poly1305_ietf_keygen(a.key);
		memset(a.nonce, 0, sizeof(a.nonce));
		double r = rate(aead_op, &a, 64, seconds_arg(argc, argv, 2));
		printf("%.1f\n", r * AEAD_BUF / 1e6);
		free(a.buf);
		return 0;
	}
	if (strcmp(what, "ed25519_verify") == 0) {
		struct sig_arg *a = xcalloc(1, sizeof(*a));
		for (unsigned k = 0; k < SIG_KEYS; k++) {
			uint8_t sk[crypto_sign_SECRETKEYBYTES];
			crypto_sign_keypair(a->pk[k], sk);
			randombytes_buf(a->msg[k], SIG_MSG_LEN);
			crypto_sign_detached(a->sig[k], NULL, a->msg[k], SIG_MSG_LEN, sk);
			sodium_memzero(sk, sizeof(sk));
		}
		double r = rate(verify_op, a, 256, seconds_arg(argc, argv, 2));
		int bad = a->failures != 0;
		free(a);
		if (bad) {
			fprintf(stderr, "bench_limits: a valid signature failed to verify\n");
			return 1;
		}
		printf("%.0f\n", r);
		return 0;
	}
	if (strcmp(what, "x25519") == 0) {
		struct dh_arg a = { 0 };
		uint8_t other[crypto_scalarmult_SCALARBYTES];
		randombytes_buf(a.sk, sizeof(a.sk));
		randombytes_buf(other, sizeof(other));
		crypto_scalarmult_base(a.pk, other);
		double r = rate(x25519_op, &a, 256, seconds_arg(argc, argv, 2));
		if (a.failures) {
			fprintf(stderr, "bench_limits: crypto_scalarmult failed\n");
			return 1;
		}
		printf("%.0f\n", r);
		return 0;
	}
	if (strcmp(what, "fsync") == 0 && argc >= 3) {
		long samples = argc > 3 ? strtol(argv[3], NULL, 10) : 200;
		if (samples < 1 || samples > 1000000)
			return usage();
		return do_fsync(argv[2], samples);
	}
	if (strcmp(what, "disk_write") == 0 && argc >= 3) {
		long mib = argc > 3 ? strtol(argv[3], NULL, 10) : 1024;
		if (mib < 1 || mib > 1024L * 1024)
			return usage();
		return do_disk_write(argv[2], mib);
	}
	return usage();
}
