/* Resumable training checkpoints: one safetensors file holding everything a
 * run needs to continue bit for bit (docs/training-state.md has the layout).
 *
 *   <official adapter names>                 F32  the live adapter (so the file
 *   <...>.num_batches_tracked                I64  is also a loadable adapter)
 *   optim.m.<name>, optim.v.<name>           F32  AdamW moments
 *   optim.buf.<name>                         F32  SGD momentum buffers
 *   optim.step                               I64 [3] steps per group (adamw-clip, adamw-other, sgd)
 *   optim.lr                                 F64 [3] learning rates in use
 *   optim.epoch                              I64 []  last scheduler epoch
 *   ema.<name>, ema.<...>.num_batches_tracked     the EMA (absent without one)
 *   ema.updates                              I64 []
 *   rng.state                                I64 [4] xoshiro256** state, bit-cast
 *   train.epoch, train.step_in_epoch, train.global_step   I64 []
 *   __metadata__: format "ramc-checkpoint", version "1", config (caller text)
 *
 * Saving goes through st_writer_save (temporary file, fsync, rename): a failed
 * or interrupted save leaves the previous checkpoint, or nothing, never a
 * partial file.
 */
#ifndef RAMC_TRAIN_CHECKPOINT_H
#define RAMC_TRAIN_CHECKPOINT_H

#include <stdint.h>

#include "core/rng.h"
#include "ram/ram.h"
#include "train/ema.h"
#include "train/optim.h"

#define RAMC_CHECKPOINT_FORMAT "ramc-checkpoint"
#define RAMC_CHECKPOINT_VERSION "1"

/* Where the run stands. */
typedef struct {
    int64_t epoch;         /* current (1-based) epoch; 0 before the first */
    int64_t step_in_epoch; /* iterations finished in that epoch */
    int64_t global_step;   /* iterations finished in total */
} ram_progress;

/* ema and rng may be NULL (not saved); config_text may be NULL (no "config"
 * metadata); it is stored verbatim, e.g. the resolved configuration as JSON. */
ramc_status checkpoint_save(const char *path, const ram_adapter *a, const ram_optimizer *opt,
                            const ram_ema *ema, const ramc_rng *rng, const ram_progress *progress,
                            const char *config_text);

/* Restores into objects already built with the checkpoint's layout (e.g. the
 * adapter from ram_adapter_load(path) or ram_adapter_create with the same
 * config, then optimizer_create / ema_create on it). Every name, shape and
 * dtype is checked before anything is written: on failure the objects are
 * unchanged and the message names the file and the tensor. ema NULL ignores a
 * saved EMA; ema non-NULL requires one. rng NULL ignores the saved state. */
ramc_status checkpoint_load(const char *path, ram_adapter *a, ram_optimizer *opt, ram_ema *ema,
                            ramc_rng *rng, ram_progress *progress);

/* The "config" metadata of a checkpoint (malloc'd, caller frees; NULL when absent). */
ramc_status checkpoint_read_config(const char *path, char **config_text);

#endif
