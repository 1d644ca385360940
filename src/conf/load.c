/* conf/load.c — station.conf read from disk (config.h): the check of who
 * may change the station (conf/perms.h), the file, the parse
 * (config.c, which does no I/O), and then the one check that needs the
 * file system: that each CheckZone exists.  The daemon, sandboxed, gets
 * the file opened by its spawner and comes in at hl_conf_load_fd. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/config.h"
#include "conf/perms.h"
#include "util/err.h"
#include "util/fsutil.h"

int hl_zone_exists(const char *zone)
{
	const char *base = getenv("TZDIR");
	if (!base || !*base)
		base = "/usr/share/zoneinfo";
	if (!hl_zone_name_valid(zone))
		return 0;
	char *path = hl_path_join(base, zone);
	struct stat sb;
	int ok = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
	free(path);
	return ok;
}

int hl_conf_load(const char *dir, hl_station_conf **out, char err[static HL_CONF_ERR_LEN])
{
	return hl_conf_load_as(dir, HL_UID_NONE, out, err);
}

int hl_conf_load_as(const char *dir, uid_t also, hl_station_conf **out,
		    char err[static HL_CONF_ERR_LEN])
{
	/* Who may change the station, before anything is read from it. */
	int r = hl_station_validate_perms(dir, also, err);
	*out = NULL;
	if (r < 0)
		return r;
	char *path = hl_path_join(dir, HL_CONF_FILE);
	int fd = open(path, O_RDONLY | O_CLOEXEC), e = errno;
	free(path);
	errno = e;
	return hl_conf_load_fd(dir, fd, out, err);
}

int hl_conf_load_fd(const char *dir, int fd, hl_station_conf **out,
		    char err[static HL_CONF_ERR_LEN])
{
	char *path = hl_path_join(dir, HL_CONF_FILE);
	char *buf = NULL;
	size_t len = 0;
	*out = NULL;
	int r = fd < 0 ? -errno : hl_read_fd(fd, HL_CONF_MAX_BYTES, &buf, &len);
	if (r < 0)
		snprintf(err, HL_CONF_ERR_LEN, "%s: %s", path, hl_strerror(r));
	else
		r = hl_conf_parse(buf, len, path, out, err);
	/* The parser does no I/O; that a CheckZone exists is checked here. */
	for (size_t i = 0; r == 0 && i < (*out)->npeers; i++) {
		const hl_peer_conf *pc = &(*out)->peers[i];
		/* the parser took only a valid zone name: nothing to quote */
		if (pc->check_zone[0] && !hl_zone_exists(pc->check_zone)) {
			snprintf(err, HL_CONF_ERR_LEN, "%s:%u: unknown CheckZone '%s' (no such zone "
				 "in the zoneinfo directory; is tzdata installed?)", path,
				 pc->check_zone_line, pc->check_zone);
			hl_conf_free(*out);
			*out = NULL;
			r = HL_EINVAL;
		}
	}
	free(buf);
	free(path);
	return r;
}
