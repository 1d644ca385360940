/* conf/config.c — station.conf and station cards: parsing into the data
 * model of config.h, the value syntaxes (names, addresses, durations, keys),
 * and the two edits commands make (pin a peer, remove a peer).
 *
 * Parsing is one pass over the lines (util/ini.h).  Each section's values
 * are collected into a `struct section`; when the section ends (the next
 * header or the end of the input) its required keys are checked and it is
 * committed to the result, and a peer is checked against the peers before it
 * (name, NoiseKey and SigningKey must each be unique).  The first error stops
 * the parse and is written once, as "FILE:LINE: what is wrong 'the value'",
 * with the quoted value sanitized (util/text.h) and shortened. */
#include "conf/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/ini.h"
#include "conf/perms.h"
#include "crypto/signer.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"

#define QUOTE_MAX 80        /* bytes of a bad value quoted in an error */
#define HOSTNAME_MAX 253

/* ---- value syntaxes ---- */

int hl_name_valid(const char *name)
{
	size_t n = strnlen(name, HL_NAME_MAX + 1);
	if (n == 0 || n > HL_NAME_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		int alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
		if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
			return 0;
	}
	return 1;
}

static int host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-';
}

int hl_addr_split(const char *addr, char *host, size_t hostcap, uint16_t *port)
{
	const char *h, *colon;
	size_t hlen;
	char tmp[HOSTNAME_MAX + 1];
	unsigned char bin[16];

	if (strnlen(addr, HL_ADDR_MAX + 1) > HL_ADDR_MAX)
		return HL_EINVAL;
	if (addr[0] == '[') {
		const char *rb = strchr(addr, ']');
		if (!rb || rb[1] != ':')
			return HL_EINVAL;
		h = addr + 1;
		hlen = (size_t)(rb - h);
		colon = rb + 1;
		if (hlen == 0 || hlen >= INET6_ADDRSTRLEN)
			return HL_EINVAL;
		memcpy(tmp, h, hlen);
		tmp[hlen] = '\0';
		if (inet_pton(AF_INET6, tmp, bin) != 1)
			return HL_EINVAL;
	} else {
		colon = strrchr(addr, ':');
		if (!colon)
			return HL_EINVAL;
		h = addr;
		hlen = (size_t)(colon - addr);
		if (hlen == 0 || hlen > HOSTNAME_MAX || h[0] == '-' || h[0] == '.')
			return HL_EINVAL;
		int dotted = 1;
		for (size_t i = 0; i < hlen; i++) {
			if (!host_char(h[i]))
				return HL_EINVAL; /* also an unbracketed IPv6 address */
			if (h[i] != '.' && (h[i] < '0' || h[i] > '9'))
				dotted = 0;
		}
		memcpy(tmp, h, hlen);
		tmp[hlen] = '\0';
		/* All digits and dots: it must be a whole IPv4 address. */
		if (dotted && inet_pton(AF_INET, tmp, bin) != 1)
			return HL_EINVAL;
	}
	const char *p = colon + 1;
	size_t plen = strlen(p);
	if (plen == 0 || plen > 5 || p[0] == '0')
		return HL_EINVAL;
	unsigned long v = 0;
	for (size_t i = 0; i < plen; i++) {
		if (p[i] < '0' || p[i] > '9')
			return HL_EINVAL;
		v = v * 10 + (unsigned long)(p[i] - '0');
	}
	if (v > 65535)
		return HL_EINVAL;
	if (host) {
		if (hlen + 1 > hostcap)
			return HL_EINVAL;
		memcpy(host, h, hlen);
		host[hlen] = '\0';
	}
	if (port)
		*port = (uint16_t)v;
	return 0;
}

int hl_duration_parse(const char *s, size_t len, uint32_t *ms)
{
	uint64_t v = 0;
	size_t i = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return HL_ETOOBIG;
		i++;
	}
	if (i == 0)
		return HL_EINVAL;
	const char *u = s + i;
	size_t ulen = len - i;
	uint64_t mult;
	if (ulen == 0 || (ulen == 1 && u[0] == 's'))
		mult = 1000;
	else if (ulen == 2 && u[0] == 'm' && u[1] == 's')
		mult = 1;
	else if (ulen == 1 && u[0] == 'm')
		mult = 60000;
	else if (ulen == 1 && u[0] == 'h')
		mult = 3600000;
	else
		return HL_EINVAL;
	/* v < 2^32 and mult < 2^22: the product fits in 64 bits. */
	if (v * mult > UINT32_MAX)
		return HL_ETOOBIG;
	*ms = (uint32_t)(v * mult);
	return 0;
}

int hl_size_parse(const char *s, size_t len, uint64_t *bytes)
{
	uint64_t v = 0;
	size_t i = 0;
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (v > (UINT64_MAX - 9) / 10)
			return HL_ETOOBIG;
		v = v * 10 + (uint64_t)(s[i] - '0');
		i++;
	}
	if (i == 0 || len - i > 1)
		return HL_EINVAL;
	unsigned shift = 0;
	if (i < len) {
		switch (s[i]) {
		case 'K': shift = 10; break;
		case 'M': shift = 20; break;
		case 'G': shift = 30; break;
		case 'T': shift = 40; break;
		default: return HL_EINVAL;
		}
	}
	/* at most 2^62: the limits compare against sums of sizes */
	if (v > (UINT64_C(1) << 62) >> shift)
		return HL_ETOOBIG;
	*bytes = v << shift;
	return 0;
}

uint64_t hl_conf_retain_ms(const hl_station_conf *conf, const hl_peer_conf *peer)
{
	return peer && peer->retain_set ? peer->retain_ms : conf->retain_ms;
}

int hl_retain_parse(const char *s, size_t len, uint64_t *ms)
{
	static const char forever[] = "forever";
	uint64_t v = 0, unit;
	size_t i = 0;
	if (len == sizeof(forever) - 1 && strncasecmp(s, forever, len) == 0) {
		*ms = 0;
		return 0;
	}
	while (i < len && s[i] >= '0' && s[i] <= '9') {
		if (v > (uint64_t)HL_RETAIN_MAX_DAYS * 86400)
			return HL_ETOOBIG;
		v = v * 10 + (uint64_t)(s[i] - '0');
		i++;
	}
	if (i == 0 || len - i != 1)
		return HL_EINVAL;
	switch (s[i]) {
	case 's': unit = 1000; break;
	case 'm': unit = 60 * 1000; break;
	case 'h': unit = 3600 * 1000; break;
	case 'd': unit = 86400 * 1000; break;
	default: return HL_EINVAL;
	}
	if (v == 0)
		return HL_EINVAL;
	if (v > (uint64_t)HL_RETAIN_MAX_DAYS * UINT64_C(86400000) / unit)
		return HL_ETOOBIG;
	*ms = v * unit;
	return 0;
}

int hl_check_at_parse(const char *s, size_t len, uint16_t minutes[static HL_CHECK_AT_MAX],
		      unsigned *n)
{
	size_t i = 0;
	unsigned k = 0;
	for (;;) {
		while (i < len && s[i] == ' ')
			i++;
		/* HH:MM, exactly two digits each */
		if (len - i < 5 || s[i + 2] != ':')
			return HL_EINVAL;
		for (size_t j = 0; j < 5; j++)
			if (j != 2 && (s[i + j] < '0' || s[i + j] > '9'))
				return HL_EINVAL;
		unsigned h = (unsigned)(s[i] - '0') * 10 + (unsigned)(s[i + 1] - '0');
		unsigned m = (unsigned)(s[i + 3] - '0') * 10 + (unsigned)(s[i + 4] - '0');
		if (h > 23 || m > 59 || k == HL_CHECK_AT_MAX)
			return HL_EINVAL;
		uint16_t v = (uint16_t)(h * 60 + m);
		/* insert in order; a repeat is an error */
		unsigned pos = k;
		while (pos > 0 && minutes[pos - 1] > v)
			pos--;
		if (pos > 0 && minutes[pos - 1] == v)
			return HL_EINVAL;
		memmove(minutes + pos + 1, minutes + pos, (k - pos) * sizeof(*minutes));
		minutes[pos] = v;
		k++;
		i += 5;
		while (i < len && s[i] == ' ')
			i++;
		if (i == len)
			break;
		if (s[i] != ',')
			return HL_EINVAL;
		i++;
	}
	*n = k;
	return 0;
}

int hl_email_addr_valid(const char *addr)
{
	/* A plain addr-spec, local@domain, from a conservative alphabet: it is
	 * written into mail headers and passed to an SMTP client, so nothing
	 * that could end a header, quote or bracket it may appear. */
	static const char local_extra[] = ".!#$%&'*+/=?^_`{|}~-";
	size_t n = strnlen(addr, HL_EMAIL_ADDR_MAX + 1);
	const char *at = memchr(addr, '@', n);
	if (n == 0 || n > HL_EMAIL_ADDR_MAX || !at || at == addr || at == addr + n - 1 ||
	    memchr(at + 1, '@', (size_t)(addr + n - at - 1)))
		return 0;
	for (const char *c = addr; c < at; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || strchr(local_extra, *c)))
			return 0;
	for (const char *c = at + 1; c < addr + n; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '.' || *c == '-'))
			return 0;
	return 1;
}

int hl_smtp_url_valid(const char *url)
{
	size_t n = strnlen(url, HL_SMTP_URL_MAX + 1);
	size_t scheme = strncmp(url, "smtp://", 7) == 0 ? 7 : strncmp(url, "smtps://", 8) == 0 ? 8 : 0;
	if (n > HL_SMTP_URL_MAX || scheme == 0 || n == scheme)
		return 0;
	/* No spaces or controls: the URL goes to libcurl as it is. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
			return 0;
	return 1;
}

int hl_zone_name_valid(const char *name)
{
	size_t n = strnlen(name, HL_ZONE_MAX + 1);
	if (n == 0 || n > HL_ZONE_MAX || name[0] == '/' || name[n - 1] == '/')
		return 0;
	size_t part = 0;
	for (size_t i = 0; i <= n; i++) {
		char c = name[i];
		if (c == '/' || c == '\0') {
			/* no empty, "." or ".." component: the name stays under
			 * the zoneinfo directory */
			if (part == 0 || (part == 1 && name[i - 1] == '.') ||
			    (part == 2 && name[i - 1] == '.' && name[i - 2] == '.'))
				return 0;
			part = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '+' || c == '-' || c == '.'))
			return 0;
		part++;
	}
	return 1;
}

int hl_user_spec_valid(const char *spec)
{
	size_t n = strlen(spec), digits = 0, colons = 0;
	if (n == 0 || n > HL_USER_MAX)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = spec[i];
		if (c >= '0' && c <= '9')
			digits++;
		else if (c == ':')
			colons++;
		else if (!((c >= 'a' && c <= 'z') || c == '_' || (i > 0 && (c == '-' || c == '.')) ||
			   (c == '$' && i == n - 1)))
			return 0;
	}
	if (colons == 0)
		return 1;   /* a name (may hold digits) or a UID */
	/* UID:GID, both numeric */
	return colons == 1 && digits == n - 1 && spec[0] != ':' && spec[n - 1] != ':';
}

/* A duration as people write it, for error messages. */
static void fmt_ms(uint32_t ms, char out[static 16])
{
	if (ms && ms % 3600000 == 0)
		snprintf(out, 16, "%uh", (unsigned)(ms / 3600000));
	else if (ms && ms % 60000 == 0)
		snprintf(out, 16, "%um", (unsigned)(ms / 60000));
	else if (ms % 1000 == 0)
		snprintf(out, 16, "%us", (unsigned)(ms / 1000));
	else
		snprintf(out, 16, "%ums", (unsigned)ms);
}

/* ---- the parser ---- */

enum key_id {
	K_NAME, K_LISTEN, K_ADDRESS, K_KEEPALIVE, K_KEEPALIVE_TIMEOUT,
	K_HANDSHAKE_TIMEOUT, K_REHANDSHAKE, K_NOISE_KEY, K_SIGNING_KEY,
	K_MAX_ATTACHMENT, K_PEER_QUOTA, K_DISK_RESERVE, K_CHECK_EVERY, K_CHECK_AT,
	K_CHECK_ZONE, K_CHECK_TIMEOUT, K_CHECK_MODE, K_ALARM_COMMAND, K_SMTP, K_FROM,
	K_MAILDIR, K_EMAIL, K_FALLBACK_AFTER, K_USER, K_LOG_LEVEL, K_RETAIN,
	K_MEDIA_LISTEN, K_MEDIA_ADDRESS, K_CALL_RECORDING, K_SANDBOX, K_NEXT_KEY_HASH, K_COUNT
};

static const char *const key_names[K_COUNT] = {
	[K_NAME] = "Name",
	[K_LISTEN] = "Listen",
	[K_ADDRESS] = "Address",
	[K_KEEPALIVE] = "Keepalive",
	[K_KEEPALIVE_TIMEOUT] = "KeepaliveTimeout",
	[K_HANDSHAKE_TIMEOUT] = "HandshakeTimeout",
	[K_REHANDSHAKE] = "Rehandshake",
	[K_NOISE_KEY] = "NoiseKey",
	[K_MAX_ATTACHMENT] = "MaxAttachment",
	[K_PEER_QUOTA] = "PeerQuota",
	[K_DISK_RESERVE] = "DiskReserve",
	[K_SIGNING_KEY] = "SigningKey",
	[K_CHECK_EVERY] = "CheckEvery",
	[K_CHECK_AT] = "CheckAt",
	[K_CHECK_ZONE] = "CheckZone",
	[K_CHECK_TIMEOUT] = "CheckTimeout",
	[K_CHECK_MODE] = "CheckMode",
	[K_ALARM_COMMAND] = "AlarmCommand",
	[K_SMTP] = "SMTP",
	[K_FROM] = "From",
	[K_MAILDIR] = "Maildir",
	[K_EMAIL] = "Email",
	[K_FALLBACK_AFTER] = "FallbackAfter",
	[K_USER] = "User",
	[K_LOG_LEVEL] = "LogLevel",
	[K_RETAIN] = "Retain",
	[K_MEDIA_LISTEN] = "MediaListen",
	[K_MEDIA_ADDRESS] = "MediaAddress",
	[K_CALL_RECORDING] = "CallRecording",
	[K_SANDBOX] = "Sandbox",
	[K_NEXT_KEY_HASH] = "NextKeyHash",
};
_Static_assert(K_COUNT <= 32, "a section's keys are bits of an unsigned");

#define BIT(k) (1u << (k))

enum sec_kind { SEC_STATION, SEC_PEER, SEC_CARD, SEC_EMAIL };

struct sec_def {
	const char *header;
	unsigned allowed, required; /* BIT(key_id) masks */
};

static const struct sec_def sec_defs[] = {
	[SEC_STATION] = { "Station",
			  BIT(K_NAME) | BIT(K_LISTEN) | BIT(K_ADDRESS) | BIT(K_KEEPALIVE) |
				  BIT(K_KEEPALIVE_TIMEOUT) | BIT(K_HANDSHAKE_TIMEOUT) |
				  BIT(K_REHANDSHAKE) | BIT(K_MAX_ATTACHMENT) |
				  BIT(K_PEER_QUOTA) | BIT(K_DISK_RESERVE) | BIT(K_ALARM_COMMAND) |
				  BIT(K_FALLBACK_AFTER) | BIT(K_USER) | BIT(K_LOG_LEVEL) | BIT(K_RETAIN) |
				  BIT(K_MEDIA_LISTEN) | BIT(K_CALL_RECORDING) | BIT(K_SANDBOX),
			  BIT(K_NAME) },
	[SEC_PEER] = { "Peer",
		       BIT(K_NAME) | BIT(K_NOISE_KEY) | BIT(K_SIGNING_KEY) | BIT(K_ADDRESS) |
			       BIT(K_NEXT_KEY_HASH) | BIT(K_CHECK_EVERY) | BIT(K_CHECK_AT) | BIT(K_CHECK_ZONE) |
			       BIT(K_CHECK_TIMEOUT) | BIT(K_CHECK_MODE) | BIT(K_EMAIL) |
			       BIT(K_RETAIN) | BIT(K_MEDIA_ADDRESS),
		       BIT(K_NAME) | BIT(K_NOISE_KEY) | BIT(K_SIGNING_KEY) },
	[SEC_CARD] = { "Station",
		       BIT(K_NAME) | BIT(K_NOISE_KEY) | BIT(K_SIGNING_KEY) | BIT(K_NEXT_KEY_HASH) |
			       BIT(K_ADDRESS),
		       BIT(K_NAME) | BIT(K_NOISE_KEY) | BIT(K_SIGNING_KEY) },
	/* The email path (docs/bundle.md, "By email"): all three are needed
	 * to use it, so all three are required once the section is there. */
	[SEC_EMAIL] = { "Email", BIT(K_SMTP) | BIT(K_FROM) | BIT(K_MAILDIR),
			BIT(K_SMTP) | BIT(K_FROM) | BIT(K_MAILDIR) },
};

int hl_conf_key_at(size_t i, const char **section, const char **key)
{
	static const enum sec_kind conf_sections[] = { SEC_STATION, SEC_PEER, SEC_EMAIL };
	for (size_t s = 0; s < sizeof(conf_sections) / sizeof(conf_sections[0]); s++) {
		const struct sec_def *def = &sec_defs[conf_sections[s]];
		for (int k = 0; k < K_COUNT; k++) {
			if (!(def->allowed & BIT(k)))
				continue;
			if (i-- == 0) {
				*section = def->header;
				*key = key_names[k];
				return 0;
			}
		}
	}
	return HL_ENOTFOUND;
}

/* One section's values, as read so far. */
struct section {
	enum sec_kind kind;
	unsigned first_line, last_line;
	unsigned key_line[K_COUNT];          /* where each key was given; 0: not */
	char name[HL_NAME_MAX + 1];
	char listen[HL_ADDR_MAX + 1];
	char address[HL_ADDR_MAX + 1];
	uint8_t noise_key[HL_KEY_LEN];
	uint8_t signing_key[HL_KEY_LEN];
	uint8_t next_hash[HL_KEY_LEN];       /* NextKeyHash, when key_line[] says given */
	uint32_t ms[K_COUNT];                /* the durations */
	uint64_t bytes[K_COUNT];             /* the sizes */
	unsigned reserve_pct;                /* DiskReserve = N% */
	uint16_t check_at[HL_CHECK_AT_MAX];
	unsigned n_check_at;
	char check_zone[HL_ZONE_MAX + 1];
	unsigned check_mode;
	char alarm_command[HL_ALARM_COMMAND_MAX + 1];
	char smtp_url[HL_SMTP_URL_MAX + 1];
	char mail_addr[HL_EMAIL_ADDR_MAX + 1]; /* From ([Email]) or Email ([Peer]) */
	char maildir[HL_MAILDIR_MAX + 1];
	char user[HL_USER_MAX + 1];
	unsigned log_level;
	uint64_t retain_ms;                  /* Retain: 0 for "forever" */
	char media[HL_ADDR_MAX + 1];         /* MediaListen or MediaAddress (calls) */
	unsigned call_recording;
	unsigned sandbox_off;
};

enum doc_kind { DOC_CONF, DOC_CARD };

struct parser {
	enum doc_kind doc;
	char file[256];                      /* sanitized, for messages */
	char *err;
	hl_ini ini;
	struct section cur;
	int open;                            /* cur holds a section */
	unsigned station_line;               /* the [Station] header, 0: none yet */
	unsigned email_line;                 /* the [Email] header, 0: none yet */
	hl_station_conf *conf;               /* DOC_CONF */
	hl_card *card;                       /* DOC_CARD */
};

/* Sanitized, shortened copy of untrusted text for a message. */
static const char *quote(const char *s, size_t len, char out[static QUOTE_MAX * 3 + 4])
{
	size_t n = len > QUOTE_MAX ? QUOTE_MAX : len;
	size_t o = hl_sanitize(s, n, out, QUOTE_MAX * 3, 0);
	if (n < len)
		memcpy(out + o, "...", 4);
	return out;
}

static int perr(struct parser *p, unsigned line, int code, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Writes "FILE:LINE: message" (or "FILE: message" when LINE is 0). */
static int perr(struct parser *p, unsigned line, int code, const char *fmt, ...)
{
	int n = line ? snprintf(p->err, HL_CONF_ERR_LEN, "%s:%u: ", p->file, line)
		     : snprintf(p->err, HL_CONF_ERR_LEN, "%s: ", p->file);
	if (n < 0 || n >= HL_CONF_ERR_LEN)
		return code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err + n, HL_CONF_ERR_LEN - (size_t)n, fmt, ap);
	va_end(ap);
	return code;
}

/* Copies an item's value into a NUL-terminated buffer of CAP bytes. */
static int value_copy(const hl_ini_item *it, char *out, size_t cap)
{
	if (it->value_len + 1 > cap)
		return HL_EINVAL;
	memcpy(out, it->value, it->value_len);
	out[it->value_len] = '\0';
	return 0;
}

static int set_name(struct parser *p, const hl_ini_item *it, char out[static HL_NAME_MAX + 1])
{
	char q[QUOTE_MAX * 3 + 4];
	if (value_copy(it, out, HL_NAME_MAX + 1) < 0 || !hl_name_valid(out))
		return perr(p, it->line, HL_EINVAL,
			    "bad Name '%s': want 1 to %d characters from a-z 0-9 . _ -, "
			    "starting with a letter or digit",
			    quote(it->value, it->value_len, q), HL_NAME_MAX);
	return 0;
}

static int set_addr(struct parser *p, const hl_ini_item *it, enum key_id k,
		    char out[static HL_ADDR_MAX + 1])
{
	char q[QUOTE_MAX * 3 + 4];
	if (value_copy(it, out, HL_ADDR_MAX + 1) < 0 || hl_addr_split(out, NULL, 0, NULL) < 0)
		return perr(p, it->line, HL_EINVAL,
			    "bad %s '%s': want HOST:PORT or [IPv6]:PORT, port 1-65535",
			    key_names[k], quote(it->value, it->value_len, q));
	return 0;
}

static int set_key(struct parser *p, const hl_ini_item *it, enum key_id k,
		   uint8_t out[static HL_KEY_LEN])
{
	char q[QUOTE_MAX * 3 + 4];
	if (hl_b64_key_parse(it->value, it->value_len, out) < 0)
		return perr(p, it->line, HL_EINVAL,
			    "bad %s '%s': want the base64 (with padding) of 32 bytes",
			    key_names[k], quote(it->value, it->value_len, q));
	if (k == K_NOISE_KEY ? !hl_noise_key_usable(out) : !hl_signing_key_usable(out))
		return perr(p, it->line, HL_EINVAL, "%s '%s' is not a usable %s public key",
			    key_names[k], quote(it->value, it->value_len, q),
			    k == K_NOISE_KEY ? "X25519" : "Ed25519");
	return 0;
}

/* NextKeyHash: a hash, so only its form is checked; all zero is refused
 * (what a wiped or made-up value looks like, and no keys hash to it). */
static int set_next_hash(struct parser *p, const hl_ini_item *it, uint8_t out[static HL_KEY_LEN])
{
	char q[QUOTE_MAX * 3 + 4];
	if (hl_b64_key_parse(it->value, it->value_len, out) < 0 ||
	    sodium_is_zero(out, HL_KEY_LEN))
		return perr(p, it->line, HL_EINVAL,
			    "bad NextKeyHash '%s': want the base64 (with padding) of 32 bytes, "
			    "not all zero", quote(it->value, it->value_len, q));
	return 0;
}

static int set_duration(struct parser *p, const hl_ini_item *it, enum key_id k, uint32_t *out)
{
	char q[QUOTE_MAX * 3 + 4];
	/* Upper bounds keep 3 x Keepalive and the timers' arithmetic in range;
	 * Rehandshake's is the forward-secrecy promise. */
	uint32_t max = k == K_KEEPALIVE_TIMEOUT || k == K_CHECK_EVERY || k == K_FALLBACK_AFTER
			       ? 24u * 3600000 : 3600000;
	int r = hl_duration_parse(it->value, it->value_len, out);
	if (r < 0)
		return perr(p, it->line, HL_EINVAL,
			    "bad %s '%s': want a duration such as 25s (a whole number and "
			    "ms, s, m or h)",
			    key_names[k], quote(it->value, it->value_len, q));
	if (*out == 0 || *out > max) {
		char m[16];
		fmt_ms(max, m);
		return perr(p, it->line, HL_EINVAL, "%s '%s' must be more than 0 and at most %s",
			    key_names[k], quote(it->value, it->value_len, q), m);
	}
	return 0;
}

/* DiskReserve = N%: 1..50 percent of the file system. */
static int set_percent(struct parser *p, const hl_ini_item *it, unsigned *pct)
{
	char q[QUOTE_MAX * 3 + 4];
	unsigned v = 0;
	size_t i = 0;
	while (i + 1 < it->value_len && it->value[i] >= '0' && it->value[i] <= '9' && v < 1000)
		v = v * 10 + (unsigned)(it->value[i++] - '0');
	if (i == 0 || i + 1 != it->value_len || v < 1 || v > HL_DISK_RESERVE_PCT_MAX)
		return perr(p, it->line, HL_EINVAL, "bad DiskReserve '%s': want a size such as 1G, "
			    "or a share of the file system from 1%% to %d%%",
			    quote(it->value, it->value_len, q), HL_DISK_RESERVE_PCT_MAX);
	*pct = v;
	return 0;
}

static int set_size(struct parser *p, const hl_ini_item *it, enum key_id k, uint64_t *out,
		    unsigned *pct)
{
	char q[QUOTE_MAX * 3 + 4];
	static const uint64_t cap[K_COUNT] = {
		[K_MAX_ATTACHMENT] = HL_MAX_ATTACHMENT_CAP,
		[K_PEER_QUOTA] = HL_PEER_QUOTA_CAP,
		[K_DISK_RESERVE] = HL_DISK_RESERVE_CAP,
	};
	if (k == K_DISK_RESERVE && it->value_len && it->value[it->value_len - 1] == '%')
		return set_percent(p, it, pct);
	if (hl_size_parse(it->value, it->value_len, out) < 0)
		return perr(p, it->line, HL_EINVAL,
			    "bad %s '%s': want a size such as 4G (a whole number and K, M, G or T; "
			    "bare numbers are bytes)",
			    key_names[k], quote(it->value, it->value_len, q));
	if (cap[k] && *out > cap[k])
		return perr(p, it->line, HL_EINVAL, "%s '%s' is over its cap of %lluT",
			    key_names[k], quote(it->value, it->value_len, q),
			    (unsigned long long)(cap[k] >> 40));
	return 0;
}

/* LogLevel's words, in the order of enum hl_log_level (util/log.h). */
static const char *const log_levels[] = { "debug", "info", "warn", "error" };

uint64_t hl_disk_reserve(uint64_t reserve_bytes, unsigned reserve_pct, uint64_t fs_bytes)
{
	if (!reserve_pct)
		return reserve_bytes;
	uint64_t r = fs_bytes / 100 * reserve_pct;
	if (r < HL_DISK_RESERVE_PCT_MIN_BYTES)
		r = HL_DISK_RESERVE_PCT_MIN_BYTES;
	return r > HL_DISK_RESERVE_PCT_MAX_BYTES ? HL_DISK_RESERVE_PCT_MAX_BYTES : r;
}

/* The value is WORD, ignoring case. */
static int value_is(const hl_ini_item *it, const char *word)
{
	return it->value_len == strlen(word) && strncasecmp(it->value, word, it->value_len) == 0;
}

/* MediaListen, MediaAddress: used as given, never looked up (the media
 * clock cannot wait for a resolver): numeric only. */
static int set_media(struct parser *p, const hl_ini_item *it, enum key_id k)
{
	struct section *s = &p->cur;
	char q[QUOTE_MAX * 3 + 4];
	char host[HL_ADDR_MAX + 1];
	struct in6_addr a6;
	int r = set_addr(p, it, k, s->media);
	if (r == 0 && (hl_addr_split(s->media, host, sizeof(host), NULL) < 0 ||
		       (inet_pton(AF_INET, host, &a6) != 1 && inet_pton(AF_INET6, host, &a6) != 1)))
		r = perr(p, it->line, HL_EINVAL,
			 "bad %s '%s': want a numeric address (IPv4, or [IPv6]) and a port",
			 key_names[k], quote(it->value, it->value_len, q));
	return r;
}

/* The keys whose value is kept as text once checked: CheckZone,
 * AlarmCommand, SMTP, From, Email, Maildir, User. */
static int set_text(struct parser *p, const hl_ini_item *it, enum key_id k)
{
	struct section *s = &p->cur;
	char q[QUOTE_MAX * 3 + 4];

	switch (k) {
	case K_CHECK_ZONE:
		if (value_copy(it, s->check_zone, sizeof(s->check_zone)) < 0 ||
		    !hl_zone_name_valid(s->check_zone))
			return perr(p, it->line, HL_EINVAL,
				    "bad CheckZone '%s': want an IANA time zone such as Asia/Seoul",
				    quote(it->value, it->value_len, q));
		return 0;
	case K_ALARM_COMMAND:
		if (value_copy(it, s->alarm_command, sizeof(s->alarm_command)) < 0 ||
		    s->alarm_command[0] != '/' || memchr(it->value, '\0', it->value_len))
			return perr(p, it->line, HL_EINVAL,
				    "bad AlarmCommand '%s': want the absolute path of a program",
				    quote(it->value, it->value_len, q));
		return 0;
	case K_SMTP:
		if (value_copy(it, s->smtp_url, sizeof(s->smtp_url)) < 0 ||
		    !hl_smtp_url_valid(s->smtp_url))
			return perr(p, it->line, HL_EINVAL,
				    "bad SMTP '%s': want a URL such as smtp://127.0.0.1:25 "
				    "or smtps://mail.example:465",
				    quote(it->value, it->value_len, q));
		return 0;
	case K_FROM:
	case K_EMAIL:
		if (value_copy(it, s->mail_addr, sizeof(s->mail_addr)) < 0 ||
		    !hl_email_addr_valid(s->mail_addr))
			return perr(p, it->line, HL_EINVAL,
				    "bad %s '%s': want a plain address such as ops@example.org",
				    key_names[k], quote(it->value, it->value_len, q));
		return 0;
	case K_MAILDIR:
		if (value_copy(it, s->maildir, sizeof(s->maildir)) < 0 || s->maildir[0] != '/' ||
		    memchr(it->value, '\0', it->value_len))
			return perr(p, it->line, HL_EINVAL,
				    "bad Maildir '%s': want the absolute path of a Maildir",
				    quote(it->value, it->value_len, q));
		return 0;
	case K_USER:
		if (value_copy(it, s->user, sizeof(s->user)) < 0 || !hl_user_spec_valid(s->user))
			return perr(p, it->line, HL_EINVAL,
				    "bad User '%s': want a user name, a numeric UID or UID:GID",
				    quote(it->value, it->value_len, q));
		return 0;
	default:
		break;
	}
	return HL_EINVAL;
}

/* One key of the current section, once it is known to be allowed there and
 * given once. */
static int set_value(struct parser *p, const hl_ini_item *it, enum key_id k)
{
	struct section *s = &p->cur;
	char q[QUOTE_MAX * 3 + 4];

	switch (k) {
	case K_NAME:
		return set_name(p, it, s->name);
	case K_LISTEN:
		return set_addr(p, it, K_LISTEN, s->listen);
	case K_ADDRESS:
		return set_addr(p, it, K_ADDRESS, s->address);
	case K_MEDIA_LISTEN:
	case K_MEDIA_ADDRESS:
		return set_media(p, it, k);
	case K_NOISE_KEY:
		return set_key(p, it, K_NOISE_KEY, s->noise_key);
	case K_SIGNING_KEY:
		return set_key(p, it, K_SIGNING_KEY, s->signing_key);
	case K_NEXT_KEY_HASH:
		return set_next_hash(p, it, s->next_hash);
	case K_KEEPALIVE:
	case K_KEEPALIVE_TIMEOUT:
	case K_HANDSHAKE_TIMEOUT:
	case K_REHANDSHAKE:
	case K_CHECK_EVERY:
	case K_CHECK_TIMEOUT:
	case K_FALLBACK_AFTER:
		return set_duration(p, it, k, &s->ms[k]);
	case K_MAX_ATTACHMENT:
	case K_PEER_QUOTA:
	case K_DISK_RESERVE:
		return set_size(p, it, k, &s->bytes[k], &s->reserve_pct);
	case K_CHECK_AT:
		if (hl_check_at_parse(it->value, it->value_len, s->check_at, &s->n_check_at) < 0)
			return perr(p, it->line, HL_EINVAL,
				    "bad CheckAt '%s': want times of day such as 09:00,17:00 "
				    "(HH:MM, 24-hour, each once, at most %d)",
				    quote(it->value, it->value_len, q), HL_CHECK_AT_MAX);
		return 0;
	case K_CALL_RECORDING:
	case K_SANDBOX:
		if (value_is(it, "on") || value_is(it, "off")) {
			*(k == K_SANDBOX ? &s->sandbox_off : &s->call_recording) =
				value_is(it, k == K_SANDBOX ? "off" : "on");
			return 0;
		}
		return perr(p, it->line, HL_EINVAL, "bad %s '%s': want on or off", key_names[k],
			    quote(it->value, it->value_len, q));
	case K_CHECK_MODE:
		if (value_is(it, "machine"))
			s->check_mode = 0;
		else if (value_is(it, "operator"))
			s->check_mode = 1;
		else
			return perr(p, it->line, HL_EINVAL,
				    "bad CheckMode '%s': want machine or operator",
				    quote(it->value, it->value_len, q));
		return 0;
	case K_LOG_LEVEL:
		for (unsigned l = 0; l < sizeof(log_levels) / sizeof(log_levels[0]); l++)
			if (value_is(it, log_levels[l])) {
				s->log_level = l + 1;
				return 0;
			}
		return perr(p, it->line, HL_EINVAL,
			    "bad LogLevel '%s': want debug, info, warn or error",
			    quote(it->value, it->value_len, q));
	case K_CHECK_ZONE:
	case K_ALARM_COMMAND:
	case K_SMTP:
	case K_FROM:
	case K_EMAIL:
	case K_MAILDIR:
	case K_USER:
		return set_text(p, it, k);
	case K_RETAIN:
		if (hl_retain_parse(it->value, it->value_len, &s->retain_ms) < 0)
			return perr(p, it->line, HL_EINVAL,
				    "bad Retain '%s': want how long contents are kept, such as 365d "
				    "(a whole number and s, m, h or d; at most %d days), or forever",
				    quote(it->value, it->value_len, q), HL_RETAIN_MAX_DAYS);
		return 0;
	case K_COUNT:
		break;
	}
	return HL_EINVAL;
}

static int on_pair(struct parser *p, const hl_ini_item *it)
{
	struct section *s = &p->cur;
	const struct sec_def *def = &sec_defs[s->kind];
	char q[QUOTE_MAX * 3 + 4];
	int k;

	for (k = 0; k < K_COUNT; k++)
		if ((def->allowed & BIT(k)) && hl_ini_name_is(it, key_names[k]))
			break;
	if (k == K_COUNT)
		return perr(p, it->line, HL_EINVAL, "unknown key '%s' in [%s]%s",
			    quote(it->name, it->name_len, q), def->header,
			    p->doc == DOC_CARD ? " of a card" : "");
	if (s->key_line[k])
		return perr(p, it->line, HL_EINVAL, "%s given twice in one section (first at line %u)",
			    key_names[k], s->key_line[k]);
	s->key_line[k] = it->line;
	s->last_line = it->line;
	return set_value(p, it, (enum key_id)k);
}

/* True for a Listen address that names no particular interface: it cannot
 * be advertised as an Address. */
static int wildcard_addr(const char *addr)
{
	char host[INET6_ADDRSTRLEN];
	if (hl_addr_split(addr, host, sizeof(host), NULL) < 0)
		return 0;
	return strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0;
}

static int commit_station(struct parser *p, const struct section *s)
{
	hl_station_conf *c = p->conf;
	memcpy(c->name, s->name, sizeof(c->name));
	memcpy(c->listen, s->listen, sizeof(c->listen));
	memcpy(c->address, s->address, sizeof(c->address));
	if (!c->address[0] && c->listen[0] && !wildcard_addr(c->listen))
		memcpy(c->address, c->listen, sizeof(c->address));
	c->keepalive_ms = s->key_line[K_KEEPALIVE] ? s->ms[K_KEEPALIVE]
						   : HL_DEFAULT_KEEPALIVE_MS;
	c->keepalive_timeout_ms = s->key_line[K_KEEPALIVE_TIMEOUT]
					  ? s->ms[K_KEEPALIVE_TIMEOUT]
					  : 3 * c->keepalive_ms;
	c->handshake_timeout_ms = s->key_line[K_HANDSHAKE_TIMEOUT]
					  ? s->ms[K_HANDSHAKE_TIMEOUT]
					  : HL_DEFAULT_HANDSHAKE_TIMEOUT_MS;
	c->rehandshake_ms = s->key_line[K_REHANDSHAKE] ? s->ms[K_REHANDSHAKE]
						       : HL_DEFAULT_REHANDSHAKE_MS;
	c->max_attachment = s->key_line[K_MAX_ATTACHMENT] ? s->bytes[K_MAX_ATTACHMENT]
							  : HL_DEFAULT_MAX_ATTACHMENT_BYTES;
	c->quota_bytes = s->key_line[K_PEER_QUOTA] ? s->bytes[K_PEER_QUOTA]
						   : HL_DEFAULT_PEER_QUOTA_BYTES;
	c->reserve_pct = s->key_line[K_DISK_RESERVE] ? s->reserve_pct : HL_DEFAULT_DISK_RESERVE_PCT;
	c->reserve_bytes = c->reserve_pct ? 0 : s->bytes[K_DISK_RESERVE];
	memcpy(c->alarm_command, s->alarm_command, sizeof(c->alarm_command));
	c->fallback_after_ms = s->key_line[K_FALLBACK_AFTER] ? s->ms[K_FALLBACK_AFTER]
							     : HL_DEFAULT_FALLBACK_AFTER_MS;
	memcpy(c->user, s->user, sizeof(c->user));
	c->log_level = s->log_level;
	c->retain_ms = s->key_line[K_RETAIN] ? s->retain_ms : 0;
	memcpy(c->media_listen, s->media, sizeof(c->media_listen));
	c->call_recording = s->call_recording != 0;
	c->sandbox = s->sandbox_off == 0;
	if (c->keepalive_timeout_ms <= c->keepalive_ms) {
		char a[16], b[16];
		fmt_ms(c->keepalive_timeout_ms, a);
		fmt_ms(c->keepalive_ms, b);
		return perr(p, s->key_line[K_KEEPALIVE_TIMEOUT], HL_EINVAL,
			    "KeepaliveTimeout (%s) must be longer than Keepalive (%s)", a, b);
	}
	return 0;
}

static int commit_peer(struct parser *p, const struct section *s)
{
	hl_station_conf *c = p->conf;
	if (s->key_line[K_CHECK_EVERY] && s->key_line[K_CHECK_AT])
		return perr(p, s->key_line[K_CHECK_AT], HL_EINVAL,
			    "CheckAt and CheckEvery (line %u) both given: choose one schedule",
			    s->key_line[K_CHECK_EVERY]);
	if (s->key_line[K_CHECK_ZONE] && !s->key_line[K_CHECK_AT])
		return perr(p, s->key_line[K_CHECK_ZONE], HL_EINVAL,
			    "CheckZone applies to CheckAt times, and this [Peer] has no CheckAt");
	uint32_t timeout = s->key_line[K_CHECK_TIMEOUT] ? s->ms[K_CHECK_TIMEOUT]
						       : HL_DEFAULT_CHECK_TIMEOUT_MS;
	if (s->key_line[K_CHECK_EVERY] && timeout >= s->ms[K_CHECK_EVERY]) {
		char a[16], b[16];
		fmt_ms(timeout, a);
		fmt_ms(s->ms[K_CHECK_EVERY], b);
		return perr(p, s->key_line[K_CHECK_TIMEOUT] ? s->key_line[K_CHECK_TIMEOUT]
							    : s->key_line[K_CHECK_EVERY],
			    HL_EINVAL, "CheckTimeout (%s) must be shorter than CheckEvery (%s)", a, b);
	}
	for (size_t i = 0; i < c->npeers; i++) {
		const hl_peer_conf *o = &c->peers[i];
		if (strcmp(o->name, s->name) == 0)
			return perr(p, s->key_line[K_NAME], HL_EINVAL,
				    "peer name '%s' is already used by the [Peer] at line %u",
				    s->name, o->first_line);
		if (memcmp(o->noise_key, s->noise_key, HL_KEY_LEN) == 0)
			return perr(p, s->key_line[K_NOISE_KEY], HL_EINVAL,
				    "this NoiseKey is already pinned for peer '%s' (line %u)",
				    o->name, o->first_line);
		if (memcmp(o->signing_key, s->signing_key, HL_KEY_LEN) == 0)
			return perr(p, s->key_line[K_SIGNING_KEY], HL_EINVAL,
				    "this SigningKey is already pinned for peer '%s' (line %u)",
				    o->name, o->first_line);
	}
	c->peers = xrealloc(c->peers, (c->npeers + 1) * sizeof(*c->peers));
	hl_peer_conf *n = &c->peers[c->npeers++];
	memset(n, 0, sizeof(*n));
	memcpy(n->name, s->name, sizeof(n->name));
	memcpy(n->noise_key, s->noise_key, HL_KEY_LEN);
	memcpy(n->signing_key, s->signing_key, HL_KEY_LEN);
	n->has_next = s->key_line[K_NEXT_KEY_HASH] != 0;
	memcpy(n->next_hash, s->next_hash, HL_KEY_LEN);
	memcpy(n->address, s->address, sizeof(n->address));
	hl_fingerprint_next(n->noise_key, n->signing_key, n->has_next ? n->next_hash : NULL,
			    n->fingerprint);
	n->first_line = s->first_line;
	n->last_line = s->last_line;
	n->check_every_ms = s->key_line[K_CHECK_EVERY] ? s->ms[K_CHECK_EVERY] : 0;
	memcpy(n->check_at, s->check_at, sizeof(n->check_at));
	n->n_check_at = s->n_check_at;
	memcpy(n->check_zone, s->check_zone, sizeof(n->check_zone));
	n->check_zone_line = s->key_line[K_CHECK_ZONE];
	n->check_timeout_ms = timeout;
	n->check_mode = s->check_mode;
	memcpy(n->email, s->mail_addr, sizeof(n->email));
	n->retain_set = s->key_line[K_RETAIN] != 0;
	n->retain_ms = s->retain_ms;
	memcpy(n->media_address, s->media, sizeof(n->media_address));
	return 0;
}

static int close_section(struct parser *p)
{
	if (!p->open)
		return 0;
	p->open = 0;
	const struct section *s = &p->cur;
	const struct sec_def *def = &sec_defs[s->kind];
	for (int k = 0; k < K_COUNT; k++)
		if ((def->required & BIT(k)) && !s->key_line[k])
			return perr(p, s->first_line, HL_EINVAL, "[%s]%s has no %s", def->header,
				    p->doc == DOC_CARD ? " of a card" : " section", key_names[k]);
	switch (s->kind) {
	case SEC_STATION:
		return commit_station(p, s);
	case SEC_PEER:
		return commit_peer(p, s);
	case SEC_CARD:
		memcpy(p->card->name, s->name, sizeof(p->card->name));
		memcpy(p->card->noise_key, s->noise_key, HL_KEY_LEN);
		memcpy(p->card->signing_key, s->signing_key, HL_KEY_LEN);
		p->card->has_next = s->key_line[K_NEXT_KEY_HASH] != 0;
		memcpy(p->card->next_hash, s->next_hash, HL_KEY_LEN);
		memcpy(p->card->address, s->address, sizeof(p->card->address));
		return 0;
	case SEC_EMAIL:
		memcpy(p->conf->email.smtp_url, s->smtp_url, sizeof(p->conf->email.smtp_url));
		memcpy(p->conf->email.from, s->mail_addr, sizeof(p->conf->email.from));
		memcpy(p->conf->email.maildir, s->maildir, sizeof(p->conf->email.maildir));
		p->conf->email.line = s->first_line;
		return 0;
	}
	return HL_EINVAL;
}

static int on_section(struct parser *p, const hl_ini_item *it)
{
	char q[QUOTE_MAX * 3 + 4];
	enum sec_kind kind;
	int r = close_section(p);
	if (r < 0)
		return r;
	if (hl_ini_name_is(it, "Station")) {
		if (p->station_line)
			return perr(p, it->line, HL_EINVAL,
				    "a second [Station] section (the first is at line %u)",
				    p->station_line);
		p->station_line = it->line;
		kind = p->doc == DOC_CARD ? SEC_CARD : SEC_STATION;
	} else if (hl_ini_name_is(it, "Peer") && p->doc == DOC_CONF) {
		if (p->conf->npeers >= HL_CONF_MAX_PEERS)
			return perr(p, it->line, HL_ETOOBIG, "more than %d [Peer] sections",
				    HL_CONF_MAX_PEERS);
		kind = SEC_PEER;
	} else if (hl_ini_name_is(it, "Email") && p->doc == DOC_CONF) {
		if (p->email_line)
			return perr(p, it->line, HL_EINVAL,
				    "a second [Email] section (the first is at line %u)",
				    p->email_line);
		p->email_line = it->line;
		kind = SEC_EMAIL;
	} else {
		return perr(p, it->line, HL_EINVAL, "unknown section '[%s]'%s",
			    quote(it->name, it->name_len, q),
			    p->doc == DOC_CARD ? ": a card has only [Station]" : "");
	}
	memset(&p->cur, 0, sizeof(p->cur));
	p->cur.kind = kind;
	p->cur.first_line = p->cur.last_line = it->line;
	p->open = 1;
	return 0;
}

/* Parses a whole document; on success the results are in p->conf/p->card. */
static int parse_doc(struct parser *p, const char *buf, size_t len, size_t max)
{
	int r = 0;
	size_t pos = 0;
	const char *line;
	size_t line_len;
	hl_ini_item it;

	hl_ini_init(&p->ini, 0);
	if (len > max) {
		r = perr(p, 0, HL_ETOOBIG, "larger than %zu bytes", max);
		goto out;
	}
	while (hl_ini_next_line(buf, len, &pos, &line, &line_len)) {
		r = hl_ini_feed(&p->ini, line, line_len, &it);
		if (r < 0) {
			perr(p, p->ini.line, r, "%s", p->ini.err);
			goto out;
		}
		if (it.kind == HL_INI_SECTION)
			r = on_section(p, &it);
		else if (it.kind == HL_INI_PAIR)
			r = on_pair(p, &it);
		if (r < 0)
			goto out;
	}
	if ((r = close_section(p)) < 0)
		goto out;
	if (!p->station_line)
		r = perr(p, 0, HL_EINVAL, "%s",
			 p->doc == DOC_CARD ? "not a card: no [Station] section"
					    : "no [Station] section");
out:
	hl_ini_finish(&p->ini);
	return r;
}

static void parser_init(struct parser *p, enum doc_kind doc, const char *filename, char *err)
{
	memset(p, 0, sizeof(*p));
	p->doc = doc;
	p->err = err;
	err[0] = '\0';
	if (!filename)
		filename = doc == DOC_CARD ? "card" : HL_CONF_FILE;
	hl_sanitize(filename, strlen(filename), p->file, sizeof(p->file), 0);
}

int hl_conf_parse(const char *buf, size_t len, const char *filename, hl_station_conf **out,
		  char err[static HL_CONF_ERR_LEN])
{
	struct parser p;
	parser_init(&p, DOC_CONF, filename, err);
	p.conf = xcalloc(1, sizeof(*p.conf));
	int r = parse_doc(&p, buf, len, HL_CONF_MAX_BYTES);
	if (r < 0) {
		hl_conf_free(p.conf);
		*out = NULL;
		return r;
	}
	*out = p.conf;
	return 0;
}

void hl_conf_free(hl_station_conf *conf)
{
	if (!conf)
		return;
	free(conf->peers);
	free(conf);
}

const hl_peer_conf *hl_conf_peer_by_name(const hl_station_conf *conf, const char *name)
{
	for (size_t i = 0; i < conf->npeers; i++)
		if (strcmp(conf->peers[i].name, name) == 0)
			return &conf->peers[i];
	return NULL;
}

const hl_peer_conf *hl_conf_peer_by_noise_key(const hl_station_conf *conf,
					      const uint8_t key[static HL_KEY_LEN])
{
	for (size_t i = 0; i < conf->npeers; i++)
		if (memcmp(conf->peers[i].noise_key, key, HL_KEY_LEN) == 0)
			return &conf->peers[i];
	return NULL;
}

static const hl_peer_conf *peer_by_signing_key(const hl_station_conf *conf,
					       const uint8_t key[static HL_KEY_LEN])
{
	for (size_t i = 0; i < conf->npeers; i++)
		if (memcmp(conf->peers[i].signing_key, key, HL_KEY_LEN) == 0)
			return &conf->peers[i];
	return NULL;
}

int hl_card_parse(const char *buf, size_t len, const char *filename, hl_card *out,
		  char err[static HL_CONF_ERR_LEN])
{
	struct parser p;
	parser_init(&p, DOC_CARD, filename, err);
	memset(out, 0, sizeof(*out));
	p.card = out;
	int r = parse_doc(&p, buf, len, HL_CARD_MAX_BYTES);
	if (r < 0)
		memset(out, 0, sizeof(*out));
	return r;
}

/* ---- the station.conf hotline init writes ---- */

char *hl_conf_template(const char *name, const char *listen, const char *address)
{
	return xasprintf(
		"# station.conf: the configuration of hotline station %s.\n"
		"# Reference: man 5 hotline.conf (in the source: docs/configuration.md).\n"
		"# The daemon re-reads this file by itself when it changes, and logs it.\n"
		"# Lines starting with '#' or ';' are comments; no comment may follow a\n"
		"# value.  Keys and section names are case-insensitive.  Durations: 1500ms,\n"
		"# 25s, 5m, 1h; sizes: 64K, 16M, 4G (bare numbers: seconds, bytes).\n"
		"# Only this station's user (or root) may be able to change this file or\n"
		"# its directory, or read identity.key: hotline refuses to run otherwise.\n"
		"#\n"
		"# Each setting is shown with its default (or an example where there is\n"
		"# none); remove the '#' to change it.\n"
		"\n"
		"[Station]\n"
		"Name = %s\n"
		"Listen = %s\n"
		"# Where peers dial this station, printed on its card (default: Listen,\n"
		"# unless that is 0.0.0.0 or [::]).\n"
		"%sAddress = %s\n"
		"# The link: a PING when quiet, the end of a silent session (default\n"
		"# 3 x Keepalive), the handshake's time, a fresh handshake (at most 1h).\n"
		"#Keepalive = 25s\n"
		"#KeepaliveTimeout = 75s\n"
		"#HandshakeTimeout = 10s\n"
		"#Rehandshake = 1h\n"
		"# What each peer may store here: the largest attachment, the total, and\n"
		"# the free space always kept.\n"
		"#MaxAttachment = 4G\n"
		"#PeerQuota = 64G\n"
		"#DiskReserve = 5%%\n"
		"# A program run on each alarm (no default; HOTLINE_* variables say what).\n"
		"#AlarmCommand = /usr/local/bin/hotline-alarm\n"
		"# How long a link may be down before its peer is sent mail ([Email]).\n"
		"#FallbackAfter = 60s\n"
		"# How long message contents are kept once done (365d, ...; default forever).\n"
		"#Retain = forever\n"
		"# Calls: the UDP media address (a numeric host; default Listen's host,\n"
		"# any port) and whether to keep the audio sent, for the record.\n"
		"#MediaListen = 0.0.0.0:7101\n"
		"#CallRecording = off\n"
		"# The user a daemon started as root becomes (no default).\n"
		"#User = hotline\n"
		"# The daemon's log: debug, info, warn or error.\n"
		"#LogLevel = info\n"
		"# The sandbox of the processes that read what peers send (off: only to\n"
		"# diagnose a process it stopped; docs/sandbox.md).\n"
		"#Sandbox = on\n"
		"\n"
		"# 'hotline peer add' appends one [Peer] section per pinned peer:\n"
		"#   [Peer]\n"
		"#   Name = pyongyang\n"
		"#   NoiseKey = (from its card)\n"
		"#   SigningKey = (from its card)\n"
		"#   NextKeyHash = (from its card: the hash of its next keys)\n"
		"#   Address = 198.51.100.7:7100   (without one, this station only answers)\n"
		"# and these may be added to it (line checks; its email address):\n"
		"#   CheckEvery = 15m              (or CheckAt, not both)\n"
		"#   CheckAt = 09:00, 17:00\n"
		"#   CheckZone = Asia/Seoul        (CheckAt's time zone; default UTC)\n"
		"#   CheckTimeout = 30s\n"
		"#   CheckMode = machine           (or operator: 'hotline answer')\n"
		"#   Email = ops@pyongyang.example\n"
		"#   Retain = 30d                  (this peer's, replacing the station's)\n"
		"#   MediaAddress = 198.51.100.7:7101  (where its call media go, if not where it says)\n"
		"#\n"
		"# The email path, for peers with an Email (once per file):\n"
		"#   [Email]\n"
		"#   SMTP = smtp://127.0.0.1:25\n"
		"#   From = ops@%s.example\n"
		"#   Maildir = /var/lib/hotline/%s/Maildir\n",
		name, name, listen, address ? "" : "#", address ? address : "203.0.113.5:7100",
		name, name);
}

/* ---- edits of station.conf ---- */

struct conf_edit {
	int lock_fd;
	char *path;
	char *text;
	size_t len;
	mode_t mode;
	hl_station_conf *conf;
};

static void edit_end(struct conf_edit *e)
{
	hl_conf_free(e->conf);
	free(e->text);
	free(e->path);
	if (e->lock_fd >= 0)
		close(e->lock_fd); /* releases the lock */
	e->lock_fd = -1;
}

/* Takes the conf lock, then reads and parses station.conf. */
static int edit_begin(const char *dir, struct conf_edit *e, char *err)
{
	int r;
	struct stat st;
	char *lock = hl_path_join(dir, HL_CONF_LOCK_FILE);
	memset(e, 0, sizeof(*e));
	e->path = hl_path_join(dir, HL_CONF_FILE);
	e->lock_fd = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (e->lock_fd < 0) {
		r = -errno;
		snprintf(err, HL_CONF_ERR_LEN, "%s: %s", lock, strerror(-r));
		goto out;
	}
	while ((r = flock(e->lock_fd, LOCK_EX)) < 0 && errno == EINTR)
		;
	if (r < 0) {
		r = -errno;
		snprintf(err, HL_CONF_ERR_LEN, "%s: %s", lock, strerror(-r));
		goto out;
	}
	if ((r = hl_station_validate_perms(dir, HL_UID_NONE, err)) < 0)
		goto out;
	e->mode = stat(e->path, &st) == 0 ? (st.st_mode & 07777) : 0600;
	r = hl_read_file(e->path, HL_CONF_MAX_BYTES, &e->text, &e->len);
	if (r < 0) {
		snprintf(err, HL_CONF_ERR_LEN, "%s: %s", e->path, hl_strerror(r));
		goto out;
	}
	r = hl_conf_parse(e->text, e->len, e->path, &e->conf, err);
out:
	free(lock);
	return r;
}

/* Checks the new text once more (an edit must never leave a file that does
 * not parse), then replaces station.conf with it. */
static int edit_commit(struct conf_edit *e, const char *text, size_t len, char *err)
{
	hl_station_conf *check = NULL;
	int r = hl_conf_parse(text, len, e->path, &check, err);
	hl_conf_free(check);
	if (r < 0)
		return r;
	r = hl_write_file_atomic(e->path, text, len, e->mode);
	if (r < 0)
		snprintf(err, HL_CONF_ERR_LEN, "%s: %s", e->path, hl_strerror(r));
	return r;
}

/* Checks a card before it is pinned, against the pinned peers and against
 * this station's own keys. */
static int check_new_peer(const char *dir, const struct conf_edit *e, const hl_card *card,
			  const uint8_t *own_noise, const uint8_t *own_sign, char *err)
{
	const hl_peer_conf *o;
	hl_signer *id = NULL;
	int r = 0;

	if (!hl_name_valid(card->name)) {
		char q[QUOTE_MAX * 3 + 4];
		snprintf(err, HL_CONF_ERR_LEN, "bad peer name '%s'",
			 quote(card->name, strnlen(card->name, sizeof(card->name)), q));
		return HL_EINVAL;
	}
	if (card->address[0] && hl_addr_split(card->address, NULL, 0, NULL) < 0) {
		char q[QUOTE_MAX * 3 + 4];
		snprintf(err, HL_CONF_ERR_LEN, "bad address '%s'",
			 quote(card->address, strnlen(card->address, sizeof(card->address)), q));
		return HL_EINVAL;
	}
	if (!hl_noise_key_usable(card->noise_key) || !hl_signing_key_usable(card->signing_key)) {
		snprintf(err, HL_CONF_ERR_LEN, "the card's keys are not usable public keys");
		return HL_EINVAL;
	}
	if ((o = hl_conf_peer_by_name(e->conf, card->name))) {
		snprintf(err, HL_CONF_ERR_LEN,
			 "a peer named '%s' is already pinned (%s:%u); remove it first",
			 card->name, e->path, o->first_line);
		return HL_EEXIST;
	}
	if ((o = hl_conf_peer_by_noise_key(e->conf, card->noise_key))) {
		snprintf(err, HL_CONF_ERR_LEN,
			 "this card's NoiseKey is already pinned as peer '%s' (%s:%u)", o->name,
			 e->path, o->first_line);
		return HL_EEXIST;
	}
	if ((o = peer_by_signing_key(e->conf, card->signing_key))) {
		snprintf(err, HL_CONF_ERR_LEN,
			 "this card's SigningKey is already pinned as peer '%s' (%s:%u)", o->name,
			 e->path, o->first_line);
		return HL_EEXIST;
	}
	char *idpath = hl_path_join(dir, HL_IDENTITY_FILE);
	if (!own_noise && (r = hl_signer_load(idpath, &id)) == 0) {
		own_noise = hl_signer_noise_pub(id);
		own_sign = hl_signer_sign_pk(id);
	}
	if (r < 0) {
		snprintf(err, HL_CONF_ERR_LEN, "%s: %s", idpath, hl_strerror(r));
	} else if (memcmp(own_noise, card->noise_key, HL_KEY_LEN) == 0 ||
		   memcmp(own_sign, card->signing_key, HL_KEY_LEN) == 0) {
		snprintf(err, HL_CONF_ERR_LEN,
			 "this card carries this station's own key: a station cannot pin itself");
		r = HL_EEXIST;
	}
	hl_signer_free(id);
	free(idpath);
	return r;
}

int hl_conf_add_peer_own(const char *dir, const hl_card *card, const uint8_t *own_noise,
			 const uint8_t *own_sign, char err[static HL_CONF_ERR_LEN])
{
	struct conf_edit e;
	char *text = NULL;
	int r = edit_begin(dir, &e, err);
	if (r < 0)
		goto out;
	if ((r = check_new_peer(dir, &e, card, own_noise, own_sign, err)) < 0)
		goto out;
	char nk[HL_KEY_B64_LEN], sk[HL_KEY_B64_LEN], nh[HL_KEY_B64_LEN] = "";
	hl_b64_key(card->noise_key, nk);
	hl_b64_key(card->signing_key, sk);
	if (card->has_next)
		hl_b64_key(card->next_hash, nh);
	/* Appended after a blank line; the file's last line gets its '\n'. */
	const char *nl = e.len && e.text[e.len - 1] != '\n' ? "\n" : "";
	text = xasprintf("%.*s%s%s[Peer]\nName = %s\nNoiseKey = %s\nSigningKey = %s\n%s%s%s%s%s%s",
			 (int)e.len, e.text, nl, e.len ? "\n" : "", card->name, nk, sk,
			 card->has_next ? "NextKeyHash = " : "", nh, card->has_next ? "\n" : "",
			 card->address[0] ? "Address = " : "", card->address,
			 card->address[0] ? "\n" : "");
	r = edit_commit(&e, text, strlen(text), err);
out:
	free(text);
	edit_end(&e);
	return r;
}

/* Byte offset where line LINE (1-based) starts; LEN past the last line. */
static size_t line_offset(const char *text, size_t len, unsigned line)
{
	size_t pos = 0;
	for (unsigned l = 1; l < line && pos < len; l++) {
		const char *nl = memchr(text + pos, '\n', len - pos);
		pos = nl ? (size_t)(nl - text) + 1 : len;
	}
	return pos;
}

static int blank_between(const char *s, const char *e)
{
	for (; s < e; s++)
		if (*s != ' ' && *s != '\t' && *s != '\r' && *s != '\n')
			return 0;
	return 1;
}

int hl_conf_remove_peer(const char *dir, const char *name, char err[static HL_CONF_ERR_LEN])
{
	struct conf_edit e;
	char *text = NULL;
	int r = edit_begin(dir, &e, err);
	if (r < 0)
		goto out;
	const hl_peer_conf *peer = hl_conf_peer_by_name(e.conf, name);
	if (!peer) {
		char q[QUOTE_MAX * 3 + 4];
		snprintf(err, HL_CONF_ERR_LEN, "no peer named '%s' in %s",
			 quote(name, strlen(name), q), e.path);
		r = HL_ENOTFOUND;
		goto out;
	}
	/* The section runs from its header to its last key; comments after it
	 * stay (they may introduce the next section).  One blank line before
	 * the header goes too, the one hl_conf_add_peer put there. */
	size_t from = line_offset(e.text, e.len, peer->first_line);
	size_t to = line_offset(e.text, e.len, peer->last_line + 1);
	if (peer->first_line > 1) {
		size_t prev = line_offset(e.text, e.len, peer->first_line - 1);
		size_t next_end = line_offset(e.text, e.len, peer->last_line + 2);
		/* ...unless the next line is a header that needs the separation. */
		if (blank_between(e.text + prev, e.text + from) &&
		    (to == e.len || blank_between(e.text + to, e.text + next_end)))
			from = prev;
	}
	size_t len = e.len - (to - from);
	text = xmalloc(len + 1);
	memcpy(text, e.text, from);
	memcpy(text + from, e.text + to, e.len - to);
	text[len] = '\0';
	r = edit_commit(&e, text, len, err);
out:
	free(text);
	edit_end(&e);
	return r;
}
