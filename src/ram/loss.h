/* Training losses (spec §6): the MMC loss RAM trains with, and the two
 * alternatives of the paper's loss ablation (ASL and a ranking loss).
 *
 * Conventions as kernels.h: row-major float32, shapes beside the arguments;
 * forward returns the scalar loss; backward ACCUMULATES dloss · ∂loss/∂z into
 * dz (pass dloss = 1 for a plain gradient). Targets are float arrays; an
 * entry is a positive when it is nonzero (0/1 multi-hot in practice).
 * Nothing allocates and nothing fails.
 */
#ifndef RAMC_RAM_LOSS_H
#define RAMC_RAM_LOSS_H

/* ------------------------------------------------------------------ MMC */

/* MMC (multi-matching contrastive) loss, exactly as loss/mmc_loss.py:
 *   z' = z - max(z)           max over ALL n entries (the whole batch)
 *   log p = z' - log Σ exp z' one softmax over the batch-flattened logits
 *   P = Σ y, replaced by 1 when P < 1e-6
 *   loss = -Σ y·log p / P     (an all-zero mask gives 0)
 * z, y [n] with n = B·C (z_glb [B,1,C] and z_loc [B,C] flatten alike).
 * RAM's training loss is mmc(z_glb) + mmc(z_loc), a sum. */
float loss_mmc_forward(const float *z, const float *y, long n);
/* dz [n] += dloss · (p·Σy - y) / P, with p the batch-wide softmax. The max
 * shift is detached in the official code and cancels anyway. */
void loss_mmc_backward(float *dz, float dloss, const float *z, const float *y, long n);

/* ------------------------------------------------------------------ ASL */

typedef struct {
    float gamma_neg; /* 2 */
    float gamma_pos; /* 0 */
    float clip;      /* 0: no probability shifting of negatives */
    float eps;       /* 1e-5: log clamp */
} asl_options;

/* The AsymmetricLossOptimized defaults the official code constructs. */
asl_options asl_default_options(void);

/* Asymmetric loss as AsymmetricLossOptimized, per entry with p = σ(z):
 *   pn = 1 - p, shifted to min(pn + clip, 1) when clip > 0
 *   ℓ  = y·log(max(p, eps)) + (1-y)·log(max(pn, eps))
 *   w  = (1 - p·y - pn·(1-y))^(γ⁺·y + γ⁻·(1-y))
 *   loss = -Σ ℓ·w / B / C · 1000
 * z, y [B,C]. The official code would be handed z_glb as [B,1,C] and
 * broadcast it against y [B,C] into [B,B,C] (spec §6.3, a latent bug); here
 * both are [B,C], entry by entry, which is what the loss means. */
float loss_asl_forward(const float *z, const float *y, int B, int C, const asl_options *opt);
/* dz [B,C] += dloss · ∂loss/∂z with the focusing weight w held constant (it
 * is computed under no_grad in the official code); the eps clamps and the
 * clip saturation pass no gradient, as torch's clamp. */
void loss_asl_backward(float *dz, float dloss, const float *z, const float *y, int B, int C,
                       const asl_options *opt);

/* -------------------------------------------------------------- ranking */

/* The ranking loss of the paper's loss ablation ([11], Gong et al. 2013,
 * "Deep convolutional ranking for multilabel image annotation"), per image
 * over its positive set P_b (y != 0) and negative set N_b (y == 0):
 *   RANK_HINGE: Σ_{p∈P_b} Σ_{n∈N_b} max(0, margin - z_p + z_n)   (Gong's
 *               pairwise ranking; margin 1; pairs are summed, not averaged,
 *               which is why the paper finds its values large for big C)
 *   RANK_LSEP:  log(1 + Σ_{p∈P_b} Σ_{n∈N_b} exp(z_n - z_p))  (the smooth
 *               log-sum-exp-pairwise variant, Li et al. 2017; margin unused;
 *               evaluated in O(C) as softplus(LSE_n z_n + LSE_p(-z_p)))
 * loss = mean over the B images; an image without positives or without
 * negatives contributes 0. z, y [B,C]. */
typedef enum { RANK_HINGE = 0, RANK_LSEP = 1 } rank_kind;

float loss_rank_forward(const float *z, const float *y, int B, int C, rank_kind kind, float margin);
/* dz [B,C] +=. The hinge's kink (a pair exactly at the margin) gets
 * subgradient 0. */
void loss_rank_backward(float *dz, float dloss, const float *z, const float *y, int B, int C,
                        rank_kind kind, float margin);

#endif
