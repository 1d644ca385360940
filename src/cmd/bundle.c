/* cmd/bundle.c — `hotline bundle`: the courier path (docs/bundle.md).
 *
 *   hotline bundle export PEER -o FILE
 *   hotline bundle import FILE
 *   hotline bundle import --maildir
 *   hotline bundle mail PEER [--after SEQ] [--flash-only] [--if-items]
 *
 * export seals for PEER everything it has not acknowledged (messages with
 * their attachments, receipts, checks, ...) and writes FILE atomically (a
 * temporary in the same directory, fsynced, renamed; mode 0600).  import
 * checks the whole bundle, then stores it in one transaction; importing
 * it again adds nothing.  Both open the store themselves: a running
 * daemon is not needed, and notices the changes by itself (it is poked
 * after an import so the receipts go out at once when the link is up).
 * mail exports a bundle for PEER into the station directory and runs
 * hotline-mail ($HOTLINE_MAIL, else beside this binary, else where `make
 * install` put it: util/progpath.h) to send it to the
 * peer's Email address through the [Email] section's SMTP server; the file
 * is deleted afterwards (docs/bundle.md, "By email").  --after SEQ makes
 * an incremental bundle (only the unacknowledged items above SEQ: what an
 * earlier mail did not carry); --flash-only takes only the FLASH items (a
 * mail before the fallback); --if-items mails nothing, printing "nothing
 * to send", when the bundle would carry no item.  The daemon's email
 * fallback runs `bundle mail` with these (daemon/failover.c).
 *
 * SECURITY  A bundle is encrypted to the peer and authenticated by this
 * station's key, but has no forward secrecy: delete it once imported.
 *
 * DIAGNOSTICS  One line on stderr naming the file and why it was refused;
 * exit 1.  Nothing is stored from a refused bundle. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bundle/courier.h"
#include "mail/pickup.h"
#include "cmd/box.h"
#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "util/err.h"
#include "util/fdsink.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "util/progpath.h"
#include "util/text.h"

#define CMD_EXPORT "bundle export"
#define CMD_IMPORT "bundle import"
#define CMD_MAIL "bundle mail"
/* A bundle larger than this is refused on import (it is mapped whole). */
#define IMPORT_MAX (UINT64_C(64) << 30)

static void help(void)
{
	printf("usage: hotline bundle export PEER -o FILE\n"
	       "       hotline bundle import FILE\n"
	       "       hotline bundle import --maildir\n"
	       "       hotline bundle mail PEER [--after SEQ] [--flash-only] [--if-items]\n\n"
	       "The courier path: a sealed file that carries what the direct link would,\n"
	       "for a peer to import (docs/bundle.md).\n\n"
	       "export  write, encrypted to PEER and signed by this station, everything PEER\n"
	       "        has not acknowledged: messages with their attachments, receipts, checks\n"
	       "  -o, --output FILE     the bundle to write (replaced atomically)\n"
	       "import  check the whole bundle (sealed by a pinned peer, for this station,\n"
	       "        complete and unaltered), then store it in one transaction; importing\n"
	       "        the same bundle again adds nothing\n"
	       "  --maildir             import every bundle mail in the [Email] Maildir's new/:\n"
	       "                        each moves to cur/ once stored; junk and refused\n"
	       "                        bundles move to MAILDIR.quarantine/ with a .why file\n"
	       "mail    export a bundle for PEER and send it by email to PEER's Email address\n"
	       "        through the [Email] section's SMTP server (docs/bundle.md)\n"
	       "  --after SEQ           only the unacknowledged items above SEQ (what an\n"
	       "                        earlier mail did not carry), with the ACK\n"
	       "  --flash-only          only FLASH items (FLASH messages, receipts, checks,\n"
	       "                        answers, agreements), with the ACK\n"
	       "  --if-items            mail nothing when no item would go (\"nothing to send\")\n\n"
	       "Bundles have no forward secrecy: whoever later steals this station's keys can\n"
	       "open archived bundles.  Delete a bundle once it is imported.\n\n"
	       "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

/* Seals for PEER into OUTPUT (a temporary beside it, fsynced, renamed);
 * CMD names the command in messages.  HL_EXIT_OK or HL_EXIT_FAIL (one line
 * printed). */
static int export_file(struct hl_ctx *ctx, struct hl_station *mc, const hl_peer_conf *peer,
		       uint64_t after, bool flash_only, const char *output, const char *cmd,
		       struct hl_bundle_export_stats *st, uint64_t *total)
{
	struct hl_fd_sink sink = { .fd = -1 };
	char *tmp = NULL, err[512], q[256];
	int ret;
	hl_sanitize(output, strlen(output), q, sizeof(q), 0);
	tmp = xasprintf("%s.tmp-%ld", output, (long)getpid());
	sink.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (sink.fd < 0) {
		ret = hl_fail(cmd, "cannot create %s: %s", q, strerror(errno));
		free(tmp);
		tmp = NULL;
		goto out;
	}
	hl_fd_sink_init(&sink, sink.fd);
	int r = hl_bundle_export_after(ctx->dir, mc->store, mc->me, peer, after, flash_only,
				       hl_fd_sink_write, &sink, st, err, sizeof(err));
	if (r == 0 && (r = hl_fd_sink_flush(&sink)) < 0)
		snprintf(err, sizeof(err), "%s: %s", q, strerror(-r));
	if (r == 0 && (fsync(sink.fd) < 0 || rename(tmp, output) < 0)) {
		r = -errno;
		snprintf(err, sizeof(err), "%s: %s", q, strerror(errno));
	}
	if (r < 0) {
		ret = hl_fail(cmd, "%s", err);
		goto out;
	}
	hl_fsync_parent(output);
	free(tmp);
	tmp = NULL;
	*total = sink.total;
	ret = HL_EXIT_OK;
out:
	if (sink.fd >= 0)
		close(sink.fd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	hl_fd_sink_free(&sink);
	return ret;
}

static const hl_peer_conf *find_peer(const hl_station_conf *conf, const char *cmd,
				     const char *name)
{
	const hl_peer_conf *peer = hl_conf_peer_by_name(conf, name);
	if (!peer) {
		char p[128];
		hl_sanitize(name, strlen(name), p, sizeof(p), 0);
		hl_fail(cmd, "no peer named '%s' (hotline peer list)", p);
	}
	return peer;
}

static int do_export(struct hl_ctx *ctx, const char *peer_name, const char *output)
{
	struct hl_station mc = { 0 };
	struct hl_bundle_export_stats st;
	uint64_t total = 0;
	char q[256];
	int ret;
	hl_sanitize(output, strlen(output), q, sizeof(q), 0);
	if ((ret = hl_msgcmd_open(ctx, CMD_EXPORT, &mc, true)) != HL_EXIT_OK)
		goto out;
	const hl_peer_conf *peer = find_peer(mc.conf, CMD_EXPORT, peer_name);
	if (!peer) {
		ret = HL_EXIT_FAIL;
		goto out;
	}
	if ((ret = export_file(ctx, &mc, peer, 0, false, output, CMD_EXPORT, &st, &total)) !=
	    HL_EXIT_OK)
		goto out;
	printf("%s: %llu item(s) for %s (%llu message(s), %llu chunk(s)), %llu bytes\n", q,
	       (unsigned long long)st.items, peer->name, (unsigned long long)st.messages,
	       (unsigned long long)st.chunks, (unsigned long long)total);
	if (st.left)
		printf("more items wait: export another bundle once this one is imported\n");
out:
	hl_msgcmd_close(&mc);
	return ret;
}

/* Runs hotline-mail and waits for it: 0 when it exited 0. */
static int run_mailer(const char *prog, const hl_email_conf *em, const char *to, const char *file)
{
	pid_t pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp(prog, "hotline-mail", "--url", em->smtp_url, "--from", em->from, "--to", to,
		      "--", file, (char *)NULL);
		fprintf(stderr, "hotline bundle mail: cannot run %s: %s\n", prog, strerror(errno));
		_exit(127);
	}
	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : HL_ESTATE;
}

/* Removes DIR/mail-out-PID.bundle files (and their temporaries) whose
 * process is gone, a `bundle mail` killed while mailing: sealed bundles
 * are not kept (no forward secrecy, docs/bundle.md section 1). */
static void remove_stale_mail_files(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *de;
	if (!dh)
		return;
	while ((de = readdir(dh))) {
		long pid;
		char tail[16];
		if (sscanf(de->d_name, "mail-out-%ld.%15s", &pid, tail) != 2 || pid <= 0 ||
		    strncmp(tail, "bundle", 6) != 0 || (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;
		char *path = xasprintf("%s/%s", dir, de->d_name);
		unlink(path);
		free(path);
	}
	closedir(dh);
}

static int do_mail(struct hl_ctx *ctx, const char *peer_name, uint64_t after, bool flash_only,
		   bool if_items)
{
	struct hl_station mc = { 0 };
	struct hl_bundle_export_stats st;
	uint64_t total = 0;
	char *file = NULL, *prog = NULL;
	int ret;
	if ((ret = hl_msgcmd_open(ctx, CMD_MAIL, &mc, true)) != HL_EXIT_OK)
		goto out;
	const hl_peer_conf *peer = find_peer(mc.conf, CMD_MAIL, peer_name);
	if (!peer) {
		ret = HL_EXIT_FAIL;
		goto out;
	}
	if (!mc.conf->email.line) {
		ret = hl_fail(CMD_MAIL, "station.conf has no [Email] section (SMTP, From, Maildir)");
		goto out;
	}
	if (!peer->email[0]) {
		ret = hl_fail(CMD_MAIL, "peer '%s' has no Email address in station.conf (line %u)",
			      peer->name, peer->first_line);
		goto out;
	}
	/* The sealed bundle lives only until the server has it: mail has no
	 * forward secrecy, so no copy is kept (docs/bundle.md). */
	remove_stale_mail_files(ctx->dir);
	file = xasprintf("%s/mail-out-%ld.bundle", ctx->dir, (long)getpid());
	if ((ret = export_file(ctx, &mc, peer, after, flash_only, file, CMD_MAIL, &st, &total)) !=
	    HL_EXIT_OK) {
		free(file);
		file = NULL;
		goto out;
	}
	if (if_items && st.items == 0) {
		printf("nothing to send to %s\n", peer->name);
		ret = HL_EXIT_OK;
		goto out;
	}
	prog = hl_helper_path("hotline-mail", "HOTLINE_MAIL");
	if (run_mailer(prog, &mc.conf->email, peer->email, file) < 0) {
		ret = hl_fail(CMD_MAIL, "sending the bundle to %s failed (see hotline-mail's message)",
			      peer->email);
		goto out;
	}
	printf("mailed to %s: %llu item(s) for %s (%llu message(s), %llu chunk(s)), %llu bytes\n",
	       peer->email, (unsigned long long)st.items, peer->name,
	       (unsigned long long)st.messages, (unsigned long long)st.chunks,
	       (unsigned long long)total);
	if (st.left)
		printf("more items wait: mail again once this bundle is imported\n");
	ret = HL_EXIT_OK;
out:
	if (file) {
		unlink(file);
		free(file);
	}
	free(prog);
	hl_msgcmd_close(&mc);
	return ret;
}

static int do_import(struct hl_ctx *ctx, const char *path)
{
	struct hl_station mc = { 0 };
	struct hl_bundle_import_stats st;
	char err[512], q[256];
	void *map = MAP_FAILED;
	size_t len = 0;
	struct stat sb;
	int ret, fd = -1;
	hl_sanitize(path, strlen(path), q, sizeof(q), 0);
	if ((ret = hl_msgcmd_open(ctx, CMD_IMPORT, &mc, true)) != HL_EXIT_OK)
		goto out;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &sb) < 0) {
		ret = hl_fail(CMD_IMPORT, "%s: %s", q, strerror(errno));
		goto out;
	}
	if (!S_ISREG(sb.st_mode) || sb.st_size == 0 || (uint64_t)sb.st_size > IMPORT_MAX) {
		ret = hl_fail(CMD_IMPORT, "%s: %s", q, !S_ISREG(sb.st_mode) ? "not a regular file"
						      : sb.st_size == 0 ? "empty file" : "too large");
		goto out;
	}
	len = (size_t)sb.st_size;
	/* Mapped, not read: a bundle with large attachments is checked
	 * without copying it into memory. */
	map = mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED) {
		ret = hl_fail(CMD_IMPORT, "%s: %s", q, strerror(errno));
		goto out;
	}
	/* The bundle is the other side's: parse it sandboxed, once the store,
	 * the key holder and the file are open. */
	if ((ret = hl_cmd_box(CMD_IMPORT, HL_SANDBOX_IMPORT, ctx->dir, NULL, mc.conf->sandbox)) !=
	    HL_EXIT_OK)
		goto out;
	if (hl_bundle_import(ctx->dir, mc.store, mc.me, mc.conf, map, len, &st, err,
			     sizeof(err)) < 0) {
		ret = hl_fail(CMD_IMPORT, "%s: refused: %s", q, err);
		goto out;
	}
	printf("%s: from %s: %llu item(s), %llu message(s); %llu new in the inbox, "
	       "%llu of ours delivered\n", q, st.peer, (unsigned long long)st.items,
	       (unsigned long long)st.messages, (unsigned long long)st.arrived,
	       (unsigned long long)st.delivered);
	hl_msgcmd_poke_daemon(ctx);
	ret = HL_EXIT_OK;
out:
	if (map != MAP_FAILED)
		munmap(map, len);
	if (fd >= 0)
		close(fd);
	hl_msgcmd_close(&mc);
	return ret;
}

static void pickup_report(void *arg, const char *name, const char *what)
{
	char n[128], w[640];
	(void)arg;
	hl_sanitize(name, strlen(name), n, sizeof(n), 0);
	hl_sanitize(what, strlen(what), w, sizeof(w), 0);
	printf("%s: %s\n", n, w);
}

static int do_import_maildir(struct hl_ctx *ctx)
{
	struct hl_station mc = { 0 };
	struct hl_mail_pickup_stats st;
	char err[512];
	int ret;
	if ((ret = hl_msgcmd_open(ctx, CMD_IMPORT, &mc, true)) != HL_EXIT_OK)
		goto out;
	if (!mc.conf->email.line) {
		ret = hl_fail(CMD_IMPORT, "station.conf has no [Email] section (SMTP, From, Maildir)");
		goto out;
	}
	/* What is in new/ comes from anyone: parse it sandboxed, once the
	 * store and the key holder are open. */
	if ((ret = hl_cmd_box(CMD_IMPORT, HL_SANDBOX_PICKUP, ctx->dir, mc.conf->email.maildir,
			      mc.conf->sandbox)) != HL_EXIT_OK)
		goto out;
	int r = hl_mail_pickup(ctx->dir, mc.store, mc.me, mc.conf, &st, pickup_report, NULL, err,
			       sizeof(err));
	printf("%u mail(s): %u imported, %u quarantined, %u left; %llu new in the inbox, "
	       "%llu of ours delivered\n", st.seen, st.imported, st.quarantined, st.left,
	       (unsigned long long)st.arrived, (unsigned long long)st.delivered);
	if (st.imported)
		hl_msgcmd_poke_daemon(ctx);
	if (r < 0) {
		ret = hl_fail(CMD_IMPORT, "%s", err);
		goto out;
	}
	ret = HL_EXIT_OK;
out:
	hl_msgcmd_close(&mc);
	return ret;
}

/* A decimal sequence number, without sign or junk. */
static int parse_seq(const char *s, uint64_t *out)
{
	char *end;
	if (*s < '0' || *s > '9')
		return HL_EINVAL;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > INT64_MAX)
		return HL_EINVAL;
	*out = v;
	return 0;
}

int bundle_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "output", required_argument, NULL, 'o' },
		{ "maildir", no_argument, NULL, 'm' },
		{ "after", required_argument, NULL, 'a' },
		{ "if-items", no_argument, NULL, 'i' },
		{ "flash-only", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *output = NULL, *after_text = NULL;
	bool maildir = false, if_items = false, flash_only = false;
	uint64_t after = 0;
	int c;
	/* Options may come before or after the operands (GNU getopt permutes). */
	while ((c = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o': output = optarg; break;
		case 'm': maildir = true; break;
		case 'a': after_text = optarg; break;
		case 'i': if_items = true; break;
		case 'f': flash_only = true; break;
		case 'h': help(); return HL_EXIT_OK;
		default: return hl_usage_error("bundle", "try 'hotline bundle --help'");
		}
	}
	int n = argc - optind;
	char **args = argv + optind;
	if (n < 1)
		return hl_usage_error("bundle", "export PEER -o FILE | import FILE");
	if ((after_text || if_items || flash_only) && strcmp(args[0], "mail") != 0)
		return hl_usage_error("bundle", "--after, --flash-only and --if-items go with "
				      "'bundle mail'");
	if (strcmp(args[0], "export") == 0) {
		if (n != 2 || !output || !*output)
			return hl_usage_error(CMD_EXPORT, "usage: hotline bundle export PEER -o FILE");
		return do_export(ctx, args[1], output);
	}
	if (maildir && (strcmp(args[0], "import") != 0 || n != 1 || output))
		return hl_usage_error(CMD_IMPORT, "usage: hotline bundle import --maildir");
	if (strcmp(args[0], "import") == 0) {
		if (maildir)
			return do_import_maildir(ctx);
		if (n != 2 || output)
			return hl_usage_error(CMD_IMPORT,
					      "usage: hotline bundle import FILE | import --maildir");
		return do_import(ctx, args[1]);
	}
	if (strcmp(args[0], "mail") == 0) {
		if (n != 2 || output)
			return hl_usage_error(CMD_MAIL, "usage: hotline bundle mail PEER "
					      "[--after SEQ] [--flash-only] [--if-items]");
		if (after_text && parse_seq(after_text, &after) < 0) {
			char q[64];
			hl_sanitize(after_text, strlen(after_text), q, sizeof(q), 0);
			return hl_usage_error(CMD_MAIL, "bad --after '%s': want a sequence number", q);
		}
		return do_mail(ctx, args[1], after, flash_only, if_items);
	}

	char p[64];
	hl_sanitize(args[0], strlen(args[0]), p, sizeof(p), 0);
	return hl_usage_error("bundle", "unknown subcommand '%s' (export, import or mail)", p);
}
