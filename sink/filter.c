/* SPDX-License-Identifier: MIT */
/* mitmproxy filter expressions: a recursive-descent parser that accepts
 * exactly what mitmproxy 8.1.1's pyparsing grammar accepts (with its
 * quirks, see docs/FILTERS.md), Python regexes translated to PCRE2, and an
 * evaluator over struct flow that allocates nothing once its scratch is
 * warm. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "sink/filter.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pcre2.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define MAX_DEPTH 200               /* nesting of ( and ! */
#define MAX_DECODED (32u << 20)     /* cap on a decompressed body */

/* ---- operators ------------------------------------------------------ */

enum fop {
	OP_AND, OP_OR, OP_NOT,
	/* no argument */
	OP_ASSET, OP_ERR, OP_HTTP, OP_MARKED, OP_REPLAY, OP_REPLAYQ,
	OP_REPLAYS, OP_REQ, OP_RESP, OP_TCP, OP_DNS, OP_WEBSOCKET, OP_ALL,
	OP_UDP,
	/* regex argument */
	OP_BOD, OP_BODQ, OP_BODS, OP_CT, OP_CTQ, OP_CTS, OP_DOMAIN, OP_DST,
	OP_HEAD, OP_HEADQ, OP_HEADS, OP_METHOD, OP_SRC, OP_URL, OP_META,
	OP_MARKER, OP_COMMENT,
	/* integer argument */
	OP_CODE,
};

enum arg_kind { ARG_NONE, ARG_REX, ARG_INT };

/* Regex flavours: Python str patterns match text (Unicode), bytes patterns
 * match bytes. */
#define RX_STR 0x100u

struct opdef {
	const char *code; /* without '~' */
	const char *cls;  /* mitmproxy class name, for filter_dump */
	enum fop op;
	enum arg_kind arg;
	uint32_t flags; /* PCRE2 compile flags | RX_STR */
};

static const struct opdef ops[] = {
	{"a", "FAsset", OP_ASSET, ARG_NONE, 0},
	{"e", "FErr", OP_ERR, ARG_NONE, 0},
	{"http", "FHTTP", OP_HTTP, ARG_NONE, 0},
	{"marked", "FMarked", OP_MARKED, ARG_NONE, 0},
	{"replay", "FReplay", OP_REPLAY, ARG_NONE, 0},
	{"replayq", "FReplayClient", OP_REPLAYQ, ARG_NONE, 0},
	{"replays", "FReplayServer", OP_REPLAYS, ARG_NONE, 0},
	{"q", "FReq", OP_REQ, ARG_NONE, 0},
	{"s", "FResp", OP_RESP, ARG_NONE, 0},
	{"tcp", "FTCP", OP_TCP, ARG_NONE, 0},
	{"dns", "FDNS", OP_DNS, ARG_NONE, 0},
	{"websocket", "FWebSocket", OP_WEBSOCKET, ARG_NONE, 0},
	{"all", "FAll", OP_ALL, ARG_NONE, 0},
	{"udp", "FUDP", OP_UDP, ARG_NONE, 0}, /* mitmproxy >= 9 */
	{"b", "FBod", OP_BOD, ARG_REX, PCRE2_DOTALL},
	{"bq", "FBodRequest", OP_BODQ, ARG_REX, PCRE2_DOTALL},
	{"bs", "FBodResponse", OP_BODS, ARG_REX, PCRE2_DOTALL},
	{"t", "FContentType", OP_CT, ARG_REX, 0},
	{"tq", "FContentTypeRequest", OP_CTQ, ARG_REX, 0},
	{"ts", "FContentTypeResponse", OP_CTS, ARG_REX, 0},
	{"d", "FDomain", OP_DOMAIN, ARG_REX, PCRE2_CASELESS | RX_STR},
	{"dst", "FDst", OP_DST, ARG_REX, RX_STR},
	{"h", "FHead", OP_HEAD, ARG_REX, PCRE2_MULTILINE},
	{"hq", "FHeadRequest", OP_HEADQ, ARG_REX, PCRE2_MULTILINE},
	{"hs", "FHeadResponse", OP_HEADS, ARG_REX, PCRE2_MULTILINE},
	{"m", "FMethod", OP_METHOD, ARG_REX, PCRE2_CASELESS},
	{"src", "FSrc", OP_SRC, ARG_REX, RX_STR},
	{"u", "FUrl", OP_URL, ARG_REX, RX_STR},
	{"meta", "FMeta", OP_META, ARG_REX, PCRE2_MULTILINE | RX_STR},
	{"marker", "FMarker", OP_MARKER, ARG_REX, RX_STR},
	{"comment", "FComment", OP_COMMENT, ARG_REX, PCRE2_MULTILINE | RX_STR},
	{"c", "FCode", OP_CODE, ARG_INT, 0},
};
#define NOPS (sizeof(ops) / sizeof(ops[0]))
#define OPDEF_URL (&ops[27])

/* ---- the tree ------------------------------------------------------- */

struct fnode {
	const struct opdef *def; /* NULL for and/or/not */
	enum fop op;
	uint32_t nkids;
	struct fnode **kids;   /* and, or (>= 2), not (1) */
	char *pat;             /* regex as given to re.compile */
	size_t pat_len;
	pcre2_code *re;
	uint32_t num;          /* ~c; > 65535 never matches */
	bool konst;            /* ~meta/~marker/~comment: result on "" */
	struct fnode *next;    /* allocation list */
};

struct filter {
	struct fnode *root;
	struct fnode *nodes; /* every node, for filter_free */
	char *expr;
};

/* ---- scratch -------------------------------------------------------- */

struct sbuf {
	char *p;
	size_t n, cap;
};

enum {
	V_URL = 1, V_PHOST = 2, V_HQ = 4, V_HS = 8, V_BQ = 16, V_BS = 32,
};

struct filter_scratch {
	pcre2_match_data *md;
	pcre2_match_context *mctx;
	pcre2_jit_stack *jit;
	unsigned valid; /* V_*: which buffers hold this flow's strings */
	bool oom;
	struct sbuf url, phost, hq, hs, bq, bs, tmp;
	const uint8_t *bq_p, *bs_p; /* body to match: raw or decoded */
	size_t bq_n, bs_n;
	uint64_t match_errors;
};

static bool sbuf_reserve(struct sbuf *b, size_t need)
{
	if (need <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p)
		return false;
	b->p = p;
	b->cap = cap;
	return true;
}

static bool sbuf_put(struct sbuf *b, const void *p, size_t n)
{
	if (!sbuf_reserve(b, b->n + n))
		return false;
	if (n)
		memcpy(b->p + b->n, p, n);
	b->n += n;
	return true;
}

static bool sbuf_puts(struct sbuf *b, const char *s)
{
	return sbuf_put(b, s, strlen(s));
}

static bool sbuf_putu(struct sbuf *b, unsigned v)
{
	char t[12];
	int n = snprintf(t, sizeof(t), "%u", v);
	return sbuf_put(b, t, (size_t)n);
}

/* ---- parser --------------------------------------------------------- */

struct parser {
	const char *s;
	size_t len, pos;
	struct filter *f;
	size_t err_pos;
	bool have_err, oom;
	bool fatal; /* a regex did not compile: pyparsing aborts, no backtracking */
	char err[256];
	uint8_t *failed; /* per position: 1 parse_or failed, 2 parse_not */
	unsigned depth;
};

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* pyparsing's `printables`: what a WordEnd() must not be followed by. */
static bool is_printable(char c)
{
	return c > 32 && c < 127;
}

/* pyparsing's CharsNotIn("()~'\"" + whitespace): characters of a word. */
static bool is_word(char c)
{
	return !is_ws(c) && c != '(' && c != ')' && c != '~' && c != '\'' &&
	       c != '"';
}

static void skip_ws(struct parser *p)
{
	while (p->pos < p->len && is_ws(p->s[p->pos]))
		p->pos++;
}

static size_t column(const char *s, size_t pos)
{
	size_t col = 1;
	for (size_t i = 0; i < pos; i++)
		if (((unsigned char)s[i] & 0xC0) != 0x80)
			col++;
	return col;
}

/* Remember the failure furthest into the expression: that is where the
 * mistake is (a PEG parser backtracks out of everything nearer). */
__attribute__((format(printf, 3, 4)))
static void fail(struct parser *p, size_t pos, const char *fmt, ...)
{
	if (p->have_err && pos <= p->err_pos)
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->err, sizeof(p->err), fmt, ap);
	va_end(ap);
	p->err_pos = pos;
	p->have_err = true;
}

static struct fnode *new_node(struct parser *p, enum fop op)
{
	struct fnode *n = calloc(1, sizeof(*n));
	if (!n) {
		p->oom = true;
		return NULL;
	}
	n->op = op;
	n->next = p->f->nodes;
	p->f->nodes = n;
	return n;
}

static bool add_kid(struct parser *p, struct fnode *n, struct fnode *k)
{
	struct fnode **kids = realloc(n->kids, (n->nkids + 1) * sizeof(*kids));
	if (!kids) {
		p->oom = true;
		return false;
	}
	kids[n->nkids++] = k;
	n->kids = kids;
	return true;
}

/* QuotedString(q, escChar='\\') at p->pos: '"' ( \\. | [^"\n\r\\] )* '"',
 * unquoted as pyparsing does: first \t \n \f \r become the control
 * characters, then every backslash-and-character becomes the character
 * (except before a line break). Returns the text in a new allocation. */
static char *parse_quoted(struct parser *p, size_t *out_len)
{
	char q = p->s[p->pos];
	size_t start = p->pos, i = p->pos + 1;
	for (;;) {
		if (i >= p->len || p->s[i] == '\n' || p->s[i] == '\r') {
			fail(p, start, "unterminated quoted string at column %zu",
			     column(p->s, start));
			return NULL;
		}
		if (p->s[i] == q)
			break;
		if (p->s[i] == '\\') {
			if (i + 1 >= p->len || p->s[i + 1] == '\n') {
				fail(p, start,
				     "unterminated quoted string at column %zu",
				     column(p->s, start));
				return NULL;
			}
			i += 2;
			continue;
		}
		i++;
	}
	const char *in = p->s + start + 1;
	size_t n = i - start - 1;
	char *t = malloc(n + 1), *o = malloc(n + 1);
	if (!t || !o) {
		free(t);
		free(o);
		p->oom = true;
		return NULL;
	}
	size_t tn = 0;
	for (size_t k = 0; k < n; k++) {
		char c = in[k];
		if (c == '\\' && k + 1 < n && strchr("tnfr", in[k + 1])) {
			char nx = in[k + 1];
			t[tn++] = nx == 't' ? '\t' : nx == 'n' ? '\n'
				: nx == 'f' ? '\f' : '\r';
			k++;
		} else {
			t[tn++] = c;
		}
	}
	size_t on = 0;
	for (size_t k = 0; k < tn; k++) {
		if (t[k] == '\\' && k + 1 < tn && t[k + 1] != '\n')
			k++;
		o[on++] = t[k];
	}
	o[on] = 0;
	free(t);
	p->pos = i + 1;
	*out_len = on;
	return o;
}

/* The regex argument: a word or a quoted string, after whitespace. */
static char *parse_regex_arg(struct parser *p, const char *op, size_t *len,
			     size_t *at)
{
	skip_ws(p);
	*at = p->pos;
	if (p->pos < p->len && (p->s[p->pos] == '"' || p->s[p->pos] == '\''))
		return parse_quoted(p, len);
	size_t start = p->pos;
	while (p->pos < p->len && is_word(p->s[p->pos]))
		p->pos++;
	if (p->pos == start) {
		fail(p, start, "%s%s%sexpected a regular expression at column %zu",
		     op ? "~" : "", op ? op : "", op ? ": " : "",
		     column(p->s, start));
		return NULL;
	}
	char *w = strndup(p->s + start, p->pos - start);
	if (!w)
		p->oom = true;
	*len = p->pos - start;
	return w;
}

static int translate_regex(const char *pat, size_t n, bool str, struct sbuf *o,
			   size_t *err_off, const char **why);
static bool compile_regex(struct parser *p, struct fnode *node, size_t at);

/* One atom: ~op [arg], a quoted string or a bare word (both ~u). */
static struct fnode *parse_atom(struct parser *p)
{
	size_t start = p->pos;
	if (p->pos >= p->len) {
		fail(p, start, "expected a filter expression at column %zu",
		     column(p->s, start));
		return NULL;
	}
	char c = p->s[p->pos];
	const struct opdef *def = OPDEF_URL;
	if (c == '~') {
		size_t e = p->pos + 1;
		while (e < p->len && is_printable(p->s[e]))
			e++;
		size_t wl = e - p->pos - 1;
		const struct opdef *best = NULL;
		def = NULL;
		for (size_t i = 0; i < NOPS; i++) {
			size_t cl = strlen(ops[i].code);
			if (cl == wl && !memcmp(ops[i].code, p->s + p->pos + 1, cl))
				def = &ops[i];
			else if (cl < wl &&
				 !memcmp(ops[i].code, p->s + p->pos + 1, cl) &&
				 (!best || strlen(best->code) < cl))
				best = &ops[i];
		}
		if (!def && best) {
			size_t at = p->pos + 1 + strlen(best->code);
			fail(p, at,
			     "~%s: expected a space or the end after the operator, "
			     "found '%c' at column %zu",
			     best->code, p->s[at], column(p->s, at));
			return NULL;
		}
		if (!def) {
			fail(p, start, "unknown operator '%.*s' at column %zu",
			     (int)(e - p->pos), p->s + p->pos,
			     column(p->s, start));
			return NULL;
		}
		p->pos = e;
	} else if (!is_word(c) && c != '"' && c != '\'') {
		fail(p, start, "expected a filter expression, found '%c' at "
		     "column %zu", c, column(p->s, start));
		return NULL;
	}
	struct fnode *n = new_node(p, def->op);
	if (!n)
		return NULL;
	n->def = def;
	if (def->arg == ARG_INT) {
		skip_ws(p);
		size_t ds = p->pos;
		uint32_t v = 0;
		while (p->pos < p->len && p->s[p->pos] >= '0' &&
		       p->s[p->pos] <= '9') {
			v = v > 100000 ? 100000 : v * 10 + (uint32_t)(p->s[p->pos] - '0');
			p->pos++;
		}
		if (p->pos == ds) {
			fail(p, ds, "~%s: expected a number at column %zu",
			     def->code, column(p->s, ds));
			return NULL;
		}
		n->num = v;
	} else if (def->arg == ARG_REX) {
		size_t at;
		n->pat = parse_regex_arg(p, c == '~' ? def->code : NULL,
					 &n->pat_len, &at);
		if (!n->pat)
			return NULL;
		if (!compile_regex(p, n, at)) {
			p->fatal = true;
			return NULL;
		}
	}
	return n;
}

static struct fnode *parse_or(struct parser *p);

/* '(' or_expr ')' | atom */
static struct fnode *parse_primary(struct parser *p)
{
	skip_ws(p);
	if (p->pos < p->len && p->s[p->pos] == '(') {
		size_t open = p->pos;
		p->pos++;
		struct fnode *n = parse_or(p);
		if (!n)
			return NULL;
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != ')') {
			if (p->pos >= p->len)
				fail(p, p->pos, "expected ')' for the '(' at column "
				     "%zu, found the end at column %zu",
				     column(p->s, open), column(p->s, p->pos));
			else
				fail(p, p->pos, "expected ')' for the '(' at column "
				     "%zu at column %zu", column(p->s, open),
				     column(p->s, p->pos));
			return NULL;
		}
		p->pos++;
		return n;
	}
	return parse_atom(p);
}

/* '!' not_expr | primary. When '!' is not followed by an expression,
 * pyparsing falls back to the atom, and "!" becomes a bare word. */
static struct fnode *parse_not(struct parser *p)
{
	skip_ws(p);
	size_t start = p->pos;
	if (start < p->len && (p->failed[start] & 2))
		return NULL;
	if (++p->depth > MAX_DEPTH) {
		p->have_err = false;
		fail(p, start, "expression nested too deeply at column %zu",
		     column(p->s, start));
		p->fatal = true;
		p->depth--;
		return NULL;
	}
	struct fnode *n = NULL;
	if (start < p->len && p->s[start] == '!') {
		p->pos++;
		struct fnode *k = parse_not(p);
		if (k) {
			n = new_node(p, OP_NOT);
			if (n && !add_kid(p, n, k))
				n = NULL;
		} else if (!p->oom && !p->fatal) {
			p->pos = start;
			n = parse_primary(p);
		}
	} else {
		n = parse_primary(p);
	}
	p->depth--;
	if (!n && start < p->len)
		p->failed[start] |= 2;
	return n;
}

/* lhs (op rhs)*, where an operator whose right side does not parse is
 * left alone (pyparsing backtracks; the operator then reads as a word). */
static struct fnode *parse_binary(struct parser *p, char opc, enum fop op,
				  struct fnode *(*sub)(struct parser *))
{
	struct fnode *first = sub(p), *n = NULL;
	if (!first)
		return NULL;
	for (;;) {
		size_t save = p->pos;
		skip_ws(p);
		if (p->pos >= p->len || p->s[p->pos] != opc) {
			p->pos = save;
			break;
		}
		p->pos++;
		struct fnode *rhs = sub(p);
		if (!rhs) {
			if (p->oom || p->fatal)
				return NULL;
			p->pos = save;
			break;
		}
		if (!n) {
			n = new_node(p, op);
			if (!n || !add_kid(p, n, first))
				return NULL;
		}
		if (!add_kid(p, n, rhs))
			return NULL;
	}
	return n ? n : first;
}

static struct fnode *parse_and(struct parser *p)
{
	return parse_binary(p, '&', OP_AND, parse_not);
}

static struct fnode *parse_or(struct parser *p)
{
	skip_ws(p);
	size_t start = p->pos;
	if (start < p->len && (p->failed[start] & 1))
		return NULL;
	struct fnode *n = parse_binary(p, '|', OP_OR, parse_and);
	if (!n && start < p->len)
		p->failed[start] |= 1;
	return n;
}

/* OneOrMore(expr) then the end: juxtaposed expressions are and-ed. */
static struct fnode *parse_top(struct parser *p)
{
	struct fnode *first = parse_or(p), *n = NULL;
	if (!first)
		return NULL;
	for (;;) {
		skip_ws(p);
		if (p->pos >= p->len)
			break;
		struct fnode *k = parse_or(p);
		if (!k)
			return NULL;
		if (!n) {
			n = new_node(p, OP_AND);
			if (!n || !add_kid(p, n, first))
				return NULL;
		}
		if (!add_kid(p, n, k))
			return NULL;
	}
	return n ? n : first;
}

/* ---- regexes -------------------------------------------------------- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool hexn(const char *s, size_t avail, size_t n, uint32_t *v)
{
	if (avail < n)
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		int h = hexval(s[i]);
		if (h < 0)
			return false;
		*v = *v * 16 + (uint32_t)h;
	}
	return true;
}

/* Python `re` syntax into PCRE2 syntax where the two differ: \Z (end of
 * subject), \v (vertical tab), \uXXXX \UXXXXXXXX (str patterns), {,n}, a
 * '[' inside a class (no POSIX classes in Python), (?<name>...) and
 * unknown letter escapes (errors in Python). Returns 0 or -1 with *why
 * and *err_off (offset in |pat|), or -ENOMEM. */
static int translate_regex(const char *pat, size_t n, bool str, struct sbuf *o,
			   size_t *err_off, const char **why)
{
	bool in_class = false;
	size_t class_start = 0;
	o->n = 0;
	for (size_t i = 0; i < n; i++) {
		char c = pat[i];
		bool ok = true;
		if (c == '\\') {
			if (i + 1 >= n) {
				*err_off = i;
				*why = "bad escape (end of pattern)";
				return -1;
			}
			char e = pat[i + 1];
			uint32_t v;
			char t[16];
			if (e == 'Z' && !in_class) {
				ok = sbuf_puts(o, "\\z");
			} else if (e == 'v') {
				ok = sbuf_puts(o, "\\x0b");
			} else if (e == 'x') {
				if (!hexn(pat + i + 2, n - i - 2, 2, &v)) {
					*err_off = i;
					*why = "incomplete escape \\x";
					return -1;
				}
				ok = sbuf_put(o, pat + i, 4);
				i += 2;
			} else if (str && (e == 'u' || e == 'U')) {
				size_t len = e == 'u' ? 4 : 8;
				if (!hexn(pat + i + 2, n - i - 2, len, &v) ||
				    v > 0x10FFFF) {
					*err_off = i;
					*why = "bad \\u or \\U escape";
					return -1;
				}
				snprintf(t, sizeof(t), "\\x{%x}", v);
				ok = sbuf_puts(o, t);
				i += len;
			} else if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z')) {
				const char *known = in_class ? "abfnrtdDsSwW"
							     : "abBfnrtdDsSwWAZ";
				if (!strchr(known, e)) {
					*err_off = i;
					*why = "bad escape";
					return -1;
				}
				ok = sbuf_put(o, pat + i, 2);
			} else {
				ok = sbuf_put(o, pat + i, 2);
			}
			i++;
		} else if (in_class) {
			if (c == ']' && i > class_start)
				in_class = false;
			ok = c == '[' ? sbuf_puts(o, "\\[") : sbuf_put(o, &c, 1);
		} else if (c == '[') {
			in_class = true;
			class_start = i + 1;
			if (class_start < n && pat[class_start] == '^')
				class_start++;
			ok = sbuf_put(o, pat + i, class_start - i);
			/* "[:x:]" is a POSIX class (or an error) in PCRE2 only */
			if (ok && class_start < n && strchr(":.=", pat[class_start]))
				ok = sbuf_put(o, "\\", 1);
			i = class_start - 1;
		} else if (c == '{' && i + 1 < n && pat[i + 1] == ',') {
			size_t j = i + 2;
			while (j < n && pat[j] >= '0' && pat[j] <= '9')
				j++;
			ok = j < n && pat[j] == '}' && j > i + 2
				? sbuf_puts(o, "{0") : sbuf_put(o, "{", 1);
		} else if (c == '(' && i + 3 < n && pat[i + 1] == '?' &&
			   pat[i + 2] == '<' && pat[i + 3] != '=' &&
			   pat[i + 3] != '!') {
			*err_off = i;
			*why = "unknown extension ?<";
			return -1;
		} else {
			ok = sbuf_put(o, &c, 1);
		}
		if (!ok)
			return -ENOMEM;
	}
	return 0;
}

static pcre2_code *rx_compile(const char *pat, size_t n, uint32_t flags,
			      int *errc, size_t *erroff)
{
	pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
	if (!cc) {
		*errc = PCRE2_ERROR_NOMEMORY;
		return NULL;
	}
	pcre2_set_newline(cc, PCRE2_NEWLINE_LF);
	uint32_t opt = flags & ~RX_STR;
	if (flags & RX_STR)
		opt |= PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF;
	pcre2_code *re = pcre2_compile((PCRE2_SPTR)pat, n, opt, errc, erroff,
				       cc);
	pcre2_compile_context_free(cc);
	if (re)
		pcre2_jit_compile(re, PCRE2_JIT_COMPLETE); /* else interpreted */
	return re;
}

static bool compile_regex(struct parser *p, struct fnode *node, size_t at)
{
	struct sbuf t = {0};
	size_t off = 0;
	const char *why = NULL;
	bool str = node->def->flags & RX_STR;
	int rc = translate_regex(node->pat, node->pat_len, str, &t, &off, &why);
	if (rc == -ENOMEM) {
		free(t.p);
		p->oom = true;
		return false;
	}
	if (rc == 0) {
		int errc = 0;
		node->re = rx_compile(t.p ? t.p : "", t.n, node->def->flags,
				      &errc, &off);
		if (!node->re) {
			if (errc == PCRE2_ERROR_NOMEMORY) {
				free(t.p);
				p->oom = true;
				return false;
			}
			static _Thread_local char msg[120];
			pcre2_get_error_message(errc, (PCRE2_UCHAR *)msg,
						sizeof(msg));
			why = msg;
			rc = -1;
			if (off > node->pat_len) /* an offset in the translation */
				off = node->pat_len;
		}
	}
	free(t.p);
	if (rc < 0) {
		p->have_err = false; /* this one ends the parse: report it */
		fail(p, at, "~%s: invalid regular expression '%s' at column %zu: "
		     "%s (pattern offset %zu)", node->def->code, node->pat,
		     column(p->s, at), why, off);
		return false;
	}
	if (node->op == OP_META || node->op == OP_MARKER ||
	    node->op == OP_COMMENT) {
		/* Flows carry no metadata, marker or comment: mitmproxy then
		 * searches "", and the answer is the same for every flow. */
		pcre2_match_data *md = pcre2_match_data_create(1, NULL);
		if (!md) {
			p->oom = true;
			return false;
		}
		node->konst = pcre2_match(node->re, (PCRE2_SPTR) "", 0, 0, 0, md,
					  NULL) >= 0;
		pcre2_match_data_free(md);
	}
	return true;
}

/* ---- compile / free ------------------------------------------------- */

static bool valid_utf8(const char *s, size_t n, size_t *bad)
{
	const unsigned char *u = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		unsigned c = u[i];
		size_t k;
		uint32_t cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xC2 && c <= 0xDF) {
			k = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			k = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			k = 3;
			cp = c & 0x07;
		} else {
			*bad = i;
			return false;
		}
		for (size_t j = 1; j <= k; j++) {
			if (i + j >= n || (u[i + j] & 0xC0) != 0x80) {
				*bad = i;
				return false;
			}
			cp = cp << 6 | (u[i + j] & 0x3F);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && (cp < 0x10000 ||
		    cp > 0x10FFFF)) || (cp >= 0xD800 && cp <= 0xDFFF)) {
			*bad = i;
			return false;
		}
		i += k + 1;
	}
	return true;
}

/* pyparsing's parseString() first runs str.expandtabs(): every tab becomes
 * spaces up to the next multiple of 8 columns (counted in characters,
 * restarting after \n and \r), quoted ones included. */
static char *expand_tabs(const char *s, size_t *len)
{
	size_t tabs = 0;
	for (size_t i = 0; s[i]; i++)
		tabs += s[i] == '\t';
	char *o = malloc(*len + tabs * 8 + 1);
	if (!o)
		return NULL;
	size_t n = 0, col = 0;
	for (size_t i = 0; s[i]; i++) {
		char c = s[i];
		if (c == '\t') {
			do
				o[n++] = ' ';
			while (++col % 8);
			continue;
		}
		o[n++] = c;
		if (c == '\n' || c == '\r')
			col = 0;
		else if (((unsigned char)c & 0xC0) != 0x80)
			col++;
	}
	o[n] = 0;
	*len = n;
	return o;
}

static void set_err(char *err, size_t err_len, const char *msg)
{
	if (err && err_len)
		snprintf(err, err_len, "%s", msg);
}

int filter_compile(const char *expr, struct filter **out, char *err,
		   size_t err_len)
{
	*out = NULL;
	size_t len = strlen(expr), bad;
	if (!len) {
		set_err(err, err_len, "empty filter expression");
		return RC_CFG_BAD_VALUE;
	}
	if (!valid_utf8(expr, len, &bad)) {
		char m[80];
		snprintf(m, sizeof(m), "invalid UTF-8 at column %zu",
			 column(expr, bad));
		set_err(err, err_len, m);
		return RC_CFG_BAD_VALUE;
	}
	struct filter *f = calloc(1, sizeof(*f));
	char *x = expand_tabs(expr, &len);
	struct parser p = {.s = x, .len = len, .f = f};
	if (!f || !x || !(f->expr = strdup(expr)) ||
	    !(p.failed = calloc(len + 1, 1))) {
		free(x);
		filter_free(f);
		set_err(err, err_len, "out of memory");
		return -ENOMEM;
	}
	struct fnode *root = parse_top(&p);
	free(p.failed);
	free(x);
	if (p.oom) {
		filter_free(f);
		set_err(err, err_len, "out of memory");
		return -ENOMEM;
	}
	if (!root) {
		filter_free(f);
		set_err(err, err_len, p.have_err ? p.err : "invalid filter");
		return RC_CFG_BAD_VALUE;
	}
	f->root = root;
	*out = f;
	return 0;
}

void filter_free(struct filter *f)
{
	if (!f)
		return;
	for (struct fnode *n = f->nodes, *nx; n; n = nx) {
		nx = n->next;
		free(n->kids);
		free(n->pat);
		pcre2_code_free(n->re);
		free(n);
	}
	free(f->expr);
	free(f);
}

const char *filter_expr(const struct filter *f)
{
	return f->expr;
}

static void dump_node(FILE *out, const struct fnode *n, int indent)
{
	for (int i = 0; i < indent; i++)
		fputc('\t', out);
	switch (n->op) {
	case OP_AND:
	case OP_OR:
		fputs(n->op == OP_AND ? "FAnd\n" : "FOr\n", out);
		for (uint32_t i = 0; i < n->nkids; i++)
			dump_node(out, n->kids[i], indent + 1);
		return;
	case OP_NOT:
		fputs("FNot\n", out);
		dump_node(out, n->kids[0], indent + 1);
		return;
	default:
		fputs(n->def->cls, out);
		if (n->pat)
			fwrite(n->pat, 1, n->pat_len, out);
		fputc('\n', out);
	}
}

void filter_dump(FILE *out, const struct filter *f)
{
	dump_node(out, f->root, 0);
}

/* ---- scratch -------------------------------------------------------- */

struct filter_scratch *filter_scratch_new(const struct filter *f)
{
	(void)f;
	struct filter_scratch *s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->md = pcre2_match_data_create(1, NULL);
	s->mctx = pcre2_match_context_create(NULL);
	s->jit = pcre2_jit_stack_create(32 * 1024, 1024 * 1024, NULL);
	if (!s->md || !s->mctx || !s->jit) {
		filter_scratch_free(s);
		return NULL;
	}
	pcre2_jit_stack_assign(s->mctx, NULL, s->jit);
	return s;
}

void filter_scratch_free(struct filter_scratch *s)
{
	if (!s)
		return;
	pcre2_match_data_free(s->md);
	pcre2_match_context_free(s->mctx);
	pcre2_jit_stack_free(s->jit);
	struct sbuf *bufs[] = {&s->url, &s->phost, &s->hq, &s->hs, &s->bq,
			       &s->bs, &s->tmp};
	for (size_t i = 0; i < sizeof(bufs) / sizeof(bufs[0]); i++)
		free(bufs[i]->p);
	free(s);
}

uint64_t filter_scratch_match_errors(const struct filter_scratch *s)
{
	return s->match_errors;
}

/* ---- evaluation ----------------------------------------------------- */

static bool rx(const struct fnode *n, struct filter_scratch *s, const void *p,
	       size_t len)
{
	int rc = pcre2_match(n->re, (PCRE2_SPTR)(p ? p : ""), len, 0, 0, s->md,
			     s->mctx);
	if (rc >= 0)
		return true;
	if (rc != PCRE2_ERROR_NOMATCH)
		s->match_errors++;
	return false;
}

static bool rx_str(const struct fnode *n, struct filter_scratch *s,
		   struct rc_str v)
{
	return rx(n, s, v.p, v.n);
}

static bool streq_ci(struct rc_str a, const char *b)
{
	size_t n = strlen(b);
	return a.n == n && !strncasecmp(a.p, b, n);
}

static bool streq(struct rc_str a, const char *b)
{
	size_t n = strlen(b);
	return a.n == n && !memcmp(a.p, b, n);
}

/* Headers.get(name): every value of |name| joined by ", ", or false. */
static bool header_get(const struct flow_header *h, uint32_t nh,
		       const char *name, struct sbuf *o, bool *oom)
{
	bool found = false;
	o->n = 0;
	for (uint32_t i = 0; i < nh; i++) {
		if (!streq_ci(h[i].name, name))
			continue;
		if ((found && !sbuf_put(o, ", ", 2)) ||
		    !sbuf_put(o, h[i].value.p, h[i].value.n))
			*oom = true;
		found = true;
	}
	return found;
}

static uint16_t default_port(struct rc_str scheme)
{
	if (streq(scheme, "http"))
		return 80;
	if (streq(scheme, "https"))
		return 443;
	return 0;
}

/* mitmproxy.net.check.is_valid_host, for ASCII hosts (a non-ASCII one,
 * which Python would run through IDNA, counts as invalid). */
static bool valid_host(const char *h, size_t n)
{
	if (n > 255)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)h[i] >= 0x80)
			return false;
	size_t m = n && h[n - 1] == '.' ? n - 1 : n;
	bool labels = true;
	size_t lab = 0;
	for (size_t i = 0; i <= m && labels; i++) {
		if (i == m || h[i] == '.') {
			labels = lab >= 1 && lab <= 63;
			lab = 0;
			continue;
		}
		char c = h[i];
		labels = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || c == '-' || c == '_';
		lab++;
	}
	if (labels)
		return true;
	char t[64];
	unsigned char a[16];
	if (n >= sizeof(t))
		return false;
	memcpy(t, h, n);
	t[n] = 0;
	return inet_pton(AF_INET, t, a) == 1 || inet_pton(AF_INET6, t, a) == 1;
}

static bool all_digits(const char *s, size_t n)
{
	if (!n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return false;
	return true;
}

/* mitmproxy.net.http.url.parse_authority(a, check=False): the host (a
 * span of |a|) and the port (-1 for none). */
static void parse_authority(const char *a, size_t n, const char **host,
			    size_t *hl, long *port)
{
	*host = a;
	*hl = n;
	*port = -1;
	const char *h = NULL, *ps = NULL;
	size_t hn = 0, pn = 0;
	const char *colon = memchr(a, ':', n);
	if (n && !colon) {
		h = a;
		hn = n;
	} else if (colon && colon > a && all_digits(colon + 1, (size_t)(a + n - colon - 1))) {
		h = a;
		hn = (size_t)(colon - a);
		ps = colon + 1;
		pn = n - hn - 1;
	} else if (n >= 3 && a[0] == '[') {
		if (a[n - 1] == ']') {
			h = a;
			hn = n;
		} else {
			const char *lc = memrchr(a, ':', n);
			size_t k = (size_t)(lc - a);
			if (k >= 3 && a[k - 1] == ']' &&
			    all_digits(lc + 1, n - k - 1)) {
				h = a;
				hn = k;
				ps = lc + 1;
				pn = n - k - 1;
			}
		}
	}
	if (!h)
		return;
	if (hn >= 2 && h[0] == '[' && h[hn - 1] == ']') {
		h++;
		hn -= 2;
	}
	if (!valid_host(h, hn))
		return;
	long pv = -1;
	if (ps) {
		pv = 0;
		for (size_t i = 0; i < pn && pv <= 65535; i++)
			pv = pv * 10 + (ps[i] - '0');
		if (pv > 65535)
			return;
	}
	*host = h;
	*hl = hn;
	*port = pv;
}

static bool is_authority_form(const struct flow_request *r)
{
	return streq(r->method, "CONNECT") && r->path.n == 0;
}

/* url.unparse(scheme, host, port, path) */
static bool unparse(struct sbuf *o, const struct flow_request *r,
		    const char *host, size_t hl, unsigned port)
{
	bool ok = sbuf_put(o, r->scheme.p, r->scheme.n) &&
		  sbuf_puts(o, "://") && sbuf_put(o, host, hl);
	if (ok && default_port(r->scheme) != port)
		ok = sbuf_put(o, ":", 1) && sbuf_putu(o, port);
	if (ok && !streq(r->path, "*"))
		ok = sbuf_put(o, r->path.p, r->path.n);
	return ok;
}

/* request.pretty_url */
static void build_url(const struct flow *fl, struct filter_scratch *s)
{
	const struct flow_request *r = &fl->req;
	struct sbuf *o = &s->url;
	o->n = 0;
	bool ok = true;
	if (is_authority_form(r)) {
		ok = sbuf_put(o, r->host.p, r->host.n) && sbuf_put(o, ":", 1) &&
		     sbuf_putu(o, r->port);
	} else if (!header_get(r->headers, r->num_headers, "host", &s->tmp,
			       &s->oom) || !s->tmp.n) {
		ok = unparse(o, r, r->host.p, r->host.n, r->port);
	} else {
		const char *h;
		size_t hl;
		long port;
		parse_authority(s->tmp.p, s->tmp.n, &h, &hl, &port);
		if (port <= 0)
			port = default_port(r->scheme) ? default_port(r->scheme)
						       : 443;
		ok = unparse(o, r, h, hl, (unsigned)port);
	}
	if (!ok)
		s->oom = true;
	s->valid |= V_URL;
}

/* request.pretty_host */
static void build_phost(const struct flow *fl, struct filter_scratch *s)
{
	const struct flow_request *r = &fl->req;
	struct sbuf *o = &s->phost;
	o->n = 0;
	if (header_get(r->headers, r->num_headers, "host", &s->tmp, &s->oom) &&
	    s->tmp.n) {
		const char *h;
		size_t hl;
		long port;
		parse_authority(s->tmp.p, s->tmp.n, &h, &hl, &port);
		if (!sbuf_put(o, h, hl))
			s->oom = true;
	} else if (!sbuf_put(o, r->host.p, r->host.n)) {
		s->oom = true;
	}
	s->valid |= V_PHOST;
}

/* bytes(headers): "name: value\r\n" per field, names as sent. */
static void build_headers(struct sbuf *o, const struct flow_header *h,
			  uint32_t nh, bool *oom)
{
	o->n = 0;
	for (uint32_t i = 0; i < nh; i++)
		if (!sbuf_put(o, h[i].name.p, h[i].name.n) ||
		    !sbuf_put(o, ": ", 2) ||
		    !sbuf_put(o, h[i].value.p, h[i].value.n) ||
		    !sbuf_put(o, "\r\n", 2))
			*oom = true;
}

/* zlib inflate of |in| into |o|: window bits 16+15 (gzip, members back to
 * back), 15 (zlib) or -15 (raw deflate). A capture cut short decodes as
 * far as it goes. Returns false where Python would raise. */
static bool inflate_into(struct sbuf *o, const uint8_t *in, size_t n,
			 int wbits, bool truncated)
{
	z_stream z;
	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, wbits) != Z_OK)
		return false;
	o->n = 0;
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)n;
	bool ok = false;
	for (;;) {
		if (o->n == o->cap && (o->n >= MAX_DECODED ||
				       !sbuf_reserve(o, o->n ? o->n * 2 : 4096))) {
			ok = o->n >= MAX_DECODED;
			break;
		}
		z.next_out = (Bytef *)o->p + o->n;
		z.avail_out = (uInt)(o->cap - o->n);
		int rc = inflate(&z, Z_NO_FLUSH);
		o->n = o->cap - z.avail_out;
		if (rc == Z_STREAM_END) {
			if (wbits > 15 && z.avail_in > 0) {
				if (inflateReset(&z) != Z_OK)
					break;
				continue;
			}
			ok = true;
			break;
		}
		if (rc == Z_BUF_ERROR && z.avail_in == 0) {
			ok = truncated;
			break;
		}
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			break;
	}
	inflateEnd(&z);
	return ok;
}

/* message.get_content(strict=False): the body with its Content-Encoding
 * undone (gzip, deflate), or the raw body. */
static void body_for_match(const struct flow_header *h, uint32_t nh,
			   const struct flow_body *b, struct sbuf *dec,
			   struct filter_scratch *s, const uint8_t **p,
			   size_t *n)
{
	*p = b->p;
	*n = b->captured;
	if (!header_get(h, nh, "content-encoding", &s->tmp, &s->oom))
		return;
	struct rc_str ce = {s->tmp.p, (uint32_t)s->tmp.n};
	int wbits = 0;
	if (streq_ci(ce, "gzip"))
		wbits = 16 + 15;
	else if (streq_ci(ce, "deflate") || streq_ci(ce, "deflateraw"))
		wbits = 15;
	if (!wbits)
		return;
	bool ok = inflate_into(dec, b->p, b->captured, wbits, b->truncated);
	if (!ok && wbits == 15)
		ok = inflate_into(dec, b->p, b->captured, -15, b->truncated);
	if (ok) {
		*p = (const uint8_t *)dec->p;
		*n = dec->n;
	}
}

static bool ct_match(const struct fnode *n, struct filter_scratch *s,
		     const struct flow_header *h, uint32_t nh)
{
	for (uint32_t i = 0; i < nh; i++)
		if (streq_ci(h[i].name, "content-type") &&
		    rx_str(n, s, h[i].value))
			return true;
	return false;
}

static bool is_asset(const struct flow_header *h, uint32_t nh)
{
	static const char *const types[] = {
		"text/javascript", "application/x-javascript",
		"application/javascript", "text/css", "image/", "font/",
		"application/font",
	};
	for (uint32_t i = 0; i < nh; i++) {
		if (!streq_ci(h[i].name, "content-type"))
			continue;
		for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++)
			if (memmem(h[i].value.p, h[i].value.n, types[t],
				   strlen(types[t])))
				return true;
	}
	return false;
}

static bool endpoint_match(const struct fnode *n, struct filter_scratch *s,
			   const char *host, size_t hl, unsigned port)
{
	struct sbuf *o = &s->tmp;
	o->n = 0;
	if (!sbuf_put(o, host, hl) || !sbuf_put(o, ":", 1) ||
	    !sbuf_putu(o, port)) {
		s->match_errors++;
		return false;
	}
	return rx(n, s, o->p, o->n);
}

/* server_conn.address: where the proxy was asked to connect. */
static bool dst_match(const struct fnode *n, const struct flow *fl,
		      struct filter_scratch *s)
{
	if (fl->type == FLOW_TCP && fl->tcp_host.n)
		return endpoint_match(n, s, fl->tcp_host.p, fl->tcp_host.n,
				      fl->tcp_port);
	if (fl->mode != FLOW_MODE_UPSTREAM && fl->has_request &&
	    fl->req.host.n)
		return endpoint_match(n, s, fl->req.host.p, fl->req.host.n,
				      fl->req.port);
	if (fl->has_server && fl->server.peer.addr[0])
		return endpoint_match(n, s, fl->server.peer.addr,
				      strlen(fl->server.peer.addr),
				      fl->server.peer.port);
	return false;
}

static bool body_match(const struct fnode *n, const struct flow *fl,
		       struct filter_scratch *s, bool req)
{
	if (req) {
		if (!fl->has_request || !fl->req.body.captured)
			return false;
		if (!(s->valid & V_BQ)) {
			body_for_match(fl->req.headers, fl->req.num_headers,
				       &fl->req.body, &s->bq, s, &s->bq_p,
				       &s->bq_n);
			s->valid |= V_BQ;
		}
		return rx(n, s, s->bq_p, s->bq_n);
	}
	if (!fl->has_response || !fl->resp.body.captured)
		return false;
	if (!(s->valid & V_BS)) {
		body_for_match(fl->resp.headers, fl->resp.num_headers,
			       &fl->resp.body, &s->bs, s, &s->bs_p, &s->bs_n);
		s->valid |= V_BS;
	}
	return rx(n, s, s->bs_p, s->bs_n);
}

static bool head_match(const struct fnode *n, const struct flow *fl,
		       struct filter_scratch *s, bool req)
{
	if (req) {
		if (!fl->has_request)
			return false;
		if (!(s->valid & V_HQ)) {
			build_headers(&s->hq, fl->req.headers,
				      fl->req.num_headers, &s->oom);
			s->valid |= V_HQ;
		}
		return rx(n, s, s->hq.p, s->hq.n);
	}
	if (!fl->has_response)
		return false;
	if (!(s->valid & V_HS)) {
		build_headers(&s->hs, fl->resp.headers, fl->resp.num_headers,
			      &s->oom);
		s->valid |= V_HS;
	}
	return rx(n, s, s->hs.p, s->hs.n);
}

static bool eval(const struct fnode *n, const struct flow *fl,
		 struct filter_scratch *s);

/* Operators that apply to HTTP flows only (mitmproxy's @only). */
static bool eval_http(const struct fnode *n, const struct flow *fl,
		      struct filter_scratch *s)
{
	switch (n->op) {
	case OP_HTTP:
		return true;
	case OP_REQ:
		return !fl->has_response;
	case OP_RESP:
		return fl->has_response;
	case OP_ASSET:
		return fl->has_response &&
		       is_asset(fl->resp.headers, fl->resp.num_headers);
	case OP_CODE:
		return fl->has_response && fl->resp.status == n->num;
	case OP_CT:
		return (fl->has_request &&
			ct_match(n, s, fl->req.headers, fl->req.num_headers)) ||
		       (fl->has_response &&
			ct_match(n, s, fl->resp.headers, fl->resp.num_headers));
	case OP_CTQ:
		return fl->has_request &&
		       ct_match(n, s, fl->req.headers, fl->req.num_headers);
	case OP_CTS:
		return fl->has_response &&
		       ct_match(n, s, fl->resp.headers, fl->resp.num_headers);
	case OP_HEAD:
		return head_match(n, fl, s, true) || head_match(n, fl, s, false);
	case OP_HEADQ:
		return head_match(n, fl, s, true);
	case OP_HEADS:
		return head_match(n, fl, s, false);
	case OP_BOD:
		return body_match(n, fl, s, true) || body_match(n, fl, s, false);
	case OP_BODQ:
		return body_match(n, fl, s, true);
	case OP_BODS:
		return body_match(n, fl, s, false);
	case OP_METHOD:
		return fl->has_request && rx_str(n, s, fl->req.method);
	case OP_DOMAIN:
		if (!fl->has_request)
			return false;
		if (rx_str(n, s, fl->req.host))
			return true;
		if (!(s->valid & V_PHOST))
			build_phost(fl, s);
		return rx(n, s, s->phost.p, s->phost.n);
	case OP_URL:
		if (!fl->has_request)
			return false;
		if (!(s->valid & V_URL))
			build_url(fl, s);
		return rx(n, s, s->url.p, s->url.n);
	default:
		return false; /* ~websocket: no flow is a WebSocket */
	}
}

static bool eval(const struct fnode *n, const struct flow *fl,
		 struct filter_scratch *s)
{
	switch (n->op) {
	case OP_AND:
		for (uint32_t i = 0; i < n->nkids; i++)
			if (!eval(n->kids[i], fl, s))
				return false;
		return true;
	case OP_OR:
		for (uint32_t i = 0; i < n->nkids; i++)
			if (eval(n->kids[i], fl, s))
				return true;
		return false;
	case OP_NOT:
		return !eval(n->kids[0], fl, s);
	case OP_ALL:
		return true;
	case OP_ERR:
		return fl->has_error;
	case OP_TCP:
		return fl->type == FLOW_TCP;
	case OP_DNS:
		return fl->type == FLOW_DNS;
	case OP_MARKED: case OP_REPLAY: case OP_REPLAYQ: case OP_REPLAYS:
	case OP_UDP:
		return false;
	case OP_META: case OP_MARKER: case OP_COMMENT:
		return n->konst;
	case OP_SRC:
		return fl->client.peer.addr[0] &&
		       endpoint_match(n, s, fl->client.peer.addr,
				      strlen(fl->client.peer.addr),
				      fl->client.peer.port);
	case OP_DST:
		return dst_match(n, fl, s);
	case OP_BOD: case OP_BODQ: case OP_BODS:
		/* a tcp flow's messages are its bodies (mitmproxy: any
		 * message / from the client / from the server) */
		if (fl->type == FLOW_TCP) {
			for (uint32_t i = 0; i < fl->num_tcp_msgs; i++) {
				const struct flow_tcp_msg *m = &fl->tcp_msgs[i];
				if ((n->op == OP_BODQ && !m->from_client) ||
				    (n->op == OP_BODS && m->from_client))
					continue;
				if (rx(n, s, m->content.p, m->content.n))
					return true;
			}
			return false;
		}
		return fl->type == FLOW_HTTP && eval_http(n, fl, s);
	default:
		return fl->type == FLOW_HTTP && eval_http(n, fl, s);
	}
}

bool filter_match(const struct filter *f, const struct flow *fl,
		  struct filter_scratch *s)
{
	s->valid = 0;
	s->oom = false;
	bool m = eval(f->root, fl, s);
	if (s->oom)
		s->match_errors++;
	return m;
}
