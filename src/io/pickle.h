/* A restricted unpickler: reads the pickle streams that torch.save and
 * torch.jit.save write (protocols 2-5) into a tree of plain values, and never
 * executes anything.
 *
 * A pickle is a program for a small stack machine whose GLOBAL and REDUCE
 * opcodes would, in Python, import and call arbitrary functions. Here a
 * GLOBAL must name something on the caller's allow-list (or a TorchScript
 * class, `__torch__.*`, when allowed), and REDUCE / NEWOBJ only record "this
 * callable applied to these arguments" as a value for the caller to
 * interpret. collections.OrderedDict() becomes a plain (ordered) dict.
 *
 * Hostile streams: every length is checked against the bytes left, the memo
 * only holds indices up to the number of values created so far, the value
 * count and the mark depth are bounded, and the value tree is built without
 * recursion (callers that walk it bound their own depth).
 */
#ifndef RAMC_IO_PICKLE_H
#define RAMC_IO_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef enum {
    PV_NONE,
    PV_BOOL,   /* i */
    PV_INT,    /* i */
    PV_FLOAT,  /* f */
    PV_STR,    /* s, len (UTF-8 text as stored, NUL-terminated) */
    PV_BYTES,  /* s, len */
    PV_TUPLE,  /* items[n] */
    PV_LIST,   /* items[n] */
    PV_DICT,   /* items[2n]: key, value, key, value ... in insertion order */
    PV_GLOBAL, /* s = "module.name" */
    PV_CALL,   /* fn = the callable (a PV_GLOBAL), args = a PV_TUPLE; state from BUILD or NULL */
    PV_OBJECT, /* fn = the class (a PV_GLOBAL), args = NEWOBJ's tuple, state from BUILD or NULL */
    PV_PERSID  /* args = the persistent id (torch: a tuple naming a storage) */
} pv_kind;

typedef struct pv pv;
struct pv {
    pv_kind kind;
    int64_t i;
    double f;
    const char *s;
    size_t len;
    pv **items;
    int n, cap;
    pv *fn, *args, *state;
};

typedef struct pickle pickle; /* owns every value it produced */

typedef struct {
    const char *const *allowed; /* "module.name" of the globals accepted; NULL-terminated */
    int allow_torchscript;      /* accept any "__torch__.*" class as a GLOBAL */
    const char *what;           /* names the stream in messages, e.g. "model.pt: archive/data.pkl" */
} pickle_options;

/* Runs the pickle in data[0 .. size) and gives its result in *root. The
 * values live until pickle_free(*out). On error *out is NULL and the message
 * names o->what, the byte offset and the problem (a refused global is named). */
ramc_status pickle_load(const unsigned char *data, size_t size, const pickle_options *o,
                        pickle **out, const pv **root);
void pickle_free(pickle *p);

/* dict[key] for a PV_DICT with string keys; NULL when absent. */
const pv *pv_dict_get(const pv *dict, const char *key);

#endif
