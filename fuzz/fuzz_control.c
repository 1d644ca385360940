/* fuzz_control.c — the control socket's request parser and RFC 3339 times
 * (daemon/control_proto.c) on arbitrary input.
 *
 * Oracles: a parsed request is a JSON object whose "cmd" is the string
 * returned, 1 to 32 bytes; a refused one gets a one-line error; a parsed
 * time formats and parses back to itself. */
#include <stdlib.h>
#include <string.h>

#include "daemon/control_proto.h"
#include "util/err.h"

#define CHECK(x) do { if (!(x)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char cmd[HL_CONTROL_CMD_MAX + 1], err[HL_CONTROL_ERR_LEN];
	json_t *req = NULL;
	int ret = hl_control_parse_request((const char *)data, size, &req, cmd, err);
	if (ret == 0) {
		CHECK(json_is_object(req));
		json_t *c = json_object_get(req, "cmd");
		CHECK(json_is_string(c));
		CHECK(strcmp(json_string_value(c), cmd) == 0);
		CHECK(strlen(cmd) >= 1 && strlen(cmd) <= HL_CONTROL_CMD_MAX);
		json_decref(req);
	} else {
		CHECK(req == NULL);
		CHECK(err[0] != 0 && strchr(err, '\n') == NULL);
	}

	char *s = malloc(size + 1);
	memcpy(s, data, size);
	s[size] = 0;
	time_t t;
	if (hl_rfc3339_parse(s, &t) == 0 && t >= 0 && t < (time_t)253402300799) {
		char again[HL_RFC3339_LEN];
		time_t t2;
		hl_rfc3339((uint64_t)t * 1000, again);
		CHECK(hl_rfc3339_parse(again, &t2) == 0 && t2 == t);
	}
	free(s);
	return 0;
}
