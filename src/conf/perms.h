/* conf/perms.h — who may change a station: the check, in the manner of
 * OpenSSH's StrictModes, that nobody but the station's owner (or root) can
 * replace station.conf, write into the station directory or read
 * identity.key, and the lookup of the user named by `User` (station.conf).
 *
 * Why: the daemon re-reads station.conf by itself when the directory
 * changes, and station.conf names a program it runs (AlarmCommand).  Anyone
 * who can rename a file into the station directory, or into a folder above
 * it, therefore chooses what the daemon runs; anyone who can read
 * identity.key can speak for the station.  Every command that reads
 * station.conf or identity.key refuses such a station and says which path
 * is wrong and the command that fixes it. */
#ifndef HL_CONF_PERMS_H
#define HL_CONF_PERMS_H

#include <stddef.h>
#include <sys/types.h>

#define HL_UID_NONE ((uid_t)-1)
#define HL_PERMS_ERR_LEN 512   /* = HL_CONF_ERR_LEN */

/* Checks the station in DIR, refusing (-EPERM, ERR says which path, its
 * owner and mode, and the fix) when:
 *   - a folder above it (the path resolved, symbolic links followed) is
 *     writable by its group or others without the sticky bit (/tmp is
 *     fine), or belongs to someone other than root, this process's user or
 *     ALSO;
 *   - the station directory is writable by its group or others, or belongs
 *     to someone other than root, this process's user or ALSO;
 *   - station.conf is a symbolic link or not a regular file, is writable by
 *     its group or others, or belongs to someone else;
 *   - identity.key is a symbolic link or not a regular file, can be read or
 *     written by its group or others, or belongs to someone else.
 * A missing directory or file passes (the caller's read reports it).  ALSO
 * is HL_UID_NONE except for a daemon started as root on a station of the
 * user it will switch to (daemon/privs.c). */
int hl_station_validate_perms(const char *dir, uid_t also, char err[static HL_PERMS_ERR_LEN]);

/* A user a daemon started as root becomes (`User` in station.conf). */
struct hl_user {
	uid_t uid;
	gid_t gid;
	char name[33];       /* from /etc/passwd; "" when not there */
	char home[256];      /* likewise */
};

/* `User` in station.conf: a user name from /etc/passwd, a numeric UID, or
 * UID:GID.  With a name, the gid is the user's primary group; with a bare
 * UID, the primary group from /etc/passwd if the uid is there, else the
 * same number.  HL_ENOTFOUND for an unknown name, HL_EINVAL for a bad
 * value (ERR says so). */
int hl_user_lookup(const char *spec, struct hl_user *u, char err[static HL_PERMS_ERR_LEN]);

/* "name (uid N)" or "uid N" for messages: /etc/passwd only, no NSS. */
void hl_user_describe(uid_t uid, char *out, size_t cap);

#endif
