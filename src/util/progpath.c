/* util/progpath.c — finding hotline's helper programs (see progpath.h).
 * Beside the running binary comes first, so that a build tree, a DESTDIR
 * staging copy and an installed copy each use their own helper. */
#include "util/progpath.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/mem.h"

#ifndef HOTLINE_BINDIR
#define HOTLINE_BINDIR NULL
#endif

static char *in_dir(const char *dir, size_t dirlen, const char *name)
{
	char *path = xasprintf("%.*s/%s", (int)dirlen, dir, name);
	if (access(path, X_OK) == 0)
		return path;
	free(path);
	return NULL;
}

char *hl_helper_path_in(const char *name, const char *env_value, const char *self,
			const char *bindir)
{
	char *path;
	if (env_value && *env_value)
		return xstrdup(env_value);
	const char *slash = self ? strrchr(self, '/') : NULL;
	if (slash && (path = in_dir(self, (size_t)(slash - self), name)))
		return path;
	if (bindir && *bindir && (path = in_dir(bindir, strlen(bindir), name)))
		return path;
	return xstrdup(name);
}

char *hl_helper_path(const char *name, const char *env_var)
{
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0)
		self[n] = '\0';
	return hl_helper_path_in(name, getenv(env_var), n > 0 ? self : NULL, HOTLINE_BINDIR);
}
