/* tools/hotline-voice.c — the sound device and Ogg Opus writing.
 *
 *   hotline-voice encode IN.wav OUT.opus
 *   hotline-voice record [--device D | --input IN.wav] [--seconds N] OUT.opus
 *   hotline-voice play [--device D] IN.opus
 *   hotline-voice capture [--device D] [--input IN.wav]   (s16le mono 16 kHz to stdout)
 *   hotline-voice playback [--device D]                   (s16le mono 16 kHz from stdin)
 *
 * A separate small program so that the `hotline` binary never loads ALSA
 * or libopusenc (Debian ships neither as a static archive, and commands
 * must start in milliseconds); `hotline voice` and `hotline call` run it
 * from beside the hotline binary (or $HOTLINE_VOICE).  It knows nothing of
 * stations or keys.
 *
 * Voice files are Ogg Opus (RFC 7845), mono, constant bit rate 16 kb/s,
 * the speech mode: about 2 KB a second.  `record` writes as it goes: a page
 * at least every HL_PAGE_MS, each written and fdatasync()ed, so a crash or
 * kill -9 loses at most that much, and the file up to there plays (a
 * stream without its end page is still a valid Ogg Opus stream to
 * libopusfile).  SIGINT and SIGTERM end a recording cleanly.
 *
 * Pacing.  A sound card delivers capture data no faster than real time,
 * and takes playback data no faster either; ALSA's `null` and `file`
 * plugins (what a machine without a sound card can use) have no clock.
 * So every device loop here also waits for the monotonic clock to catch
 * up with the frames it moved: a no-op on hardware, real time on a
 * plugin.  --input replaces the device with a WAV file read at the same
 * real-time pace.  The device is D (--device), else $HOTLINE_SOUND_DEVICE,
 * else "default".
 *
 * SECURITY  Input files are parsed by voice/wav.c and libopusfile
 * (fuzzed); `play`, whose file is the other side's, parses it in a child
 * under the decode sandbox (docs/sandbox.md) and plays the PCM it gives;
 * output files are created with O_EXCL and never follow a link.
 *
 * DIAGNOSTICS  One line on stderr, "hotline-voice: ...", exit 1; a usage
 * error exits 2. */
#include <alsa/asoundlib.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <opus/opusenc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/sandbox.h"
#include "util/err.h"
#include "voice/helper.h"
#include "voice/oggopus.h"
#include "voice/wav.h"

#define BITRATE 16000
#define PAGE_MS 500                 /* the most a kill -9 loses */
#define DEV_RATE 48000              /* what we ask the device for */
#define STREAM_RATE 16000           /* capture/playback on pipes (calls) */
#define PERIOD 960                  /* 20 ms at 48 kHz */
#define WAV_MAX (1u << 30)

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("hotline-voice: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return 1;
}

static uint64_t mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Sleeps until FRAMES at RATE have had time to play since T0. */
static void pace(uint64_t t0, uint64_t frames, unsigned rate)
{
	uint64_t due = t0 + frames * 1000000u / rate;
	uint64_t now = mono_us();
	if (due > now) {
		struct timespec ts = { (time_t)((due - now) / 1000000u),
				       (long)((due - now) % 1000000u * 1000u) };
		nanosleep(&ts, NULL);
	}
}

static const char *device_name(const char *opt)
{
	const char *env = getenv("HOTLINE_SOUND_DEVICE");
	return opt ? opt : env && *env ? env : "default";
}

/* The sound device: mono s16 at RATE, in DIR.  ALSA's plug layer converts
 * to whatever the card does. */
static int dev_open(snd_pcm_t **pcm, const char *name, snd_pcm_stream_t dir, unsigned rate)
{
	int err = snd_pcm_open(pcm, name, dir, 0);
	if (err < 0)
		return fail("sound device '%s': %s", name, snd_strerror(err));
	err = snd_pcm_set_params(*pcm, SND_PCM_FORMAT_S16_LE, SND_PCM_ACCESS_RW_INTERLEAVED,
				 1, rate, 1, 60000);
	if (err < 0) {
		snd_pcm_close(*pcm);
		*pcm = NULL;
		return fail("sound device '%s': %s", name, snd_strerror(err));
	}
	return 0;
}

/* Reads N frames from the device (recovering from an overrun once). */
static long dev_read(snd_pcm_t *pcm, int16_t *buf, size_t n)
{
	snd_pcm_sframes_t k = snd_pcm_readi(pcm, buf, n);
	if (k < 0)
		k = snd_pcm_recover(pcm, (int)k, 1) < 0 ? k : snd_pcm_readi(pcm, buf, n);
	return (long)k;
}

static long dev_write(snd_pcm_t *pcm, const int16_t *buf, size_t n)
{
	snd_pcm_sframes_t k = snd_pcm_writei(pcm, buf, n);
	if (k < 0)
		k = snd_pcm_recover(pcm, (int)k, 1) < 0 ? k : snd_pcm_writei(pcm, buf, n);
	return (long)k;
}

/* ---- Ogg Opus output ---- */

struct out {
	int fd;
	int err;
	int sync_each_page;
};

static int out_write(void *user, const unsigned char *ptr, opus_int32 len)
{
	struct out *o = user;
	while (len > 0) {
		ssize_t k = write(o->fd, ptr, (size_t)len);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			o->err = errno;
			return 1;
		}
		ptr += k;
		len -= (opus_int32)k;
	}
	if (o->sync_each_page && fdatasync(o->fd) < 0) {
		o->err = errno;
		return 1;
	}
	return 0;
}

static int out_close(void *user)
{
	struct out *o = user;
	if (fsync(o->fd) < 0 && !o->err)
		o->err = errno;
	return close(o->fd) < 0 || o->err;
}

static OggOpusEnc *enc_open(const char *path, struct out *o, opus_int32 rate)
{
	o->fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (o->fd < 0) {
		fail("%s: %s", path, strerror(errno));
		return NULL;
	}
	OpusEncCallbacks cb = { out_write, out_close };
	OggOpusComments *c = ope_comments_create();
	ope_comments_add(c, "ENCODER", "hotline");
	int err = 0;
	OggOpusEnc *enc = ope_encoder_create_callbacks(&cb, o, c, rate, 1, 0, &err);
	ope_comments_destroy(c);
	if (!enc) {
		close(o->fd);
		unlink(path);
		fail("opus encoder: %s", ope_strerror(err));
		return NULL;
	}
	ope_encoder_ctl(enc, OPUS_SET_BITRATE(BITRATE));
	ope_encoder_ctl(enc, OPUS_SET_VBR(0));
	ope_encoder_ctl(enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
	/* libopusenc holds 2 s of audio by default before deciding how to
	 * encode it; a recording must reach the disk sooner than that. */
	ope_encoder_ctl(enc, OPE_SET_DECISION_DELAY(0));
	ope_encoder_ctl(enc, OPE_SET_MUXING_DELAY(48000 * PAGE_MS / 1000));
	ope_encoder_ctl(enc, OPE_SET_COMMENT_PADDING(0));
	/* The headers go to disk before any audio, so even a recording killed
	 * in its first second is a stream libopusfile opens. */
	ope_encoder_flush_header(enc);
	return enc;
}

static int enc_finish(OggOpusEnc *enc, struct out *o, const char *path)
{
	int err = ope_encoder_drain(enc);
	ope_encoder_destroy(enc);   /* calls out_close */
	if (err != OPE_OK || o->err)
		return fail("%s: %s", path, o->err ? strerror(o->err) : ope_strerror(err));
	return 0;
}

/* ---- subcommands ---- */

static int cmd_encode(const char *in, const char *outpath)
{
	uint8_t *mem;
	struct hl_wav w;
	int ret = hl_wav_load(in, WAV_MAX, &mem, &w);
	if (ret < 0)
		return fail("%s: not a WAV file of 16-bit PCM (%s)", in, hl_strerror(ret));
	struct out o = { .fd = -1 };
	OggOpusEnc *enc = enc_open(outpath, &o, (opus_int32)w.rate);
	if (!enc) {
		free(mem);
		return 1;
	}
	int16_t buf[PERIOD];
	for (size_t i = 0; i < w.frames && !o.err;) {
		size_t n = 0;
		for (; n < PERIOD && i < w.frames; n++, i++)
			buf[n] = hl_wav_mono(&w, i);
		ope_encoder_write(enc, buf, (int)n);
	}
	free(mem);
	return enc_finish(enc, &o, outpath);
}

/* Where recorded audio comes from: the device, or a WAV file paced. */
struct source {
	snd_pcm_t *pcm;
	uint8_t *mem;
	struct hl_wav w;
	size_t pos;
	unsigned rate;
	uint64_t t0, frames;
};

static int source_open(struct source *s, const char *device, const char *input, unsigned rate)
{
	memset(s, 0, sizeof(*s));
	if (input) {
		int ret = hl_wav_load(input, WAV_MAX, &s->mem, &s->w);
		if (ret < 0)
			return fail("%s: not a WAV file of 16-bit PCM (%s)", input, hl_strerror(ret));
		s->rate = s->w.rate;
	} else {
		if (dev_open(&s->pcm, device_name(device), SND_PCM_STREAM_CAPTURE, rate))
			return 1;
		s->rate = rate;
	}
	s->t0 = mono_us();
	return 0;
}

/* Up to CAP frames; 0 at the end of an input file, negative on error. */
static long source_read(struct source *s, int16_t *buf, size_t cap)
{
	long n;
	if (s->pcm) {
		n = dev_read(s->pcm, buf, cap);
	} else {
		n = 0;
		for (; (size_t)n < cap && s->pos < s->w.frames; n++)
			buf[n] = hl_wav_mono(&s->w, s->pos++);
	}
	if (n > 0) {
		s->frames += (uint64_t)n;
		pace(s->t0, s->frames, s->rate);
	}
	return n;
}

static void source_close(struct source *s)
{
	if (s->pcm)
		snd_pcm_close(s->pcm);
	free(s->mem);
}

static int cmd_record(const char *device, const char *input, double seconds, const char *outpath)
{
	struct source s;
	if (source_open(&s, device, input, DEV_RATE))
		return 1;
	struct out o = { .fd = -1, .sync_each_page = 1 };
	OggOpusEnc *enc = enc_open(outpath, &o, (opus_int32)s.rate);
	if (!enc) {
		source_close(&s);
		return 1;
	}
	uint64_t limit = seconds > 0 ? (uint64_t)(seconds * s.rate) : UINT64_MAX;
	int16_t buf[PERIOD];
	int ret = 0;
	while (!stop_flag && s.frames < limit && !o.err) {
		size_t want = PERIOD;
		if (limit - s.frames < want)
			want = (size_t)(limit - s.frames);
		long n = source_read(&s, buf, want);
		if (n == 0)
			break;
		if (n < 0) {
			if (stop_flag)
				break;
			ret = fail("recording: %s", snd_strerror((int)n));
			break;
		}
		ope_encoder_write(enc, buf, (int)n);
	}
	source_close(&s);
	int fret = enc_finish(enc, &o, outpath);
	return ret ? ret : fret;
}

static int write_full(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t k = write(fd, b, n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The recording is the other side's bytes: a child under the decode
 * sandbox (daemon/sandbox.h: no file, no socket, nothing but a pipe)
 * parses it and writes the PCM to the pipe; this process, which holds the
 * sound device, only plays what comes out. */
struct decode_job {
	const uint8_t *buf;
	size_t len;
};

static int decode_write(void *arg, const int16_t *pcm, size_t frames)
{
	return write_full(*(const int *)arg, pcm, frames * 2) < 0 ? 1 : 0;
}

static int decode_child(void *arg, int fd)
{
	const struct decode_job *j = arg;
	return hl_oggopus_decode(j->buf, j->len, decode_write, &fd) < 0;
}

struct play_sink {
	snd_pcm_t *pcm;
	uint64_t t0, frames;
};

/* The decoder's PCM to the device, paced; non-zero stops. */
static int play_cb(void *arg, const int16_t *pcm, size_t frames)
{
	struct play_sink *p = arg;
	while (frames > 0 && !stop_flag) {
		long k = dev_write(p->pcm, pcm, frames);
		if (k < 0)
			return fail("playing: %s", snd_strerror((int)k));
		pcm += k;
		frames -= (size_t)k;
		p->frames += (uint64_t)k;
		pace(p->t0, p->frames, HL_OGGOPUS_RATE);
	}
	return stop_flag ? 1 : 0;
}

static int cmd_play(const char *device, const char *in)
{
	uint8_t *mem = NULL;
	size_t len = 0;
	char err[256];
	FILE *f = fopen(in, "rb");
	if (!f)
		return fail("%s: %s", in, strerror(errno));
	mem = malloc(HL_OGGOPUS_MAX + 1);
	if (mem)
		len = fread(mem, 1, HL_OGGOPUS_MAX + 1, f);
	fclose(f);
	if (!mem || len > HL_OGGOPUS_MAX) {
		free(mem);
		return fail("%s: too large for a voice message", in);
	}
	struct play_sink p = { .t0 = mono_us() };
	if (dev_open(&p.pcm, device_name(device), SND_PCM_STREAM_PLAYBACK, HL_OGGOPUS_RATE)) {
		free(mem);
		return 1;
	}
	struct decode_job j = { mem, len };
	int fd, ret;
	pid_t pid = hl_sandbox_child(decode_child, &j, &fd, err, sizeof(err));
	if (pid < 0) {
		ret = fail("%s", err);
	} else {
		ret = hl_pcm_pump(fd, play_cb, &p) > 0;
		close(fd);
		int st = hl_sandbox_child_status(pid, err, sizeof(err));
		if (st == HL_EINVAL && !ret)
			ret = fail("%s: not an Ogg Opus file", in);
		else if (st < 0 && !ret)
			ret = fail("%s", err);
	}
	if (!stop_flag)
		snd_pcm_drain(p.pcm);
	snd_pcm_close(p.pcm);
	free(mem);
	return ret && !stop_flag ? 1 : 0;
}

/* Calls: 20 ms pieces of 16 kHz mono s16le to stdout, until a signal or
 * stdout closes. */
static int cmd_capture(const char *device, const char *input)
{
	struct source s;
	if (source_open(&s, device, input, STREAM_RATE))
		return 1;
	if (input && s.rate != STREAM_RATE) {
		source_close(&s);
		return fail("%s: capture wants %u Hz", input, STREAM_RATE);
	}
	int16_t buf[STREAM_RATE / 50];
	int ret = 0;
	while (!stop_flag) {
		long n = source_read(&s, buf, sizeof(buf) / 2);
		if (n == 0)
			break;
		if (n < 0) {
			ret = stop_flag ? 0 : fail("capture: %s", snd_strerror((int)n));
			break;
		}
		if (write_full(STDOUT_FILENO, buf, (size_t)n * 2) < 0)
			break;
	}
	source_close(&s);
	return ret;
}

static int cmd_playback(const char *device)
{
	snd_pcm_t *pcm;
	if (dev_open(&pcm, device_name(device), SND_PCM_STREAM_PLAYBACK, STREAM_RATE))
		return 1;
	int16_t buf[STREAM_RATE / 50];
	uint64_t t0 = mono_us(), frames = 0;
	int ret = 0;
	while (!stop_flag) {
		ssize_t k = read(STDIN_FILENO, buf, sizeof(buf));
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		long w = dev_write(pcm, buf, (size_t)k / 2);
		if (w < 0) {
			ret = fail("playback: %s", snd_strerror((int)w));
			break;
		}
		frames += (uint64_t)w;
		pace(t0, frames, STREAM_RATE);
	}
	snd_pcm_close(pcm);
	return ret;
}

static void help(void)
{
	printf("usage: hotline-voice encode IN.wav OUT.opus\n"
	       "       hotline-voice record [--device D | --input IN.wav] [--seconds N] OUT.opus\n"
	       "       hotline-voice play [--device D] IN.opus\n"
	       "       hotline-voice capture [--device D | --input IN.wav]\n"
	       "       hotline-voice playback [--device D]\n\n"
	       "The sound device and Ogg Opus writing for `hotline voice` and `hotline call`.\n"
	       "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'D' },
		{ "input", required_argument, NULL, 'i' },
		{ "seconds", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *device = NULL, *input = NULL;
	double seconds = 0;
	int c;
	if (argc < 2) {
		help();
		return 2;
	}
	const char *cmd = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "D:i:t:h", opts, NULL)) != -1) {
		switch (c) {
		case 'D': device = optarg; break;
		case 'i': input = optarg; break;
		case 't': {
			char *end;
			seconds = strtod(optarg, &end);
			if (*end || !(seconds > 0) || seconds > HL_OGGOPUS_SECONDS_MAX) {
				fprintf(stderr, "hotline-voice: bad --seconds '%s'\n", optarg);
				return 2;
			}
			break;
		}
		case 'h': help(); return 0;
		default: return 2;
		}
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	int left = argc - optind;
	if (strcmp(cmd, "encode") == 0 && left == 2)
		return cmd_encode(argv[optind], argv[optind + 1]);
	if (strcmp(cmd, "record") == 0 && left == 1)
		return cmd_record(device, input, seconds, argv[optind]);
	if (strcmp(cmd, "play") == 0 && left == 1)
		return cmd_play(device, argv[optind]);
	if (strcmp(cmd, "capture") == 0 && left == 0)
		return cmd_capture(device, input);
	if (strcmp(cmd, "playback") == 0 && left == 0)
		return cmd_playback(device);
	help();
	return 2;
}
