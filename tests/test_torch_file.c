/* PyTorch checkpoints: the restricted unpickler on hand-written streams, and
 * the zip reader on the fixtures of scripts/make_torch_fixtures.py (torch.save
 * state dicts, a TorchScript archive, a RAM state dict, hostile archives),
 * each compared with the safetensors tensors it was made from. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "io/pickle.h"
#include "io/safetensors.h"
#include "model/clip.h"
#include "ram/ram.h"
#include "test.h"

#define GOLDEN RAMC_GOLDEN_DIR "/tiny-s0"
#define FIXTURES RAMC_SOURCE_DIR "/tests/fixtures/torch"

static const char *const allow_od[] = {"collections.OrderedDict", NULL};

static ramc_status load(const char *bytes, size_t n, pickle **p, const pv **root) {
    pickle_options o = {allow_od, 0, "test"};
    return pickle_load((const unsigned char *)bytes, n, &o, p, root);
}

/* Values, containers, memo and OrderedDict from a protocol-2 stream. */
static void test_pickle_values(void) {
    /* {"a": [1, -2, 300, 70000], "b": (None, True, 1.5), "c": OrderedDict(), "d": <memo of "a">} */
    static const char s[] =
        "\x80\x02}q\x00(\x8c\x01" "aq\x01]q\x02(K\x01J\xfe\xff\xff\xffM\x2c\x01\x8a\x03\x70\x11\x01"
        "e\x8c\x01" "bN\x88G\x3f\xf8\x00\x00\x00\x00\x00\x00\x87"
        "\x8c\x01" "cccollections\nOrderedDict\n)R\x8c\x01" "dh\x02u.";
    pickle *p = NULL;
    const pv *root = NULL;
    ramc_status st = load(s, sizeof s - 1, &p, &root);
    CHECK(st == RAMC_OK, "load: %s", ramc_last_error());
    if (st) return;
    CHECK(root->kind == PV_DICT && root->n == 8, "root is a dict of 4 items");
    const pv *a = pv_dict_get(root, "a"), *b = pv_dict_get(root, "b"), *c = pv_dict_get(root, "c");
    CHECK(a && a->kind == PV_LIST && a->n == 4, "a is a 4-list");
    if (a && a->n == 4) {
        CHECK(a->items[0]->i == 1 && a->items[1]->i == -2 && a->items[2]->i == 300 &&
                  a->items[3]->i == 70000,
              "ints %lld %lld %lld %lld", (long long)a->items[0]->i, (long long)a->items[1]->i,
              (long long)a->items[2]->i, (long long)a->items[3]->i);
    }
    CHECK(b && b->kind == PV_TUPLE && b->n == 3 && b->items[0]->kind == PV_NONE &&
              b->items[1]->kind == PV_BOOL && b->items[1]->i == 1 && b->items[2]->f == 1.5,
          "b is (None, True, 1.5)");
    CHECK(c && c->kind == PV_DICT && c->n == 0, "OrderedDict() is an empty dict");
    CHECK(pv_dict_get(root, "d") == a, "the memo gives back the same list");
    pickle_free(p);
}

/* What must be refused, and the message that says why. */
static void test_pickle_refusals(void) {
    static const struct {
        const char *bytes;
        size_t n;
        const char *says;
    } cases[] = {
        {"\x80\x02" "cos\nsystem\n\x8c\x02ls\x85R.", 22, "'os.system'"},
        {"\x80\x02\x8c\x08" "builtins\x8c\x04" "eval\x93.", 20, "'builtins.eval'"},
        {"\x80\x02}r\xff\xff\xff\xff.", 9, "memo index out of range"},
        {"\x80\x02h\x05.", 5, "memo index never stored"},
        {"\x80\x02X\xff\xff\xff\x7f" "ab.", 11, "past the end"},
        {"\x80\x02}(K\x01u.", 8, "odd number"},
        {"\x80\x02K\x01}b.", 7, "BUILD on a plain value"},
        {"\x80\x02t.", 4, "no mark"},
        {"\x80\x02K\x01K\x02.", 7, "other than one value"},
        {"\x80\x02K\x01", 4, "without STOP"},
        {"\x80\x02\x8a\x09\x01\x02\x03\x04\x05\x06\x07\x08\x09.", 14, "wider than 64 bits"},
        {"\x80\x02S'x'\n.", 9, "opcode 0x53"},
        {"\x80\x09N.", 4, "protocol above 5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pickle *p = NULL;
        const pv *root = NULL;
        ramc_status st = load(cases[i].bytes, cases[i].n, &p, &root);
        CHECK(st != RAMC_OK && p == NULL, "case %zu accepted", i);
        CHECK(strstr(ramc_last_error(), cases[i].says) != NULL, "case %zu: '%s' should say '%s'", i,
              ramc_last_error(), cases[i].says);
        pickle_free(p);
    }
    /* a mark nesting bomb is refused, not a stack overflow */
    size_t n = 2 + 100000 + 1;
    char *bomb = malloc(n);
    if (bomb) {
        memcpy(bomb, "\x80\x02", 2);
        memset(bomb + 2, '(', 100000);
        bomb[n - 1] = '.';
        pickle *p = NULL;
        const pv *root = NULL;
        CHECK(load(bomb, n, &p, &root) != RAMC_OK, "mark bomb accepted");
        CHECK(strstr(ramc_last_error(), "too deeply") != NULL, "mark bomb: %s", ramc_last_error());
        free(bomb);
    }
}

/* Every tensor of the reference file in `got`, with the values the fixture
 * stores: float16-rounded when `as_f16` (or the tensor was stored as such). */
static void compare_with(const char *fixture, const char *reference, int as_f16,
                         const char *strip_prefix) {
    st_file *f = NULL, *ref = NULL;
    ramc_status st = st_open(fixture, &f);
    CHECK(st == RAMC_OK, "%s: %s", fixture, ramc_last_error());
    if (st == RAMC_OK) st = st_open(reference, &ref);
    if (st != RAMC_OK) {
        st_close(f);
        return;
    }
    int compared = 0, wrong = 0;
    char name[512];
    for (int i = 0; i < ref->n_tensors; i++) {
        const st_tensor *r = &ref->tensors[i];
        snprintf(name, sizeof name, "%s%s", strip_prefix ? strip_prefix : "", r->name);
        const st_tensor *t = st_find(f, name);
        if (!t || t->numel != r->numel || t->ndim != r->ndim) {
            wrong++;
            fprintf(stderr, "%s: tensor '%s' missing or shaped differently\n", fixture, name);
            continue;
        }
        if (r->dtype == ST_I64 || r->dtype == ST_I32) {
            int64_t x = 0, y = 1;
            if (r->numel == 1 && st_read_i64(f, t, &x) == RAMC_OK && st_read_i64(ref, r, &y) == RAMC_OK && x == y)
                compared++;
            else
                wrong++, fprintf(stderr, "%s: integer tensor '%s' differs\n", fixture, name);
            continue;
        }
        float *a = malloc((size_t)t->numel * sizeof(float) + 4), *b = malloc((size_t)r->numel * sizeof(float) + 4);
        if (a && b && st_read_f32(f, t, a) == RAMC_OK && st_read_f32(ref, r, b) == RAMC_OK) {
            int f16 = as_f16 || t->dtype == ST_F16;
            for (int64_t e = 0; e < t->numel; e++)
                if (a[e] != (f16 ? round_to_f16(b[e]) : b[e])) {
                    wrong++;
                    fprintf(stderr, "%s: '%s'[%lld] = %g, want %g\n", fixture, name, (long long)e, a[e], b[e]);
                    break;
                }
            compared++;
        }
        free(a);
        free(b);
    }
    CHECK(compared == ref->n_tensors && wrong == 0, "%s: %d of %d tensors equal", fixture,
          compared - wrong, ref->n_tensors);
    st_close(f);
    st_close(ref);
}

static void test_fixtures(void) {
    compare_with(FIXTURES "/clip_state_dict.pt", GOLDEN "/weights.safetensors", 1, NULL);
    compare_with(FIXTURES "/clip_plain.bin", GOLDEN "/weights.safetensors", 0, NULL);
    compare_with(FIXTURES "/clip_scripted.pt", GOLDEN "/weights.safetensors", 1, NULL);
    compare_with(FIXTURES "/ram_state_dict.pth", GOLDEN "/adapter.safetensors", 0, NULL);

    /* the wrapping is undone: no "module." names, the epoch counter ignored */
    st_file *f = NULL;
    if (st_open(FIXTURES "/clip_state_dict.pt", &f) == RAMC_OK) {
        int prefixed = 0;
        for (int i = 0; i < f->n_tensors; i++) prefixed += !strncmp(f->tensors[i].name, "module.", 7);
        CHECK(prefixed == 0, "%d names keep the module. prefix", prefixed);
        st_close(f);
    }
    /* the TorchScript archive's extra attributes come through as tensors */
    if (st_open(FIXTURES "/clip_scripted.pt", &f) == RAMC_OK) {
        const st_tensor *res = st_find(f, "input_resolution");
        int64_t v = 0;
        CHECK(res && res->dtype == ST_I64 && st_read_i64(f, res, &v) == RAMC_OK && v == 32,
              "input_resolution read as int64 32");
        const st_tensor *mask = st_find(f, "transformer.resblocks.0.attn_mask");
        CHECK(mask && mask->ndim == 2 && mask->shape[0] == 77, "attn_mask read");
        st_close(f);
    }

    /* an adapter from a RAM state dict equals the safetensors one, exactly */
    ramc_clip_params cp = ramc_clip_default_params();
    cp.vision_heads = cp.text_heads = 2;
    ramc_clip *clip = NULL;
    ram_adapter *a = NULL, *b = NULL;
    ramc_status st = ramc_clip_load(FIXTURES "/clip_scripted.pt", &cp, &clip);
    CHECK(st == RAMC_OK, "CLIP from a TorchScript archive: %s", ramc_last_error());
    if (st == RAMC_OK) {
        st = ram_adapter_load(FIXTURES "/ram_state_dict.pth", clip, 0, &a);
        CHECK(st == RAMC_OK, "adapter from a RAM state dict: %s", ramc_last_error());
        if (ram_adapter_load(GOLDEN "/adapter.safetensors", clip, 0, &b) == RAMC_OK && a) {
            CHECK(a->n_params == b->n_params, "same adapter layout");
            int same = a->n_params == b->n_params;
            for (int i = 0; same && i < a->n_params; i++)
                same = a->params[i].numel == b->params[i].numel &&
                       !memcmp(a->params[i].data, b->params[i].data, (size_t)a->params[i].numel * sizeof(float));
            CHECK(same, "adapter tensors differ between .pth and .safetensors");
        }
    }
    ram_adapter_free(a);
    ram_adapter_free(b);
    ramc_clip_free(clip);
}

static void test_hostile_archives(void) {
    static const struct {
        const char *file, *says;
    } cases[] = {
        {"hostile_global.pt", "refuses the pickle global 'os.system'"},
        {"hostile_deep.pt", "nested more than 64 deep"},
        {"hostile_memo.pt", "memo index out of range"},
        {"hostile_missing_storage.pt", "missing from the archive"},
        {"hostile_view.pt", "runs past the end of its storage"},
        {"hostile_size.pt", "the pickle's storage needs 16"},
        {"hostile_truncated.pt", "not a readable zip archive"},
        {"legacy.pt", "legacy format"},
        {"hostile_bomb.pt", "too many values"},
        {"hostile_huge_storage.pt", "needs 1099511627776"},
    };
    char path[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", FIXTURES, cases[i].file);
        st_file *f = NULL;
        ramc_status st = st_open(path, &f);
        CHECK(st != RAMC_OK && !f, "%s accepted", cases[i].file);
        CHECK(strstr(ramc_last_error(), cases[i].says) && strstr(ramc_last_error(), cases[i].file),
              "%s: '%s' should name the file and say '%s'", cases[i].file, ramc_last_error(),
              cases[i].says);
        st_close(f);
    }
}

int main(void) {
    test_pickle_values();
    test_pickle_refusals();
    test_fixtures();
    test_hostile_archives();
    return test_summary("test_torch_file");
}
