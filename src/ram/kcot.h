/* KCOT (knowledge-constrained optimal transport), the two RAM heads and the
 * ablation matchers of the paper's Table 5 (spec §5).
 *
 * Conventions follow kernels.h (llm.c style):
 *  - plain row-major float32 arrays, the shape of each written beside it;
 *  - forward functions overwrite their outputs;
 *  - backward functions ACCUMULATE (+=) into every gradient buffer they are
 *    given; a NULL gradient pointer means "not needed";
 *  - only sinkhorn() can fail (non-finite data, bad options), so only it
 *    returns a ramc_status; the others trust the caller with shapes.
 *
 * Which pieces carry a gradient (spec §5.5-§5.8): the cost, the LPD marginal,
 * the teacher plan and the Sinkhorn plan T are all computed under no-grad in
 * the official code, so they have no backward here. Gradients flow only
 * through the logits: z_loc = Σ_N T·sim / τ_l (T constant) and
 * z_glb = <ĝ, t̂> / τ_g.
 *
 * A full evaluation head, in order:
 *   kcot_cost_forward(cost, sim, exp(logit_scale))
 *   kcot_lpd_marginal(u, sim, 0.1)
 *   kcot_uniform(v, B, C)
 *   sinkhorn(T, r, c, ..., u, v, cost, {mode, reg 0.1, 100, 1e-3})
 *   kcot_local_logits_forward(z_loc, T, sim, τ_l)
 *   kcot_global_logits_forward(z_glb, ĝ, t̂, τ_g)
 *   kcot_score(score, ..., z_glb, z_loc)
 * Training adds, before sinkhorn (seen classes, spec §5.7):
 *   kcot_teacher_prob(P, simT, exp(teacher logit_scale), 20)
 *   kcot_teacher_mask(P, y)
 *   kcot_teacher_cost(cost_teacher, P, 0.05); cost += cost_teacher
 *   and reg = 0.1 + 0.05 (= 0.15f).
 */
#ifndef RAMC_RAM_KCOT_H
#define RAMC_RAM_KCOT_H

#include "core/arena.h"
#include "ramc.h"
#include "core/dist.h"

/* ------------------------------------------------------- cost, marginals */

/* cost[b,i,c] = 1 - softmax_c(sim[b,i,:] * scale)[c], the softmax over
 * classes per patch, as `1.0 - (sim * logit_scale).softmax(-1)`.
 * cost, sim [B,N,C]; scale = exp(logit_scale) (≈ 100). No backward: the cost
 * only feeds the no-grad Sinkhorn. cost may alias sim. */
void kcot_cost_forward(float *cost, const float *sim, float scale, int B, int N, int C);

/* LPD source marginal: u[b,i] = softmax_i(max_c sim[b,i,c] / temperature),
 * a distribution over patches (the official temperature is 0.1).
 * u [B,N]; sim [B,N,C]. */
void kcot_lpd_marginal(float *u, const float *sim, float temperature, int B, int N, int C);

/* out[b,k] = 1/n as the official `fill_(1./C)`: the double 1/n rounded to
 * float. out [B,n]. With n = C this is the target marginal v; with n = N it
 * is the uniform source marginal of the "plain OT" ablation. */
void kcot_uniform(float *out, int B, int n);

/* ------------------------------------------------------ teacher (training) */

/* P[b,i,c] = softmax_i(sharpen * softmax_c(scale * simT[b,i,:])[c]): for each
 * class a distribution over patches (sharpen = 20 in the official code).
 * P, simT [B,N,C]; simT = <f̂ᵀ_{b,i}, t̂ᵀ_c> of the frozen teacher and scale its
 * exp(logit_scale). The official code groups (scale·f̂)·t̂ᵀ; pass scale = 1
 * with those pre-scaled logits in simT to reproduce that rounding exactly. */
void kcot_teacher_prob(float *P, const float *simT, float scale, float sharpen,
                       int B, int N, int C);

/* Ground-truth masking, in place: m = min of the WHOLE tensor P (all images,
 * present classes included, taken before masking), then P[b,i,c] = m for
 * every (b,c) with target[b,c] == 0.  P [B,N,C]; target [B,C] (0/1).
 * Returns m. */
float kcot_teacher_mask(float *P, const float *target, int B, int N, int C);
/* The two halves of kcot_teacher_mask, for a batch split over processes
 * (the minimum is over the whole batch): the minimum of P [n], then the mask
 * with a given m. */
float kcot_min(const float *P, long n);
void kcot_teacher_mask_with(float *P, const float *target, float m, int B, int N, int C);

/* cost_teacher[k] = -log(P[k]) * lambda (lambda = OT_REGSC = 0.05); the
 * caller adds it to the student cost. Both [n]. */
void kcot_teacher_cost(float *cost_teacher, const float *P, float lambda, long n);

/* --------------------------------------------------------------- Sinkhorn */

/* Where each mode is used:
 *  SINKHORN_BATCH_COUPLED  parity with the official code (golden sets, the
 *      paper's evaluation): every item keeps iterating until ALL items of the
 *      batch have mean_i |r - r_prev| < thresh (or max_iter), so an image's
 *      plan depends on the other images of its batch (spec §5.6, §10.16).
 *  SINKHORN_PER_IMAGE  prediction: each item stops on its own test, so its
 *      result is bitwise independent of batch size, order and companions.
 *      Same float32 arithmetic as the batch-coupled mode; an item that
 *      converges first in a batch simply stops earlier.
 *  SINKHORN_LOG_DOMAIN  small reg (≲ 0.02, where exp(-cost/reg) underflows in
 *      float32 and the plain iteration returns RAMC_ERR_NUMERIC): updates of
 *      the log potentials f = log r, g = log c with log-sum-exp, in double,
 *      per-image stop. The stop test is the official one, mean_i |r - r_prev|
 *      < thresh, evaluated in log space so it never overflows; at reg 0.1 it
 *      therefore takes the same iterations and agrees with the plain modes to
 *      float rounding. For tiny reg the potentials are huge and this absolute
 *      test rarely passes, so it usually runs max_iter. */
typedef enum {
    SINKHORN_BATCH_COUPLED = 0,
    SINKHORN_PER_IMAGE = 1,
    SINKHORN_LOG_DOMAIN = 2
} sinkhorn_mode;

typedef struct {
    sinkhorn_mode mode;
    float reg;    /* ε: 0.1 at evaluation, 0.1 + 0.05 = 0.15 in training */
    int max_iter; /* 100 */
    float thresh; /* 1e-3 (hard-coded in the official solver) */
    ramc_arena *scratch; /* where the solver's scratch comes from; NULL (default): the heap */
    /* Batch-coupled mode only: the batch is split over these processes
     * (data-parallel training), each passing its own items; the stop test
     * then runs over the items of all of them, so every item's plan is the
     * one of the whole batch in one process. NULL: this call's items only. */
    const ramc_dist *batch_group;
} sinkhorn_options;

/* Arena bytes of sinkhorn's scratch for these shapes. */
size_t sinkhorn_work_bytes(int B, int N, int C);

/* {SINKHORN_BATCH_COUPLED, 0.1, 100, 1e-3}: the official evaluation setting. */
sinkhorn_options sinkhorn_default_options(void);

/* Balanced entropic OT between u and v for each batch item, the official loop:
 *   K = exp(-cost/reg); r = 1; c = 1
 *   repeat: r_prev = r; r = u / (K c); c = v / (Kᵀ r); err = mean_i |r - r_prev|
 *   T[b,i,j] = (r_i · c_j) · K_ij
 * K, r, c, T are float32 as in PyTorch; the two mat-vecs and the err sum
 * accumulate in double in a fixed order (PyTorch's BLAS order cannot be
 * reproduced; this is at least as accurate, so stop decisions agree unless
 * err lands within ~1e-7 relative of thresh).
 *
 * T        [B,N,C] out: the plan (columns sum to v, rows to u within thresh)
 * r        [B,N]   out: final row scaling (log-domain: exp(f), may be inf/0
 *                  for tiny reg; T is still finite)
 * c        [B,C]   out: final column scaling (likewise)
 * iters    [B]     out, or NULL: iterations each item ran
 * batch_iters      out, or NULL: max over items (the official count in the
 *                  batch-coupled mode, where all items run the same number)
 * err_hist [max_iter,B] out, or NULL: err_hist[t*B+b] = mean_i |r - r_prev|
 *                  of item b after iteration t+1 (golden `sinkhorn_err`);
 *                  -1 where item b did not run iteration t+1
 * u [B,N], v [B,C], cost [B,N,C] in.
 * Scratch: O(B + N + C) allocated once per call, none inside the loop.
 * Errors: RAMC_ERR_INVALID_ARG (sizes, reg <= 0, max_iter < 1, thresh not
 * finite/positive), RAMC_ERR_NUMERIC (non-finite input, or a plan/scaling
 * that is not finite; the message names the item and suggests the log-domain
 * mode), RAMC_ERR_NOMEM. On error the outputs are unspecified. */
ramc_status sinkhorn(float *T, float *r, float *c, int *iters, int *batch_iters, float *err_hist,
                     const float *u, const float *v, const float *cost, int B, int N, int C,
                     const sinkhorn_options *opt);

/* --------------------------------------------------------------- logits */

/* Local (KCOT) logits: z[b,c] = Σ_i T[b,i,c]·sim[b,i,c] / tau (τ_l).
 * z [B,C]; T, sim [B,N,C]. The product is summed over patches in float in
 * patch order, then divided by tau, as `(T*sim).sum(1) / temperature_loc`. */
void kcot_local_logits_forward(float *z, const float *T, const float *sim, float tau,
                               int B, int N, int C);
/* dsim [B,N,C] += dz·T/tau; *dtau += Σ dz·(-z/tau). T is a constant (no-grad
 * plan). z is the forward output. Either gradient may be NULL. */
void kcot_local_logits_backward(float *dsim, float *dtau, const float *dz, const float *z,
                                const float *T, float tau, int B, int N, int C);

/* Global logits: z[b,c] = <g_b, t_c> / tau (τ_g), through BLAS.
 * z [B,C]; g [B,D] and t [C,D] already L2-normalised. */
void kcot_global_logits_forward(float *z, const float *g, const float *t, float tau,
                                int B, int C, int D);
/* dg [B,D] += dz@t/tau; dt [C,D] += dzᵀ@g/tau; *dtau += Σ dz·(-z/tau).
 * Gradients with respect to the normalised inputs; the caller chains through
 * its own L2 normalisation. Any gradient may be NULL. */
void kcot_global_logits_backward(float *dg, float *dt, float *dtau, const float *dz,
                                 const float *z, const float *g, const float *t, float tau,
                                 int B, int C, int D);

/* ---------------------------------------------------------------- scores */

/* out[r,:] = softmax(z[r,:]) over n entries, as torch's last-dim softmax
 * (subtract the max, exp, multiply by the reciprocal of the sum).
 * out, z [rows,n]; may alias. */
void kcot_softmax_rows(float *out, const float *z, int rows, int n);

/* score = (softmax_c(z_glb) + softmax_c(z_loc)) / 2, the official output.
 * score, z_glb, z_loc [B,C]; score_glb, score_loc [B,C] out or NULL. */
void kcot_score(float *score, float *score_glb, float *score_loc, const float *z_glb,
                const float *z_loc, int B, int C);

/* ------------------------------------------- ablation matchers (Table 5) */

/* (c) Average pooling: z[b,c] = (1/N) Σ_i sim[b,i,c] / tau.
 * z [B,C]; sim [B,N,C]. */
void match_avgpool_forward(float *z, const float *sim, float tau, int B, int N, int C);
/* dsim [B,N,C] += dz/(N·tau); *dtau += Σ dz·(-z/tau). */
void match_avgpool_backward(float *dsim, float *dtau, const float *dz, const float *z,
                            float tau, int B, int N, int C);

/* (d) Softmax re-weighting (DualCoOp-style class-specific aggregation; each
 * class weighs the patches on its own, with no competition between classes):
 *   w[b,i,c] = softmax_i(scale · sim[b,i,c])   (over patches, per class)
 *   z[b,c]   = Σ_i w[b,i,c] · sim[b,i,c] / tau
 * scale is the sharpness of the weights (we use exp(logit_scale) ≈ 100, the
 * scale CLIP's similarities are trained at). w [B,N,C] is saved for backward.
 * z [B,C]; w, sim [B,N,C]. */
void match_reweight_forward(float *z, float *w, const float *sim, float scale, float tau,
                            int B, int N, int C);
/* Gradient flows through the weights as well:
 *   dz/dsim[i] = w_i (1 + scale (sim_i - m)) / tau,  m = Σ_i w_i sim_i = z·tau.
 * dsim [B,N,C] +=; *dtau += Σ dz·(-z/tau). */
void match_reweight_backward(float *dsim, float *dtau, const float *dz, const float *z,
                             const float *w, const float *sim, float scale, float tau,
                             int B, int N, int C);

/* (a) Plain OT is a composition, not a separate function: the same cost,
 * kcot_uniform(u, B, N) instead of the LPD marginal, no teacher term, any
 * sinkhorn mode with reg 0.1, then kcot_local_logits_forward/backward (the
 * plan is again a constant). */

#endif
