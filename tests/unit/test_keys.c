/* test_keys.c — identities and fingerprints (crypto/keys.c): the golden
 * fingerprint, fingerprint text and matching, key generation, the identity
 * file (mode 0600, O_EXCL, no symlinks, round trip) and corrupt files that
 * must be refused. */
#include <errno.h>
#include <fcntl.h>
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

#include "crypto/keys.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"

/* Golden values for NoiseKey = bytes 0x00..0x1f and SigningKey = bytes
 * 0x20..0x3f, computed once, independently of hotline, with Python 3:
 *
 *   import hashlib
 *   h = hashlib.blake2b(b"hotline/1 fingerprint" + bytes(range(64)),
 *                       digest_size=32).digest()
 *   h.hex()
 *   " ".join("%05d" % (int.from_bytes(h[4*i:4*i+4], "big") % 100000)
 *            for i in range(8))
 */
#define GOLDEN_FP_HEX "422f7212f91aa5964b7ee3e16789fe9c436b057bf67e5f79d04a74e84728ef33"
#define GOLDEN_FP_TEXT "05650 73110 07073 96860 87227 77113 40520 65011"

static char tmpdir[64];

static int setup(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/hl-test-keys-XXXXXX");
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

static void golden_keys(uint8_t noise[32], uint8_t sign[32])
{
	for (int i = 0; i < 32; i++) {
		noise[i] = (uint8_t)i;
		sign[i] = (uint8_t)(32 + i);
	}
}

static void test_fingerprint_golden(void **state)
{
	(void)state;
	uint8_t noise[32], sign[32], fp[HL_FP_LEN];
	char hex[2 * HL_FP_LEN + 1], text[HL_FP_TEXT_LEN];
	golden_keys(noise, sign);
	hl_fingerprint(noise, sign, fp);
	hl_hex(fp, sizeof(fp), hex);
	assert_string_equal(hex, GOLDEN_FP_HEX);
	hl_fingerprint_text(fp, text);
	assert_string_equal(text, GOLDEN_FP_TEXT);
	assert_int_equal(strlen(text), HL_FP_TEXT_LEN - 1);
	/* Swapping the keys gives another fingerprint: order is bound. */
	uint8_t fp2[HL_FP_LEN];
	hl_fingerprint(sign, noise, fp2);
	assert_memory_not_equal(fp, fp2, HL_FP_LEN);
}

static void test_fingerprint_text_zero_pads(void **state)
{
	(void)state;
	uint8_t fp[HL_FP_LEN] = { 0 };
	char text[HL_FP_TEXT_LEN];
	fp[3] = 7; /* word 0 = 7 */
	fp[4] = 0xff; fp[5] = 0xff; fp[6] = 0xff; fp[7] = 0xff; /* 4294967295 */
	hl_fingerprint_text(fp, text);
	assert_string_equal(text, "00007 67295 00000 00000 00000 00000 00000 00000");
}

static void test_fingerprint_matches(void **state)
{
	(void)state;
	uint8_t noise[32], sign[32], fp[HL_FP_LEN];
	golden_keys(noise, sign);
	hl_fingerprint(noise, sign, fp);
	assert_int_equal(hl_fingerprint_matches(GOLDEN_FP_TEXT, fp), 1);
	assert_int_equal(hl_fingerprint_matches("0565073110070739686087227771134052065011", fp), 1);
	assert_int_equal(hl_fingerprint_matches("05650-73110-07073-96860-87227-77113-40520-65011", fp), 1);
	assert_int_equal(hl_fingerprint_matches(" 05650  73110 07073 96860 87227 77113 40520 65011 ", fp), 1);
	/* one digit off, first and last */
	assert_int_equal(hl_fingerprint_matches("15650 73110 07073 96860 87227 77113 40520 65011", fp), 0);
	assert_int_equal(hl_fingerprint_matches("05650 73110 07073 96860 87227 77113 40520 65012", fp), 0);
	/* not 40 digits */
	assert_int_equal(hl_fingerprint_matches("05650 73110 07073 96860 87227 77113 40520 6501", fp), HL_EINVAL);
	assert_int_equal(hl_fingerprint_matches("05650 73110 07073 96860 87227 77113 40520 650110", fp), HL_EINVAL);
	assert_int_equal(hl_fingerprint_matches("05650 73110 07073 96860 87227 77113 40520 6501x", fp), HL_EINVAL);
	assert_int_equal(hl_fingerprint_matches("05650\t73110 07073 96860 87227 77113 40520 65011", fp), HL_EINVAL);
	assert_int_equal(hl_fingerprint_matches("", fp), HL_EINVAL);
	assert_int_equal(hl_fingerprint_matches(GOLDEN_FP_HEX, fp), HL_EINVAL);
}

static void test_generate(void **state)
{
	(void)state;
	hl_identity *a = NULL, *b = NULL;
	uint8_t pub[32];
	assert_int_equal(hl_identity_generate(&a), 0);
	assert_int_equal(hl_identity_generate(&b), 0);
	assert_memory_not_equal(a->noise_priv, b->noise_priv, 32);
	assert_memory_not_equal(a->sign_pk, b->sign_pk, 32);
	assert_int_equal(crypto_scalarmult_base(pub, a->noise_priv), 0);
	assert_memory_equal(pub, a->noise_pub, 32);
	/* The signing pair works together. */
	uint8_t sig[64];
	const uint8_t msg[] = "hotline/1 test";
	crypto_sign_detached(sig, NULL, msg, sizeof(msg), a->sign_sk);
	assert_int_equal(crypto_sign_verify_detached(sig, msg, sizeof(msg), a->sign_pk), 0);
	assert_int_not_equal(crypto_sign_verify_detached(sig, msg, sizeof(msg), b->sign_pk), 0);
	hl_identity_free(a);
	hl_identity_free(b);
	hl_identity_free(NULL);
}

static void test_file_round_trip_and_mode(void **state)
{
	(void)state;
	hl_identity *id = NULL, *back = NULL;
	char *path = tmp_path("identity.key");
	struct stat st;
	mode_t old = umask(0); /* a permissive umask must not widen the mode */
	assert_int_equal(hl_identity_generate(&id), 0);
	assert_int_equal(hl_identity_write_new(path, id), 0);
	umask(old);
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(hl_identity_load(path, &back), 0);
	assert_memory_equal(back->noise_priv, id->noise_priv, 32);
	assert_memory_equal(back->noise_pub, id->noise_pub, 32);
	assert_memory_equal(back->sign_sk, id->sign_sk, 64);
	assert_memory_equal(back->sign_pk, id->sign_pk, 32);

	/* The text: the warning header and the two private keys, nothing else. */
	char *text = NULL;
	size_t len = 0;
	char b64[HL_KEY_B64_LEN];
	assert_int_equal(hl_read_file(path, 4096, &text, &len), 0);
	assert_true(strncmp(text, "# hotline identity: this station's PRIVATE keys.", 48) == 0);
	hl_b64_key(id->noise_priv, b64);
	assert_non_null(strstr(text, b64));
	hl_b64_key(id->sign_sk, b64); /* the seed */
	assert_non_null(strstr(text, b64));
	hl_b64_key(id->noise_pub, b64); /* public keys are derived, not stored */
	assert_null(strstr(text, b64));
	free(text);

	/* Never overwritten. */
	hl_identity *other = NULL;
	assert_int_equal(hl_identity_generate(&other), 0);
	assert_int_equal(hl_identity_write_new(path, other), -EEXIST);
	hl_identity_free(back);
	back = NULL;
	assert_int_equal(hl_identity_load(path, &back), 0);
	assert_memory_equal(back->noise_priv, id->noise_priv, 32);

	hl_identity_free(other);
	hl_identity_free(back);
	hl_identity_free(id);
	unlink(path);
	free(path);
}

static void test_no_symlinks(void **state)
{
	(void)state;
	hl_identity *id = NULL, *back = NULL;
	char *target = tmp_path("target");
	char *link_path = tmp_path("link.key");
	char *real = tmp_path("real.key");
	assert_int_equal(hl_identity_generate(&id), 0);
	/* Writing through a dangling symlink must not create its target. */
	assert_int_equal(symlink(target, link_path), 0);
	assert_int_equal(hl_identity_write_new(link_path, id), -EEXIST);
	assert_int_equal(access(target, F_OK), -1);
	unlink(link_path);
	/* Loading through a symlink is refused. */
	assert_int_equal(hl_identity_write_new(real, id), 0);
	assert_int_equal(symlink(real, link_path), 0);
	assert_int_equal(hl_identity_load(link_path, &back), -ELOOP);
	assert_null(back);
	unlink(link_path);
	unlink(real);
	hl_identity_free(id);
	free(target);
	free(link_path);
	free(real);
}

static void test_load_warns_on_wide_mode(void **state)
{
	(void)state;
	hl_identity *id = NULL, *back = NULL;
	char *path = tmp_path("wide.key");
	char *errpath = tmp_path("stderr.txt");
	assert_int_equal(hl_identity_generate(&id), 0);
	assert_int_equal(hl_identity_write_new(path, id), 0);
	assert_int_equal(chmod(path, 0644), 0);

	fflush(stderr);
	int saved = dup(2);
	int fd = open(errpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(saved >= 0 && fd >= 0);
	dup2(fd, 2);
	int r = hl_identity_load(path, &back);
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
	hl_identity_free(back);
	hl_identity_free(id);
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
	hl_identity *id = NULL;
	const char *t = "# comment\n\nNoisePrivateKey = " NOISE_B64 "\r\n"
			"signingprivatekey=" SEED_B64;
	assert_int_equal(hl_identity_parse(t, strlen(t), &id), 0);
	for (int i = 0; i < 32; i++) {
		assert_int_equal(id->noise_priv[i], i + 1);
		assert_int_equal(id->sign_sk[i], i + 33);
	}
	uint8_t pk[32], sk[64], seed[32];
	for (int i = 0; i < 32; i++)
		seed[i] = (uint8_t)(i + 33);
	crypto_sign_seed_keypair(pk, sk, seed);
	assert_memory_equal(id->sign_pk, pk, 32);
	hl_identity_free(id);
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
		hl_identity *id = (hl_identity *)1;
		int r = hl_identity_parse(bad[i], strlen(bad[i]), &id);
		if (r >= 0)
			fail_msg("corrupt identity %zu was accepted", i);
		assert_null(id);
	}
	/* A NUL inside, and a file cut in the middle of a key. */
	static const char nul[] = "NoisePrivateKey = " NOISE_B64 "\0\nSigningPrivateKey = " SEED_B64 "\n";
	hl_identity *id = NULL;
	assert_true(hl_identity_parse(nul, sizeof(nul) - 1, &id) < 0);
	const char *full = "NoisePrivateKey = " NOISE_B64 "\nSigningPrivateKey = " SEED_B64 "\n";
	for (size_t cut = 0; cut + 2 < strlen(full); cut += 7)
		assert_true(hl_identity_parse(full, cut, &id) < 0);
	assert_int_equal(hl_identity_parse(full, strlen(full), &id), 0);
	hl_identity_free(id);
	/* Too big */
	char *big = xmalloc(HL_IDENTITY_MAX_BYTES + 2);
	memset(big, '#', HL_IDENTITY_MAX_BYTES + 1);
	id = NULL;
	assert_int_equal(hl_identity_parse(big, HL_IDENTITY_MAX_BYTES + 1, &id), HL_ETOOBIG);
	free(big);
}

static void test_load_refuses_corrupt_file(void **state)
{
	(void)state;
	hl_identity *id = NULL, *back = NULL;
	char *path = tmp_path("corrupt.key");
	assert_int_equal(hl_identity_generate(&id), 0);
	assert_int_equal(hl_identity_write_new(path, id), 0);
	/* Flip one base64 character of the first key into an invalid one. */
	char *text = NULL;
	size_t len = 0;
	assert_int_equal(hl_read_file(path, 4096, &text, &len), 0);
	char *eq = strstr(text, "NoisePrivateKey = ");
	assert_non_null(eq);
	eq[20] = '*';
	assert_int_equal(hl_write_file_atomic(path, text, len, 0600), 0);
	assert_true(hl_identity_load(path, &back) < 0);
	assert_null(back);
	/* Truncated to half. */
	assert_int_equal(truncate(path, (off_t)(len / 2)), 0);
	assert_true(hl_identity_load(path, &back) < 0);
	/* Missing. */
	unlink(path);
	assert_int_equal(hl_identity_load(path, &back), -ENOENT);
	free(text);
	free(path);
	hl_identity_free(id);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fingerprint_golden),
		cmocka_unit_test(test_fingerprint_text_zero_pads),
		cmocka_unit_test(test_fingerprint_matches),
		cmocka_unit_test(test_generate),
		cmocka_unit_test(test_file_round_trip_and_mode),
		cmocka_unit_test(test_no_symlinks),
		cmocka_unit_test(test_load_warns_on_wide_mode),
		cmocka_unit_test(test_parse_valid),
		cmocka_unit_test(test_parse_refuses_corrupt),
		cmocka_unit_test(test_load_refuses_corrupt_file),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
