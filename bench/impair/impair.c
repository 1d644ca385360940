/* bench/impair/impair.c — the path model (impair.h). */
#include "impair.h"

#include <stdbool.h>
#include <string.h>

static uint64_t splitmix64(uint64_t *x)
{
	uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

void hl_impair_init(struct hl_impair *im, const struct hl_impair_params *p)
{
	memset(im, 0, sizeof(*im));
	im->p = *p;
	uint64_t s = p->seed;
	im->rng[0] = splitmix64(&s);
	im->rng[1] = splitmix64(&s);
}

/* xoroshiro128+ */
uint64_t hl_impair_next(struct hl_impair *im)
{
	uint64_t s0 = im->rng[0], s1 = im->rng[1], r = s0 + s1;
	s1 ^= s0;
	im->rng[0] = rotl(s0, 24) ^ s1 ^ (s1 << 16);
	im->rng[1] = rotl(s1, 37);
	return r;
}

double hl_impair_uniform(struct hl_impair *im)
{
	return (double)(hl_impair_next(im) >> 11) * 0x1.0p-53;
}

static uint64_t ms_to_us(double ms)
{
	return ms > 0 ? (uint64_t)(ms * 1000.0 + 0.5) : 0;
}

/* Stages 3 to 5 for one copy: false when the queue drops it, else true
 * with its time of arrival at the far end in *OUT. */
static bool one_copy(struct hl_impair *im, uint64_t now_us, size_t len, uint64_t *out)
{
	uint64_t depart = now_us;
	if (im->p.rate > 0) {
		uint64_t start = im->link_free_us > now_us ? im->link_free_us : now_us;
		double waiting = (double)(start - now_us) / 1e6 * im->p.rate;
		if (im->p.queue && waiting + (double)len > (double)im->p.queue) {
			im->st.queue_drops++;
			return false;
		}
		depart = start + (uint64_t)((double)len / im->p.rate * 1e6 + 0.5);
		im->link_free_us = depart;
	}
	double jitter = im->p.jitter_ms > 0
			? (2.0 * hl_impair_uniform(im) - 1.0) * im->p.jitter_ms : 0.0;
	double d = im->p.delay_ms + jitter;
	uint64_t t = depart + ms_to_us(d > 0 ? d : 0);
	if (im->p.reorder > 0 && hl_impair_uniform(im) < im->p.reorder) {
		im->st.reordered++;
		*out = t + ms_to_us(im->p.reorder_gap_ms);
		return true;
	}
	if (t < im->last_release_us)
		t = im->last_release_us;
	im->last_release_us = t;
	*out = t;
	return true;
}

unsigned hl_impair_packet(struct hl_impair *im, uint64_t now_us, size_t len,
			  uint64_t out_us[static 2])
{
	im->st.in++;
	im->st.bytes_in += len;
	if (im->p.loss > 0 && hl_impair_uniform(im) < im->p.loss) {
		im->st.lost++;
		return 0;
	}
	unsigned copies = 1;
	if (im->p.dup > 0 && hl_impair_uniform(im) < im->p.dup) {
		copies = 2;
		im->st.dup++;
	}
	unsigned n = 0;
	for (unsigned i = 0; i < copies; i++) {
		uint64_t t;
		if (!one_copy(im, now_us, len, &t))
			continue;
		out_us[n++] = t;
		im->st.out++;
		im->st.bytes_out += len;
	}
	return n;
}
