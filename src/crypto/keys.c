/* crypto/keys.c — a station's identity (key generation, the identity file)
 * and fingerprints.  Contract in keys.h.
 *
 * The identity file is text, read with the INI reader (util/ini.h):
 *
 *   # hotline identity: this station's PRIVATE keys. Never share this file.
 *   NoisePrivateKey = <base64 of the 32-byte X25519 private key>
 *   SigningPrivateKey = <base64 of the 32-byte Ed25519 seed>
 *
 * Only the private halves are stored; the public keys are derived on load,
 * so they cannot disagree with the private ones.  Every buffer that holds
 * the file's text or a private key is sodium_malloc() memory, wiped before
 * it is freed; no error message ever quotes the file's content. */
#include "crypto/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/ini.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/text.h"

#define IDENTITY_HEADER \
	"# hotline identity: this station's PRIVATE keys. Never share this file.\n"
#define KEY_NOISE "NoisePrivateKey"
#define KEY_SIGN "SigningPrivateKey"

static hl_identity *identity_alloc(void)
{
	hl_identity *id = sodium_malloc(sizeof(*id));
	if (id)
		sodium_memzero(id, sizeof(*id));
	return id;
}

void hl_identity_free(hl_identity *id)
{
	if (id)
		sodium_free(id); /* wipes */
}

int hl_identity_generate(hl_identity **out)
{
	*out = NULL;
	hl_identity *id = identity_alloc();
	if (!id)
		return -ENOMEM;
	randombytes_buf(id->noise_priv, sizeof(id->noise_priv));
	if (crypto_scalarmult_base(id->noise_pub, id->noise_priv) != 0 ||
	    crypto_sign_keypair(id->sign_pk, id->sign_sk) != 0) {
		hl_identity_free(id);
		return HL_ECRYPTO;
	}
	*out = id;
	return 0;
}

/* Writes all of BUF to FD. */
static int write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

int hl_identity_write_new(const char *path, const hl_identity *id)
{
	int ret;
	int fd = -1;
	int created = 0;
	/* header + two "Key = <44 chars>\n" lines */
	const size_t cap = sizeof(IDENTITY_HEADER) + 2 * (32 + HL_KEY_B64_LEN);
	char *text = sodium_malloc(cap);
	if (!text)
		return -ENOMEM;

	size_t len = 0;
	memcpy(text, IDENTITY_HEADER, sizeof(IDENTITY_HEADER) - 1);
	len += sizeof(IDENTITY_HEADER) - 1;
	len += (size_t)snprintf(text + len, cap - len, "%s = ", KEY_NOISE);
	hl_b64_key(id->noise_priv, text + len);
	len += HL_KEY_B64_LEN - 1;
	len += (size_t)snprintf(text + len, cap - len, "\n%s = ", KEY_SIGN);
	/* libsodium's sign_sk is seed || public key: store the seed only. */
	hl_b64_key(id->sign_sk, text + len);
	len += HL_KEY_B64_LEN - 1;
	text[len++] = '\n';

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	created = 1;
	/* The umask may have taken bits away; make sure the owner can read. */
	if (fchmod(fd, 0600) < 0) {
		ret = -errno;
		goto out;
	}
	if ((ret = write_all(fd, text, len)) < 0)
		goto out;
	if (fsync(fd) < 0) {
		ret = -errno;
		goto out;
	}
	ret = close(fd) < 0 ? -errno : 0;
	fd = -1;
	if (ret == 0)
		ret = hl_fsync_parent(path);
out:
	if (fd >= 0)
		close(fd);
	if (ret < 0 && created)
		unlink(path);
	sodium_free(text);
	return ret;
}

int hl_identity_parse(const char *buf, size_t len, hl_identity **out)
{
	int ret;
	hl_ini ini;
	hl_ini_item it;
	int have_noise = 0, have_sign = 0;
	size_t pos = 0;
	const char *line;
	size_t line_len;
	uint8_t *seed = sodium_malloc(crypto_sign_SEEDBYTES);
	hl_identity *id = identity_alloc();

	*out = NULL;
	hl_ini_init(&ini, HL_INI_GLOBAL_KEYS);
	if (!seed || !id) {
		ret = -ENOMEM;
		goto out;
	}
	if (len > HL_IDENTITY_MAX_BYTES) {
		ret = HL_ETOOBIG;
		goto out;
	}
	while (hl_ini_next_line(buf, len, &pos, &line, &line_len)) {
		if ((ret = hl_ini_feed(&ini, line, line_len, &it)) < 0)
			goto out;
		/* No sections: an identity file is only the two keys. */
		if (it.kind == HL_INI_SECTION) {
			ret = HL_EINVAL;
			goto out;
		}
		if (it.kind != HL_INI_PAIR)
			continue;
		if (hl_ini_name_is(&it, KEY_NOISE) && !have_noise) {
			have_noise = 1;
			ret = hl_b64_key_parse(it.value, it.value_len, id->noise_priv);
		} else if (hl_ini_name_is(&it, KEY_SIGN) && !have_sign) {
			have_sign = 1;
			ret = hl_b64_key_parse(it.value, it.value_len, seed);
		} else {
			ret = HL_EINVAL; /* unknown or repeated */
		}
		if (ret < 0)
			goto out;
	}
	if (!have_noise || !have_sign) {
		ret = HL_ETRUNC;
		goto out;
	}
	/* An all-zero key is what a wiped or truncated file looks like. */
	if (sodium_is_zero(id->noise_priv, HL_KEY_LEN) || sodium_is_zero(seed, HL_KEY_LEN)) {
		ret = HL_EINVAL;
		goto out;
	}
	if (crypto_scalarmult_base(id->noise_pub, id->noise_priv) != 0 ||
	    crypto_sign_seed_keypair(id->sign_pk, id->sign_sk, seed) != 0) {
		ret = HL_ECRYPTO;
		goto out;
	}
	*out = id;
	id = NULL;
	ret = 0;
out:
	hl_ini_finish(&ini);
	sodium_memzero(&it, sizeof(it));
	if (seed)
		sodium_free(seed);
	hl_identity_free(id);
	return ret;
}

int hl_identity_load(const char *path, hl_identity **out)
{
	int ret;
	size_t used = 0;
	char *buf = NULL;
	struct stat st;

	*out = NULL;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -EINVAL;
		goto out;
	}
	if (st.st_mode & 077)
		fprintf(stderr,
			"hotline: warning: %s is readable or writable by others (mode %04o): "
			"its private keys may be exposed; run chmod 600 on it\n",
			path, (unsigned)(st.st_mode & 07777));
	/* Read into locked, guarded memory: no copy of the file is left in
	 * ordinary heap memory (hl_read_file would realloc). */
	buf = sodium_malloc(HL_IDENTITY_MAX_BYTES + 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + used, HL_IDENTITY_MAX_BYTES + 1 - used);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			ret = -errno;
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
		if (used > HL_IDENTITY_MAX_BYTES) {
			ret = HL_ETOOBIG;
			goto out;
		}
	}
	ret = hl_identity_parse(buf, used, out);
out:
	if (buf) {
		sodium_memzero(buf, HL_IDENTITY_MAX_BYTES + 1);
		sodium_free(buf);
	}
	close(fd);
	return ret;
}

void hl_fingerprint(const uint8_t noise_pub[static HL_KEY_LEN],
		    const uint8_t sign_pk[static HL_KEY_LEN], uint8_t fp[static HL_FP_LEN])
{
	crypto_generichash_state st;
	crypto_generichash_init(&st, NULL, 0, HL_FP_LEN);
	crypto_generichash_update(&st, (const uint8_t *)HL_FP_CONTEXT,
				  sizeof(HL_FP_CONTEXT) - 1);
	crypto_generichash_update(&st, noise_pub, HL_KEY_LEN);
	crypto_generichash_update(&st, sign_pk, HL_KEY_LEN);
	crypto_generichash_final(&st, fp, HL_FP_LEN);
}

void hl_fingerprint_text(const uint8_t fp[static HL_FP_LEN], char out[static HL_FP_TEXT_LEN])
{
	size_t o = 0;
	for (int i = 0; i < 8; i++) {
		uint32_t w = (uint32_t)fp[4 * i] << 24 | (uint32_t)fp[4 * i + 1] << 16 |
			     (uint32_t)fp[4 * i + 2] << 8 | (uint32_t)fp[4 * i + 3];
		o += (size_t)snprintf(out + o, HL_FP_TEXT_LEN - o, i ? " %05u" : "%05u",
				      (unsigned)(w % 100000u));
	}
}

int hl_fingerprint_matches(const char *text, const uint8_t fp[static HL_FP_LEN])
{
	char given[40], want[40], shown[HL_FP_TEXT_LEN];
	size_t n = 0;
	for (const char *p = text; *p; p++) {
		if (*p == ' ' || *p == '-')
			continue;
		if (*p < '0' || *p > '9' || n == sizeof(given))
			return HL_EINVAL;
		given[n++] = *p;
	}
	if (n != sizeof(given))
		return HL_EINVAL;
	hl_fingerprint_text(fp, shown);
	n = 0;
	for (const char *p = shown; *p; p++)
		if (*p != ' ')
			want[n++] = *p;
	return sodium_memcmp(given, want, sizeof(want)) == 0;
}
