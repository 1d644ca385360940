/* record/kinds.c — the kind table (kinds.h): per kind of item, the
 * record's cross-checks and its lines in `record show`. */
#include "record/kinds.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "msg/message.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/text.h"
#include "util/timefmt.h"

static int why(struct hl_record_verify_ctx *c, int verdict, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int why(struct hl_record_verify_ctx *c, int verdict, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, c->whylen, fmt, ap);
	va_end(ap);
	return verdict;
}

void hl_record_why_init(struct hl_chain_why *w, const char *own_station,
			const char *other_station)
{
	char own[48], other[48];
	snprintf(own, sizeof(own), "%.30s's", own_station);
	snprintf(other, sizeof(other), "%.30s's", other_station);
	hl_chain_why_init(w, own, other);
}

int hl_record_chain_ref(const struct hl_record *rec, unsigned chain, uint64_t seq,
			struct hl_item *scratch, struct hl_chain_ref *ref)
{
	struct hl_record_entry e;
	memset(ref, 0, sizeof(*ref));
	if (seq == 0 || seq > rec->n[chain])
		return 0;
	int ret = hl_record_entry_get(rec, chain, seq, &e);
	if (ret < 0)
		return ret;
	if (e.type == HL_RECORD_ABSENT)
		return 0;
	ref->held = true;
	ref->item = e.type == HL_RECORD_ITEM;
	memcpy(ref->hash, e.hash, HL_HASH_LEN);
	if (!ref->item)
		return 0;
	uint8_t *buf = xmalloc(HL_ITEM_MAX);
	ret = hl_record_item(rec, &e, buf);
	if (ret == 0 && hl_item_decode(buf, e.len, scratch) == 0) {
		ref->kind = scratch->kind;
		memcpy(ref->prev, scratch->prev, HL_HASH_LEN);
	}
	free(buf);
	return ret < 0 ? ret : 0;
}

/* The rules' texts name the stations, as the rest of verify's lines do. */
static void why_names(const struct hl_record_verify_ctx *c, struct hl_chain_why *w)
{
	hl_record_why_init(w, c->name[c->chain], c->name[1 - c->chain]);
}

/* ---- messages ---- */

/* A failure to read the record while checking (I/O, or a changed file). */
static int unreadable(struct hl_record_verify_ctx *c, int ret)
{
	return why(c, HL_RECORD_BAD_SELF, "the record cannot be read: %s", hl_strerror(ret));
}

/* The body hash (hl_salted_hash with HL_LABEL_BODY) of N bytes of the
 * file from OFF. */
static int body_hash_at(const struct hl_record *rec, const uint8_t salt[static HL_SALT_LEN],
			uint64_t off, uint64_t n, uint8_t out[static HL_HASH_LEN])
{
	hl_parthash st;
	hl_parthash_body(&st, salt);
	int ret = hl_record_hash_range(rec, off, n, &st);
	hl_parthash_final(&st, out);
	return ret;
}

static int message_verify_att(struct hl_record_verify_ctx *c, const struct hl_item_message *m)
{
	struct hl_record_att a;
	uint8_t h[HL_HASH_LEN];
	int ret;
	while ((ret = hl_record_att_for(c->atts, c->chain, c->seq, &a)) == 1) {
		if (a.index >= m->n_attachments)
			return why(c, HL_RECORD_BAD_SELF, "attachment %u is given, but the message "
				   "has %u attachment(s)", a.index, m->n_attachments);
		if (a.size != m->att[a.index].size)
			return why(c, HL_RECORD_BAD_SELF, "attachment %u has %llu bytes, but the "
				   "signed item says %llu", a.index, (unsigned long long)a.size,
				   (unsigned long long)m->att[a.index].size);
		hl_parthash st;
		hl_parthash_doc(&st);
		ret = hl_record_hash_range(c->rec, a.data_off, a.size, &st);
		hl_parthash_final(&st, h);
		if (ret < 0)
			return unreadable(c, ret);
		if (sodium_memcmp(h, m->att[a.index].hash, HL_HASH_LEN) != 0)
			return why(c, HL_RECORD_BAD_SELF, "attachment %u does not match its signed "
				   "hash", a.index);
	}
	return ret < 0 ? unreadable(c, ret) : HL_RECORD_VERIFIED;
}

static int message_verify(struct hl_record_verify_ctx *c)
{
	const struct hl_item_message *m = &c->it->u.msg;
	uint8_t h[HL_HASH_LEN];
	/* class_seq numbers each precedence's messages in order; a refused
	 * one may leave a gap, but never a step back (the rule the receiving
	 * station applied on arrival: chain/accept.h). */
	struct hl_chain_class_ref *last = &c->state->last_msg[m->precedence];
	struct hl_chain_why w;
	why_names(c, &w);
	if (hl_chain_class(m, c->seq, last, NULL, &w) != HL_CHAIN_OK)
		return why(c, HL_RECORD_BAD_SELF, "%s", w.text);
	*last = (struct hl_chain_class_ref){ true, c->seq, m->class_seq };
	const struct hl_record_content *ct = c->content;
	if (!ct)
		return HL_RECORD_VERIFIED;   /* withheld: no attachments either */
	hl_salted_hash(ct->salt, HL_LABEL_SUBJECT, ct->subject, ct->subject_len, h);
	if (sodium_memcmp(h, m->subject_hash, HL_HASH_LEN) != 0)
		return why(c, HL_RECORD_BAD_SELF, "the disclosed subject does not match its "
			   "signed hash");
	if (ct->body_len != m->body_size)
		return why(c, HL_RECORD_BAD_SELF, "the disclosed body has %u bytes, but the "
			   "signed item says %llu", ct->body_len, (unsigned long long)m->body_size);
	int ret = body_hash_at(c->rec, ct->salt, ct->body_off, ct->body_len, h);
	if (ret < 0)
		return unreadable(c, ret);
	if (sodium_memcmp(h, m->body_hash, HL_HASH_LEN) != 0)
		return why(c, HL_RECORD_BAD_SELF, "the disclosed body does not match its "
			   "signed hash");
	return message_verify_att(c, m);
}

/* Prints LEN bytes of the file from OFF, sanitised, each line after
 * PREFIX; read in pieces (a body may be 16 MiB), cut at line ends so that
 * no character is split. */
static void print_text(const struct hl_record_show *s, const char *prefix, uint64_t off,
		       uint64_t len)
{
	enum { PIECE = 64 * 1024 };
	char *raw = xmalloc(PIECE + 1), *clean = xmalloc(PIECE * 3 + 2);
	size_t have = 0;
	while (len || have) {
		size_t n = len < PIECE - have ? (size_t)len : PIECE - have;
		if (n && hl_record_read(s->rec, off, raw + have, n) < 0) {
			fprintf(s->out, "%s(the rest cannot be read)\n", prefix);
			break;
		}
		off += n;
		len -= n;
		have += n;
		/* a whole number of lines, or everything at the end (or a
		 * piece with no line end at all) */
		size_t cut = have;
		if (len) {
			while (cut && raw[cut - 1] != '\n')
				cut--;
			if (!cut)
				cut = have;
		}
		hl_sanitize(raw, cut, clean, PIECE * 3 + 2, 1);
		for (char *line = clean, *nl;; line = nl + 1) {
			nl = strchr(line, '\n');
			if (nl)
				*nl = '\0';
			if (*line || nl)
				fprintf(s->out, "%s%s\n", prefix, line);
			if (!nl)
				break;
		}
		memmove(raw, raw + cut, have - cut);
		have -= cut;
	}
	free(raw);
	free(clean);
}

static void message_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
			 const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_message *m = &it->u.msg;
	char hex[65], text[HL_SUBJECT_MAX * 3 + 2], when[HL_RFC3339_LEN];
	char upper[16] = "";
	const char *pn = hl_precedence_name(m->precedence);
	for (size_t i = 0; pn[i] && i + 1 < sizeof(upper); i++)
		upper[i] = (char)(pn[i] - 'a' + 'A');
	hl_msg_id_hex(m->id, hex);
	fprintf(s->out, "message %s  %s\n", upper, hex);
	const struct hl_record_content *ct = s->content;
	(void)e;
	if (ct) {
		hl_sanitize((const char *)ct->subject, ct->subject_len, text, sizeof(text), 0);
		fprintf(s->out, "    Subject:  %s\n", text);
	} else if (s->purged) {
		uint64_t at = s->purged->purged_at;
		hl_rfc3339((int64_t)(at > INT64_MAX ? INT64_MAX : at), when);
		fprintf(s->out, "    Subject:  (purged by %s at %s)\n", s->name[0], when);
	} else {
		fprintf(s->out, "    Subject:  (withheld)\n");
	}
	uint64_t t, r = hl_record_show_ref(s, chain, seq, true, &t);
	if (r) {
		hl_rfc3339((int64_t)t, when);
		fprintf(s->out, "    Receipt:  %s's #%llu at %s\n", s->name[1 - chain],
			(unsigned long long)r, when);
	} else {
		fprintf(s->out, "    Receipt:  none in this record\n");
	}
	for (unsigned i = 0; i < m->n_attachments; i++) {
		bool included = s->att_included >> i & 1;
		hl_sanitize((const char *)m->att[i].name, m->att[i].name_len, text, sizeof(text), 0);
		hl_hex(m->att[i].hash, HL_HASH_LEN, hex);
		fprintf(s->out, "    Attached: %s (%llu bytes, " HL_DOC_HASH_NAME " %s)%s\n", text,
			(unsigned long long)m->att[i].size, hex,
			included ? "" : ", not included");
	}
	if (ct)
		print_text(s, "    | ", ct->body_off, ct->body_len);
	else if (s->purged)
		fprintf(s->out, "    (contents purged by %s under its retention: the signed item "
			"remains, with the sizes and hashes)\n", s->name[0]);
	else
		fprintf(s->out, "    (contents withheld: the signed item proves them by their salted hashes)\n");
}

/* ---- receipts ---- */

/* The other chain's entry SEQ as a chain rule sees it. */
static int other_ref(const struct hl_record_verify_ctx *c, uint64_t seq, struct hl_chain_ref *ref)
{
	return hl_record_chain_ref(c->rec, 1 - c->chain, seq, c->scratch, ref);
}

/* PEER_SEQ and PEER_HASH: the other chain's head as the item's author held
 * it when it signed (receipts, checks, answers): chain/accept.h's rule. */
static int head_verify(struct hl_record_verify_ctx *c, uint64_t peer_seq, const uint8_t *peer_hash)
{
	struct hl_chain_ref target;
	struct hl_chain_why w;
	why_names(c, &w);
	int ret = other_ref(c, peer_seq, &target);
	if (ret < 0)
		return unreadable(c, ret);
	int v = hl_chain_head(c->seq, peer_seq, peer_hash, &c->state->last_head, NULL, &target, &w);
	if (v != HL_CHAIN_OK)
		return why(c, w.cross ? HL_RECORD_BAD_CROSS : HL_RECORD_BAD_SELF, "%s", w.text);
	c->state->last_head = (struct hl_chain_head_ref){ true, c->seq, peer_seq };
	return HL_RECORD_VERIFIED;
}

static int rcpt_other(void *arg, uint64_t seq, struct hl_chain_ref *ref)
{
	return other_ref(arg, seq, ref);
}

static int rcpt_acked(void *arg, uint64_t seq, bool *yes)
{
	const struct hl_record_verify_ctx *c = arg;
	*yes = c->state->acked && (c->state->acked[(seq - 1) / 8] >> ((seq - 1) % 8)) & 1;
	return 0;
}

static int receipt_verify(struct hl_record_verify_ctx *c)
{
	const struct hl_item_receipt *r = &c->it->u.rcpt;
	struct hl_chain_lookup look = { .arg = c, .other = rcpt_other, .acked = rcpt_acked };
	struct hl_chain_why w;
	why_names(c, &w);
	int ret = head_verify(c, r->peer_seq, r->peer_hash);
	if (ret != HL_RECORD_VERIFIED)
		return ret;
	int v = hl_chain_receipt(r, &look, &w);
	if (v < 0)
		return unreadable(c, v);
	if (v != HL_CHAIN_OK)
		return why(c, w.cross ? HL_RECORD_BAD_CROSS : HL_RECORD_BAD_SELF, "%s", w.text);
	for (unsigned i = 0; c->state->acked && i < r->count; i++) {
		uint64_t q = r->entries[i].seq - 1;
		c->state->acked[q / 8] |= (uint8_t)(1u << (q % 8));
	}
	return HL_RECORD_VERIFIED;
}

static void receipt_index(struct hl_record_show *s, unsigned chain, uint64_t seq,
			  const struct hl_item *it)
{
	unsigned other = 1 - chain;
	for (unsigned i = 0; i < it->u.rcpt.count; i++)
		hl_record_show_ref_set(s, other, it->u.rcpt.entries[i].seq, true, seq, it->time_ms);
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

static int check_verify(struct hl_record_verify_ctx *c)
{
	return head_verify(c, c->it->u.chk.peer_seq, c->it->u.chk.peer_hash);
}

static int answer_verify(struct hl_record_verify_ctx *c)
{
	/* An answer that names no check of the other chain is kept by the
	 * stations and otherwise ignored (docs/items.md 2.4): it is the
	 * author's signed word, not a fault of the record.  `show` says so. */
	return head_verify(c, c->it->u.ans.peer_seq, c->it->u.ans.peer_hash);
}

/* The other chain's entry SEQ, when it is an item with HASH. */
static bool names_item(const struct hl_record *rec, unsigned chain, uint64_t seq,
		       const uint8_t *hash)
{
	struct hl_record_entry e;
	return seq >= 1 && seq <= rec->n[chain] && hl_record_entry_get(rec, chain, seq, &e) == 0 &&
	       e.type == HL_RECORD_ITEM && sodium_memcmp(e.hash, hash, HL_HASH_LEN) == 0;
}

/* Decodes the item at SEQ of CHAIN into s->scratch; false when it cannot. */
static bool decode_at(struct hl_record_show *s, unsigned chain, uint64_t seq)
{
	struct hl_record_entry e;
	return hl_record_entry_get(s->rec, chain, seq, &e) == 0 && e.type == HL_RECORD_ITEM &&
	       hl_record_item(s->rec, &e, s->itembuf) == 0 &&
	       hl_item_decode(s->itembuf, e.len, s->scratch) == 0;
}

static void answer_index(struct hl_record_show *s, unsigned chain, uint64_t seq,
			 const struct hl_item *it)
{
	const struct hl_item_answer *a = &it->u.ans;
	unsigned other = 1 - chain;
	if (!hl_record_show_wants(s, other, a->check_seq) ||
	    !names_item(s->rec, other, a->check_seq, a->check_hash))
		return;
	hl_record_show_ref_set(s, other, a->check_seq, a->by == HL_ANSWER_STATION, seq, it->time_ms);
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

/* The answer of the other chain at SEQ (of time T), as "X's #N at TIME (how)". */
static void print_answer_ref(struct hl_record_show *s, unsigned other, uint64_t seq, uint64_t t)
{
	char when[HL_RFC3339_LEN];
	const char *how = "?";
	if (decode_at(s, other, seq) && s->scratch->kind == HL_ITEM_ANSWER)
		how = answer_by(s->scratch->u.ans.by);
	hl_rfc3339((int64_t)t, when);
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
	uint64_t t1, t2, a1 = hl_record_show_ref(s, chain, seq, true, &t1),
			 a2 = hl_record_show_ref(s, chain, seq, false, &t2);
	fprintf(s->out, "    Answer:   ");
	if (a1)
		print_answer_ref(s, other, a1, t1);
	else
		fprintf(s->out, "none in this record\n");
	if (k->mode == HL_CHECK_OPERATOR) {
		fprintf(s->out, "    Person:   ");
		if (a2)
			print_answer_ref(s, other, a2, t2);
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
	uint64_t time = it->time_ms;   /* IT may be s->scratch, reused below */
	if (!hl_record_show_wants(s, other, cs->proposal_seq) ||
	    !names_item(s->rec, other, cs->proposal_seq, cs->agreement_id))
		return;
	uint8_t doc[HL_HASH_LEN];
	memcpy(doc, cs->doc_hash, HL_HASH_LEN);
	/* Countersigned means: this agreement, and this document. */
	if (!decode_at(s, other, cs->proposal_seq) || s->scratch->kind != HL_ITEM_AGREEMENT ||
	    sodium_memcmp(s->scratch->u.agr.doc_hash, doc, HL_HASH_LEN) != 0)
		return;
	hl_record_show_ref_set(s, other, cs->proposal_seq, true, seq, time);
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
	fprintf(s->out, "agreement proposed  %s\n    Document: %s (%llu bytes, " HL_DOC_HASH_NAME " %s),"
		" carried by message %s\n", id, name, (unsigned long long)g->size, doc, msg);
	uint64_t t, cs = hl_record_show_ref(s, chain, seq, true, &t);
	if (cs) {
		hl_rfc3339((int64_t)t, when);
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
	fprintf(s->out, "countersign of %s's agreement #%llu  %s\n    Document: " HL_DOC_HASH_NAME " %s%s\n",
		s->name[other], (unsigned long long)cs->proposal_seq, id, doc,
		names_item(s->rec, other, cs->proposal_seq, cs->agreement_id)
			? "" : "\n    (names no agreement of the other chain in this record: ignored)");
}

/* ---- what the other chain says, for show ---- */

static struct hl_record_ref *ref_of(const struct hl_record_show *s, unsigned c, uint64_t seq)
{
	const struct hl_record_refs *r = s->refs[c];
	if (seq < r->lo || seq >= r->hi)
		return NULL;
	size_t lo = 0, hi = r->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (r->pos[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < r->n && r->pos[lo] == seq ? &r->v[lo] : NULL;
}

bool hl_record_show_wants(const struct hl_record_show *s, unsigned c, uint64_t seq)
{
	return ref_of(s, c, seq) != NULL;
}

void hl_record_show_ref_set(struct hl_record_show *s, unsigned c, uint64_t seq, bool first,
			    uint64_t ref, uint64_t time)
{
	struct hl_record_ref *r = ref_of(s, c, seq);
	unsigned i = first ? 0 : 1;
	if (r && r->seq[i] == 0) {
		r->seq[i] = ref;
		r->time[i] = time;
	}
}

uint64_t hl_record_show_ref(const struct hl_record_show *s, unsigned c, uint64_t seq, bool first,
			    uint64_t *time)
{
	const struct hl_record_ref *r = ref_of(s, c, seq);
	if (!r)
		return 0;
	*time = r->time[first ? 0 : 1];
	return r->seq[first ? 0 : 1];
}

/* ---- calls ---- */

/* A call item that names its recording: the message right before it in
 * the same chain (authored together, docs/items.md 2.7) must be that
 * message, with one attachment whose size and hash are the call's audio.
 * The attachment's bytes, when disclosed, are checked against that hash
 * by the message's own row: so a disclosed recording is what was said. */
static int call_verify(struct hl_record_verify_ctx *c)
{
	const struct hl_item_call *k = &c->it->u.call;
	static const uint8_t zero[16];
	if (memcmp(k->recording, zero, sizeof(zero)) == 0)
		return HL_RECORD_VERIFIED;
	if (c->seq < 2)
		return why(c, HL_RECORD_BAD_SELF, "the call names a recording message, but is the "
			   "first item of its chain");
	struct hl_record_entry ent;
	int ret = hl_record_entry_get(c->rec, c->chain, c->seq - 1, &ent);
	if (ret < 0)
		return unreadable(c, ret);
	if (ent.type != HL_RECORD_ITEM)
		return HL_RECORD_VERIFIED;   /* not held: nothing to compare */
	struct hl_item *m = xmalloc(sizeof(*m));
	uint8_t *buf = xmalloc(HL_ITEM_MAX);
	int verdict = HL_RECORD_VERIFIED;
	if ((ret = hl_record_item(c->rec, &ent, buf)) < 0)
		verdict = unreadable(c, ret);
	else if (hl_item_decode(buf, ent.len, m) < 0 || m->kind != HL_ITEM_MESSAGE ||
	    memcmp(m->u.msg.id, k->recording, sizeof(k->recording)) != 0)
		verdict = why(c, HL_RECORD_BAD_SELF, "the item before the call is not the recording "
			      "message it names");
	else if (m->u.msg.n_attachments != 1 || m->u.msg.att[0].size != k->audio_size ||
		 sodium_memcmp(m->u.msg.att[0].hash, k->audio_hash, HL_HASH_LEN) != 0)
		verdict = why(c, HL_RECORD_BAD_SELF, "the recording message's attachment is not "
			      "the call's audio (size or hash)");
	free(buf);
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
		hl_hex(k->audio_hash, 8, h);
		fprintf(s->out, "    Sent %llu bytes of audio (" HL_DOC_HASH_NAME " %s...); packets sent %llu, "
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

/* A rotation: the chain's new keys (record/verify.c checks them against
 * the commitment and takes them). */
static void rotation_show(struct hl_record_show *s, unsigned chain, uint64_t seq,
			  const struct hl_record_entry *e, const struct hl_item *it)
{
	const struct hl_item_rotation *r = &it->u.rot;
	uint8_t fp[HL_FP_LEN];
	char text[HL_FP_TEXT_LEN];
	(void)seq;
	(void)e;
	hl_fingerprint_next(r->noise_key, r->signing_key, r->next_hash, fp);
	hl_fingerprint_text(fp, text);
	fprintf(s->out, "key rotation  %s has new keys%s\n    New fingerprint: %s\n",
		s->name[chain], r->reason == HL_ROTATE_COMPROMISE ? " (compromise suspected)" : "",
		text);
}

/* ---- the table ---- */

static const struct hl_record_kind kinds[] = {
	{ HL_ITEM_MESSAGE, "message", true, true, message_verify, NULL, message_show },
	{ HL_ITEM_RECEIPT, "receipt", false, false, receipt_verify, receipt_index, receipt_show },
	{ HL_ITEM_CHECK, "check", false, true, check_verify, NULL, check_show },
	{ HL_ITEM_ANSWER, "answer", false, false, answer_verify, answer_index, answer_show },
	/* An agreement and its countersign are each their author's signed
	 * word; which agreement a countersign names is for people (show). */
	{ HL_ITEM_AGREEMENT, "agreement", false, true, NULL, NULL, agreement_show },
	{ HL_ITEM_COUNTERSIGN, "countersign", false, false, NULL, countersign_index,
	  countersign_show },
	/* A call: its author's signed account; the recording it names is
	 * checked against the message before it. */
	{ HL_ITEM_CALL, "call", false, false, call_verify, NULL, call_show },
	/* A rotation: checked with the chain's keys by the verifier itself,
	 * which follows them (docs/rotation.md). */
	{ HL_ITEM_ROTATION, "rotation", false, false, NULL, NULL, rotation_show },
};

const struct hl_record_kind *hl_record_kind_find(enum hl_item_kind kind)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (kinds[i].kind == kind)
			return &kinds[i];
	return NULL;
}
