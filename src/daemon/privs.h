/* daemon/privs.h — the daemon gives up root's powers before it reads
 * anything from the network, parses mail or bundles, or runs AlarmCommand.
 *
 * Started as root, it drops every capability for good (the bounding and
 * ambient sets too, and the securebits that would give them back to a
 * program uid 0 runs), becomes the `User` of station.conf when one is set
 * (supplementary groups, gid and uid), and sets no_new_privs, so nothing it
 * runs can gain a privilege through a set-uid program.  Started as another
 * user, it only drops the capabilities it holds, if any.  A later stage
 * (daemon/sandbox.h) narrows the system calls and the files; this one is
 * about identity.
 *
 * Which station a root daemon accepts (with conf/perms.h): one that belongs
 * to root (the daemon then stays uid 0, without any capability), or one
 * that belongs to the user named by `User` (then it becomes that user). */
#ifndef HL_DAEMON_PRIVS_H
#define HL_DAEMON_PRIVS_H

#include <stddef.h>
#include <sys/types.h>

#define HL_PRIVS_NOTE_LEN 256

/* Checks that USER_SPEC (station.conf's User, "" for none) fits this
 * process and the station directory DIR, which belongs to DIR_OWNER, then
 * drops what privileges there are; NOTE says what was done, for the log
 * ("" when nothing was).  0, or a negative code with ERR saying why and how
 * to fix it; the daemon must then stop (a step may have been taken). */
int hl_privs_drop(const char *dir, uid_t dir_owner, const char *user_spec,
		  char note[static HL_PRIVS_NOTE_LEN], char *err, size_t errlen);

/* Sets no_new_privs (for good): nothing this process runs gains a
 * privilege through a set-uid or file-capability program.  0 or -errno.
 * The sandbox (daemon/sandbox.h) needs it too, whoever started us. */
int hl_privs_no_new_privs(void);

#endif
