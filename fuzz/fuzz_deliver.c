/* fuzz/fuzz_deliver.c — libFuzzer target for the messages protocol's
 * decoders (wire/msgproto.c, msg/message.c): the first byte picks the
 * packet (ITEM, CHUNK, ACK, RESUME, REFUSE, content, CREDIT, STAGE,
 * STAGED, RECLAIM, RETURN); whatever decodes must re-encode to the same
 * bytes where the format has one encoding. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/msgproto.h"
#include "msg/message.h"
#include "wire/packet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t out[HL_PACKET_BODY_MAX];
	static struct hl_pkt_ack ack;
	static struct hl_pkt_resume resume;
	size_t len;
	if (size < 1)
		return 0;
	const uint8_t *p = data + 1;
	size_t n = size - 1;
	switch (data[0] % 11) {
	case 0: {
		struct hl_pkt_item r;
		if (hl_pkt_item_decode(p, n, &r) < 0)
			break;
		if (r.item_len == 0 || r.item + r.item_len + r.rest_len != p + n)
			abort();
		/* the head re-encodes to the same bytes (where OUT holds it) */
		if (2 + r.item_len > sizeof(out))
			break;
		if (hl_pkt_item_encode(r.item, r.item_len, out, sizeof(out), &len) != 0 ||
		    len + r.rest_len != n || memcmp(out, p, len) != 0)
			abort();
		break;
	}
	case 1: {
		struct hl_pkt_chunk c;
		if (hl_pkt_chunk_decode(p, n, &c) == 0 &&
		    (c.data_len == 0 || c.data_len + HL_CHUNK_HDR_LEN != n))
			abort();
		break;
	}
	case 2:
		if (hl_pkt_ack_decode(p, n, &ack) == 0 &&
		    (hl_pkt_ack_encode(&ack, out, sizeof(out), &len) != 0 || len != n ||
		     memcmp(out, p, n) != 0))
			abort();
		break;
	case 3:
		if (hl_pkt_resume_decode(p, n, &resume) == 0 &&
		    (hl_pkt_resume_encode(&resume, out, sizeof(out), &len) != 0 || len != n ||
		     memcmp(out, p, n) != 0))
			abort();
		break;
	case 4: {
		struct hl_pkt_refuse r;
		(void)hl_pkt_refuse_decode(p, n, &r);
		break;
	}
	case 5: {
		struct hl_msg_content c;
		if (hl_msg_content_decode(p, n, &c) == 0 &&
		    (hl_msg_content_encode(&c, out, sizeof(out), &len) != 0 || len != n ||
		     memcmp(out, p, n) != 0))
			abort();
		break;
	}
	case 6: {
		uint64_t taken;
		uint8_t enc[HL_CREDIT_LEN];
		if (hl_pkt_credit_decode(p, n, &taken) == 0) {
			hl_pkt_credit_encode(taken, enc);
			if (n != HL_CREDIT_LEN || memcmp(enc, p, n) != 0)
				abort();
		}
		break;
	}
	case 7: {
		struct hl_pkt_stage r;
		uint8_t hdr[HL_STAGE_HDR_LEN];
		if (hl_pkt_stage_decode(p, n, &r) == 0) {
			if (r.data_len == 0 || r.data_len + HL_STAGE_HDR_LEN != n || r.part == 0 ||
			    r.part > 64)
				abort();
			hl_pkt_stage_header(r.id, r.part, r.offset, hdr);
			if (memcmp(hdr, p, HL_STAGE_HDR_LEN) != 0)
				abort();
		}
		break;
	}
	case 9: {
		uint64_t seq;
		uint8_t enc[HL_RECLAIM_LEN];
		if (hl_pkt_reclaim_decode(p, n, &seq) == 0) {
			hl_pkt_credit_encode(seq, enc); /* the same shape */
			if (seq == 0 || n != HL_RECLAIM_LEN || memcmp(enc, p, n) != 0)
				abort();
		}
		break;
	}
	case 10: {
		struct hl_pkt_item r;
		if (hl_pkt_return_decode(p, n, &r) == 0 &&
		    (r.item_len == 0 || r.rest_len != 0 || r.item + r.item_len != p + n))
			abort();
		break;
	}
	case 8: {
		struct hl_pkt_staged r;
		uint8_t enc[HL_STAGED_LEN];
		if (hl_pkt_staged_decode(p, n, &r) == 0) {
			hl_pkt_staged_encode(&r, enc);
			if (n != HL_STAGED_LEN || memcmp(enc, p, n) != 0)
				abort();
		}
		break;
	}
	}
	return 0;
}
