/* CLIP weight loading: the tiny golden checkpoint (OpenAI names), Hugging
 * Face and "module."-prefixed copies of it, f16/bf16-stored copies, fp16
 * rounding, and broken checkpoints. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "model/clip.h"
#include "test.h"

#define WEIGHTS RAMC_GOLDEN_DIR "/tiny-s0/weights.safetensors"

static char tmpdir[256];

static const char *tmp_path(const char *name) {
    static char buf[4][512];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static ramc_clip_params tiny_params(int round) {
    ramc_clip_params p = ramc_clip_default_params();
    p.vision_heads = 2;
    p.text_heads = 2;
    p.round_fp16_like_official = round;
    return p;
}

static uint32_t fbits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

/* ---------------------------------------------------- model arrays */

/* Every weight array of a model, with its OpenAI tensor name and whether
 * the official build_model converts it to fp16. */
typedef struct {
    char name[96];
    const float *p;
    size_t n;
    int converted;
} arr;

#define MAX_ARRS 512

static int add_arr(arr *a, int k, const char *name, const float *p, size_t n, int converted) {
    if (k >= MAX_ARRS) return k;
    snprintf(a[k].name, sizeof a[k].name, "%s", name);
    a[k].p = p;
    a[k].n = n;
    a[k].converted = converted;
    return k + 1;
}

static int add_block(arr *a, int k, const char *prefix, int i, const clip_block *b, size_t W, size_t M) {
    char n[96];
#define B(field, suffix, count, conv)                                  \
    snprintf(n, sizeof n, "%s%d.%s", prefix, i, suffix);               \
    k = add_arr(a, k, n, b->field, count, conv)
    B(ln_1_w, "ln_1.weight", W, 0);
    B(ln_1_b, "ln_1.bias", W, 0);
    B(qkv_w, "attn.in_proj_weight", 3 * W * W, 1);
    B(qkv_b, "attn.in_proj_bias", 3 * W, 1);
    B(out_w, "attn.out_proj.weight", W * W, 1);
    B(out_b, "attn.out_proj.bias", W, 1);
    B(ln_2_w, "ln_2.weight", W, 0);
    B(ln_2_b, "ln_2.bias", W, 0);
    B(fc_w, "mlp.c_fc.weight", M * W, 1);
    B(fc_b, "mlp.c_fc.bias", M, 1);
    B(proj_w, "mlp.c_proj.weight", W * M, 1);
    B(proj_b, "mlp.c_proj.bias", W, 1);
#undef B
    return k;
}

static int model_arrays(const ramc_clip *m, arr *a) {
    const ramc_clip_info *in = &m->info;
    size_t W = in->vision_width, P = in->patch_size, N1 = in->n_patches + 1, D = in->embed_dim;
    size_t Wt = in->text_width, V = in->vocab_size, L = in->context_length;
    int k = 0;
    k = add_arr(a, k, "visual.conv1.weight", m->patch_w, W * 3 * P * P, 1);
    k = add_arr(a, k, "visual.class_embedding", m->class_emb, W, 0);
    k = add_arr(a, k, "visual.positional_embedding", m->vis_pos, N1 * W, 0);
    k = add_arr(a, k, "visual.ln_pre.weight", m->ln_pre_w, W, 0);
    k = add_arr(a, k, "visual.ln_pre.bias", m->ln_pre_b, W, 0);
    for (int i = 0; i < in->vision_layers; i++)
        k = add_block(a, k, "visual.transformer.resblocks.", i, &m->vis_blocks[i], W, in->vision_mlp);
    k = add_arr(a, k, "visual.ln_post.weight", m->ln_post_w, W, 0);
    k = add_arr(a, k, "visual.ln_post.bias", m->ln_post_b, W, 0);
    k = add_arr(a, k, "visual.proj", m->vis_proj, W * D, 1);
    k = add_arr(a, k, "token_embedding.weight", m->tok_emb, V * Wt, 0);
    k = add_arr(a, k, "positional_embedding", m->txt_pos, L * Wt, 0);
    for (int i = 0; i < in->text_layers; i++)
        k = add_block(a, k, "transformer.resblocks.", i, &m->txt_blocks[i], Wt, in->text_mlp);
    k = add_arr(a, k, "ln_final.weight", m->ln_final_w, Wt, 0);
    k = add_arr(a, k, "ln_final.bias", m->ln_final_b, Wt, 0);
    k = add_arr(a, k, "text_projection", m->txt_proj, Wt * D, 1);
    return k;
}

/* Element-wise transforms the expected values go through. */
typedef enum { X_NONE, X_F16, X_BF16, X_PERTURB } xform;

static float apply(xform x, float v) {
    switch (x) {
    case X_F16: return round_to_f16(v);
    case X_BF16: return bf16_to_f32(f32_to_bf16(v));
    case X_PERTURB: return v * (1.0f + 0x1p-15f);
    default: return v;
    }
}

/* Checks got == round?(stored(ref)) bit for bit, array by array. */
static void compare_models(const ramc_clip *got, const ramc_clip *ref, xform stored, int round,
                           const char *what) {
    static arr a[MAX_ARRS], b[MAX_ARRS];
    int na = model_arrays(got, a), nb = model_arrays(ref, b);
    CHECK(na == nb && na > 0, "%s: %d vs %d arrays", what, na, nb);
    for (int k = 0; k < na && k < nb; k++) {
        CHECK(a[k].n == b[k].n, "%s: %s sizes %zu vs %zu", what, a[k].name, a[k].n, b[k].n);
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < a[k].n && i < b[k].n; i++) {
            float want = apply(stored, b[k].p[i]);
            if (round && b[k].converted) want = round_to_f16(want);
            if (fbits(a[k].p[i]) != fbits(want) && !bad++) first = i;
        }
        CHECK(bad == 0, "%s: %s: %zu elements differ (first %zu: %a vs %a)", what, a[k].name, bad, first,
              a[k].p[first], apply(stored, b[k].p[first]));
    }
    float want = apply(stored, ref->info.logit_scale);
    CHECK(fbits(got->info.logit_scale) == fbits(want), "%s: logit_scale %a vs %a", what,
          got->info.logit_scale, want);
}

/* ------------------------------------------------------ file copies */

typedef struct {
    int hf;                   /* rename into the Hugging Face layout */
    const char *prefix;       /* prepended to every name */
    st_dtype stored_as;       /* float tensors are written as F32, F16 or BF16 */
    int perturb;              /* scale every float by 1 + 2^-15 (breaks fp16 representability) */
    const char *skip_prefix;  /* drop tensors whose names start with this */
    const char *shrink;       /* drop the last element of this tensor's last dimension */
    const char *poison;       /* element 5 of this tensor becomes NaN */
    const char *big;          /* element 0 of this tensor becomes 1e5 (overflows fp16) */
} copy_opts;

static int starts_with(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Maps an OpenAI block suffix to Hugging Face ("" when it is q/k/v, handled apart). */
static const char *hf_block_suffix(const char *s) {
    static const char *map[][2] = {
        {"ln_1.weight", "layer_norm1.weight"}, {"ln_1.bias", "layer_norm1.bias"},
        {"ln_2.weight", "layer_norm2.weight"}, {"ln_2.bias", "layer_norm2.bias"},
        {"attn.out_proj.weight", "self_attn.out_proj.weight"},
        {"attn.out_proj.bias", "self_attn.out_proj.bias"},
        {"mlp.c_fc.weight", "mlp.fc1.weight"}, {"mlp.c_fc.bias", "mlp.fc1.bias"},
        {"mlp.c_proj.weight", "mlp.fc2.weight"}, {"mlp.c_proj.bias", "mlp.fc2.bias"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i][0]) == 0) return map[i][1];
    return NULL;
}

static const char *hf_top_name(const char *s) {
    static const char *map[][2] = {
        {"visual.conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
        {"visual.class_embedding", "vision_model.embeddings.class_embedding"},
        {"visual.positional_embedding", "vision_model.embeddings.position_embedding.weight"},
        {"visual.ln_pre.weight", "vision_model.pre_layrnorm.weight"},
        {"visual.ln_pre.bias", "vision_model.pre_layrnorm.bias"},
        {"visual.ln_post.weight", "vision_model.post_layernorm.weight"},
        {"visual.ln_post.bias", "vision_model.post_layernorm.bias"},
        {"token_embedding.weight", "text_model.embeddings.token_embedding.weight"},
        {"positional_embedding", "text_model.embeddings.position_embedding.weight"},
        {"ln_final.weight", "text_model.final_layer_norm.weight"},
        {"ln_final.bias", "text_model.final_layer_norm.bias"},
        {"logit_scale", "logit_scale"},
    };
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(s, map[i][0]) == 0) return map[i][1];
    return NULL;
}

static int add_f32(st_writer *w, const copy_opts *o, const char *name, int ndim, const int64_t *shape,
                   const float *data) {
    char full[256];
    snprintf(full, sizeof full, "%s%s", o->prefix ? o->prefix : "", name);
    return st_writer_add_f32(w, full, o->stored_as, ndim, shape, data) == RAMC_OK;
}

/* Writes one tensor in the Hugging Face layout. */
static int add_hf(st_writer *w, const copy_opts *o, const char *name, int ndim, const int64_t *shape,
                  const float *x) {
    const char *top = hf_top_name(name);
    if (top) return add_f32(w, o, top, ndim, shape, x);
    if (strcmp(name, "visual.proj") == 0 || strcmp(name, "text_projection") == 0) {
        int64_t rows = shape[0], cols = shape[1], tshape[2] = {cols, rows};
        float *t = malloc(sizeof(float) * (size_t)(rows * cols));
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) t[c * rows + r] = x[r * cols + c];
        int ok = add_f32(w, o, name[0] == 'v' ? "visual_projection.weight" : "text_projection.weight", 2,
                         tshape, t);
        free(t);
        return ok;
    }
    const char *blocks = starts_with(name, "visual.") ? "visual.transformer.resblocks."
                                                      : "transformer.resblocks.";
    const char *hf_blocks = blocks[0] == 'v' ? "vision_model.encoder.layers." : "text_model.encoder.layers.";
    if (!starts_with(name, blocks)) return 0;
    char *end;
    long i = strtol(name + strlen(blocks), &end, 10);
    const char *suffix = end + 1, *hs = hf_block_suffix(suffix);
    char out[256];
    if (hs) {
        snprintf(out, sizeof out, "%s%ld.%s", hf_blocks, i, hs);
        return add_f32(w, o, out, ndim, shape, x);
    }
    int is_w = strcmp(suffix, "attn.in_proj_weight") == 0;
    if (!is_w && strcmp(suffix, "attn.in_proj_bias") != 0) return 0;
    /* Split in_proj rows into q, k, v. */
    int64_t rows = shape[0] / 3, part_shape[2] = {rows, ndim == 2 ? shape[1] : 1};
    size_t part = (size_t)(rows * (ndim == 2 ? shape[1] : 1));
    const char *qkv[3] = {"q_proj", "k_proj", "v_proj"};
    for (int k = 0; k < 3; k++) {
        snprintf(out, sizeof out, "%s%ld.self_attn.%s.%s", hf_blocks, i, qkv[k], is_w ? "weight" : "bias");
        if (!add_f32(w, o, out, ndim, part_shape, x + k * part)) return 0;
    }
    return 1;
}

/* Copies the golden weights into `path`, transformed as `o` says. */
static int write_copy(const char *path, const copy_opts *o) {
    st_file *f = NULL;
    if (st_open(WEIGHTS, &f) != RAMC_OK) return 0;
    st_writer *w = st_writer_new();
    int ok = 1;
    /* Reverse order: the loader must not depend on the order of the file. */
    for (int k = f->n_tensors - 1; ok && k >= 0; k--) {
        const st_tensor *t = &f->tensors[k];
        if (o->skip_prefix && starts_with(t->name, o->skip_prefix)) continue;
        float *x = malloc(sizeof(float) * (size_t)(t->numel ? t->numel : 1));
        ok = st_read_f32(f, t, x) == RAMC_OK;
        int64_t shape[ST_MAX_DIMS];
        memcpy(shape, t->shape, sizeof shape);
        if (o->perturb)
            for (int64_t i = 0; i < t->numel; i++) x[i] = apply(X_PERTURB, x[i]);
        if (o->shrink && strcmp(t->name, o->shrink) == 0) {
            /* Keep the leading elements; only the shape matters to the loader. */
            shape[t->ndim - 1]--;
        }
        if (o->poison && strcmp(t->name, o->poison) == 0) x[5] = NAN;
        if (o->big && strcmp(t->name, o->big) == 0) x[0] = 1e5f;
        if (ok) ok = o->hf ? add_hf(w, o, t->name, t->ndim, shape, x) : add_f32(w, o, t->name, t->ndim, shape, x);
        free(x);
    }
    int64_t ids[77], one_n[2] = {1, 77};
    for (int i = 0; i < 77; i++) ids[i] = i;
    if (o->hf) {
        /* Buffers a Hugging Face checkpoint carries; the loader ignores them. */
        st_writer_add(w, "text_model.embeddings.position_ids", ST_I64, 2, one_n, ids);
        int64_t vshape[2] = {1, 17};
        st_writer_add(w, "vision_model.embeddings.position_ids", ST_I64, 2, vshape, ids);
    } else {
        int64_t res = 32;
        char n[128];
        snprintf(n, sizeof n, "%sinput_resolution", o->prefix ? o->prefix : "");
        st_writer_add(w, n, ST_I64, 0, NULL, &res);
        snprintf(n, sizeof n, "%svisual.attn.in_proj_weight", o->prefix ? o->prefix : "");
        float dummy[4] = {NAN, NAN, NAN, NAN};
        int64_t s4[1] = {4};
        st_writer_add_f32(w, n, ST_F32, 1, s4, dummy);
    }
    if (ok) ok = st_writer_save(w, path) == RAMC_OK;
    if (!ok) fprintf(stderr, "write_copy %s: %s\n", path, ramc_last_error());
    st_writer_free(w);
    st_close(f);
    return ok;
}

static ramc_clip *load_copy(const char *name, const copy_opts *o, int round) {
    const char *path = tmp_path(name);
    if (!write_copy(path, o)) return NULL;
    ramc_clip_params p = tiny_params(round);
    ramc_clip *m = NULL;
    ramc_status st = ramc_clip_load(path, &p, &m);
    CHECK(st == RAMC_OK && m, "load %s: %s", name, ramc_last_error());
    return m;
}

/* Loads a broken copy and checks the status and that the message names the
 * file and `needle`. */
static void expect_fail(const char *name, const copy_opts *o, ramc_clip_params p, ramc_status want,
                        const char *needle, const char *needle2) {
    const char *path = tmp_path(name);
    CHECK(write_copy(path, o), "write %s", name);
    ramc_clip *m = (ramc_clip *)(uintptr_t)1;
    ramc_status st = ramc_clip_load(path, &p, &m);
    const char *msg = ramc_last_error();
    CHECK(st == want, "%s: status %s, want %s (%s)", name, ramc_status_name(st), ramc_status_name(want), msg);
    CHECK(m == NULL, "%s: *out not NULL after failure", name);
    CHECK(strstr(msg, name) != NULL, "%s: message lacks the file: %s", name, msg);
    if (needle) CHECK(strstr(msg, needle) != NULL, "%s: message lacks '%s': %s", name, needle, msg);
    if (needle2) CHECK(strstr(msg, needle2) != NULL, "%s: message lacks '%s': %s", name, needle2, msg);
    if (st == RAMC_OK) ramc_clip_free(m);
}

/* ------------------------------------------------------------ tests */

static void test_golden(ramc_clip **out) {
    ramc_clip_params p = tiny_params(1);
    ramc_clip *m = NULL;
    CHECK(ramc_clip_load(WEIGHTS, &p, &m) == RAMC_OK && m, "load: %s", ramc_last_error());
    *out = m;
    if (!m) return;
    ramc_clip_info in = ramc_clip_get_info(m);
    CHECK(in.vision_width == 64 && in.vision_layers == 4 && in.vision_heads == 2 && in.vision_mlp == 256,
          "vision %d %d %d %d", in.vision_width, in.vision_layers, in.vision_heads, in.vision_mlp);
    CHECK(in.patch_size == 8 && in.grid == 4 && in.n_patches == 16 && in.image_size == 32, "patches %d %d %d %d",
          in.patch_size, in.grid, in.n_patches, in.image_size);
    CHECK(in.text_width == 12 && in.text_layers == 4 && in.text_heads == 2 && in.text_mlp == 48,
          "text %d %d %d %d", in.text_width, in.text_layers, in.text_heads, in.text_mlp);
    CHECK(in.embed_dim == 32 && in.vocab_size == 49408 && in.context_length == 77, "dims %d %d %d",
          in.embed_dim, in.vocab_size, in.context_length);
    CHECK(in.logit_scale > 4.0f && in.logit_scale < 5.2f, "logit_scale %g (stored, not exp)", in.logit_scale);
    CHECK(m->path && strcmp(m->path, WEIGHTS) == 0, "path kept");

    /* Every array equals the file's tensor of the same name, bit for bit. */
    st_file *f = NULL;
    CHECK(st_open(WEIGHTS, &f) == RAMC_OK, "%s", ramc_last_error());
    static arr a[MAX_ARRS];
    int na = model_arrays(m, a);
    CHECK(na == 5 + 4 * 12 + 3 + 2 + 4 * 12 + 3, "%d arrays", na);
    for (int k = 0; f && k < na; k++) {
        const st_tensor *t = st_find(f, a[k].name);
        CHECK(t && (size_t)t->numel == a[k].n, "%s: size", a[k].name);
        if (!t || (size_t)t->numel != a[k].n) continue;
        float *x = malloc(sizeof(float) * a[k].n);
        st_read_f32(f, t, x);
        CHECK(memcmp(x, a[k].p, sizeof(float) * a[k].n) == 0, "%s differs from the file", a[k].name);
        free(x);
    }
    /* The arrays are disjoint pieces of one storage block. */
    int inside = 1;
    for (int k = 0; k < na; k++) inside &= a[k].p >= m->storage;
    CHECK(inside, "arrays inside storage");
    float ls = 0;
    if (f) CHECK(st_load_f32(f, "logit_scale", 0, NULL, &ls) == RAMC_OK && ls == in.logit_scale, "logit_scale");
    st_close(f);

    /* The golden values are already fp16-representable: rounding changes nothing. */
    ramc_clip *raw = NULL;
    p = tiny_params(0);
    CHECK(ramc_clip_load(WEIGHTS, &p, &raw) == RAMC_OK, "%s", ramc_last_error());
    if (raw) compare_models(raw, m, X_NONE, 0, "unrounded golden");
    ramc_clip_free(raw);
}

static void test_layouts(const ramc_clip *ref) {
    copy_opts o = {.stored_as = ST_F32};
    ramc_clip *m;

    o.hf = 1;
    if ((m = load_copy("hf.safetensors", &o, 1))) {
        compare_models(m, ref, X_NONE, 0, "Hugging Face layout");
        ramc_clip_info a = ramc_clip_get_info(m), b = ramc_clip_get_info(ref);
        CHECK(memcmp(&a, &b, sizeof a) == 0, "HF info equals OpenAI info");
        ramc_clip_free(m);
    }
    o.prefix = "module.";
    if ((m = load_copy("hf_module.safetensors", &o, 1))) {
        compare_models(m, ref, X_NONE, 0, "module.-prefixed Hugging Face layout");
        ramc_clip_free(m);
    }
    o.hf = 0;
    if ((m = load_copy("module.safetensors", &o, 1))) {
        compare_models(m, ref, X_NONE, 0, "module.-prefixed OpenAI layout");
        ramc_clip_free(m);
    }

    /* Half-precision storage: values are the stored ones (fp16 rounding of
     * an f16 file is a no-op; of a bf16 file it matters for tiny values). */
    o.prefix = NULL;
    o.stored_as = ST_F16;
    if ((m = load_copy("f16.safetensors", &o, 0))) {
        compare_models(m, ref, X_F16, 0, "f16 storage");
        ramc_clip_free(m);
    }
    o.stored_as = ST_BF16;
    if ((m = load_copy("bf16.safetensors", &o, 0))) {
        compare_models(m, ref, X_BF16, 0, "bf16 storage, unrounded");
        ramc_clip_free(m);
    }
    if ((m = load_copy("bf16.safetensors", &o, 1))) {
        compare_models(m, ref, X_BF16, 1, "bf16 storage, fp16-rounded");
        ramc_clip_free(m);
    }
    o.hf = 1;
    if ((m = load_copy("hf_bf16.safetensors", &o, 1))) {
        compare_models(m, ref, X_BF16, 1, "HF bf16 storage, fp16-rounded");
        ramc_clip_free(m);
    }

    /* Values that are not fp16-representable: rounding applies to exactly
     * the tensors build_model converts. */
    o = (copy_opts){.stored_as = ST_F32, .perturb = 1};
    if ((m = load_copy("perturbed.safetensors", &o, 0))) {
        compare_models(m, ref, X_PERTURB, 0, "perturbed, unrounded");
        ramc_clip_free(m);
    }
    if ((m = load_copy("perturbed.safetensors", &o, 1))) {
        compare_models(m, ref, X_PERTURB, 1, "perturbed, fp16-rounded");
        CHECK(m->patch_w[0] != apply(X_PERTURB, ref->patch_w[0]) ||
              m->patch_w[1] != apply(X_PERTURB, ref->patch_w[1]), "rounding had an effect");
        ramc_clip_free(m);
    }
}

static void test_errors(void) {
    ramc_clip_params p = tiny_params(1);
    copy_opts o = {.stored_as = ST_F32};

    o.skip_prefix = "visual.ln_post.bias";
    expect_fail("missing.safetensors", &o, p, RAMC_ERR_MISMATCH, "'visual.ln_post.bias'", "missing");
    o.skip_prefix = "visual.conv1.weight";
    expect_fail("noconv.safetensors", &o, p, RAMC_ERR_MISMATCH, "visual.conv1.weight", NULL);
    o.skip_prefix = "visual.transformer.resblocks.2.";
    expect_fail("gap.safetensors", &o, p, RAMC_ERR_MISMATCH, "block 2", NULL);
    o.skip_prefix = "transformer.resblocks.";
    expect_fail("notext.safetensors", &o, p, RAMC_ERR_MISMATCH, "text", NULL);
    o.skip_prefix = NULL;

    o.shrink = "visual.transformer.resblocks.2.mlp.c_fc.bias";
    expect_fail("shape.safetensors", &o, p, RAMC_ERR_MISMATCH, "'visual.transformer.resblocks.2.mlp.c_fc.bias'",
                "[255], expected [256]");
    o.shrink = "text_projection";
    expect_fail("tproj.safetensors", &o, p, RAMC_ERR_MISMATCH, "'text_projection'", "[12,31], expected [12,32]");
    o.shrink = "visual.positional_embedding";
    expect_fail("vispos.safetensors", &o, p, RAMC_ERR_MISMATCH, "'visual.positional_embedding'", NULL);
    o.shrink = NULL;

    o.poison = "transformer.resblocks.1.attn.out_proj.weight";
    expect_fail("nan.safetensors", &o, p, RAMC_ERR_NUMERIC, "'transformer.resblocks.1.attn.out_proj.weight'",
                "NaN");
    o.poison = "visual.class_embedding";
    expect_fail("nan_cls.safetensors", &o, p, RAMC_ERR_NUMERIC, "'visual.class_embedding'", NULL);
    o.poison = NULL;

    /* 1e5 is finite in float32 but infinite once rounded to fp16. */
    o.big = "visual.transformer.resblocks.0.mlp.c_fc.weight";
    expect_fail("big.safetensors", &o, p, RAMC_ERR_NUMERIC, "'visual.transformer.resblocks.0.mlp.c_fc.weight'",
                "fp16");
    ramc_clip_params p0 = tiny_params(0);
    ramc_clip *m = NULL;
    CHECK(ramc_clip_load(tmp_path("big.safetensors"), &p0, &m) == RAMC_OK, "unrounded big: %s", ramc_last_error());
    ramc_clip_free(m);
    o.big = NULL;

    /* Heads: the tiny text width 12 cannot default to width/64. */
    ramc_clip_params ph = tiny_params(1);
    ph.text_heads = 0;
    expect_fail("heads0.safetensors", &o, ph, RAMC_ERR_INVALID_ARG, "text", "explicit");
    ph = tiny_params(1);
    ph.vision_heads = 3;
    expect_fail("heads3.safetensors", &o, ph, RAMC_ERR_INVALID_ARG, "vision", "3 heads");
    ph = tiny_params(1);
    ph.vision_heads = 0; /* 64 / 64 = 1 head: allowed */
    m = NULL;
    CHECK(ramc_clip_load(WEIGHTS, &ph, &m) == RAMC_OK && m && m->info.vision_heads == 1, "default heads: %s",
          ramc_last_error());
    ramc_clip_free(m);

    /* Not a CLIP checkpoint at all, and a file that does not exist. */
    st_writer *w = st_writer_new();
    float x[2] = {1, 2};
    int64_t s2[1] = {2};
    st_writer_add_f32(w, "something.else", ST_F32, 1, s2, x);
    st_writer_save(w, tmp_path("other.safetensors"));
    st_writer_free(w);
    m = (ramc_clip *)(uintptr_t)1;
    CHECK(ramc_clip_load(tmp_path("other.safetensors"), &p, &m) == RAMC_ERR_MISMATCH && m == NULL,
          "not CLIP: %s", ramc_last_error());
    CHECK(strstr(ramc_last_error(), "other.safetensors") != NULL, "%s", ramc_last_error());
    m = (ramc_clip *)(uintptr_t)1;
    CHECK(ramc_clip_load(tmp_path("absent.safetensors"), &p, &m) == RAMC_ERR_IO && m == NULL, "absent: %s",
          ramc_last_error());
    CHECK(ramc_clip_load(WEIGHTS, &p, NULL) == RAMC_ERR_INVALID_ARG, "NULL out");
    ramc_clip_free(NULL);
    ramc_clip_info z = ramc_clip_get_info(NULL);
    CHECK(z.vision_width == 0, "info of NULL");
}

/* Copies WEIGHTS with head counts in the metadata, as `ramc pretrain-clip`
 * writes them: the tiny text width 12 cannot default to width/64, so a load
 * with params 0 succeeds only by reading the metadata. */
static int write_with_heads(const char *path, const char *vheads, const char *theads) {
    st_file *f = NULL;
    if (st_open(WEIGHTS, &f) != RAMC_OK) return 0;
    st_writer *w = st_writer_new();
    int ok = w != NULL;
    for (int i = 0; ok && i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        ok = st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data) == RAMC_OK;
    }
    if (ok && vheads) ok = st_writer_set_metadata(w, "vision_heads", vheads) == RAMC_OK;
    if (ok && theads) ok = st_writer_set_metadata(w, "text_heads", theads) == RAMC_OK;
    if (ok) ok = st_writer_save(w, path) == RAMC_OK;
    st_writer_free(w);
    st_close(f);
    return ok;
}

static void test_metadata_heads(void) {
    ramc_clip_params p0 = ramc_clip_default_params();
    ramc_clip *m = NULL;
    const char *good = tmp_path("heads_meta.safetensors");
    CHECK(write_with_heads(good, "2", "2"), "write %s", good);
    CHECK(ramc_clip_load(good, &p0, &m) == RAMC_OK && m, "metadata heads: %s", ramc_last_error());
    if (m) CHECK(m->info.vision_heads == 2 && m->info.text_heads == 2, "heads %d %d", m->info.vision_heads,
                 m->info.text_heads);
    ramc_clip_free(m);
    /* an explicit count wins over the metadata */
    ramc_clip_params p3 = p0;
    p3.text_heads = 3;
    m = NULL;
    CHECK(ramc_clip_load(good, &p3, &m) == RAMC_OK && m && m->info.text_heads == 3 && m->info.vision_heads == 2,
          "explicit heads override: %s", ramc_last_error());
    ramc_clip_free(m);
    /* a malformed count is an error naming the file and key, not a silent default */
    const char *bad = tmp_path("heads_bad.safetensors");
    CHECK(write_with_heads(bad, "2", "two"), "write %s", bad);
    m = (ramc_clip *)(uintptr_t)1;
    CHECK(ramc_clip_load(bad, &p0, &m) == RAMC_ERR_FORMAT && m == NULL, "bad metadata: %s", ramc_last_error());
    CHECK(strstr(ramc_last_error(), "heads_bad.safetensors") && strstr(ramc_last_error(), "text_heads"), "%s",
          ramc_last_error());
    /* only the vision count recorded: the text tower still needs one */
    const char *half = tmp_path("heads_half.safetensors");
    CHECK(write_with_heads(half, "2", NULL), "write %s", half);
    m = (ramc_clip *)(uintptr_t)1;
    CHECK(ramc_clip_load(half, &p0, &m) == RAMC_ERR_INVALID_ARG && m == NULL, "half: %s", ramc_last_error());
}

int main(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/ramc_clip_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    ramc_clip_params d = ramc_clip_default_params();
    CHECK(d.vision_heads == 0 && d.text_heads == 0 && d.round_fp16_like_official == 1, "defaults");
    ramc_clip *ref = NULL;
    test_golden(&ref);
    if (ref) test_layouts(ref);
    test_errors();
    test_metadata_heads();
    ramc_clip_free(ref);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary("test_clip_load");
}
