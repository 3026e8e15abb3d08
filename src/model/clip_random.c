/* A CLIP with random weights in CLIP's own initialisation: the starting
 * point of `ramc pretrain-clip`, and the model `ramc bench` times (random
 * weights cost exactly what real ones do: same shapes, same products, no
 * denormals). */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "model/clip.h"

typedef struct {
    float *next;
    ramc_rng rng;
} filler;

/* Approximately N(0, sigma): the centred sum of four 16-bit uniforms of one
 * rng_next (Irwin-Hall, variance 1/3, rescaled to 1). rng_normal costs a
 * log, a sqrt and a cos per value, seconds over the 150M weights of
 * ViT-B/16; a timing needs only the right scale, which this has. The values
 * are never subnormal (the smallest non-zero magnitude is ~2^-16 sigma), so
 * they cost the BLAS what real weights cost. */
static const float *take_normal(filler *f, size_t n, float sigma) {
    float *p = f->next;
    const float k = sigma * 1.7320508f / 65536.0f; /* sqrt(3) / 2^16 */
    for (size_t i = 0; i < n; i++) {
        uint64_t u = rng_next(&f->rng);
        int32_t s = (int32_t)(u & 0xffff) + (int32_t)((u >> 16) & 0xffff) +
                    (int32_t)((u >> 32) & 0xffff) + (int32_t)(u >> 48) - 2 * 65535;
        p[i] = (float)s * k;
    }
    f->next += n;
    return p;
}

static const float *take_const(filler *f, size_t n, float value) {
    float *p = f->next;
    for (size_t i = 0; i < n; i++) p[i] = value;
    f->next += n;
    return p;
}

static double block_floats(double W, double M) {
    return 4 * W + 3 * W * W + 3 * W + W * W + W + M * W + M + W * M + W;
}

/* CLIP's initialisation (model.py initialize_parameters): attention std
 * W^-0.5, output projections W^-0.5 (2 layers)^-0.5, c_fc (2W)^-0.5. With
 * them the random towers stay well scaled through all blocks, so no NaN or
 * overflow changes the work done (Sinkhorn would stop or fail otherwise). */
static void fill_block(filler *f, clip_block *b, int W, int M, int layers) {
    const float attn = 1.0f / sqrtf((float)W), proj = attn / sqrtf(2.0f * layers);
    const float fc = 1.0f / sqrtf(2.0f * W);
    b->ln_1_w = take_const(f, (size_t)W, 1.0f);
    b->ln_1_b = take_const(f, (size_t)W, 0.0f);
    b->qkv_w = take_normal(f, (size_t)3 * W * W, attn);
    b->qkv_b = take_const(f, (size_t)3 * W, 0.0f);
    b->out_w = take_normal(f, (size_t)W * W, proj);
    b->out_b = take_const(f, (size_t)W, 0.0f);
    b->ln_2_w = take_const(f, (size_t)W, 1.0f);
    b->ln_2_b = take_const(f, (size_t)W, 0.0f);
    b->fc_w = take_normal(f, (size_t)M * W, fc);
    b->fc_b = take_const(f, (size_t)M, 0.0f);
    b->proj_w = take_normal(f, (size_t)W * M, proj);
    b->proj_b = take_const(f, (size_t)W, 0.0f);
}

static int shape_ok(const ramc_clip_info *s) {
    const int dims[] = {s->image_size,  s->patch_size,   s->vision_width, s->vision_layers,
                        s->vision_heads, s->vision_mlp,  s->text_width,   s->text_layers,
                        s->text_heads,  s->text_mlp,     s->context_length, s->vocab_size,
                        s->embed_dim};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++)
        if (dims[i] <= 0 || dims[i] > (1 << 20)) return 0;
    return s->image_size % s->patch_size == 0 && s->vision_width % s->vision_heads == 0 &&
           s->text_width % s->text_heads == 0;
}

ramc_status clip_create_random(const ramc_clip_info *shape, uint64_t seed, ramc_clip **out) {
    if (!out) return ramc_error(RAMC_ERR_INVALID_ARG, "clip_create_random: NULL output");
    *out = NULL;
    if (!shape || !shape_ok(shape))
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "clip_create_random: dimensions must be positive, the image a multiple "
                          "of the patch and each width a multiple of its heads");
    ramc_clip_info in = *shape;
    in.grid = in.image_size / in.patch_size;
    in.n_patches = in.grid * in.grid;
    in.logit_scale = logf(100.0f);

    const double W = in.vision_width, P = in.patch_size, D = in.embed_dim, Wt = in.text_width;
    const double N1 = in.n_patches + 1.0;
    const double total = W * 3 * P * P + W + N1 * W + 4 * W + W * D +
                         in.vision_layers * block_floats(W, in.vision_mlp) +
                         (double)in.vocab_size * Wt + in.context_length * Wt + 2 * Wt + Wt * D +
                         in.text_layers * block_floats(Wt, in.text_mlp);
    if (total * sizeof(float) > 0.5 * (double)SIZE_MAX)
        return ramc_error(RAMC_ERR_LIMIT, "clip_create_random: %.3g weights do not fit in memory",
                          total);
    const size_t n = (size_t)total;

    /* Allocated as ramc_clip_load does, so ramc_clip_free releases it. */
    ramc_clip *m = ramc_calloc(1, sizeof *m, "CLIP model");
    if (!m) return RAMC_ERR_NOMEM;
    m->info = in;
    static const char name[] = "(random weights)";
    m->path = malloc(sizeof name);
    m->storage = ramc_malloc(n * sizeof(float), "CLIP weights");
    m->n_storage = n;
    m->vis_blocks = ramc_calloc((size_t)in.vision_layers, sizeof(clip_block), "CLIP blocks");
    m->txt_blocks = ramc_calloc((size_t)in.text_layers, sizeof(clip_block), "CLIP blocks");
    if (!m->path || !m->storage || !m->vis_blocks || !m->txt_blocks) {
        ramc_clip_free(m);
        return ramc_error(RAMC_ERR_NOMEM, "clip_create_random: out of memory for %zu weights", n);
    }
    memcpy(m->path, name, sizeof name);

    filler f = {.next = m->storage};
    rng_seed(&f.rng, seed);
    const int iw = in.vision_width, it = in.text_width;
    const float sw = 1.0f / sqrtf((float)iw), st = 1.0f / sqrtf((float)it);
    m->patch_w = take_normal(&f, (size_t)iw * 3 * in.patch_size * in.patch_size,
                             1.0f / sqrtf(3.0f * in.patch_size * in.patch_size));
    m->class_emb = take_normal(&f, (size_t)iw, sw);
    m->vis_pos = take_normal(&f, (size_t)(in.n_patches + 1) * iw, sw);
    m->ln_pre_w = take_const(&f, (size_t)iw, 1.0f);
    m->ln_pre_b = take_const(&f, (size_t)iw, 0.0f);
    for (int i = 0; i < in.vision_layers; i++)
        fill_block(&f, &m->vis_blocks[i], iw, in.vision_mlp, in.vision_layers);
    m->ln_post_w = take_const(&f, (size_t)iw, 1.0f);
    m->ln_post_b = take_const(&f, (size_t)iw, 0.0f);
    m->vis_proj = take_normal(&f, (size_t)iw * in.embed_dim, sw);

    m->tok_emb = take_normal(&f, (size_t)in.vocab_size * it, 0.02f);
    m->txt_pos = take_normal(&f, (size_t)in.context_length * it, 0.01f);
    for (int i = 0; i < in.text_layers; i++)
        fill_block(&f, &m->txt_blocks[i], it, in.text_mlp, in.text_layers);
    m->ln_final_w = take_const(&f, (size_t)it, 1.0f);
    m->ln_final_b = take_const(&f, (size_t)it, 0.0f);
    m->txt_proj = take_normal(&f, (size_t)it * in.embed_dim, st);
    *out = m;
    return RAMC_OK;
}
