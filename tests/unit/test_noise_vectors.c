/* tests/unit/test_noise_vectors.c — crypto/noise.c against the public
 * cacophony test vectors ($HOTLINE_VECTORS/noise/cacophony.txt, the same file
 * snow and noise-c test against).
 *
 * Every vector named Noise_<fundamental pattern>[pskN...]_25519_ChaChaPoly_
 * BLAKE2b is run with both roles: each handshake message must equal the
 * vector's bytes and decrypt to its payload, the handshake hash must match,
 * and the transport messages after Split must match too.  Every other vector
 * name (other suites, deferred and fallback patterns) must be refused with
 * HL_EUNSUPP.  A second pass forges the last handshake message of every
 * supported vector and expects HL_EAUTH and a dead handshake.
 *
 * Which names count as supported is decided here, by a rule of this file's
 * own, so that a parser that wrongly refuses a pattern fails the test instead
 * of shrinking it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "crypto/noise.h"
#include "util/err.h"

#include "test_signer_fixture.h"

static const char *const fundamental[] = {
	"N", "K", "X", "NN", "NK", "NX", "KN", "KK", "KX",
	"XN", "XK", "XX", "IN", "IK", "IX",
};
#define NFUND (sizeof fundamental / sizeof fundamental[0])

static const char suite[] = "_25519_ChaChaPoly_BLAKE2b";

/* Message buffers are static: a Noise message may be 65535 bytes. */
static uint8_t buf_a[HL_NOISE_MAX_MSG], buf_b[HL_NOISE_MAX_MSG], buf_c[HL_NOISE_MAX_MSG];

/* Index into fundamental[] of NAME's pattern when NAME is one this
 * implementation must support, else -1.  *PSK tells whether modifiers were
 * present.  The rule: "Noise_", upper-case letters naming a fundamental
 * pattern, then nothing or "psk<digits>" joined by '+', then the suite. */
static int classify(const char *name, bool *psk)
{
	size_t len = strlen(name), slen = strlen(suite), i = 6, b;

	*psk = false;
	if (len < 6 + slen || strncmp(name, "Noise_", 6) != 0 ||
	    strcmp(name + len - slen, suite) != 0)
		return -1;
	len -= slen;
	for (b = i; b < len && name[b] >= 'A' && name[b] <= 'Z'; b++)
		;
	int idx = -1;
	for (size_t k = 0; k < NFUND; k++)
		if (strlen(fundamental[k]) == b - i && strncmp(name + i, fundamental[k], b - i) == 0)
			idx = (int)k;
	if (idx < 0)
		return -1;
	i = b;
	while (i < len) {
		if (len - i < 4 || strncmp(name + i, "psk", 3) != 0)
			return -1;
		i += 3;
		if (name[i] < '0' || name[i] > '9')
			return -1;
		while (i < len && name[i] >= '0' && name[i] <= '9')
			i++;
		if (i < len && name[i++] != '+')
			return -1;
		*psk = true;
	}
	return idx;
}

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	assert_non_null(hex);
	assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &n, NULL), 0);
	assert_int_equal(n * 2, strlen(hex));
	return n;
}

static const char *field(json_t *v, const char *prefix, const char *name)
{
	char key[64];
	snprintf(key, sizeof key, "%s%s", prefix, name);
	return json_string_value(json_object_get(v, key));
}

/* Gives HS the keys the vector lists for one role (PREFIX "init_" or
 * "resp_"), then starts it. */
static void setup_role(hl_noise_hs *hs, json_t *v, const char *prefix)
{
	uint8_t key[32], prologue[256];
	const char *x;
	json_t *psks;
	size_t i;

	x = field(v, prefix, "prologue");
	if (x)
		assert_int_equal(hl_noise_hs_set_prologue(hs, prologue, unhex(x, prologue, sizeof prologue)), 0);
	if ((x = field(v, prefix, "static"))) {
		assert_int_equal(unhex(x, key, sizeof key), 32);
		assert_int_equal(hl_noise_hs_set_s(hs, test_signer(key)), 0);
	}
	if ((x = field(v, prefix, "ephemeral"))) {
		assert_int_equal(unhex(x, key, sizeof key), 32);
		assert_int_equal(hl_noise_hs_set_e(hs, key), 0);
	}
	if ((x = field(v, prefix, "remote_static"))) {
		assert_int_equal(unhex(x, key, sizeof key), 32);
		assert_int_equal(hl_noise_hs_set_rs(hs, key), 0);
	}
	char pskkey[32];
	snprintf(pskkey, sizeof pskkey, "%spsks", prefix);
	psks = json_object_get(v, pskkey);
	for (i = 0; psks && i < json_array_size(psks); i++) {
		assert_int_equal(unhex(json_string_value(json_array_get(psks, i)), key, sizeof key), 32);
		assert_int_equal(hl_noise_hs_add_psk(hs, key), 0);
	}
	assert_int_equal(hl_noise_hs_start(hs), 0);
}

/* Runs vector V.  With FORGE, flips a bit of the last handshake message and
 * checks that the receiver refuses it; returns after that. */
static void run_vector(json_t *v, const char *name, bool one_way, bool forge)
{
	hl_noise_hs *ini = NULL, *res = NULL;
	hl_cipher_state i_send, i_recv, r_send, r_recv;
	json_t *msgs = json_object_get(v, "messages");
	bool split = false;
	size_t n, plen, clen, outlen, ptlen;

	assert_int_equal(hl_noise_hs_new(&ini, name, true), 0);
	assert_int_equal(hl_noise_hs_new(&res, name, false), 0);
	setup_role(ini, v, "init_");
	setup_role(res, v, "resp_");
	assert_true(json_array_size(msgs) > 0);

	for (size_t i = 0; i < json_array_size(msgs); i++) {
		json_t *m = json_array_get(msgs, i);
		plen = unhex(json_string_value(json_object_get(m, "payload")), buf_a, sizeof buf_a);
		clen = unhex(json_string_value(json_object_get(m, "ciphertext")), buf_b, sizeof buf_b);

		if (!split) {
			hl_noise_hs *w = i % 2 == 0 ? ini : res, *r = i % 2 == 0 ? res : ini;
			assert_true(hl_noise_hs_my_turn(w));
			assert_false(hl_noise_hs_my_turn(r));
			assert_int_equal(hl_noise_hs_write(w, buf_a, plen, buf_c, sizeof buf_c, &outlen), 0);
			assert_int_equal(outlen, clen);
			assert_memory_equal(buf_c, buf_b, clen);
			if (forge && hl_noise_hs_done(w)) {
				buf_c[outlen - 1] ^= 0x01;
				assert_int_equal(hl_noise_hs_read(r, buf_c, outlen, buf_b, sizeof buf_b, &n), HL_EAUTH);
				assert_false(hl_noise_hs_done(r));
				assert_int_equal(hl_noise_hs_read(r, buf_c, outlen, buf_b, sizeof buf_b, &n), HL_ESTATE);
				assert_null(hl_noise_hs_remote_static(r));
				goto out;
			}
			assert_int_equal(hl_noise_hs_read(r, buf_c, outlen, buf_b, sizeof buf_b, &n), 0);
			assert_int_equal(n, plen);
			assert_memory_equal(buf_b, buf_a, plen);
			assert_int_equal(hl_noise_hs_done(w), hl_noise_hs_done(r));
			if (hl_noise_hs_done(w)) {
				uint8_t hi[HL_NOISE_HASHLEN], hr[HL_NOISE_HASHLEN], hv[HL_NOISE_HASHLEN];
				const char *hh = json_string_value(json_object_get(v, "handshake_hash"));
				hl_noise_hs_hash(ini, hi);
				hl_noise_hs_hash(res, hr);
				assert_memory_equal(hi, hr, sizeof hi);
				if (hh) {
					assert_int_equal(unhex(hh, hv, sizeof hv), HL_NOISE_HASHLEN);
					assert_memory_equal(hi, hv, sizeof hv);
				}
				assert_int_equal(hl_noise_hs_split(ini, &i_send, &i_recv), 0);
				assert_int_equal(hl_noise_hs_split(res, &r_send, &r_recv), 0);
				assert_int_equal(i_recv.has_key, !one_way);
				assert_int_equal(r_send.has_key, !one_way);
				split = true;
			}
		} else {
			/* After the handshake, directions keep alternating by
			 * message index (one-way: always initiator to responder). */
			bool from_init = one_way || i % 2 == 0;
			hl_cipher_state *enc = from_init ? &i_send : &r_send;
			hl_cipher_state *dec = from_init ? &r_recv : &i_recv;
			assert_int_equal(hl_cs_encrypt(enc, NULL, 0, buf_a, plen, buf_c, sizeof buf_c, &outlen), 0);
			assert_int_equal(outlen, clen);
			assert_memory_equal(buf_c, buf_b, clen);
			assert_int_equal(hl_cs_decrypt(dec, NULL, 0, buf_c, outlen, buf_b, sizeof buf_b, &ptlen), 0);
			assert_int_equal(ptlen, plen);
			assert_memory_equal(buf_b, buf_a, plen);
		}
	}
	assert_false(forge);
	assert_true(split);  /* the vector covered the whole handshake */
	hl_cs_clear(&i_send);
	hl_cs_clear(&i_recv);
	hl_cs_clear(&r_send);
	hl_cs_clear(&r_recv);
out:
	hl_noise_hs_free(ini);
	hl_noise_hs_free(res);
}

static json_t *load_vectors(char *path, size_t cap)
{
	const char *dir = getenv("HOTLINE_VECTORS");
	json_error_t err;
	json_t *root;

	snprintf(path, cap, "%s/noise/cacophony.txt", dir ? dir : "$HOTLINE_VECTORS (unset)");
	if (!dir || access(path, R_OK) != 0) {
		printf("SKIPPED: Noise vectors not found at %s\n", path);
		fflush(stdout);
		return NULL;
	}
	root = json_load_file(path, 0, &err);
	if (!root)
		fail_msg("%s:%d: %s", path, err.line, err.text);
	return root;
}

static void test_cacophony(void **state)
{
	static char sentinel;
	char path[4096];
	json_t *root, *vectors;
	unsigned passed_mask = 0, psk_passed = 0, refused = 0;

	(void)state;
	root = load_vectors(path, sizeof path);
	if (!root)
		skip();
	vectors = json_object_get(root, "vectors");
	assert_true(json_is_array(vectors));

	for (size_t i = 0; i < json_array_size(vectors); i++) {
		json_t *v = json_array_get(vectors, i);
		const char *name = json_string_value(json_object_get(v, "protocol_name"));
		bool psk;
		int idx;

		assert_non_null(name);
		idx = classify(name, &psk);
		if (idx < 0) {
			/* Not NULL, so that the check below sees it reset. */
			hl_noise_hs *hs = (hl_noise_hs *)(void *)&sentinel;
			assert_int_equal(hl_noise_hs_new(&hs, name, true), HL_EUNSUPP);
			assert_null(hs);
			assert_int_equal(hl_noise_hs_new(&hs, name, false), HL_EUNSUPP);
			refused++;
			continue;
		}
		run_vector(v, name, strlen(fundamental[idx]) == 1, false);
		run_vector(v, name, strlen(fundamental[idx]) == 1, true);
		if (psk)
			psk_passed++;
		else
			passed_mask |= 1u << idx;
	}
	json_decref(root);
	printf("noise vectors: %u of %zu fundamental patterns and %u psk vectors passed; "
	       "%u other names refused as unsupported\n",
	       (unsigned)__builtin_popcount(passed_mask), NFUND, psk_passed, refused);
	for (size_t k = 0; k < NFUND; k++)
		if (!(passed_mask & (1u << k)))
			fail_msg("no Noise_%s%s vector found in %s", fundamental[k], suite, path);
	assert_true(psk_passed > 0);
	assert_true(refused > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cacophony),
	};
	char path[4096];
	json_t *probe;
	if (sodium_init() < 0)
		return 1;
	/* Without the vectors there is nothing to test: say so loudly, and
	 * exit 77 so that ctest reports the test as skipped, not passed. */
	probe = load_vectors(path, sizeof path);
	if (!probe)
		return 77;
	json_decref(probe);
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	test_signers_free();
	return failed;
}
