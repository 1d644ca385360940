/* mail/mime.h — finds the sealed bundle in an email (docs/bundle.md, "By
 * email").  A pure function over (buf, len): every length capped, no I/O,
 * a fuzz target (fuzz_mail).
 *
 * What it accepts is the layout hotline-mail sends, read the way RFC 2045
 * and 2046 allow other mail systems to rewrite it (folded headers, CRLF or
 * LF line ends, quoted or bare boundary, any header order and case):
 * a top-level Content-Type multipart/mixed with a boundary, a closing
 * delimiter, at most HL_MAIL_MAX_PARTS parts, of which exactly one is
 * application/x-hotline-bundle with Content-Transfer-Encoding base64.
 * Nested multiparts are not looked into.  Anything else is junk: the
 * caller quarantines it. */
#ifndef HL_MAIL_MIME_H
#define HL_MAIL_MIME_H

#include <stddef.h>
#include <stdint.h>

#define HL_MAIL_BUNDLE_TYPE "application/x-hotline-bundle"
#define HL_MAIL_MAX_BYTES (UINT64_C(3) << 29)   /* 1.5 GiB: a 1 GiB bundle in base64 */
#define HL_MAIL_MAX_HEADER (256u * 1024)        /* a header block, top or part */
#define HL_MAIL_MAX_FIELD 4096                  /* one unfolded header field */
#define HL_MAIL_MAX_PARTS 64
#define HL_MAIL_BOUNDARY_MAX 70                 /* RFC 2046 */

/* Finds the bundle attachment in the mail BUF (LEN bytes) and decodes it
 * into *OUT (xmalloc'd, *OUTLEN bytes; free() it).  HL_EINVAL (or
 * HL_ETOOBIG, HL_ETRUNC) with ERR saying why when the mail is not a
 * hotline bundle mail; *OUT is NULL then. */
int hl_mail_find_bundle(const uint8_t *buf, size_t len, uint8_t **out, size_t *outlen,
			char *err, size_t errlen);

#endif
