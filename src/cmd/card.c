/* cmd/card.c — `hotline card`: prints this station's card (its name, public
 * keys and the address peers should dial) to stdout, and its fingerprint
 * to stderr (the card on stdout stays exactly a card, for a file; the
 * operator at the terminal sees the fingerprint to read out by telephone).
 * `card --fingerprint` prints only the fingerprint, on stdout.  The card is
 * public; the identity file is read only to derive the public keys. */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "crypto/signer.h"
#include "station/station.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/text.h"

static void help(void)
{
	printf("usage: hotline card [--fingerprint]\n"
	       "\n"
	       "Prints this station's card: the [Station] section with its Name, its\n"
	       "public NoiseKey and SigningKey, the hash of its next keys (NextKeyHash:\n"
	       "see 'hotline key rotate'), and the Address peers should dial (when\n"
	       "station.conf gives one, or Listen names a particular interface).  Give\n"
	       "it to the other station, which pins it with 'hotline peer add'.  The\n"
	       "card holds no secret.  The station's fingerprint goes to standard error:\n"
	       "read it to the other station's operator over a channel you trust (the\n"
	       "telephone); they give it to 'hotline peer add --fingerprint'.\n"
	       "\n"
	       "  --fingerprint  print only the fingerprint, on standard output\n"
	       "\n"
	       "Exit status: 0 printed, 1 failure, 2 usage error.\n");
}

int card_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "fingerprint", no_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	bool fp_only = false;
	char err[HL_STATION_ERR_LEN];
	char q[256];
	struct hl_station st = { 0 };
	char *text = NULL;
	int ret, c, r;

	opterr = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			help();
			return HL_EXIT_OK;
		}
		if (c == 'f') {
			fp_only = true;
			continue;
		}
		hl_sanitize(argv[optind - 1], strlen(argv[optind - 1]), q, sizeof(q), 0);
		return hl_usage_error("card", "unknown option '%s'", q);
	}
	if (optind != argc)
		return hl_usage_error("card", "no arguments expected");
	if ((ret = hl_need_station(ctx, "card")) != HL_EXIT_OK)
		return ret;

	if ((r = hl_station_open(&st, ctx->dir, HL_OPEN_PUBLIC, err)) < 0) {
		ret = r == -ENOENT && !st.conf ? hl_no_station(ctx, "card") : hl_fail("card", "%s", err);
		goto out;
	}
	const hl_station_conf *conf = st.conf;
	const hl_signer *id = st.me;
	hl_card card;
	memset(&card, 0, sizeof(card));
	memcpy(card.name, conf->name, sizeof(card.name));
	memcpy(card.noise_key, hl_signer_noise_pub(id), HL_KEY_LEN);
	memcpy(card.signing_key, hl_signer_sign_pk(id), HL_KEY_LEN);
	card.has_next = hl_signer_next_hash(id, card.next_hash) == 0;
	memcpy(card.address, conf->address, sizeof(card.address));
	uint8_t fp[HL_FP_LEN];
	char fp_text[HL_FP_TEXT_LEN];
	hl_card_fingerprint(&card, fp);
	hl_fingerprint_text(fp, fp_text);
	if (fp_only) {
		printf("%s\n", fp_text);
	} else {
		text = hl_card_format(&card);
		fputs(text, stdout);
		fprintf(stderr, "Fingerprint: %s\n", fp_text);
	}
	ret = fflush(stdout) == 0 ? HL_EXIT_OK : hl_fail("card", "cannot write the card");
out:
	free(text);
	hl_station_close(&st);
	return ret;
}
