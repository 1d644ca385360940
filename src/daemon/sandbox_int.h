/* daemon/sandbox_int.h — the two halves of daemon/sandbox.c's step 3 and
 * 4: the Landlock rules (sandbox_fs.c) and the seccomp filter
 * (sandbox_sys.c), each per role. */
#ifndef HL_DAEMON_SANDBOX_INT_H
#define HL_DAEMON_SANDBOX_INT_H

#include <stddef.h>

#include "daemon/sandbox_role.h"

/* Built with AddressSanitizer (gcc or clang): its runtime needs a few
 * things the release build refuses (LeakSanitizer's thread that stops the
 * others with ptrace, /proc/self/maps); sandbox_sys.c and sandbox_fs.c
 * allow them in that build only. */
#if defined(__SANITIZE_ADDRESS__)
#define HL_SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HL_SANDBOX_SANITIZER 1
#endif
#endif
#ifndef HL_SANDBOX_SANITIZER
#define HL_SANDBOX_SANITIZER 0
#endif

/* Makes the folders SPEC's rules grant that may be missing (the station's
 * in/ and out/, the quarantine beside the Maildir), then restricts this
 * thread (and those it starts later) to SPEC's rules.  1: applied, with
 * Landlock ABI *ABI; 0: left out, the kernel has no Landlock ABI 2 (*ABI
 * says which it has); negative: failed, ERR says why. */
int hl_sandbox_fs(const struct hl_sandbox_spec *spec, int *abi, char *err, size_t errlen);

/* Loads SPEC's seccomp filter into every thread of the process.  0, or a
 * negative code with ERR set. */
int hl_sandbox_sys(const struct hl_sandbox_spec *spec, char *err, size_t errlen);

#endif
