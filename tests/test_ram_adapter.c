/* Adapter files: load, save/load round trip, presets and official init,
 * and the errors of malformed adapter files. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/half.h"
#include "io/safetensors.h"
#include "kernels/kernels.h"
#include "ram/ram.h"
#include "ram/ram_forward.h"
#include "kernels/kernels_ref.h"
#include "model/clip.h"
#include "test.h"

static const char *golden = RAMC_GOLDEN_DIR "/tiny-s0";

static ramc_clip *load_clip(void) {
    ramc_clip_params p = ramc_clip_default_params();
    p.vision_heads = 2;
    p.text_heads = 2;
    ramc_clip *clip = NULL;
    ramc_status st = ramc_clip_load(RAMC_GOLDEN_DIR "/tiny-s0/weights.safetensors", &p, &clip);
    CHECK(st == RAMC_OK, "load clip: %s", ramc_last_error());
    return clip;
}

/* Writes a copy of the golden adapter with tensor `name` replaced by a
 * tensor of shape `shape` filled with `value` (or dropped if ndim < 0). */
static void write_variant(const char *out, const char *name, int ndim, const int64_t *shape,
                          float value) {
    char path[512];
    snprintf(path, sizeof path, "%s/adapter.safetensors", golden);
    st_file *f = NULL;
    if (st_open(path, &f) != RAMC_OK) return;
    st_writer *w = st_writer_new();
    for (int i = 0; i < f->n_tensors; i++) {
        const st_tensor *t = &f->tensors[i];
        if (!strcmp(t->name, name)) {
            if (ndim < 0) continue;
            int64_t n = 1;
            for (int d = 0; d < ndim; d++) n *= shape[d];
            float *data = malloc((size_t)n * sizeof(float));
            for (int64_t e = 0; e < n; e++) data[e] = value;
            st_writer_add_f32(w, t->name, ST_F32, ndim, shape, data);
            free(data);
        } else {
            st_writer_add(w, t->name, t->dtype, t->ndim, t->shape, t->data);
        }
    }
    st_writer_save(w, out);
    st_writer_free(w);
    st_close(f);
}

/* ram_adapter_freeze: the kept 3x3 weights are conv2_w in im2col order, and
 * the vision tower gives the same bits with them as with the per-call
 * reorder (same products), within float32 rounding when they are also packed
 * (oneDNN's packed kernels sum in another order than its sgemm). A training
 * forward ignores the copies. */
static void test_freeze(const ramc_clip *clip, const char *path) {
    const ramc_clip_info *in = &clip->info;
    const int B = 2, C = 5, S = in->image_size, D = in->embed_dim;
    const size_t stream = (size_t)B * (in->n_patches + 1) * in->vision_width;
    ram_adapter *plain = NULL, *kept = NULL, *packed = NULL;
    CHECK(ram_adapter_load(path, clip, 0, &plain) == RAMC_OK &&
              ram_adapter_load(path, clip, 0, &kept) == RAMC_OK &&
              ram_adapter_load(path, clip, 0, &packed) == RAMC_OK,
          "load: %s", ramc_last_error());
    if (!plain || !kept || !packed) goto done;
    CHECK(ram_adapter_freeze(kept, 0, 0) == RAMC_OK && ram_adapter_freeze(packed, 1, 0) == RAMC_OK,
          "freeze");
    CHECK(plain->tss[0].conv2_wk == NULL && kept->tss[0].conv2_wk != NULL, "copies only when frozen");
    for (int v = 0; v < kept->n_vision_adapted; v++) {
        const ram_param *w = kept->tss[v].conv2_w;
        const int H = (int)w->shape[0], W = (int)w->shape[1], k = (int)w->shape[2];
        int same = 1;
        for (int h = 0; h < H; h++)
            for (int ci = 0; ci < W; ci++)
                for (int ky = 0; ky < k; ky++)
                    for (int kx = 0; kx < k; kx++)
                        same &= kept->tss[v].conv2_wk[(((size_t)h * k + ky) * k + kx) * W + ci] ==
                                w->data[(((size_t)h * W + ci) * k + ky) * k + kx];
        CHECK(same, "block %d: conv2_wk is conv2_w as [H, ky, kx, W]", v);
    }

    float *images = malloc((size_t)B * 3 * S * S * sizeof(float));
    float *text = malloc((size_t)C * D * sizeof(float));
    float *out = malloc(6 * stream * sizeof(float));
    if (!images || !text || !out) goto free_bufs;
    unsigned seed = 12345;
    for (long i = 0; i < (long)B * 3 * S * S; i++)
        images[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / 8388608.0f - 1.0f;
    for (long i = 0; i < (long)C * D; i++)
        text[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / 8388608.0f - 1.0f;
    ram_adapter *ads[3] = {plain, kept, packed};
    for (int j = 0; j < 3; j++)
        CHECK(ram_vision_forward(clip, NULL, ads[j], images, B, text, C, 0, out + 2 * j * stream,
                                 out + (2 * j + 1) * stream, NULL, NULL) == RAMC_OK,
              "forward %d: %s", j, ramc_last_error());
    CHECK(!memcmp(out, out + 2 * stream, 2 * stream * sizeof(float)),
          "kept copies: the same bits as the per-call reorder");
    double err = 0, ref = 0;
    for (size_t i = 0; i < 2 * stream; i++) {
        err = fmax(err, fabs((double)out[4 * stream + i] - out[i]));
        ref = fmax(ref, fabs((double)out[i]));
    }
    CHECK(err <= 1e-5 * ref, "packed copies: max error %g of max %g", err, ref);

    /* training: BatchNorm on batch statistics, the stored weight reordered */
    CHECK(ram_vision_forward(clip, NULL, plain, images, B, text, C, RAM_VISION_TRAIN, out, out + stream,
                             NULL, NULL) == RAMC_OK &&
              ram_vision_forward(clip, NULL, packed, images, B, text, C, RAM_VISION_TRAIN,
                                 out + 2 * stream, out + 3 * stream, NULL, NULL) == RAMC_OK,
          "training forward");
    CHECK(!memcmp(out, out + 2 * stream, 2 * stream * sizeof(float)),
          "training forward ignores the frozen copies");
free_bufs:
    free(images), free(text), free(out);
done:
    ram_adapter_free(plain), ram_adapter_free(kept), ram_adapter_free(packed);
}

/* ram_adapter_freeze with bf16: the kept bf16 weights are ref_bf16 of the
 * 1x1 weight and of the 3x3 weight in im2col order, and a forward in the
 * bf16 mode (the CLIP frozen in bf16) gives the same bits with them as with
 * the per-call conversion. */
static void test_freeze_bf16(ramc_clip *clip, const char *path) {
    const ramc_clip_info *in = &clip->info;
    const int B = 2, C = 5, S = in->image_size, D = in->embed_dim;
    const size_t stream = (size_t)B * (in->n_patches + 1) * in->vision_width;
    ram_adapter *plain = NULL, *kept = NULL;
    CHECK(ram_adapter_load(path, clip, 0, &plain) == RAMC_OK &&
              ram_adapter_load(path, clip, 0, &kept) == RAMC_OK,
          "load: %s", ramc_last_error());
    if (!plain || !kept) goto done;
    CHECK(ram_adapter_freeze(kept, 1, 1) == RAMC_OK, "freeze bf16");
    CHECK(kept->tss[0].conv1_wb && kept->tss[0].conv2_wb && !kept->tss[0].conv2_wk &&
              !plain->tss[0].conv2_wb,
          "bf16 copies only when frozen with bf16");
    for (int v = 0; v < kept->n_vision_adapted; v++) {
        const ram_param *w1 = kept->tss[v].conv1_w, *w = kept->tss[v].conv2_w;
        const int H = (int)w->shape[0], W = (int)w->shape[1], k = (int)w->shape[2];
        int same = 1;
        for (long i = 0; i < (long)H * W; i++) {
            const float want = ref_bf16(w1->data[i]);
            uint32_t u;
            memcpy(&u, &want, 4);
            same &= kept->tss[v].conv1_wb[i] == (uint16_t)(u >> 16);
        }
        for (int h = 0; h < H; h++)
            for (int ci = 0; ci < W; ci++)
                for (int q = 0; q < k * k; q++) {
                    const float want = ref_bf16(w->data[((size_t)h * W + ci) * k * k + q]);
                    uint32_t u;
                    memcpy(&u, &want, 4);
                    same &= kept->tss[v].conv2_wb[((size_t)h * k * k + q) * W + ci] == (uint16_t)(u >> 16);
                }
        CHECK(same, "block %d: conv1_wb, conv2_wb are the weights in bf16, im2col order", v);
    }
    float *images = malloc((size_t)B * 3 * S * S * sizeof(float));
    float *text = malloc((size_t)C * D * sizeof(float));
    float *out = malloc(6 * stream * sizeof(float));
    if (images && text && out) {
        unsigned seed = 777;
        for (long i = 0; i < (long)B * 3 * S * S; i++)
            images[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / 8388608.0f - 1.0f;
        for (long i = 0; i < (long)C * D; i++)
            text[i] = (float)((seed = seed * 1103515245u + 12345u) >> 8) / 8388608.0f - 1.0f;
        CHECK(ram_vision_forward(clip, NULL, plain, images, B, text, C, 0, out + 4 * stream,
                                 out + 5 * stream, NULL, NULL) == RAMC_OK, "float32 forward");
        clip_freeze(clip, 1);
        CHECK(ram_vision_forward(clip, NULL, plain, images, B, text, C, 0, out, out + stream, NULL,
                                 NULL) == RAMC_OK &&
                  ram_vision_forward(clip, NULL, kept, images, B, text, C, 0, out + 2 * stream,
                                     out + 3 * stream, NULL, NULL) == RAMC_OK,
              "bf16 forwards: %s", ramc_last_error());
        clip_freeze(clip, 0);
        CHECK(!memcmp(out, out + 2 * stream, 2 * stream * sizeof(float)),
              "kept bf16 copies: the same bits as the per-call conversion");
        CHECK(memcmp(out, out + 4 * stream, 2 * stream * sizeof(float)) != 0,
              "the bf16 forwards differ from float32 (the bf16 mode ran)");
    }
    free(images), free(text), free(out);
done:
    ram_adapter_free(plain), ram_adapter_free(kept);
}

int main(void) {
    ramc_clip *clip = load_clip();
    if (!clip) return test_summary("test_ram_adapter");
    char path[512], tmpdir[] = "/tmp/ramc_adapter_XXXXXX", out[600];
    snprintf(path, sizeof path, "%s/adapter.safetensors", golden);
    CHECK(mkdtemp(tmpdir) != NULL, "mkdtemp");

    /* the golden adapter: layout comes from the tensors */
    ram_adapter *a = NULL;
    CHECK(ram_adapter_load(path, clip, 1, &a) == RAMC_OK, "load: %s", ramc_last_error());
    if (a) {
        CHECK(a->n_vision_adapted == 3 && a->vision_layers[0] == 1 && a->vision_layers[2] == 3,
              "vision layers");
        CHECK(a->n_text_prompted == 3 && a->text_layers[0] == 1, "text layers");
        CHECK(a->n_vis_prompts == 8 && a->n_txt_prompts == 4, "prompt counts");
        CHECK(a->hidden == 32 && a->gate_kernel == 3, "hidden %d kernel %d", a->hidden, a->gate_kernel);
        CHECK(a->tss[0].bn1_count >= 1000 && a->tss[0].bn1_count <= 2000, "bn count");
        int trainable = 0;
        for (int i = 0; i < a->n_params; i++) trainable += a->params[i].trainable;
        /* 2 temperatures + 3 deep prompts + 3 x (prompts + 2 convs + 2x2 BN + gate + final + 6 LN) */
        CHECK(trainable == 2 + 3 + 3 * 15, "trainable tensors: %d", trainable);

        /* round trip: every value and count identical */
        snprintf(out, sizeof out, "%s/roundtrip.safetensors", tmpdir);
        CHECK(ram_adapter_save(a, out) == RAMC_OK, "save: %s", ramc_last_error());
        ram_adapter *b = NULL;
        CHECK(ram_adapter_load(out, clip, 0, &b) == RAMC_OK, "reload: %s", ramc_last_error());
        if (b) {
            CHECK(b->n_params == a->n_params, "param count");
            for (int i = 0; i < a->n_params && i < b->n_params; i++) {
                CHECK(!strcmp(a->params[i].name, b->params[i].name), "name %d", i);
                CHECK(!memcmp(a->params[i].data, b->params[i].data,
                              (size_t)a->params[i].numel * sizeof(float)),
                      "values of %s", a->params[i].name);
            }
            for (int v = 0; v < 3; v++)
                CHECK(b->tss[v].bn1_count == a->tss[v].bn1_count &&
                          b->tss[v].bn2_count == a->tss[v].bn2_count,
                      "bn counts");
            ram_adapter_free(b);
        }
    }

    /* presets on a 4-layer model: COCO = last 3 blocks, NUS = 6 text blocks capped at 4 */
    ram_config coco = ram_config_preset(RAM_PRESET_COCO, &clip->info);
    ram_config nus = ram_config_preset(RAM_PRESET_NUS, &clip->info);
    CHECK(coco.n_vision_adapted == 3 && coco.vision_layers[0] == 1, "coco vision");
    CHECK(coco.n_text_prompted == 3 && coco.text_layers[0] == 1, "coco text");
    CHECK(nus.n_text_prompted == 4 && nus.text_layers[0] == 0, "nus text");
    CHECK(fabsf(coco.temperature_loc - 2e-3f) < 1e-9f && fabsf(nus.temperature_loc - 2e-4f) < 1e-9f,
          "temperatures");

    ram_adapter *fresh = NULL;
    CHECK(ram_adapter_create(clip, &coco, 42, 1, &fresh) == RAMC_OK, "create: %s", ramc_last_error());
    if (fresh && a) {
        /* same names and shapes as the official file */
        CHECK(fresh->n_params == a->n_params, "fresh param count %d vs %d", fresh->n_params,
              a->n_params);
        for (int i = 0; i < fresh->n_params && i < a->n_params; i++)
            CHECK(!strcmp(fresh->params[i].name, a->params[i].name) &&
                      fresh->params[i].numel == a->params[i].numel,
                  "fresh %s", fresh->params[i].name);
        /* official init: prompts N(0, 0.02), convs U(+-1/sqrt(fan_in)) fp16-rounded */
        const ram_param *pr = fresh->tss[0].prompts, *cv = fresh->tss[0].conv2_w;
        double ss = 0;
        for (int64_t i = 0; i < pr->numel; i++) ss += (double)pr->data[i] * pr->data[i];
        double sd = sqrt(ss / (double)pr->numel);
        CHECK(sd > 0.015 && sd < 0.025, "prompt std %g", sd);
        float bound = 1.0f / sqrtf(64.0f * 9.0f), mx = 0;
        int rounded = 1;
        for (int64_t i = 0; i < cv->numel; i++) {
            mx = fmaxf(mx, fabsf(cv->data[i]));
            rounded &= round_to_f16(cv->data[i]) == cv->data[i];
        }
        CHECK(mx <= bound && mx > 0.8f * bound, "conv bound %g vs %g", mx, bound);
        CHECK(rounded, "conv weights fp16-representable");
        CHECK(fresh->tss[0].bn1_w->data[0] == 1.0f && fresh->tss[0].bn1_var->data[0] == 1.0f &&
                  fresh->tss[0].bn1_mean->data[0] == 0.0f && fresh->tss[0].norm_kv_b->data[0] == 0.0f,
              "norm init");
        CHECK(fabsf(fresh->temperature->data[0] * expf(clip->info.logit_scale) - 1.0f) < 1e-6f,
              "global temperature 1/exp(logit_scale)");
        ram_adapter *again = NULL;
        ram_adapter_create(clip, &coco, 42, 0, &again);
        int same = again && again->n_params == fresh->n_params;
        for (int i = 0; same && i < fresh->n_params; i++)
            same = !memcmp(again->params[i].data, fresh->params[i].data,
                           (size_t)fresh->params[i].numel * sizeof(float));
        CHECK(same, "the same seed gives the same adapter");
        ram_adapter_free(again);
        ram_adapter_free(fresh);
    }
    ram_config bad = coco;
    bad.vision_layers[0] = 7;
    CHECK(ram_adapter_create(clip, &bad, 1, 0, &fresh) == RAMC_ERR_INVALID_ARG, "bad block rejected");

    /* malformed adapter files name the file and tensor */
    const char *conv = "clip_model.visual.transformer.resblocks.2.conv_adapter.conv_adapter_final.weight";
    int64_t wrong[4] = {64, 31, 1, 1};
    snprintf(out, sizeof out, "%s/misshaped.safetensors", tmpdir);
    write_variant(out, conv, 4, wrong, 0.1f);
    ram_adapter *x = NULL;
    ramc_status st = ram_adapter_load(out, clip, 0, &x);
    CHECK(st != RAMC_OK && x == NULL, "mis-shaped tensor rejected");
    CHECK(strstr(ramc_last_error(), "misshaped.safetensors") && strstr(ramc_last_error(), conv),
          "message: %s", ramc_last_error());

    snprintf(out, sizeof out, "%s/missing.safetensors", tmpdir);
    write_variant(out, conv, -1, NULL, 0);
    st = ram_adapter_load(out, clip, 0, &x);
    CHECK(st == RAMC_ERR_MISMATCH && strstr(ramc_last_error(), conv), "missing: %s",
          ramc_last_error());

    int64_t right[4] = {64, 32, 1, 1};
    snprintf(out, sizeof out, "%s/nan.safetensors", tmpdir);
    write_variant(out, conv, 4, right, NAN);
    st = ram_adapter_load(out, clip, 0, &x);
    CHECK(st == RAMC_ERR_NUMERIC && strstr(ramc_last_error(), "nan.safetensors"), "NaN: %s",
          ramc_last_error());

    st = ram_adapter_load("/nonexistent/adapter.safetensors", clip, 0, &x);
    CHECK(st == RAMC_ERR_IO && strstr(ramc_last_error(), "/nonexistent/adapter.safetensors"),
          "missing file: %s", ramc_last_error());

    test_freeze(clip, path);
    test_freeze_bf16(clip, path);
    ram_adapter_free(a);
    ramc_clip_free(clip);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return test_summary("test_ram_adapter");
}
