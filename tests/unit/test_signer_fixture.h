/* tests/unit/test_signer_fixture.h — signers from raw keys for the tests
 * that give Noise fixed static keys (public vectors, golden transcripts).
 * Every signer made here stays reachable until test_signers_free(), so a
 * test can make them as freely as it made key arrays before the signer. */
#ifndef HL_TEST_SIGNER_FIXTURE_H
#define HL_TEST_SIGNER_FIXTURE_H

#include <stdlib.h>

#include "crypto/signer.h"
#include "util/mem.h"

static hl_signer **test_signers;
static size_t test_nsigners;

/* A signer whose X25519 private key is X25519 (NULL: random). */
static inline hl_signer *test_signer(const uint8_t *x25519)
{
	hl_signer *s = NULL;
	if (hl_signer_from_raw_for_tests(&s, x25519, NULL) < 0)
		abort();
	test_signers = xrealloc(test_signers, (test_nsigners + 1) * sizeof(*test_signers));
	test_signers[test_nsigners++] = s;
	return s;
}

static inline void test_signers_free(void)
{
	for (size_t i = 0; i < test_nsigners; i++)
		hl_signer_free(test_signers[i]);
	free(test_signers);
	test_signers = NULL;
	test_nsigners = 0;
}

#endif
