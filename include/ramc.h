/* ramc — Recover and Match (RAM, CVPR 2025) open-vocabulary multi-label
 * image recognition in C11.
 *
 * The public API. Plain C, no dependencies beyond the C standard library.
 * Every function that can fail returns a ramc_status; on failure
 * ramc_last_error() holds a message naming the input and the problem.
 * Objects are opaque: create with *_load / *_new, release with *_free.
 * A loaded model is immutable and may be shared between threads; per-call
 * scratch memory belongs to the call.
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

#ifdef __cplusplus
}
#endif
#endif
