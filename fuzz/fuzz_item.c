/* fuzz/fuzz_item.c — libFuzzer target for the item decoder (msg/item.c).
 * Whatever decodes must re-encode to exactly the same bytes: one encoding
 * per item, hence one hash per item.  Seeds cover every kind: message,
 * receipt, check, answer, agreement, countersign. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "msg/item.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hl_item it;
	static uint8_t again[HL_ITEM_MAX];
	size_t len;
	if (hl_item_decode(data, size, &it) != 0)
		return 0;
	if (!hl_item_kind_name(it.kind))
		abort();
	if (hl_item_encode(&it, again, sizeof(again), &len) != 0 || len != size ||
	    memcmp(again, data, size) != 0)
		abort();
	(void)hl_item_open(data, size, NULL, NULL, &it);
	return 0;
}
