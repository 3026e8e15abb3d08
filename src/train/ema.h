/* The exponential moving average of the adapter (spec §7.7, the official
 * utils/model_utils.py::ModelEma with decay 0.9997).
 *
 * Official behaviour kept:
 *  - a fresh EMA is taken at the start of every epoch (ema_reset), so it only
 *    averages within an epoch;
 *  - after every iteration, even one whose optimiser step was skipped, every
 *    tensor of the table is updated, BatchNorm running statistics included:
 *        e = 0.9997f * e + (float)(1 - 0.9997) * m      (float32)
 *  - integer buffers (BatchNorm num_batches_tracked) go through the same
 *    float32 arithmetic and are truncated toward zero when written back, as
 *    copy_ of a float result into an int64 tensor does;
 *  - the global `temperature` is then replaced by the live value, not
 *    averaged (temperature_loc is averaged).
 * Only the adapter's tensors are averaged: the frozen CLIP and teacher weights,
 * which the official EMA also "averages" (moving them by a few ULPs), are
 * shared with the live model here.
 *
 * EMA disabled (USE_EMA = False): ema_create gives NULL and every function
 * here accepts NULL as "no EMA" and does nothing.
 */
#ifndef RAMC_TRAIN_EMA_H
#define RAMC_TRAIN_EMA_H

#include <stdint.h>

#include "ram/ram.h"

typedef struct {
    double decay; /* 0.9997 */
    int enabled;  /* 1 */
} ram_ema_options;

typedef struct {
    double decay;
    int n_params;
    int64_t *offset;    /* [n_params + 1]: tensor i is data[offset[i] .. offset[i+1]) */
    float *data;        /* every tensor of the table (trainable and BN buffers), table order */
    int n_vision_adapted;
    int64_t *bn_count;  /* [n_vision_adapted * 2]: bn1, bn2 counts of each adapted block */
    int64_t updates;    /* ema_update calls since the last reset */
} ram_ema;

ram_ema_options ram_ema_default_options(void);

/* A copy of `a` (o NULL = defaults). *out is NULL when o->enabled is 0. */
ramc_status ema_create(const ram_adapter *a, const ram_ema_options *o, ram_ema **out);
void ema_free(ram_ema *e);

/* Start of an epoch: the EMA becomes a copy of the live adapter. */
ramc_status ema_reset(ram_ema *e, const ram_adapter *a);
/* After an iteration: e = d*e + (1-d)*a over the table, then the temperature copy. */
ramc_status ema_update(ram_ema *e, const ram_adapter *a);

/* Exchanges the EMA's values with the adapter's, so the adapter can be
 * evaluated with EMA weights; a second call swaps back. */
ramc_status ema_swap(ram_ema *e, ram_adapter *a);
/* Writes the EMA's values into `dst` (an adapter of the same layout, e.g. a
 * second one used for evaluation). */
ramc_status ema_copy_to(const ram_ema *e, ram_adapter *dst);

/* RAMC_ERR_MISMATCH unless `a` has the layout the EMA was built for. */
ramc_status ema_check_layout(const ram_ema *e, const ram_adapter *a);

#endif
