/* Training configuration: presets, key table, parser and dump (config.h). */
#include "train/config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "io/file.h"

/* ------------------------------------------------------------- key table */

typedef enum {
    K_INT,     /* int, bounds lo..hi */
    K_I64,     /* long long, bounds lo..hi */
    K_REAL,    /* double, bounds lo..hi; lo_open/hi_open exclude the bound */
    K_BOOL,    /* int 0/1 */
    K_NOT_BOOL, /* int 0/1 holding the opposite of the key: "use_saa = true" is
                 * variant.no_saa = 0 (the variant names what it takes away) */
    K_STRING,  /* char[RAM_CONFIG_MAX_STRING] */
    K_LAYERS,  /* int list + its count at count_off */
    K_VEC3,    /* double[3], bounds per element */
    K_ENUM     /* int (or enum) index into names */
} key_kind;

typedef struct {
    const char *name;
    key_kind kind;
    size_t off, count_off;
    double lo, hi;
    int lo_open, hi_open;
    const char *const *names; /* K_ENUM choices, NULL-terminated */
    const char *help;
} key_def;

static const char *const sinkhorn_names[] = {"coupled", "per_image", "log_domain", NULL};
static const char *const matching_names[] = {"kcot", "avgpool", "reweight", "ot", NULL};
static const char *const loss_names[] = {"mmc", "asl", "rank_hinge", "lsep", NULL};
static const char *const mode_names[] = {"strict", "official", NULL};
static const char *const scheduler_names[] = {"cosine", NULL};

#define OFF(f) offsetof(ram_train_config, f)
#define INT(n, f, lo, hi, h) {n, K_INT, OFF(f), 0, lo, hi, 0, 0, NULL, h}
#define I64(n, f, lo, hi, h) {n, K_I64, OFF(f), 0, lo, hi, 0, 0, NULL, h}
#define REAL(n, f, lo, hi, lo_open, hi_open, h) {n, K_REAL, OFF(f), 0, lo, hi, lo_open, hi_open, NULL, h}
#define BOOL(n, f, h) {n, K_BOOL, OFF(f), 0, 0, 1, 0, 0, NULL, h}
#define NOT_BOOL(n, f, h) {n, K_NOT_BOOL, OFF(f), 0, 0, 1, 0, 0, NULL, h}
#define STR(n, f, h) {n, K_STRING, OFF(f), 0, 0, 0, 0, 0, NULL, h}
#define ENUM(n, f, names, h) {n, K_ENUM, OFF(f), 0, 0, 0, 0, 0, names, h}

/* Order = dump order = docs order. Bounds keep values the trainer can use;
 * they are deliberately wide (an odd but meaningful value is the user's
 * call), but exclude what would crash or divide by zero. */
static const key_def keys[] = {
    {"depth_vision", K_LAYERS, OFF(depth_vision), OFF(n_depth_vision), -RAM_MAX_LAYERS,
     RAM_MAX_LAYERS - 1, 0, 0, NULL,
     "vision blocks with visual prompts + TSS (MODEL.DEPTH_VISION); negative counts from the end"},
    {"depth_text", K_LAYERS, OFF(depth_text), OFF(n_depth_text), -RAM_MAX_LAYERS,
     RAM_MAX_LAYERS - 1, 0, 0, NULL, "text blocks with deep prompts (MODEL.DEPTH_TEXT)"},
    INT("vision_prompts", vision_prompts, 1, 256, "visual prompt tokens (MODEL.VISION_ADAPT)"),
    INT("text_prompts", text_prompts, 1, 64, "text prompt tokens (MODEL.TEXT_CTX)"),
    INT("kernel_size", kernel_size, 1, 15, "TSS gate conv kernel, odd (MODEL.KERNEL_SIZE)"),
    REAL("temperature", temperature, 0, 1e3, 1, 0, "initial local temperature tau_l (MODEL.TEMPERATURE)"),
    REAL("ot_reg", ot_reg, 0, 1e3, 1, 0, "Sinkhorn entropy epsilon (MODEL.OT_REG)"),
    REAL("ot_regsc", ot_regsc, 0, 1e3, 0, 0, "teacher weight lambda (MODEL.OT_REGSC)"),
    BOOL("use_teacher", use_teacher, "add the frozen teacher's plan to the training cost"),
    REAL("teacher_sharpen", teacher_sharpen, 0, 1e6, 1, 0, "sharpening factor of the teacher distribution"),
    ENUM("sinkhorn", sinkhorn, sinkhorn_names,
         "Sinkhorn stopping: coupled (official, batch-coupled), per_image, log_domain"),
    ENUM("matching", variant.matching, matching_names,
         "local aggregation: kcot (RAM), avgpool, reweight or ot (plain OT: uniform source, no "
         "teacher; paper Table 5 ablation)"),
    NOT_BOOL("use_lpd", variant.uniform_source,
             "LPD source marginal; 0 = uniform (with use_teacher = 0: plain OT)"),
    NOT_BOOL("use_saa", variant.no_saa, "SAA side stream; 0 = the side stream follows the main stream"),
    NOT_BOOL("use_tss", variant.no_tss, "TSS adapters in the adapted blocks"),
    ENUM("loss", loss, loss_names, "training loss on both heads: mmc (RAM), asl, rank_hinge, lsep"),
    INT("image_size", image_size, 0, 8192, "input size (INPUT.SIZE_TRAIN/TEST); 0 = the model's own"),
    {"pixel_mean", K_VEC3, OFF(pixel_mean), 0, -1e3, 1e3, 0, 0, NULL, "per-channel mean (INPUT.PIXEL_MEAN)"},
    {"pixel_std", K_VEC3, OFF(pixel_std), 0, 0, 1e3, 1, 0, NULL, "per-channel std (INPUT.PIXEL_STD)"},
    REAL("flip_prob", flip_prob, 0, 1, 0, 0, "random horizontal flip probability (INPUT.PROB)"),
    REAL("erase_prob", erase_prob, 0, 1, 0, 0, "random erasing probability (INPUT.RE_PROB)"),
    INT("padding", padding, 0, 4096, "pad before the random crop (INPUT.PADDING)"),
    BOOL("augment", augment,
         "training augmentation (1, official); 0 = none: the evaluation transform, every epoch "
         "the same pixels (flip_prob, erase_prob and padding then unused)"),
    REAL("base_lr", base_lr, 0, 10, 0, 0, "AdamW peak lr, temperatures (SOLVER.BASE_LR)"),
    REAL("clip_lr_factor", clip_lr_factor, 0, 1e3, 0, 0, "TSS group lr = base_lr * this"),
    REAL("weight_decay", weight_decay, 0, 10, 0, 0, "AdamW decoupled weight decay (SOLVER.WEIGHT_DECAY)"),
    REAL("base_lr_sgd", base_lr_sgd, 0, 10, 0, 0, "SGD peak lr, prompts (SOLVER.BASE_LR_SGD)"),
    REAL("weight_decay_sgd", weight_decay_sgd, 0, 10, 0, 0, "SGD L2 weight decay (SOLVER.WEIGHT_DECAY_SGD)"),
    REAL("momentum", momentum, 0, 1, 0, 1, "SGD momentum (SOLVER.MOMENTUM)"),
    ENUM("lr_scheduler", lr_scheduler, scheduler_names, "learning-rate schedule (SOLVER.LR_SCHEDULER)"),
    REAL("warmup_lr_factor", warmup_lr_factor, 0, 1e3, 0, 0, "warm-up start lr = base_lr * this, all groups"),
    REAL("min_lr_factor", min_lr_factor, 0, 1e3, 0, 0, "cosine floor = base_lr * this, all groups"),
    INT("scheduler_max_epochs", scheduler_max_epochs, 1, 1000000, "cosine period t_initial (SOLVER.SCHEDULER_MAX_EPOCHS)"),
    INT("warmup_epochs", warmup_epochs, 0, 1000000, "linear warm-up epochs (SOLVER.WARMUP_EPOCHS)"),
    INT("max_epochs", max_epochs, 1, 1000000, "training epochs (SOLVER.MAX_EPOCHS)"),
    INT("batch_size", batch_size, 1, 4096, "training batch (SOLVER.IMS_PER_BATCH)"),
    INT("eval_batch_size", eval_batch_size, 1, 4096, "evaluation batch (TEST.IMS_PER_BATCH); matters for coupled Sinkhorn"),
    INT("eval_period", eval_period, 0, 1000000, "evaluate every N epochs (and after the last); 0 = only after the last"),
    INT("checkpoint_period", checkpoint_period, 0, 1000000, "save the adapter every N epochs; 0 = never (official 10)"),
    I64("seed", seed, 0, 9007199254740992.0, "random seed (SOLVER.SEED)"),
    INT("log_period", log_period, 0, 100000000, "log every N iterations; 0 = per epoch only (SOLVER.LOG_PERIOD)"),
    BOOL("use_ema", use_ema, "evaluate an exponential moving average too (MODEL.USE_EMA)"),
    REAL("ema_decay", ema_decay, 0, 1, 0, 1, "EMA decay (MODEL.EMA_DECAY)"),
    INT("workers", workers, 0, 1024, "image loading threads; 0 = one per CPU"),
    BOOL("cache_frozen_prefix", cache_frozen_prefix,
         "keep the frozen vision prefix (blocks before the first adapted one, and the teacher's "
         "features) of every training image across epochs; needs augment = 0"),
    INT("cache_frozen_prefix_mb", cache_frozen_prefix_mb, 1, 1 << 30,
        "most MiB cache_frozen_prefix holds; images beyond it are recomputed every epoch"),
    BOOL("bf16", bf16,
         "the frozen CLIP vision tower's products in bf16 with float32 sums (forwards and the "
         "input gradients through it); adapter, prompts, text tower and gradients stay float32"),
    STR("model", model, "CLIP weights (safetensors)"),
    STR("train", train, "training set (official JSON or TSV)"),
    STR("test_zsl", test_zsl, "ZSL test set"),
    STR("test_gzsl", test_gzsl, "GZSL test set (its own classes field is ignored)"),
    STR("seen_classes", seen_classes, "seen class list; empty = sorted classes of train"),
    STR("unseen_classes", unseen_classes, "unseen class list; empty = sorted classes of test_zsl"),
    STR("image_root", image_root, "folder joined to relative image paths; empty = each file's folder"),
    STR("path_map", path_map, "OLD=NEW: replace a leading OLD of every image path by NEW"),
    ENUM("dataset_mode", dataset_mode, mode_names,
         "strict: unknown/empty labels are errors; official: dropped/kept as the official loader"),
    STR("output_dir", output_dir, "folder for logs and checkpoints"),
};
#define N_KEYS ((int)(sizeof keys / sizeof keys[0]))

/* K_ENUM fields are stored through an int pointer */
_Static_assert(sizeof(sinkhorn_mode) == sizeof(int), "sinkhorn_mode must be int-sized");
_Static_assert(sizeof(dataset_mode) == sizeof(int), "dataset_mode must be int-sized");
_Static_assert(sizeof(ramc_matching) == sizeof(int), "ramc_matching must be int-sized");

int ram_train_config_key_count(void) { return N_KEYS + 1; }

/* Index 0 is "preset", handled apart from the table because it resets. */
const char *ram_train_config_key_name(int i) {
    if (i == 0) return "preset";
    return i > 0 && i <= N_KEYS ? keys[i - 1].name : NULL;
}

const char *ram_train_config_key_help(int i) {
    if (i == 0) return "coco or nus: the official configuration; must come first";
    return i > 0 && i <= N_KEYS ? keys[i - 1].help : NULL;
}

/* ---------------------------------------------------------------- preset */

void ram_train_config_init(ram_train_config *cfg, ram_preset preset) {
    /* zero everything (strings, padding) so that equal settings are equal bytes */
    memset(cfg, 0, sizeof *cfg);
    int nus = preset == RAM_PRESET_NUS;
    cfg->preset = nus ? RAM_PRESET_NUS : RAM_PRESET_COCO;
    /* Counted from the last block, so a preset fits any depth: on the 12-block
     * ViT-B/16 these are the official [9,10,11] (vision, both presets) and
     * [9,10,11] (COCO) or [6..11] (NUS) for the text prompts (spec §1). */
    cfg->n_depth_vision = 3;
    for (int i = 0; i < 3; i++) cfg->depth_vision[i] = i - 3;
    cfg->n_depth_text = nus ? 6 : 3;
    for (int i = 0; i < cfg->n_depth_text; i++) cfg->depth_text[i] = i - cfg->n_depth_text;
    cfg->vision_prompts = 8;
    cfg->text_prompts = 4;
    cfg->kernel_size = 3;
    cfg->temperature = nus ? 2e-4 : 2e-3;
    cfg->ot_reg = 0.1;
    cfg->ot_regsc = 0.05;
    cfg->use_teacher = 1;
    cfg->teacher_sharpen = 20;
    cfg->sinkhorn = SINKHORN_BATCH_COUPLED;
    cfg->variant = (ramc_variant){RAMC_MATCH_KCOT, 0, 0, 0}; /* RAM as published */
    cfg->loss = 0;
    cfg->image_size = 0; /* the model's own: 224 for ViT-B/16, as the official configs */
    for (int c = 0; c < 3; c++) cfg->pixel_mean[c] = 0.5, cfg->pixel_std[c] = 0.5;
    cfg->flip_prob = 0.5;
    cfg->erase_prob = 0.5;
    cfg->padding = 10;
    cfg->augment = 1;
    cfg->base_lr = 5e-5;
    cfg->clip_lr_factor = 0.1;
    cfg->weight_decay = 1e-4;
    cfg->base_lr_sgd = 1e-3;
    cfg->weight_decay_sgd = 1e-4;
    cfg->momentum = 0.9;
    cfg->lr_scheduler = 0;
    cfg->warmup_lr_factor = 0.01;
    cfg->min_lr_factor = 0.002;
    cfg->scheduler_max_epochs = 60;
    cfg->warmup_epochs = 3;
    cfg->max_epochs = 6;
    cfg->batch_size = 32;
    cfg->eval_batch_size = 512;
    cfg->eval_period = 3;
    /* the official 10 is never reached in 6 epochs; a user tool should keep
     * its work, so save every epoch */
    cfg->checkpoint_period = 1;
    cfg->seed = 42;
    cfg->log_period = nus ? 1000 : 500;
    cfg->use_ema = 1;
    cfg->ema_decay = 0.9997;
    cfg->workers = 8;
    cfg->cache_frozen_prefix = 0;
    cfg->cache_frozen_prefix_mb = 4096;
    cfg->bf16 = 0;
    cfg->dataset_mode = DATASET_STRICT;
}

/* --------------------------------------------------------- value parsing */

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Copies [s, s+n) trimmed into buf (size bufsize); 0 if it does not fit. */
static int trimmed(const char *s, size_t n, char *buf, size_t bufsize) {
    while (n && is_blank(*s)) s++, n--;
    while (n && is_blank(s[n - 1])) n--;
    if (n + 1 > bufsize) return 0;
    memcpy(buf, s, n);
    buf[n] = '\0';
    return 1;
}

/* A quoted string starting at s[0] == '"': decodes it into buf and sets
 * *end past the closing quote. Returns 0 with `why` on a problem. */
static int unquote(const char *s, char *buf, size_t bufsize, const char **end, char *why,
                   size_t why_size) {
    size_t k = 0;
    const char *p = s + 1;
    for (;; p++) {
        char c = *p;
        if (c == '\0') {
            snprintf(why, why_size, "missing closing quote");
            return 0;
        }
        if (c == '"') break;
        if (c == '\\') {
            p++;
            switch (*p) {
            case '"': c = '"'; break;
            case '\\': c = '\\'; break;
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            default:
                snprintf(why, why_size, "unknown escape '\\%c' (use \\\" \\\\ \\n \\t)",
                         *p ? *p : '0');
                return 0;
            }
        }
        if (k + 1 >= bufsize) {
            snprintf(why, why_size, "string longer than %zu bytes", bufsize - 1);
            return 0;
        }
        buf[k++] = c;
    }
    buf[k] = '\0';
    *end = p + 1;
    return 1;
}

static int parse_real(const char *s, double *out) {
    if (!*s || is_blank(*s)) return 0;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v)) return 0;
    *out = v;
    return 1;
}

static int parse_i64(const char *s, long long *out) {
    if (!*s || is_blank(*s)) return 0;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end != '\0' || errno == ERANGE) return 0;
    *out = v;
    return 1;
}

/* Splits "[a, b, c]" into its items (trimmed, written over a copy).
 * Returns the count, or -1 when it is not a bracketed list. */
static int split_list(char *s, char **items, int max_items, int *too_many) {
    size_t n = strlen(s);
    *too_many = 0;
    if (n < 2 || s[0] != '[' || s[n - 1] != ']') return -1;
    s[n - 1] = '\0';
    char *p = s + 1;
    char tmp[8];
    if (trimmed(p, strlen(p), tmp, sizeof tmp) && tmp[0] == '\0') return 0; /* [] */
    int count = 0;
    for (;;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        while (is_blank(*p)) p++;
        size_t len = strlen(p);
        while (len && is_blank(p[len - 1])) p[--len] = '\0';
        if (count == max_items) {
            *too_many = 1;
            return -1;
        }
        items[count++] = p;
        if (!comma) break;
        p = comma + 1;
    }
    return count;
}

static int in_bounds(const key_def *k, double v) {
    if (k->lo_open ? !(v > k->lo) : !(v >= k->lo)) return 0;
    if (k->hi_open ? !(v < k->hi) : !(v <= k->hi)) return 0;
    return 1;
}

static void bounds_text(const key_def *k, char *buf, size_t size) {
    snprintf(buf, size, "%s%g, %g%s", k->lo_open ? "(" : "[", k->lo, k->hi, k->hi_open ? ")" : "]");
}

static ramc_status set_preset(ram_train_config *cfg, const char *value, const char *origin) {
    ram_preset p;
    if (strcmp(value, "coco") == 0) p = RAM_PRESET_COCO;
    else if (strcmp(value, "nus") == 0) p = RAM_PRESET_NUS;
    else
        return ramc_error(RAMC_ERR_FORMAT, "%s: key 'preset': expected coco or nus, got '%.200s'",
                          origin, value);
    /* a preset after other keys would silently undo them */
    if (cfg->n_applied > 0)
        return ramc_error(RAMC_ERR_FORMAT,
                          "%s: key 'preset' must come before every other key (it resets them all)",
                          origin);
    ram_train_config_init(cfg, p);
    cfg->n_applied = 1;
    return RAMC_OK;
}

int ram_train_config_has_key(const char *key) {
    if (strcmp(key, "preset") == 0) return 1;
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, key) == 0) return 1;
    return 0;
}

ramc_status ram_train_config_apply(ram_train_config *cfg, const char *key, const char *value,
                                   const char *origin) {
    if (!origin) origin = "config";
    if (!key || !value)
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: missing key or value", origin);
    char v[RAM_CONFIG_MAX_STRING + 8];
    if (!trimmed(value, strlen(value), v, sizeof v))
        return ramc_error(RAMC_ERR_LIMIT, "%s: key '%.100s': value longer than %d bytes", origin,
                          key, RAM_CONFIG_MAX_STRING);
    int quoted = v[0] == '"';
    char uq[RAM_CONFIG_MAX_STRING + 8], why[300];
    if (quoted) {
        const char *end;
        if (!unquote(v, uq, RAM_CONFIG_MAX_STRING, &end, why, sizeof why))
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%.100s': %s", origin, key, why);
        if (*end != '\0')
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%.100s': text after the closing quote",
                              origin, key);
    }
    if (strcmp(key, "preset") == 0) return set_preset(cfg, quoted ? uq : v, origin);

    const key_def *k = NULL;
    for (int i = 0; i < N_KEYS; i++)
        if (strcmp(keys[i].name, key) == 0) k = &keys[i];
    if (!k) return ramc_error(RAMC_ERR_FORMAT, "%s: unknown key '%.100s'", origin, key);
    char *field = (char *)cfg + k->off;
    char b[64];
    if (v[0] == '\0' && k->kind != K_STRING)
        return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': missing value", origin, k->name);
    if (quoted && k->kind != K_STRING && k->kind != K_ENUM)
        return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': expected %s, got a quoted string",
                          origin, k->name,
                          k->kind == K_BOOL || k->kind == K_NOT_BOOL ? "true or false" : k->kind == K_LAYERS || k->kind == K_VEC3 ? "a list" : "a number");

    switch (k->kind) {
    case K_INT:
    case K_I64: {
        long long x;
        if (!parse_i64(v, &x))
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': expected an integer, got '%.200s'",
                              origin, k->name, v);
        if ((double)x < k->lo || (double)x > k->hi)
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': %lld is outside [%.0f, %.0f]",
                              origin, k->name, x, k->lo, k->hi);
        if (strcmp(k->name, "kernel_size") == 0 && x % 2 == 0)
            return ramc_error(RAMC_ERR_FORMAT, "%s: key 'kernel_size': %lld is even (must be odd "
                              "so that the conv keeps the grid size)", origin, x);
        if (k->kind == K_INT) *(int *)field = (int)x;
        else *(long long *)field = x;
        break;
    }
    case K_REAL: {
        double x;
        if (!parse_real(v, &x))
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': expected a number, got '%.200s'",
                              origin, k->name, v);
        if (!in_bounds(k, x)) {
            bounds_text(k, b, sizeof b);
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': %.200s is outside %s", origin,
                              k->name, v, b);
        }
        *(double *)field = x;
        break;
    }
    case K_BOOL:
    case K_NOT_BOOL: {
        int x;
        if (!strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on")) x = 1;
        else if (!strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") || !strcasecmp(v, "off")) x = 0;
        else
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': expected true or false, got '%.200s'",
                              origin, k->name, v);
        *(int *)field = k->kind == K_NOT_BOOL ? !x : x;
        break;
    }
    case K_STRING: {
        const char *s = quoted ? uq : v;
        size_t n = strlen(s);
        if (n >= RAM_CONFIG_MAX_STRING)
            return ramc_error(RAMC_ERR_LIMIT, "%s: key '%s': value longer than %d bytes", origin,
                              k->name, RAM_CONFIG_MAX_STRING - 1);
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 && s[i] != '\t' && s[i] != '\n')
                return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': control character 0x%02x",
                                  origin, k->name, (unsigned char)s[i]);
        memset(field, 0, RAM_CONFIG_MAX_STRING);
        memcpy(field, s, n);
        break;
    }
    case K_ENUM: {
        const char *s = quoted ? uq : v;
        int found = -1;
        for (int i = 0; k->names[i]; i++)
            if (strcmp(k->names[i], s) == 0) found = i;
        if (found < 0) {
            char choices[200] = "";
            for (int i = 0; k->names[i]; i++) {
                if (i) strncat(choices, ", ", sizeof choices - strlen(choices) - 1);
                strncat(choices, k->names[i], sizeof choices - strlen(choices) - 1);
            }
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': expected one of %s, got '%.200s'",
                              origin, k->name, choices, s);
        }
        /* enum fields are written through an int: checked below to be int-sized */
        *(int *)field = found;
        break;
    }
    case K_LAYERS:
    case K_VEC3: {
        char *items[RAM_MAX_LAYERS + 1];
        int max = k->kind == K_VEC3 ? 3 : RAM_MAX_LAYERS, too_many;
        int n = split_list(v, items, max, &too_many);
        if (too_many)
            return ramc_error(RAMC_ERR_LIMIT, "%s: key '%s': more than %d entries", origin,
                              k->name, max);
        if (k->kind == K_VEC3) {
            double x[3];
            if (n < 0) { /* one number for all three channels */
                if (!parse_real(v, &x[0]))
                    return ramc_error(RAMC_ERR_FORMAT,
                                      "%s: key '%s': expected [r, g, b] or one number, got '%.200s'",
                                      origin, k->name, v);
                x[1] = x[2] = x[0];
            } else if (n != 3) {
                return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': expected 3 numbers, got %d",
                                  origin, k->name, n);
            } else {
                for (int i = 0; i < 3; i++)
                    if (!parse_real(items[i], &x[i]))
                        return ramc_error(RAMC_ERR_FORMAT,
                                          "%s: key '%s': entry %d: expected a number, got '%.200s'",
                                          origin, k->name, i, items[i]);
            }
            for (int i = 0; i < 3; i++)
                if (!in_bounds(k, x[i])) {
                    bounds_text(k, b, sizeof b);
                    return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': entry %d (%g) is outside %s",
                                      origin, k->name, i, x[i], b);
                }
            memcpy(field, x, sizeof x);
            break;
        }
        if (n < 0)
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': expected a list like [9, 10, 11], got '%.200s'",
                              origin, k->name, value);
        if (n == 0)
            return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': the list is empty", origin, k->name);
        int layers[RAM_MAX_LAYERS];
        for (int i = 0; i < n; i++) {
            long long x;
            if (!parse_i64(items[i], &x))
                return ramc_error(RAMC_ERR_FORMAT,
                                  "%s: key '%s': entry %d: expected an integer, got '%.200s'",
                                  origin, k->name, i, items[i]);
            if (x < k->lo || x > k->hi)
                return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': entry %d: %lld is outside [%.0f, %.0f]",
                                  origin, k->name, i, x, k->lo, k->hi);
            for (int j = 0; j < i; j++)
                if (layers[j] == x)
                    return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': block %lld listed twice",
                                      origin, k->name, x);
            layers[i] = (int)x;
        }
        memset(field, 0, RAM_MAX_LAYERS * sizeof(int));
        memcpy(field, layers, (size_t)n * sizeof(int));
        *(int *)((char *)cfg + k->count_off) = n;
        break;
    }
    }
    cfg->n_applied++;
    return RAMC_OK;
}

/* Finds where a value ends: at a '#' outside quotes. Sets *len. */
static int value_extent(const char *s, size_t *len, char *why, size_t why_size) {
    const char *p = s;
    while (is_blank(*p)) p++;
    if (*p == '"') {
        char tmp[RAM_CONFIG_MAX_STRING + 8];
        const char *end;
        if (!unquote(p, tmp, RAM_CONFIG_MAX_STRING, &end, why, why_size)) return 0;
        const char *q = end;
        while (is_blank(*q)) q++;
        if (*q != '\0' && *q != '#') {
            snprintf(why, why_size, "text after the closing quote");
            return 0;
        }
        *len = (size_t)(end - s);
        return 1;
    }
    const char *hash = strchr(s, '#');
    *len = hash ? (size_t)(hash - s) : strlen(s);
    return 1;
}

static int key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* One "key = value" (file line or --set); origin names it in messages. */
static ramc_status apply_assignment(ram_train_config *cfg, const char *s, const char *origin,
                                    char *key_out, size_t key_size) {
    const char *eq = strchr(s, '=');
    if (!eq)
        return ramc_error(RAMC_ERR_FORMAT, "%s: expected 'key = value', got '%.200s'", origin, s);
    char key[128];
    if (!trimmed(s, (size_t)(eq - s), key, sizeof key))
        return ramc_error(RAMC_ERR_FORMAT, "%s: key too long", origin);
    if (!key[0]) return ramc_error(RAMC_ERR_FORMAT, "%s: missing key before '='", origin);
    for (const char *p = key; *p; p++)
        if (!key_char(*p))
            return ramc_error(RAMC_ERR_FORMAT, "%s: bad key '%.100s'", origin, key);
    size_t vlen;
    char why[300];
    if (!value_extent(eq + 1, &vlen, why, sizeof why))
        return ramc_error(RAMC_ERR_FORMAT, "%s: key '%s': %s", origin, key, why);
    char *value = malloc(vlen + 1);
    if (!value) return ramc_error(RAMC_ERR_NOMEM, "out of memory parsing %s", origin);
    memcpy(value, eq + 1, vlen);
    value[vlen] = '\0';
    ramc_status st = ram_train_config_apply(cfg, key, value, origin);
    free(value);
    if (key_out) snprintf(key_out, key_size, "%s", key);
    return st;
}

ramc_status ram_train_config_set(ram_train_config *cfg, const char *assignment,
                                 const char *origin) {
    if (!origin) origin = "--set";
    if (!assignment) return ramc_error(RAMC_ERR_INVALID_ARG, "%s: missing key=value", origin);
    if (strlen(assignment) > RAM_CONFIG_MAX_LINE)
        return ramc_error(RAMC_ERR_LIMIT, "%s: longer than %d bytes", origin, RAM_CONFIG_MAX_LINE);
    return apply_assignment(cfg, assignment, origin, NULL, 0);
}

ramc_status ram_train_config_parse(ram_train_config *cfg, const char *text, size_t len,
                                   const char *name) {
    if (!name) name = "config";
    if (memchr(text, '\0', len)) return ramc_error(RAMC_ERR_FORMAT, "%s: NUL byte", name);
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) text += 3, len -= 3;
    int first_line[N_KEYS + 1]; /* per key (0 = preset): line it was set on */
    memset(first_line, 0, sizeof first_line);
    char *line = malloc(RAM_CONFIG_MAX_LINE + 1);
    if (!line) return ramc_error(RAMC_ERR_NOMEM, "out of memory parsing %s", name);
    const char *p = text, *end = text + len;
    int lineno = 0;
    ramc_status st = RAMC_OK;
    while (p < end && st == RAMC_OK) {
        lineno++;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = (size_t)((nl ? nl : end) - p);
        const char *s = p;
        p = nl ? nl + 1 : end;
        char origin[300];
        snprintf(origin, sizeof origin, "%.250s:%d", name, lineno);
        if (n > RAM_CONFIG_MAX_LINE) {
            st = ramc_error(RAMC_ERR_LIMIT, "%s: line longer than %d bytes", origin,
                            RAM_CONFIG_MAX_LINE);
            break;
        }
        memcpy(line, s, n);
        line[n] = '\0';
        const char *q = line;
        while (is_blank(*q)) q++;
        if (*q == '\0' || *q == '#') continue;
        /* a key given twice in one file is almost always an editing slip */
        char key[128] = "";
        const char *eq = strchr(q, '=');
        if (eq && trimmed(q, (size_t)(eq - q), key, sizeof key)) {
            for (int i = 0; i <= N_KEYS; i++) {
                if (strcmp(ram_train_config_key_name(i), key) != 0) continue;
                if (first_line[i]) {
                    st = ramc_error(RAMC_ERR_FORMAT, "%s: key '%s' set twice (first on line %d)",
                                    origin, key, first_line[i]);
                } else {
                    first_line[i] = lineno;
                }
            }
            if (st != RAMC_OK) break;
        }
        st = apply_assignment(cfg, q, origin, NULL, 0);
    }
    free(line);
    return st;
}

ramc_status ram_train_config_load(ram_train_config *cfg, const char *path) {
    char *text;
    size_t len;
    ramc_status st = read_whole_file(path, (size_t)1 << 24, &text, &len);
    if (st != RAMC_OK) return st;
    st = ram_train_config_parse(cfg, text, len, path);
    free(text);
    return st;
}

ramc_status ram_train_config_validate(const ram_train_config *cfg, const char *what) {
    if (!what) what = "config";
    /* the warm-up formula and the cosine both assume warm-up ends inside the period */
    if (cfg->warmup_epochs >= cfg->scheduler_max_epochs)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "%s: warmup_epochs (%d) must be smaller than scheduler_max_epochs (%d)",
                          what, cfg->warmup_epochs, cfg->scheduler_max_epochs);
    if (cfg->n_depth_vision < 1 || cfg->n_depth_text < 1)
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: depth_vision and depth_text need a block",
                          what);
    if (cfg->kernel_size % 2 == 0)
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: kernel_size %d is even", what,
                          cfg->kernel_size);
    for (int c = 0; c < 3; c++)
        if (!(cfg->pixel_std[c] > 0))
            return ramc_error(RAMC_ERR_INVALID_ARG, "%s: pixel_std must be positive", what);
    if (cfg->cache_frozen_prefix && cfg->augment)
        return ramc_error(RAMC_ERR_INVALID_ARG,
                          "%s: cache_frozen_prefix = 1 needs augment = 0: augmented images differ "
                          "from epoch to epoch, so the frozen blocks' activations cannot be kept "
                          "(set augment = 0 for the augmentation-free regime, or drop "
                          "cache_frozen_prefix)",
                          what);
    if (cfg->path_map[0] && (cfg->path_map[0] == '=' || !strchr(cfg->path_map, '=')))
        return ramc_error(RAMC_ERR_INVALID_ARG, "%s: path_map '%.200s': expected OLD=NEW", what,
                          cfg->path_map);
    return RAMC_OK;
}

/* ------------------------------------------------------------------- dump */

typedef struct {
    char *buf;
    size_t len, cap;
    int failed;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
    if (b->failed) return;
    if (b->len + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (b->len + n + 1 > nc) nc *= 2;
        char *p = realloc(b->buf, nc);
        if (!p) {
            b->failed = 1;
            return;
        }
        b->buf = p;
        b->cap = nc;
    }
    memcpy(b->buf + b->len, s, n);
    b->len += n;
    b->buf[b->len] = '\0';
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* The shortest %g form that reads back as exactly the same double, so the
 * dump is readable (5e-05, not 5.0000000000000002e-05) and round-trips. */
static void sb_real(sbuf *b, double x) {
    char tmp[64];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, x);
        if (strtod(tmp, NULL) == x) break;
    }
    sb_str(b, tmp);
}

ramc_status ram_train_config_dump(const ram_train_config *cfg, char **out) {
    *out = NULL;
    sbuf b = {0};
    sb_str(&b, "# ramc training configuration (ramc train --config FILE)\n");
    sb_str(&b, cfg->preset == RAM_PRESET_NUS ? "preset = nus\n" : "preset = coco\n");
    char tmp[64];
    for (int i = 0; i < N_KEYS; i++) {
        const key_def *k = &keys[i];
        const char *field = (const char *)cfg + k->off;
        sb_str(&b, k->name);
        sb_str(&b, " = ");
        switch (k->kind) {
        case K_INT: snprintf(tmp, sizeof tmp, "%d", *(const int *)field); sb_str(&b, tmp); break;
        case K_I64: snprintf(tmp, sizeof tmp, "%lld", *(const long long *)field); sb_str(&b, tmp); break;
        case K_REAL: sb_real(&b, *(const double *)field); break;
        case K_BOOL: sb_str(&b, *(const int *)field ? "true" : "false"); break;
        case K_NOT_BOOL: sb_str(&b, *(const int *)field ? "false" : "true"); break;
        case K_ENUM: {
            int v = *(const int *)field, n = 0;
            while (k->names[n]) n++;
            sb_str(&b, v >= 0 && v < n ? k->names[v] : "?");
            break;
        }
        case K_STRING:
            sb_str(&b, "\"");
            for (const char *p = field; *p; p++) {
                if (*p == '"') sb_str(&b, "\\\"");
                else if (*p == '\\') sb_str(&b, "\\\\");
                else if (*p == '\n') sb_str(&b, "\\n");
                else if (*p == '\t') sb_str(&b, "\\t");
                else sb_put(&b, p, 1);
            }
            sb_str(&b, "\"");
            break;
        case K_LAYERS: {
            int n = *(const int *)((const char *)cfg + k->count_off);
            sb_str(&b, "[");
            for (int j = 0; j < n; j++) {
                snprintf(tmp, sizeof tmp, j ? ", %d" : "%d", ((const int *)field)[j]);
                sb_str(&b, tmp);
            }
            sb_str(&b, "]");
            break;
        }
        case K_VEC3:
            sb_str(&b, "[");
            for (int j = 0; j < 3; j++) {
                if (j) sb_str(&b, ", ");
                sb_real(&b, ((const double *)field)[j]);
            }
            sb_str(&b, "]");
            break;
        }
        sb_str(&b, "\n");
    }
    if (b.failed) {
        free(b.buf);
        return ramc_error(RAMC_ERR_NOMEM, "out of memory writing the configuration");
    }
    *out = b.buf;
    return RAMC_OK;
}

/* ------------------------------------------------------------ model part */

static int int_cmp(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

static ramc_status resolve_layers(const int *in, int n, int depth, const char *key, int *out) {
    for (int i = 0; i < n; i++) {
        int l = in[i] < 0 ? depth + in[i] : in[i];
        if (l < 0 || l >= depth)
            return ramc_error(RAMC_ERR_MISMATCH, "%s: block %d does not exist in a %d-block model",
                              key, in[i], depth);
        out[i] = l;
    }
    qsort(out, (size_t)n, sizeof *out, int_cmp);
    for (int i = 1; i < n; i++)
        if (out[i] == out[i - 1])
            return ramc_error(RAMC_ERR_MISMATCH, "%s: block %d is listed twice (counting from the end)",
                              key, out[i]);
    return RAMC_OK;
}

ramc_status ram_train_config_model(const ram_train_config *cfg, const ramc_clip_info *info,
                                   ram_config *out) {
    memset(out, 0, sizeof *out);
    ramc_status st = resolve_layers(cfg->depth_vision, cfg->n_depth_vision, info->vision_layers,
                                    "depth_vision", out->vision_layers);
    if (st != RAMC_OK) return st;
    st = resolve_layers(cfg->depth_text, cfg->n_depth_text, info->text_layers, "depth_text",
                        out->text_layers);
    if (st != RAMC_OK) return st;
    out->n_vision_adapted = cfg->n_depth_vision;
    out->n_text_prompted = cfg->n_depth_text;
    out->n_vis_prompts = cfg->vision_prompts;
    out->n_txt_prompts = cfg->text_prompts;
    out->gate_kernel = cfg->kernel_size;
    out->temperature_loc = (float)cfg->temperature;
    return RAMC_OK;
}
