/* daemon/daemon.c — the daemon's life: start (lock, configuration,
 * identity, listener, control socket, watcher, the group commit, the
 * services, peers) and shutdown on SIGTERM or SIGINT; the table of the
 * services.  The core it starts: conn.c (connections), peer.c (peers),
 * commit.c (the group commit), control.c (the control socket), reload.c
 * (station.conf read again); the services: service.h.
 *
 * Start order matters: station.conf is read first (after the check that
 * nobody else can change the station, conf/perms.h), because it says whom
 * the daemon becomes; then, still before anything else, root's powers go
 * (daemon/privs.h), so that every file the daemon creates belongs to the
 * user it runs as and nothing from the network, the mail or AlarmCommand
 * ever meets a privilege.  Then the lock, so a second daemon fails before
 * it touches anything (the control socket of the first one in particular);
 * a stale control socket is removed only under the lock.  Then the spawner
 * (daemon/spawn.h) is forked, before the identity is loaded, so that it
 * holds no key; the listener, the control socket and the store are
 * opened; and the sandbox is entered (daemon/sandbox.h) before the
 * services and the peers start any thread. */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/perms.h"
#include "crypto/noise.h"
#include "daemon/commit.h"
#include "daemon/daemon_int.h"
#include "daemon/privs.h"
#include "daemon/rt.h"
#include "daemon/sandbox.h"
#include "daemon/service.h"
#include "daemon/spawn.h"
#include "station/control_proto.h"
#include "station/station.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "wire/packet.h"

/* The services, in the order the core walks them (service.h says why). */
static const struct hl_service *const services[] = {
	&hl_alarm_service,
	&hl_rotation_service,
	&hl_delivery_service,
	&hl_stage_service,
	&hl_failover_service,
	&hl_checks_service,
	&hl_mailpoll_service,
	&hl_retention_service,
	&hl_calls_service,
};

/* ---- shutdown ---- */

static void on_signal(uv_signal_t *s, int signum)
{
	struct hl_daemon *d = s->data;
	hl_info("%s: shutting down", signum == SIGTERM ? "SIGTERM" : "SIGINT");
	hl_daemon_stop(d);
}

static void on_plain_close(uv_handle_t *h)
{
	(void)h;
}

void hl_daemon_stop(struct hl_daemon *d)
{
	if (d->stopping)
		return;
	d->stopping = true;
	/* In reverse: calls' END goes out before the links close; then the
	 * last burst is committed, with everything the services wrote. */
	hl_services_stop(d);
	hl_commit_stop(d);
	for (struct hl_conn *c = d->conns; c; c = c->next)
		hl_conn_close(c, HL_CLOSE_SHUTDOWN, NULL);
	while (d->peers)
		hl_peer_remove(d->peers);
	hl_services_release(d);
	hl_keys_unwatch(d);
	hl_listen_stop(d);
	hl_control_stop(d);
	hl_reload_unwatch(d);
	hl_spawner_detach(d);
	if (d->signals_inited) {
		uv_close((uv_handle_t *)&d->sigterm, on_plain_close);
		uv_close((uv_handle_t *)&d->sigint, on_plain_close);
		d->signals_inited = false;
	}
}

/* ---- start ---- */

static int take_lock(struct hl_daemon *d, char *err)
{
	d->lockfd = hl_station_lock(d->dirfd, HL_DAEMON_LOCK_FILE, LOCK_EX | LOCK_NB);
	if (d->lockfd < 0) {
		int e = -d->lockfd;
		if (e == EWOULDBLOCK)
			snprintf(err, HL_DAEMON_ERR_LEN,
				 "a daemon is already running for station '%s' (%s/%s is locked)",
				 d->dir, d->dir, HL_DAEMON_LOCK_FILE);
		else
			snprintf(err, HL_DAEMON_ERR_LEN, "cannot lock %s/%s: %s", d->dir,
				 HL_DAEMON_LOCK_FILE, strerror(e));
		return e == EWOULDBLOCK ? HL_EEXIST : -e;
	}
	/* The pid, for people; the lock is what counts. */
	char pid[24];
	int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
	if (ftruncate(d->lockfd, 0) == 0 && write(d->lockfd, pid, (size_t)n) < 0)
		hl_debug("could not write the pid to %s", HL_DAEMON_LOCK_FILE);
	return 0;
}

/* station.conf, then root's powers go (daemon/privs.h); NOTE says what
 * went, for the log once the lock is held. */
static int load_conf_and_drop(struct hl_daemon *d, char note[static HL_PRIVS_NOTE_LEN],
			      char *err)
{
	char cerr[HL_CONF_ERR_LEN] = "";
	struct stat st;
	uid_t also = HL_UID_NONE;
	if (fstat(d->dirfd, &st) < 0) {
		int e = errno;
		snprintf(err, HL_DAEMON_ERR_LEN, "%s: %s", d->dir, strerror(e));
		return -e;
	}
	/* Root may read the station of the User it becomes; privs.c then
	 * insists that station.conf names that user. */
	if (geteuid() == 0 && st.st_uid != 0)
		also = st.st_uid;
	int ret = hl_conf_load_as(d->dir, also, &d->conf, cerr);
	if (ret < 0) {
		snprintf(err, HL_DAEMON_ERR_LEN, "%s", cerr[0] ? cerr : hl_strerror(ret));
		return ret;
	}
	if (d->conf->log_level)
		hl_log_set_default_level((enum hl_log_level)(d->conf->log_level - 1));
	/* The media thread's real-time priority is taken while it may be
	 * (daemon/rt.h). */
	hl_rt_claim();
	ret = hl_privs_drop(d->dir, st.st_uid, d->conf->user, note, err, HL_DAEMON_ERR_LEN);
	hl_rt_park();
	return ret;
}

/* The key holder, which alone reads identity.key (keys.c): started now,
 * before the store and the network. */
static int load_identity(struct hl_daemon *d, char *err)
{
	return hl_keys_start(d, err, HL_DAEMON_ERR_LEN);
}

/* The sandbox's job on the parked real-time thread (rt.h). */
static int bind_parked_job(void *rfd)
{
	return hl_sandbox_bind_thread(*(int *)rfd);
}

static int bind_parked(void *unused, int rfd)
{
	(void)unused;
	return hl_rt_on_parked(bind_parked_job, &rfd);
}

/* The network process's sandbox (daemon/sandbox.h), once everything
 * outside its rules is open (the listener, the control socket, the store)
 * and before any thread starts (the services and the peers start them). */
static int enter_sandbox(struct hl_daemon *d, char *err)
{
	char note[HL_SANDBOX_NOTE_LEN];
	const struct hl_aead_impl *bulk = hl_noise_bulk_aead();
	if (!d->conf->sandbox) {
		hl_warn("Sandbox = off in station.conf: the network process and the key holder "
			"run without their sandbox (docs/sandbox.md)");
		return 0;
	}
	/* libcrypto reads its configuration on first use: now, while it can */
	if (bulk) {
		uint8_t k[HL_NOISE_KEYLEN] = { 0 };
		bulk->free(bulk->make(k, true));
	}
	struct hl_sandbox_spec spec = {
		.role = HL_SANDBOX_NETWORK, .station = d->dir,
		.maildir = d->conf->email.line ? d->conf->email.maildir : NULL,
	};
	if (hl_rt_parked()) {
		spec.other_threads = 1;
		spec.bind_others = bind_parked;
	}
	int ret = hl_sandbox_enter(&spec, note, err, HL_DAEMON_ERR_LEN);
	if (ret == 0)
		hl_info("%s", note);
	return ret;
}

static int start_loop_parts(struct hl_daemon *d, char *err)
{
	int ret;
	uv_signal_init(&d->loop, &d->sigterm);
	uv_signal_init(&d->loop, &d->sigint);
	d->sigterm.data = d->sigint.data = d;
	d->signals_inited = true;
	uv_signal_start(&d->sigterm, on_signal, SIGTERM);
	uv_signal_start(&d->sigint, on_signal, SIGINT);

	if (d->conf->listen[0]) {
		ret = hl_listen_start(d, d->conf->listen, err, HL_DAEMON_ERR_LEN);
		if (ret < 0)
			return ret;
	}
	ret = hl_control_start(d, err, HL_DAEMON_ERR_LEN);
	if (ret < 0)
		return ret;

	hl_reload_watch(d);
	ret = hl_commit_start(d, hl_daemon_stop, err, HL_DAEMON_ERR_LEN);
	if (ret < 0)
		return ret;
	ret = enter_sandbox(d, err);
	if (ret < 0)
		return ret;
	ret = hl_services_start(d, err, HL_DAEMON_ERR_LEN);
	if (ret < 0)
		return ret;
	for (size_t i = 0; i < d->conf->npeers; i++)
		hl_peer_add(d, &d->conf->peers[i]);
	return 0;
}

int hl_daemon_run(const char *dir, char err[static HL_DAEMON_ERR_LEN])
{
	struct hl_daemon *d = xcalloc(1, sizeof(*d));
	char note[HL_PRIVS_NOTE_LEN] = "";
	int ret;

	err[0] = 0;
	d->dir = xstrdup(dir);
	d->lockfd = -1;
	d->holder_fd = -1;
	d->rl_unauth = (struct hl_ratelimit)HL_RATELIMIT_INIT(10, 30);
	d->rl_unknown_key = (struct hl_ratelimit)HL_RATELIMIT_INIT(5, 10);
	d->rl_accept = (struct hl_ratelimit)HL_RATELIMIT_INIT(5, 10);
	d->guard = hl_guard_new();
	hl_services_set(d, services, sizeof(services) / sizeof(services[0]));
	d->conn_events = &hl_peer_conn_events;
	d->seen = hl_replay_cache_new(HL_SEEN_EPHEMERALS);
	d->started_wall_ms = hl_wall_ms();

	d->dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (d->dirfd < 0) {
		ret = -errno;
		snprintf(err, HL_DAEMON_ERR_LEN, "cannot open the station directory '%s': %s", dir,
			 strerror(-ret));
		goto out;
	}
	ret = load_conf_and_drop(d, note, err);
	if (ret < 0)
		goto out;
	ret = take_lock(d, err);
	if (ret < 0)
		goto out;
	if (note[0])
		hl_info("%s", note);
	/* Before the identity is loaded: the spawner holds no key. */
	ret = hl_spawner_start(d, err, HL_DAEMON_ERR_LEN);
	if (ret < 0)
		goto out;
	ret = load_identity(d, err);
	if (ret < 0)
		goto out;

	/* A write to a connection the peer closed must be an error, not death. */
	signal(SIGPIPE, SIG_IGN);
	ret = uv_loop_init(&d->loop);
	if (ret < 0) {
		snprintf(err, HL_DAEMON_ERR_LEN, "event loop: %s", uv_strerror(ret));
		goto out;
	}
	d->loop_inited = true;
	hl_keys_watch(d, hl_daemon_stop);
	ret = hl_spawner_attach(d, hl_daemon_stop);
	if (ret < 0)
		snprintf(err, HL_DAEMON_ERR_LEN, "watching the spawner: %s", uv_strerror(ret));
	else
		ret = start_loop_parts(d, err);
	if (ret < 0) {
		hl_daemon_stop(d);
	} else {
		char fp[HL_FP_TEXT_LEN];
		hl_fingerprint_text(d->fingerprint, fp);
		hl_info("station %s running (pid %ld, fingerprint %s), %zu peers", d->conf->name,
			(long)getpid(), fp, d->conf->npeers);
	}
	/* Runs until hl_daemon_stop() has closed every handle. */
	uv_run(&d->loop, UV_RUN_DEFAULT);
	if (ret == 0 && d->holder_died) {
		snprintf(err, HL_DAEMON_ERR_LEN, "the key holder died: the daemon stopped");
		ret = HL_ESTATE;
	} else if (ret == 0 && d->failed) {
		ret = HL_ESTATE;
		snprintf(err, HL_DAEMON_ERR_LEN, "stopped on an error (see the log above)");
	} else if (ret == 0) {
		hl_info("stopped");
	}

out:
	if (d->loop_inited) {
		if (uv_loop_close(&d->loop) != 0)
			hl_warn("event loop closed with handles still open");
	}
	hl_commit_close(d);
	hl_spawner_close(d);
	hl_peer_index_free(d);
	hl_conf_free(d->conf);
	hl_signer_free(d->id_prev);
	d->id_prev = NULL;
	hl_keys_end(d);
	if (d->lockfd >= 0)
		close(d->lockfd);   /* releases the lock */
	if (d->dirfd >= 0)
		close(d->dirfd);
	hl_replay_cache_free(d->seen);
	hl_guard_free(d->guard);
	hl_rt_release();
	free(d->dir);
	free(d);
	return ret;
}
