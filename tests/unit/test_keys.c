/* test_keys.c — fingerprints (crypto/keys.c): the golden fingerprint,
 * fingerprint text and matching.  Key generation and the identity file are
 * the signer's (test_signer.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/keys.h"
#include "util/err.h"
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

/* Pre-rotation (docs/rotation.md): the next keys' hash and the
 * fingerprint of a card that carries it, for next NoiseKey = bytes
 * 0x40..0x5f and next SigningKey = bytes 0x60..0x7f, computed once with
 * Python 3, independently of hotline:
 *
 *   nh = hashlib.blake2b(b"hotline/1 next keys" + bytes(range(64, 128)),
 *                        digest_size=32).digest()
 *   h = hashlib.blake2b(b"hotline/1 fingerprint" + bytes(range(64)) + nh,
 *                       digest_size=32).digest()
 */
#define GOLDEN_NEXT_HEX "598f9b91dea3f1873bb0286e2d62547c41c64835d666119522f6de2719df0ac0"
#define GOLDEN_FP_NEXT_TEXT "03439 53243 93813 33037 28297 58787 70584 82019"

static void test_next_hash_and_fingerprint_golden(void **state)
{
	(void)state;
	uint8_t noise[32], sign[32], nn[32], ns[32], nh[32], fp[HL_FP_LEN], fp0[HL_FP_LEN];
	char hex[65], text[HL_FP_TEXT_LEN];
	golden_keys(noise, sign);
	for (int i = 0; i < 32; i++) {
		nn[i] = (uint8_t)(64 + i);
		ns[i] = (uint8_t)(96 + i);
	}
	hl_next_hash(nn, ns, nh);
	hl_hex(nh, 32, hex);
	assert_string_equal(hex, GOLDEN_NEXT_HEX);
	hl_fingerprint_next(noise, sign, nh, fp);
	hl_fingerprint_text(fp, text);
	assert_string_equal(text, GOLDEN_FP_NEXT_TEXT);
	/* The commitment is inside the fingerprint: another one (or none)
	 * gives other digits, so a card's commitment cannot be swapped
	 * unseen. */
	hl_fingerprint_next(noise, sign, NULL, fp0);
	hl_fingerprint_text(fp0, text);
	assert_string_equal(text, GOLDEN_FP_TEXT);
	nh[31] ^= 1;
	hl_fingerprint_next(noise, sign, nh, fp0);
	assert_memory_not_equal(fp, fp0, HL_FP_LEN);
	/* The commitment binds the order of the keys too. */
	uint8_t swapped[32];
	hl_next_hash(ns, nn, swapped);
	assert_memory_not_equal(swapped, nh, 32);
}

static void test_key_usable(void **state)
{
	(void)state;
	uint8_t zero[32] = { 0 }, one[32] = { 1 }, good_x[32], good_pk[32], sk[64], seed[32];
	memset(seed, 7, sizeof(seed));
	crypto_scalarmult_base(good_x, seed);
	crypto_sign_seed_keypair(good_pk, sk, seed);
	assert_true(hl_noise_key_usable(good_x));
	assert_false(hl_noise_key_usable(zero));   /* small order */
	assert_false(hl_noise_key_usable(one));
	assert_true(hl_signing_key_usable(good_pk));
	assert_false(hl_signing_key_usable(zero));
	assert_false(hl_signing_key_usable(one));  /* the neutral element */
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fingerprint_golden),
		cmocka_unit_test(test_fingerprint_text_zero_pads),
		cmocka_unit_test(test_fingerprint_matches),
		cmocka_unit_test(test_next_hash_and_fingerprint_golden),
		cmocka_unit_test(test_key_usable),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
