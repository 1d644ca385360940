/* station/station.c — opening a station with what a command needs, and
 * its lock files (see station.h). */
#include "station/station.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "util/err.h"

static int open_keys(struct hl_station *s, unsigned need, char *err)
{
	char kerr[HL_KEYS_ERR_LEN];
	enum hl_keys_need kn = need & HL_OPEN_SIGN ? HL_KEYS_SIGN : HL_KEYS_PUBLIC;
	int ret = hl_keys_open(s->dir, kn, &s->keys, kerr);
	if (ret < 0) {
		s->keys = NULL;
		snprintf(err, HL_STATION_ERR_LEN, "%s", kerr);
		return ret;
	}
	s->me = hl_keys_signer(s->keys);
	return 0;
}

static int open_store(struct hl_station *s, unsigned need, char *err)
{
	int ret;
	if (need & HL_OPEN_STORE) {
		if ((ret = hl_store_open(s->dir, &s->store)) < 0)
			snprintf(err, HL_STATION_ERR_LEN, "cannot open the store in %s: %s", s->dir,
				 s->store ? hl_store_errmsg(s->store) : hl_strerror(ret));
	} else if ((ret = hl_store_open_readonly(s->dir, &s->store)) < 0) {
		snprintf(err, HL_STATION_ERR_LEN, "cannot open the store in %s: %s", s->dir,
			 hl_strerror(ret));
	}
	if (ret < 0) {
		hl_store_close(s->store);
		s->store = NULL;
	}
	return ret;
}

int hl_station_open(struct hl_station *s, const char *dir, unsigned need, char *err)
{
	char cerr[HL_CONF_ERR_LEN] = "";
	bool must = !(need & HL_OPEN_BEST_EFFORT);
	int ret;
	memset(s, 0, sizeof(*s));
	s->dir = dir;
	if ((ret = hl_conf_load(dir, &s->conf, cerr)) < 0) {
		snprintf(err, HL_STATION_ERR_LEN, "%s", cerr[0] ? cerr : "station.conf does not load");
		return ret;
	}
	if ((need & (HL_OPEN_SIGN | HL_OPEN_PUBLIC)) && (ret = open_keys(s, need, err)) < 0 && must)
		return ret;
	if ((need & (HL_OPEN_STORE | HL_OPEN_STORE_RO)) && (ret = open_store(s, need, err)) < 0 &&
	    must)
		return ret;
	return 0;
}

void hl_station_close(struct hl_station *s)
{
	hl_store_close(s->store);
	hl_keys_free(s->keys);
	hl_conf_free(s->conf);
	memset(s, 0, sizeof(*s));
}

int hl_station_lock(int dirfd, const char *name, int how)
{
	int fd = openat(dirfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (flock(fd, how) < 0) {
		int e = errno;
		close(fd);
		return -e;
	}
	return fd;
}
