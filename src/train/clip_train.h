/* Training CLIP itself (ramc pretrain-clip): the two towers of
 * src/ram/ram_forward.c without RAM's parts, run with a record, the heads
 * and their backward with weight gradients,
 * the parameter table in OpenAI names, and CLIP's symmetric InfoNCE loss.
 *
 * Gradients live in a "shadow" model: a ramc_clip whose pointers lead into a
 * flat float buffer at the same offsets as the weights in the model's own
 * storage, so every weight W has its gradient at the same place in dW and a
 * parameter update is one loop over two flat arrays.
 *
 * Shapes (B items, W vision width, N1 = 1 + patches, Wt text width,
 * L context, T rows of text actually computed, D embedding):
 *   vision: images [B,3,S,S] -> features [B,D] (class token, ln_post, proj)
 *   text:   tokens [B,L]     -> features [B,D] (ln_final at EOT, text_projection)
 * Features are not normalised; the loss normalises them.
 */
#ifndef RAMC_TRAIN_CLIP_TRAIN_H
#define RAMC_TRAIN_CLIP_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "model/clip.h"
#include "ram/ram_forward.h"

/* ------------------------------------------------------ parameter table */

#define CLIP_PARAM_NAME 96
#define CLIP_MAX_PARAMS(m) (13 + 12 * ((m)->info.vision_layers + (m)->info.text_layers))

typedef struct {
    char name[CLIP_PARAM_NAME]; /* OpenAI / open_clip name */
    const float *data;          /* inside the model's storage */
    size_t offset;              /* floats from the start of the storage */
    size_t numel;
    int ndim;
    int64_t shape[4];
    /* AdamW weight decay applies: matrices and the patch convolution; not
     * gains, biases or embeddings (token, positional, class), nor the logit
     * scale (which is not in the table: the trainer keeps it apart). */
    int decay;
} clip_param;

/* Every weight of m except logit_scale, in storage order (the order
 * ramc_clip_load and clip_create_random lay them out). tab must hold
 * CLIP_MAX_PARAMS(m) entries; returns the count. *total (may be NULL) gets
 * the number of floats they span from the start of the storage. Fails with
 * RAMC_ERR_MISMATCH when a tensor is not inside m->storage (the model was
 * not built in one allocation). */
ramc_status clip_param_table(const ramc_clip *m, clip_param *tab, int *count, size_t *total);

/* A model of m's shapes whose every pointer leads into buf at the offset the
 * weight has in m->storage (buf holds at least `total` floats of
 * clip_param_table). buf is not owned; free the view with ramc_clip_free. */
ramc_status clip_shadow(const ramc_clip *m, float *buf, ramc_clip **out);

/* ---------------------------------------------------------- vision tower */

/* What the vision forward keeps, for at most B_cap images. */
typedef struct {
    int B_cap, B, layers;
    const float *images;          /* [B,3,S,S] the caller's, read by the conv backward */
    float *pre;                   /* [B,N1,W] ln_pre input */
    float *pre_mean, *pre_rstd;   /* [B*N1] */
    float *x;                     /* [B,N1,W] stream, after the last block */
    float *xcls;                  /* [B,W] class rows of x */
    float *post_mean, *post_rstd; /* [B] */
    float *h;                     /* [B,W] ln_post output */
    ram_vision_acts tower;        /* the blocks' records, made by the vision tower each forward */
} clip_vision_acts;

ramc_status clip_vision_acts_alloc(clip_vision_acts *a, const ramc_clip *m, int B_cap);
void clip_vision_acts_free(clip_vision_acts *a);

/* images [B,3,S,S] (kept by pointer until the backward) -> features [B,D]. B <= B_cap. */
ramc_status clip_vision_forward_train(const ramc_clip *m, clip_vision_acts *a,
                                      const float *images, int B, float *features);
/* dfeatures [B,D] -> weight gradients ACCUMULATED into g (a shadow of m). */
ramc_status clip_vision_backward(const ramc_clip *m, const clip_vision_acts *a,
                                 const float *dfeatures, ramc_clip *g);

/* ------------------------------------------------------------ text tower */

/* The text forward only computes rows 0..T-1, T = 1 + the largest EOT
 * position in the batch: with the causal mask no row at or before EOT sees
 * a later one, so the pooled features are those of the full context, and the
 * padding rows (most of the 77 for short captions) cost nothing. */
typedef struct {
    int B_cap, B, T, L, layers;
    int32_t *ids;                 /* [B*T] the first T tokens of each sequence */
    int *eot;                     /* [B] EOT position (argmax of the ids) */
    float *x;                     /* [B,T,Wt] stream, after the last block */
    float *xe;                    /* [B,Wt] EOT rows of x */
    float *fin_mean, *fin_rstd;   /* [B] */
    float *h;                     /* [B,Wt] ln_final output */
    ram_text_acts tower;          /* the blocks' records over [B, T], made by the text tower */
} clip_text_acts;

ramc_status clip_text_acts_alloc(clip_text_acts *a, const ramc_clip *m, int B_cap);
void clip_text_acts_free(clip_text_acts *a);

/* tokens [B,L] (ids checked against the vocabulary) -> features [B,D]. */
ramc_status clip_text_forward_train(const ramc_clip *m, clip_text_acts *a, const int32_t *tokens,
                                    int B, float *features);
ramc_status clip_text_backward(const ramc_clip *m, const clip_text_acts *a,
                               const float *dfeatures, ramc_clip *g);

/* ------------------------------------------------------------------ loss */

#define CLIP_MAX_LOGIT_SCALE 4.6051702f /* ln(100): CLIP clamps exp(s) at 100 */

/* CLIP's symmetric InfoNCE over a batch of B matching pairs:
 *   a = img/|img|, b = txt/|txt|, logits = exp(min(s, ln 100)) * a @ b^T  [B,B]
 *   loss = (CE(logits, arange) + CE(logits^T, arange)) / 2   (means over B)
 * img, txt [B,D]; logit_scale s. Outputs, each optional (NULL):
 *   dimg, dtxt [B,D], *dscale: gradients of the loss (OVERWRITTEN, not
 *     accumulated); d/ds is 0 where the clamp is active;
 *   *correct_i2t, *correct_t2i: rows / columns whose argmax is the diagonal.
 * The B x B part is computed in double. */
ramc_status clip_contrastive_loss(const float *img, const float *txt, int B, int D,
                                  float logit_scale, double *loss, float *dimg, float *dtxt,
                                  float *dscale, int *correct_i2t, int *correct_t2i);

/* Image-to-label contrast (UniCL-style), the optional second term of
 * pre-training: every image against the same K label prompts, with the
 * labels its caption names as the positives.
 *   a = img/|img|, b = lab/|lab|, logits = exp(min(s, ln 100)) * a @ b^T  [B,K]
 *   loss = mean over images with a positive of CE(logits_i, target_i),
 *   target_i = 1/|P_i| on the labels P_i of image i, 0 elsewhere.
 * img [B,D], lab [K,D], pos [B,K] (1 = positive; a row of zeros leaves the
 * image out). Outputs as clip_contrastive_loss (OVERWRITTEN, optional);
 * *counted gets the number of images with a positive, *correct those whose
 * top label is one of their positives. With no positive at all the loss and
 * every gradient are 0. */
ramc_status clip_label_loss(const float *img, const float *lab, const unsigned char *pos, int B,
                            int K, int D, float logit_scale, double *loss, float *dimg,
                            float *dlab, float *dscale, int *counted, int *correct);

#endif
