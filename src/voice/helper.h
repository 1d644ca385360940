/* voice/helper.h — running hotline-voice, the helper that owns the sound
 * device and Ogg Opus writing (tools/hotline-voice.c): where it is, and
 * running it as a child that dies with us. */
#ifndef HL_VOICE_HELPER_H
#define HL_VOICE_HELPER_H

#include <stdbool.h>
#include <sys/types.h>

#include "voice/oggopus.h"

/* $HOTLINE_VOICE, else hotline-voice beside this binary (xmalloc'd). */
char *hl_voice_helper_path(void);

/* Starts the helper with ARGS (NULL-terminated, ARGS[0] is the
 * subcommand).  IN_FD / OUT_FD (may be NULL): pipes to its stdin / from
 * its stdout, else it inherits ours.  The child gets SIGTERM when this
 * process dies, however it dies, so a recording is never left running. */
pid_t hl_voice_helper_spawn(const char *const *args, int *in_fd, int *out_fd);

/* Runs the helper and waits: its exit status (0 success), or -1 when it
 * could not run or died of a signal.  With HOLD_INT, SIGINT is ignored
 * here meanwhile: Ctrl-C ends the child's recording, and we go on. */
int hl_voice_helper_run(const char *const *args, bool hold_int);

/* Reads s16le PCM from FD (a pipe: the helper's capture, a decoder
 * child's output) to its end, whole frames to SINK: 0; -errno when a read
 * fails; SINK's non-zero return, which stops it. */
int hl_pcm_pump(int fd, hl_pcm_sink sink, void *arg);

#endif
