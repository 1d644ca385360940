/* daemon/keys.c — the key holder, from the daemon's side
 * (docs/keyholder.md section 2): started before anything else reads the
 * network, asked for the public keys, watched, and ended with the daemon.
 *
 * The daemon never reads identity.key: d->id is the holder's signer face
 * (holder/client.h), whose DH and seals travel over a socketpair, and the
 * items of ours are signed there through chain/ours.c.
 *
 * Supervision.  Nothing should ever arrive on the socketpair except an
 * answer the daemon is waiting for, so the loop watches it: when it
 * becomes readable outside a request, the holder has died (it was killed,
 * or crashed).  The daemon then stops, cleanly, and exits 1: it does not
 * start another holder, because a holder that dies is either a bug or
 * someone killing it, and either should be seen, not papered over; the
 * service manager restarts the station (the systemd unit does), which
 * starts a fresh holder over the same journal of heads.  Nothing
 * acknowledged is lost: the last burst's commit, whose receipts can no
 * longer be signed, rolls back, and the peers send again what it held. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/alarm.h"
#include "daemon/daemon_int.h"
#include "daemon/sandbox.h"
#include "holder/client.h"
#include "holder/heads.h"
#include "holder/proc.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"

/* The holder refused to sign what a part of this daemon asked: the alarm
 * (docs/configuration.md, AlarmCommand: key_holder). */
static void on_refusal(void *user, const char *text)
{
	struct hl_daemon *d = user;
	hl_alarm_act(d, hl_alarm_new("key_holder", "", NULL, 0, 0, text));
}

static void reap(struct hl_daemon *d, bool wait)
{
	int status;
	if (d->holder_pid <= 0 || waitpid(d->holder_pid, &status, wait ? 0 : WNOHANG) <= 0)
		return;
	if (WIFSIGNALED(status))
		hl_error("the key holder (pid %ld) was killed by signal %d", (long)d->holder_pid,
			 WTERMSIG(status));
	else if (WEXITSTATUS(status) != 0)
		hl_error("the key holder (pid %ld) exited with status %d", (long)d->holder_pid,
			 WEXITSTATUS(status));
	d->holder_pid = 0;
}

/* A pinned peer's NoiseKey: its DH with ours is remembered. */
static bool pinned(void *user, const uint8_t pub[static 32])
{
	return hl_peer_by_key(user, pub) != NULL;
}

/* The journal of heads and the store on one filesystem (the store is
 * made in DIR when the daemon first opens it, after this): an fdatasync of
 * the store flushes the disk's cache over the journal's pushed records. */
static bool same_filesystem(const char *dir)
{
	char *heads = hl_path_join(dir, HL_HEADS_FILE);
	struct stat a, b;
	bool same = stat(heads, &a) == 0 && stat(dir, &b) == 0 && a.st_dev == b.st_dev;
	free(heads);
	return same;
}

int hl_keys_start(struct hl_daemon *d, char *err, size_t errlen)
{
	char kerr[HL_KEYS_ERR_LEN];
	int fd;
	struct hl_holder_marks *marks;
	/* the holder enters its sandbox once it has started (docs/sandbox.md) */
	int ret = hl_holder_spawn(d->dir, d->conf->sandbox ? hl_sandbox_holder : NULL, &fd,
				  &d->holder_pid, &marks, err, errlen);
	if (ret < 0)
		return ret;
	d->holder_fd = fd;
	if ((ret = hl_keys_over_fd(fd, &d->keys, kerr)) < 0) {
		hl_holder_marks_free(marks);
		snprintf(err, errlen, "the key holder did not start (%s); its log line says why",
			 kerr);
		d->holder_fd = -1;
		reap(d, true);
		return ret;
	}
	d->id = hl_keys_signer(d->keys);
	/* the holder hands what it signed to the disk while the store commits
	 * (commit.c); its marks spare the SYNC round trip when the store's
	 * fdatasync began after that, on the same filesystem */
	hl_keys_defer_sync(d->keys);
	hl_keys_share_marks(d->keys, marks);
	if (same_filesystem(d->dir))
		hl_keys_ride_flush(d->keys);
	hl_keys_on_refusal(d->keys, on_refusal, d);
	hl_keys_remember_statics(d->keys, pinned, d);
	hl_signer_fingerprint(d->id, d->fingerprint);
	return 0;
}

static void on_holder(uv_poll_t *h, int status, int events)
{
	struct hl_daemon *d = h->data;
	uint8_t b;
	(void)events;
	/* An answer is read inside its request: anything here is the end. */
	ssize_t n = recv(d->holder_fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	if (status == 0 && n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (!d->holder_died) /* else the group commit found it gone first, and said so */
		hl_error(HL_HOLDER_GONE, (long)d->holder_pid,
			 n > 0 ? " (it spoke out of turn)" : "");
	d->holder_died = true;
	uv_poll_stop(h);
	reap(d, false);
	d->holder_gone(d);
}

void hl_keys_watch(struct hl_daemon *d, void (*gone)(struct hl_daemon *d))
{
	d->holder_gone = gone;
	if (d->holder_fd < 0 || uv_poll_init(&d->loop, &d->holder_poll, d->holder_fd) < 0)
		return;
	d->holder_poll.data = d;
	d->holder_watched = true;
	uv_poll_start(&d->holder_poll, UV_READABLE | UV_DISCONNECT, on_holder);
}

static void on_poll_closed(uv_handle_t *h)
{
	(void)h;
}

void hl_keys_unwatch(struct hl_daemon *d)
{
	if (!d->holder_watched)
		return;
	d->holder_watched = false;
	uv_close((uv_handle_t *)&d->holder_poll, on_poll_closed);
}

void hl_keys_end(struct hl_daemon *d)
{
	/* Closing the socketpair ends the holder; then it is reaped. */
	hl_keys_free(d->keys);
	d->keys = NULL;
	d->id = NULL;
	d->holder_fd = -1;
	reap(d, true);
}
