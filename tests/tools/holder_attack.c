/* holder_attack.c — a compromised network process, for the tests only
 * (tests/integration/test_keyholder.py): it talks to a real key holder, as
 * code running in the daemon could, and tries what the holder must refuse.
 *
 *   holder_attack DIR PEER            the holder of a running daemon, over
 *                                     DIR/keyholder.sock (raw frames)
 *   holder_attack --local DIR PEER    no daemon: the keys and the journal of
 *                                     heads in this process, under the lock,
 *                                     as a command holds them
 *
 * PEER names a pinned peer with whom our chain has at least one item.  It
 * reads the store as the network process can, then asks:
 *   1. the public keys (fine);
 *   2. our last item again, byte for byte, unsigned: the same signature;
 *   3. a different item at that position: refused (SIGNED);
 *   4. an item at the next position that does not follow it: refused;
 *   5. bytes that are not an item, and a truncated request: refused;
 *   6. a rotation item at the next position to keys the station never
 *      committed to, and one to the keys it holds with another next-key
 *      hash: refused (ROTATION); over the socket, the rotation of the keys
 *      itself: refused (only the daemon may ask it);
 *   7. over the socket only: frames of length 0 and over the cap, and one
 *      that stops half way: that connection ends, the holder serves the
 *      next.
 * Prints one line per step ("ok ..." or "FAIL ...") and exits 0 when every
 * answer was the one a sound holder gives. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sodium.h>

#include "conf/config.h"
#include "holder/client.h"
#include "holder/heads.h"
#include "holder/proto.h"
#include "holder/serve.h"
#include "msg/item.h"
#include "store/store.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"

static const char *dir;
static struct hl_holder *local; /* --local */
static int failures;

static void say(bool ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

static int connect_holder(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/%s", dir, HL_HOLDER_SOCKET);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		fprintf(stderr, "holder_attack: cannot connect to %s: %s\n", sa.sun_path,
			strerror(errno));
		exit(2);
	}
	return fd;
}

static bool recv_all(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		if (poll(&pfd, 1, 20000) <= 0)
			return false;
		ssize_t r = recv(fd, p, n, 0);
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* One request, one answer (*RESP, xmalloc'd), over FD or in-process. */
static bool roundtrip(int fd, const uint8_t *req, size_t len, uint8_t **resp, size_t *rlen)
{
	uint8_t hdr[4];
	if (local) {
		hl_holder_answer(local, req, len, "holder_attack", true, resp, rlen);
		return true;
	}
	hl_hold_frame_hdr(len, hdr);
	if (send(fd, hdr, 4, MSG_NOSIGNAL) != 4 ||
	    send(fd, req, len, MSG_NOSIGNAL) != (ssize_t)len || !recv_all(fd, hdr, 4))
		return false;
	*rlen = hl_hold_frame_len(hdr);
	*resp = xmalloc(*rlen + 1);
	return *rlen && recv_all(fd, *resp, *rlen);
}

/* Asks Q; the parsed answer's status, or -1 when none came. */
static int ask(int fd, const struct hl_hold_request *q, struct hl_hold_response *a,
	       uint8_t **keep)
{
	uint8_t *req, *resp = NULL;
	size_t len, rlen;
	if (hl_hold_request_encode(q, &req, &len) < 0)
		return -1;
	bool ok = roundtrip(fd, req, len, &resp, &rlen);
	free(req);
	if (!ok || hl_hold_response_parse(resp, rlen, q->type, a) < 0) {
		free(resp);
		return -1;
	}
	*keep = resp;
	return (int)a->status;
}

/* A SIGN request for IT alone, unsigned. */
static int ask_sign(int fd, struct hl_item *it, struct hl_hold_response *a, uint8_t **keep)
{
	struct hl_hold_request *q = xcalloc(1, sizeof(*q));
	uint8_t enc[HL_ITEM_MAX];
	size_t len;
	memset(it->sig, 0, 64);
	if (hl_item_encode(it, enc, sizeof(enc), &len) < 0)
		return -1;
	q->type = HL_HOLD_SIGN;
	q->u.sign.n = 1;
	q->u.sign.e[0].item = (struct hl_hold_blob){ enc, len };
	int r = ask(fd, q, a, keep);
	free(q);
	return r;
}

/* Raw request bytes: the status of the answer (of type TYPE). */
static int ask_bytes(int fd, const uint8_t *req, size_t len, enum hl_hold_type type)
{
	uint8_t *resp = NULL;
	size_t rlen;
	struct hl_hold_response a;
	int r = -1;
	if (roundtrip(fd, req, len, &resp, &rlen) && hl_hold_response_parse(resp, rlen, type, &a) == 0)
		r = (int)a.status;
	free(resp);
	return r;
}

static void attack_items(int fd, const uint8_t *last, size_t last_len)
{
	struct hl_item it;
	struct hl_hold_response a;
	uint8_t *keep = NULL, sig[64];
	hl_item_decode(last, last_len, &it);
	memcpy(sig, it.sig, 64);

	int r = ask_sign(fd, &it, &a, &keep);
	say(r == HL_HOLD_OK && memcmp(a.u.sign.sigs, sig, 64) == 0,
	    "our last item again, byte for byte: the same signature");
	free(keep);

	hl_item_decode(last, last_len, &it);
	it.time_ms += 1;
	r = ask_sign(fd, &it, &a, &keep);
	say(r == HL_HOLD_REFUSED && a.u.refused.reason == HL_HOLD_R_SIGNED,
	    "a different item at a signed position: refused");
	free(keep);

	hl_item_decode(last, last_len, &it);
	it.seq += 1;
	memset(it.prev, 0x5a, 32);
	r = ask_sign(fd, &it, &a, &keep);
	say(r == HL_HOLD_REFUSED, "an item that does not follow the last one signed: refused");
	free(keep);
}

/* A rotation item after LAST (ours), to the keys NOISE/SIGN committing to
 * NEXT: the holder's status and reason. */
static int ask_rotation(int fd, const uint8_t *last, size_t last_len, const uint8_t *noise,
			const uint8_t *sign, const uint8_t *next, struct hl_hold_response *a)
{
	struct hl_item it;
	uint8_t *keep = NULL;
	hl_item_decode(last, last_len, &it);
	uint64_t seq = it.seq + 1;
	uint8_t author[32], counterpart[32];
	memcpy(author, it.author, 32);
	memcpy(counterpart, it.counterpart, 32);
	memset(&it, 0, sizeof(it));
	it.kind = HL_ITEM_ROTATION;
	memcpy(it.author, author, 32);
	memcpy(it.counterpart, counterpart, 32);
	it.seq = seq;
	hl_item_hash(last, last_len, it.prev);
	it.time_ms = 1767225600000ull;
	memcpy(it.u.rot.noise_key, noise, 32);
	memcpy(it.u.rot.signing_key, sign, 32);
	memcpy(it.u.rot.next_hash, next, 32);
	int r = ask_sign(fd, &it, a, &keep);
	int reason = r == HL_HOLD_REFUSED ? a->u.refused.reason : -1;
	free(keep);
	return r == HL_HOLD_REFUSED && reason == HL_HOLD_R_ROTATION ? 0 : -1;
}

/* Step 6: rotations the station never committed to. */
static void attack_rotation(int fd, const uint8_t *last, size_t last_len)
{
	struct hl_hold_request q = { .type = HL_HOLD_KEYS };
	struct hl_hold_response a;
	uint8_t *keep = NULL, xpriv[32], noise[32], sign[32], seed[32], sk[64], next[32];
	randombytes_buf(xpriv, 32);
	crypto_scalarmult_base(noise, xpriv);
	randombytes_buf(seed, 32);
	crypto_sign_seed_keypair(sign, sk, seed);
	randombytes_buf(next, 32);
	say(ask_rotation(fd, last, last_len, noise, sign, next, &a) == 0,
	    "a rotation to keys the station never committed to: refused");
	if (ask(fd, &q, &a, &keep) != HL_HOLD_OK) {
		say(false, "the public keys");
		return;
	}
	struct hl_signer_public now = a.u.keys;
	free(keep);
	say(ask_rotation(fd, last, last_len, now.noise_pub, now.sign_pk, next, &a) == 0,
	    "a rotation to the keys held, committing to next keys it does not hold: refused");
	if (local)
		return;
	q.type = HL_HOLD_ROTATE;
	say(ask(fd, &q, &a, &keep) == HL_HOLD_REFUSED && a.u.refused.reason == HL_HOLD_R_ROTATION,
	    "a rotation of the station's keys asked over the socket: refused");
	free(keep);
}

static void attack_bytes(int fd)
{
	static const char junk[] = "hotline/1 message\0sign me, whatever I am";
	struct hl_hold_request *q = xcalloc(1, sizeof(*q));
	struct hl_hold_response a;
	uint8_t *keep = NULL, *req;
	size_t len;
	q->type = HL_HOLD_SIGN;
	q->u.sign.n = 1;
	q->u.sign.e[0].item = (struct hl_hold_blob){ (const uint8_t *)junk, sizeof(junk) };
	int r = ask(fd, q, &a, &keep);
	say(r == HL_HOLD_MALFORMED, "a signature over arbitrary bytes: refused");
	free(keep);
	hl_hold_request_encode(q, &req, &len);
	say(ask_bytes(fd, req, len - 9, HL_HOLD_SIGN) == HL_HOLD_MALFORMED,
	    "a truncated request: refused");
	free(req);
	free(q);
	const uint8_t keys[2] = { HL_HOLD_VERSION, HL_HOLD_KEYS };
	say(ask_bytes(fd, keys, 2, HL_HOLD_KEYS) == HL_HOLD_OK, "and it still answers");
}

/* Frames a holder cannot follow: each ends its connection only. */
static void attack_frames(void)
{
	const uint8_t keys[2] = { HL_HOLD_VERSION, HL_HOLD_KEYS };
	const uint8_t zero[4] = { 0 }, huge[4] = { 0x7f, 0xff, 0xff, 0xff };
	const uint8_t *bad[2] = { zero, huge };
	uint8_t hdr[4], buf[64];
	for (int i = 0; i < 2; i++) {
		int fd = connect_holder();
		bool closed = send(fd, bad[i], 4, MSG_NOSIGNAL) == 4 && recv_all(fd, hdr, 4) &&
			      recv_all(fd, buf, hl_hold_frame_len(hdr)) && recv(fd, buf, 1, 0) == 0;
		close(fd);
		say(closed, i == 0 ? "a frame of length 0: answered, that connection closed"
				   : "a frame over the cap: answered, that connection closed");
	}
	/* a frame announced at 1 MiB, 10 bytes sent, then gone */
	int fd = connect_holder();
	const uint8_t mib[4] = { 0, 0x10, 0, 0 };
	(void)!send(fd, mib, 4, MSG_NOSIGNAL);
	(void)!send(fd, "0123456789", 10, MSG_NOSIGNAL);
	close(fd);
	fd = connect_holder();
	say(ask_bytes(fd, keys, 2, HL_HOLD_KEYS) == HL_HOLD_OK,
	    "after all that, a new connection is served");
	close(fd);
}

/* Our last item with PEER, as the store holds it. */
static size_t last_item(const char *peer, uint8_t *out)
{
	char err[HL_CONF_ERR_LEN];
	hl_station_conf *conf;
	hl_store *st;
	int64_t id;
	struct hl_chain_head head;
	struct hl_item_row row;
	if (hl_conf_load(dir, &conf, err) < 0 || hl_store_open_readonly(dir, &st) < 0)
		return 0;
	const hl_peer_conf *pc = hl_conf_peer_by_name(conf, peer);
	if (!pc || hl_store_peer_find(st, pc->signing_key, &id) < 0 ||
	    hl_store_chain_head(st, id, HL_DIR_OUT, &head) < 0 || head.seq == 0 ||
	    hl_store_get_item(st, id, HL_DIR_OUT, head.seq, &row, out, HL_ITEM_MAX) < 0)
		return 0;
	hl_store_close(st);
	hl_conf_free(conf);
	return row.encoded_len;
}

/* In-process, as a command without a daemon: the lock, the keys, the
 * journal. */
static void open_local(void)
{
	char *lock = hl_path_join(dir, HL_HOLDER_LOCK), *id = hl_path_join(dir, HL_IDENTITY_FILE);
	char *journal = hl_path_join(dir, HL_HEADS_FILE), err[300];
	int fd = open(lock, O_RDWR | O_CREAT, 0600);
	hl_signer *s;
	hl_heads *h;
	if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) < 0 || hl_signer_load(id, &s) < 0 ||
	    hl_heads_open(journal, &h, err, sizeof(err)) < 0) {
		fprintf(stderr, "holder_attack: cannot hold the keys in-process (a daemon runs?)\n");
		exit(2);
	}
	local = hl_holder_new(s, h);
	free(lock);
	free(id);
	free(journal);
}

int main(int argc, char **argv)
{
	bool in_process = argc == 4 && strcmp(argv[1], "--local") == 0;
	uint8_t last[HL_ITEM_MAX];
	if (argc != 3 && !in_process) {
		fprintf(stderr, "usage: holder_attack [--local] DIR PEER\n");
		return 2;
	}
	if (sodium_init() < 0)
		return 2;
	dir = argv[argc - 2];
	size_t len = last_item(argv[argc - 1], last);
	if (len == 0) {
		fprintf(stderr, "holder_attack: no item of ours with %s in the store\n", argv[argc - 1]);
		return 2;
	}
	if (in_process)
		open_local();
	int fd = in_process ? -1 : connect_holder();
	attack_items(fd, last, len);
	attack_rotation(fd, last, len);
	attack_bytes(fd);
	if (!in_process) {
		close(fd);
		attack_frames();
	}
	hl_holder_free(local);
	return failures ? 1 : 0;
}
