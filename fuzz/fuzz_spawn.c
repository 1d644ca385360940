/* fuzz_spawn.c — the spawner's messages (daemon/spawn_proto.c) on
 * arbitrary input: the requests are what a network process taken over
 * could send the unsandboxed spawner.
 *
 * Oracles: a decoded request keeps every rule of spawn_proto.h (a known op
 * and kind, a peer name hl_name_valid takes, only the alarm's variables,
 * each printable, a signal SIGTERM or SIGKILL); encoded again it is the
 * same bytes; a decoded reply or exit encodes back to the same bytes too. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/spawn_proto.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const uint8_t *data, size_t size)
{
	static struct hl_spawn_request r;
	static uint8_t again[HL_SPAWN_MSG_MAX];
	if (hl_spawn_request_decode(data, size, &r) < 0)
		return;
	CHECK(r.op >= HL_SPAWN_OP_SPAWN && r.op <= HL_SPAWN_OP_UNLINK_CONTROL);
	if (r.op == HL_SPAWN_OP_SPAWN) {
		CHECK(r.kind >= HL_SPAWN_PICKUP && r.kind <= HL_SPAWN_ALARM);
		CHECK(!(r.flags & ~HL_SPAWN_FLAGS_ALL));
		if (r.kind == HL_SPAWN_MAIL)
			CHECK(hl_name_valid(r.peer));
		CHECK(r.nenv <= HL_SPAWN_ENV_MAX);
		for (unsigned i = 0; i < r.nenv; i++)
			CHECK(strncmp(r.env[i], "HOTLINE_", 8) == 0 &&
			      hl_spawn_env_ok(r.env[i], strlen(r.env[i])));
	}
	if (r.op == HL_SPAWN_OP_KILL)
		CHECK(r.sig == SIGTERM || r.sig == SIGKILL);
	int n = hl_spawn_request_encode(&r, again, sizeof(again));
	CHECK(n == (int)size && memcmp(again, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hl_spawn_reply rp;
	struct hl_spawn_exit e;
	uint8_t again[HL_SPAWN_TEXT_MAX + 64];
	check_request(data, size);
	if (hl_spawn_reply_decode(data, size, &rp) == 0) {
		int n = hl_spawn_reply_encode(&rp, again, sizeof(again));
		CHECK(rp.status <= 0 && n == (int)size && memcmp(again, data, size) == 0);
	}
	if (hl_spawn_exit_decode(data, size, &e) == 0) {
		int n = hl_spawn_exit_encode(&e, again, sizeof(again));
		CHECK(n == (int)size && memcmp(again, data, size) == 0);
	}
	return 0;
}
