/* msg/item.h — signed items (docs/items.md): the entries of a station's
 * chain on a link.  Encoding, decoding, signing, verification, hashing.
 *
 * Decoding is structural only and borrows from the input buffer (attachment
 * names point into it).  hl_item_open() is what a receiver calls: decode,
 * check who the item claims to be from and for, verify the signature — in
 * that order, and nothing of the item is used before the signature holds. */
#ifndef HL_MSG_ITEM_H
#define HL_MSG_ITEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <sodium.h>

#include "crypto/sha256.h"
#include "crypto/signer.h"
#include "item/types.h"

#define HL_CTX_MESSAGE "hotline/1 message"
#define HL_CTX_RECEIPT "hotline/1 receipt"
#define HL_CTX_CHECK "hotline/1 check"
#define HL_CTX_ANSWER "hotline/1 answer"
#define HL_CTX_AGREEMENT "hotline/1 agreement"
#define HL_CTX_COUNTERSIGN "hotline/1 countersign"
#define HL_CTX_CALL "hotline/1 call"
#define HL_CTX_ROTATION "hotline/1 rotation"
/* The rotation item's second signature, by the new key (items.md 2.8). */
#define HL_CTX_ROTATION_NEW "hotline/1 rotation new key"
#define HL_LABEL_SUBJECT "hotline/1 subject"
#define HL_LABEL_BODY "hotline/1 body"

/* 1 for a kind this code knows. */
int hl_item_kind_valid(int kind);
/* "message", "receipt", "check", ...; NULL for an unknown kind. */
const char *hl_item_kind_name(int kind);

/* "routine" ... "flash"; NULL for an invalid value. */
const char *hl_precedence_name(unsigned prec);
/* Accepts the names above (case-insensitive) and their first letters. */
int hl_precedence_parse(const char *s, enum hl_precedence *out);

struct hl_attachment_ref {
	const uint8_t *name;   /* not NUL-terminated; borrowed */
	uint8_t name_len;
	uint64_t size;
	uint8_t hash[HL_HASH_LEN];
};

struct hl_item_message {
	uint8_t id[HL_MSG_ID_LEN];
	uint8_t precedence;
	uint64_t class_seq;
	uint8_t subject_hash[HL_HASH_LEN];
	uint8_t body_hash[HL_HASH_LEN];
	uint64_t body_size;
	uint8_t n_attachments;
	struct hl_attachment_ref att[HL_MAX_ATTACHMENTS];
};

struct hl_receipt_entry {
	uint64_t seq;
	uint8_t hash[HL_HASH_LEN];
};

struct hl_item_receipt {
	uint64_t peer_seq;
	uint8_t peer_hash[HL_HASH_LEN];
	uint16_t count;
	struct hl_receipt_entry entries[HL_MAX_RECEIPT_ENTRIES];
};

/* A line check: a signed challenge (docs/items.md 2.3). */
enum hl_check_mode { HL_CHECK_MACHINE = 0, HL_CHECK_OPERATOR = 1 };

struct hl_item_check {
	uint8_t id[HL_CHECK_ID_LEN];  /* random: the nonce, and the check's name */
	uint8_t mode;                 /* enum hl_check_mode */
	uint8_t link;                 /* 1: a session with the counterpart was up */
	uint32_t timeout_ms;          /* the author's CheckTimeout, 1..24 h */
	uint64_t peer_seq;            /* the counterpart's chain head as held */
	uint8_t peer_hash[HL_HASH_LEN];
};

/* Who answered a check. */
enum hl_answer_by {
	HL_ANSWER_STATION = 0,        /* the station, at once (a machine answer) */
	HL_ANSWER_PERSON = 1,         /* an operator, with `hotline answer` */
	HL_ANSWER_NO_PERSON = 2,      /* the station: nobody answered in time */
};

struct hl_item_answer {
	uint64_t check_seq;           /* the CHECK's position in the counterpart's chain */
	uint8_t check_hash[HL_HASH_LEN];
	uint8_t by;                   /* enum hl_answer_by */
	uint64_t peer_seq;            /* the counterpart's chain head as held */
	uint8_t peer_hash[HL_HASH_LEN];
};

/* A proposed agreement: a document, named by its hash, that the author
 * signs and asks the counterpart to countersign.  The agreement's id is the
 * hash of this item, which both stations compute alike. */
struct hl_item_agreement {
	const uint8_t *name;          /* a base name, as attachments; borrowed */
	uint8_t name_len;
	uint64_t size;
	uint8_t doc_hash[HL_HASH_LEN]; /* SHA-256 of the document (hl_doc_hash) */
	uint8_t msg_id[HL_MSG_ID_LEN]; /* the message that carries the document */
};

struct hl_item_countersign {
	uint64_t proposal_seq;        /* the AGREEMENT's position in the counterpart's chain */
	uint8_t agreement_id[HL_HASH_LEN]; /* its hash */
	uint8_t doc_hash[HL_HASH_LEN];
};

#include "msg/callitem.h"

/* Why a station rotated, in its operator's words (informational). */
enum hl_rotation_reason { HL_ROTATE_ROUTINE = 0, HL_ROTATE_COMPROMISE = 1 };

/* A key rotation (docs/items.md 2.8, docs/rotation.md): the author's new
 * keys, which must hash to the commitment its chain holds, and the
 * commitment to the keys after them.  NEW_SIG is the new SigningKey's
 * signature over the item up to it, under HL_CTX_ROTATION_NEW; the item's
 * own sig is by the chain's key before the rotation. */
struct hl_item_rotation {
	uint8_t noise_key[32];
	uint8_t signing_key[32];
	uint8_t next_hash[32];
	uint8_t reason;               /* enum hl_rotation_reason */
	uint8_t new_sig[HL_SIG_LEN];
};

struct hl_item {
	enum hl_item_kind kind;
	uint8_t author[32];
	uint8_t counterpart[32];
	uint64_t seq;
	uint8_t prev[HL_HASH_LEN];
	uint64_t time_ms;
	union {
		struct hl_item_message msg;
		struct hl_item_receipt rcpt;
		struct hl_item_check chk;
		struct hl_item_answer ans;
		struct hl_item_agreement agr;
		struct hl_item_countersign csig;
		struct hl_item_call call;
		struct hl_item_rotation rot;
	} u;
	uint8_t sig[HL_SIG_LEN];
	/* When decoding failed: the rule broken, for people ("class_seq 0",
	 * "a field runs past the end"); static text, never from the input. */
	const char *bad;
};

/* Encodes IT into OUT (capacity CAP) and has SIGNER sign it under its
 * kind's context (with the key the signer holds for it: the chain's
 * current key, which the caller made sure is the signer's; a rotation is
 * signed by the signer's new key and its previous one); fills it->sig
 * (and a rotation's new_sig).  HL_EINVAL for values the format forbids,
 * HL_ETOOBIG when the encoding exceeds CAP or HL_ITEM_MAX. */
int hl_item_encode_sign(struct hl_item *it, const hl_signer *signer,
			uint8_t *out, size_t cap, size_t *len);

/* Encodes IT with the signature it already carries (re-serialising a
 * decoded item gives back the same bytes). */
int hl_item_encode(const struct hl_item *it, uint8_t *out, size_t cap, size_t *len);

/* Structural decode of BUF (LEN bytes) into IT; no signature check. */
int hl_item_decode(const uint8_t *buf, size_t len, struct hl_item *it);

/* The seq an item claims, read from the common header only (any context
 * string): so that an item that does not decode can still be refused at
 * its position.  Unauthenticated: a claim by whoever sent the bytes. */
int hl_item_peek_seq(const uint8_t *buf, size_t len, uint64_t *seq);

/* Decode, then require author == AUTHOR and counterpart == COUNTERPART
 * (either may be NULL to skip), then verify the signature with the
 * author's key (the author's SigningKey before any rotation), and a
 * rotation's second signature with the new key it carries.  HL_EAUTH when
 * a signature fails, HL_EPEER when the keys are not the expected ones. */
int hl_item_open(const uint8_t *buf, size_t len, const uint8_t *author,
		 const uint8_t *counterpart, struct hl_item *it);
/* The same, the signature checked with KEY: the SigningKey current on the
 * author's chain at the item's position (docs/items.md section 3, rule
 * 5).  KEY NULL: the author's. */
int hl_item_open_key(const uint8_t *buf, size_t len, const uint8_t *author,
		     const uint8_t *counterpart, const uint8_t *key, struct hl_item *it);

/* Whether BUF's last 64 bytes are KEY's signature over the rest: what
 * hl_item_open checks last, done beforehand (on several threads, say) for
 * hl_item_open_with_verdict.  Nothing else of BUF is looked at. */
bool hl_item_sig_ok(const uint8_t *buf, size_t len, const uint8_t key[static 32]);
/* hl_item_open, the same checks in the same order, with the signature's
 * verdict given: SIG_OK as hl_item_sig_ok(BUF, LEN, KEY) answered for the
 * key current at the item's position. */
int hl_item_open_with_verdict(const uint8_t *buf, size_t len, const uint8_t *author,
			 const uint8_t *counterpart, bool sig_ok, struct hl_item *it);
/* A rotation IT encoded in OUT (LEN bytes, with its new_sig zero): SIGNER's
 * current key signs HL_CTX_ROTATION_NEW, its NUL and the bytes before
 * new_sig, into it->u.rot.new_sig and OUT.  hl_item_encode_sign and the key
 * holder (holder/serve.c) call it before the outer signature. */
int hl_item_sign_rotation_new(struct hl_item *it, const hl_signer *signer, uint8_t *out,
			      size_t len);
/* A decoded rotation IT (bytes BUF, LEN): whether its new_sig is its new
 * SigningKey's.  hl_item_open checks it; exposed for the tests. */
bool hl_item_rotation_sig_ok(const uint8_t *buf, size_t len, const struct hl_item *it);

/* BLAKE2b-256 over the whole encoding. */
void hl_item_hash(const uint8_t *buf, size_t len, uint8_t out[static HL_HASH_LEN]);

/* BLAKE2b-256 keyed with SALT over LABEL NUL DATA: the commitments to a
 * message's subject and body. */
void hl_salted_hash(const uint8_t salt[static HL_SALT_LEN], const char *label,
		    const uint8_t *data, size_t len, uint8_t out[static HL_HASH_LEN]);

/* The hash of a document (an attachment, an agreement's document):
 * SHA-256, unkeyed, so that anyone checks a disclosed document with
 * `sha256sum` (docs/items.md section 2.1). */
#define HL_DOC_HASH_NAME "sha256"
_Static_assert(HL_SHA256_LEN == HL_HASH_LEN, "a document hash fills a hash field");
void hl_doc_hash(const uint8_t *data, size_t len, uint8_t out[static HL_HASH_LEN]);

/* The running hash of one part of a message as it arrives (or is copied):
 * the body (part 0, when it travels in chunks) by hl_salted_hash's rule with
 * HL_LABEL_BODY, an attachment by hl_doc_hash's.  A plain value: copy it,
 * drop it. */
typedef struct hl_parthash {
	bool body;
	union {
		crypto_generichash_state body;
		hl_sha256_state doc;
	} u;
} hl_parthash;

/* Starts the hash of a body (SALT: the message's) or of a document. */
void hl_parthash_body(hl_parthash *h, const uint8_t salt[static HL_SALT_LEN]);
void hl_parthash_doc(hl_parthash *h);
void hl_parthash_update(hl_parthash *h, const uint8_t *data, size_t len);
/* Writes the hash and wipes the state. */
void hl_parthash_final(hl_parthash *h, uint8_t out[static HL_HASH_LEN]);

/* True when NAME (LEN bytes) is an acceptable attachment base name. */
int hl_attachment_name_valid(const uint8_t *name, size_t len);

#endif
