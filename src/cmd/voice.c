/* cmd/voice.c — `hotline voice`: voice messages (docs/voice.md section 1).
 *
 *   hotline voice send PEER [-p P] [-s SUBJECT] [--seconds N] [--device D]
 *                      [--input IN.wav] [FILE.wav|FILE.opus]
 *   hotline voice play ID [-o OUT.wav] [--device D]
 *
 * send: FILE.wav is encoded (Ogg Opus, mono, CBR 16 kb/s); FILE.opus is
 * checked and sent as it is; with neither, the sound device (or --input,
 * read at real-time pace) is recorded until Ctrl-C or --seconds.  The
 * recording is written under DIR/voice/ and synced as it goes (the
 * helper, tools/hotline-voice.c), so after a crash it is still there, and
 * `voice send PEER DIR/voice/voice-....opus` sends it.  The message is an
 * ordinary one with that one attachment (voice/voicemsg.h), queued like
 * `send -a`; the recording's copy under voice/ goes once it is queued.
 *
 * play: the recording of a received or sent voice message, decoded
 * (libopusfile) into OUT.wav (48 kHz mono) by a sandboxed child of this
 * process, or played on the sound device by the helper, which decodes it
 * in a sandboxed child of its own: the recording is the other side's
 * bytes (docs/sandbox.md). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/msgcmd.h"
#include "daemon/sandbox.h"
#include "util/err.h"
#include "util/fsutil.h"
#include "util/mem.h"
#include "voice/callaudio.h"
#include "voice/helper.h"
#include "voice/oggopus.h"
#include "voice/voicemsg.h"
#include "voice/wav.h"

#define VOICE_DIR "voice"

static void help(void)
{
	printf("usage: hotline voice send PEER [-p PRECEDENCE] [-s SUBJECT] [--seconds N]\n"
	       "                          [--device D] [--input IN.wav] [FILE.wav|FILE.opus]\n"
	       "       hotline voice play ID [-o OUT.wav] [--device D]\n\n"
	       "send: a voice message (Ogg Opus, mono, 16 kb/s).  Without a FILE, records\n"
	       "from the sound device (or --input, read in real time) until Ctrl-C or\n"
	       "--seconds N.  play: plays a voice message, or decodes it into OUT.wav.\n\n"
	       "  -p, --precedence P  flash, immediate, priority or routine (default routine)\n"
	       "  -s, --subject S     the subject line (default \"Voice message\")\n"
	       "      --seconds N     stop recording after N seconds\n"
	       "      --device D      the ALSA device (default $HOTLINE_SOUND_DEVICE, else default)\n"
	       "      --input WAV     record from WAV instead of the sound device\n"
	       "  -o, --output WAV    play: write the audio into WAV instead\n");
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

/* A new recording's path: DIR/voice/voice-YYYYMMDDTHHMMSSZ-RAND.opus. */
static char *new_recording_path(const char *dir)
{
	char *vd = hl_path_join(dir, VOICE_DIR);
	if (mkdir(vd, 0700) < 0 && errno != EEXIST) {
		free(vd);
		return NULL;
	}
	time_t t = time(NULL);
	struct tm tm;
	char stamp[32];
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	char *p = xasprintf("%s/" HL_VOICE_PREFIX "%s-%04x" HL_VOICE_SUFFIX, vd, stamp,
			    (unsigned)(getpid() & 0xffff));
	free(vd);
	return p;
}

/* Copies an existing Ogg Opus FILE to PATH (so its name is a voice name). */
static int copy_opus(const char *file, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	struct hl_oggopus_info info;
	int ret = hl_read_file(file, HL_OGGOPUS_MAX, &buf, &len);
	if (ret == 0 && (ret = hl_oggopus_info((const uint8_t *)buf, len, &info)) == 0)
		ret = hl_write_file_atomic(path, buf, len, 0600);
	free(buf);
	return ret;
}

struct send_opts {
	const char *peer, *subject, *file, *device, *input, *seconds;
	unsigned precedence;
};

/* Makes the recording at PATH from the options; 0 or HL_EXIT_*. */
static int make_recording(const struct send_opts *so, const char *path)
{
	int ret;
	if (so->file && ends_with(so->file, ".opus")) {
		if ((ret = copy_opus(so->file, path)) < 0)
			return hl_fail("voice", "%s: not an Ogg Opus recording (%s)", so->file,
				       hl_strerror(ret));
		return 0;
	}
	if (so->file) {
		const char *args[] = { "encode", so->file, path, NULL };
		return hl_voice_helper_run(args, false) == 0 ? 0 : HL_EXIT_FAIL;
	}
	const char *args[10] = { "record" };
	size_t n = 1;
	if (so->device) {
		args[n++] = "--device";
		args[n++] = so->device;
	}
	if (so->input) {
		args[n++] = "--input";
		args[n++] = so->input;
	}
	if (so->seconds) {
		args[n++] = "--seconds";
		args[n++] = so->seconds;
	}
	args[n++] = path;
	args[n] = NULL;
	fprintf(stderr, "hotline voice: recording into %s (Ctrl-C ends it)\n", path);
	/* A recording that was cut (Ctrl-C, a device error) still goes if the
	 * file holds audio: what is checked next is the file itself. */
	(void)hl_voice_helper_run(args, true);
	return 0;
}

static int voice_send(struct hl_ctx *ctx, struct send_opts *so)
{
	struct hl_station mc;
	char *path = NULL, *body = NULL, err[HL_STATION_ERR_LEN], dur[32];
	int ret = hl_msgcmd_open(ctx, "voice", &mc, true);
	if (ret != HL_EXIT_OK)
		return ret;
	const hl_peer_conf *peer = hl_conf_peer_by_name(mc.conf, so->peer);
	if (!peer) {
		ret = hl_fail("voice", "no peer named '%s' (hotline peer list)", so->peer);
		goto out;
	}
	if (!(path = new_recording_path(ctx->dir))) {
		ret = hl_fail("voice", "cannot create %s/%s: %s", ctx->dir, VOICE_DIR, strerror(errno));
		goto out;
	}
	if ((ret = make_recording(so, path)) != 0)
		goto out;
	char *buf = NULL;
	size_t len = 0;
	struct hl_oggopus_info info = { 0 };
	int r = hl_read_file(path, HL_OGGOPUS_MAX, &buf, &len);
	if (r == 0)
		r = hl_oggopus_info((const uint8_t *)buf, len, &info);
	free(buf);
	if (r < 0 || info.duration_ms == 0) {
		ret = hl_fail("voice", "no audio was recorded in %s", path);
		goto out;
	}
	hl_duration_str(info.duration_ms, dur, sizeof(dur));
	body = xasprintf("Voice message, %s.\n", dur);
	const char *atts[1] = { path };
	struct hl_outgoing o = {
		.precedence = so->precedence,
		.subject = so->subject ? so->subject : "Voice message",
		.body = (const uint8_t *)body,
		.body_len = strlen(body),
		.attachments = atts,
		.n_attachments = 1,
	};
	struct hl_queue q = { .peer = peer->name, .msg = &o };
	if (hl_station_queue(&mc, ctx->dir, &q, err) < 0) {
		ret = hl_fail("voice", "%s (the recording stays in %s)", err, path);
		goto out;
	}
	hl_msgcmd_print_ids(&q.id, 1);
	unlink(path);   /* the store holds its copy now */
	ret = HL_EXIT_OK;
out:
	free(path);
	free(body);
	hl_msgcmd_close(&mc);
	return ret;
}

struct pipe_sink {
	int fd;
};

static int pipe_cb(void *arg, const int16_t *pcm, size_t frames)
{
	struct pipe_sink *p = arg;
	const uint8_t *b = (const uint8_t *)pcm;
	size_t n = frames * 2;
	while (n > 0) {
		ssize_t k = write(p->fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return 1;   /* the reader went away: stop */
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

/* ---- decoding in a sandboxed child ----
 *
 * A recording is the other side's bytes.  It is read here, then parsed in
 * a child under the decode sandbox (daemon/sandbox.h: no file, no socket,
 * nothing of ours but a pipe), which writes s16le PCM to the pipe; this
 * process, which holds the store and writes OUT.wav, parses nothing. */

struct decode_job {
	const uint8_t *buf;
	size_t len;
	bool call;                    /* call-*.hla (16 kHz); else Ogg Opus (48 kHz) */
};

/* In the child: the PCM to FD; non-zero when the recording does not decode. */
static int decode_child(void *arg, int fd)
{
	const struct decode_job *j = arg;
	struct pipe_sink ps = { fd };
	struct hl_oggopus_info info;
	if (j->call)
		return hl_callaudio_decode(j->buf, j->len, pipe_cb, &ps) < 0;
	return hl_oggopus_info(j->buf, j->len, &info) < 0 ||
	       hl_oggopus_decode(j->buf, j->len, pipe_cb, &ps) < 0;
}

/* Where the child's PCM goes: OUT.wav (RATE; made at the first bytes,
 * so that a recording that does not decode leaves none), or PLAYER. */
struct pcm_out {
	const char *out;
	unsigned rate;
	struct pipe_sink player;
	struct hl_wav_writer w;
	bool made;
	int error;
};

static int pcm_out_cb(void *arg, const int16_t *pcm, size_t frames)
{
	struct pcm_out *o = arg;
	if (!o->out)
		return pipe_cb(&o->player, pcm, frames) ? (o->error = -EPIPE) : 0;
	if (!o->made && (o->error = hl_wav_create(&o->w, o->out, o->rate, 1, 0)) == 0)
		o->made = true;
	if (o->error == 0)
		o->error = hl_wav_write(&o->w, pcm, frames);
	return o->error;
}

/* Decodes J into OUT.wav (RATE), or to PLAYER.  HL_EXIT_OK, or
 * HL_EXIT_FAIL after one line: BAD when the recording does not decode.
 * A failed OUT is removed. */
static int boxed_decode(const struct decode_job *j, const char *out, unsigned rate, int player,
			const char *bad)
{
	char err[256] = "";
	struct pcm_out o = { .out = out, .rate = rate, .player = { player } };
	int fd, r;
	pid_t pid = hl_sandbox_child(decode_child, (void *)j, &fd, err, sizeof(err));
	if (pid < 0)
		return hl_fail("voice", "%s", err);
	r = hl_pcm_pump(fd, pcm_out_cb, &o);
	close(fd);
	int st = hl_sandbox_child_status(pid, err, sizeof(err));
	if (o.made) {
		int c = hl_wav_close(&o.w);
		r = r < 0 ? r : c;
	}
	if ((r < 0 || st < 0) && o.made)
		unlink(out);
	/* our own failure first: the child then fails too, writing to no one */
	if (r < 0)
		return hl_fail("voice", "%s: %s", out ? out : "playing", hl_strerror(r));
	if (st == HL_EINVAL)
		return hl_fail("voice", "%s", bad);
	return st < 0 ? hl_fail("voice", "%s", err) : HL_EXIT_OK;
}

/* A call's recording (a message whose attachment is call-*.hla, which a
 * station with CallRecording sends after the call): 16 kHz audio, into
 * OUT.wav or played through the helper's playback. */
static int play_call_audio(struct hl_ctx *ctx, const struct hl_msg_row *row, const char *out,
			   const char *device)
{
	const struct hl_att_row *a = &row->att[0];
	if (row->dir == HL_DIR_IN && a->done < a->size)
		return hl_fail("voice", "the recording has not all arrived yet");
	char *path = hl_path_join(ctx->dir, a->path), *buf = NULL;
	size_t len = 0;
	int r = hl_read_file(path, HL_CALLAUDIO_MAX, &buf, &len), ret;
	free(path);
	if (r < 0) {
		free(buf);
		return hl_fail("voice", "%s: %s", a->path, hl_strerror(r));
	}
	struct decode_job j = { (const uint8_t *)buf, len, true };
	if (out) {
		ret = boxed_decode(&j, out, 16000, -1, "the call recording does not decode");
	} else {
		const char *args[] = { "playback", device ? "--device" : NULL, device, NULL };
		int player = -1;
		pid_t pid = hl_voice_helper_spawn(args, &player, NULL);
		ret = pid < 0 ? hl_fail("voice", "cannot run the sound helper")
			      : boxed_decode(&j, NULL, 16000, player, "the call recording does not decode");
		if (pid > 0) {
			close(player);
			waitpid(pid, NULL, 0);
		}
	}
	free(buf);
	return ret;
}

/* A voice message's recording: played by the helper (which decodes it in
 * a sandboxed child of its own, tools/hotline-voice.c), or decoded here,
 * sandboxed, into OUT.wav. */
static int play_voice(const char *id, const char *path, const char *out, const char *device)
{
	char *buf = NULL, bad[128];
	size_t len = 0;
	int r, ret;
	if (!out) {
		const char *args[] = { "play", "--device", device ? device : "", path, NULL };
		if (!device) {
			args[1] = path;
			args[2] = NULL;
		}
		return hl_voice_helper_run(args, false) == 0 ? HL_EXIT_OK : HL_EXIT_FAIL;
	}
	snprintf(bad, sizeof(bad), "message '%s': the recording is not Ogg Opus", id);
	if ((r = hl_read_file(path, HL_OGGOPUS_MAX, &buf, &len)) < 0) {
		ret = hl_fail("voice", "%s", bad);
	} else {
		struct decode_job j = { (const uint8_t *)buf, len, false };
		ret = boxed_decode(&j, out, HL_OGGOPUS_RATE, -1, bad);
	}
	free(buf);
	return ret;
}

static int voice_play(struct hl_ctx *ctx, const char *id, const char *out, const char *device)
{
	struct hl_station mc;
	struct hl_msg_row row;
	char *path = NULL;
	memset(&row, 0, sizeof(row));
	int ret = hl_msgcmd_open(ctx, "voice", &mc, false);
	if (ret != HL_EXIT_OK)
		return ret;
	int r = hl_store_get_message(mc.store, id, &row);
	if (r < 0) {
		ret = hl_fail("voice", "no message '%s'%s", id,
			      r == HL_EEXIST ? " (ambiguous: give more digits)" : "");
		goto out;
	}
	if (row.n_att == 1 && hl_callaudio_name(row.att[0].name)) {
		ret = play_call_audio(ctx, &row, out, device);
		goto out;
	}
	switch (hl_voice_where(ctx->dir, &row, &path)) {
	case HL_VOICE_READY:
		ret = play_voice(id, path, out, device);
		break;
	case HL_VOICE_PARTIAL:
		ret = hl_fail("voice", "message '%s': the recording has not all arrived yet", id);
		break;
	case HL_VOICE_PURGED:
		ret = hl_fail("voice", "message '%s': the recording was purged", id);
		break;
	default:
		ret = hl_fail("voice", "message '%s' is not a voice message", id);
		break;
	}
out:
	free(path);
	hl_msg_row_clear(&row);
	hl_msgcmd_close(&mc);
	return ret;
}

int voice_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "precedence", required_argument, NULL, 'p' },
		{ "subject", required_argument, NULL, 's' },
		{ "output", required_argument, NULL, 'o' },
		{ "seconds", required_argument, NULL, 't' },
		{ "device", required_argument, NULL, 'D' },
		{ "input", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct send_opts so = { 0 };
	const char *out = NULL;
	enum hl_precedence prec = HL_PREC_ROUTINE;
	int c;
	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		help();
		return argc < 2 ? HL_EXIT_USAGE : HL_EXIT_OK;
	}
	const char *sub = argv[1];
	/* Options come after the sub-command: parse argv[1..] afresh (glibc:
	 * optind 0 resets getopt, which main's own parse left in order mode). */
	argc--;
	argv++;
	optind = 0;
	while ((c = getopt_long(argc, argv, "p:s:o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			if (hl_precedence_parse(optarg, &prec) < 0)
				return hl_usage_error("voice", "unknown precedence '%s'", optarg);
			break;
		case 's': so.subject = optarg; break;
		case 'o': out = optarg; break;
		case 't': {
			char *end;
			double s = strtod(optarg, &end);
			if (*end || !(s > 0) || s > HL_OGGOPUS_SECONDS_MAX)
				return hl_usage_error("voice", "bad --seconds '%s'", optarg);
			so.seconds = optarg;
			break;
		}
		case 'D': so.device = optarg; break;
		case 'i': so.input = optarg; break;
		case 'h': help(); return HL_EXIT_OK;
		default: return HL_EXIT_USAGE;
		}
	}
	int left = argc - optind;
	so.precedence = prec;
	if (strcmp(sub, "send") == 0 && (left == 1 || left == 2)) {
		so.peer = argv[optind];
		so.file = left == 2 ? argv[optind + 1] : NULL;
		if (so.file && (so.input || so.seconds))
			return hl_usage_error("voice", "--input and --seconds are for recording, not FILE");
		return voice_send(ctx, &so);
	}
	if (strcmp(sub, "play") == 0 && left == 1)
		return voice_play(ctx, argv[optind], out, so.device);
	return hl_usage_error("voice", "expected 'send PEER [FILE]' or 'play ID' (hotline voice --help)");
}
