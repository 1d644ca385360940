/* cmd/init.c — `hotline init NAME [--listen HOST:PORT] [--address HOST:PORT]`:
 * creates a station: the directory, identity.key and station.conf.
 *
 * It never overwrites: it refuses when identity.key or station.conf exists,
 * and creates both so that a racing init cannot be overwritten either
 * (identity.key with O_EXCL, station.conf by link() of a finished temporary).
 * When a step fails it removes what it created, so no half-made station is
 * left: the identity is written first and unlinked again if the
 * configuration cannot be written; the directory is removed if this command
 * made it.  The store is not created here: the store module creates it on
 * first open. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "conf/config.h"
#include "conf/perms.h"
#include "crypto/signer.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/text.h"

#define DEFAULT_LISTEN "0.0.0.0:7100"

static void help(void)
{
	printf("usage: hotline init NAME [--listen HOST:PORT] [--address HOST:PORT]\n"
	       "\n"
	       "Creates a station in the station directory (made with mode 0700 if\n"
	       "missing): its private keys in identity.key (mode 0600) and its\n"
	       "configuration in station.conf.  Refuses if either file exists.\n"
	       "\n"
	       "NAME is 1 to 32 characters from a-z 0-9 . _ -, starting with a letter\n"
	       "or digit; peers see it on this station's card.\n"
	       "\n"
	       "  --listen HOST:PORT   where the daemon accepts connections\n"
	       "                       (default %s: every interface)\n"
	       "  --address HOST:PORT  where peers should dial this station, put on its\n"
	       "                       card (default: the --listen address, unless that\n"
	       "                       is 0.0.0.0 or [::]; then the card carries no\n"
	       "                       Address and peers give one with\n"
	       "                       'hotline peer add --address')\n"
	       "\n"
	       "Exit status: 0 created, 1 failure, 2 usage error (including a bad NAME\n"
	       "or address).\n",
	       DEFAULT_LISTEN);
}

static int exists(const char *path)
{
	struct stat st;
	return lstat(path, &st) == 0 || errno != ENOENT;
}

/* Writes TEXT to PATH, which must not exist: the text goes to a temporary
 * first and is link()ed into place, so PATH appears whole or not at all, and
 * an existing PATH is never replaced. */
static int write_new_file(const char *path, const char *text)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	int r = hl_write_file_atomic(tmp, text, strlen(text), 0600);
	if (r == 0) {
		if (link(tmp, path) < 0)
			r = -errno;
		unlink(tmp);
		if (r == 0)
			r = hl_fsync_parent(path);
	}
	free(tmp);
	return r;
}

/* init's options and operand (parse_args). */
struct init_args {
	const char *listen, *address, *name;
};

/* Parses and checks ARGV into A: -1 to go on, else the exit status
 * (--help: 0). */
static int parse_args(int argc, char **argv, struct init_args *a)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "address", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	char q[256];

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
			a->listen = optarg;
			break;
		case 'a':
			a->address = optarg;
			break;
		case 'h':
			help();
			return HL_EXIT_OK;
		case ':':
			return hl_usage_error("init", "'%s' needs a value", argv[optind - 1]);
		default:
			hl_sanitize(argv[optind - 1], strlen(argv[optind - 1]), q, sizeof(q), 0);
			return hl_usage_error("init", "unknown option '%s'", q);
		}
	}
	if (optind != argc - 1)
		return hl_usage_error("init", optind >= argc ? "give the station's NAME"
							     : "too many arguments");
	a->name = argv[optind];
	if (!hl_name_valid(a->name)) {
		hl_sanitize(a->name, strlen(a->name), q, sizeof(q), 0);
		return hl_usage_error("init",
				      "bad station name '%s': want 1 to 32 characters from "
				      "a-z 0-9 . _ -, starting with a letter or digit", q);
	}
	if (hl_addr_split(a->listen, NULL, 0, NULL) < 0) {
		hl_sanitize(a->listen, strlen(a->listen), q, sizeof(q), 0);
		return hl_usage_error("init", "bad --listen '%s': want HOST:PORT or [IPv6]:PORT", q);
	}
	if (a->address && hl_addr_split(a->address, NULL, 0, NULL) < 0) {
		hl_sanitize(a->address, strlen(a->address), q, sizeof(q), 0);
		return hl_usage_error("init", "bad --address '%s': want HOST:PORT or [IPv6]:PORT",
				      q);
	}
	return -1;
}

/* The station directory: made (mode 0700; *MADE_DIR set) unless it exists,
 * and safe from other users.  HL_EXIT_OK, else the failure reported. */
static int prepare_dir(const char *dir, int *made_dir)
{
	if (mkdir(dir, 0700) == 0)
		*made_dir = 1;
	else if (errno != EEXIST)
		return hl_fail("init", "cannot create the station directory %s: %s", dir,
			       strerror(errno));
	struct stat st;
	if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
		return hl_fail("init", "%s is not a directory", dir);
	/* A directory (or a folder above it) others can write would make the
	 * station refused by every command: say so now, before any key exists. */
	char perr[HL_PERMS_ERR_LEN];
	if (hl_station_validate_perms(dir, HL_UID_NONE, perr) < 0)
		return hl_fail("init", "%s", perr);
	return HL_EXIT_OK;
}

/* The new station's fingerprint and the operator's next steps. */
static void print_created(const char *name, const char *dir, const hl_signer *id)
{
	uint8_t fp[HL_FP_LEN];
	char fp_text[HL_FP_TEXT_LEN];
	hl_signer_fingerprint(id, fp);
	hl_fingerprint_text(fp, fp_text);
	printf("Created station '%s' in %s.\n"
	       "Fingerprint: %s\n"
	       "\n"
	       "Next: give this station's card ('hotline card') to the other station,\n"
	       "read the fingerprint to its operator over the telephone, and pin its card:\n"
	       "  hotline peer add THEIR-CARD --fingerprint 'THEIR FINGERPRINT'\n"
	       "Then start the daemon: hotline run\n",
	       name, dir, fp_text);
}

int init_main(struct hl_ctx *ctx, int argc, char **argv)
{
	struct init_args a = { .listen = DEFAULT_LISTEN };
	char *id_path = NULL, *conf_path = NULL, *text = NULL;
	hl_signer *id = NULL;
	int made_dir = 0, made_id = 0;
	int ret, r;

	if ((ret = parse_args(argc, argv, &a)) >= 0)
		return ret;
	id_path = hl_path_join(ctx->dir, HL_IDENTITY_FILE);
	conf_path = hl_path_join(ctx->dir, HL_CONF_FILE);
	if ((ret = prepare_dir(ctx->dir, &made_dir)) != HL_EXIT_OK)
		goto out;
	if (exists(id_path) || exists(conf_path)) {
		ret = hl_fail("init", "%s already holds a station (%s or %s exists); "
				      "not overwriting it",
			      ctx->dir, HL_IDENTITY_FILE, HL_CONF_FILE);
		goto out;
	}
	if ((r = hl_signer_generate(&id)) < 0) {
		ret = hl_fail("init", "cannot generate keys: %s", hl_strerror(r));
		goto out;
	}
	if ((r = hl_signer_write_new(id_path, id)) < 0) {
		ret = hl_fail("init", "%s: %s", id_path, hl_strerror(r));
		goto out;
	}
	made_id = 1;
	text = hl_conf_template(a.name, a.listen, a.address);
	if ((r = write_new_file(conf_path, text)) < 0) {
		ret = hl_fail("init", "%s: %s", conf_path, hl_strerror(r));
		goto out;
	}
	if (made_dir)
		hl_fsync_parent(ctx->dir); /* the new directory's own entry */
	made_id = made_dir = 0; /* the station is whole: keep it */
	print_created(a.name, ctx->dir, id);
	ret = HL_EXIT_OK;
out:
	if (made_id)
		unlink(id_path);
	if (made_dir)
		rmdir(ctx->dir);
	hl_signer_free(id);
	free(text);
	free(id_path);
	free(conf_path);
	return ret;
}
