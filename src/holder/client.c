/* holder/client.c — reaching the station's keys (see client.h): the key
 * holder's socket, or a holder process of the command's own; the signer
 * face the rest of hotline uses; the requests written and their answers
 * read (holder/proto.h). */
#include "holder/client.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "conf/config.h"
#include "holder/heads.h"
#include "holder/proc.h"
#include "holder/serve.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timefmt.h"

/* How long an answer may take: a run of 256 items and an fsync, on a slow
 * disk under load. */
#define ANSWER_TIMEOUT_MS 60000
/* How long a command's own holder may wait for keyholder.lock (another
 * command's holder has it). */
#define LOCK_WAIT_MS 60000
/* How long hl_keys_flush_begins waits for the holder's push */
#define PUSH_WAIT_US 2000

struct hl_keys {
	int fd;                       /* the key holder's socket; -1 in memory */
	pid_t pid;                    /* our own holder (no daemon runs); 0: none */
	struct hl_holder *local;      /* in memory (tests); NULL over a socket */
	bool public_only;             /* HL_KEYS_PUBLIC: asks nothing after KEYS */
	bool defer_sync;              /* the owner calls hl_keys_sync (the daemon) */
	bool unsynced;                /* signatures given since the last SYNC */
	struct hl_holder_marks *marks; /* our holder's (hl_keys_share_marks); NULL */
	uint64_t need;                /* the journal's appends at our last signature */
	bool ride;                    /* hl_keys_ride_flush: the owner's fdatasyncs count */
	uint64_t disk_seen;           /* the marks' on_disk when the owner's last
	                               * fdatasync began (hl_keys_flush_begins) */
	uint64_t syncs_asked, syncs_spared;
	hl_signer *face;
	pthread_mutex_t mu;           /* one request at a time */
	void (*on_refusal)(void *user, const char *text);
	void *refusal_user;
	struct known *known;          /* the holder's heads as last seen */
	size_t nknown;
	/* DHs with pinned peers' static keys, remembered (hl_keys_remember_statics) */
	bool (*is_static)(void *user, const uint8_t pub[static 32]);
	void *static_user;
	struct memo *memo;            /* sodium_malloc'd, open addressing */
	size_t memo_cap, memo_n;
};

/* DH(our static key, a peer's static key): the same at every handshake
 * with that peer. */
struct memo {
	bool used;
	uint8_t pub[32];
	uint8_t out[32];
};
#define MEMO_MAX 65536

/* The holder's head of one chain as this handle last saw it. */
struct known {
	uint8_t peer[32];
	uint64_t seq;
};

/* ---- one request, one answer ---- */

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A request is one send and its answer, almost always, one recv (the
 * holder writes it whole): two system calls for a DH.  The daemon's
 * socket is non-blocking (its loop watches it), so an EAGAIN waits in
 * poll(), ANSWER_TIMEOUT_MS at most. */
static ssize_t io_once(int fd, uint8_t *p, size_t len, bool out, int64_t deadline)
{
	for (;;) {
		ssize_t n = out ? send(fd, p, len, MSG_NOSIGNAL) : recv(fd, p, len, 0);
		if (n >= 0)
			return n;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		struct pollfd pfd = { .fd = fd, .events = out ? POLLOUT : POLLIN };
		int64_t left = deadline - mono_ms();
		if (left <= 0 || poll(&pfd, 1, (int)left) == 0)
			return HL_ETIMEOUT;
	}
}

static int io_all(int fd, uint8_t *p, size_t len, bool out, int64_t deadline)
{
	while (len > 0) {
		ssize_t n = io_once(fd, p, len, out, deadline);
		if (n < 0)
			return (int)n;
		if (n == 0)
			return -EPIPE; /* the holder is gone */
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int send_frame(int fd, const uint8_t *req, size_t len, int64_t deadline)
{
	uint8_t *frame = xmalloc(4 + len);
	hl_hold_frame_hdr(len, frame);
	memcpy(frame + 4, req, len);
	int ret = io_all(fd, frame, 4 + len, true, deadline);
	free(frame);
	return ret;
}

static int recv_frame(int fd, uint8_t **resp, size_t *rlen, int64_t deadline)
{
	uint8_t first[4096];
	ssize_t got;
	int ret;
	if ((got = io_once(fd, first, sizeof(first), false, deadline)) <= 0)
		return got == 0 ? -EPIPE : (int)got;
	if (got < 4 && (ret = io_all(fd, first + got, 4 - (size_t)got, false, deadline)) < 0)
		return ret;
	if (got < 4)
		got = 4;
	*rlen = hl_hold_frame_len(first);
	if (*rlen == 0 || (size_t)got - 4 > *rlen)
		return HL_EINVAL;
	*resp = xmalloc(*rlen);
	memcpy(*resp, first + 4, (size_t)got - 4);
	ret = io_all(fd, *resp + got - 4, *rlen - ((size_t)got - 4), false, deadline);
	if (ret < 0) {
		free(*resp);
		*resp = NULL;
	}
	sodium_memzero(first, sizeof(first)); /* a DH result */
	return ret;
}

/* A request on its way (ask_start), its answer to come (ask_finish): the
 * connection is the caller's meanwhile (k->mu held), so that chain/ours.c
 * stores one run's rows while the holder signs the next. */
struct call {
	enum hl_hold_type type;
	int error;                    /* of the sending */
	bool locked;                  /* k->mu, until the answer is read */
	int64_t deadline;
	uint8_t *answer;              /* in-process: made at once */
	size_t answer_len;
};

static void ask_start(hl_keys *k, const struct hl_hold_request *q, struct call *c)
{
	uint8_t *req;
	size_t len;
	memset(c, 0, sizeof(*c));
	c->type = q->type;
	c->deadline = mono_ms() + ANSWER_TIMEOUT_MS;
	if (k->public_only) {
		c->error = HL_ESTATE;
		return;
	}
	if ((c->error = hl_hold_request_encode(q, &req, &len)) < 0)
		return;
	pthread_mutex_lock(&k->mu);
	if (k->local) {
		hl_holder_answer(k->local, req, len, "this process", true, &c->answer,
				 &c->answer_len);
		pthread_mutex_unlock(&k->mu);
	} else {
		c->locked = true;
		c->error = send_frame(k->fd, req, len, c->deadline);
	}
	free(req);
}

/* The answer to C, parsed into A (*BUF holds its bytes: free it). */
static int ask_finish(hl_keys *k, struct call *c, struct hl_hold_response *a, uint8_t **buf)
{
	size_t rlen = c->answer_len;
	int ret = c->error;
	*buf = c->answer;
	if (c->locked) {
		if (ret == 0)
			ret = recv_frame(k->fd, buf, &rlen, c->deadline);
		pthread_mutex_unlock(&k->mu);
	}
	if (ret == 0)
		ret = hl_hold_response_parse(*buf, rlen, c->type, a);
	if (ret == 0 && a->status != HL_HOLD_OK && a->status != HL_HOLD_REFUSED)
		ret = a->status == HL_HOLD_MALFORMED ? HL_EINVAL : HL_ECRYPTO;
	if (ret < 0 && ret != HL_EINVAL && ret != HL_ECRYPTO && ret != HL_ESTATE)
		hl_error("the key holder did not answer a %s request: %s", hl_hold_type_name(c->type),
			 hl_strerror(ret));
	return ret;
}

/* Sends Q and parses the answer into A (*BUF holds its bytes: free it). */
static int ask(hl_keys *k, const struct hl_hold_request *q, struct hl_hold_response *a,
	       uint8_t **buf)
{
	struct call c;
	ask_start(k, q, &c);
	return ask_finish(k, &c, a, buf);
}

/* ---- the signer face ---- */

static int face_sign(void *user, const char *context, const uint8_t *msg, size_t len,
		     uint8_t sig[static HL_SIGNER_SIG_LEN])
{
	struct hl_hold_request q = { .type = HL_HOLD_SEAL };
	struct hl_hold_response a;
	uint8_t *buf;
	/* The only bytes the face signs: a record seal (context, NUL, its
	 * hash).  Items go through hl_keys_sign_run. */
	if (strcmp(context, HL_HOLD_SEAL_CTX) != 0 || len != sizeof(HL_HOLD_SEAL_CTX) + 32)
		return HL_EINVAL;
	memcpy(q.u.seal_hash, msg + sizeof(HL_HOLD_SEAL_CTX), 32);
	int ret = ask(user, &q, &a, &buf);
	if (ret == 0 && a.status != HL_HOLD_OK)
		ret = HL_EAUTH;
	if (ret == 0)
		memcpy(sig, a.u.seal_sig, HL_SIGNER_SIG_LEN);
	free(buf);
	return ret;
}

static int ask_dh(hl_keys *user, const uint8_t their_pub[static HL_KEY_LEN],
		  uint8_t out[static HL_KEY_LEN]);
static void refused(hl_keys *k, const struct hl_hold_response *a, char *why, size_t whylen);

/* Under k->mu: PUB's slot (its entry, or the empty one where it goes). */
static struct memo *memo_slot(hl_keys *k, const uint8_t pub[static 32])
{
	uint64_t h;
	memcpy(&h, pub, sizeof(h));
	for (size_t i = h & (k->memo_cap - 1);; i = (i + 1) & (k->memo_cap - 1))
		if (!k->memo[i].used || memcmp(k->memo[i].pub, pub, 32) == 0)
			return &k->memo[i];
}

static bool memo_get(hl_keys *k, const uint8_t pub[static 32], uint8_t out[static 32])
{
	pthread_mutex_lock(&k->mu);
	struct memo *m = k->memo ? memo_slot(k, pub) : NULL;
	bool hit = m && m->used;
	if (hit)
		memcpy(out, m->out, 32);
	pthread_mutex_unlock(&k->mu);
	return hit;
}

/* Under k->mu: room for one more, at most half full. */
static bool memo_room(hl_keys *k)
{
	if (k->memo && 2 * (k->memo_n + 1) <= k->memo_cap)
		return true;
	size_t cap = k->memo_cap ? 2 * k->memo_cap : 256;
	if (cap > 2 * MEMO_MAX)
		return false;
	struct memo *old = k->memo, *m = sodium_malloc(cap * sizeof(*m));
	if (!m)
		return false;
	sodium_memzero(m, cap * sizeof(*m));
	size_t old_cap = k->memo_cap;
	k->memo = m;
	k->memo_cap = cap;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].used)
			*memo_slot(k, old[i].pub) = old[i];
	if (old)
		sodium_free(old); /* wipes */
	return true;
}

static void memo_put(hl_keys *k, const uint8_t pub[static 32], const uint8_t out[static 32])
{
	pthread_mutex_lock(&k->mu);
	if (memo_room(k)) {
		struct memo *m = memo_slot(k, pub);
		if (!m->used)
			k->memo_n++;
		m->used = true;
		memcpy(m->pub, pub, 32);
		memcpy(m->out, out, 32);
	}
	pthread_mutex_unlock(&k->mu);
}

void hl_keys_remember_statics(hl_keys *k, bool (*is_static)(void *user, const uint8_t pub[static 32]),
			      void *user)
{
	k->is_static = is_static;
	k->static_user = user;
}

static int face_dh(void *user, const uint8_t their_pub[static HL_KEY_LEN],
		   uint8_t out[static HL_KEY_LEN])
{
	hl_keys *k = user;
	bool remember = k->is_static && k->is_static(k->static_user, their_pub);
	if (remember && memo_get(k, their_pub, out))
		return 0;
	int ret = ask_dh(k, their_pub, out);
	if (ret == 0 && remember)
		memo_put(k, their_pub, out);
	return ret;
}

/* A DH of TYPE (HL_HOLD_DH, HL_HOLD_DH_PREVIOUS) with THEIR_PUB. */
static int ask_dh_of(hl_keys *user, uint8_t type, const uint8_t their_pub[static HL_KEY_LEN],
		     uint8_t out[static HL_KEY_LEN])
{
	struct hl_hold_request q = { .type = type };
	struct hl_hold_response a;
	uint8_t *buf = NULL;
	memcpy(q.u.dh_pub, their_pub, 32);
	int ret = ask(user, &q, &a, &buf);
	if (ret == 0)
		memcpy(out, a.u.dh, HL_KEY_LEN);
	if (buf) {
		sodium_memzero(buf, 3 + 32);
		free(buf);
	}
	sodium_memzero(&a, sizeof(a));
	return ret;
}

static int ask_dh(hl_keys *user, const uint8_t their_pub[static HL_KEY_LEN],
		  uint8_t out[static HL_KEY_LEN])
{
	return ask_dh_of(user, HL_HOLD_DH, their_pub, out);
}

/* The previous static key's DH (after a rotation, for a peer that still
 * pins it): not remembered, it serves only until the peer takes the
 * rotation. */
static int face_dh_previous(void *user, const uint8_t their_pub[static HL_KEY_LEN],
			    uint8_t out[static HL_KEY_LEN])
{
	return ask_dh_of(user, HL_HOLD_DH_PREVIOUS, their_pub, out);
}

/* Every DH remembered is with the static key before the rotation. */
static void memo_forget(hl_keys *k)
{
	pthread_mutex_lock(&k->mu);
	if (k->memo)
		sodium_memzero(k->memo, k->memo_cap * sizeof(*k->memo));
	k->memo_n = 0;
	pthread_mutex_unlock(&k->mu);
}

static int face_rotate(void *user, struct hl_signer_public *now)
{
	hl_keys *k = user;
	struct hl_hold_request q = { .type = HL_HOLD_ROTATE };
	struct hl_hold_response a;
	uint8_t *buf = NULL;
	char why[HL_KEYS_ERR_LEN];
	int ret = ask(k, &q, &a, &buf);
	if (ret == 0 && a.status == HL_HOLD_REFUSED) {
		refused(k, &a, why, sizeof(why));
		ret = HL_EAUTH;
	}
	if (ret == HL_ECRYPTO && buf)
		hl_error("the key holder did not rotate the keys: %.*s", (int)a.text.len,
			 (const char *)a.text.p);
	if (ret == 0)
		*now = a.u.keys;
	/* Whatever the answer, the static key may have changed (a rotation
	 * whose answer was lost): remembered DHs go. */
	memo_forget(k);
	free(buf);
	return ret;
}

static const struct hl_signer_ops face_ops = { face_sign, face_dh, face_dh_previous,
					       face_rotate };

hl_keys *hl_keys_of(const hl_signer *s)
{
	return hl_signer_remote_user(s, &face_ops);
}

const hl_signer *hl_keys_signer(const hl_keys *k)
{
	return k->face;
}

bool hl_keys_remote(const hl_keys *k)
{
	return k->fd >= 0;
}

void hl_keys_on_refusal(hl_keys *k, void (*fn)(void *user, const char *text), void *user)
{
	k->on_refusal = fn;
	k->refusal_user = user;
}

/* ---- opening ---- */

static hl_keys *keys_new(void)
{
	hl_keys *k = xcalloc(1, sizeof(*k));
	k->fd = -1;
	pthread_mutex_init(&k->mu, NULL);
	return k;
}

void hl_keys_free(hl_keys *k)
{
	if (!k)
		return;
	hl_signer_free(k->face);
	hl_holder_free(k->local);
	hl_holder_marks_free(k->marks);
	if (k->fd >= 0)
		close(k->fd);
	/* Our own holder ends when its socketpair does (its journal is
	 * synced before every answer): reaped, so that its lock is free
	 * when the command returns. */
	while (k->pid > 0 && waitpid(k->pid, NULL, 0) < 0 && errno == EINTR)
		;
	pthread_mutex_destroy(&k->mu);
	if (k->memo)
		sodium_free(k->memo); /* wipes */
	free(k->known);
	free(k);
}

/* The face, from the holder's answer to the KEYS request C. */
static int learn_keys_answer(hl_keys *k, struct call *c, char err[static HL_KEYS_ERR_LEN])
{
	struct hl_hold_response a;
	uint8_t *buf;
	int ret = ask_finish(k, c, &a, &buf);
	if (ret == 0 && a.status == HL_HOLD_OK)
		k->face = hl_signer_remote(&face_ops, k, &a.u.keys);
	else
		snprintf(err, HL_KEYS_ERR_LEN, "the key holder did not give its public keys: %s",
			 hl_strerror(ret < 0 ? ret : HL_EINVAL));
	free(buf);
	return k->face ? 0 : (ret < 0 ? ret : HL_EINVAL);
}

static int learn_keys(hl_keys *k, char err[static HL_KEYS_ERR_LEN])
{
	struct hl_hold_request q = { .type = HL_HOLD_KEYS };
	struct call c;
	ask_start(k, &q, &c);
	return learn_keys_answer(k, &c, err);
}

int hl_keys_over_fd(int fd, hl_keys **out, char err[static HL_KEYS_ERR_LEN])
{
	hl_keys *k = keys_new();
	k->fd = fd;
	int ret = learn_keys(k, err);
	if (ret < 0) {
		hl_keys_free(k);
		k = NULL;
	}
	*out = k;
	return ret;
}

hl_keys *hl_keys_in_memory(hl_signer *signer)
{
	hl_keys *k = keys_new();
	hl_heads *heads = NULL;
	char err[HL_KEYS_ERR_LEN];
	(void)hl_heads_open(NULL, &heads, err, sizeof(err)); /* cannot fail in memory */
	struct hl_signer_public pub;
	hl_signer_public(signer, &pub);
	k->local = hl_holder_new(signer, heads);
	k->face = hl_signer_remote(&face_ops, k, &pub);
	return k;
}

/* A connected socket to DIRFD's key holder, or -1 when none answers. */
static int connect_holder(int dirfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = snprintf(sa.sun_path, sizeof(sa.sun_path), "/proc/self/fd/%d/%s", dirfd,
			 HL_HOLDER_SOCKET);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -1;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	if (fd >= 0)
		close(fd);
	return -1;
}

/* Our own holder, which never answered: gone, and reaped. */
static void stop_own(hl_keys *k)
{
	if (k->pid > 0) {
		kill(k->pid, SIGKILL);
		while (waitpid(k->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (k->fd >= 0)
		close(k->fd);
	k->fd = -1;
	k->pid = 0;
}

/* Until FD has something to read (an answer, or the holder's end), or
 * MS have passed: true for the former. */
static bool readable_within(int fd, int ms)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	int r = poll(&p, 1, ms);
	return r > 0 || (r < 0 && errno != EINTR);
}

/* FD, readable, has ended rather than brought an answer: the holder
 * exited before answering (it could not start). */
static bool ended(int fd)
{
	uint8_t b;
	ssize_t n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
	return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* No holder listens: this command starts its own (holder/proc.h), which
 * answers once it holds keyholder.lock — at once, or when another
 * command's holder has finished.  Meanwhile a daemon may start and its
 * holder take the lock first: its socket is then used instead. */
static int open_own(hl_keys *k, const char *dir, int dirfd, char err[static HL_KEYS_ERR_LEN])
{
	struct hl_hold_request q = { .type = HL_HOLD_KEYS };
	struct call c;
	int sock = -1, ret;
	if ((ret = hl_holder_spawn_own(dir, &k->fd, &k->pid, err, HL_KEYS_ERR_LEN)) < 0)
		return ret;
	int64_t deadline = mono_ms() + LOCK_WAIT_MS;
	ask_start(k, &q, &c);
	while (c.error == 0 && !readable_within(k->fd, 20) && mono_ms() < deadline)
		if ((sock = connect_holder(dirfd)) >= 0)
			break;
	bool answered = c.error == 0 && sock < 0 && readable_within(k->fd, 0);
	if (answered && !ended(k->fd))
		return learn_keys_answer(k, &c, err);
	pthread_mutex_unlock(&k->mu); /* the call is dropped with the holder */
	int status = 0;
	pid_t pid = k->pid;
	if (answered && pid > 0) { /* its end closed: it is exiting, or was killed */
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		k->pid = 0;
	}
	stop_own(k);
	if (sock >= 0) {
		k->fd = sock;
		return learn_keys(k, err);
	}
	if (answered && WIFSIGNALED(status))
		snprintf(err, HL_KEYS_ERR_LEN, "the key holder (pid %ld) was killed by signal %d "
			 "before it answered", (long)pid, WTERMSIG(status));
	else if (answered) /* it said why on stderr, as the daemon's holder does in the log */
		snprintf(err, HL_KEYS_ERR_LEN, "the key holder could not start (its reason is "
			 "the line above)");
	else
		snprintf(err, HL_KEYS_ERR_LEN, "cannot reach the station's keys: %s/%s stayed "
			 "locked (%s)", dir, HL_HOLDER_LOCK,
			 hl_strerror(c.error < 0 ? c.error : HL_ETIMEOUT));
	return answered ? HL_ESTATE : c.error < 0 ? c.error : HL_ETIMEOUT;
}

int hl_keys_open(const char *dir, enum hl_keys_need need, hl_keys **out,
		 char err[static HL_KEYS_ERR_LEN])
{
	hl_keys *k = keys_new();
	int ret;
	int dirfd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	*out = NULL;
	if (dirfd < 0) {
		snprintf(err, HL_KEYS_ERR_LEN, "cannot open %s: %s", dir, strerror(errno));
		hl_keys_free(k);
		return -errno;
	}
	if ((k->fd = connect_holder(dirfd)) >= 0)
		ret = learn_keys(k, err);
	else
		ret = open_own(k, dir, dirfd, err);
	close(dirfd);
	if (ret < 0) {
		hl_keys_free(k);
		return ret;
	}
	k->public_only = need == HL_KEYS_PUBLIC;
	*out = k;
	return 0;
}

int hl_keys_rotate(hl_keys *k)
{
	return hl_signer_rotate(k->face, NULL, 0);
}

/* ---- items and what the holder kept of them ---- */

/* Under k->mu. */
static struct known *known_of(hl_keys *k, const uint8_t peer[static 32], bool add)
{
	for (size_t i = 0; i < k->nknown; i++)
		if (memcmp(k->known[i].peer, peer, 32) == 0)
			return &k->known[i];
	if (!add)
		return NULL;
	k->known = xrealloc(k->known, (k->nknown + 1) * sizeof(*k->known));
	memcpy(k->known[k->nknown].peer, peer, 32);
	return &k->known[k->nknown++];
}

/* SEQ: the head now (UINT64_MAX: unknown). */
static void know(hl_keys *k, const uint8_t peer[static 32], uint64_t seq)
{
	pthread_mutex_lock(&k->mu);
	known_of(k, peer, true)->seq = seq;
	pthread_mutex_unlock(&k->mu);
}

void hl_keys_know_head(hl_keys *k, const uint8_t peer[static 32], uint64_t seq)
{
	know(k, peer, seq);
}

bool hl_keys_head_is(hl_keys *k, const uint8_t peer[static 32], uint64_t seq)
{
	pthread_mutex_lock(&k->mu);
	const struct known *x = known_of(k, peer, false);
	bool is = x && x->seq == seq;
	pthread_mutex_unlock(&k->mu);
	return is;
}

static void refused(hl_keys *k, const struct hl_hold_response *a, char *why, size_t whylen)
{
	char text[HL_HOLD_TEXT_MAX + 1];
	size_t n = a->text.len < HL_HOLD_TEXT_MAX ? a->text.len : HL_HOLD_TEXT_MAX;
	memcpy(text, a->text.p, n);
	text[n] = '\0';
	snprintf(why, whylen, "the key holder refused to sign: %s", text);
	hl_error("%s", why);
	if (k->on_refusal)
		k->on_refusal(k->refusal_user, why);
}

struct hl_keys_call {
	struct call c;
	uint8_t peer[32];
	uint64_t last;                /* the run's last seq */
	size_t n;
	struct hl_item **it;          /* the run's items: rotations get their new_sig */
};

/* The request for the run IT[0..N): each item unsigned, every prev after
 * the first zeroed (the holder fills them). */
static int sign_request(struct hl_item *const *it, size_t n, const struct hl_hold_blob *notes,
			struct hl_hold_request *q, uint8_t **encs)
{
	size_t cap = n * 512 + HL_ITEM_MAX, used = 0;
	uint8_t *enc = xmalloc(cap);
	uint8_t prev[HL_HASH_LEN];
	int ret = 0;
	q->type = HL_HOLD_SIGN;
	q->u.sign.n = (uint16_t)n;
	for (size_t i = 0; i < n && ret == 0; i++) {
		struct hl_item *x = it[i];
		size_t len;
		memcpy(prev, x->prev, HL_HASH_LEN);
		if (i > 0)
			memset(x->prev, 0, HL_HASH_LEN);
		memset(x->sig, 0, HL_SIG_LEN);
		if (x->kind == HL_ITEM_ROTATION) /* the holder makes it */
			memset(x->u.rot.new_sig, 0, HL_SIG_LEN);
		while (used + HL_ITEM_MAX > cap)
			enc = xrealloc(enc, cap *= 2);
		ret = hl_item_encode(x, enc + used, HL_ITEM_MAX, &len);
		memcpy(x->prev, prev, HL_HASH_LEN);
		q->u.sign.e[i].item.len = ret == 0 ? len : 0;
		used += q->u.sign.e[i].item.len;
		if (notes)
			q->u.sign.e[i].note = notes[i];
	}
	/* the items' places, once ENC has stopped moving */
	for (size_t i = 0, off = 0; ret == 0 && i < n; off += q->u.sign.e[i++].item.len)
		q->u.sign.e[i].item.p = enc + off;
	*encs = enc;
	return ret;
}

int hl_keys_sign_start(hl_keys *k, struct hl_item *const *it, size_t n,
		       const struct hl_hold_blob *notes, struct hl_keys_call **out)
{
	struct hl_keys_call *call = xcalloc(1, sizeof(*call));
	struct hl_hold_request *q = xcalloc(1, sizeof(*q));
	uint8_t *enc = NULL;
	int ret = n == 0 || n > HL_HOLD_RUN_MAX ? HL_ETOOBIG : sign_request(it, n, notes, q, &enc);
	if (ret == 0) {
		ask_start(k, q, &call->c);
		memcpy(call->peer, it[0]->counterpart, 32);
		call->last = it[n - 1]->seq;
		call->n = n;
		call->it = xmalloc(n * sizeof(*call->it));
		memcpy(call->it, it, n * sizeof(*call->it));
	} else {
		call->c.error = ret;
	}
	free(enc);
	free(q);
	*out = call;
	return call->c.error;
}

/* The new_sig the holder made for each rotation item of the run, in
 * order: as many as there are. */
static int give_new_sigs(struct hl_keys_call *call, const struct hl_hold_response *a)
{
	size_t m = 0;
	for (size_t i = 0; i < call->n; i++)
		if (call->it[i]->kind == HL_ITEM_ROTATION) {
			if (m == a->u.sign.m)
				return HL_EINVAL;
			memcpy(call->it[i]->u.rot.new_sig, a->u.sign.new_sigs + m++ * 64, 64);
		}
	return m == a->u.sign.m ? 0 : HL_EINVAL;
}

int hl_keys_sign_finish(hl_keys *k, struct hl_keys_call *call, uint8_t *sigs, char *why,
			size_t whylen)
{
	struct hl_hold_response *a = xmalloc(sizeof(*a));
	uint8_t *buf = NULL;
	int ret = ask_finish(k, &call->c, a, &buf);
	snprintf(why, whylen, "%s", "");
	if (ret == 0 && a->status == HL_HOLD_REFUSED) {
		refused(k, a, why, whylen);
		ret = HL_ESTATE;
	} else if (ret == 0 && (a->u.sign.n != call->n || give_new_sigs(call, a) < 0)) {
		ret = HL_EINVAL;
	} else if (ret == 0) {
		memcpy(sigs, a->u.sign.sigs, call->n * 64);
		k->unsynced = true;
		/* the holder stored its appends before this answer left */
		if (k->marks)
			k->need = atomic_load_explicit(&k->marks->written, memory_order_acquire);
	}
	/* where the holder's head is now, or not known */
	if (call->n)
		know(k, call->peer, ret == 0 ? call->last : UINT64_MAX);
	free(buf);
	free(a);
	free(call->it);
	free(call);
	/* A command's handle: durable before the caller goes on. */
	if (ret == 0 && !k->defer_sync)
		ret = hl_keys_sync(k);
	return ret;
}

void hl_keys_defer_sync(hl_keys *k)
{
	k->defer_sync = true;
}

void hl_keys_share_marks(hl_keys *k, struct hl_holder_marks *m)
{
	hl_holder_marks_free(k->marks);
	k->marks = m;
}

void hl_keys_ride_flush(hl_keys *k)
{
	k->ride = true;
}

void hl_keys_flush_begins(hl_keys *k)
{
	if (!k->marks || !k->ride || !k->unsynced)
		return;
	/* The holder pushes right after its answer (tens of microseconds):
	 * wait for it a little, on the page's futex word, so that the flush
	 * about to begin covers it; past PUSH_WAIT_US, hl_keys_sync asks. */
	uint64_t start = hl_mono_us();
	for (;;) {
		uint32_t moved = atomic_load_explicit(&k->marks->moved, memory_order_acquire);
		k->disk_seen = atomic_load_explicit(&k->marks->on_disk, memory_order_acquire);
		uint64_t waited = hl_mono_us() - start;
		if (k->disk_seen >= k->need || waited >= PUSH_WAIT_US)
			return;
		uint64_t left = PUSH_WAIT_US - waited;
		struct timespec ts = { 0, (long)(left * 1000) };
		(void)syscall(SYS_futex, &k->marks->moved, FUTEX_WAIT, moved, &ts, NULL, 0);
	}
}

void hl_keys_sync_counts(const hl_keys *k, uint64_t *asked, uint64_t *spared)
{
	*asked = k->syncs_asked;
	*spared = k->syncs_spared;
}

int hl_keys_sync(hl_keys *k)
{
	struct hl_hold_request q = { .type = HL_HOLD_SYNC };
	struct hl_hold_response a;
	uint8_t *buf = NULL;
	uint64_t seen = k->disk_seen;
	k->disk_seen = 0; /* good for the one fdatasync that began after it */
	if (!k->unsynced)
		return 0;
	/* The holder's page says so already: no round trip (holder/proc.h) —
	 * durable, or on the disk before the owner's own fdatasync began */
	if (k->marks &&
	    (atomic_load_explicit(&k->marks->durable, memory_order_acquire) >= k->need ||
	     (k->ride && seen >= k->need))) {
		k->unsynced = false;
		k->syncs_spared++;
		return 0;
	}
	k->syncs_asked++;
	int ret = ask(k, &q, &a, &buf);
	if (ret == 0 && a.status != HL_HOLD_OK)
		ret = HL_ECRYPTO;
	free(buf);
	if (ret == 0)
		k->unsynced = false;
	else
		hl_error("the key holder's journal is not known to be durable (%s): nothing it "
			 "signed since may leave the station", hl_strerror(ret));
	return ret;
}

int hl_keys_sign_run(hl_keys *k, struct hl_item *const *it, size_t n,
		     const struct hl_hold_blob *notes, uint8_t *sigs, char *why, size_t whylen)
{
	struct hl_keys_call *call;
	hl_keys_sign_start(k, it, n, notes, &call);
	return hl_keys_sign_finish(k, call, sigs, why, whylen);
}

int hl_keys_pending(hl_keys *k, const uint8_t peer[static 32], uint64_t after,
		    uint64_t *head_seq, hl_keys_pending_fn *fn, void *arg)
{
	struct hl_hold_request q = { .type = HL_HOLD_PENDING };
	struct hl_hold_response *a = xmalloc(sizeof(*a));
	int ret;
	memcpy(q.u.pending.peer, peer, 32);
	q.u.pending.after = after;
	*head_seq = 0;
	for (;;) {
		uint8_t *buf = NULL;
		if ((ret = ask(k, &q, a, &buf)) == 0 && a->status != HL_HOLD_OK)
			ret = HL_EINVAL;
		if (ret == 0)
			*head_seq = a->u.pending.head_seq;
		for (size_t i = 0; ret == 0 && i < a->u.pending.n; i++)
			ret = fn(arg, a->u.pending.e[i].item.p, a->u.pending.e[i].item.len,
				 a->u.pending.e[i].note.p, a->u.pending.e[i].note.len);
		/* An answer holds what fits a frame: ask on from the last one. */
		size_t got = ret == 0 ? a->u.pending.n : 0;
		free(buf);
		if (got == 0 || q.u.pending.after + got >= *head_seq)
			break;
		q.u.pending.after += got;
	}
	free(a);
	if (ret < 0)
		know(k, peer, UINT64_MAX);
	return ret;
}
