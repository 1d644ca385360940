/* test_voice_item.c — the call item (msg/callitem.c through msg/item.c):
 * a signed round trip, and the values the format forbids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "msg/item.h"
#include "util/err.h"

static hl_signer *sk;
static uint8_t pk[32], peer[32];

static void call_item(struct hl_item *it)
{
	memset(it, 0, sizeof(*it));
	it->kind = HL_ITEM_CALL;
	memcpy(it->author, pk, 32);
	memcpy(it->counterpart, peer, 32);
	it->seq = 5;
	memset(it->prev, 0xab, HL_HASH_LEN);
	it->time_ms = 1700000000000;
	struct hl_item_call *c = &it->u.call;
	memset(c->id, 0x11, sizeof(c->id));
	c->role = HL_CALL_ROLE_CALLEE;
	c->precedence = HL_PREC_FLASH;
	c->rang_at = 1700000000000;
	c->answered_at = c->rang_at + 2000;
	c->ended_at = c->answered_at + 60000;
	c->reason = 4;
	c->ended_by = 1;
	c->audio_size = 276000;
	memset(c->audio_hash, 0x5a, 32);
	memset(c->recording, 0x77, 16);
	c->packets_sent = 3000;
	c->packets_received = 2990;
	c->packets_lost = 10;
	c->concealed_samples = 3200;
	c->fec_recovered = 8;
	c->jitter_us = 1500;
	c->buffer_delay_us = 30000;
	c->first_audio_ms = 70;
	c->paths = HL_CALL_PATH_UDP | HL_CALL_PATH_LINK;
}

static void test_roundtrip(void **state)
{
	(void)state;
	struct hl_item it, back;
	uint8_t buf[HL_ITEM_MAX], again[HL_ITEM_MAX];
	size_t len, len2;
	call_item(&it);
	assert_int_equal(hl_item_encode_sign(&it, sk, buf, sizeof(buf), &len), 0);
	assert_memory_equal(buf, HL_CTX_CALL, sizeof(HL_CTX_CALL));
	assert_int_equal(hl_item_open(buf, len, pk, peer, &back), 0);
	assert_int_equal(back.kind, HL_ITEM_CALL);
	assert_memory_equal(&back.u.call, &it.u.call, sizeof(it.u.call));
	assert_int_equal(hl_item_encode(&back, again, sizeof(again), &len2), 0);
	assert_int_equal(len, len2);
	assert_memory_equal(buf, again, len);
	assert_string_equal(hl_item_kind_name(HL_ITEM_CALL), "call");
	/* a byte changed anywhere: the signature fails, or it does not decode */
	for (size_t i = 0; i < len; i += 7) {
		buf[i] ^= 0x20;
		assert_true(hl_item_open(buf, len, pk, peer, &back) < 0);
		buf[i] ^= 0x20;
	}
	/* cut short, or one byte too many */
	assert_true(hl_item_decode(buf, len - 1, &back) < 0);
	buf[len] = 0;
	assert_true(hl_item_decode(buf, len + 1, &back) < 0);
}

static void test_forbidden_values(void **state)
{
	(void)state;
	struct hl_item it;
	uint8_t buf[HL_ITEM_MAX];
	size_t len;
#define REFUSED(stmt) do { call_item(&it); stmt; \
	assert_int_equal(hl_item_encode_sign(&it, sk, buf, sizeof(buf), &len), HL_EINVAL); } while (0)
	REFUSED(it.u.call.role = 2);
	REFUSED(it.u.call.precedence = 4);
	REFUSED(it.u.call.reason = 0);
	REFUSED(it.u.call.reason = 7);
	REFUSED(it.u.call.ended_by = 2);
	REFUSED(it.u.call.paths = 4);
	REFUSED(it.u.call.ended_at = it.u.call.rang_at - 1);
	REFUSED(it.u.call.answered_at = it.u.call.ended_at + 1);
	/* never answered, yet audio or a recording */
	REFUSED(it.u.call.answered_at = 0);
	REFUSED((it.u.call.answered_at = 0, memset(it.u.call.audio_hash, 0, 32), it.u.call.audio_size = 0));
	call_item(&it);
	it.u.call.answered_at = 0;
	it.u.call.audio_size = 0;
	memset(it.u.call.audio_hash, 0, 32);
	memset(it.u.call.recording, 0, 16);
	assert_int_equal(hl_item_encode_sign(&it, sk, buf, sizeof(buf), &len), 0);
#undef REFUSED
}

int main(void)
{
	if (sodium_init() < 0)
		return 1;
	if (hl_signer_generate(&sk) < 0)
		return 1;
	memcpy(pk, hl_signer_sign_pk(sk), 32);
	randombytes_buf(peer, sizeof(peer));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_forbidden_values),
	};
	int failed = cmocka_run_group_tests(tests, NULL, NULL);
	hl_signer_free(sk);
	return failed;
}
