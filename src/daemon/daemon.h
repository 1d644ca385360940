/* daemon/daemon.h — `hotline run`: the station daemon's event loop.
 *
 * hl_daemon_run() takes the station directory's lock, loads station.conf
 * and the identity, listens for peers and on the control socket, dials
 * the peers that have an Address, and runs until SIGTERM or SIGINT.  It
 * logs to stderr (util/log.h).  A failure to start is returned as a
 * negative code with a one-line explanation in ERR (quoting the bad value);
 * a clean shutdown returns 0. */
#ifndef HL_DAEMON_DAEMON_H
#define HL_DAEMON_DAEMON_H

#define HL_DAEMON_ERR_LEN 600

int hl_daemon_run(const char *dir, char err[static HL_DAEMON_ERR_LEN]);

#endif
