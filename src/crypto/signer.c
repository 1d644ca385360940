/* crypto/signer.c — the station's private keys and the only operations on
 * them: signing under a known context, the static X25519, and the identity
 * file they are read from and written to.  Contract in signer.h.
 *
 * This is the one source file that sees the X25519 private key and the
 * Ed25519 secret key.  Keep it so: a new use of either is a new operation
 * here, with its own check of what it is asked to do, never a getter.
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
 * it is freed; no error message ever quotes the file's content.
 *
 * Memory.  The public keys sit in the ordinary heap object; the secret keys
 * in their own sodium_malloc() block (struct secrets: locked, between guard
 * pages, left out of core dumps), made read-only once filled and wiped by
 * sodium_free().  It is not made PROT_NONE between operations: on the
 * machine this was written on a pair of mprotect() calls and the fault on
 * the next read cost about 50 us, which doubled the time of a signature
 * (21 -> 73 us) and of a DH (43 -> 93 us), and so would have slowed every
 * handshake and every message sent.  Against a bug that reads memory it
 * chooses, the protection that counts is another process (the key holder
 * this interface is the seam for), not a page flag. */
#include "crypto/signer.h"

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
#include "util/mem.h"
#include "util/text.h"

#define IDENTITY_HEADER \
	"# hotline identity: this station's PRIVATE keys. Never share this file.\n"
#define KEY_NOISE "NoisePrivateKey"
#define KEY_SIGN "SigningPrivateKey"

/* Every context a station signs under, with where it is defined.  A
 * message hl_signer_sign() signs begins with one of these and a NUL; a
 * new signed structure adds its context here, in the same change that
 * documents it. */
static const char *const contexts[] = {
	"hotline/1 message",      /* msg/item.h HL_CTX_*, docs/items.md */
	"hotline/1 receipt",
	"hotline/1 check",
	"hotline/1 answer",
	"hotline/1 agreement",
	"hotline/1 countersign",
	"hotline/1 call",
	"hotline/1 record seal",  /* record/format.h, docs/record.md 2.8 */
};
#define NCONTEXTS (sizeof(contexts) / sizeof(contexts[0]))

struct secrets {
	uint8_t noise_priv[HL_KEY_LEN];
	uint8_t sign_sk[crypto_sign_SECRETKEYBYTES]; /* libsodium's seed || public key */
};

struct hl_signer {
	uint8_t noise_pub[HL_KEY_LEN];
	uint8_t sign_pk[HL_KEY_LEN];
	struct secrets *sec;      /* sodium_malloc(); read-only once sealed; NULL remote */
	const struct hl_signer_ops *ops; /* remote: the key holder does the work */
	void *user;
};

/* A signer with zeroed, writable secrets: the constructors fill them and
 * call seal(). */
static hl_signer *signer_alloc(void)
{
	hl_signer *s = xcalloc(1, sizeof(*s));
	s->sec = sodium_malloc(sizeof(*s->sec));
	if (!s->sec) {
		free(s);
		return NULL;
	}
	sodium_memzero(s->sec, sizeof(*s->sec));
	return s;
}

void hl_signer_free(hl_signer *s)
{
	if (!s)
		return;
	sodium_free(s->sec); /* makes it writable, wipes, unmaps */
	sodium_memzero(s, sizeof(*s));
	free(s);
}

/* Derives the public keys from the secrets just written (SIGN_SEED is the
 * Ed25519 seed, from which crypto_sign_seed_keypair fills sign_sk), then
 * makes the secrets read-only. */
static int seal(hl_signer *s, const uint8_t sign_seed[static crypto_sign_SEEDBYTES])
{
	if (crypto_scalarmult_base(s->noise_pub, s->sec->noise_priv) != 0 ||
	    crypto_sign_seed_keypair(s->sign_pk, s->sec->sign_sk, sign_seed) != 0)
		return HL_ECRYPTO;
	return sodium_mprotect_readonly(s->sec) == 0 ? 0 : -errno;
}

/* One constructor for every source of keys: NOISE_PRIV and SIGN_SEED given,
 * or NULL for fresh random ones. */
static int signer_make(hl_signer **out, const uint8_t *noise_priv, const uint8_t *sign_seed)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	hl_signer *s = signer_alloc();
	int ret;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (noise_priv)
		memcpy(s->sec->noise_priv, noise_priv, HL_KEY_LEN);
	else
		randombytes_buf(s->sec->noise_priv, HL_KEY_LEN);
	if (sign_seed)
		memcpy(seed, sign_seed, sizeof(seed));
	else
		randombytes_buf(seed, sizeof(seed));
	ret = seal(s, seed);
	sodium_memzero(seed, sizeof(seed));
	if (ret < 0) {
		hl_signer_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

int hl_signer_generate(hl_signer **out)
{
	return signer_make(out, NULL, NULL);
}

int hl_signer_from_raw_for_tests(hl_signer **out, const uint8_t *x25519,
				 const uint8_t *ed25519_seed)
{
	return signer_make(out, x25519, ed25519_seed);
}

hl_signer *hl_signer_remote(const struct hl_signer_ops *ops, void *user,
			    const uint8_t noise_pub[static HL_KEY_LEN],
			    const uint8_t sign_pk[static HL_KEY_LEN])
{
	hl_signer *s = xcalloc(1, sizeof(*s));
	memcpy(s->noise_pub, noise_pub, HL_KEY_LEN);
	memcpy(s->sign_pk, sign_pk, HL_KEY_LEN);
	s->ops = ops;
	s->user = user;
	return s;
}

void *hl_signer_remote_user(const hl_signer *s, const struct hl_signer_ops *ops)
{
	return s && s->ops == ops ? s->user : NULL;
}

const uint8_t *hl_signer_noise_pub(const hl_signer *s)
{
	return s->noise_pub;
}

const uint8_t *hl_signer_sign_pk(const hl_signer *s)
{
	return s->sign_pk;
}

void hl_signer_fingerprint(const hl_signer *s, uint8_t fp[static HL_FP_LEN])
{
	hl_fingerprint(s->noise_pub, s->sign_pk, fp);
}

int hl_signer_context_known(const char *context)
{
	if (!context)
		return 0;
	for (size_t i = 0; i < NCONTEXTS; i++)
		if (strcmp(context, contexts[i]) == 0)
			return 1;
	return 0;
}

/* True when MSG (LEN bytes) begins with CONTEXT and its NUL. */
static int begins_with(const uint8_t *msg, size_t len, const char *context)
{
	size_t n = strlen(context);
	return len > n && memcmp(msg, context, n) == 0 && msg[n] == 0;
}

int hl_signer_sign(const hl_signer *s, const char *context, const uint8_t *msg, size_t len,
		   uint8_t sig[static HL_SIGNER_SIG_LEN])
{
	sodium_memzero(sig, HL_SIGNER_SIG_LEN);
	if (!s || !msg || len > HL_SIGNER_MSG_MAX || !hl_signer_context_known(context) ||
	    !begins_with(msg, len, context))
		return HL_EINVAL;
	if (s->ops)
		return s->ops->sign(s->user, context, msg, len, sig);
	if (crypto_sign_detached(sig, NULL, msg, len, s->sec->sign_sk) != 0) {
		sodium_memzero(sig, HL_SIGNER_SIG_LEN);
		return HL_ECRYPTO;
	}
	return 0;
}

int hl_signer_dh(const hl_signer *s, const uint8_t their_pub[static HL_KEY_LEN],
		 uint8_t out[static HL_KEY_LEN])
{
	/* libsodium refuses a low-order point already; checking the output
	 * too keeps the promise independent of the library version. */
	int rc = s->ops ? s->ops->dh(s->user, their_pub, out)
			: crypto_scalarmult(out, s->sec->noise_priv, their_pub);
	if (rc != 0 ||
	    sodium_is_zero(out, HL_KEY_LEN)) {
		sodium_memzero(out, HL_KEY_LEN);
		return HL_ECRYPTO;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The identity file
 */

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

/* The identity file's text into TEXT (CAP bytes of sodium_malloc memory);
 * returns its length. */
static size_t identity_text(const struct secrets *k, char *text, size_t cap)
{
	size_t len = 0;
	memcpy(text, IDENTITY_HEADER, sizeof(IDENTITY_HEADER) - 1);
	len += sizeof(IDENTITY_HEADER) - 1;
	len += (size_t)snprintf(text + len, cap - len, "%s = ", KEY_NOISE);
	hl_b64_key(k->noise_priv, text + len);
	len += HL_KEY_B64_LEN - 1;
	len += (size_t)snprintf(text + len, cap - len, "\n%s = ", KEY_SIGN);
	/* libsodium's sign_sk is seed || public key: store the seed only. */
	hl_b64_key(k->sign_sk, text + len);
	len += HL_KEY_B64_LEN - 1;
	text[len++] = '\n';
	return len;
}

int hl_signer_write_new(const char *path, const hl_signer *s)
{
	int ret;
	int fd = -1;
	int created = 0;
	/* header + two "Key = <44 chars>\n" lines */
	const size_t cap = sizeof(IDENTITY_HEADER) + 2 * (32 + HL_KEY_B64_LEN);
	char *text = sodium_malloc(cap);
	size_t len;

	if (!s->sec) { /* a remote signer has no secret to write */
		sodium_free(text);
		return HL_EINVAL;
	}
	if (!text)
		return -ENOMEM;
	len = identity_text(s->sec, text, cap);

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
	sodium_free(text); /* wipes */
	return ret;
}

/* Reads the two keys of identity text (BUF, LEN) into S's secrets and SEED. */
static int parse_keys(const char *buf, size_t len, hl_signer *s, uint8_t *seed)
{
	int ret = 0;
	hl_ini ini;
	hl_ini_item it;
	int have_noise = 0, have_sign = 0;
	size_t pos = 0;
	const char *line;
	size_t line_len;

	hl_ini_init(&ini, HL_INI_GLOBAL_KEYS);
	memset(&it, 0, sizeof(it));
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
			ret = hl_b64_key_parse(it.value, it.value_len, s->sec->noise_priv);
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
	if (sodium_is_zero(s->sec->noise_priv, HL_KEY_LEN) || sodium_is_zero(seed, HL_KEY_LEN))
		ret = HL_EINVAL;
out:
	hl_ini_finish(&ini);
	sodium_memzero(&it, sizeof(it));
	return ret;
}

int hl_signer_parse(const char *buf, size_t len, hl_signer **out)
{
	int ret;
	uint8_t *seed = sodium_malloc(crypto_sign_SEEDBYTES);
	hl_signer *s = signer_alloc();

	*out = NULL;
	if (!seed || !s) {
		ret = -ENOMEM;
		goto out;
	}
	if (len > HL_IDENTITY_MAX_BYTES) {
		ret = HL_ETOOBIG;
		goto out;
	}
	if ((ret = parse_keys(buf, len, s, seed)) < 0 || (ret = seal(s, seed)) < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	if (seed)
		sodium_free(seed);
	hl_signer_free(s);
	return ret;
}

int hl_signer_load(const char *path, hl_signer **out)
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
	ret = hl_signer_parse(buf, used, out);
out:
	if (buf)
		sodium_free(buf); /* wipes */
	close(fd);
	return ret;
}
