/* Fuzz target: the restricted unpickler (io/pickle.h) on the globals a torch
 * checkpoint may name, then a walk over the value tree it built. The whole
 * input is the pickle stream. (Zip archives around it are reached through
 * the safetensors target: st_open reads both.) */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "io/pickle.h"

void fuzz_init_pickle(void) {}

static const char *const allowed[] = {
    "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
    "torch.FloatStorage", "torch.HalfStorage", "torch.LongStorage", NULL};

/* Visits every value reachable in at most `depth` steps; checks each kind's
 * promises. Memo sharing can make the graph cyclic: the depth bounds it. */
static long walk(const pv *v, int depth) {
    if (!v || depth == 0) return 0;
    long seen = 1;
    switch (v->kind) {
    case PV_STR:
    case PV_BYTES:
    case PV_GLOBAL:
        FUZZ_CHECK(v->s != NULL && v->s[v->len] == '\0', "text value not terminated");
        break;
    case PV_DICT:
        FUZZ_CHECK(v->n % 2 == 0, "dict with %d items", v->n);
        /* fall through */
    case PV_TUPLE:
    case PV_LIST:
        FUZZ_CHECK(v->n >= 0 && (v->n == 0 || v->items), "container of %d without items", v->n);
        for (int i = 0; i < v->n && seen < 100000; i++) seen += walk(v->items[i], depth - 1);
        break;
    case PV_CALL:
    case PV_OBJECT:
        FUZZ_CHECK(v->fn && v->fn->kind == PV_GLOBAL && v->args && v->args->kind == PV_TUPLE,
                   "call without a global and an argument tuple");
        seen += walk(v->args, depth - 1) + walk(v->state, depth - 1);
        break;
    case PV_PERSID:
        FUZZ_CHECK(v->args != NULL, "persistent id without its value");
        seen += walk(v->args, depth - 1);
        break;
    default:
        break;
    }
    return seen;
}

int fuzz_one_pickle(const uint8_t *data, size_t size) {
    unsigned char *copy = (unsigned char *)fuzz_copy(data, size);
    if (!copy) return 0;
    ramc_clear_error();
    pickle_options o = {allowed, 1, "fuzz input"};
    pickle *p = NULL;
    const pv *root = NULL;
    if (pickle_load(copy, size, &o, &p, &root) != RAMC_OK) {
        FUZZ_CHECK(p == NULL && root == NULL, "pickle_load failed but returned values");
        fuzz_check_error_message("pickle_load");
    } else {
        FUZZ_CHECK(p != NULL && root != NULL, "pickle_load succeeded without a result");
        walk(root, 32);
        (void)pv_dict_get(root, "state_dict");
    }
    pickle_free(p);
    free(copy);
    return 0;
}
