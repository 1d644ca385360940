/* tests/unit/test_aead.c — the transport's bulk ChaCha20-Poly1305 through
 * libcrypto's EVP (crypto/aead.c, behind crypto/noise.c's bulk
 * CipherStates) against libsodium's, byte for byte: every length around the
 * bulk threshold and up to the largest Noise message, with and without
 * associated data, either side decrypting the other's output; forgeries
 * refused with the output wiped and the nonce kept; Rekey; a context made
 * once per cipher state, never per record; and none for short records. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "crypto/aead.h"
#include "crypto/noise.h"
#include "util/err.h"

#define MAXPT (HL_NOISE_MAX_MSG - HL_NOISE_TAGLEN)

static uint8_t pt[HL_NOISE_MAX_MSG], ct[HL_NOISE_MAX_MSG], ref[HL_NOISE_MAX_MSG],
	out[HL_NOISE_MAX_MSG];

/* hl_aead_evp with a count of the contexts it made. */
static unsigned made;
static struct hl_aead *counting_make(const uint8_t key[static HL_NOISE_KEYLEN], bool encrypt)
{
	made++;
	return hl_aead_evp.make(key, encrypt);
}
static struct hl_aead_impl counting;

static int setup(void **state)
{
	(void)state;
	counting = hl_aead_evp;
	counting.make = counting_make;
	made = 0;
	hl_noise_set_bulk_aead(&counting);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	hl_noise_set_bulk_aead(NULL);
	return 0;
}

static void bulk_init(hl_cipher_state *cs, const uint8_t k[32])
{
	memset(cs, 0, sizeof(*cs));
	hl_cs_init(cs, k);
	cs->bulk = true;   /* as Split() makes them */
}

static void nonce_of(uint64_t n, uint8_t nonce[12])
{
	memset(nonce, 0, 4);
	for (int i = 0; i < 8; i++)
		nonce[4 + i] = (uint8_t)(n >> (8 * i));
}

static const size_t lengths[] = { 0, 1, 15, 16, 17, 63, 64, 65, 255, 1023, 1024, 1025,
				  1500, 4095, 4096, 4097, 16384, 65499, MAXPT };
#define NLEN (sizeof(lengths) / sizeof(lengths[0]))

static void test_same_bytes_as_libsodium(void **state)
{
	uint8_t k[32], ad[80], nonce[12];
	(void)state;
	for (size_t li = 0; li < NLEN; li++) {
		for (size_t adlen = 0; adlen <= 64; adlen += 64) {
			hl_cipher_state enc, dec;
			size_t len = lengths[li], clen, plen;
			unsigned long long rlen;
			randombytes_buf(k, sizeof(k));
			randombytes_buf(ad, sizeof(ad));
			randombytes_buf(pt, len);
			bulk_init(&enc, k);
			bulk_init(&dec, k);
			/* an arbitrary counter: the nonce layout matters too */
			enc.n = dec.n = ((uint64_t)randombytes_random() << 32) | li;
			nonce_of(enc.n, nonce);
			assert_int_equal(hl_cs_encrypt(&enc, adlen ? ad : NULL, adlen, pt, len, ct,
						       sizeof(ct), &clen), 0);
			crypto_aead_chacha20poly1305_ietf_encrypt(ref, &rlen, pt, len, adlen ? ad : NULL,
								  adlen, NULL, nonce, k);
			assert_int_equal(clen, rlen);
			assert_memory_equal(ct, ref, clen);
			/* long records went through EVP, short ones did not */
			assert_int_equal(enc.aead != NULL, len >= HL_NOISE_BULK_MIN);
			/* libsodium's bytes open through EVP, in place too */
			memcpy(out, ref, rlen);
			assert_int_equal(hl_cs_decrypt(&dec, adlen ? ad : NULL, adlen, out, rlen, out,
						       sizeof(out), &plen), 0);
			assert_int_equal(plen, len);
			assert_memory_equal(out, pt, len);
			assert_int_equal(dec.aead != NULL, len >= HL_NOISE_BULK_MIN);
			hl_cs_clear(&enc);
			hl_cs_clear(&dec);
		}
	}
}

static void test_forgery_wipes_and_keeps_nonce(void **state)
{
	uint8_t k[32], ad[] = "ad";
	hl_cipher_state a, b;
	size_t clen, n;
	const size_t len = 5000;
	(void)state;
	randombytes_buf(k, sizeof(k));
	randombytes_buf(pt, len);
	bulk_init(&a, k);
	bulk_init(&b, k);
	assert_int_equal(hl_cs_encrypt(&a, ad, 2, pt, len, ct, sizeof(ct), &clen), 0);
	/* a flipped bit in the text, at the end of the text, in the tag */
	const size_t at[] = { 0, 1000, len - 1, len, clen - 1 };
	for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
		ct[at[i]] ^= 0x01;
		memset(out, 0xa5, len);
		assert_int_equal(hl_cs_decrypt(&b, ad, 2, ct, clen, out, sizeof(out), &n), HL_EAUTH);
		assert_int_equal(n, 0);
		assert_int_equal(b.n, 0);
		/* nothing of the unauthenticated plaintext is left */
		assert_true(sodium_is_zero(out, len));
		ct[at[i]] ^= 0x01;
	}
	/* the wrong associated data */
	assert_int_equal(hl_cs_decrypt(&b, (const uint8_t *)"AD", 2, ct, clen, out, sizeof(out), &n),
			 HL_EAUTH);
	/* the genuine record still opens, then is a replay */
	assert_int_equal(hl_cs_decrypt(&b, ad, 2, ct, clen, out, sizeof(out), &n), 0);
	assert_memory_equal(out, pt, len);
	assert_int_equal(b.n, 1);
	assert_int_equal(hl_cs_decrypt(&b, ad, 2, ct, clen, out, sizeof(out), &n), HL_EAUTH);
	hl_cs_clear(&a);
	hl_cs_clear(&b);
}

static void test_one_context_per_cipher_state(void **state)
{
	uint8_t k[32];
	hl_cipher_state a, b;
	size_t clen, n;
	(void)state;
	randombytes_buf(k, sizeof(k));
	bulk_init(&a, k);
	bulk_init(&b, k);
	for (int i = 0; i < 100; i++) {
		size_t len = i % 3 ? 2000 + (size_t)i : 100;   /* long and short mixed */
		randombytes_buf(pt, len);
		assert_int_equal(hl_cs_encrypt(&a, NULL, 0, pt, len, ct, sizeof(ct), &clen), 0);
		assert_int_equal(hl_cs_decrypt(&b, NULL, 0, ct, clen, out, sizeof(out), &n), 0);
		assert_memory_equal(out, pt, len);
	}
	assert_int_equal(made, 2);   /* one each, not one per record */
	hl_cs_clear(&a);
	hl_cs_clear(&b);
	assert_null(a.aead);
	assert_false(a.has_key);

	/* A cipher state that only ever carries short records makes none. */
	made = 0;
	bulk_init(&a, k);
	for (int i = 0; i < 10; i++)
		assert_int_equal(hl_cs_encrypt(&a, NULL, 0, pt, HL_NOISE_BULK_MIN - 1, ct, sizeof(ct),
					       &clen), 0);
	assert_int_equal(made, 0);
	hl_cs_clear(&a);
	/* Neither does a CipherState that Split() did not make. */
	hl_cs_init(&a, k);
	assert_int_equal(hl_cs_encrypt(&a, NULL, 0, pt, 4096, ct, sizeof(ct), &clen), 0);
	assert_int_equal(made, 0);
	hl_cs_clear(&a);
}

static void test_rekey_and_turn(void **state)
{
	uint8_t k[32], nonce[12], expect[48], rk[32];
	const uint8_t zeros[32] = { 0 }, maxnonce[12] = { 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff,
							  0xff, 0xff, 0xff, 0xff };
	hl_cipher_state a;
	size_t clen, n;
	unsigned long long rlen;
	(void)state;
	randombytes_buf(k, sizeof(k));
	randombytes_buf(pt, 3000);
	bulk_init(&a, k);
	assert_int_equal(hl_cs_encrypt(&a, NULL, 0, pt, 3000, ct, sizeof(ct), &clen), 0);
	assert_non_null(a.aead);
	/* Rekey re-keys the context it has (section 4.2). */
	hl_cs_rekey(&a);
	crypto_aead_chacha20poly1305_ietf_encrypt(expect, &rlen, zeros, 32, NULL, 0, NULL, maxnonce, k);
	memcpy(rk, expect, 32);
	assert_memory_equal(a.k, rk, 32);
	assert_int_equal(hl_cs_encrypt(&a, NULL, 0, pt, 3000, ct, sizeof(ct), &clen), 0);
	nonce_of(1, nonce);
	crypto_aead_chacha20poly1305_ietf_encrypt(ref, &rlen, pt, 3000, NULL, 0, NULL, nonce, rk);
	assert_memory_equal(ct, ref, clen);
	/* The same state turned to decrypting (the API allows both). */
	a.n = 1;
	assert_int_equal(hl_cs_decrypt(&a, NULL, 0, ref, rlen, out, sizeof(out), &n), 0);
	assert_memory_equal(out, pt, 3000);
	hl_cs_clear(&a);
}

static void test_split_states_are_bulk(void **state)
{
	/* NN between two parties: the transport states carry long records
	 * through EVP and each side reads the other's. */
	hl_noise_hs *i = NULL, *r = NULL;
	hl_cipher_state is, ir, rs, rr;
	uint8_t m[128], p[128];
	size_t len, plen, clen, n;
	(void)state;
	assert_int_equal(hl_noise_hs_new(&i, "Noise_NN_25519_ChaChaPoly_BLAKE2b", true), 0);
	assert_int_equal(hl_noise_hs_new(&r, "Noise_NN_25519_ChaChaPoly_BLAKE2b", false), 0);
	assert_int_equal(hl_noise_hs_start(i), 0);
	assert_int_equal(hl_noise_hs_start(r), 0);
	assert_int_equal(hl_noise_hs_write(i, NULL, 0, m, sizeof(m), &len), 0);
	assert_int_equal(hl_noise_hs_read(r, m, len, p, sizeof(p), &plen), 0);
	assert_int_equal(hl_noise_hs_write(r, NULL, 0, m, sizeof(m), &len), 0);
	assert_int_equal(hl_noise_hs_read(i, m, len, p, sizeof(p), &plen), 0);
	assert_int_equal(hl_noise_hs_split(i, &is, &ir), 0);
	assert_int_equal(hl_noise_hs_split(r, &rs, &rr), 0);
	assert_true(is.bulk && ir.bulk && rs.bulk && rr.bulk);
	randombytes_buf(pt, MAXPT);
	assert_int_equal(hl_cs_encrypt(&is, NULL, 0, pt, MAXPT, ct, sizeof(ct), &clen), 0);
	assert_int_equal(clen, HL_NOISE_MAX_MSG);
	assert_int_equal(hl_cs_decrypt(&rr, NULL, 0, ct, clen, out, sizeof(out), &n), 0);
	assert_memory_equal(out, pt, MAXPT);
	assert_non_null(is.aead);
	assert_non_null(rr.aead);
	hl_noise_hs_free(i);
	hl_noise_hs_free(r);
	hl_cs_clear(&is);
	hl_cs_clear(&ir);
	hl_cs_clear(&rs);
	hl_cs_clear(&rr);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_same_bytes_as_libsodium, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forgery_wipes_and_keeps_nonce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_context_per_cipher_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rekey_and_turn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_split_states_are_bulk, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
