/* util/progpath.h — where the programs installed beside hotline are
 * (hotline-mail): the same lookup from the build tree and after
 * `make install`. */
#ifndef HL_UTIL_PROGPATH_H
#define HL_UTIL_PROGPATH_H

/* The path of helper program NAME, xmalloc'd: the value of the environment
 * variable ENV_VAR when set and not empty; else NAME beside this program
 * (/proc/self/exe, links resolved: build/ in the build tree, PREFIX/bin
 * once installed) when it is there; else NAME in HOTLINE_BINDIR, the bin
 * directory of the prefix hotline was configured for, when it is there;
 * else NAME alone, for a search of $PATH (execvp). */
char *hl_helper_path(const char *name, const char *env_var);

/* The lookup itself, for tests: SELF is this program's path (NULL:
 * unknown), BINDIR the configured bin directory (NULL: none). */
char *hl_helper_path_in(const char *name, const char *env_value, const char *self,
			const char *bindir);

#endif
