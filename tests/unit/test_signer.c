/* test_signer.c — the signer (crypto/signer.c): it signs only under the
 * contexts of its table, its signatures are libsodium's over exactly the
 * bytes given, its DH is X25519 with the static key, it is safe to use from
 * several threads, and the private keys appear in no other source file;
 * key generation and the identity file (mode 0600, O_EXCL, no symlinks,
 * round trip) and corrupt files that must be refused.
 *
 * The source scan (test_secrets_in_one_file) reads the tree this file sits
 * in, or HOTLINE_SRC_DIR when set (to run it against another checkout). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/signer.h"
#include "msg/item.h"
#include "record/format.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/hl-test-signer-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	int r = system(cmd);
	free(cmd);
	return r == 0 ? 0 : -1;
}

static char *tmp_path(const char *name)
{
	return hl_path_join(tmpdir, name);
}

/* Every context a station signs under today, from the headers that define
 * them: the signer's table must take each. */
static const char *const known[] = {
	HL_CTX_MESSAGE, HL_CTX_RECEIPT,     HL_CTX_CHECK, HL_CTX_ANSWER,
	HL_CTX_AGREEMENT, HL_CTX_COUNTERSIGN, HL_CTX_CALL,  HL_RECORD_SEAL_CTX,
	HL_CTX_ROTATION_NEW,
};
#define NKNOWN (sizeof(known) / sizeof(known[0]))

/* CONTEXT, its NUL, then N bytes of PAYLOAD into OUT; returns the length. */
static size_t framed(const char *context, const char *payload, uint8_t *out)
{
	size_t c = strlen(context) + 1, n = strlen(payload);
	memcpy(out, context, c);
	memcpy(out + c, payload, n);
	return c + n;
}

static void fixed(uint8_t k[32], uint8_t v)
{
	memset(k, v, 32);
}

/* ---- signing ---- */

static void test_signs_every_known_context(void **state)
{
	(void)state;
	uint8_t seed[32], pk[32], sk[64], msg[256], sig[64], want[64];
	hl_signer *s = NULL;
	fixed(seed, 0x5e);
	crypto_sign_seed_keypair(pk, sk, seed);
	assert_int_equal(hl_signer_from_raw_for_tests(&s, NULL, seed), 0);
	assert_memory_equal(hl_signer_sign_pk(s), pk, 32);
	for (size_t i = 0; i < NKNOWN; i++) {
		size_t len = framed(known[i], "the body that follows", msg);
		assert_true(hl_signer_context_known(known[i]));
		assert_int_equal(hl_signer_sign(s, known[i], msg, len, sig), 0);
		/* Exactly libsodium's signature of exactly these bytes: that is
		 * what keeps every signature hotline made before the signer
		 * (tests/golden/record) byte for byte. */
		crypto_sign_detached(want, NULL, msg, len, sk);
		assert_memory_equal(sig, want, 64);
		assert_int_equal(crypto_sign_verify_detached(sig, msg, len, pk), 0);
		msg[len - 1] ^= 1;
		assert_int_not_equal(crypto_sign_verify_detached(sig, msg, len, pk), 0);
	}
	/* The context and its NUL alone is a message too (nothing follows). */
	size_t len = framed(HL_CTX_MESSAGE, "", msg);
	assert_int_equal(hl_signer_sign(s, HL_CTX_MESSAGE, msg, len, sig), 0);
	sodium_memzero(sk, sizeof(sk));
	hl_signer_free(s);
}

/* The signer is no oracle: a context outside its table, a message that
 * does not begin with the context it names, or an oversized one is refused
 * and nothing is signed. */
static void test_refuses_unknown_context(void **state)
{
	(void)state;
	static const char *const unknown[] = {
		"", "hotline/1", "hotline/1 messages", "hotline/1 Message", "hotline/1 fingerprint",
		"hotline/1 call media", "hotline/1 subject", "hotline/1 body", "hotline/2 message",
		"hotline/1 record seal ",
	};
	uint8_t msg[HL_SIGNER_MSG_MAX + 64], sig[64];
	hl_signer *s = NULL;
	assert_int_equal(hl_signer_generate(&s), 0);

	for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
		size_t len = framed(unknown[i], "payload", msg);
		memset(sig, 0xee, sizeof(sig));
		assert_false(hl_signer_context_known(unknown[i]));
		assert_int_equal(hl_signer_sign(s, unknown[i], msg, len, sig), HL_EINVAL);
		assert_true(sodium_is_zero(sig, sizeof(sig)));
	}
	assert_false(hl_signer_context_known(NULL));
	assert_int_equal(hl_signer_sign(s, NULL, msg, 10, sig), HL_EINVAL);

	/* A known context named, another one (or none) in the bytes. */
	size_t len = framed(HL_CTX_RECEIPT, "payload", msg);
	assert_int_equal(hl_signer_sign(s, HL_CTX_MESSAGE, msg, len, sig), HL_EINVAL);
	assert_true(sodium_is_zero(sig, sizeof(sig)));
	len = framed("hotline/1 messageX", "payload", msg);
	assert_int_equal(hl_signer_sign(s, HL_CTX_MESSAGE, msg, len, sig), HL_EINVAL);
	/* The context without its NUL: cut short, or followed by a byte. */
	memcpy(msg, HL_CTX_MESSAGE, strlen(HL_CTX_MESSAGE));
	assert_int_equal(hl_signer_sign(s, HL_CTX_MESSAGE, msg, strlen(HL_CTX_MESSAGE), sig),
			 HL_EINVAL);
	msg[strlen(HL_CTX_MESSAGE)] = ' ';
	assert_int_equal(hl_signer_sign(s, HL_CTX_MESSAGE, msg, strlen(HL_CTX_MESSAGE) + 5, sig),
			 HL_EINVAL);
	/* Arbitrary bytes under every known context. */
	randombytes_buf(msg, 200);
	for (size_t i = 0; i < NKNOWN; i++)
		assert_int_equal(hl_signer_sign(s, known[i], msg, 200, sig), HL_EINVAL);
	/* Too long; the longest allowed passes. */
	memset(msg, 'x', sizeof(msg));
	framed(HL_CTX_MESSAGE, "", msg);
	assert_int_equal(hl_signer_sign(s, HL_CTX_MESSAGE, msg, HL_SIGNER_MSG_MAX + 1, sig),
			 HL_EINVAL);
	assert_int_equal(hl_signer_sign(s, HL_CTX_MESSAGE, msg, HL_SIGNER_MSG_MAX, sig), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, HL_SIGNER_MSG_MAX,
						     hl_signer_sign_pk(s)), 0);
	hl_signer_free(s);
}

/* ---- the static DH ---- */

static void test_dh_matches_scalarmult(void **state)
{
	(void)state;
	uint8_t a[32], b[32], a_pub[32], b_pub[32], ours[32], want[32], theirs[32];
	hl_signer *s = NULL;
	randombytes_buf(a, sizeof(a));
	randombytes_buf(b, sizeof(b));
	assert_int_equal(crypto_scalarmult_base(a_pub, a), 0);
	assert_int_equal(crypto_scalarmult_base(b_pub, b), 0);
	assert_int_equal(hl_signer_from_raw_for_tests(&s, a, NULL), 0);
	assert_memory_equal(hl_signer_noise_pub(s), a_pub, 32);

	assert_int_equal(hl_signer_dh(s, b_pub, ours), 0);
	assert_int_equal(crypto_scalarmult(want, a, b_pub), 0);
	assert_int_equal(crypto_scalarmult(theirs, b, a_pub), 0);
	assert_memory_equal(ours, want, 32);
	assert_memory_equal(ours, theirs, 32);

	/* A low-order public key (here zero): refused, nothing given back. */
	uint8_t zero[32] = { 0 };
	memset(ours, 0xee, sizeof(ours));
	assert_int_equal(hl_signer_dh(s, zero, ours), HL_ECRYPTO);
	assert_true(sodium_is_zero(ours, sizeof(ours)));
	hl_signer_free(s);
	sodium_memzero(a, sizeof(a));
	sodium_memzero(b, sizeof(b));
}

/* ---- threads ---- */

#define THREAD_ROUNDS 300

static void *sign_many(void *arg)
{
	const hl_signer *s = arg;
	uint8_t msg[64], sig[64], shared[32];
	size_t len = framed(HL_CTX_CHECK, "from a thread", msg);
	for (int i = 0; i < THREAD_ROUNDS; i++) {
		if (hl_signer_sign(s, HL_CTX_CHECK, msg, len, sig) != 0 ||
		    crypto_sign_verify_detached(sig, msg, len, hl_signer_sign_pk(s)) != 0 ||
		    hl_signer_dh(s, hl_signer_noise_pub(s), shared) != 0)
			return (void *)1;
	}
	return NULL;
}

/* Several threads may use one signer at once (signer.h). */
static void test_threads(void **state)
{
	(void)state;
	pthread_t th[4];
	void *ret;
	hl_signer *s = NULL;
	assert_int_equal(hl_signer_generate(&s), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&th[i], NULL, sign_many, s), 0);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], &ret), 0);
		assert_null(ret);
	}
	hl_signer_free(s);
}

/* ---- the boundary ---- */

/* Names only code holding a private key uses: each may appear in
 * crypto/signer.c and nowhere else under src/.  (crypto_scalarmult is not
 * among them: crypto/noise.c does its DHs with the per-handshake ephemeral
 * key, and conf/config.c tests public keys with it.) */
static const char *const secret_names[] = {
	"crypto_sign_detached", "crypto_sign_keypair", "crypto_sign_seed_keypair",
	"sign_sk", "noise_priv", "struct hl_signer {",
};

/* Adds to *BAD (a growing text) every file under DIR using a secret name. */
static void scan(const char *dir, const char *allowed, char **bad)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	assert_non_null(d);
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *path = hl_path_join(dir, de->d_name);
		struct stat st;
		size_t n = strlen(de->d_name);
		assert_int_equal(stat(path, &st), 0);
		if (S_ISDIR(st.st_mode)) {
			scan(path, allowed, bad);
		} else if (n > 2 && de->d_name[n - 2] == '.' &&
			   (de->d_name[n - 1] == 'c' || de->d_name[n - 1] == 'h') &&
			   strcmp(path, allowed) != 0) {
			char *text = NULL;
			size_t len = 0;
			assert_int_equal(hl_read_file(path, 4u << 20, &text, &len), 0);
			for (size_t i = 0; i < sizeof(secret_names) / sizeof(secret_names[0]); i++) {
				if (strstr(text, secret_names[i])) {
					char *more = xasprintf("%s%s uses %s\n", *bad, path,
							       secret_names[i]);
					free(*bad);
					*bad = more;
				}
			}
			free(text);
		}
		free(path);
	}
	closedir(d);
}

static void test_secrets_in_one_file(void **state)
{
	(void)state;
	char here[4096], *src, *allowed, *bad = xstrdup("");
	const char *env = getenv("HOTLINE_SRC_DIR");
	snprintf(here, sizeof(here), "%s", __FILE__);
	/* tests/unit/test_signer.c -> src/ */
	src = env && *env ? xstrdup(env) : xasprintf("%s/../../src", dirname(here));
	allowed = hl_path_join(src, "crypto/signer.c");
	scan(src, allowed, &bad);
	if (*bad)
		fail_msg("private-key code outside crypto/signer.c:\n%s", bad);
	free(bad);
	free(allowed);
	free(src);
}

/* ---- generation and the identity file ---- */

static void test_generate(void **state)
{
	(void)state;
	hl_signer *a = NULL, *b = NULL;
	uint8_t msg[64], sig[64], ab[32], ba[32];
	assert_int_equal(hl_signer_generate(&a), 0);
	assert_int_equal(hl_signer_generate(&b), 0);
	assert_memory_not_equal(hl_signer_noise_pub(a), hl_signer_noise_pub(b), 32);
	assert_memory_not_equal(hl_signer_sign_pk(a), hl_signer_sign_pk(b), 32);
	/* The X25519 pair works together: both sides get one secret. */
	assert_int_equal(hl_signer_dh(a, hl_signer_noise_pub(b), ab), 0);
	assert_int_equal(hl_signer_dh(b, hl_signer_noise_pub(a), ba), 0);
	assert_memory_equal(ab, ba, 32);
	/* The signing pair works together. */
	size_t len = framed(HL_CTX_ANSWER, "test", msg);
	assert_int_equal(hl_signer_sign(a, HL_CTX_ANSWER, msg, len, sig), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, len, hl_signer_sign_pk(a)), 0);
	assert_int_not_equal(crypto_sign_verify_detached(sig, msg, len, hl_signer_sign_pk(b)), 0);
	hl_signer_free(a);
	hl_signer_free(b);
	hl_signer_free(NULL);
}

/* True when signers A and B hold the same keys: the same public keys
 * (derived from the private ones) and the same DH result. */
static void assert_same_keys(const hl_signer *a, const hl_signer *b)
{
	uint8_t p[32], q[32], peer_pub[32], peer[32];
	assert_memory_equal(hl_signer_noise_pub(a), hl_signer_noise_pub(b), 32);
	assert_memory_equal(hl_signer_sign_pk(a), hl_signer_sign_pk(b), 32);
	randombytes_buf(peer, sizeof(peer));
	crypto_scalarmult_base(peer_pub, peer);
	assert_int_equal(hl_signer_dh(a, peer_pub, p), 0);
	assert_int_equal(hl_signer_dh(b, peer_pub, q), 0);
	assert_memory_equal(p, q, 32);
}

/* The base64 value of KEY in identity text TEXT, decoded into OUT. */
static void key_in_text(const char *text, const char *key, uint8_t out[32])
{
	const char *p = strstr(text, key);
	assert_non_null(p);
	p = strstr(p, "= ");
	assert_non_null(p);
	p += 2;
	assert_int_equal(hl_b64_key_parse(p, strcspn(p, "\n"), out), 0);
}

static void test_file_round_trip_and_mode(void **state)
{
	(void)state;
	hl_signer *id = NULL, *back = NULL;
	char *path = tmp_path("identity.key");
	struct stat st;
	mode_t old = umask(0); /* a permissive umask must not widen the mode */
	assert_int_equal(hl_signer_generate(&id), 0);
	assert_int_equal(hl_signer_write_new(path, id), 0);
	umask(old);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(hl_signer_load(path, &back), 0);
	assert_same_keys(back, id);

	/* The text: the warning header and the two private keys (whose public
	 * halves are the signer's), nothing else. */
	char *text = NULL;
	size_t len = 0;
	char b64[HL_KEY_B64_LEN];
	uint8_t key[32], pub[32], sk[64];
	assert_int_equal(hl_read_file(path, 4096, &text, &len), 0);
	assert_true(strncmp(text, "# hotline identity: this station's PRIVATE keys.", 48) == 0);
	key_in_text(text, "NoisePrivateKey", key);
	assert_int_equal(crypto_scalarmult_base(pub, key), 0);
	assert_memory_equal(pub, hl_signer_noise_pub(id), 32);
	key_in_text(text, "SigningPrivateKey", key); /* the seed */
	crypto_sign_seed_keypair(pub, sk, key);
	assert_memory_equal(pub, hl_signer_sign_pk(id), 32);
	hl_b64_key(hl_signer_noise_pub(id), b64); /* public keys are derived, not stored */
	assert_null(strstr(text, b64));
	hl_b64_key(hl_signer_sign_pk(id), b64);
	assert_null(strstr(text, b64));
	sodium_memzero(key, sizeof(key));
	sodium_memzero(sk, sizeof(sk));
	free(text);

	/* Never overwritten. */
	hl_signer *other = NULL;
	assert_int_equal(hl_signer_generate(&other), 0);
	assert_int_equal(hl_signer_write_new(path, other), -EEXIST);
	hl_signer_free(back);
	back = NULL;
	assert_int_equal(hl_signer_load(path, &back), 0);
	assert_same_keys(back, id);

	hl_signer_free(other);
	hl_signer_free(back);
	hl_signer_free(id);
	unlink(path);
	free(path);
}

static void test_no_symlinks(void **state)
{
	(void)state;
	hl_signer *id = NULL, *back = NULL;
	char *target = tmp_path("target");
	char *link_path = tmp_path("link.key");
	char *real = tmp_path("real.key");
	assert_int_equal(hl_signer_generate(&id), 0);
	/* Writing through a dangling symlink must not create its target. */
	assert_int_equal(symlink(target, link_path), 0);
	assert_int_equal(hl_signer_write_new(link_path, id), -EEXIST);
	assert_int_equal(access(target, F_OK), -1);
	unlink(link_path);
	/* Loading through a symlink is refused. */
	assert_int_equal(hl_signer_write_new(real, id), 0);
	assert_int_equal(symlink(real, link_path), 0);
	assert_int_equal(hl_signer_load(link_path, &back), -ELOOP);
	assert_null(back);
	unlink(link_path);
	unlink(real);
	hl_signer_free(id);
	free(target);
	free(link_path);
	free(real);
}

static void test_load_warns_on_wide_mode(void **state)
{
	(void)state;
	hl_signer *id = NULL, *back = NULL;
	char *path = tmp_path("wide.key");
	char *errpath = tmp_path("stderr.txt");
	assert_int_equal(hl_signer_generate(&id), 0);
	assert_int_equal(hl_signer_write_new(path, id), 0);
	assert_int_equal(chmod(path, 0644), 0);

	fflush(stderr);
	int saved = dup(2);
	int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	int r = hl_signer_load(path, &back);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);

	assert_int_equal(r, 0); /* policy: warn, still load */
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(hl_read_file(errpath, 4096, &text, &len), 0);
	assert_non_null(strstr(text, "warning"));
	assert_non_null(strstr(text, "wide.key"));
	assert_non_null(strstr(text, "0644"));
	free(text);
	hl_signer_free(back);
	hl_signer_free(id);
	unlink(path);
	unlink(errpath);
	free(path);
	free(errpath);
}

/* A valid identity text built from fixed private keys. */
#define NOISE_B64 "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA="
#define SEED_B64 "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0A="

static void test_parse_valid(void **state)
{
	(void)state;
	hl_signer *id = NULL, *raw = NULL;
	const char *t = "# comment\n\nNoisePrivateKey = " NOISE_B64 "\r\n"
			"signingprivatekey=" SEED_B64;
	uint8_t noise[32], seed[32], pub[32], pk[32], sk[64];
	assert_int_equal(hl_signer_parse(t, strlen(t), &id), 0);
	for (int i = 0; i < 32; i++) {
		noise[i] = (uint8_t)(i + 1);
		seed[i] = (uint8_t)(i + 33);
	}
	assert_int_equal(crypto_scalarmult_base(pub, noise), 0);
	assert_memory_equal(hl_signer_noise_pub(id), pub, 32);
	crypto_sign_seed_keypair(pk, sk, seed);
	assert_memory_equal(hl_signer_sign_pk(id), pk, 32);
	assert_int_equal(hl_signer_from_raw_for_tests(&raw, noise, seed), 0);
	assert_same_keys(id, raw);
	hl_signer_free(raw);
	hl_signer_free(id);
}

static void test_parse_refuses_corrupt(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"",
		"# only a comment\n",
		"NoisePrivateKey = " NOISE_B64 "\n",                         /* one key */
		"SigningPrivateKey = " SEED_B64 "\n",
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nNoisePrivateKey = " NOISE_B64 "\n",                       /* repeated */
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nColour = red\n",                                           /* unknown */
		"[Identity]\nNoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64 "\n",
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0\n",
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0B=\n",
		"NoisePrivateKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nSigningPrivateKey = " SEED_B64 "\n",
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		"NoisePrivateKey " NOISE_B64 "\nSigningPrivateKey = " SEED_B64 "\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hl_signer *id = (hl_signer *)1;
		int r = hl_signer_parse(bad[i], strlen(bad[i]), &id);
		if (r >= 0)
			fail_msg("corrupt identity %zu was accepted", i);
		assert_null(id);
	}
	/* A NUL inside, and a file cut in the middle of a key. */
	static const char nul[] = "NoisePrivateKey = " NOISE_B64 "\0\nSigningPrivateKey = " SEED_B64 "\n";
	hl_signer *id = NULL;
	assert_true(hl_signer_parse(nul, sizeof(nul) - 1, &id) < 0);
	const char *full = "NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64 "\n";
	for (size_t cut = 0; cut + 2 < strlen(full); cut += 7)
		assert_true(hl_signer_parse(full, cut, &id) < 0);
	assert_int_equal(hl_signer_parse(full, strlen(full), &id), 0);
	hl_signer_free(id);
	/* Too big */
	char *big = xmalloc(HL_IDENTITY_MAX_BYTES + 2);
	memset(big, '#', HL_IDENTITY_MAX_BYTES + 1);
	id = NULL;
	assert_int_equal(hl_signer_parse(big, HL_IDENTITY_MAX_BYTES + 1, &id), HL_ETOOBIG);
	free(big);
}

static void test_load_refuses_corrupt_file(void **state)
{
	(void)state;
	hl_signer *id = NULL, *back = NULL;
	char *path = tmp_path("corrupt.key");
	assert_int_equal(hl_signer_generate(&id), 0);
	assert_int_equal(hl_signer_write_new(path, id), 0);
	/* Flip one base64 character of the first key into an invalid one. */
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(hl_read_file(path, 4096, &text, &len), 0);
	char *eq = strstr(text, "NoisePrivateKey = ");
	assert_non_null(eq);
	eq[20] = '*';
	assert_int_equal(hl_write_file_atomic(path, text, len, 0600), 0);
	assert_true(hl_signer_load(path, &back) < 0);
	assert_null(back);
	/* Truncated to half. */
	assert_int_equal(truncate(path, (off_t)(len / 2)), 0);
	assert_true(hl_signer_load(path, &back) < 0);
	/* Missing. */
	unlink(path);
	assert_int_equal(hl_signer_load(path, &back), -ENOENT);
	free(text);
	free(path);
	hl_signer_free(id);
}

/* ---- key rotation (docs/rotation.md) ---- */

static char *read_text(const char *path)
{
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(hl_read_file(path, 4096, &text, &len), 0);
	return text;
}

/* A new identity carries next keys; a loaded signer keeps only their hash
 * (no long-lived process holds them), and so cannot write an identity. */
static void test_next_keys_kept_apart_in_memory(void **state)
{
	(void)state;
	hl_signer *id = NULL, *back = NULL;
	uint8_t h1[32], h2[32], key[32], pk[32], sk[64], nn[32];
	char *path = tmp_path("next.key");
	assert_int_equal(hl_signer_generate(&id), 0);
	assert_int_equal(hl_signer_next_hash(id, h1), 0);
	assert_int_equal(hl_signer_write_new(path, id), 0);
	char *text = read_text(path);
	/* the hash is of the next keys written in the file */
	key_in_text(text, "NextNoisePrivateKey", key);
	crypto_scalarmult_base(nn, key);
	key_in_text(text, "NextSigningPrivateKey", key);
	crypto_sign_seed_keypair(pk, sk, key);
	hl_next_hash(nn, pk, h2);
	assert_memory_equal(h1, h2, 32);
	assert_null(strstr(text, "Previous"));
	free(text);
	assert_int_equal(hl_signer_load(path, &back), 0);
	assert_int_equal(hl_signer_next_hash(back, h2), 0);
	assert_memory_equal(h1, h2, 32);
	assert_null(hl_signer_prev_noise_pub(back));
	assert_int_equal(hl_signer_rotated_at(back), 0);
	unlink(path);
	assert_int_equal(hl_signer_write_new(path, back), HL_ESTATE);
	assert_int_equal(access(path, F_OK), -1);
	/* the card's fingerprint covers the hash */
	uint8_t fp[32], want[32];
	hl_signer_fingerprint(back, fp);
	hl_fingerprint_next(hl_signer_noise_pub(back), hl_signer_sign_pk(back), h1, want);
	assert_memory_equal(fp, want, 32);
	/* an identity without next keys (tests, older files) has no hash */
	hl_signer *raw = NULL;
	assert_int_equal(hl_signer_from_raw_for_tests(&raw, NULL, NULL), 0);
	assert_int_equal(hl_signer_next_hash(raw, h2), HL_ENOTFOUND);
	hl_signer_free(raw);
	sodium_memzero(sk, sizeof(sk));
	hl_signer_free(back);
	hl_signer_free(id);
	free(path);
}

/* hl_signer_rotate: the committed keys become current, the current ones
 * previous, new next keys; the file is replaced whole (mode 0600, no
 * temporary left), and twice in a row follows the commitments. */
static void test_rotate_file(void **state)
{
	(void)state;
	hl_signer *id = NULL, *s = NULL, *back = NULL;
	uint8_t c1[32], c2[32], h[32], n0[32], k0[32];
	char *path = tmp_path("rot.key"), *tmp = xasprintf("%s.new", path);
	struct stat st;
	assert_int_equal(hl_signer_generate(&id), 0);
	assert_int_equal(hl_signer_write_new(path, id), 0);
	assert_int_equal(hl_signer_load(path, &s), 0);
	memcpy(n0, hl_signer_noise_pub(s), 32);
	memcpy(k0, hl_signer_sign_pk(s), 32);
	assert_int_equal(hl_signer_next_hash(s, c1), 0);
	/* a stale temporary of a crashed rotation is no obstacle */
	assert_int_equal(hl_write_file_atomic(tmp, "junk", 4, 0600), 0);

	assert_int_equal(hl_signer_rotate(s, path, 1767225600000), 0);
	hl_next_hash(hl_signer_noise_pub(s), hl_signer_sign_pk(s), h);
	assert_memory_equal(h, c1, 32);              /* the committed keys */
	assert_memory_equal(hl_signer_prev_noise_pub(s), n0, 32);
	assert_memory_equal(hl_signer_prev_sign_pk(s), k0, 32);
	assert_int_equal(hl_signer_rotated_at(s), 1767225600000);
	assert_int_equal(hl_signer_next_hash(s, c2), 0);
	assert_memory_not_equal(c1, c2, 32);
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(access(tmp, F_OK), -1);
	assert_int_equal(hl_signer_load(path, &back), 0);
	assert_same_keys(back, s);
	assert_int_equal(hl_signer_next_hash(back, h), 0);
	assert_memory_equal(h, c2, 32);
	char *text = read_text(path);
	assert_non_null(strstr(text, "\nRotatedAt = 1767225600000\n"));
	free(text);
	hl_signer_free(back);
	back = NULL;

	/* A signer of the identity before (another process rotated since)
	 * is refused, and the file is left alone. */
	assert_int_equal(hl_signer_rotate(id, path, 5), HL_EKEYS);
	assert_int_equal(hl_signer_load(path, &back), 0);
	assert_same_keys(back, s);
	hl_signer_free(back);

	/* Again: to the keys committed by the first rotation. */
	uint8_t n1[32];
	memcpy(n1, hl_signer_noise_pub(s), 32);
	assert_int_equal(hl_signer_rotate(s, path, 1767225600001), 0);
	hl_next_hash(hl_signer_noise_pub(s), hl_signer_sign_pk(s), h);
	assert_memory_equal(h, c2, 32);
	assert_memory_equal(hl_signer_prev_noise_pub(s), n1, 32);
	hl_signer_free(s);
	hl_signer_free(id);
	unlink(path);
	free(tmp);
	free(path);
}

/* An identity without next keys cannot rotate: nothing was committed. */
static void test_rotate_needs_next_keys(void **state)
{
	(void)state;
	hl_signer *s = NULL;
	char *path = tmp_path("old.key");
	const char *t = "NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64 "\n";
	assert_int_equal(hl_write_file_atomic(path, t, strlen(t), 0600), 0);
	assert_int_equal(hl_signer_load(path, &s), 0);
	assert_int_equal(hl_signer_rotate(s, path, 5), HL_EUNSUPP);
	char *text = read_text(path);
	assert_string_equal(text, t);
	free(text);
	hl_signer_free(s);
	unlink(path);
	free(path);
}

/* The signer picks the key from the context: a rotation's outer signature
 * by the previous key, its second one by the new key; nothing with the
 * previous key without one; the previous view does DH and signs nothing. */
static void test_rotation_contexts_and_previous(void **state)
{
	(void)state;
	hl_signer *s = NULL, *r = NULL, *v = NULL;
	uint8_t msg[128], sig[64], a[32], b[32], peer[32], peer_pub[32];
	assert_int_equal(hl_signer_generate(&s), 0);
	size_t len = framed(HL_CTX_ROTATION, "rotation body", msg);
	assert_int_equal(hl_signer_sign(s, HL_CTX_ROTATION, msg, len, sig), HL_ESTATE);
	assert_true(sodium_is_zero(sig, 64));
	assert_int_equal(hl_signer_previous(s, &v), HL_ENOTFOUND);
	assert_null(v);

	assert_int_equal(hl_signer_rotated_for_tests(s, 99, &r), 0);
	assert_int_equal(hl_signer_sign(r, HL_CTX_ROTATION, msg, len, sig), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, len, hl_signer_sign_pk(s)), 0);
	assert_int_not_equal(crypto_sign_verify_detached(sig, msg, len, hl_signer_sign_pk(r)), 0);
	len = framed(HL_CTX_ROTATION_NEW, "rotation body", msg);
	assert_int_equal(hl_signer_sign(r, HL_CTX_ROTATION_NEW, msg, len, sig), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, len, hl_signer_sign_pk(r)), 0);
	len = framed(HL_CTX_MESSAGE, "m", msg);
	assert_int_equal(hl_signer_sign(r, HL_CTX_MESSAGE, msg, len, sig), 0);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, len, hl_signer_sign_pk(r)), 0);

	assert_int_equal(hl_signer_previous(r, &v), 0);
	assert_memory_equal(hl_signer_noise_pub(v), hl_signer_noise_pub(s), 32);
	randombytes_buf(peer, 32);
	crypto_scalarmult_base(peer_pub, peer);
	assert_int_equal(hl_signer_dh(v, peer_pub, a), 0);
	assert_int_equal(hl_signer_dh(s, peer_pub, b), 0);
	assert_memory_equal(a, b, 32);
	for (size_t i = 0; i < NKNOWN; i++) {
		len = framed(known[i], "x", msg);
		assert_int_equal(hl_signer_sign(v, known[i], msg, len, sig), HL_ESTATE);
	}
	hl_signer_free(v);
	hl_signer_free(r);
	hl_signer_free(s);
}

#define NEXT_NOISE_B64 "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVpbXF1eX2A="
#define NEXT_SEED_B64 "YWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4A="

/* Next and previous keys come in pairs, RotatedAt with the previous ones,
 * and no pair repeats the current keys. */
static void test_parse_rotation_fields(void **state)
{
	(void)state;
	static const char *const bad[] = {
		/* half a next pair */
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nNextNoisePrivateKey = " NEXT_NOISE_B64 "\n",
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nNextSigningPrivateKey = " NEXT_SEED_B64 "\n",
		/* previous keys without RotatedAt, and RotatedAt without them */
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nPreviousNoisePrivateKey = " NEXT_NOISE_B64
		"\nPreviousSigningPrivateKey = " NEXT_SEED_B64 "\n",
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nRotatedAt = 5\n",
		/* bad RotatedAt */
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nPreviousNoisePrivateKey = " NEXT_NOISE_B64
		"\nPreviousSigningPrivateKey = " NEXT_SEED_B64 "\nRotatedAt = 05\n",
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nPreviousNoisePrivateKey = " NEXT_NOISE_B64
		"\nPreviousSigningPrivateKey = " NEXT_SEED_B64 "\nRotatedAt = 99999999999999999999\n",
		/* the next keys are the current ones */
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nNextNoisePrivateKey = " NOISE_B64 "\nNextSigningPrivateKey = " SEED_B64 "\n",
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nNextNoisePrivateKey = " NEXT_NOISE_B64 "\nNextSigningPrivateKey = " SEED_B64 "\n",
		/* a repeated next key */
		"NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
		"\nNextNoisePrivateKey = " NEXT_NOISE_B64 "\nNextSigningPrivateKey = " NEXT_SEED_B64
		"\nNextNoisePrivateKey = " NEXT_NOISE_B64 "\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		hl_signer *id = (hl_signer *)1;
		if (hl_signer_parse(bad[i], strlen(bad[i]), &id) >= 0)
			fail_msg("bad rotation fields %zu accepted", i);
		assert_null(id);
	}
	const char *good = "NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64
			   "\nnextnoiseprivatekey = " NEXT_NOISE_B64
			   "\nNextSigningPrivateKey = " NEXT_SEED_B64 "\n";
	hl_signer *id = NULL;
	uint8_t h[32];
	assert_int_equal(hl_signer_parse(good, strlen(good), &id), 0);
	assert_int_equal(hl_signer_next_hash(id, h), 0);
	hl_signer_free(id);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signs_every_known_context),
		cmocka_unit_test(test_refuses_unknown_context),
		cmocka_unit_test(test_dh_matches_scalarmult),
		cmocka_unit_test(test_threads),
		cmocka_unit_test(test_secrets_in_one_file),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_file_round_trip_and_mode),
		cmocka_unit_test(test_no_symlinks),
		cmocka_unit_test(test_load_warns_on_wide_mode),
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_refuses_corrupt),
		cmocka_unit_test(test_load_refuses_corrupt_file),
		cmocka_unit_test(test_next_keys_kept_apart_in_memory),
		cmocka_unit_test(test_rotate_file),
		cmocka_unit_test(test_rotate_needs_next_keys),
		cmocka_unit_test(test_rotation_contexts_and_previous),
		cmocka_unit_test(test_parse_rotation_fields),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
