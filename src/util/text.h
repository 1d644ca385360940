/* util/text.h — encodings and text safety: base64 (libsodium's, strict),
 * hex, and the sanitizer for text that came from another station. */
#ifndef HL_UTIL_TEXT_H
#define HL_UTIL_TEXT_H

#include <stddef.h>
#include <stdint.h>

/* Standard base64 with padding (RFC 4648 section 4) of a 32-byte key. */
#define HL_KEY_B64_LEN 45 /* 44 characters and a NUL */
void hl_b64_key(const uint8_t key[static 32], char out[static HL_KEY_B64_LEN]);
/* Decodes exactly 32 bytes from canonical padded base64 of length LEN;
 * anything else (wrong length, bad characters, non-canonical bits, trailing
 * bytes) is HL_EINVAL. */
int hl_b64_key_parse(const char *s, size_t len, uint8_t key[static 32]);

/* Lowercase hex of N bytes into OUT (2N+1 bytes). */
void hl_hex(const uint8_t *bin, size_t n, char *out);

/* 1 when P (LEN bytes) is valid UTF-8 without NUL bytes, else 0. */
int hl_utf8_text_valid(const uint8_t *p, size_t len);

/* 1 when code point CP changes how the text around it is shown or shows
 * as nothing: Unicode format characters (Cf: bidirectional overrides,
 * embeddings, isolates and marks such as U+202E, zero-width spaces and
 * joiners, U+FEFF, tags), U+2028/U+2029, and the invisible fillers. */
int hl_text_hidden(uint32_t cp);

/* Copies untrusted text into OUT (capacity CAP, always NUL-terminated) for
 * people to see: drops C0/C1 control characters, DEL and terminal escape
 * sequences, and replaces invalid UTF-8 and the characters
 * hl_text_hidden() names with U+FFFD (so a subject cannot reverse what
 * follows it, or hide a part of itself).  Newlines and tabs are kept when
 * KEEP_NEWLINES is nonzero.  OUT never needs more than 3 bytes per input
 * byte, plus the NUL.  Returns the length written.  Every place that shows
 * peer text to people goes through here; --json output keeps the exact
 * text instead, with every non-ASCII character escaped (\uXXXX). */
size_t hl_sanitize(const char *in, size_t len, char *out, size_t cap, int keep_newlines);

#endif
