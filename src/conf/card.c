/* conf/card.c — a card's text as `hotline card` prints it, and its
 * fingerprint (docs/cards.md).  Parsing a card is the configuration
 * parser's (config.c: a card is a [Station] section). */
#include "conf/config.h"

#include "util/mem.h"
#include "util/text.h"

void hl_card_fingerprint(const hl_card *card, uint8_t fp[static HL_FP_LEN])
{
	hl_fingerprint_next(card->noise_key, card->signing_key,
			    card->has_next ? card->next_hash : NULL, fp);
}

char *hl_card_format(const hl_card *card)
{
	char nk[HL_KEY_B64_LEN], sk[HL_KEY_B64_LEN], nh[HL_KEY_B64_LEN] = "";
	hl_b64_key(card->noise_key, nk);
	hl_b64_key(card->signing_key, sk);
	if (card->has_next)
		hl_b64_key(card->next_hash, nh);
	return xasprintf("[Station]\nName = %s\nNoiseKey = %s\nSigningKey = %s\n%s%s%s%s%s%s",
			 card->name, nk, sk, card->has_next ? "NextKeyHash = " : "", nh,
			 card->has_next ? "\n" : "", card->address[0] ? "Address = " : "",
			 card->address, card->address[0] ? "\n" : "");
}
