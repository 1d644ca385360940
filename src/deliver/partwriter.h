/* deliver/partwriter.h — an incoming part's bytes hashed and appended to
 * its file on a thread of their own.
 *
 * Why: receiving a large document, the daemon's one thread would otherwise
 * decrypt, hash (SHA-256, about 1.1 GB/s here) and write every byte in
 * turn; with the hashing and writing on a second thread the two halves run
 * on two cores.  The engine (deliver/parts.c) hands each chunk over with
 * hl_partwriter_push(), reads how much is durable with
 * hl_partwriter_synced() (the worker fdatasyncs every SYNC_EVERY bytes),
 * and at the part's end waits for the worker with hl_partwriter_finish():
 * only then does it look at the hash and the file again.  While a writer
 * runs, the hash state and the file writer it was given belong to it.
 *
 * A chunk pushed is copied into a ring of HL_PARTWRITER_SLOTS chunks;
 * when the ring is full, push waits for the worker.  With CREDIT
 * (docs/messages.md) the sender keeps no more in flight than the ring
 * holds, so push does not wait: the worker counts what it has hashed and
 * written into the engine's TAKEN counter and wakes the daemon's loop
 * (WAKE) every STEP bytes and whenever the ring runs empty, and the
 * engine sends CREDIT for it. */
#ifndef HL_DELIVER_PARTWRITER_H
#define HL_DELIVER_PARTWRITER_H

#include <stddef.h>
#include <stdint.h>

#include "msg/item.h"
#include "util/dio.h"

typedef struct hl_partwriter hl_partwriter;

/* The ring: this many chunks of up to 64 KiB each. */
#define HL_PARTWRITER_SLOTS 32

/* Who hears of the worker's progress (all optional). */
struct hl_partwriter_progress {
	_Atomic uint64_t *taken;   /* += every byte hashed and written */
	void (*wake)(void *arg);   /* called on the worker's thread */
	void *arg;
	uint64_t step;             /* wake after this many bytes */
};

/* Starts a worker appending to W (positioned at byte START) and hashing
 * into HS; it makes the file durable every SYNC_EVERY bytes.  PROGRESS
 * may be NULL.  0 or -errno (no thread could be started: the caller goes
 * on without). */
int hl_partwriter_start(hl_partwriter **out, struct hl_dio_writer *w,
			hl_parthash *hs, uint64_t start, uint64_t sync_every,
			const struct hl_partwriter_progress *progress);
/* Queues LEN bytes.  Returns the worker's first error, if any. */
int hl_partwriter_push(hl_partwriter *pw, const uint8_t *data, size_t len);
/* The offset up to which the file is durable (START at first). */
uint64_t hl_partwriter_synced(hl_partwriter *pw);
/* Waits until everything queued is hashed and appended, stops the worker
 * and frees it.  Returns the worker's first error, if any. */
int hl_partwriter_finish(hl_partwriter *pw);
/* Stops the worker, dropping what is queued, and frees it (NULL-safe). */
void hl_partwriter_abort(hl_partwriter *pw);

#endif
