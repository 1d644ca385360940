/* daemon/sandbox_role.h — the sandbox's roles and the spec of one
 * (sandbox.h is the whole sandbox): the types shared by sandbox.c, which
 * enters it, and its two halves sandbox_fs.c and sandbox_sys.c, which
 * build each role's rules, so that the halves need nothing of sandbox.c. */
#ifndef HL_DAEMON_SANDBOX_ROLE_H
#define HL_DAEMON_SANDBOX_ROLE_H

enum hl_sandbox_role {
	HL_SANDBOX_NETWORK,   /* the daemon after start-up: network, store, control */
	HL_SANDBOX_PICKUP,    /* bundle import --maildir: Maildir and store, no network */
	HL_SANDBOX_IMPORT,    /* bundle import FILE: the store, no Maildir, no network */
	HL_SANDBOX_DECODE,    /* record verify/show, a decoder child: no file, no socket */
	HL_SANDBOX_HOLDER,    /* the key holder (holder/proc.h): its station, no socket made */
};

struct hl_sandbox_spec {
	enum hl_sandbox_role role;
	const char *station;   /* the station directory; NULL for DECODE */
	const char *maildir;   /* station.conf's [Email] Maildir; NULL: none */
	/* Threads that exist already (the parked real-time thread, rt.h):
	 * seccomp binds every thread (TSYNC) but Landlock only the caller, so
	 * BIND_OTHERS(ARG, RULESET_FD) must make each of them call
	 * hl_sandbox_bind_thread(RULESET_FD) before hl_sandbox_enter goes on. */
	unsigned other_threads;
	int (*bind_others)(void *arg, int ruleset_fd);
	void *bind_arg;
};

/* The role's name, for messages ("network", "pickup", "import", "decode",
 * "holder"). */
const char *hl_sandbox_role_name(enum hl_sandbox_role role);

#endif
