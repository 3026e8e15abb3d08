/* Training and evaluation settings (spec §1, §7.3-§7.8; docs/datasets.md).
 *
 * Every hyper-parameter lives in one struct that is filled, in order of
 * increasing precedence, from a preset ("coco" or "nus": the official
 * configs), a config file and command-line `--set key=value` overrides.
 * All three go through ram_train_config_apply(), so a value means the same
 * wherever it is written.
 *
 * Config file: one `key = value` per line; '#' starts a comment outside
 * quotes; strings may be "quoted" (\" \\ \n \t escapes) or bare; numbers
 * like 5e-5; lists like [9, 10, 11]; booleans true/false (or 1/0).
 * `preset = coco|nus` may only come before every other key, because it
 * resets all of them. Unknown keys and bad values are errors naming the
 * file, line and key: "run.cfg:7: key 'base_lr': expected a number, got 'fast'".
 *
 * ram_train_config_dump() writes the effective settings in the same format;
 * parsing that text gives back an identical struct.
 */
#ifndef RAMC_TRAIN_CONFIG_H
#define RAMC_TRAIN_CONFIG_H

#include <stddef.h>

#include "core/status.h"
#include "data/dataset.h"
#include "model/clip.h"
#include "ram/kcot.h"
#include "ram/ram.h"

#define RAM_CONFIG_MAX_STRING 4096   /* bytes of a string value (paths) */
#define RAM_CONFIG_MAX_LINE 16384    /* bytes of one config-file line */

/* presets: ram_preset of ram/ram.h (RAM_PRESET_COCO, RAM_PRESET_NUS) */

typedef struct {
    ram_preset preset;

    /* model (spec §1 MODEL.*) */
    int n_depth_vision, depth_vision[RAM_MAX_LAYERS]; /* blocks with visual prompts + TSS;
                                                         negative = from the end (-1: last) */
    int n_depth_text, depth_text[RAM_MAX_LAYERS];     /* text blocks with deep prompts */
    int vision_prompts;          /* VISION_ADAPT 8 */
    int text_prompts;            /* TEXT_CTX 4 */
    int kernel_size;             /* KERNEL_SIZE 3 (odd) */
    double temperature;          /* TEMPERATURE: initial local τ_l, 2e-3 / 2e-4 */
    double ot_reg;               /* OT_REG ε 0.1 */
    double ot_regsc;             /* OT_REGSC λ 0.05 */
    int use_teacher;             /* teacher knowledge transfer, 1 */
    double teacher_sharpen;      /* 20 */
    sinkhorn_mode sinkhorn;      /* coupled (parity) | per_image | log_domain */
    /* ablations (paper Tables 5 and 6, docs/ram.md); defaults are RAM */
    ramc_variant variant;        /* zero = RAM; keys matching, use_lpd, use_saa, use_tss */
    int loss;                    /* 0 mmc | 1 asl | 2 rank_hinge | 3 lsep (ram_loss_kind) */

    /* input (INPUT.*) */
    int image_size;              /* 224; 0 = the model's native size */
    double pixel_mean[3], pixel_std[3]; /* 0.5, 0.5 */
    double flip_prob;            /* INPUT.PROB 0.5 */
    double erase_prob;           /* INPUT.RE_PROB 0.5 */
    int padding;                 /* INPUT.PADDING 10 */
    int augment;                 /* 1: the official training augmentation (flip_prob, erase_prob
                                  * and padding among it); 0: none, the evaluation transform */

    /* solver (SOLVER.*) */
    double base_lr;              /* 5e-5, AdamW "other" group */
    double clip_lr_factor;       /* 0.1: AdamW "clip" (TSS) group lr = base_lr * this */
    double weight_decay;         /* 1e-4 */
    double base_lr_sgd;          /* 1e-3, prompts */
    double weight_decay_sgd;     /* 1e-4 */
    double momentum;             /* 0.9 */
    int lr_scheduler;            /* 0: "cosine", the only schedule the official code runs */
    double warmup_lr_factor;     /* 0.01: warm-up start = base_lr * this */
    double min_lr_factor;        /* 0.002: cosine floor = base_lr * this */
    int scheduler_max_epochs;    /* 60: cosine period t_initial */
    int warmup_epochs;           /* 3 */
    int max_epochs;              /* 6 */
    int batch_size;              /* 32 */
    int eval_batch_size;         /* 512 */
    int eval_period;             /* 3 */
    int checkpoint_period;       /* 1 (official 10, never reached); 0 = no checkpoints */
    long long seed;              /* 42 */
    int log_period;              /* 500 / 1000 iterations */
    int use_ema;                 /* 1 */
    double ema_decay;            /* 0.9997 */
    int workers;                 /* 8: loader threads */
    int cache_frozen_prefix;     /* 0; 1: keep the frozen vision prefix of every training image
                                  * across epochs (needs augment = 0; docs/performance.md) */
    int cache_frozen_prefix_mb;  /* 4096: the most it holds, MiB */
    int bf16;                    /* 0; 1: the frozen vision tower's products in bf16
                                  * (clip_freeze_for_training; docs/performance.md) */

    /* data and files */
    char model[RAM_CONFIG_MAX_STRING];          /* CLIP weights */
    char train[RAM_CONFIG_MAX_STRING];          /* training set (JSON or TSV) */
    char test_zsl[RAM_CONFIG_MAX_STRING];       /* ZSL test set */
    char test_gzsl[RAM_CONFIG_MAX_STRING];      /* GZSL test set */
    char seen_classes[RAM_CONFIG_MAX_STRING];   /* "" = sorted classes of `train` */
    char unseen_classes[RAM_CONFIG_MAX_STRING]; /* "" = sorted classes of `test_zsl` */
    char image_root[RAM_CONFIG_MAX_STRING];     /* joined to relative image paths */
    char path_map[RAM_CONFIG_MAX_STRING];       /* "OLD=NEW" image path prefix map */
    dataset_mode dataset_mode;                  /* strict (default) | official */
    char output_dir[RAM_CONFIG_MAX_STRING];     /* logs and checkpoints */

    /* private: how many keys were applied since the last preset */
    int n_applied;
} ram_train_config;

/* Fills every key with the preset's values (spec §1). */
void ram_train_config_init(ram_train_config *cfg, ram_preset preset);

/* Sets one key from its text form. `origin` says where the value came from
 * ("run.cfg:7", "--set") and starts every error message. key "preset"
 * re-initialises everything and is refused once another key was applied. */
ramc_status ram_train_config_apply(ram_train_config *cfg, const char *key, const char *value,
                                   const char *origin);

/* 1 if `key` is a setting ram_train_config_apply knows. */
int ram_train_config_has_key(const char *key);

/* "key=value" (a --set argument): split at the first '=', both sides
 * trimmed, the value parsed as in a file (quotes, lists, comments). */
ramc_status ram_train_config_set(ram_train_config *cfg, const char *assignment,
                                 const char *origin);

/* Parses config text / a config file on top of the current values. `name`
 * (the file name) prefixes messages as "name:line". */
ramc_status ram_train_config_parse(ram_train_config *cfg, const char *text, size_t len,
                                   const char *name);
ramc_status ram_train_config_load(ram_train_config *cfg, const char *path);

/* Checks relations between keys (warm-up shorter than the cosine period,
 * ...) once everything is applied. `what` prefixes the message. */
ramc_status ram_train_config_validate(const ram_train_config *cfg, const char *what);

/* The effective settings as config text (preset first, then every key);
 * *out is NUL-terminated and freed by the caller. */
ramc_status ram_train_config_dump(const ram_train_config *cfg, char **out);

/* The model part for ram_adapter_create(): layer lists resolved against the
 * model's depth (negative indices count from the end), sorted and checked. */
ramc_status ram_train_config_model(const ram_train_config *cfg, const ramc_clip_info *info,
                                   ram_config *out);

/* Key table, for --help and docs: i in [0, count). */
int ram_train_config_key_count(void);
const char *ram_train_config_key_name(int i);
const char *ram_train_config_key_help(int i);

#endif
