/* fuzz/fuzz_mail.c — libFuzzer target for the mail parser (mail/mime.c):
 * the input is one mail file as a Maildir would hold it.  When a bundle is
 * found, its size is checked against the input (base64 only shrinks).
 *
 * Seeds (fuzz/corpus/fuzz_mail/): a mail as hotline-mail sends it (libcurl's
 * MIME, as Postfix delivered it), one made by Python's email package, and a
 * few near misses (no closing boundary, two bundle parts, bad base64). */
#include <stdint.h>
#include <stdlib.h>

#include "mail/mime.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL;
	size_t outlen = 0;
	char err[256];
	if (hl_mail_find_bundle(data, size, &out, &outlen, err, sizeof(err)) == 0) {
		if (!out || outlen == 0 || outlen > size)
			abort();
		free(out);
	} else if (out) {
		abort();
	}
	return 0;
}
