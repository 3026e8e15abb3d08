/* Loading CLIP ViT weights from safetensors, with OpenAI/open_clip or
 * Hugging Face CLIPModel tensor names. Every dimension is read from tensor
 * shapes; every tensor is then checked against those dimensions. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "model/clip.h"

/* Dimensions are bounded so that size arithmetic below cannot overflow. */
#define MAX_DIM (1 << 22)

/* Tensor names of one checkpoint layout. Block tensors are named
 * <block_prefix><index>.<suffix>. */
typedef struct {
    const char *conv, *cls, *vis_pos, *ln_pre_w, *ln_pre_b, *ln_post_w, *ln_post_b, *vis_proj;
    const char *tok, *txt_pos, *ln_final_w, *ln_final_b, *txt_proj, *logit_scale;
    const char *vis_blocks, *txt_blocks;
    const char *ln1_w, *ln1_b, *ln2_w, *ln2_b, *out_w, *out_b, *fc_w, *fc_b, *proj_w, *proj_b;
    const char *qkv_w, *qkv_b;      /* fused (OpenAI) */
    const char *q_w, *k_w, *v_w;    /* split (Hugging Face) */
    const char *q_b, *k_b, *v_b;
    int split_qkv;
    int proj_transposed; /* projections stored [D, W] (nn.Linear) rather than [W, D] */
} layout;

static const layout openai_layout = {
    .conv = "visual.conv1.weight",
    .cls = "visual.class_embedding",
    .vis_pos = "visual.positional_embedding",
    .ln_pre_w = "visual.ln_pre.weight",
    .ln_pre_b = "visual.ln_pre.bias",
    .ln_post_w = "visual.ln_post.weight",
    .ln_post_b = "visual.ln_post.bias",
    .vis_proj = "visual.proj",
    .tok = "token_embedding.weight",
    .txt_pos = "positional_embedding",
    .ln_final_w = "ln_final.weight",
    .ln_final_b = "ln_final.bias",
    .txt_proj = "text_projection",
    .logit_scale = "logit_scale",
    .vis_blocks = "visual.transformer.resblocks.",
    .txt_blocks = "transformer.resblocks.",
    .ln1_w = "ln_1.weight",
    .ln1_b = "ln_1.bias",
    .ln2_w = "ln_2.weight",
    .ln2_b = "ln_2.bias",
    .out_w = "attn.out_proj.weight",
    .out_b = "attn.out_proj.bias",
    .fc_w = "mlp.c_fc.weight",
    .fc_b = "mlp.c_fc.bias",
    .proj_w = "mlp.c_proj.weight",
    .proj_b = "mlp.c_proj.bias",
    .qkv_w = "attn.in_proj_weight",
    .qkv_b = "attn.in_proj_bias",
    .split_qkv = 0,
    .proj_transposed = 0,
};

static const layout hf_layout = {
    .conv = "vision_model.embeddings.patch_embedding.weight",
    .cls = "vision_model.embeddings.class_embedding",
    .vis_pos = "vision_model.embeddings.position_embedding.weight",
    .ln_pre_w = "vision_model.pre_layrnorm.weight",
    .ln_pre_b = "vision_model.pre_layrnorm.bias",
    .ln_post_w = "vision_model.post_layernorm.weight",
    .ln_post_b = "vision_model.post_layernorm.bias",
    .vis_proj = "visual_projection.weight",
    .tok = "text_model.embeddings.token_embedding.weight",
    .txt_pos = "text_model.embeddings.position_embedding.weight",
    .ln_final_w = "text_model.final_layer_norm.weight",
    .ln_final_b = "text_model.final_layer_norm.bias",
    .txt_proj = "text_projection.weight",
    .logit_scale = "logit_scale",
    .vis_blocks = "vision_model.encoder.layers.",
    .txt_blocks = "text_model.encoder.layers.",
    .ln1_w = "layer_norm1.weight",
    .ln1_b = "layer_norm1.bias",
    .ln2_w = "layer_norm2.weight",
    .ln2_b = "layer_norm2.bias",
    .out_w = "self_attn.out_proj.weight",
    .out_b = "self_attn.out_proj.bias",
    .fc_w = "mlp.fc1.weight",
    .fc_b = "mlp.fc1.bias",
    .proj_w = "mlp.fc2.weight",
    .proj_b = "mlp.fc2.bias",
    .q_w = "self_attn.q_proj.weight",
    .k_w = "self_attn.k_proj.weight",
    .v_w = "self_attn.v_proj.weight",
    .q_b = "self_attn.q_proj.bias",
    .k_b = "self_attn.k_proj.bias",
    .v_b = "self_attn.v_proj.bias",
    .split_qkv = 1,
    .proj_transposed = 1,
};

typedef struct {
    const st_file *f;
    const layout *lay;
    const char *prefix; /* "" or "module." (DataParallel checkpoints) */
    int round;          /* fp16-round the tensors build_model converts */
    float *next;        /* bump pointer into the model's storage */
    float *scratch;     /* for transposed projections */
    char name[512];
} loader;

ramc_clip_params ramc_clip_default_params(void) {
    ramc_clip_params p = {.vision_heads = 0, .text_heads = 0, .round_fp16_like_official = 1,
                          .bf16 = 0, .pack_weights = 1};
    return p;
}

static const char *full_name(loader *ld, const char *name) {
    snprintf(ld->name, sizeof ld->name, "%s%s", ld->prefix, name);
    return ld->name;
}

static const char *block_name(loader *ld, const char *blocks, int i, const char *suffix) {
    snprintf(ld->name, sizeof ld->name, "%s%s%d.%s", ld->prefix, blocks, i, suffix);
    return ld->name;
}

/* ------------------------------------------------------- dimensions */

/* Finds a tensor that a dimension is read from; checks its rank and that
 * every dimension is positive and bounded. */
static ramc_status shape_source(loader *ld, const char *name, int ndim, const st_tensor **out) {
    const st_tensor *t = st_find(ld->f, name);
    if (!t) return ramc_error(RAMC_ERR_MISMATCH, "%s: missing tensor '%s'", ld->f->path, name);
    if (t->ndim != ndim)
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s': %d dimensions, expected %d", ld->f->path,
                          name, t->ndim, ndim);
    for (int i = 0; i < ndim; i++)
        if (t->shape[i] <= 0 || t->shape[i] > MAX_DIM)
            return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s': dimension %d is %lld, outside [1, %d]",
                              ld->f->path, name, i, (long long)t->shape[i], MAX_DIM);
    *out = t;
    return RAMC_OK;
}

/* Counts blocks <prefix><blocks><i>.*; indices must run 0..n-1 with none missing. */
static ramc_status count_blocks(loader *ld, const char *blocks, const char *tower, int *n_out) {
    char start[256];
    snprintf(start, sizeof start, "%s%s", ld->prefix, blocks);
    size_t sl = strlen(start);
    int n = ld->f->n_tensors;
    unsigned char *seen = ramc_calloc((size_t)n + 1, 1, "block index table");
    if (!seen) return RAMC_ERR_NOMEM;
    int max = -1;
    ramc_status st = RAMC_OK;
    for (int k = 0; k < n; k++) {
        const char *s = ld->f->tensors[k].name;
        if (strncmp(s, start, sl) != 0) continue;
        const char *p = s + sl;
        long idx = 0;
        int digits = 0;
        for (; *p >= '0' && *p <= '9'; p++, digits++)
            if (idx <= n) idx = idx * 10 + (*p - '0'); /* saturates past n: out of range anyway */
        if (!digits || *p != '.') continue;
        /* A file of n tensors cannot hold blocks 0..idx when idx >= n. */
        if (idx >= n) {
            st = ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s': %s block index is out of range",
                            ld->f->path, s, tower);
            goto done;
        }
        seen[idx] = 1;
        if (idx > max) max = (int)idx;
    }
    if (max < 0) {
        st = ramc_error(RAMC_ERR_MISMATCH, "%s: no %s transformer blocks ('%s0.*')", ld->f->path, tower,
                        start);
        goto done;
    }
    for (int i = 0; i <= max; i++) {
        if (!seen[i]) {
            st = ramc_error(RAMC_ERR_MISMATCH, "%s: %s block %d is missing ('%s%d.*'), though block %d exists",
                            ld->f->path, tower, i, start, i, max);
            goto done;
        }
    }
    *n_out = max + 1;
done:
    free(seen);
    return st;
}

/* Head counts are not visible in the tensor shapes. Files written by
 * `ramc pretrain-clip` record them in the safetensors metadata
 * ("vision_heads", "text_heads"); when the caller leaves a count at 0 the
 * recorded one is used, so such a model loads without options. A malformed
 * value is an error rather than a silent fall-back to width/64. */
static ramc_status metadata_heads(const st_file *f, const char *key, int *out) {
    *out = 0;
    const char *v = st_metadata(f, key);
    if (!v) return RAMC_OK;
    char *end = NULL;
    errno = 0;
    long h = strtol(v, &end, 10);
    if (errno || end == v || *end || h < 1 || h > 4096)
        return ramc_error(RAMC_ERR_FORMAT, "%s: metadata '%s' is '%s', expected a head count 1..4096",
                          f->path, key, v);
    *out = (int)h;
    return RAMC_OK;
}

static ramc_status pick_heads(const char *path, const char *tower, int requested, int width, int *out) {
    if (requested < 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: %s heads %d is negative", path, tower, requested);
    int h = requested;
    if (h == 0) {
        if (width < 64)
            return ramc_error(RAMC_ERR_INVALID_ARG,
                              "%s: %s width %d is below 64, so heads cannot default to width/64; "
                              "give the number of %s heads explicitly", path, tower, width, tower);
        h = width / 64;
    }
    if (width % h != 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: %s width %d is not divisible by %d heads", path,
                          tower, width, h);
    *out = h;
    return RAMC_OK;
}

static ramc_status derive_info(loader *ld, const ramc_clip_params *p, ramc_clip_info *info) {
    const layout *L = ld->lay;
    const char *path = ld->f->path;
    const st_tensor *t = NULL;
    ramc_status st;

    if ((st = shape_source(ld, full_name(ld, L->conv), 4, &t))) return st;
    if (t->shape[1] != 3 || t->shape[2] != t->shape[3])
        return ramc_error(RAMC_ERR_MISMATCH, "%s: tensor '%s': shape [%lld,%lld,%lld,%lld], expected [W,3,P,P]",
                          path, t->name, (long long)t->shape[0], (long long)t->shape[1],
                          (long long)t->shape[2], (long long)t->shape[3]);
    info->vision_width = (int)t->shape[0];
    info->patch_size = (int)t->shape[2];

    if ((st = shape_source(ld, full_name(ld, L->vis_pos), 2, &t))) return st;
    int n1 = (int)t->shape[0];
    int grid = (int)lround(sqrt((double)(n1 - 1)));
    if (n1 < 2 || grid * grid != n1 - 1)
        return ramc_error(RAMC_ERR_MISMATCH,
                          "%s: tensor '%s': %d positions is not 1 + a square number of patches", path,
                          t->name, n1);
    info->grid = grid;
    info->n_patches = grid * grid;
    if ((long)grid * info->patch_size > MAX_DIM)
        return ramc_error(RAMC_ERR_MISMATCH, "%s: image size %d x %d is too large", path, grid,
                          info->patch_size);
    info->image_size = grid * info->patch_size;

    if ((st = count_blocks(ld, L->vis_blocks, "vision", &info->vision_layers))) return st;
    if ((st = shape_source(ld, block_name(ld, L->vis_blocks, 0, L->fc_w), 2, &t))) return st;
    info->vision_mlp = (int)t->shape[0];

    if ((st = shape_source(ld, full_name(ld, L->tok), 2, &t))) return st;
    info->vocab_size = (int)t->shape[0];
    info->text_width = (int)t->shape[1];
    if ((st = shape_source(ld, full_name(ld, L->txt_pos), 2, &t))) return st;
    info->context_length = (int)t->shape[0];
    if ((st = count_blocks(ld, L->txt_blocks, "text", &info->text_layers))) return st;
    if ((st = shape_source(ld, block_name(ld, L->txt_blocks, 0, L->fc_w), 2, &t))) return st;
    info->text_mlp = (int)t->shape[0];

    if ((st = shape_source(ld, full_name(ld, L->vis_proj), 2, &t))) return st;
    info->embed_dim = (int)t->shape[L->proj_transposed ? 0 : 1];

    int vh = p->vision_heads, th = p->text_heads;
    if (vh == 0 && (st = metadata_heads(ld->f, "vision_heads", &vh))) return st;
    if (th == 0 && (st = metadata_heads(ld->f, "text_heads", &th))) return st;
    if ((st = pick_heads(path, "vision", vh, info->vision_width, &info->vision_heads)))
        return st;
    return pick_heads(path, "text", th, info->text_width, &info->text_heads);
}

/* Sizes are summed in double (exact below 2^53) so that hostile shapes are
 * refused instead of wrapping around. Floats of one block of width W and MLP width M. */
static double block_floats(double W, double M) {
    return 4 * W             /* two LayerNorms */
           + 3 * W * W + 3 * W /* qkv */
           + W * W + W       /* out_proj */
           + M * W + M       /* c_fc */
           + W * M + W;      /* c_proj */
}

static double total_floats(const ramc_clip_info *in) {
    double W = in->vision_width, P = in->patch_size, D = in->embed_dim;
    double N1 = in->n_patches + 1.0, Wt = in->text_width;
    double vis = W * 3 * P * P + W + N1 * W + 4 * W + W * D +
                 in->vision_layers * block_floats(W, in->vision_mlp);
    double txt = (double)in->vocab_size * Wt + in->context_length * Wt + 2 * Wt + Wt * D +
                 in->text_layers * block_floats(Wt, in->text_mlp);
    return vis + txt + 1; /* + logit_scale */
}

#define CLIP_MAX_ABS_LOGIT_SCALE 80.0f /* exp(+-80) and 1/exp(+-80) are finite floats */
#define MAX_FLOATS 4e11 /* 1.6 TB: no real checkpoint comes near */

/* ---------------------------------------------------------- tensors */

/* `why` completes the message when the value became non-finite in rounding. */
static ramc_status check_finite(const loader *ld, const char *name, const float *x, size_t n,
                                const char *why) {
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]))
            return ramc_error(RAMC_ERR_NUMERIC, "%s: tensor '%s': element %zu is %s%s", ld->f->path, name, i,
                              isnan(x[i]) ? "NaN" : "infinite", why);
    }
    return RAMC_OK;
}

/* Loads `name` (shape checked) into dst. `convert` marks the tensors the
 * official build_model turns into fp16; rounding them reproduces the values
 * the official model computes with. */
static ramc_status load_into(loader *ld, const char *name, int ndim, const int64_t *shape, float *dst,
                             int convert) {
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    ramc_status st = st_load_f32(ld->f, name, ndim, shape, dst);
    if (st) return st;
    if ((st = check_finite(ld, name, dst, n, ""))) return st;
    if (convert && ld->round) {
        for (size_t i = 0; i < n; i++) dst[i] = round_to_f16(dst[i]);
        if ((st = check_finite(ld, name, dst, n, " after rounding to fp16 (beyond +-65504)"))) return st;
    }
    return RAMC_OK;
}

static float *take(loader *ld, size_t n) {
    float *p = ld->next;
    ld->next += n;
    return p;
}

static ramc_status load1(loader *ld, const char *name, int64_t a, const float **out, int convert) {
    float *dst = take(ld, (size_t)a);
    *out = dst;
    return load_into(ld, name, 1, &a, dst, convert);
}

static ramc_status load2(loader *ld, const char *name, int64_t a, int64_t b, const float **out,
                         int convert) {
    int64_t shape[2] = {a, b};
    float *dst = take(ld, (size_t)(a * b));
    *out = dst;
    return load_into(ld, name, 2, shape, dst, convert);
}

/* A projection used as x @ P with P [W, D]; Hugging Face stores it as a
 * Linear weight [D, W], which is transposed here. */
static ramc_status load_projection(loader *ld, const char *name, int64_t W, int64_t D, const float **out) {
    if (!ld->lay->proj_transposed) return load2(ld, name, W, D, out, 1);
    int64_t shape[2] = {D, W};
    ramc_status st = load_into(ld, name, 2, shape, ld->scratch, 1);
    if (st) return st;
    float *dst = take(ld, (size_t)(W * D));
    for (int64_t d = 0; d < D; d++)
        for (int64_t w = 0; w < W; w++) dst[w * D + d] = ld->scratch[d * W + w];
    *out = dst;
    return RAMC_OK;
}

static ramc_status load_block(loader *ld, const char *blocks, int i, int64_t W, int64_t M, clip_block *b) {
    const layout *L = ld->lay;
    ramc_status st;
    if ((st = load1(ld, block_name(ld, blocks, i, L->ln1_w), W, &b->ln_1_w, 0))) return st;
    if ((st = load1(ld, block_name(ld, blocks, i, L->ln1_b), W, &b->ln_1_b, 0))) return st;
    if (!L->split_qkv) {
        if ((st = load2(ld, block_name(ld, blocks, i, L->qkv_w), 3 * W, W, &b->qkv_w, 1))) return st;
        if ((st = load1(ld, block_name(ld, blocks, i, L->qkv_b), 3 * W, &b->qkv_b, 1))) return st;
    } else {
        /* q, k, v stacked row-wise, as in_proj_weight / in_proj_bias. */
        const char *w_names[3] = {L->q_w, L->k_w, L->v_w}, *b_names[3] = {L->q_b, L->k_b, L->v_b};
        const float *ignored;
        b->qkv_w = ld->next;
        for (int k = 0; k < 3; k++)
            if ((st = load2(ld, block_name(ld, blocks, i, w_names[k]), W, W, &ignored, 1))) return st;
        b->qkv_b = ld->next;
        for (int k = 0; k < 3; k++)
            if ((st = load1(ld, block_name(ld, blocks, i, b_names[k]), W, &ignored, 1))) return st;
    }
    if ((st = load2(ld, block_name(ld, blocks, i, L->out_w), W, W, &b->out_w, 1))) return st;
    if ((st = load1(ld, block_name(ld, blocks, i, L->out_b), W, &b->out_b, 1))) return st;
    if ((st = load1(ld, block_name(ld, blocks, i, L->ln2_w), W, &b->ln_2_w, 0))) return st;
    if ((st = load1(ld, block_name(ld, blocks, i, L->ln2_b), W, &b->ln_2_b, 0))) return st;
    if ((st = load2(ld, block_name(ld, blocks, i, L->fc_w), M, W, &b->fc_w, 1))) return st;
    if ((st = load1(ld, block_name(ld, blocks, i, L->fc_b), M, &b->fc_b, 1))) return st;
    if ((st = load2(ld, block_name(ld, blocks, i, L->proj_w), W, M, &b->proj_w, 1))) return st;
    return load1(ld, block_name(ld, blocks, i, L->proj_b), W, &b->proj_b, 1);
}

static ramc_status load_weights(loader *ld, ramc_clip *m) {
    const layout *L = ld->lay;
    const ramc_clip_info *in = &m->info;
    const int64_t W = in->vision_width, P = in->patch_size, N1 = in->n_patches + 1;
    const int64_t Wt = in->text_width, D = in->embed_dim;
    ramc_status st;

    int64_t conv_shape[4] = {W, 3, P, P};
    float *conv = take(ld, (size_t)(W * 3 * P * P));
    m->patch_w = conv;
    if ((st = load_into(ld, full_name(ld, L->conv), 4, conv_shape, conv, 1))) return st;
    if ((st = load1(ld, full_name(ld, L->cls), W, &m->class_emb, 0))) return st;
    if ((st = load2(ld, full_name(ld, L->vis_pos), N1, W, &m->vis_pos, 0))) return st;
    if ((st = load1(ld, full_name(ld, L->ln_pre_w), W, &m->ln_pre_w, 0))) return st;
    if ((st = load1(ld, full_name(ld, L->ln_pre_b), W, &m->ln_pre_b, 0))) return st;
    for (int i = 0; i < in->vision_layers; i++)
        if ((st = load_block(ld, L->vis_blocks, i, W, in->vision_mlp, &m->vis_blocks[i]))) return st;
    if ((st = load1(ld, full_name(ld, L->ln_post_w), W, &m->ln_post_w, 0))) return st;
    if ((st = load1(ld, full_name(ld, L->ln_post_b), W, &m->ln_post_b, 0))) return st;
    if ((st = load_projection(ld, full_name(ld, L->vis_proj), W, D, &m->vis_proj))) return st;

    if ((st = load2(ld, full_name(ld, L->tok), in->vocab_size, Wt, &m->tok_emb, 0))) return st;
    if ((st = load2(ld, full_name(ld, L->txt_pos), in->context_length, Wt, &m->txt_pos, 0))) return st;
    for (int i = 0; i < in->text_layers; i++)
        if ((st = load_block(ld, L->txt_blocks, i, Wt, in->text_mlp, &m->txt_blocks[i]))) return st;
    if ((st = load1(ld, full_name(ld, L->ln_final_w), Wt, &m->ln_final_w, 0))) return st;
    if ((st = load1(ld, full_name(ld, L->ln_final_b), Wt, &m->ln_final_b, 0))) return st;
    if ((st = load_projection(ld, full_name(ld, L->txt_proj), Wt, D, &m->txt_proj))) return st;

    float *scale = take(ld, 1);
    if ((st = load_into(ld, full_name(ld, L->logit_scale), 0, NULL, scale, 0))) return st;
    /* exp(logit_scale) is the zero-shot path's inverse temperature and the
     * matching cost's scale: it and its reciprocal must be finite positive
     * floats, or every score comes out NaN far from this file. The official
     * training clamps it to ln(100) = 4.6. */
    if (!(fabsf(*scale) <= CLIP_MAX_ABS_LOGIT_SCALE))
        return ramc_error(RAMC_ERR_NUMERIC,
                          "%s: tensor '%s' is %g: exp() of it is not a usable temperature "
                          "(|logit_scale| must be at most %g; CLIP's own is ln(100) = 4.6)",
                          ld->f->path, full_name(ld, L->logit_scale), (double)*scale,
                          (double)CLIP_MAX_ABS_LOGIT_SCALE);
    m->info.logit_scale = *scale;
    return RAMC_OK;
}

/* ------------------------------------------------------------ public */

/* Picks the naming scheme (and an optional DataParallel "module." prefix)
 * from which patch-embedding tensor the file has. */
static ramc_status detect_layout(loader *ld) {
    static const char *prefixes[] = {"", "module."};
    static const layout *layouts[] = {&openai_layout, &hf_layout};
    for (int l = 0; l < 2; l++) {
        for (int p = 0; p < 2; p++) {
            ld->lay = layouts[l];
            ld->prefix = prefixes[p];
            if (st_find(ld->f, full_name(ld, layouts[l]->conv))) return RAMC_OK;
        }
    }
    return ramc_error(RAMC_ERR_MISMATCH,
                      "%s: not a CLIP ViT checkpoint: it has neither '%s' (OpenAI names) nor '%s' "
                      "(Hugging Face names)", ld->f->path, openai_layout.conv, hf_layout.conv);
}

void clip_freeze(const ramc_clip *m, int bf16) {
    clip_thaw(m); /* whatever ranges were frozen before, one range now */
    /* float32: the packed copies replace the stored matrices (kernels.h) */
    kernels_freeze_weights(m->storage, m->n_storage * sizeof(float), bf16, 1);
}

/* [lo, hi) of a block's four weight matrices, whatever order the loader
 * stored them in. */
static void block_span(const clip_block *b, int W, int M, const char **lo, const char **hi) {
    const float *w[4] = {b->qkv_w, b->out_w, b->fc_w, b->proj_w};
    const size_t n[4] = {(size_t)3 * W * W, (size_t)W * W, (size_t)M * W, (size_t)W * M};
    *lo = (const char *)w[0], *hi = (const char *)(w[0] + n[0]);
    for (int i = 1; i < 4; i++) {
        if ((const char *)w[i] < *lo) *lo = (const char *)w[i];
        if ((const char *)(w[i] + n[i]) > *hi) *hi = (const char *)(w[i] + n[i]);
    }
}

void clip_freeze_for_training(const ramc_clip *m, int bf16) {
    clip_thaw(m);
    if (!bf16) return;
    const ramc_clip_info *in = &m->info;
    for (int l = 0; l < in->vision_layers; l++) {
        const char *lo, *hi;
        block_span(&m->vis_blocks[l], in->vision_width, in->vision_mlp, &lo, &hi);
        kernels_freeze_weights(lo, (size_t)(hi - lo), 1, 0);
    }
}

int clip_pack_as_loaded(const ramc_clip *m, const ramc_clip_params *p) {
    /* bf16 always packs (the copy is its bf16 weights), float32 unless asked
     * not to (ramc.h) */
    if (!kernels_packed_available() || !(p->bf16 || p->pack_weights)) return 0;
    clip_freeze(m, p->bf16);
    return 1;
}

void clip_thaw(const ramc_clip *m) { kernels_thaw_span(m->storage, m->n_storage * sizeof(float)); }

void ramc_clip_free(ramc_clip *clip) {
    if (!clip) return;
    kernels_forget_span(clip->storage, clip->n_storage * sizeof(float));
    free(clip->storage);
    free(clip->vis_blocks);
    free(clip->txt_blocks);
    free(clip->path);
    free(clip);
}

ramc_status ramc_clip_load(const char *path, const ramc_clip_params *params, ramc_clip **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_clip_load: NULL output");
    *out = NULL;
    if (!path) return ramc_error(RAMC_ERR_INVALID_ARG, "ramc_clip_load: NULL path");
    ramc_clip_params p = params ? *params : ramc_clip_default_params();

    st_file *f = NULL;
    ramc_status st = st_open(path, &f);
    if (st) return st;
    loader ld = {.f = f, .round = p.round_fp16_like_official != 0};
    ramc_clip *m = ramc_calloc(1, sizeof *m, "CLIP model");
    if (!m) {
        st = RAMC_ERR_NOMEM;
        goto fail;
    }
    if ((st = detect_layout(&ld))) goto fail;
    if ((st = derive_info(&ld, &p, &m->info))) goto fail;

    double total = total_floats(&m->info);
    if (total > MAX_FLOATS) {
        st = ramc_error(RAMC_ERR_LIMIT, "%s: tensor shapes describe %.3g weights, too many", path, total);
        goto fail;
    }
    size_t n = (size_t)total;
    size_t W = (size_t)m->info.vision_width, Wt = (size_t)m->info.text_width, D = (size_t)m->info.embed_dim;
    m->path = malloc(strlen(path) + 1);
    m->storage = ramc_malloc(n * sizeof(float), "CLIP weights");
    m->vis_blocks = ramc_calloc((size_t)m->info.vision_layers, sizeof(clip_block), "CLIP blocks");
    m->txt_blocks = ramc_calloc((size_t)m->info.text_layers, sizeof(clip_block), "CLIP blocks");
    if (ld.lay->proj_transposed)
        ld.scratch = ramc_malloc((W > Wt ? W : Wt) * D * sizeof(float), "projection scratch");
    if (!m->path || !m->storage || !m->vis_blocks || !m->txt_blocks ||
        (ld.lay->proj_transposed && !ld.scratch)) {
        st = ramc_error(RAMC_ERR_NOMEM, "%s: out of memory for %zu weights", path, n);
        goto fail;
    }
    strcpy(m->path, path);
    ld.next = m->storage;
    if ((st = load_weights(&ld, m))) goto fail;

    m->n_storage = n;
    /* A loaded model never changes, so its linear layers may run on packed copies. */
    clip_pack_as_loaded(m, &p);

    free(ld.scratch);
    st_close(f);
    *out = m;
    return RAMC_OK;
fail:
    free(ld.scratch);
    ramc_clip_free(m);
    st_close(f);
    return st;
}

ramc_clip_info ramc_clip_get_info(const ramc_clip *clip) {
    ramc_clip_info zero = {0};
    return clip ? clip->info : zero;
}
