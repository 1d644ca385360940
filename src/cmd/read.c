/* cmd/read.c — `hotline read ID [--json] [--save DIR]`: one message with
 * its metadata, its verification, and its body; --save writes its
 * attachments into DIR under their base names, never following a link and
 * never overwriting a file.  Reading a received message marks it read.
 *
 * The sender chooses the subject, the body and the attachment names, so
 * nothing of them may pass for read's own words: the header lines
 * ("Verified:" and the others) start at the left margin, peer text in them
 * is one sanitised line (util/text.h), and every line of the body is
 * printed after "| ", so no body line can look like a header line.  A
 * saved name never starts with '.' or '-' (it would hide the file, or read
 * as an option to the next command): such a name gets a "_" in front.
 *
 * Verification is done again here, from the stored signed item: the
 * signature against the peer's pinned SigningKey, the subject and body
 * against their salted hashes, and (with --save) every attachment against
 * its hash while it is copied.
 *
 * --save is all or nothing, and decided before anything is printed: every
 * name is checked first (usable, not repeated, not already in DIR, its
 * stored file here), then the files are written, and only then is the
 * message shown; should a copy fail half-way (its hash, the disk), the
 * files this run wrote are removed again.  A failure prints one line naming
 * the file, leaves DIR as it was and the message unread. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "msg/item.h"
#include "msg/message.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"
#include "voice/voicemsg.h"

struct verdict {
	bool signature;      /* the item verifies under the expected keys */
	bool pinned;         /* ... and the author key is the pinned peer's */
	bool content;        /* subject and body match their hashes */
	const char *problem; /* the first failure, for people */
};

static void verify(struct hl_station *mc, const struct hl_msg_row *row, struct verdict *v)
{
	uint8_t *buf = xmalloc(HL_ITEM_MAX);
	struct hl_item *it = xcalloc(1, sizeof(*it));
	struct hl_item_row irow;
	const hl_peer_conf *peer = hl_conf_peer_by_name(mc->conf, row->peer_name);
	memset(v, 0, sizeof(*v));

	if (hl_store_get_item(mc->store, row->peer_id, row->dir, row->seq, &irow, buf,
			      HL_ITEM_MAX) < 0) {
		v->problem = "its signed item is missing from the store";
		goto out;
	}
	if (hl_item_open(buf, irow.encoded_len, NULL, NULL, it) < 0 ||
	    it->kind != HL_ITEM_MESSAGE ||
	    memcmp(it->u.msg.id, row->id, HL_MSG_ID_LEN) != 0) {
		v->problem = "the signature does not verify";
		goto out;
	}
	v->signature = true;
	const uint8_t *peer_key = row->dir == HL_DIR_IN ? it->author : it->counterpart;
	v->pinned = peer && sodium_memcmp(peer_key, peer->signing_key, 32) == 0;
	if (!v->pinned)
		v->problem = peer ? "the peer's pinned key is not the one in the message"
				  : "the peer is no longer pinned";
	if (row->purged_at) {
		/* Nothing left to compare: the signed item is what remains. */
		v->content = true;
		goto out;
	}
	uint8_t h[HL_HASH_LEN];
	const char *subject = row->subject ? row->subject : "";
	hl_salted_hash(row->salt, HL_LABEL_SUBJECT, (const uint8_t *)subject, strlen(subject), h);
	bool ok = sodium_memcmp(h, it->u.msg.subject_hash, HL_HASH_LEN) == 0;
	if (row->body) {
		hl_salted_hash(row->salt, HL_LABEL_BODY, row->body, row->body_size, h);
		ok = ok && row->body_size == it->u.msg.body_size &&
		     sodium_memcmp(h, it->u.msg.body_hash, HL_HASH_LEN) == 0;
	}
	v->content = ok;
	if (!ok && !v->problem)
		v->problem = "the subject or body does not match its signed hash";
out:
	free(it);
	free(buf);
}

/* The name attachment NAME is saved under (CAP bytes): sanitised, and with
 * "_" in front of a leading '.' or '-'. */
static void safe_name(const char *name, char *out, size_t cap)
{
	size_t n = hl_sanitize(name, strlen(name), out + 1, cap - 1, 0);
	if (n && (out[1] == '.' || out[1] == '-'))
		out[0] = '_';
	else
		memmove(out, out + 1, n + 1);
}

/* Copies the stored attachment A into DIRFD under its base name, checking
 * its hash on the way.  ERR gets the reason on failure. */
static int save_one(const char *station, int dirfd, const struct hl_att_row *a,
		    char *err, size_t errlen)
{
	int ret = 0, in = -1, out = -1;
	char name[256];
	uint8_t *buf = NULL;
	char *src = hl_path_join(station, a->path);
	hl_sha256_state hs;
	uint8_t h[HL_HASH_LEN];

	safe_name(a->name, name, sizeof(name));
	if (!hl_attachment_name_valid((const uint8_t *)name, strlen(name))) {
		snprintf(err, errlen, "attachment %u has an unusable name", a->idx);
		ret = HL_EINVAL;
		goto out;
	}
	in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (in < 0) {
		snprintf(err, errlen, "%s: %s", src, strerror(errno));
		ret = -errno;
		goto out;
	}
	out = openat(dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (out < 0) {
		ret = -errno;
		snprintf(err, errlen, "'%s': %s%s", name, strerror(errno),
			 errno == EEXIST ? " (not overwritten)" : "");
		goto out;
	}
	hl_sha256_init(&hs);
	buf = xmalloc(1 << 20);
	uint64_t total = 0;
	for (;;) {
		ssize_t n = read(in, buf, 1 << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			snprintf(err, errlen, "%s: %s", src, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		total += (uint64_t)n;
		hl_sha256_update(&hs, buf, (size_t)n);
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(out, buf + off, (size_t)(n - off));
			if (w < 0 && errno == EINTR)
				continue;
			if (w < 0) {
				ret = -errno;
				snprintf(err, errlen, "'%s': %s", name, strerror(errno));
				goto out;
			}
			off += w;
		}
	}
	hl_sha256_final(&hs, h);
	if (total != a->size || sodium_memcmp(h, a->hash, HL_HASH_LEN) != 0) {
		snprintf(err, errlen, "'%s' does not match its signed hash; not saved", name);
		ret = HL_EAUTH;
		goto out;
	}
	if (fsync(out) < 0) {
		ret = -errno;
		snprintf(err, errlen, "'%s': %s", name, strerror(errno));
	}
out:
	if (out >= 0) {
		close(out);
		if (ret < 0 && ret != -EEXIST)
			unlinkat(dirfd, name, 0);
	}
	if (in >= 0)
		close(in);
	free(buf);
	free(src);
	return ret;
}

/* Every attachment of ROW can be saved into DIRFD (SAVE, for messages):
 * usable names, none twice, none already there, each stored file here.
 * 0, or -1 after the one line. */
static int save_precheck(const char *station, const char *save, int dirfd,
			 const struct hl_msg_row *row)
{
	char name[256], other[256];
	struct stat sb;
	for (unsigned i = 0; i < row->n_att; i++) {
		const struct hl_att_row *a = &row->att[i];
		safe_name(a->name, name, sizeof(name));
		if (!hl_attachment_name_valid((const uint8_t *)name, strlen(name))) {
			hl_fail("read", "--save: attachment %u has an unusable name; nothing was saved",
				a->idx);
			return -1;
		}
		for (unsigned j = 0; j < i; j++) {
			safe_name(row->att[j].name, other, sizeof(other));
			if (strcmp(name, other) == 0) {
				hl_fail("read", "--save: two attachments are named '%s'; nothing was saved",
					name);
				return -1;
			}
		}
		int r = fstatat(dirfd, name, &sb, AT_SYMLINK_NOFOLLOW);
		if (r == 0 || errno != ENOENT) {
			hl_fail("read", "--save: %s/%s %s; nothing was saved (a file is never overwritten)",
				save, name, r == 0 ? "exists" : strerror(errno));
			return -1;
		}
		char *src = hl_path_join(station, a->path);
		r = lstat(src, &sb);
		free(src);
		if (r < 0 || !S_ISREG(sb.st_mode)) {
			hl_fail("read", "--save: the stored file of attachment '%s' is not here%s; "
				"nothing was saved", name,
				row->purged_at ? " (its contents were purged)" : "");
			return -1;
		}
	}
	return 0;
}

/* Saves every attachment of ROW into DIRFD; on a failure removes what this
 * call wrote and returns -1 after the one line. */
static int save_all(const char *station, const char *save, int dirfd,
		    const struct hl_msg_row *row)
{
	char err[512], name[256];
	for (unsigned i = 0; i < row->n_att; i++) {
		if (save_one(station, dirfd, &row->att[i], err, sizeof(err)) == 0)
			continue;
		for (unsigned j = 0; j < i; j++) {
			safe_name(row->att[j].name, name, sizeof(name));
			unlinkat(dirfd, name, 0);
		}
		hl_fail("read", "--save into %s: %s; nothing was saved", save, err);
		return -1;
	}
	if (row->n_att && fsync(dirfd) < 0) {
		hl_fail("read", "--save: %s: %s", save, strerror(errno));
		return -1;
	}
	return 0;
}

/* A voice message: its duration, and how to hear it. */
static void print_voice(const char *station, const struct hl_msg_row *row)
{
	char label[32], hex[33];
	hl_voice_label(station, row, label, sizeof(label));
	if (!label[0])
		return;
	hl_msg_id_hex(row->id, hex);
	printf("Voice:      %s  (hotline voice play %.12s)\n", label + strlen("voice "), hex);
}

static void print_human(const struct hl_msg_row *row, const struct verdict *v,
			const hl_peer_conf *peer)
{
	char hex[65], when[HL_RFC3339_LEN], text[2048];
	hl_msg_id_hex(row->id, hex);
	hl_sanitize(row->peer_name, strlen(row->peer_name), text, sizeof(text), 0);
	printf("Message:    %s\n", hex);
	printf("%s %s", row->dir == HL_DIR_IN ? "From:      " : "To:        ", text);
	if (peer) {
		char fp[HL_FP_TEXT_LEN];
		hl_fingerprint_text(peer->fingerprint, fp);
		printf(" (fingerprint %s)", fp);
	}
	printf("\nPrecedence: %s\n", hl_precedence_name(row->precedence));
	hl_sanitize(row->subject ? row->subject : "", row->subject ? strlen(row->subject) : 0,
		    text, sizeof(text), 0);
	char purged[HL_RFC3339_LEN] = "";
	if (row->purged_at)
		hl_rfc3339(row->purged_at, purged);
	if (row->purged_at)
		printf("Subject:    (purged at %s)\n", purged);
	else
		printf("Subject:    %s\n", text);
	hl_rfc3339(row->sent_at, when);
	printf("Sent:       %s (sender's clock)\n", when);
	if (row->dir == HL_DIR_IN && row->received_at) {
		hl_rfc3339(row->received_at, when);
		printf("Received:   %s\n", when);
	}
	if (row->dir == HL_DIR_OUT) {
		printf("State:      %s", hl_msg_state_name(row->state));
		if (row->state == HL_MSG_DELIVERED && row->delivered_at) {
			hl_rfc3339(row->delivered_at, when);
			printf(" (receipt %s)", when);
		} else if (row->state == HL_MSG_REFUSED && row->reason) {
			hl_sanitize(row->reason, strlen(row->reason), text, sizeof(text), 0);
			printf(": %s", text);
		}
		printf("\n");
	}
	if (v->signature && v->pinned && row->purged_at)
		printf("Verified:   signature by %s's pinned key valid; the contents were purged at %s "
		       "(retention), only their signed hashes remain\n",
		       row->dir == HL_DIR_IN ? "the sender" : "this station", purged);
	else if (v->signature && v->pinned && v->content)
		printf("Verified:   signature by %s's pinned key valid; subject and body match their hashes\n",
		       row->dir == HL_DIR_IN ? "the sender" : "this station");
	else
		printf("Verified:   NO: %s\n", v->problem ? v->problem : "unknown");
	for (unsigned i = 0; i < row->n_att; i++) {
		hl_sanitize(row->att[i].name, strlen(row->att[i].name), text, sizeof(text), 0);
		hl_hex(row->att[i].hash, HL_HASH_LEN, hex);
		printf("%s %s (%llu bytes, " HL_DOC_HASH_NAME " %s)%s\n", i ? "           " : "Attachment:",
		       text, (unsigned long long)row->att[i].size, hex,
		       row->purged_at ? " (file purged)" : "");
	}
	printf("\n");
	if (row->purged_at)
		printf("(contents purged at %s by this station's retention)\n", purged);
	if (row->body) {
		char *clean = xmalloc(row->body_size * 3 + 2);
		hl_sanitize((const char *)row->body, row->body_size, clean, row->body_size * 3 + 2, 1);
		/* Every body line behind "| ": none can pass for a header line. */
		for (char *line = clean, *nl;; line = nl + 1) {
			nl = strchr(line, '\n');
			if (!nl && !*line && line != clean)
				break;
			printf("| %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
			if (!nl)
				break;
		}
		free(clean);
	}
}

/* read's options and operand (parse_args). */
struct read_args {
	bool json;
	const char *save;       /* --save DIR, or NULL */
	const char *idarg;
};

/* Parses ARGV into A: -1 to go on, else the exit status (--help: 0). */
static int parse_args(int argc, char **argv, struct read_args *a)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "save", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			a->json = true;
			break;
		case 'S':
			a->save = optarg;
			break;
		case 'h':
			printf("usage: hotline read ID [--json] [--save DIR]\n\n"
			       "Show one message (ID: its id, or a unique prefix of 8 or more hex digits)\n"
			       "with its verification, and mark it read.\n\n"
			       "      --json      one JSON object\n"
			       "      --save DIR  write the attachments into DIR under their base names\n"
			       "                  (never overwriting a file, never following a link;\n"
			       "                  a name starting with '.' or '-' gets a '_' in front)\n\n"
			       "The body's lines are shown after \"| \": a line without it is read's own.\n");
			return HL_EXIT_OK;
		default:
			return hl_usage_error("read", "bad option");
		}
	}
	if (optind + 1 != argc)
		return hl_usage_error("read", optind >= argc ? "which message? (give its id)"
							     : "one message id at a time");
	a->idarg = argv[optind];
	return -1;
}

/* The message IDARG names into ROW, once it has fully arrived: HL_EXIT_OK,
 * else the failure reported. */
static int find_message(struct hl_station *mc, const char *idarg, struct hl_msg_row *row)
{
	int r = hl_store_get_message(mc->store, idarg, row);
	if (r == HL_ENOTFOUND)
		return hl_fail("read", "no message with id '%s'", idarg);
	else if (r == HL_EEXIST)
		return hl_fail("read", "'%s' matches more than one message; give more digits", idarg);
	else if (r == HL_EINVAL)
		return hl_usage_error("read", "'%s' is not a message id (8 to 32 hex digits)", idarg);
	else if (r < 0)
		return hl_fail("read", "store: %s", hl_store_errmsg(mc->store));
	if (row->dir == HL_DIR_IN && row->state != HL_MSG_COMPLETE)
		return hl_fail("read", "message '%s' is still arriving", idarg);
	return HL_EXIT_OK;
}

/* --save DIR: every attachment of ROW written into SAVE (*DIRFD: the
 * directory, closed by the caller).  HL_EXIT_OK, else HL_EXIT_FAIL. */
static int save_into(const char *station_dir, const char *save, int *dirfd,
		     const struct hl_msg_row *row)
{
	*dirfd = open(save, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (*dirfd < 0)
		return hl_fail("read", "--save: cannot open directory '%s': %s", save,
			       strerror(errno));
	if (save_precheck(station_dir, save, *dirfd, row) < 0 ||
	    save_all(station_dir, save, *dirfd, row) < 0)
		return HL_EXIT_FAIL;
	return HL_EXIT_OK;
}

/* --json: the message and its verdict as one JSON object. */
static void print_json(const char *station_dir, const struct hl_msg_row *row,
		       const struct verdict *v)
{
	json_t *o = hl_msgcmd_json(row);
	json_t *vj = json_object();
	json_object_set_new(vj, "signature", json_boolean(v->signature && v->pinned));
	json_object_set_new(vj, "content", json_boolean(v->content));
	json_object_set_new(vj, "problem", v->problem ? json_string(v->problem) : json_null());
	json_object_set_new(o, "verified", vj);
	json_t *voice = hl_voice_json(station_dir, row);
	if (voice)
		json_object_set_new(o, "voice", voice);
	char *s = json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII);
	printf("%s\n", s);
	free(s);
	json_decref(o);
}

/* After the message: where each attachment was saved, under which name. */
static void print_saved(const char *save, const struct hl_msg_row *row)
{
	for (unsigned i = 0; i < row->n_att; i++) {
		char name[256], sent[256 * 3];
		safe_name(row->att[i].name, name, sizeof(name));
		hl_sanitize(row->att[i].name, strlen(row->att[i].name), sent, sizeof(sent), 0);
		printf("Saved:      %s/%s (its signed hash verified%s%s%s)\n", save, name,
		       strcmp(name, sent) ? "; sent as '" : "", strcmp(name, sent) ? sent : "",
		       strcmp(name, sent) ? "'" : "");
	}
}

int read_main(struct hl_ctx *ctx, int argc, char **argv)
{
	struct read_args a = { 0 };
	struct hl_station mc = { 0 };
	struct hl_msg_row row = { 0 };
	int ret, dirfd = -1;

	if ((ret = parse_args(argc, argv, &a)) >= 0)
		return ret;
	if ((ret = hl_msgcmd_open(ctx, "read", &mc, false)) != HL_EXIT_OK)
		goto out;
	if ((ret = find_message(&mc, a.idarg, &row)) != HL_EXIT_OK)
		goto out;
	if (a.save && (ret = save_into(ctx->dir, a.save, &dirfd, &row)) != HL_EXIT_OK)
		goto out;

	struct verdict v;
	verify(&mc, &row, &v);
	const hl_peer_conf *peer = hl_conf_peer_by_name(mc.conf, row.peer_name);
	if (a.json) {
		print_json(ctx->dir, &row, &v);
	} else {
		print_human(&row, &v, peer);
		print_voice(ctx->dir, &row);
	}
	ret = (v.signature && v.pinned && v.content) ? HL_EXIT_OK : HL_EXIT_FAIL;
	if (a.save && !a.json)
		print_saved(a.save, &row);
	if (row.dir == HL_DIR_IN && row.unread && hl_store_mark_read(mc.store, row.id) < 0)
		ret = hl_fail("read", "store: %s", hl_store_errmsg(mc.store));
out:
	if (dirfd >= 0)
		close(dirfd);
	hl_msg_row_clear(&row);
	hl_msgcmd_close(&mc);
	return ret;
}
