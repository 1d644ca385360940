/* fuzz/fuzz_bundle.c — libFuzzer target for courier bundles (bundle/
 * format.c, bundle/seal.c).  The first byte picks the layer:
 *
 *   even  the whole file: header, framing, the Noise_X handshake and the
 *         transport messages, opened as station B with fixed keys (A the
 *         only pinned sender), each decrypted packet through the check;
 *   odd   the decrypted plaintext stream: the rest of the input is split
 *         into frames (2-byte length, bytes) and each is fed to the packet
 *         check as if it had decrypted, so the packet rules are reached
 *         without breaking the cipher.
 *
 * Seeds (fuzz/corpus/fuzz_bundle/) are real bundles from A to B and their
 * plaintext streams, with items signed by A. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bundle/format.h"
#include "bundle/seal.h"
#include "util/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hl_signer *ida, *idb;
static struct hl_bundle_validator validator;

/* Fixed identities: seeds 0xa1.. for A, 0xb2.. for B (the seed files were
 * made with the same). */
static void keys_init(void)
{
	static int done;
	uint8_t seed[32];
	if (done)
		return;
	if (sodium_init() < 0)
		abort();
	memset(seed, 0xa1, 32);
	if (hl_signer_from_raw_for_tests(&ida, seed, seed) < 0)
		abort();
	memset(seed, 0xb2, 32);
	if (hl_signer_from_raw_for_tests(&idb, seed, seed) < 0)
		abort();
	done = 1;
}

static int on_sender(void *arg, const uint8_t pub[static 32])
{
	(void)arg;
	if (memcmp(pub, hl_signer_noise_pub(ida), 32) != 0)
		return HL_EPEER;
	hl_bundle_validator_init(&validator, hl_signer_sign_pk(ida), hl_signer_sign_pk(idb));
	return 0;
}

static int on_packet(void *arg, const uint8_t *rec, size_t len)
{
	(void)arg;
	return hl_bundle_validate_packet(&validator, rec, len);
}

static void plaintext(const uint8_t *p, size_t n)
{
	hl_bundle_validator_init(&validator, hl_signer_sign_pk(ida), hl_signer_sign_pk(idb));
	while (n >= 2) {
		size_t len = (size_t)p[0] << 8 | p[1];
		if (len > n - 2)
			len = n - 2;
		if (hl_bundle_validate_packet(&validator, p + 2, len) < 0)
			return;
		p += 2 + len;
		n -= 2 + len;
	}
	if (hl_bundle_validator_finish(&validator) == 0 && !validator.ended)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	keys_init();
	if (size < 1)
		return 0;
	if (data[0] & 1) {
		plaintext(data + 1, size - 1);
		return 0;
	}
	struct hl_bundle_open_cb cb = { .sender = on_sender, .packet = on_packet };
	memset(&validator, 0, sizeof(validator));
	if (hl_bundle_open(data + 1, size - 1, idb, &cb, err, sizeof(err)) == 0 &&
	    hl_bundle_validator_finish(&validator) == 0 && validator.packets > HL_BUNDLE_MAX_PACKETS)
		abort();
	return 0;
}
