/* fuzz_card.c — libFuzzer target for hl_card_parse.  An accepted card must
 * survive a round trip: hl_card_format, then hl_card_parse again, gives the
 * same card. */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (sodium_init() < 0)
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hl_card card, again;
	char err[HL_CONF_ERR_LEN];
	if (hl_card_parse((const char *)data, size, "f.card", &card, err) < 0) {
		if (strncmp(err, "f.card", 6) != 0)
			abort();
		return 0;
	}
	if (!hl_name_valid(card.name))
		abort();
	char *text = hl_card_format(&card);
	if (hl_card_parse(text, strlen(text), "again", &again, err) != 0 ||
	    memcmp(&card, &again, sizeof(card)) != 0)
		abort();
	free(text);
	return 0;
}
