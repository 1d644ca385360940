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
 *   NextNoisePrivateKey = <the next keys, docs/rotation.md>
 *   NextSigningPrivateKey = <...>
 *   PreviousNoisePrivateKey = <after a rotation: the keys rotated away from>
 *   PreviousSigningPrivateKey = <...>
 *   RotatedAt = <ms since the epoch, with the previous keys>
 *
 * The two Next keys come together or not at all (an identity made before
 * rotation existed has none, and can never rotate), and so do the two
 * Previous keys and RotatedAt.  Only the private halves are stored; the
 * public keys are derived on load, so they cannot disagree with the
 * private ones.  Every buffer that holds
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
#include <stdbool.h>
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
#define KEY_ROTATED_AT "RotatedAt"

/* The key pairs an identity holds. */
enum which { CUR, NEXT, PREV, NPAIRS };

/* Their names in the file: NoiseKey's, then SigningKey's. */
static const char *const key_names[NPAIRS][2] = {
	[CUR] = { "NoisePrivateKey", "SigningPrivateKey" },
	[NEXT] = { "NextNoisePrivateKey", "NextSigningPrivateKey" },
	[PREV] = { "PreviousNoisePrivateKey", "PreviousSigningPrivateKey" },
};

/* Every context a station signs under, with where it is defined, and which
 * of its keys signs it.  A message hl_signer_sign() signs begins with one
 * of these and a NUL; a new signed structure adds its context here, in the
 * same change that documents it. */
static const struct {
	const char *context;
	enum which key;
} contexts[] = {
	{ "hotline/1 message", CUR },      /* msg/item.h HL_CTX_*, docs/items.md */
	{ "hotline/1 receipt", CUR },
	{ "hotline/1 check", CUR },
	{ "hotline/1 answer", CUR },
	{ "hotline/1 agreement", CUR },
	{ "hotline/1 countersign", CUR },
	{ "hotline/1 call", CUR },
	/* A rotation item is signed by the chain's key before it, the one
	 * rotated away from, and first by the new key (items.md 2.8). */
	{ "hotline/1 rotation", PREV },
	{ "hotline/1 rotation new key", CUR },
	{ "hotline/1 record seal", CUR },  /* record/format.h, docs/record.md 2.8 */
};
#define NCONTEXTS (sizeof(contexts) / sizeof(contexts[0]))

struct secrets {
	uint8_t noise_priv[NPAIRS][HL_KEY_LEN];
	uint8_t sign_sk[NPAIRS][crypto_sign_SECRETKEYBYTES]; /* libsodium's seed || public key */
};

struct hl_signer {
	uint8_t noise_pub[NPAIRS][HL_KEY_LEN];
	uint8_t sign_pk[NPAIRS][HL_KEY_LEN];
	bool has[NPAIRS];         /* the pair is in the secrets (CUR always) */
	bool has_next_hash;       /* the identity commits to next keys */
	uint8_t next_hash[HL_KEY_LEN];
	int64_t rotated_at;       /* with PREV */
	bool dh_only;             /* hl_signer_previous's: signs nothing */
	struct secrets *sec;      /* sodium_malloc(); read-only once sealed; NULL remote */
	/* A remote signer (hl_signer_remote): the key holder does the work;
	 * has[] then says which public keys are known.  PREV_FACE: the
	 * previous keys' face, whose DH is ops->dh_previous. */
	const struct hl_signer_ops *ops;
	void *user;
	bool prev_face;
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

/* Puts pair W: NOISE_PRIV and SIGN_SEED, or fresh random ones for NULL.
 * The public keys are derived by seal(). */
static void put_pair(hl_signer *s, enum which w, const uint8_t *noise_priv,
		     const uint8_t *sign_seed)
{
	if (noise_priv)
		memcpy(s->sec->noise_priv[w], noise_priv, HL_KEY_LEN);
	else
		randombytes_buf(s->sec->noise_priv[w], HL_KEY_LEN);
	/* the seed waits in the first half of sign_sk until seal() */
	if (sign_seed)
		memcpy(s->sec->sign_sk[w], sign_seed, crypto_sign_SEEDBYTES);
	else
		randombytes_buf(s->sec->sign_sk[w], crypto_sign_SEEDBYTES);
	s->has[w] = true;
}

/* Derives the public keys of every pair put and the next keys' hash, then
 * makes the secrets read-only. */
static int seal(hl_signer *s)
{
	uint8_t seed[crypto_sign_SEEDBYTES];
	int ret = 0;
	for (int w = 0; w < NPAIRS && ret == 0; w++) {
		if (!s->has[w])
			continue;
		memcpy(seed, s->sec->sign_sk[w], sizeof(seed));
		if (crypto_scalarmult_base(s->noise_pub[w], s->sec->noise_priv[w]) != 0 ||
		    crypto_sign_seed_keypair(s->sign_pk[w], s->sec->sign_sk[w], seed) != 0)
			ret = HL_ECRYPTO;
	}
	sodium_memzero(seed, sizeof(seed));
	if (ret < 0)
		return ret;
	if (s->has[NEXT]) {
		s->has_next_hash = true;
		hl_next_hash(s->noise_pub[NEXT], s->sign_pk[NEXT], s->next_hash);
	}
	return sodium_mprotect_readonly(s->sec) == 0 ? 0 : -errno;
}

/* Wipes the next private keys (and their public halves: only the hash is
 * public until the rotation), keeping the hash. */
static int forget_next(hl_signer *s)
{
	if (!s->has[NEXT])
		return 0;
	if (sodium_mprotect_readwrite(s->sec) != 0)
		return -errno;
	sodium_memzero(s->sec->noise_priv[NEXT], HL_KEY_LEN);
	sodium_memzero(s->sec->sign_sk[NEXT], sizeof(s->sec->sign_sk[NEXT]));
	sodium_memzero(s->noise_pub[NEXT], HL_KEY_LEN);
	sodium_memzero(s->sign_pk[NEXT], HL_KEY_LEN);
	s->has[NEXT] = false;
	return sodium_mprotect_readonly(s->sec) == 0 ? 0 : -errno;
}

/* One constructor for the raw sources of keys (NULL: random). */
static int signer_make(hl_signer **out, const uint8_t *noise_priv, const uint8_t *sign_seed,
		       bool next, const uint8_t *next_noise, const uint8_t *next_seed)
{
	hl_signer *s = signer_alloc();
	int ret;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	put_pair(s, CUR, noise_priv, sign_seed);
	if (next)
		put_pair(s, NEXT, next_noise, next_seed);
	if ((ret = seal(s)) < 0) {
		hl_signer_free(s);
		return ret;
	}
	*out = s;
	return 0;
}

int hl_signer_generate(hl_signer **out)
{
	return signer_make(out, NULL, NULL, true, NULL, NULL);
}

int hl_signer_from_raw_for_tests(hl_signer **out, const uint8_t *x25519,
				 const uint8_t *ed25519_seed)
{
	return signer_make(out, x25519, ed25519_seed, false, NULL, NULL);
}

int hl_signer_with_next_for_tests(hl_signer **out, const uint8_t *x25519,
				  const uint8_t *ed25519_seed, const uint8_t *next_x25519,
				  const uint8_t *next_seed)
{
	return signer_make(out, x25519, ed25519_seed, true, next_x25519, next_seed);
}

void hl_signer_public(const hl_signer *s, struct hl_signer_public *out)
{
	memset(out, 0, sizeof(*out));
	memcpy(out->noise_pub, s->noise_pub[CUR], HL_KEY_LEN);
	memcpy(out->sign_pk, s->sign_pk[CUR], HL_KEY_LEN);
	out->has_next = s->has_next_hash;
	if (out->has_next)
		memcpy(out->next_hash, s->next_hash, HL_KEY_LEN);
	out->has_prev = s->has[PREV];
	if (out->has_prev) {
		memcpy(out->prev_noise, s->noise_pub[PREV], HL_KEY_LEN);
		memcpy(out->prev_sign, s->sign_pk[PREV], HL_KEY_LEN);
		out->rotated_at = s->rotated_at;
	}
}

/* A remote signer's public state is PUB. */
static void take_public(hl_signer *s, const struct hl_signer_public *pub)
{
	memcpy(s->noise_pub[CUR], pub->noise_pub, HL_KEY_LEN);
	memcpy(s->sign_pk[CUR], pub->sign_pk, HL_KEY_LEN);
	s->has[CUR] = true;
	s->has_next_hash = pub->has_next;
	memset(s->next_hash, 0, HL_KEY_LEN);
	if (pub->has_next)
		memcpy(s->next_hash, pub->next_hash, HL_KEY_LEN);
	s->has[PREV] = pub->has_prev;
	memset(s->noise_pub[PREV], 0, HL_KEY_LEN);
	memset(s->sign_pk[PREV], 0, HL_KEY_LEN);
	s->rotated_at = 0;
	if (pub->has_prev) {
		memcpy(s->noise_pub[PREV], pub->prev_noise, HL_KEY_LEN);
		memcpy(s->sign_pk[PREV], pub->prev_sign, HL_KEY_LEN);
		s->rotated_at = pub->rotated_at;
	}
}

hl_signer *hl_signer_remote(const struct hl_signer_ops *ops, void *user,
			    const struct hl_signer_public *pub)
{
	hl_signer *s = xcalloc(1, sizeof(*s));
	take_public(s, pub);
	s->ops = ops;
	s->user = user;
	return s;
}

void *hl_signer_remote_user(const hl_signer *s, const struct hl_signer_ops *ops)
{
	return s && s->ops == ops && !s->prev_face ? s->user : NULL;
}

const uint8_t *hl_signer_noise_pub(const hl_signer *s)
{
	return s->noise_pub[CUR];
}

const uint8_t *hl_signer_sign_pk(const hl_signer *s)
{
	return s->sign_pk[CUR];
}

int hl_signer_next_hash(const hl_signer *s, uint8_t out[static HL_KEY_LEN])
{
	if (!s->has_next_hash)
		return HL_ENOTFOUND;
	memcpy(out, s->next_hash, HL_KEY_LEN);
	return 0;
}

void hl_signer_fingerprint(const hl_signer *s, uint8_t fp[static HL_FP_LEN])
{
	hl_fingerprint_next(s->noise_pub[CUR], s->sign_pk[CUR],
			    s->has_next_hash ? s->next_hash : NULL, fp);
}

const uint8_t *hl_signer_prev_noise_pub(const hl_signer *s)
{
	return s->has[PREV] ? s->noise_pub[PREV] : NULL;
}

const uint8_t *hl_signer_prev_sign_pk(const hl_signer *s)
{
	return s->has[PREV] ? s->sign_pk[PREV] : NULL;
}

int64_t hl_signer_rotated_at(const hl_signer *s)
{
	return s->has[PREV] ? s->rotated_at : 0;
}

int hl_signer_previous(const hl_signer *s, hl_signer **out)
{
	*out = NULL;
	if (!s->has[PREV])
		return HL_ENOTFOUND;
	if (s->ops) {
		/* the key holder's previous key: DH only, asked of it */
		struct hl_signer_public pub = { 0 };
		memcpy(pub.noise_pub, s->noise_pub[PREV], HL_KEY_LEN);
		memcpy(pub.sign_pk, s->sign_pk[PREV], HL_KEY_LEN);
		hl_signer *v = hl_signer_remote(s->ops, s->user, &pub);
		v->dh_only = v->prev_face = true;
		*out = v;
		return 0;
	}
	hl_signer *v = signer_alloc();
	if (!v)
		return -ENOMEM;
	/* the seed, as put_pair leaves it for seal() */
	put_pair(v, CUR, s->sec->noise_priv[PREV], s->sec->sign_sk[PREV]);
	v->dh_only = true;
	int ret = seal(v);
	if (ret < 0) {
		hl_signer_free(v);
		return ret;
	}
	*out = v;
	return 0;
}

/* The entry of the context table for CONTEXT, or -1. */
static int context_index(const char *context)
{
	if (!context)
		return -1;
	for (size_t i = 0; i < NCONTEXTS; i++)
		if (strcmp(context, contexts[i].context) == 0)
			return (int)i;
	return -1;
}

int hl_signer_context_known(const char *context)
{
	return context_index(context) >= 0;
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
	int i = context_index(context);
	sodium_memzero(sig, HL_SIGNER_SIG_LEN);
	if (!s || !msg || len > HL_SIGNER_MSG_MAX || i < 0 || !begins_with(msg, len, context))
		return HL_EINVAL;
	enum which w = contexts[i].key;
	if (s->dh_only || !s->has[w])
		return HL_ESTATE; /* no such key: a rotation item with no previous key */
	if (s->ops)
		return s->ops->sign(s->user, context, msg, len, sig);
	if (crypto_sign_detached(sig, NULL, msg, len, s->sec->sign_sk[w]) != 0) {
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
	int rc = !s->ops ? crypto_scalarmult(out, s->sec->noise_priv[CUR], their_pub)
		 : s->prev_face ? s->ops->dh_previous(s->user, their_pub, out)
				: s->ops->dh(s->user, their_pub, out);
	if (rc != 0 || sodium_is_zero(out, HL_KEY_LEN)) {
		sodium_memzero(out, HL_KEY_LEN);
		return HL_ECRYPTO;
	}
	return 0;
}

/* ------------------------------------------------------------------------
 * The identity file
 */

/* The largest identity text: the header, six "Name = <44 chars>\n" lines
 * and RotatedAt. */
#define TEXT_CAP (sizeof(IDENTITY_HEADER) + 6 * (32 + HL_KEY_B64_LEN) + 64)

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

/* "NAME = <base64 of KEY>\n" at TEXT + LEN; returns the new length. */
static size_t key_line(char *text, size_t len, const char *name, const uint8_t *key)
{
	len += (size_t)snprintf(text + len, TEXT_CAP - len, "%s = ", name);
	hl_b64_key(key, text + len);
	len += HL_KEY_B64_LEN - 1;
	text[len++] = '\n';
	return len;
}

/* The identity file's text of S into TEXT (TEXT_CAP bytes of
 * sodium_malloc memory); returns its length.  libsodium's sign_sk is
 * seed || public key: the seed is what is stored. */
static size_t identity_text(const hl_signer *s, char *text)
{
	size_t len = sizeof(IDENTITY_HEADER) - 1;
	memcpy(text, IDENTITY_HEADER, len);
	for (int w = 0; w < NPAIRS; w++) {
		if (!s->has[w])
			continue;
		len = key_line(text, len, key_names[w][0], s->sec->noise_priv[w]);
		len = key_line(text, len, key_names[w][1], s->sec->sign_sk[w]);
	}
	if (s->has[PREV])
		len += (size_t)snprintf(text + len, TEXT_CAP - len, "%s = %lld\n", KEY_ROTATED_AT,
					(long long)s->rotated_at);
	return len;
}

int hl_signer_write_new(const char *path, const hl_signer *s)
{
	int ret;
	int fd = -1;
	int created = 0;
	char *text;
	size_t len;

	/* A signer that dropped its next keys would write an identity that
	 * no longer holds the keys its card commits to. */
	if (!s->sec) /* a remote signer has no secret to write */
		return HL_EINVAL;
	if (s->dh_only || (s->has_next_hash && !s->has[NEXT]))
		return HL_ESTATE;
	if (!(text = sodium_malloc(TEXT_CAP)))
		return -ENOMEM;
	len = identity_text(s, text);

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

/* RotatedAt's value: a decimal number of milliseconds, 1 to 2^62. */
static int parse_ms(const char *v, size_t len, int64_t *out)
{
	uint64_t n = 0;
	if (len == 0 || len > 19 || v[0] == '0')
		return HL_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (v[i] < '0' || v[i] > '9')
			return HL_EINVAL;
		n = n * 10 + (uint64_t)(v[i] - '0');
	}
	if (n > (UINT64_C(1) << 62))
		return HL_EINVAL;
	*out = (int64_t)n;
	return 0;
}

/* One "name = value" of an identity file into S (SEEN: the names given so
 * far, one bit per key name and one for RotatedAt). */
static int parse_pair(const hl_ini_item *it, hl_signer *s, unsigned *seen)
{
	for (int w = 0; w < NPAIRS; w++) {
		for (int k = 0; k < 2; k++) {
			unsigned bit = 1u << (2 * w + k);
			if (!hl_ini_name_is(it, key_names[w][k]))
				continue;
			if (*seen & bit)
				return HL_EINVAL; /* repeated */
			*seen |= bit;
			/* the signing key's seed waits in sign_sk for seal() */
			return hl_b64_key_parse(it->value, it->value_len,
						k ? s->sec->sign_sk[w] : s->sec->noise_priv[w]);
		}
	}
	unsigned bit = 1u << (2 * NPAIRS);
	if (!hl_ini_name_is(it, KEY_ROTATED_AT) || (*seen & bit))
		return HL_EINVAL; /* unknown or repeated */
	*seen |= bit;
	return parse_ms(it->value, it->value_len, &s->rotated_at);
}

/* Which pairs SEEN holds, all of each or none: HL_ETRUNC when the current
 * pair or half of another is missing. */
static int pairs_given(hl_signer *s, unsigned seen)
{
	for (int w = 0; w < NPAIRS; w++) {
		unsigned both = 3u << (2 * w);
		if ((seen & both) != 0 && (seen & both) != both)
			return HL_ETRUNC;
		s->has[w] = (seen & both) == both;
	}
	if (!s->has[CUR])
		return HL_ETRUNC;
	/* RotatedAt goes with the previous keys, and only with them */
	if (s->has[PREV] != ((seen & (1u << (2 * NPAIRS))) != 0))
		return HL_EINVAL;
	/* An all-zero key is what a wiped or truncated file looks like. */
	for (int w = 0; w < NPAIRS; w++)
		if (s->has[w] && (sodium_is_zero(s->sec->noise_priv[w], HL_KEY_LEN) ||
				  sodium_is_zero(s->sec->sign_sk[w], crypto_sign_SEEDBYTES)))
			return HL_EINVAL;
	return 0;
}

/* Reads the keys of identity text (BUF, LEN) into S's secrets. */
static int parse_keys(const char *buf, size_t len, hl_signer *s)
{
	int ret = 0;
	hl_ini ini;
	hl_ini_item it;
	unsigned seen = 0;
	size_t pos = 0;
	const char *line;
	size_t line_len;

	hl_ini_init(&ini, HL_INI_GLOBAL_KEYS);
	memset(&it, 0, sizeof(it));
	while (hl_ini_next_line(buf, len, &pos, &line, &line_len)) {
		if ((ret = hl_ini_feed(&ini, line, line_len, &it)) < 0)
			goto out;
		/* No sections: an identity file is only its keys. */
		if (it.kind == HL_INI_SECTION) {
			ret = HL_EINVAL;
			goto out;
		}
		if (it.kind == HL_INI_PAIR && (ret = parse_pair(&it, s, &seen)) < 0)
			goto out;
	}
	ret = pairs_given(s, seen);
out:
	hl_ini_finish(&ini);
	sodium_memzero(&it, sizeof(it));
	return ret;
}

/* The pairs must be distinct keys: a next or previous key that is the
 * current one would make a rotation that changes nothing. */
static int pairs_distinct(const hl_signer *s)
{
	for (int w = NEXT; w < NPAIRS; w++)
		if (s->has[w] && (sodium_memcmp(s->noise_pub[w], s->noise_pub[CUR], HL_KEY_LEN) == 0 ||
				  sodium_memcmp(s->sign_pk[w], s->sign_pk[CUR], HL_KEY_LEN) == 0))
			return HL_EINVAL;
	if (s->has[NEXT] && s->has[PREV] &&
	    (sodium_memcmp(s->noise_pub[NEXT], s->noise_pub[PREV], HL_KEY_LEN) == 0 ||
	     sodium_memcmp(s->sign_pk[NEXT], s->sign_pk[PREV], HL_KEY_LEN) == 0))
		return HL_EINVAL;
	return 0;
}

int hl_signer_parse(const char *buf, size_t len, hl_signer **out)
{
	int ret;
	hl_signer *s = signer_alloc();

	*out = NULL;
	if (!s)
		return -ENOMEM;
	if (len > HL_IDENTITY_MAX_BYTES) {
		ret = HL_ETOOBIG;
		goto out;
	}
	if ((ret = parse_keys(buf, len, s)) < 0 || (ret = seal(s)) < 0 ||
	    (ret = pairs_distinct(s)) < 0)
		goto out;
	*out = s;
	s = NULL;
out:
	hl_signer_free(s);
	return ret;
}

/* Reads and parses the identity file at PATH, keeping its next keys. */
static int read_identity(const char *path, hl_signer **out)
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

int hl_signer_load(const char *path, hl_signer **out)
{
	int ret = read_identity(path, out);
	if (ret == 0 && (ret = forget_next(*out)) < 0) {
		hl_signer_free(*out);
		*out = NULL;
	}
	return ret;
}

/* F rotated: its next keys current, its current ones previous (at NOW_MS),
 * new next keys. */
static int rotated(const hl_signer *f, int64_t now_ms, hl_signer **out)
{
	*out = NULL;
	if (!f->has[NEXT])
		return HL_EUNSUPP;
	hl_signer *n = signer_alloc();
	if (!n)
		return -ENOMEM;
	put_pair(n, CUR, f->sec->noise_priv[NEXT], f->sec->sign_sk[NEXT]);
	put_pair(n, PREV, f->sec->noise_priv[CUR], f->sec->sign_sk[CUR]);
	put_pair(n, NEXT, NULL, NULL);
	n->rotated_at = now_ms > 0 ? now_ms : 1;
	int ret = seal(n);
	if (ret == 0)
		ret = pairs_distinct(n); /* a fresh random key equal to another: never */
	if (ret < 0) {
		hl_signer_free(n);
		return ret;
	}
	*out = n;
	return 0;
}

int hl_signer_rotated_for_tests(const hl_signer *s, int64_t now_ms, hl_signer **out)
{
	return rotated(s, now_ms, out);
}

/* Replaces the identity at PATH with S: a new file beside it (a stale one
 * of a rotation that crashed before its rename is removed: it was never
 * the identity, and nothing was published from it), renamed over it. */
static int replace_identity(const char *path, const hl_signer *s)
{
	char *tmp = xasprintf("%s.new", path);
	int ret = 0;
	if (unlink(tmp) < 0 && errno != ENOENT)
		ret = -errno;
	if (ret == 0)
		ret = hl_signer_write_new(tmp, s);
	if (ret == 0 && rename(tmp, path) < 0)
		ret = -errno;
	if (ret == 0)
		ret = hl_fsync_parent(path);
	else
		unlink(tmp);
	free(tmp);
	return ret;
}

/* A remote signer rotates in the key holder, which answers its keys of
 * then. */
static int rotate_remote(hl_signer *s)
{
	struct hl_signer_public pub;
	if (s->dh_only || !s->ops->rotate)
		return HL_ESTATE;
	int ret = s->ops->rotate(s->user, &pub);
	if (ret == 0)
		take_public(s, &pub);
	return ret;
}

/* S's own next keys (a signer that kept them: hl_signer_parse's, the
 * tests'), rotated in memory. */
static int rotate_in_memory(hl_signer *s, int64_t now_ms)
{
	hl_signer *n = NULL;
	int ret = rotated(s, now_ms, &n);
	if (ret == 0) {
		hl_signer tmp = *s;
		*s = *n;
		*n = tmp;
	}
	hl_signer_free(n);
	return ret;
}

int hl_signer_rotate(hl_signer *s, const char *path, int64_t now_ms)
{
	hl_signer *f = NULL, *n = NULL;
	if (s->ops)
		return rotate_remote(s);
	if (!path)
		return rotate_in_memory(s, now_ms);
	int ret = read_identity(path, &f);
	if (ret < 0)
		goto out;
	if (sodium_memcmp(f->sign_pk[CUR], s->sign_pk[CUR], HL_KEY_LEN) != 0 ||
	    sodium_memcmp(f->noise_pub[CUR], s->noise_pub[CUR], HL_KEY_LEN) != 0) {
		ret = HL_EKEYS;
		goto out;
	}
	if ((ret = rotated(f, now_ms, &n)) < 0 || (ret = replace_identity(path, n)) < 0)
		goto out;
	/* Take the new identity: S becomes N, N the old S (freed below); the
	 * long-lived signer keeps no next private keys. */
	hl_signer tmp = *s;
	*s = *n;
	*n = tmp;
	ret = forget_next(s);
out:
	hl_signer_free(n);
	hl_signer_free(f);
	return ret;
}
