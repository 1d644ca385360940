/* conf/config.h — station.conf and station cards: the data model and its
 * parsing.  The syntax is INI in the style of WireGuard's configuration,
 * read by hotline's own incremental parser (util/ini.h).
 *
 *   [Station]                      [Peer]   (one per pinned peer)
 *   Name = washington              Name = pyongyang
 *   Listen = 127.0.0.1:7100        NoiseKey = <base64 of 32 bytes>
 *   Address = 127.0.0.1:7100       SigningKey = <base64 of 32 bytes>
 *   Keepalive = 25s                Address = 127.0.0.1:7200   (optional)
 *   KeepaliveTimeout = 75s
 *   HandshakeTimeout = 10s
 *   Rehandshake = 1h
 *   MaxAttachment = 4G             (larger attachments are refused; at most 1T)
 *   PeerQuota = 64G                (each peer's storage, every row and file;
 *                                   at most 1024T)
 *   DiskReserve = 5%               (free space never given to peers: a size,
 *                                   at most 1024T, or N% of the file system,
 *                                   1..50; the default 5% is at least 16M and
 *                                   at most 16G)
 *   AlarmCommand = /path/to/prog   (run on an alarm; see daemon/checks.c)
 *   User = hotline                 (a daemon started as root becomes this user)
 *   LogLevel = info                (debug, info, warn or error)
 *
 * Line checks, per [Peer] (all optional): CheckEvery = DURATION (at most
 * 24h), or CheckAt = HH:MM[,HH:MM...] (at most 48 times a day) with
 * CheckZone = an IANA zone such as Asia/Seoul (default UTC; the zone must
 * exist under the zoneinfo directory, $TZDIR or /usr/share/zoneinfo);
 * CheckTimeout = DURATION (default 30s, at most 1h, shorter than
 * CheckEvery); CheckMode = machine | operator (default machine).
 *
 * The email path (docs/bundle.md, "By email"): per [Peer], Email = ADDRESS
 * (a plain local@domain); once per file, an [Email] section with all of
 * SMTP = smtp://HOST:PORT (or smtps://), From = ADDRESS (this station's)
 * and Maildir = /absolute/path (where this station's mail is delivered).
 * In [Station], FallbackAfter = DURATION (default 60s, at most 24h): how
 * long a peer with an Email may have no link before the daemon mails it
 * what it has not acknowledged (daemon/failover.c).
 *
 * Retention (msg/retain.h): Retain = AGE in [Station] (every peer) and in
 * [Peer] (that peer, over the station's): the contents of messages (body,
 * subject, attachment files) older than AGE at this station are purged,
 * their signed items kept.  AGE is a whole number and s, m, h or d (at
 * most HL_RETAIN_MAX_DAYS days), or "forever" (the default: nothing is
 * purged).
 * Calls (docs/voice.md): in [Station], MediaListen = HOST:PORT, the UDP
 * address for call media (default: Listen's host, any free port), and CallRecording = on | off (default off: keep
 * the encoded audio of every call, so the record can disclose it); per
 * [Peer], MediaAddress = HOST:PORT, where to send that peer's media
 * instead of the address it announces (a relay, a port forward).
 *
 * A card is a [Station] section with Name, NoiseKey, SigningKey and
 * optionally NextKeyHash (the hash of the station's next keys, which the
 * fingerprint covers: docs/rotation.md) and Address; a [Peer] carries the
 * card's NextKeyHash too.  Unknown keys, repeated keys, bad values and missing
 * required keys are errors naming the file, line and value.  Durations are
 * a number with an optional unit ms, s, m or h (bare numbers are seconds);
 * each must be more than 0; Keepalive, HandshakeTimeout and Rehandshake at
 * most 1h, KeepaliveTimeout at most 24h and longer than Keepalive.  Address
 * defaults to Listen unless Listen is 0.0.0.0 or [::] (then a card carries
 * no Address).  Keys and section names are case-insensitive; comments are
 * whole lines starting with '#' or ';', so values may contain both.
 *
 * docs/configuration.md is the reference of every section and key (a unit
 * test holds it to the key table in config.c).
 *
 * Files this module owns in the station directory: */
#ifndef HL_CONF_CONFIG_H
#define HL_CONF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "crypto/keys.h"

#define HL_CONF_FILE "station.conf"
#define HL_IDENTITY_FILE "identity.key"
#define HL_CONF_LOCK_FILE "station.lock"    /* flock()ed while editing station.conf */
#define HL_DAEMON_LOCK_FILE "daemon.lock"   /* flock()ed by the running daemon */
#define HL_CONTROL_SOCKET "control.sock"

#define HL_NAME_MAX 32      /* [a-z0-9][a-z0-9._-]{0,31} */
#define HL_ADDR_MAX 270     /* HOST:PORT, host up to 253 chars or [v6] */
#define HL_CONF_MAX_BYTES (1u << 20)
#define HL_CONF_MAX_PEERS 1024
#define HL_CARD_MAX_BYTES 4096

#define HL_DEFAULT_PORT 7100
#define HL_DEFAULT_KEEPALIVE_MS 25000
#define HL_DEFAULT_HANDSHAKE_TIMEOUT_MS 10000
#define HL_DEFAULT_REHANDSHAKE_MS 3600000   /* at most this: forward secrecy */
#define HL_DEFAULT_MAX_ATTACHMENT_BYTES (UINT64_C(4) << 30)
#define HL_DEFAULT_PEER_QUOTA_BYTES (UINT64_C(64) << 30)
#define HL_DEFAULT_DISK_RESERVE_PCT 5
#define HL_DISK_RESERVE_PCT_MAX 50
/* A reserve given as a percentage is kept within these. */
#define HL_DISK_RESERVE_PCT_MIN_BYTES (UINT64_C(16) << 20)
#define HL_DISK_RESERVE_PCT_MAX_BYTES (UINT64_C(16) << 30)
/* The largest values the sizes take: far beyond any disk, and small enough
 * that no sum of them (64 attachments, a quota and a reserve) wraps. */
#define HL_MAX_ATTACHMENT_CAP (UINT64_C(1) << 40)
#define HL_PEER_QUOTA_CAP (UINT64_C(1) << 50)
#define HL_DISK_RESERVE_CAP (UINT64_C(1) << 50)
#define HL_DEFAULT_CHECK_TIMEOUT_MS 30000
#define HL_DEFAULT_FALLBACK_AFTER_MS 60000
#define HL_CHECK_EVERY_MAX_MS (24u * 3600 * 1000)
#define HL_CHECK_AT_MAX 48
#define HL_ZONE_MAX 64
#define HL_ALARM_COMMAND_MAX 1024
#define HL_EMAIL_ADDR_MAX 254   /* RFC 5321's limit on a forward path */
#define HL_SMTP_URL_MAX 512
#define HL_MAILDIR_MAX 1024
#define HL_USER_MAX 32      /* a user name, UID or UID:GID */
#define HL_RETAIN_MAX_DAYS 36500

typedef struct hl_card {
	char name[HL_NAME_MAX + 1];
	uint8_t noise_key[HL_KEY_LEN];
	uint8_t signing_key[HL_KEY_LEN];
	bool has_next;                       /* NextKeyHash given */
	uint8_t next_hash[HL_KEY_LEN];       /* the commitment to the next keys */
	char address[HL_ADDR_MAX + 1];       /* "" when absent */
} hl_card;

typedef struct hl_peer_conf {
	char name[HL_NAME_MAX + 1];
	uint8_t noise_key[HL_KEY_LEN];
	uint8_t signing_key[HL_KEY_LEN];
	bool has_next;                       /* NextKeyHash: the card's commitment */
	uint8_t next_hash[HL_KEY_LEN];       /* to the peer's next keys (docs/rotation.md) */
	char address[HL_ADDR_MAX + 1];       /* "" when we do not dial it */
	uint8_t fingerprint[HL_FP_LEN];      /* derived at parse time (covers NextKeyHash) */
	unsigned first_line, last_line;      /* the section's lines in the file:
					      * its header and its last key */
	/* line checks: CheckEvery or CheckAt (neither: no scheduled checks) */
	uint32_t check_every_ms;             /* 0 when not given */
	uint16_t check_at[HL_CHECK_AT_MAX];  /* minutes after midnight, ascending */
	unsigned n_check_at;
	char check_zone[HL_ZONE_MAX + 1];    /* "" for UTC */
	unsigned check_zone_line;            /* where CheckZone was given; 0 none */
	uint32_t check_timeout_ms;
	unsigned check_mode;                 /* enum hl_check_mode (msg/item.h) */
	char email[HL_EMAIL_ADDR_MAX + 1];   /* Email: the peer's address; "" none */
	int retain_set;                      /* Retain given in this [Peer] */
	uint64_t retain_ms;                  /* Retain: 0 forever (see hl_conf_retain_ms) */
	char media_address[HL_ADDR_MAX + 1]; /* MediaAddress: "" to use what it announces */
} hl_peer_conf;

/* The [Email] section: the email path (docs/bundle.md, "By email"). */
typedef struct hl_email_conf {
	char smtp_url[HL_SMTP_URL_MAX + 1];  /* SMTP: smtp:// or smtps:// URL */
	char from[HL_EMAIL_ADDR_MAX + 1];    /* From: this station's address */
	char maildir[HL_MAILDIR_MAX + 1];    /* Maildir: incoming mail, absolute path */
	unsigned line;                       /* the section's header; 0: no [Email] */
} hl_email_conf;

typedef struct hl_station_conf {
	char name[HL_NAME_MAX + 1];
	char listen[HL_ADDR_MAX + 1];        /* "" when the station does not listen */
	char address[HL_ADDR_MAX + 1];       /* advertised in the card; default Listen,
					      * "" when Listen is 0.0.0.0 or [::] */
	uint32_t keepalive_ms;
	uint32_t keepalive_timeout_ms;       /* default 3 x keepalive; > keepalive */
	uint32_t handshake_timeout_ms;
	uint32_t rehandshake_ms;             /* capped at one hour */
	uint64_t max_attachment;             /* MaxAttachment: larger ones are refused */
	uint64_t quota_bytes;                /* PeerQuota: each peer's incoming storage; 0 none */
	uint64_t reserve_bytes;              /* DiskReserve: free space never given to peers */
	unsigned reserve_pct;                /* DiskReserve as N% of the file system (then
					      * reserve_bytes is 0); see hl_disk_reserve() */
	char alarm_command[HL_ALARM_COMMAND_MAX + 1]; /* absolute path; "" none */
	uint32_t fallback_after_ms;          /* FallbackAfter: the email fallback */
	char user[HL_USER_MAX + 1];          /* User: "" none (daemon/privs.c) */
	unsigned log_level;                  /* LogLevel: enum hl_log_level + 1; 0 not given */
	uint64_t retain_ms;                  /* Retain: 0 forever (the default) */
	char media_listen[HL_ADDR_MAX + 1];  /* MediaListen: "" for the default */
	bool call_recording;                 /* CallRecording */
	bool sandbox;                        /* Sandbox: on (the default) or off */
	hl_email_conf email;
	hl_peer_conf *peers;
	size_t npeers;
} hl_station_conf;

/* Error detail: "FILE:LINE: message quoting 'the bad value'". */
#define HL_CONF_ERR_LEN 512

int hl_conf_parse(const char *buf, size_t len, const char *filename,
		  hl_station_conf **out, char err[static HL_CONF_ERR_LEN]);
/* Reads DIR/station.conf, after hl_station_validate_perms() (conf/perms.h) has found
 * that nobody else can change the station: -EPERM and ERR names the path
 * and its fix otherwise. */
int hl_conf_load(const char *dir, hl_station_conf **out, char err[static HL_CONF_ERR_LEN]);
/* The same, also accepting a station that belongs to ALSO (a daemon started
 * as root on the station of the User it becomes; daemon/privs.c). */
int hl_conf_load_as(const char *dir, uid_t also, hl_station_conf **out,
		    char err[static HL_CONF_ERR_LEN]);
/* The reading and parsing half of hl_conf_load, from FD (DIR's
 * station.conf, opened by whoever checked who may change the station: the
 * sandboxed daemon cannot open it, daemon/spawn.h).  Closes FD; FD -1
 * means the open failed, errno saying why. */
int hl_conf_load_fd(const char *dir, int fd, hl_station_conf **out,
		    char err[static HL_CONF_ERR_LEN]);
void hl_conf_free(hl_station_conf *conf);
/* The I-th key station.conf accepts, with its section ("Station", "Peer",
 * "Email"), from the parser's own table: 0, or HL_ENOTFOUND past the last.
 * For the test that holds the documentation to the parser. */
int hl_conf_key_at(size_t i, const char **section, const char **key);

const hl_peer_conf *hl_conf_peer_by_name(const hl_station_conf *conf, const char *name);
const hl_peer_conf *hl_conf_peer_by_noise_key(const hl_station_conf *conf,
					      const uint8_t key[static HL_KEY_LEN]);

int hl_card_parse(const char *buf, size_t len, const char *filename, hl_card *out,
		  char err[static HL_CONF_ERR_LEN]);
/* The card's text, xmalloc'd. */
char *hl_card_format(const hl_card *card);
/* The card's fingerprint (crypto/keys.h: over its NextKeyHash too, when
 * it has one). */
void hl_card_fingerprint(const hl_card *card, uint8_t fp[static HL_FP_LEN]);

/* Parses HOST:PORT ("[v6]:port" for IPv6); HL_EINVAL names nothing, the
 * caller quotes the value. */
int hl_addr_split(const char *addr, char *host, size_t hostcap, uint16_t *port);
/* HOST is a hostname ([A-Za-z0-9.-], at most 253), a dotted IPv4 address or a
 * bracketed IPv6 address (brackets not copied to HOST); the port has no
 * leading zero.  HOST may be NULL (HOSTCAP 0) and PORT NULL to only check. */
/* A predicate: 1 when NAME matches [a-z0-9][a-z0-9._-]{0,31}, else 0. */
int hl_name_valid(const char *name);
/* "25s", "1500ms", "5m", "1h", "30" (seconds).  HL_EINVAL for bad syntax,
 * HL_ETOOBIG above UINT32_MAX milliseconds.  0 is accepted here; the
 * configuration refuses it. */
int hl_duration_parse(const char *s, size_t len, uint32_t *ms);
/* CheckAt's value: "HH:MM[,HH:MM...]" (spaces allowed around commas),
 * sorted and without repeats into MINUTES; HL_EINVAL for bad syntax, a
 * repeat or more than HL_CHECK_AT_MAX times. */
int hl_check_at_parse(const char *s, size_t len, uint16_t minutes[static HL_CHECK_AT_MAX],
		      unsigned *n);
/* 1 when ADDR is a plain address local@domain (no display name, brackets,
 * quotes, spaces or controls; at most HL_EMAIL_ADDR_MAX), else 0. */
int hl_email_addr_valid(const char *addr);
/* 1 when SPEC is a User value: a name ([a-z_][a-z0-9_.-]*, an optional
 * final '$'), a UID, or UID:GID; at most HL_USER_MAX.  No I/O. */
int hl_user_spec_valid(const char *spec);
/* 1 when URL is smtp://... or smtps://... without spaces or controls. */
int hl_smtp_url_valid(const char *url);
/* 1 when NAME looks like an IANA zone name (Area/City, letters, digits,
 * '_', '+', '-', '/'; no "." or ".." part), else 0.  No I/O. */
int hl_zone_name_valid(const char *name);
/* 1 when ZONE is a valid name and its zoneinfo file exists ($TZDIR, else
 * /usr/share/zoneinfo). */
int hl_zone_exists(const char *zone);
/* The reserve in bytes for a file system of FS_BYTES: RESERVE_BYTES, or
 * with RESERVE_PCT that share of it within the bounds above. */
uint64_t hl_disk_reserve(uint64_t reserve_bytes, unsigned reserve_pct, uint64_t fs_bytes);

/* Retain's value: "forever" (0) or a whole number > 0 and s, m, h or d, at
 * most HL_RETAIN_MAX_DAYS days, in milliseconds. */
int hl_retain_parse(const char *s, size_t len, uint64_t *ms);
/* How long PEER's message contents are kept (its Retain, else the
 * station's; PEER may be NULL: a removed peer): 0 for ever. */
uint64_t hl_conf_retain_ms(const hl_station_conf *conf, const hl_peer_conf *peer);
/* A size: a whole number with an optional K, M, G or T (powers of 1024);
 * bare numbers are bytes; at most 2^62. */
int hl_size_parse(const char *s, size_t len, uint64_t *bytes);

/* The station.conf `hotline init` writes, xmalloc'd: [Station] with NAME,
 * LISTEN and ADDRESS (NULL: none), and every other setting named in a
 * comment, with its default ("#Key = default", no blank after '#': remove
 * the '#' and nothing changes) or an example where there is no default. */
char *hl_conf_template(const char *name, const char *listen, const char *address);

/* Edits of DIR/station.conf: under the conf lock, re-read, validate, change
 * the text (comments and other sections are kept as they are), write
 * atomically.  Nothing changes on error. */
/* hl_conf_add_peer_own is given this station's own public keys (OWN_NOISE,
 * OWN_SIGN: from the key holder, so that identity.key is not read while a
 * daemon runs); NULL, as hl_conf_add_peer: read from identity.key. */
int hl_conf_add_peer_own(const char *dir, const hl_card *card, const uint8_t *own_noise,
			 const uint8_t *own_sign, char err[static HL_CONF_ERR_LEN]);
static inline int hl_conf_add_peer(const char *dir, const hl_card *card,
				   char err[static HL_CONF_ERR_LEN])
{
	return hl_conf_add_peer_own(dir, card, NULL, NULL, err);
}
int hl_conf_remove_peer(const char *dir, const char *name, char err[static HL_CONF_ERR_LEN]);

#endif
/* Mail that the pickup cannot read is set aside in Maildir + this suffix
 * (mail/pickup.c); retention (msg/retain.c) purges it with the rest. */
#define HL_MAIL_QUARANTINE_SUFFIX ".quarantine"

