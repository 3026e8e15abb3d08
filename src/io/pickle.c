/* The restricted unpickler (see pickle.h). Opcode names and meanings follow
 * CPython's Lib/pickletools.py documentation; only what the torch writers
 * emit is implemented, anything else is refused by name. */
#include "io/pickle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PICKLE_MAX_VALUES (1 << 20)   /* a ViT-B/16 state dict or TorchScript archive needs thousands */
#define PICKLE_MAX_MARKS 4096
#define PICKLE_CHUNK 1024

typedef struct chunk {
    struct chunk *next;
    int used;
    pv values[PICKLE_CHUNK];
} chunk;

struct pickle {
    chunk *chunks;
    int n_values;
    char **strings; /* owned text: GLOBAL names, NUL-terminated copies */
    int n_strings, cap_strings;
};

typedef struct {
    pickle *p;
    const pickle_options *o;
    const unsigned char *data;
    size_t size, pos, op_at;
    pv **stack;
    int depth, cap;
    int marks[PICKLE_MAX_MARKS];
    int n_marks;
    pv **memo;
    int64_t memo_cap;
    int64_t memo_next; /* MEMOIZE's implicit index */
} machine;

static ramc_status fail(machine *m, const char *why) {
    return ramc_error(RAMC_ERR_FORMAT, "%s: pickle byte %zu: %s", m->o->what ? m->o->what : "pickle",
                      m->op_at, why);
}

static pv *new_value(machine *m, pv_kind kind) {
    pickle *p = m->p;
    if (p->n_values >= PICKLE_MAX_VALUES) return NULL;
    if (!p->chunks || p->chunks->used == PICKLE_CHUNK) {
        chunk *c = calloc(1, sizeof *c);
        if (!c) return NULL;
        c->next = p->chunks;
        p->chunks = c;
    }
    pv *v = &p->chunks->values[p->chunks->used++];
    p->n_values++;
    v->kind = kind;
    return v;
}

static char *keep_string(machine *m, const char *a, size_t alen, const char *b, size_t blen) {
    pickle *p = m->p;
    if (p->n_strings == p->cap_strings) {
        int cap = p->cap_strings ? 2 * p->cap_strings : 64;
        char **s = realloc(p->strings, (size_t)cap * sizeof *s);
        if (!s) return NULL;
        p->strings = s;
        p->cap_strings = cap;
    }
    char *s = malloc(alen + (b ? blen + 1 : 0) + 1);
    if (!s) return NULL;
    memcpy(s, a, alen);
    size_t n = alen;
    if (b) {
        s[n++] = '.';
        memcpy(s + n, b, blen);
        n += blen;
    }
    s[n] = '\0';
    p->strings[p->n_strings++] = s;
    return s;
}

static ramc_status push(machine *m, pv *v) {
    if (!v) return fail(m, "too many values (or out of memory)");
    if (m->depth == m->cap) {
        int cap = m->cap ? 2 * m->cap : 256;
        if (cap > PICKLE_MAX_VALUES) return fail(m, "stack too deep");
        pv **s = realloc(m->stack, (size_t)cap * sizeof *s);
        if (!s) return ramc_error(RAMC_ERR_NOMEM, "out of memory reading a pickle");
        m->stack = s;
        m->cap = cap;
    }
    m->stack[m->depth++] = v;
    return RAMC_OK;
}

static pv *pop(machine *m) {
    /* values above the innermost mark only: a mark is not a value */
    int floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    return m->depth > floor ? m->stack[--m->depth] : NULL;
}

static pv *top(machine *m) {
    int floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    return m->depth > floor ? m->stack[m->depth - 1] : NULL;
}

static ramc_status append_item(machine *m, pv *seq, pv *item) {
    if (seq->n == seq->cap) {
        int cap = seq->cap ? 2 * seq->cap : 4;
        if (cap > PICKLE_MAX_VALUES * 2) return fail(m, "container too large");
        pv **items = realloc(seq->items, (size_t)cap * sizeof *items);
        if (!items) return ramc_error(RAMC_ERR_NOMEM, "out of memory reading a pickle");
        seq->items = items;
        seq->cap = cap;
    }
    seq->items[seq->n++] = item;
    return RAMC_OK;
}

/* Pops everything above the innermost mark, and the mark, into a new container. */
static ramc_status pop_to_mark(machine *m, pv_kind kind, pv **out) {
    if (!m->n_marks) return fail(m, "no mark on the stack");
    int from = m->marks[--m->n_marks];
    pv *c = new_value(m, kind);
    if (!c) return fail(m, "too many values (or out of memory)");
    for (int i = from; i < m->depth; i++) {
        ramc_status st = append_item(m, c, m->stack[i]);
        if (st) return st;
    }
    m->depth = from;
    *out = c;
    return RAMC_OK;
}

static int need(machine *m, size_t n) { return m->size - m->pos >= n; }

static uint64_t read_le(const unsigned char *b, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

/* A counted byte string of `lenbytes`-byte length; into a new STR or BYTES value. */
static ramc_status read_counted(machine *m, int lenbytes, pv_kind kind) {
    if (!need(m, (size_t)lenbytes)) return fail(m, "truncated length");
    uint64_t len = read_le(m->data + m->pos, lenbytes);
    m->pos += (size_t)lenbytes;
    if (len > m->size - m->pos) return fail(m, "string runs past the end of the data");
    pv *v = new_value(m, kind);
    if (!v) return fail(m, "too many values (or out of memory)");
    v->s = keep_string(m, (const char *)m->data + m->pos, (size_t)len, NULL, 0);
    if (!v->s) return ramc_error(RAMC_ERR_NOMEM, "out of memory reading a pickle");
    v->len = (size_t)len;
    m->pos += (size_t)len;
    return push(m, v);
}

static int allowed(const machine *m, const char *name) {
    if (m->o->allow_torchscript && strncmp(name, "__torch__.", 10) == 0) return 1;
    for (const char *const *a = m->o->allowed; a && *a; a++)
        if (strcmp(*a, name) == 0) return 1;
    return 0;
}

static ramc_status push_global(machine *m, const char *module, size_t mlen, const char *name,
                               size_t nlen) {
    for (size_t i = 0; i < mlen; i++)
        if ((unsigned char)module[i] < 0x20) return fail(m, "control character in a global's module");
    for (size_t i = 0; i < nlen; i++)
        if ((unsigned char)name[i] < 0x20) return fail(m, "control character in a global's name");
    char *full = keep_string(m, module, mlen, name, nlen);
    if (!full) return ramc_error(RAMC_ERR_NOMEM, "out of memory reading a pickle");
    if (!allowed(m, full))
        return ramc_error(RAMC_ERR_FORMAT,
                          "%s: refuses the pickle global '%.200s' (only tensors, storages and "
                          "ordered dicts are read; nothing is executed)",
                          m->o->what ? m->o->what : "pickle", full);
    pv *g = new_value(m, PV_GLOBAL);
    if (!g) return fail(m, "too many values (or out of memory)");
    g->s = full;
    g->len = strlen(full);
    return push(m, g);
}

static ramc_status memo_put(machine *m, int64_t index) {
    pv *v = top(m);
    if (!v) return fail(m, "memo store with an empty stack");
    /* legitimate picklers number the memo densely from 0 */
    if (index < 0 || index > m->p->n_values) return fail(m, "memo index out of range");
    if (index >= m->memo_cap) {
        int64_t cap = m->memo_cap ? m->memo_cap : 256;
        while (cap <= index) cap *= 2;
        pv **memo = realloc(m->memo, (size_t)cap * sizeof *memo);
        if (!memo) return ramc_error(RAMC_ERR_NOMEM, "out of memory reading a pickle");
        memset(memo + m->memo_cap, 0, (size_t)(cap - m->memo_cap) * sizeof *memo);
        m->memo = memo;
        m->memo_cap = cap;
    }
    m->memo[index] = v;
    return RAMC_OK;
}

static ramc_status memo_get(machine *m, int64_t index) {
    if (index < 0 || index >= m->memo_cap || !m->memo[index]) return fail(m, "memo index never stored");
    return push(m, m->memo[index]);
}

static ramc_status setitems(machine *m, pv *dict, pv *kv) {
    if (!dict || dict->kind != PV_DICT) return fail(m, "SETITEM(S) on something that is not a dict");
    if (kv->n % 2) return fail(m, "SETITEMS with an odd number of values");
    for (int i = 0; i < kv->n; i++) {
        ramc_status st = append_item(m, dict, kv->items[i]);
        if (st) return st;
    }
    return RAMC_OK;
}

static ramc_status step(machine *m, unsigned char op, int *stop) {
    ramc_status st;
    pv *v, *a, *b, *c;
    switch (op) {
    case 0x80: /* PROTO */
        if (!need(m, 1)) return fail(m, "truncated PROTO");
        if (m->data[m->pos] > 5) return fail(m, "pickle protocol above 5");
        m->pos++;
        return RAMC_OK;
    case 0x95: /* FRAME: a length hint only */
        if (!need(m, 8)) return fail(m, "truncated FRAME");
        m->pos += 8;
        return RAMC_OK;
    case '.': /* STOP */
        *stop = 1;
        return RAMC_OK;
    case '(': /* MARK */
        if (m->n_marks == PICKLE_MAX_MARKS) return fail(m, "marks nested too deeply");
        m->marks[m->n_marks++] = m->depth;
        return RAMC_OK;
    case '0': /* POP */
        if (!pop(m)) return fail(m, "POP on an empty stack");
        return RAMC_OK;
    case '1': /* POP_MARK */
        return pop_to_mark(m, PV_TUPLE, &v);
    case '2': /* DUP */
        if (!(v = top(m))) return fail(m, "DUP on an empty stack");
        return push(m, v);
    case 'N':
        return push(m, new_value(m, PV_NONE));
    case 0x88: /* NEWTRUE */
    case 0x89: /* NEWFALSE */
        if ((v = new_value(m, PV_BOOL))) v->i = op == 0x88;
        return push(m, v);
    case 'J': /* BININT */
    case 'K': /* BININT1 */
    case 'M': { /* BININT2 */
        int n = op == 'J' ? 4 : op == 'K' ? 1 : 2;
        if (!need(m, (size_t)n)) return fail(m, "truncated integer");
        uint64_t u = read_le(m->data + m->pos, n);
        m->pos += (size_t)n;
        if ((v = new_value(m, PV_INT))) v->i = op == 'J' ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
        return push(m, v);
    }
    case 0x8a: { /* LONG1: n bytes, little-endian two's complement */
        if (!need(m, 1)) return fail(m, "truncated LONG1");
        int n = m->data[m->pos++];
        if (n > 8) return fail(m, "integer wider than 64 bits");
        if (!need(m, (size_t)n)) return fail(m, "truncated LONG1");
        uint64_t u = n ? read_le(m->data + m->pos, n) : 0;
        if (n && n < 8 && (m->data[m->pos + n - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * n);
        m->pos += (size_t)n;
        if ((v = new_value(m, PV_INT))) v->i = (int64_t)u;
        return push(m, v);
    }
    case 'G': { /* BINFLOAT, big-endian */
        if (!need(m, 8)) return fail(m, "truncated BINFLOAT");
        uint64_t u = 0;
        for (int i = 0; i < 8; i++) u = (u << 8) | m->data[m->pos + i];
        m->pos += 8;
        double d;
        memcpy(&d, &u, sizeof d);
        if ((v = new_value(m, PV_FLOAT))) v->f = d;
        return push(m, v);
    }
    case 'X': return read_counted(m, 4, PV_STR);  /* BINUNICODE */
    case 0x8c: return read_counted(m, 1, PV_STR); /* SHORT_BINUNICODE */
    case 0x8d: return read_counted(m, 8, PV_STR); /* BINUNICODE8 */
    case 'T': return read_counted(m, 4, PV_STR);  /* BINSTRING */
    case 'U': return read_counted(m, 1, PV_STR);  /* SHORT_BINSTRING */
    case 'B': return read_counted(m, 4, PV_BYTES);  /* BINBYTES */
    case 'C': return read_counted(m, 1, PV_BYTES);  /* SHORT_BINBYTES */
    case 0x8e: return read_counted(m, 8, PV_BYTES); /* BINBYTES8 */
    case ')': /* EMPTY_TUPLE */
        return push(m, new_value(m, PV_TUPLE));
    case 't': /* TUPLE */
        if ((st = pop_to_mark(m, PV_TUPLE, &v))) return st;
        return push(m, v);
    case 0x85: /* TUPLE1 */
    case 0x86: /* TUPLE2 */
    case 0x87: { /* TUPLE3 */
        int n = op - 0x84;
        pv *t = new_value(m, PV_TUPLE);
        if (!t) return fail(m, "too many values (or out of memory)");
        pv *got[3];
        for (int i = n - 1; i >= 0; i--)
            if (!(got[i] = pop(m))) return fail(m, "TUPLE1-3 on too short a stack");
        for (int i = 0; i < n; i++)
            if ((st = append_item(m, t, got[i]))) return st;
        return push(m, t);
    }
    case ']': /* EMPTY_LIST */
        return push(m, new_value(m, PV_LIST));
    case 'l': /* LIST */
        if ((st = pop_to_mark(m, PV_LIST, &v))) return st;
        return push(m, v);
    case 'a': /* APPEND */
        if (!(v = pop(m)) || !(a = top(m)) || a->kind != PV_LIST) return fail(m, "APPEND needs a list");
        return append_item(m, a, v);
    case 'e': /* APPENDS */
        if ((st = pop_to_mark(m, PV_TUPLE, &v))) return st;
        if (!(a = top(m)) || a->kind != PV_LIST) return fail(m, "APPENDS needs a list");
        for (int i = 0; i < v->n; i++)
            if ((st = append_item(m, a, v->items[i]))) return st;
        return RAMC_OK;
    case '}': /* EMPTY_DICT */
        return push(m, new_value(m, PV_DICT));
    case 'd': /* DICT */
        if ((st = pop_to_mark(m, PV_TUPLE, &v))) return st;
        if (!(a = new_value(m, PV_DICT))) return fail(m, "too many values (or out of memory)");
        if ((st = setitems(m, a, v))) return st;
        return push(m, a);
    case 's': /* SETITEM */
        if (!(b = pop(m)) || !(a = pop(m))) return fail(m, "SETITEM on too short a stack");
        if (!(c = top(m)) || c->kind != PV_DICT) return fail(m, "SETITEM needs a dict");
        if ((st = append_item(m, c, a))) return st;
        return append_item(m, c, b);
    case 'u': /* SETITEMS */
        if ((st = pop_to_mark(m, PV_TUPLE, &v))) return st;
        return setitems(m, top(m), v);
    case 'c': { /* GLOBAL: "module\nname\n" */
        const char *s = (const char *)m->data + m->pos;
        size_t left = m->size - m->pos;
        const char *nl1 = memchr(s, '\n', left);
        const char *nl2 = nl1 ? memchr(nl1 + 1, '\n', left - (size_t)(nl1 + 1 - s)) : NULL;
        if (!nl2) return fail(m, "truncated GLOBAL");
        m->pos += (size_t)(nl2 + 1 - s);
        return push_global(m, s, (size_t)(nl1 - s), nl1 + 1, (size_t)(nl2 - nl1 - 1));
    }
    case 0x93: /* STACK_GLOBAL */
        if (!(b = pop(m)) || !(a = pop(m)) || a->kind != PV_STR || b->kind != PV_STR)
            return fail(m, "STACK_GLOBAL needs two strings");
        return push_global(m, a->s, a->len, b->s, b->len);
    case 'R': /* REDUCE: callable(*args) */
        if (!(b = pop(m)) || !(a = pop(m)) || a->kind != PV_GLOBAL || b->kind != PV_TUPLE)
            return fail(m, "REDUCE needs a global and an argument tuple");
        if (strcmp(a->s, "collections.OrderedDict") == 0) {
            if (b->n) return fail(m, "OrderedDict with constructor arguments");
            return push(m, new_value(m, PV_DICT));
        }
        if (!(v = new_value(m, PV_CALL))) return fail(m, "too many values (or out of memory)");
        v->fn = a;
        v->args = b;
        return push(m, v);
    case 0x81: /* NEWOBJ: cls.__new__(cls, *args) */
        if (!(b = pop(m)) || !(a = pop(m)) || a->kind != PV_GLOBAL || b->kind != PV_TUPLE)
            return fail(m, "NEWOBJ needs a class and an argument tuple");
        if (!(v = new_value(m, PV_OBJECT))) return fail(m, "too many values (or out of memory)");
        v->fn = a;
        v->args = b;
        return push(m, v);
    case 'b': /* BUILD: obj.__setstate__(state) */
        if (!(b = pop(m)) || !(a = top(m))) return fail(m, "BUILD on too short a stack");
        if (a->kind != PV_OBJECT && a->kind != PV_CALL) return fail(m, "BUILD on a plain value");
        if (a->state) return fail(m, "BUILD twice on one object");
        a->state = b;
        return RAMC_OK;
    case 'Q': /* BINPERSID */
        if (!(a = pop(m))) return fail(m, "BINPERSID on an empty stack");
        if (!(v = new_value(m, PV_PERSID))) return fail(m, "too many values (or out of memory)");
        v->args = a;
        return push(m, v);
    case 'q': /* BINPUT */
        if (!need(m, 1)) return fail(m, "truncated BINPUT");
        return memo_put(m, m->data[m->pos++]);
    case 'r': /* LONG_BINPUT */
        if (!need(m, 4)) return fail(m, "truncated LONG_BINPUT");
        m->pos += 4;
        return memo_put(m, (int64_t)read_le(m->data + m->pos - 4, 4));
    case 0x94: /* MEMOIZE */
        return memo_put(m, m->memo_next++);
    case 'h': /* BINGET */
        if (!need(m, 1)) return fail(m, "truncated BINGET");
        return memo_get(m, m->data[m->pos++]);
    case 'j': /* LONG_BINGET */
        if (!need(m, 4)) return fail(m, "truncated LONG_BINGET");
        m->pos += 4;
        return memo_get(m, (int64_t)read_le(m->data + m->pos - 4, 4));
    default: {
        char why[96];
        snprintf(why, sizeof why, "opcode 0x%02x is not read here (not written by torch.save)", op);
        return fail(m, why);
    }
    }
}

ramc_status pickle_load(const unsigned char *data, size_t size, const pickle_options *o,
                        pickle **out, const pv **root) {
    *out = NULL;
    *root = NULL;
    machine m = {0};
    m.o = o;
    m.data = data;
    m.size = size;
    if (!(m.p = calloc(1, sizeof *m.p))) return ramc_error(RAMC_ERR_NOMEM, "out of memory reading a pickle");
    ramc_status st = RAMC_OK;
    int stop = 0;
    while (st == RAMC_OK && !stop) {
        if (m.pos >= size) {
            m.op_at = m.pos;
            st = fail(&m, "ends without STOP");
            break;
        }
        m.op_at = m.pos;
        st = step(&m, data[m.pos++], &stop);
    }
    if (st == RAMC_OK && (m.depth != 1 || m.n_marks)) {
        st = fail(&m, "STOP with other than one value on the stack");
    }
    if (st == RAMC_OK) {
        *root = m.stack[0];
        *out = m.p;
    } else {
        pickle_free(m.p);
    }
    free(m.stack);
    free(m.memo);
    return st;
}

void pickle_free(pickle *p) {
    if (!p) return;
    for (chunk *c = p->chunks, *next; c; c = next) {
        next = c->next;
        for (int i = 0; i < c->used; i++) free(c->values[i].items);
        free(c);
    }
    for (int i = 0; i < p->n_strings; i++) free(p->strings[i]);
    free(p->strings);
    free(p);
}

const pv *pv_dict_get(const pv *dict, const char *key) {
    if (!dict || dict->kind != PV_DICT) return NULL;
    for (int i = 0; i + 1 < dict->n; i += 2)
        if (dict->items[i]->kind == PV_STR && strcmp(dict->items[i]->s, key) == 0)
            return dict->items[i + 1];
    return NULL;
}
