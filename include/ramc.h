/* ramc — Recover and Match (RAM, CVPR 2025) open-vocabulary multi-label
 * image recognition in C11.
 *
 * The public API. Plain C, no dependencies beyond the C standard library.
 * Every function that can fail returns a ramc_status; on failure
 * ramc_last_error() holds a message naming the input and the problem.
 * Objects are opaque: create with *_load / *_new, release with *_free.
 * A loaded model is immutable and may be shared between threads; per-call
 * scratch memory belongs to the call. The library reads no environment
 * variable: everything it does is set through these functions and their
 * parameter structs (the ramc command maps its RAMC_* variables onto them).
 *
 * Comments across the sources cite "spec §N": section N of docs/spec.md, the
 * project's account of what the official RAM code computes.
 */
#ifndef RAMC_H
#define RAMC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---------------------------------------------------------------- status */

typedef enum {
    RAMC_OK = 0,
    RAMC_ERR_IO = 1,          /* a file could not be opened, read or written */
    RAMC_ERR_FORMAT = 2,      /* a file or string is malformed */
    RAMC_ERR_INVALID_ARG = 3, /* the caller passed something unusable */
    RAMC_ERR_NOMEM = 4,
    RAMC_ERR_MISMATCH = 5,    /* shapes or names do not fit together */
    RAMC_ERR_LIMIT = 6,       /* an input exceeds a documented bound */
    RAMC_ERR_NUMERIC = 7      /* NaN or Inf where a finite value is required */
} ramc_status;

/* The message of the last failure on this thread ("" if none). */
const char *ramc_last_error(void);
void ramc_clear_error(void);
const char *ramc_status_name(ramc_status status);

/* ---------------------------------------------------------------- library */

/* The version of this build, e.g. "0.1.0-dev" (as `ramc --version` prints). */
const char *ramc_version(void);

/* The data folder: the default BPE vocabulary (bpe_simple_vocab_16e6.txt.gz)
 * and the embedded default model (default/). NULL or "" goes back to the
 * folder fixed at build time. Process-wide: set it at start-up, before other
 * threads use ramc. The ramc command sets it from $RAMC_DATA_DIR. Fails only
 * for a path longer than 4095 bytes. */
ramc_status ramc_set_data_dir(const char *dir);

/* Process-wide, for applications that train with ramc's internals where a
 * step allocates its records per step (CLIP pre-training: tens to hundreds
 * of MB for ViT-B/16 batches, which glibc by default hands back to the
 * kernel on free, so every step pays the page faults again, up to ~40% of a
 * step on some VMs). This asks glibc to serve them from the heap and keep
 * freed memory for reuse: the resident size stays at the peak. RAM's
 * training step does not need it (it runs on its own arena from its third
 * step on; keeping the first steps' freed memory only raises the peak), nor
 * does prediction (a ramc_state keeps its scratch). The ramc command calls
 * it for pretrain-clip (RAMC_KEEP_FREED_MEMORY=0 skips it). It changes
 * malloc's behaviour for the whole process, hence opt-in. */
void ramc_keep_freed_memory(void);

/* ------------------------------------------------------------- tokenizer */

#define RAMC_CONTEXT_LENGTH 77
#define RAMC_SOT_ID 49406
#define RAMC_EOT_ID 49407

typedef struct ramc_tokenizer ramc_tokenizer;

/* Loads CLIP's byte-level BPE. `path` is either the official
 * bpe_simple_vocab_16e6.txt.gz (gzip or plain text merges list) or a folder
 * holding Hugging Face vocab.json + merges.txt. */
ramc_status ramc_tokenizer_load(const char *path, ramc_tokenizer **out);
ramc_status ramc_tokenizer_load_hf(const char *vocab_json, const char *merges_txt,
                                   ramc_tokenizer **out);
/* The tokenizer a model was trained with: Hugging Face vocab.json +
 * merges.txt beside its weights file (models made by `ramc pretrain-clip`),
 * otherwise CLIP's own vocabulary shipped with ramc (in the data folder,
 * ramc_set_data_dir). */
ramc_status ramc_tokenizer_load_for_model(const char *weights_path, ramc_tokenizer **out);
void ramc_tokenizer_free(ramc_tokenizer *tok);

/* As the official tokenize(text, context_length, truncate=True):
 * ids = [SOT] + bpe(clean(text)) + [EOT], truncated to `context_length`
 * (the last id then being EOT) and zero-padded. `text` is UTF-8. */
ramc_status ramc_tokenize(const ramc_tokenizer *tok, const char *text,
                          int32_t *ids, int context_length);

/* ---------------------------------------------------------------- images */

typedef struct {
    int width, height;
    uint8_t *rgb; /* [height, width, 3], row-major, interleaved */
} ramc_image;

typedef enum { RAMC_FILTER_BILINEAR = 0, RAMC_FILTER_BICUBIC = 1 } ramc_filter;

/* Decodes a JPEG or PNG file (format sniffed from its bytes) to 8-bit RGB.
 * Greyscale, palette, alpha and 16-bit inputs are converted like Pillow's
 * Image.convert("RGB"). */
ramc_status ramc_image_load(const char *path, ramc_image *out);
/* The same from a file's bytes already in memory (a pipe, a network upload);
 * `name` (may be NULL) names it in error messages. */
ramc_status ramc_image_decode(const uint8_t *data, size_t size, const char *name, ramc_image *out);
/* Resizes exactly like Pillow's Image.resize((width, height), filter) on RGB. */
ramc_status ramc_image_resize(const ramc_image *in, int width, int height,
                              ramc_filter filter, ramc_image *out);
/* CHW float tensor [3, height, width]: (x/255 - mean[c]) / std[c]. */
ramc_status ramc_image_to_tensor(const ramc_image *in, const float mean[3],
                                 const float std[3], float *chw);
void ramc_image_free(ramc_image *img);

/* ------------------------------------------------------------------ CLIP */

typedef struct ramc_clip ramc_clip;

typedef struct {
    int vision_heads; /* 0: vision width / 64, as released CLIP models */
    int text_heads;   /* 0: text width / 64 */
    /* Round the tensors that the official build_model converts to fp16
     * (conv, linear, attention, projections) to fp16-representable values,
     * as the official code computes with. Default 1. */
    int round_fp16_like_official;
    /* 1: inference runs its products in bf16 with float32 accumulation: the
     * towers' linear layers, attention (AMX or AVX512-BF16) and the RAM
     * adapter's TSS convolutions and label attention; LayerNorm, the
     * softmaxes, the head and every gradient stay float32. ~1.5-2x faster
     * inference, scores within ~1e-2 of float32 on a trained model
     * (docs/performance.md). Default 0 (float32). The ramc command sets it
     * with --bf16 or RAMC_BF16=1. */
    int bf16;
    /* 1 (default): keep a copy of every linear weight in oneDNN's blocked
     * layout, with bias and activation fused into the products: ~40% faster
     * float32 inference at batch 1, ~6% at batch 8, for +4 bytes per weight
     * (+460 MB for ViT-B/16). 0: plain sgemm on the stored weights. bf16
     * always packs (its copy is the bf16 weights). The ramc command clears
     * it with --no-pack or RAMC_PACK=0 (which also clears bf16). */
    int pack_weights;
    /* Threads (OpenMP, and the GEMM backend's) of every call on a model
     * loaded with these parameters (ramc_model_load: ramc_labels_encode,
     * ramc_predict). 0 (default): the calling thread's OpenMP setting, which
     * is all cores unless OMP_NUM_THREADS or omp_set_num_threads say
     * otherwise. A call sets it for its own duration only and restores the
     * caller's setting. Results are bitwise reproducible for a fixed count;
     * another count may move the last bits of the matrix products.
     * ramc_clip_encode_text/_image do not read it (they run with the
     * caller's OpenMP setting). */
    int threads;
} ramc_clip_params;

ramc_clip_params ramc_clip_default_params(void);

typedef struct {
    int image_size, patch_size, grid, n_patches; /* n_patches = grid^2 */
    int vision_width, vision_layers, vision_heads, vision_mlp;
    int text_width, text_layers, text_heads, text_mlp;
    int context_length, vocab_size, embed_dim;
    float logit_scale; /* as stored (RAM uses exp of it) */
} ramc_clip_info;

/* Loads CLIP ViT weights from a safetensors file with OpenAI/open_clip names
 * (visual.transformer.resblocks.N...) or Hugging Face CLIPModel names
 * (vision_model.encoder.layers.N...). Dimensions come from tensor shapes. */
ramc_status ramc_clip_load(const char *path, const ramc_clip_params *params, ramc_clip **out);
void ramc_clip_free(ramc_clip *clip);
ramc_clip_info ramc_clip_get_info(const ramc_clip *clip);

/* Text features: tokens [n, context_length] -> features [n, embed_dim]
 * (ln_final at the EOT position, times text_projection; not normalised). */
ramc_status ramc_clip_encode_text(const ramc_clip *clip, const int32_t *tokens, int n,
                                  float *features);

/* Vision features for every token: images [B, 3, S, S] (normalised) ->
 * tokens [B, 1 + n_patches, embed_dim] = ln_post(x) @ proj. Row 0 of each
 * image is the pooled (class-token) feature CLIP uses. */
ramc_status ramc_clip_encode_image(const ramc_clip *clip, const float *images, int batch,
                                   float *tokens);


/* ------------------------------------------------------------ prediction */

/* Open-vocabulary multi-label prediction, the whole path from normalised
 * images and label names to per-label scores (docs/predict.md).
 *
 *   ramc_model_load      CLIP weights (+ optional RAM adapter), immutable
 *   ramc_labels_encode   label names -> label features, computed once
 *   ramc_predict         images [B,3,S,S] -> scores [B,C] (+ plan, LPD)
 *
 * Without an adapter the model runs RAM's zero-shot path on the frozen CLIP:
 * the SAA side stream and KCOT with the LPD marginal (no prompts, no TSS),
 * global temperature 1/exp(logit_scale), local temperature 2e-3 (the COCO
 * configuration's TEMPERATURE). Models and label sets may be shared between
 * threads, and threads sharing a model compute at the same time (each has
 * its own matrix-product primitives; tests/test_concurrency.c). The scratch
 * of a call lives in a ramc_state (below): one per thread, reused from call
 * to call, or one made by ramc_predict for that call alone. */

#define RAMC_MAX_LABELS 4096          /* labels in one set */
#define RAMC_MAX_LABEL_BYTES 1024     /* bytes of one label name (UTF-8) */
#define RAMC_MAX_TEMPLATE_BYTES 1024  /* bytes of a prompt template */
#define RAMC_MAX_BATCH 4096           /* images in one ramc_predict call */
#define RAMC_DEFAULT_TEMPLATE "A photo of a {}."
#define RAMC_ZERO_SHOT_TAU_LOCAL 2e-3f /* local temperature without an adapter */

typedef struct ramc_model ramc_model;
typedef struct ramc_labels ramc_labels;

/* Loads CLIP from clip_path and, if adapter_path is not NULL, a RAM adapter
 * (visual prompts, TSS, deep text prompts, temperatures) checked against it.
 * params may be NULL (ramc_clip_default_params()). */
ramc_status ramc_model_load(const char *clip_path, const char *adapter_path,
                            const ramc_clip_params *params, ramc_model **out);
void ramc_model_free(ramc_model *model);
/* The embedded default model shipped with ramc: DATA/default/clip.safetensors
 * (a small CLIP pre-trained on the synthetic world of `ramc synth`, with its
 * vocab.json + merges.txt beside it) and DATA/default/adapter.safetensors (its
 * RAM adapter), DATA being the data folder (ramc_set_data_dir, else the one
 * fixed at build time). Writes both paths (NUL-terminated; each buffer of `size` bytes) and
 * returns RAMC_OK when the CLIP file exists, an error naming it otherwise. */
ramc_status ramc_default_model_paths(char *clip_path, char *adapter_path, size_t size);
/* Sizes of the underlying CLIP: image_size S, grid, n_patches, embed_dim... */
ramc_clip_info ramc_model_get_info(const ramc_model *model);
int ramc_model_has_adapter(const ramc_model *model);

/* Encodes the label set: each name goes into template (which holds exactly
 * one "{}"; NULL: RAMC_DEFAULT_TEMPLATE), is tokenized and run through the
 * text tower (with the adapter's deep prompts, if any). tok may be NULL: the
 * model's own tokenizer is then used (ramc_tokenizer_load_for_model on its
 * weights path), read from disk on the first such call and kept by the model
 * for every later one (thread-safe). Names must be 1..RAMC_MAX_LABEL_BYTES
 * bytes of valid UTF-8, not only whitespace, and unique; 1..RAMC_MAX_LABELS
 * of them. The label set
 * belongs to `model` and is only valid with it. */
ramc_status ramc_labels_encode(const ramc_model *model, const ramc_tokenizer *tok,
                               const char *const *names, int n, const char *template_str,
                               ramc_labels **out);
/* As ramc_labels_encode, through a persistent cache of label features in the
 * folder cache_dir (created if missing; NULL or "": no cache). Each label's
 * features are stored under a key made of the CLIP file's bytes, how it was
 * loaded (heads, bf16, packing), the adapter's tensors and the prompt's token
 * ids, so a changed model, adapter, template or tokenizer never reuses stale
 * features; a label found there skips the text tower. Entries are written
 * atomically: processes may share the folder. */
ramc_status ramc_labels_encode_cached(const ramc_model *model, const ramc_tokenizer *tok,
                                      const char *const *names, int n, const char *template_str,
                                      const char *cache_dir, ramc_labels **out);
/* How many of the set's labels came from the label cache. */
int ramc_labels_cache_hits(const ramc_labels *labels);
void ramc_labels_free(ramc_labels *labels);
int ramc_labels_count(const ramc_labels *labels);
const char *ramc_labels_name(const ramc_labels *labels, int i);

typedef enum {
    RAMC_PREDICT_RAM = 0,           /* RAM: (softmax(global) + softmax(KCOT local)) / 2 */
    RAMC_PREDICT_CLIP_BASELINE = 1  /* plain CLIP: softmax_c(exp(logit_scale) * cos) */
} ramc_predict_mode;

/* How RAM's local branch aggregates patches into label logits (paper
 * Table 5, docs/ram.md). */
typedef enum {
    RAMC_MATCH_KCOT = 0,     /* knowledge-constrained optimal transport: RAM */
    RAMC_MATCH_AVGPOOL = 1,  /* (c) mean over patches */
    RAMC_MATCH_REWEIGHT = 2, /* (d) per-label softmax re-weighting over patches */
    RAMC_MATCH_OT = 3        /* plain optimal transport: the same Sinkhorn with a uniform
                              * patch marginal (no LPD) and, in training, no teacher term */
} ramc_matching;

/* A variant of RAM for the paper's ablations (Tables 5 and 6, docs/ram.md),
 * one struct for configuration, training, evaluation, prediction and the
 * forward pass. All zero is RAM as published; each switch names what it
 * takes away. (The teacher, a training-only part, is the training
 * configuration's use_teacher.) */
typedef struct {
    ramc_matching matching; /* RAMC_MATCH_KCOT */
    int no_saa;             /* 1: no value-value attention: the side stream follows the main
                             * stream ("w/o SAA") */
    int no_tss;             /* 1: no TSS adapters in the adapted blocks ("w/o TSS") */
    int uniform_source;     /* 1: uniform patch marginal u = 1/N instead of LPD ("w/o LPD") */
} ramc_variant;

/* What a score means (docs/predict.md, "Scores"). */
typedef enum {
    /* RAM's own output, (softmax_c(z_glb) + softmax_c(z_loc)) / 2: each row
     * sums to 1 over the labels asked, so one label alone always scores 1 and
     * a threshold means something else for 5 labels than for 500. */
    RAMC_SCORE_OFFICIAL = 0,
    /* Per label, not depending on which other labels were asked:
     * sigmoid((cos(g, t_c) - cos(g, t_ref)) / tau), g the image's global
     * feature, t_c the label's text feature, t_ref that of the reference
     * prompt (the template with an empty label, "A photo of a ."), tau the
     * global temperature (the baseline: 1/exp(logit_scale)). It is RAM's
     * global softmax over the two candidates {label, reference}. Bitwise the
     * same for a label whatever else is asked (with equal label features:
     * text-tower batches can move their last bits, the label cache cannot).
     * The transport plan and LPD are still those of the official pass. */
    RAMC_SCORE_INDEPENDENT = 1
} ramc_score;

typedef struct {
    ramc_predict_mode mode;  /* default RAMC_PREDICT_RAM */
    /* 1 (default): each image's Sinkhorn stops on its own test, so its result
     * does not depend on the other images of the call. 0: the official
     * batch-coupled stop (parity with the reference implementation). */
    int per_image_sinkhorn;
    float reg;               /* Sinkhorn entropic regularisation, default 0.1;
                              * below 0.02 the per-image mode runs in the log domain */
    int max_iter;            /* Sinkhorn iterations at most, default 100 */
    float tau_global;        /* 0 (default): the adapter's, else 1/exp(logit_scale) */
    float tau_local;         /* 0 (default): the adapter's, else RAMC_ZERO_SHOT_TAU_LOCAL */
    /* 0 (default): every image goes through the towers and the head on its
     * own, so with per_image_sinkhorn its result is bitwise the same whatever
     * else is in the call (BLAS blocking changes with the row count, which
     * moves the last bits). 1: the batch shares each matrix product (faster
     * for large batches; results then agree across batch compositions only
     * to float rounding, ~1e-6). */
    int fuse_batch;
    /* Research only: a variant of RAM for the paper's ablations; zero (the
     * default) is RAM as published. */
    ramc_variant ablation;
    /* Threads of this call; 0 (default): the model's (ramc_clip_params.threads). */
    int threads;
    /* Which score fills `scores` (docs/predict.md, "Scores"); default
     * RAMC_SCORE_OFFICIAL. */
    ramc_score score;
} ramc_predict_params;

ramc_predict_params ramc_predict_default_params(void);

/* images [B,3,S,S] normalised (mean = std = 0.5 for RAM's test transform:
 * ramc_preprocess_file / ramc_preprocess_image make them);
 * scores [B,C] out (official score: each row sums to 1 over the label set;
 * independent score: each in (0, 1) on its own); plan [B,N,C]
 * out or NULL: the KCOT transport plan (patch i, label c), N = n_patches in
 * row-major grid order; lpd [B,N] out or NULL: the LPD patch marginal u.
 * plan and lpd exist in RAM mode only (must be NULL for the baseline).
 * params may be NULL (defaults). */
ramc_status ramc_predict(const ramc_model *model, const ramc_labels *labels,
                         const float *images, int B, const ramc_predict_params *params,
                         float *scores, float *plan, float *lpd);

/* Per-call state, in the manner of whisper_state: the scratch memory of
 * ramc_predict, sized once and reused, so that a thread predicting over and
 * over allocates nothing after its first call. A state belongs to one model
 * and is used by one thread at a time; threads sharing a model each create
 * their own (the model stays immutable and shared). ramc_predict itself
 * makes a temporary state per call. */
typedef struct ramc_state ramc_state;

ramc_status ramc_state_create(const ramc_model *model, ramc_state **out);
void ramc_state_free(ramc_state *state);
/* Sizes the scratch, from the table of the forward pass's shapes, for calls
 * of up to `batch` images and `n_labels` labels under params (NULL:
 * defaults), so that no such call allocates. Optional: without it the state
 * grows to what its calls need and then stays at that size. */
ramc_status ramc_state_reserve(ramc_state *state, int batch, int n_labels,
                               const ramc_predict_params *params);
/* Bytes of scratch the state holds now. */
size_t ramc_state_bytes(const ramc_state *state);
/* Times the state has had to grow during a call (0 after a reserve large
 * enough for every call made since). */
int ramc_state_grow_count(const ramc_state *state);
/* ramc_predict with the scratch of `state` (created for labels' model). */
ramc_status ramc_predict_with_state(ramc_state *state, const ramc_labels *labels,
                                    const float *images, int B,
                                    const ramc_predict_params *params, float *scores,
                                    float *plan, float *lpd);

/* --------------------------------------------------------- preprocessing */

/* The official test transform, so that an application feeds ramc_predict
 * exactly what the model was evaluated on: the decoded RGB image resized
 * straight to the model's input size (no crop, aspect ratio not kept) with
 * Pillow's bilinear filter, bit-exact, then per channel (x/255 - mean)/std. */
typedef struct {
    int width, height;     /* output size; 0 (default): the model's image_size S */
    int filter;            /* ramc_filter; default RAMC_FILTER_BILINEAR (the official one) */
    float mean[3], std[3]; /* Normalize; default 0.5 each (RAM, with or without adapter) */
} ramc_preprocess_params;

ramc_preprocess_params ramc_preprocess_default_params(void);

/* image (8-bit RGB in memory, any size) -> chw [3, height, width], height and
 * width from params or, where 0, the model's S (model may then not be NULL;
 * with both sizes set it may). params may be NULL (defaults). For a batch,
 * write image b at chw + b * 3 * S * S. */
ramc_status ramc_preprocess_image(const ramc_model *model, const ramc_image *image,
                                  const ramc_preprocess_params *params, float *chw);
/* The same from a JPEG or PNG file (ramc_image_load); errors name the file. */
ramc_status ramc_preprocess_file(const ramc_model *model, const char *path,
                                 const ramc_preprocess_params *params, float *chw);

/* --------------------------------------------------------- explanations */

/* Heat maps of a patch-grid quantity (a plan column, the LPD marginal) over
 * an image: the values are scaled by their maximum, upsampled bilinearly to
 * the image size (patch centres, edges clamped), coloured with a jet-like
 * ramp (blue low, red high) and blended as (1-alpha)*image + alpha*colour.
 * values [grid*grid] row-major, finite and >= 0; image any size. */
ramc_status ramc_heatmap_overlay(const ramc_image *image, const float *values, int grid,
                                 float alpha, ramc_image *out);

/* One overview picture: panels of image->width x image->height side by side
 * (at most 5 per row), each under a title drawn with a built-in 3x5 pixel
 * font (ASCII, shown in capitals): first the image itself, then one heat map
 * per maps[k] (grid*grid values each) titled titles[k]. image_title and
 * titles may be NULL. */
ramc_status ramc_explain_overview(const ramc_image *image, const char *image_title,
                                  const float *const *maps, const char *const *titles,
                                  int n_maps, int grid, float alpha, ramc_image *out);

/* Writes an RGB image as PNG atomically (temporary file, then rename). */
ramc_status ramc_explain_write_png(const ramc_image *image, const char *path);

#ifdef __cplusplus
}
#endif
#endif
