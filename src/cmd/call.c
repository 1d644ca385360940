/* cmd/call.c — `hotline call`: live calls (docs/voice.md).
 *
 *   hotline call PEER [-p P] [--input IN.wav] [--output OUT.wav] [--device D]
 *                [--seconds N] [--timeout S] [--json]
 *   hotline call answer [PEER] [--input IN.wav] [--output OUT.wav] [--device D]
 *                [--seconds N] [--json]
 *   hotline call hangup [PEER]
 *
 * The daemon does the call (daemon/calls.c); this command is the
 * operator's handset.  It asks the daemon to ring (or answer) over the
 * control socket, which then carries the call's audio both ways: frames of
 * a type byte, a 2-byte length and the payload — 'A' 20 ms of 16 kHz mono
 * s16le PCM, 'E' an event (JSON), 'H' hang up (from us, empty).  The
 * microphone and the speaker are the sound device (through hotline-voice,
 * the helper that owns ALSA), or --input (read in real time from the
 * answer on; afterwards silence) and --output (written as the call is
 * heard, from the answer on).  Ctrl-C, --seconds or the end of the call
 * ends it; the summary goes to stderr (--json: one JSON object on stdout,
 * with the monotonic times the first input frame went and the first
 * output frame came, for measuring mouth-to-ear delay). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <speex/speex_resampler.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "daemon/control_client.h"
#include "daemon/control_proto.h"
#include "msg/item.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "voice/helper.h"
#include "voice/stream.h"
#include "voice/wav.h"

#define RATE 16000
#define FRAME 320
#define FRAME_BYTES (FRAME * 2)
#define HDR HL_STREAM_HDR
#define WAV_MAX (1u << 30)
#define HANGUP_GRACE_MS 3000

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double mono_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct opts {
	const char *peer, *input, *output, *device, *prec;
	double seconds, timeout;
	bool json;
};

struct handset {
	const struct opts *o;
	int fd;                       /* the daemon */
	/* input: a file at 16 kHz, or the helper's capture pipe */
	int16_t *in;
	size_t in_frames, in_pos;
	int cap_fd;
	pid_t cap_pid;
	uint8_t cap_buf[FRAME_BYTES];
	size_t cap_len;
	/* output */
	struct hl_wav_writer wav;
	bool wav_open;
	int play_fd;
	pid_t play_pid;
	/* the stream from the daemon */
	uint8_t rbuf[HDR + 65535];
	size_t rlen;
	bool answered, ended, hung_up;
	int64_t answered_ms, next_send_ms, hangup_ms;
	double in_start, out_start;   /* monotonic s: first frame sent, first received */
	uint64_t frames_sent, frames_heard;
	json_t *end_event;
};

/* The whole input file at 16 kHz mono (speexdsp's resampler when it is
 * at another rate). */
static int load_input(struct handset *h, const char *path)
{
	uint8_t *mem;
	struct hl_wav w;
	int ret = hl_wav_load(path, WAV_MAX, &mem, &w);
	if (ret < 0)
		return hl_fail("call", "%s: not a WAV file of 16-bit PCM (%s)", path, hl_strerror(ret));
	int16_t *mono = xmalloc((w.frames + 1) * sizeof(int16_t));
	for (size_t i = 0; i < w.frames; i++)
		mono[i] = hl_wav_mono(&w, i);
	free(mem);
	if (w.rate == RATE) {
		h->in = mono;
		h->in_frames = w.frames / FRAME;
		return 0;
	}
	int err = 0;
	SpeexResamplerState *rs = speex_resampler_init(1, w.rate, RATE, 5, &err);
	spx_uint32_t in_len = (spx_uint32_t)w.frames;
	spx_uint32_t out_len = (spx_uint32_t)((uint64_t)w.frames * RATE / w.rate + FRAME);
	h->in = xmalloc(out_len * sizeof(int16_t));
	speex_resampler_process_int(rs, 0, mono, &in_len, h->in, &out_len);
	speex_resampler_destroy(rs);
	free(mono);
	h->in_frames = out_len / FRAME;
	return 0;
}

static int write_all(int fd, const void *p, size_t n)
{
	const uint8_t *b = p;
	while (n > 0) {
		ssize_t k = write(fd, b, n);
		if (k < 0 && (errno == EINTR || errno == EAGAIN)) {
			struct pollfd pf = { fd, POLLOUT, 0 };
			poll(&pf, 1, 100);
			continue;
		}
		if (k <= 0)
			return -1;
		b += k;
		n -= (size_t)k;
	}
	return 0;
}

static int send_frame(struct handset *h, uint8_t type, const void *p, size_t n)
{
	uint8_t b[HDR + FRAME_BYTES];
	hl_stream_header(b, type, n);
	if (n)
		memcpy(b + HDR, p, n);
	return write_all(h->fd, b, HDR + n);
}

static void hang_up(struct handset *h)
{
	if (h->hung_up)
		return;
	h->hung_up = true;
	h->hangup_ms = mono_ms();
	send_frame(h, HL_STREAM_HANGUP, NULL, 0);
}

static void heard(struct handset *h, const uint8_t *pcm, size_t n)
{
	if (h->frames_heard++ == 0)
		h->out_start = mono_s();
	if (h->wav_open)
		hl_wav_write(&h->wav, (const int16_t *)pcm, n / 2);
	if (h->play_fd >= 0 && write_all(h->play_fd, pcm, n) < 0) {
		close(h->play_fd);
		h->play_fd = -1;
	}
}

static void event(struct handset *h, const uint8_t *p, size_t n)
{
	json_t *ev = json_loadb((const char *)p, n, 0, NULL);
	const char *kind = json_string_value(json_object_get(ev, "event"));
	if (!kind) {
		json_decref(ev);
		return;
	}
	if (strcmp(kind, "call_ringing") == 0) {
		fprintf(stderr, "hotline call: ringing at %s\n", h->o->peer ? h->o->peer : "the peer");
	} else if (strcmp(kind, "call_answered") == 0 && !h->answered) {
		h->answered = true;
		h->answered_ms = h->next_send_ms = mono_ms();
		fprintf(stderr, "hotline call: answered; talking (Ctrl-C hangs up)\n");
	} else if (strcmp(kind, "call_ended") == 0) {
		h->ended = true;
		h->end_event = json_incref(ev);
	}
	json_decref(ev);
}

/* Takes what the daemon sent; 0, or -1 when the stream ended. */
static int from_daemon(struct handset *h)
{
	ssize_t k = read(h->fd, h->rbuf + h->rlen, sizeof(h->rbuf) - h->rlen);
	if (k < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (k <= 0)
		return -1;
	h->rlen += (size_t)k;
	for (;;) {
		uint8_t type;
		const uint8_t *p;
		size_t n, used;
		if (hl_stream_next(h->rbuf, h->rlen, 0xffff, &type, &p, &n, &used) <= 0)
			break;
		if (type == HL_STREAM_AUDIO && n == FRAME_BYTES)
			heard(h, p, n);
		else if (type == HL_STREAM_EVENT)
			event(h, p, n);
		memmove(h->rbuf, h->rbuf + used, h->rlen - used);
		h->rlen -= used;
	}
	return 0;
}

/* The next frames of the input file, paced on the clock from the answer. */
static void send_input(struct handset *h, int64_t now)
{
	while (h->answered && !h->hung_up && h->in && h->in_pos < h->in_frames &&
	       h->next_send_ms <= now) {
		if (h->frames_sent++ == 0)
			h->in_start = mono_s();
		send_frame(h, HL_STREAM_AUDIO, h->in + h->in_pos * FRAME, FRAME_BYTES);
		h->in_pos++;
		h->next_send_ms += 20;
	}
}

static void from_capture(struct handset *h)
{
	ssize_t k = read(h->cap_fd, h->cap_buf + h->cap_len, sizeof(h->cap_buf) - h->cap_len);
	if (k <= 0) {
		if (k == 0 || (errno != EINTR && errno != EAGAIN)) {
			close(h->cap_fd);
			h->cap_fd = -1;
		}
		return;
	}
	h->cap_len += (size_t)k;
	if (h->cap_len < FRAME_BYTES)
		return;
	h->cap_len = 0;
	if (h->answered && !h->hung_up) {
		if (h->frames_sent++ == 0)
			h->in_start = mono_s();
		send_frame(h, HL_STREAM_AUDIO, h->cap_buf, FRAME_BYTES);
	}
}

static int loop(struct handset *h)
{
	while (!h->ended) {
		int64_t now = mono_ms();
		if (interrupted)
			hang_up(h);
		if (h->answered && h->o->seconds > 0 &&
		    now - h->answered_ms >= (int64_t)(h->o->seconds * 1000))
			hang_up(h);
		if (h->hung_up && now - h->hangup_ms > HANGUP_GRACE_MS)
			return hl_fail("call", "the daemon did not confirm the end of the call");
		send_input(h, now);
		struct pollfd pf[2] = { { h->fd, POLLIN, 0 }, { h->cap_fd, POLLIN, 0 } };
		int wait = 20;
		if (h->answered && h->in && h->in_pos < h->in_frames)
			wait = (int)(h->next_send_ms > now ? h->next_send_ms - now : 0);
		if (poll(pf, h->cap_fd >= 0 ? 2 : 1, wait) < 0 && errno != EINTR)
			return hl_fail("call", "poll: %s", strerror(errno));
		if ((pf[0].revents & (POLLIN | POLLHUP | POLLERR)) && from_daemon(h) < 0) {
			if (!h->ended)
				return hl_fail("call", "the daemon closed the call's connection");
		}
		if (h->cap_fd >= 0 && (pf[1].revents & (POLLIN | POLLHUP)))
			from_capture(h);
	}
	return HL_EXIT_OK;
}

static void summary(struct handset *h)
{
	json_t *ev = h->end_event;
	const char *reason = json_string_value(json_object_get(ev, "reason"));
	const char *by = json_string_value(json_object_get(ev, "by"));
	json_t *dur = json_object_get(ev, "duration_ms");
	if (h->o->json) {
		json_t *o = json_pack("{s:O, s:f, s:f, s:I, s:I}", "call", ev, "input_start", h->in_start,
				      "output_start", h->out_start, "frames_sent",
				      (json_int_t)h->frames_sent, "frames_heard",
				      (json_int_t)h->frames_heard);
		char *s = json_dumps(o, JSON_COMPACT);
		printf("%s\n", s);
		free(s);
		json_decref(o);
	}
	fprintf(stderr, "hotline call: ended (%s, by %s)", reason ? reason : "?",
		by && strcmp(by, "us") == 0 ? "this station" : "the peer");
	if (json_is_integer(dur))
		fprintf(stderr, " after %.1f s", (double)json_integer_value(dur) / 1000.0);
	fprintf(stderr, "\n");
}

/* A call ended well when it was hung up by either side (or by --seconds):
 * busy, no answer, preempted, lost or failed make the exit status 1, so a
 * script can tell a call that took place from one that did not. */
static bool ended_well(const struct handset *h)
{
	const char *reason = json_string_value(json_object_get(h->end_event, "reason"));
	return reason && strcmp(reason, "hangup") == 0;
}

static int setup_audio(struct handset *h, const struct opts *o)
{
	h->cap_fd = h->play_fd = -1;
	if (o->input) {
		int ret = load_input(h, o->input);
		if (ret != 0)
			return ret;
	}
	if (o->output) {
		if (hl_wav_create(&h->wav, o->output, RATE, 1, 0) < 0)
			return hl_fail("call", "cannot create %s: %s", o->output, strerror(errno));
		h->wav_open = true;
	}
	const char *dev_args[4] = { NULL, "--device", o->device, NULL };
	if (!o->device)
		dev_args[1] = NULL;
	if (!o->input) {
		dev_args[0] = "capture";
		h->cap_pid = hl_voice_helper_spawn(dev_args, NULL, &h->cap_fd);
		if (h->cap_pid < 0)
			return hl_fail("call", "cannot start hotline-voice for the microphone");
	}
	if (!o->output) {
		dev_args[0] = "playback";
		h->play_pid = hl_voice_helper_spawn(dev_args, &h->play_fd, NULL);
		if (h->play_pid < 0)
			return hl_fail("call", "cannot start hotline-voice for the speaker");
	}
	return 0;
}

static void teardown(struct handset *h)
{
	if (h->wav_open)
		hl_wav_close(&h->wav);
	if (h->cap_fd >= 0)
		close(h->cap_fd);
	if (h->play_fd >= 0)
		close(h->play_fd);
	if (h->cap_pid > 0) {
		kill(h->cap_pid, SIGTERM);
		waitpid(h->cap_pid, NULL, 0);
	}
	if (h->play_pid > 0)
		waitpid(h->play_pid, NULL, 0);   /* it plays out what it has, then ends */
	if (h->fd >= 0)
		close(h->fd);
	free(h->in);
	json_decref(h->end_event);
}

/* Reads the daemon's first line (its answer to the request). */
static int first_line(int fd, json_t **out)
{
	char line[HL_CONTROL_MAX_LINE];
	size_t n = 0;
	int64_t deadline = mono_ms() + HL_CONTROL_TIMEOUT_MS;
	while (n < sizeof(line) - 1) {
		struct pollfd pf = { fd, POLLIN, 0 };
		int64_t left = deadline - mono_ms();
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			return HL_ETIMEOUT;
		ssize_t k = read(fd, line + n, 1);   /* byte by byte: frames follow the line */
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0)
			return HL_EINVAL;
		if (line[n] == '\n') {
			*out = json_loadb(line, n, 0, NULL);
			return *out ? 0 : HL_EINVAL;
		}
		n++;
	}
	return HL_ETOOBIG;
}

static int run_call(struct hl_ctx *ctx, const struct opts *o, json_t *req)
{
	struct handset h;
	memset(&h, 0, sizeof(h));
	h.o = o;
	h.fd = -1;
	int ret = setup_audio(&h, o);
	json_t *first = NULL;
	if (ret != 0)
		goto out;
	int r = hl_control_send(ctx->dir, req, HL_CONTROL_TIMEOUT_MS, &h.fd);
	if (r == HL_ENODAEMON) {
		ret = hl_fail("call", "no daemon is running for %s (hotline run)", ctx->dir);
		goto out;
	}
	if (r < 0 || (r = first_line(h.fd, &first)) < 0) {
		ret = hl_fail("call", "the daemon did not answer: %s", hl_strerror(r));
		goto out;
	}
	if (!json_is_true(json_object_get(first, "ok"))) {
		char clean[300];
		const char *e = json_string_value(json_object_get(first, "error"));
		hl_sanitize(e ? e : "refused", strlen(e ? e : "refused"), clean, sizeof(clean), 0);
		ret = hl_fail("call", "%s", clean);
		goto out;
	}
	const char *ev = json_string_value(json_object_get(first, "event"));
	if (ev && strcmp(ev, "call_answered") == 0) {
		h.answered = true;
		h.answered_ms = h.next_send_ms = mono_ms();
		fprintf(stderr, "hotline call: answered; talking (Ctrl-C hangs up)\n");
	} else {
		fprintf(stderr, "hotline call: calling %s\n", o->peer);
	}
	struct sigaction sa = { .sa_handler = on_sigint };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	ret = loop(&h);
	if (ret == HL_EXIT_OK) {
		summary(&h);
		ret = ended_well(&h) ? HL_EXIT_OK : HL_EXIT_FAIL;
	}
out:
	json_decref(first);
	teardown(&h);
	return ret;
}

static void help(void)
{
	printf("usage: hotline call PEER [-p PRECEDENCE] [--input IN.wav] [--output OUT.wav]\n"
	       "                    [--device D] [--seconds N] [--timeout S] [--json]\n"
	       "       hotline call answer [PEER] [--input IN.wav] [--output OUT.wav] [--device D]\n"
	       "                    [--seconds N] [--json]\n"
	       "       hotline call hangup [PEER]\n\n"
	       "Rings PEER (a FLASH call preempts a call of lower precedence), answers a ringing\n"
	       "call, or ends the call on the line.  The sound device is the handset; --input\n"
	       "and --output replace it with WAV files (input read in real time).\n\n"
	       "  -p, --precedence P  flash, immediate, priority or routine (default routine)\n"
	       "      --seconds N     hang up N seconds after the answer\n"
	       "      --timeout S     stop ringing after S seconds (default 60)\n"
	       "      --json          the call's summary and statistics as JSON on stdout\n\n"
	       "Exit status 0 when the call took place and was hung up; 1 when it ended\n"
	       "otherwise (busy, no answer, preempted, lost, failed) or could not be made.\n");
}

int call_main(struct hl_ctx *ctx, int argc, char **argv)
{
	static const struct option lopts[] = {
		{ "precedence", required_argument, NULL, 'p' },
		{ "input", required_argument, NULL, 'i' },
		{ "output", required_argument, NULL, 'o' },
		{ "device", required_argument, NULL, 'D' },
		{ "seconds", required_argument, NULL, 't' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { 0 };
	int c;
	while ((c = getopt_long(argc, argv, "p:h", lopts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'p': {
			enum hl_precedence pr;
			if (hl_precedence_parse(optarg, &pr) < 0)
				return hl_usage_error("call", "unknown precedence '%s'", optarg);
			o.prec = hl_precedence_name(pr);
			break;
		}
		case 'i': o.input = optarg; break;
		case 'o': o.output = optarg; break;
		case 'D': o.device = optarg; break;
		case 't':
		case 'T': {
			double v = strtod(optarg, &end);
			if (*end || !(v > 0) || v > 86400)
				return hl_usage_error("call", "bad --%s '%s'", c == 't' ? "seconds" : "timeout",
						      optarg);
			*(c == 't' ? &o.seconds : &o.timeout) = v;
			break;
		}
		case 'j': o.json = true; break;
		case 'h': help(); return HL_EXIT_OK;
		default: return HL_EXIT_USAGE;
		}
	}
	int left = argc - optind;
	char **args = argv + optind;
	if (left < 1)
		return hl_usage_error("call", "expected PEER, 'answer [PEER]' or 'hangup [PEER]'");
	json_t *req;
	int ret;
	if (strcmp(args[0], "hangup") == 0 && left <= 2) {
		req = hl_ctl_request_json(&(struct hl_ctl_request){
			.cmd = HL_CTL_CALL_HANGUP, .peer = left == 2 ? args[1] : NULL });
		json_t *resp = NULL;
		int r = hl_control_call(ctx->dir, req, HL_CONTROL_TIMEOUT_MS, &resp);
		json_decref(req);
		if (r < 0)
			return hl_fail("call", "%s", r == HL_ENODAEMON ? "no daemon is running" : hl_strerror(r));
		const char *e = json_string_value(json_object_get(resp, "error"));
		char clean[300];
		if (e)
			hl_sanitize(e, strlen(e), clean, sizeof(clean), 0);
		ret = json_is_true(json_object_get(resp, "ok")) ? HL_EXIT_OK : hl_fail("call", "%s", e ? clean : "refused");
		json_decref(resp);
		return ret;
	}
	if (strcmp(args[0], "answer") == 0 && left <= 2) {
		o.peer = left == 2 ? args[1] : NULL;
		req = hl_ctl_request_json(&(struct hl_ctl_request){ .cmd = HL_CTL_CALL_ANSWER,
								    .peer = o.peer });
	} else if (left == 1) {
		o.peer = args[0];
		struct hl_ctl_request r = { .cmd = HL_CTL_CALL, .peer = o.peer };
		if (o.prec)
			(void)hl_precedence_parse(o.prec, &r.u.call.precedence);
		if (o.timeout > 0)
			r.u.call.ring_timeout_ms = (uint64_t)(o.timeout * 1000);
		req = hl_ctl_request_json(&r);
	} else {
		return hl_usage_error("call", "expected PEER, 'answer [PEER]' or 'hangup [PEER]'");
	}
	ret = run_call(ctx, &o, req);
	json_decref(req);
	return ret;
}
