/* item/types.h — the numbers that name the signed items (docs/items.md):
 * their lengths and limits, their kinds, the precedences.  Plain constants
 * and enums, no code and no include: the items' codec (msg/item.h) and the
 * store (store/store.h), which keeps items as bytes without decoding them,
 * both take them from here, so the store depends on nothing that uses it. */
#ifndef HL_ITEM_TYPES_H
#define HL_ITEM_TYPES_H

#define HL_ITEM_MAX 16384
#define HL_HASH_LEN 32
#define HL_SIG_LEN 64
#define HL_MSG_ID_LEN 16
#define HL_SALT_LEN 32
#define HL_MAX_ATTACHMENTS 64
#define HL_MAX_RECEIPT_ENTRIES 256
#define HL_SUBJECT_MAX 1024
#define HL_BODY_MAX (16u << 20)
/* A body up to this size travels inside its ITEM packet; a larger one in
 * CHUNKs (docs/messages.md). */
#define HL_INLINE_BODY_MAX 32768

/* The numbers are also the store's `items.kind` (0 there is a tombstone). */
enum hl_item_kind {
	HL_ITEM_MESSAGE = 1,
	HL_ITEM_RECEIPT = 2,
	HL_ITEM_CHECK = 3,
	HL_ITEM_ANSWER = 4,
	HL_ITEM_AGREEMENT = 5,
	HL_ITEM_COUNTERSIGN = 6,
	HL_ITEM_CALL = 7,
	HL_ITEM_ROTATION = 8,
};
#define HL_ITEM_KIND_MAX 8

#define HL_CHECK_ID_LEN 16
#define HL_CHECK_TIMEOUT_MAX (24u * 3600 * 1000)

enum hl_precedence {
	HL_PREC_ROUTINE = 0,
	HL_PREC_PRIORITY = 1,
	HL_PREC_IMMEDIATE = 2,
	HL_PREC_FLASH = 3,
};
#define HL_PREC_COUNT 4

#endif
