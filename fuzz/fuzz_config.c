/* fuzz_config.c — libFuzzer target for hl_conf_parse (station.conf), and so
 * for the INI reader under it.  Checks, besides memory safety: an accepted
 * configuration satisfies the invariants the daemon relies on (valid names,
 * unique names and keys, fingerprints that match the keys, timers in range,
 * a User value of the documented form, a LogLevel in range),
 * and a refused one leaves an error message naming the file, free of control
 * characters. */
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
	hl_station_conf *c = NULL;
	char err[HL_CONF_ERR_LEN];
	if (hl_conf_parse((const char *)data, size, "f.conf", &c, err) < 0) {
		if (c || strncmp(err, "f.conf:", 7) != 0)
			abort();
		for (const char *p = err; *p; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				abort();
		return 0;
	}
	if (!hl_name_valid(c->name) || c->keepalive_ms == 0 ||
	    c->keepalive_timeout_ms <= c->keepalive_ms || c->handshake_timeout_ms == 0 ||
	    c->rehandshake_ms == 0 || c->rehandshake_ms > HL_DEFAULT_REHANDSHAKE_MS ||
	    c->npeers > HL_CONF_MAX_PEERS ||
	    (c->user[0] && !hl_user_spec_valid(c->user)) || c->log_level > 4)
		abort();
	for (size_t i = 0; i < c->npeers; i++) {
		const hl_peer_conf *p = &c->peers[i];
		uint8_t fp[HL_FP_LEN];
		hl_fingerprint(p->noise_key, p->signing_key, fp);
		if (!hl_name_valid(p->name) || memcmp(fp, p->fingerprint, HL_FP_LEN) != 0 ||
		    p->first_line > p->last_line ||
		    hl_conf_peer_by_name(c, p->name) != p ||
		    hl_conf_peer_by_noise_key(c, p->noise_key) != p)
			abort();
		if (p->address[0] && hl_addr_split(p->address, NULL, 0, NULL) != 0)
			abort();
	}
	hl_conf_free(c);
	return 0;
}
