/* test_config.c — station.conf and cards (conf/config.c): defaults, value
 * syntaxes, every error naming FILE:LINE and the value, cards round trip,
 * and the peer edits (nothing changes on a refused edit; comments stay;
 * add then remove gives back the same bytes). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "conf/config.h"
#include "crypto/signer.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/log.h"
#include "util/text.h"

/* ---- helpers ---- */

struct keys {
	uint8_t noise[32], sign[32];
	char noise_b64[HL_KEY_B64_LEN], sign_b64[HL_KEY_B64_LEN];
};

static void new_keys(struct keys *k)
{
	uint8_t sk[64], priv[32];
	crypto_box_keypair(k->noise, priv);
	crypto_sign_keypair(k->sign, sk);
	hl_b64_key(k->noise, k->noise_b64);
	hl_b64_key(k->sign, k->sign_b64);
}

static char *peer_text(const char *name, const struct keys *k)
{
	return xasprintf("[Peer]\nName = %s\nNoiseKey = %s\nSigningKey = %s\n", name,
			 k->noise_b64, k->sign_b64);
}

static hl_station_conf *parse_ok(const char *text)
{
	hl_station_conf *c = NULL;
	char err[HL_CONF_ERR_LEN];
	int r = hl_conf_parse(text, strlen(text), "test.conf", &c, err);
	if (r < 0)
		fail_msg("unexpected error %d: %s\n--- input:\n%s", r, err, text);
	return c;
}

/* Asserts that TEXT fails to parse and the message contains each of the
 * NULL-terminated needles. */
static void parse_fails(const char *text, size_t len, ...)
{
	hl_station_conf *c = (hl_station_conf *)1;
	char err[HL_CONF_ERR_LEN];
	int r = hl_conf_parse(text, len, "test.conf", &c, err);
	if (r >= 0)
		fail_msg("accepted:\n%s", text);
	assert_null(c);
	if (strncmp(err, "test.conf:", 10) != 0)
		fail_msg("error does not name the file: %s", err);
	va_list ap;
	va_start(ap, len);
	for (const char *n; (n = va_arg(ap, const char *));)
		if (!strstr(err, n))
			fail_msg("error '%s' does not contain '%s'\n--- input:\n%s", err, n, text);
	va_end(ap);
	/* never a control character in a message */
	for (const char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			fail_msg("control character in error '%s'", err);
}

#define FAILS(text, ...) parse_fails((text), strlen(text), __VA_ARGS__, (const char *)NULL)

/* ---- value syntaxes ---- */

static void test_duration_parse(void **state)
{
	(void)state;
	static const struct {
		const char *s;
		int ret;
		uint32_t ms;
	} cases[] = {
		{ "25s", 0, 25000 }, { "1500ms", 0, 1500 }, { "5m", 0, 300000 },
		{ "1h", 0, 3600000 }, { "30", 0, 30000 }, { "0", 0, 0 },
		{ "007s", 0, 7000 }, { "4294967295ms", 0, 4294967295u },
		{ "4294967s", 0, 4294967000u }, { "1193h", 0, 4294800000u },
		{ "4294967296ms", HL_ETOOBIG, 0 }, { "4294968s", HL_ETOOBIG, 0 },
		{ "1194h", HL_ETOOBIG, 0 }, { "99999999999999999999999", HL_ETOOBIG, 0 },
		{ "", HL_EINVAL, 0 }, { "s", HL_EINVAL, 0 }, { "1.5s", HL_EINVAL, 0 },
		{ "25 s", HL_EINVAL, 0 }, { " 25s", HL_EINVAL, 0 }, { "25S", HL_EINVAL, 0 },
		{ "-1", HL_EINVAL, 0 }, { "+1", HL_EINVAL, 0 }, { "1d", HL_EINVAL, 0 },
		{ "1sm", HL_EINVAL, 0 }, { "1mss", HL_EINVAL, 0 }, { "0x10", HL_EINVAL, 0 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t ms = 12345;
		int r = hl_duration_parse(cases[i].s, strlen(cases[i].s), &ms);
		if (r != cases[i].ret)
			fail_msg("'%s': got %d, want %d", cases[i].s, r, cases[i].ret);
		if (r == 0 && ms != cases[i].ms)
			fail_msg("'%s': got %u ms, want %u", cases[i].s, ms, cases[i].ms);
	}
	/* LEN is honoured: "25s" cut to "25" is 25 seconds. */
	uint32_t ms = 0;
	assert_int_equal(hl_duration_parse("25s", 2, &ms), 0);
	assert_int_equal(ms, 25000);
}

static void test_addr_split(void **state)
{
	(void)state;
	char host[256];
	uint16_t port = 0;
	assert_int_equal(hl_addr_split("127.0.0.1:7100", host, sizeof(host), &port), 0);
	assert_string_equal(host, "127.0.0.1");
	assert_int_equal(port, 7100);
	assert_int_equal(hl_addr_split("[::1]:1", host, sizeof(host), &port), 0);
	assert_string_equal(host, "::1");
	assert_int_equal(port, 1);
	assert_int_equal(hl_addr_split("[2001:db8::7]:65535", host, sizeof(host), &port), 0);
	assert_string_equal(host, "2001:db8::7");
	assert_int_equal(port, 65535);
	assert_int_equal(hl_addr_split("moscow.example.org:443", host, sizeof(host), &port), 0);
	assert_string_equal(host, "moscow.example.org");
	assert_int_equal(hl_addr_split("localhost:7100", NULL, 0, NULL), 0);
	assert_int_equal(hl_addr_split("0.0.0.0:7100", NULL, 0, NULL), 0);

	static const char *const bad[] = {
		"", ":7100", "host", "host:", "host:0", "host:65536", "host:07100", "host:1x",
		"host:-1", "host:+1", "host:123456", "::1:7100", "[::1]", "[::1]:", "[::1]7100",
		"[zz]:1", "[]:1", "[1.2.3.4]:1", "1.2.3:80", "256.1.1.1:80", "-host:80",
		".host:80", "host name:80", "host_x:80", "h\xc3\xa9:80", "host:80 ", " host:80",
		"[::1]:80]",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hl_addr_split(bad[i], host, sizeof(host), &port) != HL_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	/* A host that does not fit HOSTCAP is refused, not cut. */
	assert_int_equal(hl_addr_split("example.org:1", host, 11, &port), HL_EINVAL);
	assert_int_equal(hl_addr_split("example.org:1", host, 12, &port), 0);
	/* Length caps: a 253-byte hostname is fine, 254 is not. */
	char longhost[300];
	memset(longhost, 'a', 253);
	strcpy(longhost + 253, ":1");
	assert_int_equal(hl_addr_split(longhost, NULL, 0, NULL), 0);
	memset(longhost, 'a', 254);
	strcpy(longhost + 254, ":1");
	assert_int_equal(hl_addr_split(longhost, NULL, 0, NULL), HL_EINVAL);
}

static void test_name_valid(void **state)
{
	(void)state;
	static const char *const good[] = { "a", "washington", "0", "a.b_c-d", "9lives",
					    "abcdefghijklmnopqrstuvwxyz012345" };
	static const char *const bad[] = { "", "Washington", "-a", ".a", "_a", "a b", "a/b",
					   "a\n", "\xc3\xa9", "abcdefghijklmnopqrstuvwxyz0123456" };
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (hl_name_valid(good[i]) != 1)
			fail_msg("'%s' refused", good[i]);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (hl_name_valid(bad[i]) != 0)
			fail_msg("'%s' accepted", bad[i]);
}

/* ---- station.conf ---- */

static void test_defaults(void **state)
{
	(void)state;
	hl_station_conf *c = parse_ok("[Station]\nName = washington\n");
	assert_string_equal(c->name, "washington");
	assert_string_equal(c->listen, "");
	assert_string_equal(c->address, "");
	assert_int_equal(c->keepalive_ms, 25000);
	assert_int_equal(c->keepalive_timeout_ms, 75000);
	assert_int_equal(c->handshake_timeout_ms, 10000);
	assert_int_equal(c->rehandshake_ms, 3600000);
	assert_int_equal(c->fallback_after_ms, 60000);   /* FallbackAfter's default */
	assert_int_equal(c->npeers, 0);
	/* DiskReserve: 5% of the file system, within 16 MiB .. 16 GiB */
	assert_int_equal(c->reserve_pct, 5);
	assert_int_equal(c->reserve_bytes, 0);
	assert_true(hl_disk_reserve(c->reserve_bytes, c->reserve_pct, 100ull << 20) == 16ull << 20);
	assert_true(hl_disk_reserve(c->reserve_bytes, c->reserve_pct, 200ull << 30) == 10ull << 30);
	assert_true(hl_disk_reserve(c->reserve_bytes, c->reserve_pct, 1ull << 50) == 16ull << 30);
	hl_conf_free(c);
	c = parse_ok("[Station]\nName = a\nDiskReserve = 1G\nMaxAttachment = 1T\n"
		     "PeerQuota = 1024T\n");
	assert_int_equal(c->reserve_pct, 0);
	assert_true(c->reserve_bytes == 1ull << 30 && c->max_attachment == 1ull << 40);
	assert_true(hl_disk_reserve(c->reserve_bytes, c->reserve_pct, 1ull << 50) == 1ull << 30);
	hl_conf_free(c);
	c = parse_ok("[Station]\nName = a\nDiskReserve = 50%\n");
	assert_int_equal(c->reserve_pct, 50);
	hl_conf_free(c);

	c = parse_ok("[Station]\nName = a\nListen = 127.0.0.1:7100\nKeepalive = 10s\n");
	assert_string_equal(c->listen, "127.0.0.1:7100");
	assert_string_equal(c->address, "127.0.0.1:7100"); /* default: Listen */
	assert_int_equal(c->keepalive_ms, 10000);
	assert_int_equal(c->keepalive_timeout_ms, 30000);  /* 3 x Keepalive */
	hl_conf_free(c);

	/* A wildcard Listen is not an address peers can dial. */
	c = parse_ok("[Station]\nName = a\nListen = 0.0.0.0:7100\n");
	assert_string_equal(c->address, "");
	hl_conf_free(c);
	c = parse_ok("[Station]\nName = a\nListen = [::]:7100\n");
	assert_string_equal(c->address, "");
	hl_conf_free(c);
	c = parse_ok("[Station]\nName = a\nListen = 0.0.0.0:7100\nAddress = 192.0.2.1:7100\n");
	assert_string_equal(c->address, "192.0.2.1:7100");
	hl_conf_free(c);
}

static void test_all_station_keys(void **state)
{
	(void)state;
	hl_station_conf *c = parse_ok(
		"# comment ; with = signs\n"
		"[station]\n"
		"name = a\n"
		"LISTEN = [::1]:7100\n"
		"Address = a.example:7\n"
		"Keepalive = 1500ms\n"
		"KeepaliveTimeout = 1m\n"
		"HandshakeTimeout = 3s\n"
		"Rehandshake = 1h\n"
		"FallbackAfter = 2s\n");
	assert_int_equal(c->fallback_after_ms, 2000);
	assert_string_equal(c->listen, "[::1]:7100");
	assert_string_equal(c->address, "a.example:7");
	assert_int_equal(c->keepalive_ms, 1500);
	assert_int_equal(c->keepalive_timeout_ms, 60000);
	assert_int_equal(c->handshake_timeout_ms, 3000);
	assert_int_equal(c->rehandshake_ms, 3600000);
	hl_conf_free(c);
}

static void test_peers(void **state)
{
	(void)state;
	struct keys k1, k2;
	new_keys(&k1);
	new_keys(&k2);
	char *text = xasprintf("[Station]\nName = a\n\n"
			       "[Peer]\nName = b\nNoiseKey = %s\nSigningKey = %s\n"
			       "Address = 127.0.0.1:7200\n# trailing comment\n\n"
			       "[Peer]\nSigningKey = %s\nNoiseKey = %s\nName = c\n"
			       "NextKeyHash = %s\n",
			       k1.noise_b64, k1.sign_b64, k2.sign_b64, k2.noise_b64, k1.noise_b64);
	hl_station_conf *c = parse_ok(text);
	assert_int_equal(c->npeers, 2);
	assert_string_equal(c->peers[0].name, "b");
	assert_string_equal(c->peers[0].address, "127.0.0.1:7200");
	assert_memory_equal(c->peers[0].noise_key, k1.noise, 32);
	assert_memory_equal(c->peers[0].signing_key, k1.sign, 32);
	assert_int_equal(c->peers[0].first_line, 4);
	assert_int_equal(c->peers[0].last_line, 8);
	uint8_t fp[HL_FP_LEN];
	hl_fingerprint(k1.noise, k1.sign, fp);
	assert_memory_equal(c->peers[0].fingerprint, fp, HL_FP_LEN);
	assert_string_equal(c->peers[1].name, "c");
	assert_string_equal(c->peers[1].address, "");
	assert_int_equal(c->peers[1].first_line, 11);
	assert_int_equal(c->peers[1].last_line, 15);
	assert_false(c->peers[0].has_next);
	assert_true(c->peers[1].has_next);
	assert_memory_equal(c->peers[1].next_hash, k1.noise, 32);
	/* the fingerprint covers the card's commitment (docs/rotation.md) */
	hl_fingerprint_next(k2.noise, k2.sign, k1.noise, fp);
	assert_memory_equal(c->peers[1].fingerprint, fp, HL_FP_LEN);

	assert_ptr_equal(hl_conf_peer_by_name(c, "c"), &c->peers[1]);
	assert_null(hl_conf_peer_by_name(c, "a"));
	assert_null(hl_conf_peer_by_name(c, "C"));
	assert_ptr_equal(hl_conf_peer_by_noise_key(c, k1.noise), &c->peers[0]);
	assert_null(hl_conf_peer_by_noise_key(c, k1.sign));
	hl_conf_free(c);
	hl_conf_free(NULL);
	free(text);
}

static void test_station_errors(void **state)
{
	(void)state;
	FAILS("# nothing\n", "test.conf: no [Station] section");
	FAILS("", "no [Station]");
	FAILS("[Station]\nName = a\nColour = red\n", "test.conf:3:", "'Colour'", "[Station]");
	FAILS("[Station]\nName = a\nNoiseKey = x\n", "test.conf:3:", "unknown key 'NoiseKey'");
	FAILS("[Station]\nName = a\n[Interface]\n", "test.conf:3:", "'[Interface]'");
	FAILS("[Station]\nName = a\nname = b\n", "test.conf:3:", "Name given twice", "line 2");
	FAILS("[Station]\nName = a\n\n[Station]\nName = b\n", "test.conf:4:", "second [Station]",
	      "line 1");
	FAILS("# c\n[Station]\nListen = 127.0.0.1:1\n", "test.conf:2:", "has no Name");
	FAILS("Name = a\n[Station]\n", "test.conf:1:", "outside any section");
	FAILS("[Station]\nName = Washington\n", "test.conf:2:", "'Washington'");
	FAILS("[Station]\nName =\n", "test.conf:2:", "bad Name ''");
	FAILS("[Station]\nName = a\nListen = 1.2.3.4\n", "test.conf:3:", "bad Listen '1.2.3.4'");
	FAILS("[Station]\nName = a\nListen = h:0\n", "test.conf:3:", "'h:0'");
	FAILS("[Station]\nName = a\nListen = h:65536\n", "'h:65536'");
	FAILS("[Station]\nName = a\nListen = ::1:7100\n", "'::1:7100'");
	FAILS("[Station]\nName = a\nAddress = 999.1.1.1:80\n", "test.conf:3:",
	      "bad Address '999.1.1.1:80'");
	FAILS("[Station]\nName = a\nKeepalive = 25x\n", "test.conf:3:", "bad Keepalive '25x'");
	/* call media addresses are used as given, never looked up */
	FAILS("[Station]\nName = a\nMediaListen = media.example:7101\n", "test.conf:3:",
	      "bad MediaListen 'media.example:7101': want a numeric address");
	FAILS("[Station]\nName = a\nMediaListen = 10.0.0.1\n", "test.conf:3:", "bad MediaListen");
	/* sizes over their caps, and reserves as a share (conf/config.h) */
	FAILS("[Station]\nName = a\nMaxAttachment = 4611686018427387904\n", "test.conf:3:",
	      "MaxAttachment '4611686018427387904' is over its cap of 1T");
	FAILS("[Station]\nName = a\nPeerQuota = 2048T\n", "test.conf:3:",
	      "PeerQuota '2048T' is over its cap of 1024T");
	FAILS("[Station]\nName = a\nDiskReserve = 51%\n", "test.conf:3:", "bad DiskReserve '51%'");
	FAILS("[Station]\nName = a\nDiskReserve = 0%\n", "bad DiskReserve '0%'");
	FAILS("[Station]\nName = a\nDiskReserve = %\n", "bad DiskReserve '%'");
	FAILS("[Station]\nName = a\nDiskReserve = 5%%\n", "bad DiskReserve '5%%'");
	FAILS("[Station]\nName = a\nKeepalive = 0\n", "test.conf:3:", "Keepalive '0'",
	      "more than 0");
	FAILS("[Station]\nName = a\nKeepalive = 2h\n", "'2h'", "at most 1h");
	FAILS("[Station]\nName = a\nHandshakeTimeout = 99999999999h\n", "test.conf:3:",
	      "'99999999999h'");
	FAILS("[Station]\nName = a\nFallbackAfter = soon\n", "test.conf:3:",
	      "bad FallbackAfter 'soon'");
	FAILS("[Station]\nName = a\nFallbackAfter = 0s\n", "test.conf:3:", "FallbackAfter '0s'",
	      "more than 0");
	FAILS("[Station]\nName = a\nFallbackAfter = 25h\n", "test.conf:3:", "at most 24h");
	FAILS("[Station]\nName = a\nRehandshake = 61m\n", "test.conf:3:", "Rehandshake '61m'",
	      "at most 1h");
	FAILS("[Station]\nName = a\nKeepaliveTimeout = 25h\n", "'25h'", "at most 24h");
	FAILS("[Station]\nName = a\nKeepalive = 10s\nKeepaliveTimeout = 10s\n",
	      "test.conf:4:", "KeepaliveTimeout (10s) must be longer than Keepalive (10s)");
	FAILS("[Station]\nName = a\nKeepaliveTimeout = 5s\n", "test.conf:3:",
	      "longer than Keepalive (25s)");
}

static void test_peer_errors(void **state)
{
	(void)state;
	struct keys k1, k2;
	new_keys(&k1);
	new_keys(&k2);
	char *t;

	t = xasprintf("[Station]\nName = a\n[Peer]\nName = b\nNoiseKey = %s\n", k1.noise_b64);
	FAILS(t, "test.conf:3:", "[Peer] section has no SigningKey");
	free(t);
	t = xasprintf("[Station]\nName = a\n[Peer]\nName = b\nNoiseKey = abc\nSigningKey = %s\n",
		      k1.sign_b64);
	FAILS(t, "test.conf:5:", "bad NoiseKey 'abc'");
	free(t);
	/* 43 characters, non-canonical padding bits, standard vs URL alphabet */
	t = xasprintf("[Station]\nName = a\n[Peer]\nName = b\nNoiseKey = %.43s\nSigningKey = %s\n",
		      k1.noise_b64, k1.sign_b64);
	FAILS(t, "test.conf:5:", "bad NoiseKey");
	free(t);
	t = xasprintf("[Station]\nName = a\n[Peer]\nName = b\nNoiseKey = %s\n"
		      "SigningKey = ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0B=\n",
		      k1.noise_b64);
	FAILS(t, "test.conf:6:", "bad SigningKey 'ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+P0B='");
	free(t);
	/* Small-order X25519 point and an invalid Ed25519 point */
	t = xasprintf("[Station]\nName = a\n[Peer]\nName = b\n"
		      "NoiseKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\nSigningKey = %s\n",
		      k1.sign_b64);
	FAILS(t, "test.conf:5:", "not a usable X25519 public key");
	free(t);
	t = xasprintf("[Station]\nName = a\n[Peer]\nName = b\nNoiseKey = %s\n"
		      "SigningKey = AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
		      k1.noise_b64);
	FAILS(t, "test.conf:6:", "not a usable Ed25519 public key");
	free(t);
	/* Listen is a station key, not a peer key */
	t = xasprintf("[Station]\nName = a\n[Peer]\nName = b\nNoiseKey = %s\nSigningKey = %s\n"
		      "Listen = 1.2.3.4:5\n", k1.noise_b64, k1.sign_b64);
	FAILS(t, "test.conf:7:", "unknown key 'Listen' in [Peer]");
	free(t);

	/* Uniqueness across peers */
	char *p1 = peer_text("b", &k1);
	char *p2 = peer_text("b", &k2);
	t = xasprintf("[Station]\nName = a\n%s%s", p1, p2);
	FAILS(t, "test.conf:8:", "peer name 'b'", "line 3");
	free(t);
	free(p2);
	struct keys mix = k2;
	memcpy(mix.noise_b64, k1.noise_b64, sizeof(mix.noise_b64));
	p2 = peer_text("c", &mix);
	t = xasprintf("[Station]\nName = a\n%s%s", p1, p2);
	FAILS(t, "test.conf:9:", "NoiseKey is already pinned for peer 'b'");
	free(t);
	free(p2);
	mix = k2;
	memcpy(mix.sign_b64, k1.sign_b64, sizeof(mix.sign_b64));
	p2 = peer_text("c", &mix);
	t = xasprintf("[Station]\nName = a\n%s%s", p1, p2);
	FAILS(t, "test.conf:10:", "SigningKey is already pinned for peer 'b'");
	free(t);
	free(p2);
	free(p1);
}

static void test_hostile_bytes(void **state)
{
	(void)state;
	/* Control characters never reach the message; the line is named. */
	FAILS("[Station]\nName = a\x1b[31mred\n", "test.conf:2:", "control character 0x1b");
	static const char nul[] = "[Station]\nName = a\0b\n";
	parse_fails(nul, sizeof(nul) - 1, "test.conf:2:", "0x00", (const char *)NULL);
	/* C1 control (U+009B, CSI) and invalid UTF-8 inside a quoted value */
	FAILS("[Station]\nName = x\xc2\x9b" "31m\n", "test.conf:2:", "bad Name 'x31m'");
	FAILS("[Station]\nName = \xff\n", "test.conf:2:", "'\xef\xbf\xbd'");
	/* A filename with control characters is sanitized too. */
	hl_station_conf *c = NULL;
	char err[HL_CONF_ERR_LEN];
	assert_true(hl_conf_parse("", 0, "evil\x1b]0;x\x07.conf", &c, err) < 0);
	assert_null(strchr(err, '\x1b'));
	assert_null(strchr(err, '\x07'));
	/* A long bad value is shortened in the message. */
	char *t = xmalloc(4000);
	strcpy(t, "[Station]\nName = ");
	memset(t + 17, 'x', 3000);
	strcpy(t + 3017, "\n");
	FAILS(t, "test.conf:2:", "xxx...'");
	free(t);
}

static void test_caps(void **state)
{
	(void)state;
	/* Whole file over the cap */
	size_t big = HL_CONF_MAX_BYTES + 1;
	char *t = xmalloc(big);
	memset(t, '#', big);
	t[0] = '\n';
	parse_fails(t, big, "larger than", (const char *)NULL);
	free(t);
	/* A line over the cap */
	t = xmalloc(6000);
	strcpy(t, "[Station]\nName = a\n# ");
	memset(t + 21, 'x', 5000);
	t[5021] = '\0';
	FAILS(t, "test.conf:3:", "longer than 4096");
	free(t);
	/* HL_CONF_MAX_PEERS peers are fine; one more is not. */
	size_t cap = 64 + (size_t)(HL_CONF_MAX_PEERS + 1) * 160;
	t = xmalloc(cap);
	size_t len = (size_t)snprintf(t, cap, "[Station]\nName = a\n");
	for (int i = 0; i < HL_CONF_MAX_PEERS; i++) {
		struct keys k;
		new_keys(&k);
		len += (size_t)snprintf(t + len, cap - len,
					"[Peer]\nName = p%d\nNoiseKey = %s\nSigningKey = %s\n", i,
					k.noise_b64, k.sign_b64);
	}
	hl_station_conf *c = parse_ok(t);
	assert_int_equal(c->npeers, HL_CONF_MAX_PEERS);
	hl_conf_free(c);
	snprintf(t + len, cap - len, "[Peer]\n");
	FAILS(t, "more than 1024 [Peer] sections");
	free(t);
}

/* ---- cards ---- */

static void test_card_round_trip(void **state)
{
	(void)state;
	struct keys k;
	new_keys(&k);
	hl_card card, back;
	char err[HL_CONF_ERR_LEN];
	memset(&card, 0, sizeof(card));
	strcpy(card.name, "washington");
	memcpy(card.noise_key, k.noise, 32);
	memcpy(card.signing_key, k.sign, 32);
	strcpy(card.address, "127.0.0.1:7100");

	char *text = hl_card_format(&card);
	char *want = xasprintf("[Station]\nName = washington\nNoiseKey = %s\nSigningKey = %s\n"
			       "Address = 127.0.0.1:7100\n", k.noise_b64, k.sign_b64);
	assert_string_equal(text, want);
	assert_int_equal(hl_card_parse(text, strlen(text), "card", &back, err), 0);
	assert_memory_equal(&back, &card, sizeof(card));
	free(text);
	free(want);

	memset(card.address, 0, sizeof(card.address));
	text = hl_card_format(&card);
	assert_null(strstr(text, "Address"));
	assert_int_equal(hl_card_parse(text, strlen(text), "card", &back, err), 0);
	assert_memory_equal(&back, &card, sizeof(card));
	free(text);

	/* NextKeyHash goes after SigningKey, and the fingerprint covers it:
	 * another hash, or none, is another fingerprint. */
	uint8_t fp_with[HL_FP_LEN], fp_without[HL_FP_LEN];
	char nh_b64[HL_KEY_B64_LEN];
	card.has_next = true;
	randombytes_buf(card.next_hash, 32);
	hl_b64_key(card.next_hash, nh_b64);
	text = hl_card_format(&card);
	want = xasprintf("[Station]\nName = washington\nNoiseKey = %s\nSigningKey = %s\n"
			 "NextKeyHash = %s\n", k.noise_b64, k.sign_b64, nh_b64);
	assert_string_equal(text, want);
	assert_int_equal(hl_card_parse(text, strlen(text), "card", &back, err), 0);
	assert_memory_equal(&back, &card, sizeof(card));
	hl_card_fingerprint(&card, fp_with);
	card.has_next = false;
	hl_card_fingerprint(&card, fp_without);
	assert_memory_not_equal(fp_with, fp_without, HL_FP_LEN);
	card.has_next = true;
	card.next_hash[0] ^= 1;
	hl_card_fingerprint(&card, fp_without);
	assert_memory_not_equal(fp_with, fp_without, HL_FP_LEN);
	memset(card.next_hash, 0, 32);
	card.has_next = false;
	free(text);
	free(want);

	/* Comments, blank lines, case and CRLF are fine in a card. */
	text = xasprintf("# card of washington\r\n\r\n[station]\r\nname = washington\r\n"
			 "noisekey = %s\r\nsigningkey = %s\r\n", k.noise_b64, k.sign_b64);
	assert_int_equal(hl_card_parse(text, strlen(text), "card", &back, err), 0);
	assert_memory_equal(&back, &card, sizeof(card));
	free(text);
}

static void card_fails(const char *text, size_t len, const char *needle)
{
	hl_card card;
	char err[HL_CONF_ERR_LEN];
	int r = hl_card_parse(text, len, "c.card", &card, err);
	if (r >= 0)
		fail_msg("card accepted:\n%s", text);
	if (strncmp(err, "c.card:", 7) != 0 || !strstr(err, needle))
		fail_msg("error '%s' does not name the file or contain '%s'", err, needle);
	hl_card zero;
	memset(&zero, 0, sizeof(zero));
	assert_memory_equal(&card, &zero, sizeof(card)); /* nothing half-filled */
}

static void test_card_malformed(void **state)
{
	(void)state;
	struct keys k, k2;
	new_keys(&k);
	new_keys(&k2);
	char *t;
#define CARD_FAILS(needle, ...)                                  \
	do {                                                     \
		t = xasprintf(__VA_ARGS__);                      \
		card_fails(t, strlen(t), needle);                \
		free(t);                                         \
	} while (0)
	CARD_FAILS("no [Station]", "# empty\n");
	CARD_FAILS("c.card:1:", "[Station]\nName = w\nNoiseKey = %s\n", k.noise_b64);
	CARD_FAILS("has no SigningKey", "[Station]\nName = w\nNoiseKey = %s\n", k.noise_b64);
	CARD_FAILS("has no Name", "[Station]\nNoiseKey = %s\nSigningKey = %s\n", k.noise_b64,
		   k.sign_b64);
	CARD_FAILS("c.card:5: unknown key 'Listen'",
		   "[Station]\nName = w\nNoiseKey = %s\nSigningKey = %s\nListen = 1.2.3.4:5\n",
		   k.noise_b64, k.sign_b64);
	CARD_FAILS("c.card:5: unknown section '[Peer]'",
		   "[Station]\nName = w\nNoiseKey = %s\nSigningKey = %s\n[Peer]\n", k.noise_b64,
		   k.sign_b64);
	CARD_FAILS("c.card:5: a second [Station]",
		   "[Station]\nName = w\nNoiseKey = %s\nSigningKey = %s\n[Station]\nName = x\n"
		   "NoiseKey = %s\nSigningKey = %s\n",
		   k.noise_b64, k.sign_b64, k2.noise_b64, k2.sign_b64);
	CARD_FAILS("c.card:3: bad NoiseKey 'not base64'",
		   "[Station]\nName = w\nNoiseKey = not base64\nSigningKey = %s\n", k.sign_b64);
	CARD_FAILS("c.card:5: bad Address 'nowhere'",
		   "[Station]\nName = w\nNoiseKey = %s\nSigningKey = %s\nAddress = nowhere\n",
		   k.noise_b64, k.sign_b64);
	CARD_FAILS("c.card:3: NoiseKey given twice",
		   "[Station]\nNoiseKey = %s\nNoiseKey = %s\n", k.noise_b64, k.noise_b64);
	/* Too big, even if it would parse */
	size_t big = HL_CARD_MAX_BYTES + 1;
	t = xmalloc(big);
	memset(t, '\n', big);
	card_fails(t, big, "larger than 4096 bytes");
	free(t);
#undef CARD_FAILS
}

/* ---- docs/cards.md: each rule of its table, accepted and refused ---- */

/* Replaces each "NK" and "SK" in T with the base64 of a fresh usable key. */
static char *card_with_keys(const char *t, const struct keys *k)
{
	char *out = xmalloc(strlen(t) * 12 + 1), *o = out;
	while (*t) {
		if (strncmp(t, "NK", 2) == 0 || strncmp(t, "SK", 2) == 0) {
			const char *b = t[0] == 'N' ? k->noise_b64 : k->sign_b64;
			memcpy(o, b, strlen(b));
			o += strlen(b);
			t += 2;
		} else {
			*o++ = *t++;
		}
	}
	*o = '\0';
	return out;
}

#define ZERO32 "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define NEUTRAL_ED25519 "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define CARD(name_line, rest) "[Station]\n" name_line "\nNoiseKey = NK\nSigningKey = SK\n" rest

static const struct card_rule {
	const char *text;       /* NK, SK: usable keys */
	const char *refusal;    /* NULL: accepted; else in the error */
} card_rules[] = {
	/* one section, [Station], case-insensitive, blanks in the brackets */
	{ CARD("Name = washington", "Address = 203.0.113.5:7100\n"), NULL },
	{ "[station]\nName = w\nNoiseKey = NK\nSigningKey = SK\n", NULL },
	{ "[ Station ]\nName = w\nNoiseKey = NK\nSigningKey = SK\n", NULL },
	{ CARD("Name = w", "[Peer]\n"), "unknown section '[Peer]'" },
	{ CARD("Name = w", "[Email]\n"), "unknown section '[Email]'" },
	{ CARD("Name = w", "[Station]\n"), "a second [Station]" },
	{ "# nothing\n", "no [Station]" },
	{ "Name = w\n[Station]\nNoiseKey = NK\nSigningKey = SK\n", "outside any section" },
	/* keys case-insensitive, known ones only, each once */
	{ "[Station]\nname = w\nNOISEKEY = NK\nsigningkey = SK\naddress = h:1\n", NULL },
	{ CARD("Name = w", "Listen = 1.2.3.4:5\n"), "unknown key 'Listen'" },
	{ CARD("Name = w", "Name = x\n"), "Name given twice" },
	/* Name, NoiseKey, SigningKey required; Address optional */
	{ "[Station]\nName = w\nNoiseKey = NK\n", "has no SigningKey" },
	{ "[Station]\nName = w\nSigningKey = SK\n", "has no NoiseKey" },
	{ "[Station]\nNoiseKey = NK\nSigningKey = SK\n", "has no Name" },
	/* Name */
	{ CARD("Name = a", ""), NULL },
	{ CARD("Name = w.1_2-3", ""), NULL },
	{ CARD("Name = abcdefghijklmnopqrstuvwxyz012345", ""), NULL },
	{ CARD("Name = abcdefghijklmnopqrstuvwxyz0123456", ""), "bad Name" },
	{ CARD("Name =", ""), "bad Name" },
	{ CARD("Name = Washington", ""), "bad Name 'Washington'" },
	{ CARD("Name = -w", ""), "bad Name '-w'" },
	{ CARD("Name = wash ington", ""), "bad Name" },
	/* NoiseKey: canonical padded base64 of 32 bytes, not of small order */
	{ "[Station]\nName = w\nNoiseKey = not base64\nSigningKey = SK\n", "bad NoiseKey" },
	{ "[Station]\nName = w\nNoiseKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n"
	  "SigningKey = SK\n", "bad NoiseKey" },                       /* 31 bytes */
	{ "[Station]\nName = w\nNoiseKey = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n"
	  "SigningKey = SK\n", "bad NoiseKey" },                       /* non-canonical */
	{ "[Station]\nName = w\nNoiseKey = " ZERO32 "\nSigningKey = SK\n",
	  "not a usable X25519 public key" },
	/* SigningKey: a canonical Ed25519 point of the main subgroup */
	{ "[Station]\nName = w\nNoiseKey = NK\nSigningKey = " ZERO32 "\n",
	  "not a usable Ed25519 public key" },
	{ "[Station]\nName = w\nNoiseKey = NK\nSigningKey = " NEUTRAL_ED25519 "\n",
	  "not a usable Ed25519 public key" },
	/* NextKeyHash (docs/rotation.md): optional, 32 bytes, not all zero,
	 * at most once */
	{ CARD("Name = w", "NextKeyHash = " NEUTRAL_ED25519 "\n"), NULL },
	{ CARD("Name = w", "nextkeyhash = " NEUTRAL_ED25519 "\nAddress = h:1\n"), NULL },
	{ CARD("Name = w", "NextKeyHash = " ZERO32 "\n"), "bad NextKeyHash" },
	{ CARD("Name = w", "NextKeyHash = AAAA\n"), "bad NextKeyHash 'AAAA'" },
	{ CARD("Name = w", "NextKeyHash = " NEUTRAL_ED25519 "\nNextKeyHash = "
	       NEUTRAL_ED25519 "\n"), "NextKeyHash given twice" },
	/* Address */
	{ CARD("Name = w", "Address = host.example:7100\n"), NULL },
	{ CARD("Name = w", "Address = 192.0.2.1:7100\n"), NULL },
	{ CARD("Name = w", "Address = [2001:db8::1]:7100\n"), NULL },
	{ CARD("Name = w", "Address = host:65535\n"), NULL },
	{ CARD("Name = w", "Address = host\n"), "bad Address 'host'" },
	{ CARD("Name = w", "Address = host:0\n"), "bad Address" },
	{ CARD("Name = w", "Address = host:07100\n"), "bad Address" },
	{ CARD("Name = w", "Address = host:65536\n"), "bad Address" },
	{ CARD("Name = w", "Address = 2001:db8::1:7100\n"), "bad Address" },
	{ CARD("Name = w", "Address = -host:7100\n"), "bad Address" },
	{ CARD("Name = w", "Address = 1.2.3:7100\n"), "bad Address" },
	/* comments: whole lines only */
	{ "# the card of washington\n  ; and more\n[Station]\nName = w\nNoiseKey = NK\n"
	  "SigningKey = SK\n", NULL },
	{ CARD("Name = washington # ours", ""), "bad Name 'washington # ours'" },
	{ CARD("Name = w", "Address = h:1 ; there\n"), "bad Address" },
	/* blanks, CRLF; no control characters */
	{ "[Station]\r\n\r\n  Name\t=\tw  \r\nNoiseKey = NK\r\nSigningKey = SK\r\n", NULL },
	{ CARD("Name = w", "Address = h:1\x1b[0m\n"), "control character" },
};

static void test_card_rules(void **state)
{
	(void)state;
	struct keys k;
	new_keys(&k);
	for (size_t i = 0; i < sizeof(card_rules) / sizeof(card_rules[0]); i++) {
		const struct card_rule *r = &card_rules[i];
		char *t = card_with_keys(r->text, &k);
		hl_card card;
		char err[HL_CONF_ERR_LEN];
		int ret = hl_card_parse(t, strlen(t), "c.card", &card, err);
		if (!r->refusal && ret < 0)
			fail_msg("rule %zu: refused (%s):\n%s", i, err, t);
		if (r->refusal && (ret >= 0 || !strstr(err, r->refusal)))
			fail_msg("rule %zu: %s, not '%s':\n%s", i, ret >= 0 ? "accepted" : err,
				 r->refusal, t);
		free(t);
	}
}

/* ---- the documentation names every key the parser accepts ---- */

/* The repository's top directory, from this file's path. */
static char *source_path(const char *rel)
{
	const char *me = __FILE__;
	const char *cut = strstr(me, "tests/unit/test_config.c");
	assert_non_null(cut);
	return xasprintf("%.*s%s", (int)(cut - me), me, rel);
}

static char *slurp(const char *rel)
{
	char *path = source_path(rel), *buf = NULL;
	size_t len;
	if (hl_read_file(path, 1 << 20, &buf, &len) < 0)
		fail_msg("cannot read %s", path);
	free(path);
	return buf;
}

/* The text of TEXT from the line HEADING up to the next line starting with
 * NEXT (or the end); NULL when there is no such line. */
static char *section_of(const char *text, const char *heading, const char *next)
{
	size_t hl = strlen(heading);
	const char *p = text;
	while (p && strncmp(p, heading, hl) != 0) {
		p = strchr(p, '\n');
		p = p ? p + 1 : NULL;
	}
	if (!p)
		return NULL;
	const char *e = p + hl, *q = e;
	while ((q = strchr(q, '\n')) && strncmp(q + 1, next, strlen(next)) != 0)
		q++;
	return xasprintf("%.*s", (int)(q ? q - p : (long)strlen(p)), p);
}

/* Each KEY in SEC written as PREFIX KEY SUFFIX must be a key of SECTION
 * (the parser's table): nothing documented that does not exist. */
static void documented_keys(const char *sec, const char *prefix, const char *suffix,
			    const char *section, const char *doc)
{
	for (const char *p = sec; (p = strstr(p, prefix)); p++) {
		const char *k = p + strlen(prefix), *e = k;
		while (*e && *e != '\n' && strncmp(e, suffix, strlen(suffix)) != 0)
			e++;
		int known = 0;
		const char *s, *key;
		for (size_t i = 0; hl_conf_key_at(i, &s, &key) == 0; i++)
			known |= strcmp(s, section) == 0 && strlen(key) == (size_t)(e - k) &&
				 strncmp(key, k, (size_t)(e - k)) == 0;
		if (!known)
			fail_msg("%s documents '%.*s' in [%s], which the parser does not accept", doc,
				 (int)(e - k), k, section);
	}
}

/* The text between the first line equal to START after AFTER in TEXT and
 * the next line equal to END, xmalloc'd; roff's "\-" becomes "-". */
static char *block_after(const char *text, const char *after, const char *start,
			 const char *end)
{
	const char *p = strstr(text, after);
	assert_non_null(p);
	p = strstr(p, start);
	assert_non_null(p);
	p += strlen(start);
	const char *e = strstr(p, end);
	assert_non_null(e);
	char *out = xmalloc((size_t)(e - p) + 2), *o = out;
	for (const char *q = p; q < e; q++) {
		if (q[0] == '\\' && q[1] == '-')
			continue;
		*o++ = *q;
	}
	*o++ = '\n';
	*o = '\0';
	return out;
}

/* The examples in the documents are real: they parse, and the card's
 * fingerprint is the one shown. */
static void test_doc_examples_parse(void **state)
{
	(void)state;
	char *cards = slurp("docs/cards.md"), *md = slurp("docs/configuration.md");
	char *man = slurp("man/hotline.conf.5");
	char err[HL_CONF_ERR_LEN], fp_text[HL_FP_TEXT_LEN];
	uint8_t fp[HL_FP_LEN];
	hl_card card;
	char *t = block_after(cards, "## What `hotline card` prints", "```\n", "```");
	if (hl_card_parse(t, strlen(t), "cards.md", &card, err) < 0)
		fail_msg("the card in docs/cards.md: %s", err);
	free(t);
	t = block_after(cards, "The card above has the fingerprint", "```\n", "\n```");
	assert_true(card.has_next); /* the example is a card of today */
	hl_card_fingerprint(&card, fp);
	hl_fingerprint_text(fp, fp_text);
	char *want = xasprintf("%s\n", fp_text);
	assert_string_equal(t, want);
	free(want);
	free(t);
	t = block_after(md, "## Syntax", "```\n", "```");
	hl_conf_free(parse_ok(t));
	free(t);
	t = block_after(man, ".SH EXAMPLE", ".nf\n", ".fi");
	hl_conf_free(parse_ok(t));
	free(t);
	free(cards);
	free(md);
	free(man);
}

/* 1 when a line of TEXT, past any '#' and blanks, is "KEY = ...". */
static int template_names(const char *text, const char *key)
{
	for (const char *p = text; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		while (*p == '#' || *p == ' ')
			p++;
		if (strncmp(p, key, strlen(key)) == 0 && strncmp(p + strlen(key), " = ", 3) == 0)
			return 1;
	}
	return 0;
}

/* init's station.conf parses; with every "#Key = value" of [Station]
 * uncommented it still parses, and the values shown are the defaults. */
static void test_template_shows_defaults(void **state)
{
	(void)state;
	char *t = hl_conf_template("washington", "0.0.0.0:7100", NULL);
	hl_station_conf *plain = parse_ok(t), *all;
	char *u = xstrdup(t);
	size_t o = 0;
	unsigned uncommented = 0;
	for (const char *p = t; *p; p++) {
		int line_start = p == t || p[-1] == '\n';
		if (line_start && p[0] == '#' && p[1] >= 'A' && p[1] <= 'Z') {
			uncommented++;
			continue;
		}
		u[o++] = *p;
	}
	u[o] = '\0';
	all = parse_ok(u);
	assert_int_equal(uncommented, 16);
	assert_int_equal(all->keepalive_ms, plain->keepalive_ms);
	assert_int_equal(all->keepalive_timeout_ms, plain->keepalive_timeout_ms);
	assert_int_equal(all->handshake_timeout_ms, plain->handshake_timeout_ms);
	assert_int_equal(all->rehandshake_ms, plain->rehandshake_ms);
	assert_true(all->max_attachment == plain->max_attachment);
	assert_true(all->quota_bytes == plain->quota_bytes);
	assert_true(all->reserve_bytes == plain->reserve_bytes);
	assert_int_equal(all->fallback_after_ms, plain->fallback_after_ms);
	assert_int_equal(all->log_level, HL_LOG_INFO + 1);
	assert_true(all->retain_ms == plain->retain_ms);
	assert_true(all->call_recording == plain->call_recording);
	assert_true(all->sandbox && plain->sandbox);
	/* the examples (no default) */
	assert_string_equal(all->address, "203.0.113.5:7100");
	assert_string_equal(all->alarm_command, "/usr/local/bin/hotline-alarm");
	assert_string_equal(all->user, "hotline");
	assert_string_equal(all->media_listen, "0.0.0.0:7101");
	assert_string_equal(plain->address, "");
	hl_conf_free(plain);
	hl_conf_free(all);
	free(u);
	free(t);
	/* with --address, the Address line is set */
	t = hl_conf_template("w", "0.0.0.0:7100", "192.0.2.7:7100");
	plain = parse_ok(t);
	assert_string_equal(plain->address, "192.0.2.7:7100");
	hl_conf_free(plain);
	free(t);
}

static void test_docs_name_every_key(void **state)
{
	(void)state;
	char *md = slurp("docs/configuration.md"), *man = slurp("man/hotline.conf.5");
	char *tmpl = hl_conf_template("washington", "0.0.0.0:7100", NULL);
	const char *section, *key, *last = "";
	size_t i;
	for (i = 0; hl_conf_key_at(i, &section, &key) == 0; i++) {
		char *h = xasprintf("## [%s]", section), *mh = xasprintf(".SH [%s]", section);
		char *msec = section_of(md, h, "## "), *nsec = section_of(man, mh, ".SH ");
		if (!msec || !nsec)
			fail_msg("no '%s' in docs/configuration.md or '%s' in hotline.conf.5", h, mh);
		char *want_md = xasprintf("\n### `%s`\n", key), *want_man = xasprintf("\n.TP\n.B %s\n", key);
		if (!strstr(msec, want_md))
			fail_msg("docs/configuration.md: [%s] does not document %s ('### `%s`')",
				 section, key, key);
		if (!strstr(nsec, want_man))
			fail_msg("hotline.conf.5: [%s] does not document %s ('.TP' '.B %s')", section,
				 key, key);
		/* and init's station.conf names it */
		if (!template_names(tmpl, key))
			fail_msg("hotline init's station.conf does not name %s:\n%s", key, tmpl);
		if (strcmp(section, last) != 0) {
			/* nothing documented that the parser does not know */
			documented_keys(msec, "\n### `", "`", section, "docs/configuration.md");
			documented_keys(nsec, "\n.TP\n.B ", "\n", section, "hotline.conf.5");
			last = section;
		}
		free(want_md);
		free(want_man);
		free(msec);
		free(nsec);
		free(h);
		free(mh);
	}
	assert_true(i >= 25);   /* the table was walked */
	free(md);
	free(man);
	free(tmpl);
}

/* ---- edits ---- */

static char tmpdir[64];

static int make_station(void **state)
{
	(void)state;
	strcpy(tmpdir, "/tmp/hl-test-conf-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	hl_signer *id = NULL;
	char *path = hl_path_join(tmpdir, HL_IDENTITY_FILE);
	int r = hl_signer_generate(&id);
	if (r == 0)
		r = hl_signer_write_new(path, id);
	hl_signer_free(id);
	free(path);
	return r;
}

static int remove_station(void **state)
{
	(void)state;
	char *cmd = xasprintf("rm -rf '%s'", tmpdir);
	int r = system(cmd);
	free(cmd);
	return r == 0 ? 0 : -1;
}

static void write_conf(const char *text)
{
	char *path = hl_path_join(tmpdir, HL_CONF_FILE);
	assert_int_equal(hl_write_file_atomic(path, text, strlen(text), 0640), 0);
	free(path);
}

static char *read_conf(void)
{
	char *path = hl_path_join(tmpdir, HL_CONF_FILE);
	char *buf = NULL;
	size_t len = 0;
	assert_int_equal(hl_read_file(path, HL_CONF_MAX_BYTES, &buf, &len), 0);
	free(path);
	return buf;
}

static void card_from(hl_card *card, const char *name, const struct keys *k, const char *addr)
{
	memset(card, 0, sizeof(*card));
	strcpy(card->name, name);
	memcpy(card->noise_key, k->noise, 32);
	memcpy(card->signing_key, k->sign, 32);
	strcpy(card->address, addr);
}

/* An edit that must be refused and leave station.conf byte-identical. */
static void add_refused(const hl_card *card, int code, const char *needle)
{
	char err[HL_CONF_ERR_LEN];
	char *before = read_conf();
	int r = hl_conf_add_peer(tmpdir, card, err);
	assert_int_equal(r, code);
	if (!strstr(err, needle))
		fail_msg("error '%s' does not contain '%s'", err, needle);
	char *after = read_conf();
	assert_string_equal(before, after);
	free(before);
	free(after);
}

static void test_add_remove_peer(void **state)
{
	(void)state;
	char err[HL_CONF_ERR_LEN];
	const char *orig = "# my station ; keep this comment\n[Station]\nName = washington\n"
			   "Listen = 127.0.0.1:7100\n# trailing comment\n";
	write_conf(orig);
	struct keys k1, k2, k3;
	new_keys(&k1);
	new_keys(&k2);
	new_keys(&k3);
	hl_card c1, c2, c3;
	card_from(&c1, "pyongyang", &k1, "127.0.0.1:7200");
	card_from(&c2, "moscow", &k2, "");
	card_from(&c3, "seoul", &k3, "[::1]:7300");

	assert_int_equal(hl_conf_add_peer(tmpdir, &c1, err), 0);
	char *after1 = read_conf();
	assert_int_equal(strncmp(after1, orig, strlen(orig)), 0); /* kept as it was */
	assert_int_equal(hl_conf_add_peer(tmpdir, &c2, err), 0);
	assert_int_equal(hl_conf_add_peer(tmpdir, &c3, err), 0);

	/* The mode of station.conf is kept. */
	struct stat st;
	char *path = hl_path_join(tmpdir, HL_CONF_FILE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);
	free(path);

	hl_station_conf *conf = NULL;
	assert_int_equal(hl_conf_load(tmpdir, &conf, err), 0);
	assert_int_equal(conf->npeers, 3);
	assert_string_equal(conf->peers[0].name, "pyongyang");
	assert_string_equal(conf->peers[0].address, "127.0.0.1:7200");
	assert_string_equal(conf->peers[1].name, "moscow");
	assert_string_equal(conf->peers[1].address, "");
	assert_string_equal(conf->peers[2].address, "[::1]:7300");
	assert_memory_equal(conf->peers[2].noise_key, k3.noise, 32);
	hl_conf_free(conf);

	/* Remove the middle one: the others stay, the comments stay. */
	assert_int_equal(hl_conf_remove_peer(tmpdir, "moscow", err), 0);
	assert_int_equal(hl_conf_load(tmpdir, &conf, err), 0);
	assert_int_equal(conf->npeers, 2);
	assert_string_equal(conf->peers[0].name, "pyongyang");
	assert_string_equal(conf->peers[1].name, "seoul");
	hl_conf_free(conf);
	char *text = read_conf();
	assert_non_null(strstr(text, "# my station ; keep this comment\n"));
	assert_non_null(strstr(text, "# trailing comment\n"));
	assert_null(strstr(text, k2.noise_b64));
	free(text);

	/* Removing the rest, last first, gives back the original bytes. */
	assert_int_equal(hl_conf_remove_peer(tmpdir, "seoul", err), 0);
	text = read_conf();
	assert_string_equal(text, after1);
	free(text);
	assert_int_equal(hl_conf_remove_peer(tmpdir, "pyongyang", err), 0);
	text = read_conf();
	assert_string_equal(text, orig);
	free(text);
	free(after1);

	/* Unknown name */
	assert_int_equal(hl_conf_remove_peer(tmpdir, "nobody", err), HL_ENOTFOUND);
	assert_non_null(strstr(err, "no peer named 'nobody'"));
	text = read_conf();
	assert_string_equal(text, orig);
	free(text);
}

static void test_add_peer_refusals(void **state)
{
	(void)state;
	write_conf("[Station]\nName = washington\n");
	struct keys k1, k2, mix;
	new_keys(&k1);
	new_keys(&k2);
	hl_card c;
	char err[HL_CONF_ERR_LEN];
	card_from(&c, "pyongyang", &k1, "");
	assert_int_equal(hl_conf_add_peer(tmpdir, &c, err), 0);

	/* The same name with other keys */
	card_from(&c, "pyongyang", &k2, "");
	add_refused(&c, HL_EEXIST, "a peer named 'pyongyang' is already pinned");
	/* The same NoiseKey, SigningKey or both under another name */
	mix = k2;
	memcpy(mix.noise, k1.noise, 32);
	card_from(&c, "other", &mix, "");
	add_refused(&c, HL_EEXIST, "NoiseKey is already pinned as peer 'pyongyang'");
	mix = k2;
	memcpy(mix.sign, k1.sign, 32);
	card_from(&c, "other", &mix, "");
	add_refused(&c, HL_EEXIST, "SigningKey is already pinned as peer 'pyongyang'");
	card_from(&c, "other", &k1, "");
	add_refused(&c, HL_EEXIST, "already pinned as peer 'pyongyang'");

	/* This station's own keys, either of them */
	hl_signer *id = NULL;
	char *idpath = hl_path_join(tmpdir, HL_IDENTITY_FILE);
	assert_int_equal(hl_signer_load(idpath, &id), 0);
	free(idpath);
	mix = k2;
	memcpy(mix.noise, hl_signer_noise_pub(id), 32);
	card_from(&c, "self", &mix, "");
	add_refused(&c, HL_EEXIST, "cannot pin itself");
	mix = k2;
	memcpy(mix.sign, hl_signer_sign_pk(id), 32);
	card_from(&c, "self", &mix, "");
	add_refused(&c, HL_EEXIST, "cannot pin itself");
	hl_signer_free(id);

	/* A card that did not come from the parser is still checked */
	card_from(&c, "Bad Name", &k2, "");
	add_refused(&c, HL_EINVAL, "bad peer name");
	card_from(&c, "ok", &k2, "nowhere");
	add_refused(&c, HL_EINVAL, "bad address 'nowhere'");
	mix = k2;
	memset(mix.noise, 0, 32);
	card_from(&c, "ok", &mix, "");
	add_refused(&c, HL_EINVAL, "not usable");

	/* A station.conf that does not parse is not edited */
	write_conf("[Station]\nName = washington\nBogus = 1\n");
	card_from(&c, "ok", &k2, "");
	add_refused(&c, HL_EINVAL, ":3: unknown key 'Bogus'");
}

static void test_add_to_file_without_final_newline(void **state)
{
	(void)state;
	write_conf("[Station]\nName = washington");
	struct keys k;
	new_keys(&k);
	hl_card c;
	char err[HL_CONF_ERR_LEN];
	card_from(&c, "p", &k, "");
	assert_int_equal(hl_conf_add_peer(tmpdir, &c, err), 0);
	hl_station_conf *conf = NULL;
	assert_int_equal(hl_conf_load(tmpdir, &conf, err), 0);
	assert_string_equal(conf->name, "washington");
	assert_int_equal(conf->npeers, 1);
	hl_conf_free(conf);
}

static void test_edit_needs_station(void **state)
{
	(void)state;
	char err[HL_CONF_ERR_LEN];
	char dir[] = "/tmp/hl-test-empty-XXXXXX";
	assert_non_null(mkdtemp(dir));
	struct keys k;
	new_keys(&k);
	hl_card c;
	card_from(&c, "p", &k, "");
	assert_int_equal(hl_conf_add_peer(dir, &c, err), -ENOENT);
	assert_non_null(strstr(err, "station.conf"));
	hl_station_conf *conf = NULL;
	assert_int_equal(hl_conf_load(dir, &conf, err), -ENOENT);
	char *cmd = xasprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_duration_parse),
		cmocka_unit_test(test_addr_split),
		cmocka_unit_test(test_name_valid),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_all_station_keys),
		cmocka_unit_test(test_peers),
		cmocka_unit_test(test_station_errors),
		cmocka_unit_test(test_peer_errors),
		cmocka_unit_test(test_hostile_bytes),
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_card_round_trip),
		cmocka_unit_test(test_card_malformed),
		cmocka_unit_test(test_card_rules),
		cmocka_unit_test(test_docs_name_every_key),
		cmocka_unit_test(test_template_shows_defaults),
		cmocka_unit_test(test_doc_examples_parse),
		cmocka_unit_test(test_add_remove_peer),
		cmocka_unit_test(test_add_peer_refusals),
		cmocka_unit_test(test_add_to_file_without_final_newline),
		cmocka_unit_test(test_edit_needs_station),
	};
	return cmocka_run_group_tests(tests, make_station, remove_station);
}
