/* daemon/control_proto.c — control socket addressing, request parsing and
 * RFC 3339 times (see control_proto.h). */
#include "daemon/control_proto.h"

#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "util/err.h"
#include "util/text.h"

int hl_control_sockaddr(int dirfd, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	int n = snprintf(sa->sun_path, sizeof(sa->sun_path), "/proc/self/fd/%d/control.sock", dirfd);
	if (dirfd < 0 || n < 0 || (size_t)n >= sizeof(sa->sun_path))
		return HL_EINVAL;
	return 0;
}

int hl_control_parse_request(const char *buf, size_t len, json_t **req,
			     char cmd[static HL_CONTROL_CMD_MAX + 1],
			     char err[static HL_CONTROL_ERR_LEN])
{
	json_error_t jerr;
	json_t *root = NULL;
	int ret = HL_EINVAL;

	*req = NULL;
	cmd[0] = 0;
	err[0] = 0;
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	if (len >= HL_CONTROL_MAX_LINE) {
		snprintf(err, HL_CONTROL_ERR_LEN, "request longer than %d bytes", HL_CONTROL_MAX_LINE);
		ret = HL_ETOOBIG;
		goto out;
	}
	if (memchr(buf, '\n', len)) {
		snprintf(err, HL_CONTROL_ERR_LEN, "request spans more than one line");
		goto out;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		/* jansson's message names a position, never echoes the input. */
		char clean[HL_CONTROL_ERR_LEN - 32];
		hl_sanitize(jerr.text, strnlen(jerr.text, sizeof(jerr.text)), clean, sizeof(clean), 0);
		snprintf(err, HL_CONTROL_ERR_LEN, "request is not JSON: %s", clean);
		goto out;
	}
	if (!json_is_object(root)) {
		snprintf(err, HL_CONTROL_ERR_LEN, "request is not a JSON object");
		goto out;
	}
	json_t *c = json_object_get(root, "cmd");
	if (!json_is_string(c)) {
		snprintf(err, HL_CONTROL_ERR_LEN, "request has no \"cmd\" string");
		goto out;
	}
	const char *s = json_string_value(c);
	size_t slen = json_string_length(c);
	if (slen == 0 || slen > HL_CONTROL_CMD_MAX || strlen(s) != slen) {
		snprintf(err, HL_CONTROL_ERR_LEN, "\"cmd\" must be 1 to %d characters",
			 HL_CONTROL_CMD_MAX);
		goto out;
	}
	memcpy(cmd, s, slen + 1);
	*req = root;
	root = NULL;
	ret = 0;
out:
	json_decref(root);
	return ret;
}

