/* record/kinds.c — the kind table (kinds.h): per kind of item, the
 * record's cross-checks and its lines in `record show`. */
#include "record/kinds.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "msg/message.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

static int why(struct hl_record_check *c, int verdict, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int why(struct hl_record_check *c, int verdict, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, c->whylen, fmt, ap);
	va_end(ap);
	return verdict;
}

/* The first 8 bytes of a hash in hex: enough for people to tell two apart. */
static void short_hash(const uint8_t *h, char out[17])
{
	hl_hex(h, 8, out);
}

static const char *station(const struct hl_record_check *c, unsigned chain)
{
	return c->name[chain];
}

/* ---- messages ---- */

static int message_check_att(struct hl_record_check *c, const struct hl_item_message *m)
{
	const struct hl_record *rec = c->rec;
	uint8_t h[HL_HASH_LEN];
	for (size_t i = (size_t)c->entry->first_att;
	     i < rec->natts && rec->atts[i].chain == c->chain && rec->atts[i].seq == c->seq; i++) {
		const struct hl_record_att *a = &rec->atts[i];
		if (a->index >= m->n_attachments)
			return why(c, HL_RECORD_BAD_SELF, "attachment %u is given, but the message "
				   "has %u attachment(s)", a->index, m->n_attachments);
		if (a->size != m->att[a->index].size)
			return why(c, HL_RECORD_BAD_SELF, "attachment %u has %llu bytes, but the "
				   "signed item says %llu", a->index, (unsigned long long)a->size,
				   (unsigned long long)m->att[a->index].size);
		crypto_generichash(h, HL_HASH_LEN, a->data, a->size, NULL, 0);
		if (sodium_memcmp(h, m->att[a->index].hash, HL_HASH_LEN) != 0)
			return why(c, HL_RECORD_BAD_SELF, "attachment %u does not match its signed "
				   "hash", a->index);
	}
	return HL_RECORD_CHECK_OK;
}

static int message_check(struct hl_record_check *c)
{
	const struct hl_item_message *m = &c->it->u.msg;
	uint8_t h[HL_HASH_LEN];
	/* class_seq numbers each precedence's messages in order; a refused
	 * one may leave a gap, but never a step back. */
	uint64_t *last = &c->state->class_seq[m->precedence];
	if (m->class_seq <= *last)
		return why(c, HL_RECORD_BAD_SELF, "%s message number %llu comes after number %llu",
			   hl_precedence_name(m->precedence), (unsigned long long)m->class_seq,
			   (unsigned long long)*last);
	*last = m->class_seq;
	if (c->entry->content >= 0) {
		const struct hl_record_content *ct = &c->rec->contents[c->entry->content];
		hl_salted_hash(ct->salt, HL_LABEL_SUBJECT, ct->subject, ct->subject_len, h);
		if (sodium_memcmp(h, m->subject_hash, HL_HASH_LEN) != 0)
			return why(c, HL_RECORD_BAD_SELF, "the disclosed subject does not match its "
				   "signed hash");
		if (ct->body_len != m->body_size)
			return why(c, HL_RECORD_BAD_SELF, "the disclosed body has %u bytes, but the "
				   "signed item says %llu", ct->body_len,
				   (unsigned long long)m->body_size);
		hl_salted_hash(ct->salt, HL_LABEL_BODY, ct->body, ct->body_len, h);
		if (sodium_memcmp(h, m->body_hash, HL_HASH_LEN) != 0)
			return why(c, HL_RECORD_BAD_SELF, "the disclosed body does not match its "
				   "signed hash");
	}
	if (c->entry->first_att >= 0)
		return message_check_att(c, m);
	return HL_RECORD_CHECK_OK;
}

static void print_text(FILE *f, const char *prefix, const uint8_t *p, size_t len)
{
	char *clean = xmalloc(len * 3 + 2);
	hl_sanitize((const char *)p, len, clean, len * 3 + 2, 1);
	char *line = clean;
	for (;;) {
		char *nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if (*line || nl)
			fprintf(f, "%s%s\n", prefix, line);
		if (!nl)
			break;
		line = nl + 1;
	}
	free(clean);
}

static void message_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
			 const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_message *m = &it->u.msg;
	const struct hl_record *rec = s->rec;
	char hex[65], text[HL_SUBJECT_MAX * 3 + 2], when[HL_RFC3339_LEN];
	char upper[16] = "";
	const char *pn = hl_precedence_name(m->precedence);
	for (size_t i = 0; pn[i] && i + 1 < sizeof(upper); i++)
		upper[i] = (char)(pn[i] - 'a' + 'A');
	hl_msg_id_hex(m->id, hex);
	fprintf(s->out, "message %s  %s\n", upper, hex);
	const struct hl_record_content *ct = e->content >= 0 ? &rec->contents[e->content] : NULL;
	if (ct) {
		hl_sanitize((const char *)ct->subject, ct->subject_len, text, sizeof(text), 0);
		fprintf(s->out, "    Subject:  %s\n", text);
	} else {
		fprintf(s->out, "    Subject:  (withheld)\n");
	}
	uint64_t r = s->first_ref[chain][seq - 1];
	if (r) {
		hl_rfc3339((int64_t)s->time[1 - chain][r - 1], when);
		fprintf(s->out, "    Receipt:  %s's #%llu at %s\n", s->name[1 - chain],
			(unsigned long long)r, when);
	} else {
		fprintf(s->out, "    Receipt:  none in this record\n");
	}
	for (unsigned i = 0; i < m->n_attachments; i++) {
		bool included = false;
		for (size_t a = e->first_att >= 0 ? (size_t)e->first_att : rec->natts;
		     a < rec->natts && rec->atts[a].chain == chain && rec->atts[a].seq == seq; a++)
			included = included || rec->atts[a].index == i;
		hl_sanitize((const char *)m->att[i].name, m->att[i].name_len, text, sizeof(text), 0);
		hl_hex(m->att[i].hash, HL_HASH_LEN, hex);
		fprintf(s->out, "    Attached: %s (%llu bytes, blake2b-256 %s)%s\n", text,
			(unsigned long long)m->att[i].size, hex,
			included ? "" : ", not included");
	}
	if (ct)
		print_text(s->out, "    | ", ct->body, ct->body_len);
	else
		fprintf(s->out, "    (contents withheld: the signed item proves them by their salted hashes)\n");
}

/* ---- receipts ---- */

/* PEER_SEQ and PEER_HASH: the other chain's head as the item's author held
 * it when it signed (receipts, checks, answers).  It only grows along a
 * chain, and the record must hold that very entry. */
static int head_check(struct hl_record_check *c, uint64_t peer_seq, const uint8_t *peer_hash)
{
	const struct hl_record *rec = c->rec;
	unsigned other = 1 - c->chain;
	char h1[17], h2[17];
	if (peer_seq < c->state->peer_seq)
		return why(c, HL_RECORD_BAD_SELF, "says it holds %s's chain up to %llu, after an "
			   "earlier item said %llu", station(c, other),
			   (unsigned long long)peer_seq, (unsigned long long)c->state->peer_seq);
	c->state->peer_seq = peer_seq;
	if (peer_seq == 0)
		return HL_RECORD_CHECK_OK;
	if (peer_seq > rec->n[other])
		return why(c, HL_RECORD_BAD_CROSS, "says it holds %s's chain up to %llu, but "
			   "the record has only %zu entries of it", station(c, other),
			   (unsigned long long)peer_seq, rec->n[other]);
	const struct hl_record_entry *e = &rec->entries[other][peer_seq - 1];
	if (e->type == HL_RECORD_ABSENT)
		return why(c, HL_RECORD_BAD_CROSS, "says it holds %s's chain up to %llu, "
			   "which the record marks as not received", station(c, other),
			   (unsigned long long)peer_seq);
	if (sodium_memcmp(e->hash, peer_hash, HL_HASH_LEN) != 0) {
		short_hash(peer_hash, h1);
		short_hash(e->hash, h2);
		return why(c, HL_RECORD_BAD_CROSS, "names %s's entry %llu with hash %s..., but "
			   "the record's entry %llu has hash %s...", station(c, other),
			   (unsigned long long)peer_seq, h1, (unsigned long long)peer_seq, h2);
	}
	return HL_RECORD_CHECK_OK;
}

static int receipt_check(struct hl_record_check *c)
{
	const struct hl_item_receipt *r = &c->it->u.rcpt;
	const struct hl_record *rec = c->rec;
	unsigned other = 1 - c->chain;
	char h1[17], h2[17];
	int ret = head_check(c, r->peer_seq, r->peer_hash);
	if (ret != HL_RECORD_CHECK_OK)
		return ret;
	for (unsigned i = 0; i < r->count; i++) {
		const struct hl_receipt_entry *re = &r->entries[i];
		if (re->seq > rec->n[other])
			return why(c, HL_RECORD_BAD_CROSS, "acknowledges %s's entry %llu, but the "
				   "record has only %zu entries of it", station(c, other),
				   (unsigned long long)re->seq, rec->n[other]);
		const struct hl_record_entry *e = &rec->entries[other][re->seq - 1];
		if (e->type != HL_RECORD_ITEM)
			return why(c, HL_RECORD_BAD_CROSS, "acknowledges %s's entry %llu, which the "
				   "record marks as %s", station(c, other), (unsigned long long)re->seq,
				   e->type == HL_RECORD_REFUSED ? "refused" : "not received");
		if (sodium_memcmp(e->hash, re->hash, HL_HASH_LEN) != 0) {
			short_hash(re->hash, h1);
			short_hash(e->hash, h2);
			return why(c, HL_RECORD_BAD_CROSS, "acknowledges %s's entry %llu with hash "
				   "%s..., but the record's entry %llu has hash %s...",
				   station(c, other), (unsigned long long)re->seq, h1,
				   (unsigned long long)re->seq, h2);
		}
	}
	return HL_RECORD_CHECK_OK;
}

static void receipt_index(struct hl_record_show *s, unsigned chain, uint64_t seq,
			  const struct hl_item *it)
{
	unsigned other = 1 - chain;
	for (unsigned i = 0; i < it->u.rcpt.count; i++) {
		uint64_t q = it->u.rcpt.entries[i].seq;
		if (q <= s->rec->n[other] && s->first_ref[other][q - 1] == 0)
			s->first_ref[other][q - 1] = seq;
	}
}

static void receipt_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
			 const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_receipt *r = &it->u.rcpt;
	const char *other = s->name[1 - chain];
	(void)seq;
	(void)e;
	fprintf(s->out, "receipt: acknowledges %s's", other);
	/* Runs of consecutive seqs as ranges: up to 256 entries stay short. */
	for (unsigned i = 0; i < r->count;) {
		unsigned j = i;
		while (j + 1 < r->count && r->entries[j + 1].seq == r->entries[j].seq + 1)
			j++;
		if (j == i)
			fprintf(s->out, "%s #%llu", i ? "," : "", (unsigned long long)r->entries[i].seq);
		else
			fprintf(s->out, "%s #%llu-#%llu", i ? "," : "",
				(unsigned long long)r->entries[i].seq,
				(unsigned long long)r->entries[j].seq);
		i = j + 1;
	}
	fprintf(s->out, "\n    Holds %s's chain up to #%llu\n", other,
		(unsigned long long)r->peer_seq);
}

/* ---- line checks and answers ---- */

static int check_check(struct hl_record_check *c)
{
	return head_check(c, c->it->u.chk.peer_seq, c->it->u.chk.peer_hash);
}

static int answer_check(struct hl_record_check *c)
{
	/* An answer that names no check of the other chain is kept by the
	 * stations and otherwise ignored (docs/items.md 2.4): it is the
	 * author's signed word, not a fault of the record.  `show` says so. */
	return head_check(c, c->it->u.ans.peer_seq, c->it->u.ans.peer_hash);
}

/* The other chain's entry SEQ, when it is an item with HASH. */
static bool names_item(const struct hl_record *rec, unsigned chain, uint64_t seq,
		       const uint8_t *hash)
{
	return seq >= 1 && seq <= rec->n[chain] &&
	       rec->entries[chain][seq - 1].type == HL_RECORD_ITEM &&
	       sodium_memcmp(rec->entries[chain][seq - 1].hash, hash, HL_HASH_LEN) == 0;
}

static void answer_index(struct hl_record_show *s, unsigned chain, uint64_t seq,
			 const struct hl_item *it)
{
	const struct hl_item_answer *a = &it->u.ans;
	unsigned other = 1 - chain;
	if (!names_item(s->rec, other, a->check_seq, a->check_hash))
		return;
	uint64_t *ref = a->by == HL_ANSWER_STATION ? &s->first_ref[other][a->check_seq - 1]
						   : &s->second_ref[other][a->check_seq - 1];
	if (*ref == 0)
		*ref = seq;
}

static const char *answer_by(unsigned by)
{
	switch (by) {
	case HL_ANSWER_STATION: return "by the station";
	case HL_ANSWER_PERSON: return "by a person";
	case HL_ANSWER_NO_PERSON: return "no person answered";
	}
	return "?";
}

/* The answer of the other chain at SEQ, as "X's #N at TIME (how)". */
static void print_answer_ref(struct hl_record_show *s, unsigned other, uint64_t seq)
{
	char when[HL_RFC3339_LEN];
	const struct hl_record_entry *e = &s->rec->entries[other][seq - 1];
	const char *how = "?";
	if (hl_item_decode(e->item, e->len, s->scratch) == 0 &&
	    s->scratch->kind == HL_ITEM_ANSWER)
		how = answer_by(s->scratch->u.ans.by);
	hl_rfc3339((int64_t)s->time[other][seq - 1], when);
	fprintf(s->out, "%s's #%llu at %s (%s)\n", s->name[other], (unsigned long long)seq, when,
		how);
}

static void check_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
		       const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_check *k = &it->u.chk;
	unsigned other = 1 - chain;
	char hex[33];
	(void)e;
	hl_hex(k->id, HL_CHECK_ID_LEN, hex);
	fprintf(s->out, "line check  %s\n    %s mode; %s; timeout %.1f s\n", hex,
		k->mode == HL_CHECK_OPERATOR ? "operator (a person must answer)" : "machine",
		k->link ? "the link was up when it was made"
			: "no connection when it was made (sent when the link came back)",
		k->timeout_ms / 1000.0);
	fprintf(s->out, "    Holds %s's chain up to #%llu\n", s->name[other],
		(unsigned long long)k->peer_seq);
	uint64_t a1 = s->first_ref[chain][seq - 1], a2 = s->second_ref[chain][seq - 1];
	fprintf(s->out, "    Answer:   ");
	if (a1)
		print_answer_ref(s, other, a1);
	else
		fprintf(s->out, "none in this record\n");
	if (k->mode == HL_CHECK_OPERATOR) {
		fprintf(s->out, "    Person:   ");
		if (a2)
			print_answer_ref(s, other, a2);
		else
			fprintf(s->out, "no answer in this record\n");
	}
}

static void answer_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
			const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_answer *a = &it->u.ans;
	unsigned other = 1 - chain;
	(void)seq;
	(void)e;
	fprintf(s->out, "answer (%s) to %s's check #%llu%s\n", answer_by(a->by), s->name[other],
		(unsigned long long)a->check_seq,
		names_item(s->rec, other, a->check_seq, a->check_hash)
			? "" : ", which is not that check in this record (ignored)");
	fprintf(s->out, "    Holds %s's chain up to #%llu\n", s->name[other],
		(unsigned long long)a->peer_seq);
}

/* ---- agreements ---- */

static void countersign_index(struct hl_record_show *s, unsigned chain, uint64_t seq,
			      const struct hl_item *it)
{
	const struct hl_item_countersign *cs = &it->u.csig;
	unsigned other = 1 - chain;
	if (!names_item(s->rec, other, cs->proposal_seq, cs->agreement_id))
		return;
	const struct hl_record_entry *e = &s->rec->entries[other][cs->proposal_seq - 1];
	/* Countersigned means: this agreement, and this document. */
	if (hl_item_decode(e->item, e->len, s->scratch) < 0 ||
	    s->scratch->kind != HL_ITEM_AGREEMENT ||
	    sodium_memcmp(s->scratch->u.agr.doc_hash, cs->doc_hash, HL_HASH_LEN) != 0)
		return;
	if (s->first_ref[other][cs->proposal_seq - 1] == 0)
		s->first_ref[other][cs->proposal_seq - 1] = seq;
}

static void agreement_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
			   const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_agreement *g = &it->u.agr;
	unsigned other = 1 - chain;
	char id[65], doc[65], msg[33], name[256 * 3 + 1], when[HL_RFC3339_LEN];
	hl_hex(e->hash, HL_HASH_LEN, id);
	hl_hex(g->doc_hash, HL_HASH_LEN, doc);
	hl_msg_id_hex(g->msg_id, msg);
	hl_sanitize((const char *)g->name, g->name_len, name, sizeof(name), 0);
	fprintf(s->out, "agreement proposed  %s\n    Document: %s (%llu bytes, blake2b-256 %s),"
		" carried by message %s\n", id, name, (unsigned long long)g->size, doc, msg);
	uint64_t cs = s->first_ref[chain][seq - 1];
	if (cs) {
		hl_rfc3339((int64_t)s->time[other][cs - 1], when);
		fprintf(s->out, "    Countersigned by %s: #%llu at %s (signed by both)\n",
			s->name[other], (unsigned long long)cs, when);
	} else {
		fprintf(s->out, "    Not countersigned in this record\n");
	}
}

static void countersign_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
			     const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_countersign *cs = &it->u.csig;
	unsigned other = 1 - chain;
	char id[65], doc[65];
	(void)seq;
	(void)e;
	hl_hex(cs->agreement_id, HL_HASH_LEN, id);
	hl_hex(cs->doc_hash, HL_HASH_LEN, doc);
	fprintf(s->out, "countersign of %s's agreement #%llu  %s\n    Document: blake2b-256 %s%s\n",
		s->name[other], (unsigned long long)cs->proposal_seq, id, doc,
		names_item(s->rec, other, cs->proposal_seq, cs->agreement_id)
			? "" : "\n    (names no agreement of the other chain in this record: ignored)");
}

/* ---- calls ---- */

/* A call item that names its recording: the message right before it in
 * the same chain (authored together, docs/items.md 2.7) must be that
 * message, with one attachment whose size and hash are the call's audio.
 * The attachment's bytes, when disclosed, are checked against that hash
 * by the message's own row: so a disclosed recording is what was said. */
static int call_check(struct hl_record_check *c)
{
	const struct hl_item_call *k = &c->it->u.call;
	static const uint8_t zero[16];
	if (memcmp(k->recording, zero, sizeof(zero)) == 0)
		return HL_RECORD_CHECK_OK;
	if (c->seq < 2)
		return why(c, HL_RECORD_BAD_SELF, "the call names a recording message, but is the "
			   "first item of its chain");
	const struct hl_record_entry *e = &c->rec->entries[c->chain][c->seq - 2];
	if (e->type != HL_RECORD_ITEM)
		return HL_RECORD_CHECK_OK;   /* not held: nothing to compare */
	struct hl_item *m = xmalloc(sizeof(*m));
	int verdict = HL_RECORD_CHECK_OK;
	if (hl_item_decode(e->item, e->len, m) < 0 || m->kind != HL_ITEM_MESSAGE ||
	    memcmp(m->u.msg.id, k->recording, sizeof(k->recording)) != 0)
		verdict = why(c, HL_RECORD_BAD_SELF, "the item before the call is not the recording "
			      "message it names");
	else if (m->u.msg.n_attachments != 1 || m->u.msg.att[0].size != k->audio_size ||
		 sodium_memcmp(m->u.msg.att[0].hash, k->audio_hash, HL_HASH_LEN) != 0)
		verdict = why(c, HL_RECORD_BAD_SELF, "the recording message's attachment is not "
			      "the call's audio (size or hash)");
	free(m);
	return verdict;
}

static const char *end_reason(unsigned r)
{
	static const char *const names[] = { "?", "hung up", "busy", "no answer", "preempted",
					     "lost (no media)", "failed" };
	return r <= 6 ? names[r] : "?";
}

static void call_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
		      const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_call *k = &it->u.call;
	unsigned other = 1 - chain;
	char id[33], rang[HL_RFC3339_LEN], ans[HL_RFC3339_LEN], h[17], msg[33];
	static const uint8_t zero[16];
	(void)seq;
	(void)e;
	hl_hex(k->id, HL_CALL_ITEM_ID_LEN, id);
	hl_rfc3339((int64_t)k->rang_at, rang);
	fprintf(s->out, "call %s  %s %s %s\n    Rang %s", id, hl_precedence_name(k->precedence),
		k->role == HL_CALL_ROLE_CALLER ? "call to" : "call from", s->name[other], rang);
	if (k->answered_at) {
		hl_rfc3339((int64_t)k->answered_at, ans);
		fprintf(s->out, "; answered %s; talked %.1f s", ans,
			(double)(k->ended_at - k->answered_at) / 1000.0);
	} else {
		fprintf(s->out, "; not answered");
	}
	fprintf(s->out, "; ended: %s, by %s\n", end_reason(k->reason),
		k->ended_by ? s->name[other] : s->name[chain]);
	if (k->answered_at) {
		short_hash(k->audio_hash, h);
		fprintf(s->out, "    Sent %llu bytes of audio (blake2b-256 %s...); packets sent %llu, "
			"received %llu, lost %llu; jitter %.1f ms, buffer %.1f ms; media by %s\n",
			(unsigned long long)k->audio_size, h, (unsigned long long)k->packets_sent,
			(unsigned long long)k->packets_received, (unsigned long long)k->packets_lost,
			k->jitter_us / 1000.0, k->buffer_delay_us / 1000.0,
			k->paths == (HL_CALL_PATH_UDP | HL_CALL_PATH_LINK) ? "UDP and the link"
			: k->paths & HL_CALL_PATH_LINK ? "the link" : "UDP");
	}
	if (memcmp(k->recording, zero, sizeof(zero)) != 0) {
		hl_msg_id_hex(k->recording, msg);
		fprintf(s->out, "    Recording: message %s\n", msg);
	}
}

/* ---- the table ---- */

static const struct hl_record_kind kinds[] = {
	{ HL_ITEM_MESSAGE, "message", true, message_check, NULL, message_show },
	{ HL_ITEM_RECEIPT, "receipt", false, receipt_check, receipt_index, receipt_show },
	{ HL_ITEM_CHECK, "check", false, check_check, NULL, check_show },
	{ HL_ITEM_ANSWER, "answer", false, answer_check, answer_index, answer_show },
	/* An agreement and its countersign are each their author's signed
	 * word; which agreement a countersign names is for people (show). */
	{ HL_ITEM_AGREEMENT, "agreement", false, NULL, NULL, agreement_show },
	{ HL_ITEM_COUNTERSIGN, "countersign", false, NULL, countersign_index, countersign_show },
	/* A call: its author's signed account; the recording it names is
	 * checked against the message before it. */
	{ HL_ITEM_CALL, "call", false, call_check, NULL, call_show },
};

const struct hl_record_kind *hl_record_kind_find(enum hl_item_kind kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == kind)
			return &kinds[i];
	return NULL;
}
