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

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fingerprint_golden),
		cmocka_unit_test(test_fingerprint_text_zero_pads),
		cmocka_unit_test(test_fingerprint_matches),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
