/* Optimiser groups, update arithmetic, learning-rate schedule and EMA
 * (spec §7.4, §7.5, §7.7), on the tiny golden CLIP's COCO-style adapter. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "model/clip.h"
#include "ram/ram.h"
#include "test.h"
#include "train/ema.h"
#include "train/optim.h"
#include "train/solver.h"

#define WEIGHTS RAMC_GOLDEN_DIR "/tiny-s0/weights.safetensors"

static ramc_clip *load_clip(void) {
    ramc_clip_params p = ramc_clip_default_params();
    p.vision_heads = 2;
    p.text_heads = 2;
    ramc_clip *m = NULL;
    CHECK(ramc_clip_load(WEIGHTS, &p, &m) == RAMC_OK && m, "load %s: %s", WEIGHTS,
          ramc_last_error());
    return m;
}

static ram_adapter *new_adapter(const ramc_clip *clip, int with_grads) {
    ram_config cfg = ram_config_preset(RAM_PRESET_COCO, &clip->info);
    ram_adapter *a = NULL;
    CHECK(ram_adapter_create(clip, &cfg, 7, with_grads, &a) == RAMC_OK && a, "create: %s",
          ramc_last_error());
    return a;
}

static void test_group_names(void) {
    CHECK(ram_optim_group_of("clip_model.visual.transformer.resblocks.3.adapt_embeds") ==
              RAM_GROUP_SGD, "visual prompts -> SGD (\"embeds\" wins over \"clip\")");
    CHECK(ram_optim_group_of("clip_model.transformer.resblocks.1.deep_embeds") == RAM_GROUP_SGD,
          "deep text prompts -> SGD");
    CHECK(ram_optim_group_of("clip_model.visual.transformer.resblocks.3.conv_adapter."
                             "conv_adapter_layers1.0.weight") == RAM_GROUP_ADAMW_CLIP,
          "TSS conv -> AdamW 0");
    CHECK(ram_optim_group_of("clip_model.visual.transformer.resblocks.3.conv_adapter."
                             "adapter_norm_kv.bias") == RAM_GROUP_ADAMW_CLIP,
          "TSS LayerNorm -> AdamW 0");
    CHECK(ram_optim_group_of("temperature") == RAM_GROUP_ADAMW_OTHER, "temperature -> AdamW 1");
    CHECK(ram_optim_group_of("temperature_loc") == RAM_GROUP_ADAMW_OTHER,
          "temperature_loc -> AdamW 1");
}

static void test_groups_on_adapter(const ramc_clip *clip) {
    ram_adapter *a = new_adapter(clip, 1);
    ram_optimizer *opt = NULL;
    CHECK(optimizer_create(a, NULL, &opt) == RAMC_OK && opt, "optimizer_create: %s",
          ramc_last_error());
    if (!a || !opt) goto out;
    int count[RAM_N_GROUPS] = {0}, trainable = 0;
    for (int i = 0; i < a->n_params; i++) trainable += a->params[i].trainable;
    for (int k = 0; k < opt->n_slots; k++) {
        const ram_optim_slot *s = &opt->slots[k];
        count[s->group]++;
        CHECK(a->params[s->param].trainable, "%s: BN buffer in the optimiser", s->name);
        CHECK((s->group == RAM_GROUP_SGD) == (s->buf != NULL) &&
                  (s->group == RAM_GROUP_SGD) == (s->m == NULL),
              "%s: state kind", s->name);
        if (s->group == RAM_GROUP_SGD) CHECK(strstr(s->name, "embeds") != NULL, "%s", s->name);
        if (s->group == RAM_GROUP_ADAMW_CLIP)
            CHECK(strstr(s->name, "conv_adapter") != NULL, "%s", s->name);
    }
    /* tiny: 4 vision and 4 text blocks, COCO adapts the last 3 of each:
     * SGD 3 adapt_embeds + 3 deep_embeds; AdamW 0 14 tensors per TSS
     * (2 convs, 2x BN weight+bias, gate, final, 3 LNs x 2); AdamW 1 the two temperatures. */
    CHECK(opt->n_slots == trainable, "%d slots, %d trainable", opt->n_slots, trainable);
    CHECK(count[RAM_GROUP_SGD] == 6, "SGD has %d tensors", count[RAM_GROUP_SGD]);
    CHECK(count[RAM_GROUP_ADAMW_CLIP] == 42, "AdamW 0 has %d tensors", count[RAM_GROUP_ADAMW_CLIP]);
    CHECK(count[RAM_GROUP_ADAMW_OTHER] == 2, "AdamW 1 has %d tensors", count[RAM_GROUP_ADAMW_OTHER]);

    /* An adapter without gradient buffers cannot be optimised. */
    ram_adapter *nog = new_adapter(clip, 0);
    ram_optimizer *o2 = NULL;
    CHECK(nog && optimizer_create(nog, NULL, &o2) == RAMC_ERR_INVALID_ARG && !o2,
          "no grads accepted");
    ram_adapter_free(nog);
out:
    optimizer_free(opt);
    ram_adapter_free(a);
}

/* spec §7.5: the lrs in use during epochs 1..6 after scheduler.step(epoch),
 * to 7 significant digits. */
static void test_lr_table(const ramc_clip *clip) {
    static const char *table[6][3] = {
        /* AdamW 0 (adapters), AdamW 1 (temperatures), SGD (prompts) */
        {"2.000000e-06", "1.700000e-05", "3.336667e-04"},
        {"3.500000e-06", "3.350000e-05", "6.668333e-04"},
        {"4.969836e-06", "4.969282e-05", "9.938448e-04"},
        {"4.946462e-06", "4.945478e-05", "9.890749e-04"},
        {"4.916518e-06", "4.914985e-05", "9.829646e-04"},
        {"4.880088e-06", "4.877886e-05", "9.755307e-04"},
    };
    ram_adapter *a = new_adapter(clip, 1);
    ram_optimizer *opt = NULL;
    CHECK(a && optimizer_create(a, NULL, &opt) == RAMC_OK, "create: %s", ramc_last_error());
    if (!opt) goto out;
    /* The scheduler's constructor sets every group, SGD included, to 0.01 * BASE_LR. */
    for (int g = 0; g < RAM_N_GROUPS; g++) CHECK_CLOSE(opt->lr[g], 5e-7, 1e-15, "lr at construction");
    for (int e = 1; e <= 6; e++) {
        optimizer_set_epoch(opt, e);
        for (int g = 0; g < RAM_N_GROUPS; g++) {
            char got[32];
            snprintf(got, sizeof got, "%.6e", opt->lr[g]);
            CHECK(!strcmp(got, table[e - 1][g]), "epoch %d group %s: lr %s, want %s", e,
                  ram_group_name((ram_group)g), got, table[e - 1][g]);
        }
    }
    /* Past t_initial = 60 the floor 0.002 * BASE_LR applies to every group. */
    optimizer_set_epoch(opt, 60);
    for (int g = 0; g < RAM_N_GROUPS; g++) CHECK_CLOSE(opt->lr[g], 1e-7, 1e-15, "lr floor");
out:
    optimizer_free(opt);
    ram_adapter_free(a);
}

/* Options with round numbers: no warm-up and lr_min 0, so at epoch 0 every
 * group runs at its peak lr: AdamW 1 0.1, AdamW 0 0.01, SGD 0.1; wd 0.01. */
static ram_optim_options round_options(void) {
    ram_optim_options o = ram_optim_default_options();
    o.base_lr = 0.1;
    o.clip_lr_scale = 0.1;
    o.weight_decay = 0.01;
    o.base_lr_sgd = 0.1;
    o.weight_decay_sgd = 0.01;
    o.warmup_epochs = 0;
    o.warmup_lr_init = 0;
    o.lr_min = 0;
    return o;
}

static void fill(ram_adapter *a, float value, float grad) {
    for (int i = 0; i < a->n_params; i++) {
        ram_param *p = &a->params[i];
        for (int64_t k = 0; k < p->numel; k++) {
            p->data[k] = value;
            if (p->grad) p->grad[k] = grad;
        }
    }
}

static void set_grads(ram_adapter *a, float grad) {
    for (int i = 0; i < a->n_params; i++)
        for (int64_t k = 0; a->params[i].grad && k < a->params[i].numel; k++)
            a->params[i].grad[k] = grad;
}

static void test_hand_steps(const ramc_clip *clip) {
    ram_adapter *a = new_adapter(clip, 1);
    ram_optim_options o = round_options();
    ram_optimizer *opt = NULL;
    CHECK(a && optimizer_create(a, &o, &opt) == RAMC_OK, "create: %s", ramc_last_error());
    if (!opt) goto out;
    CHECK(opt->lr[RAM_GROUP_ADAMW_OTHER] == 0.1 && opt->lr[RAM_GROUP_SGD] == 0.1,
          "no warm-up: peak lr from the start");
    CHECK_CLOSE(opt->lr[RAM_GROUP_ADAMW_CLIP], 0.01, 1e-15, "clip lr");
    ram_param *conv = a->tss[0].conv1_w, *prompt = a->tss[0].prompts, *bnm = a->tss[0].bn1_mean;
    fill(a, 1.0f, 0.5f);
    CHECK(optimizer_step(opt, a) == RAMC_OK, "step 1: %s", ramc_last_error());
    /* AdamW 1 (temperature), p = 1, g = 0.5, lr 0.1, wd 0.01, t = 1:
     *   p = 1 * (1 - 0.1*0.01)               = 0.999
     *   m = 0.1 * 0.5                        = 0.05
     *   v = 0.001 * 0.25                     = 0.00025
     *   denom = sqrt(0.00025)/sqrt(1-0.999) + 1e-8 = 0.5 + 1e-8
     *   p = 0.999 - (0.1/(1-0.9)) * 0.05/denom = 0.999 - 0.099999998 = 0.899000002 */
    CHECK_CLOSE(a->temperature->data[0], 0.899000002, 2e-7, "AdamW 1 step 1");
    const ram_optim_slot *ts = NULL;
    for (int k = 0; k < opt->n_slots; k++)
        if (!strcmp(opt->slots[k].name, "temperature")) ts = &opt->slots[k];
    CHECK(ts && ts->m[0] == 0.05f && fabsf(ts->v[0] - 0.00025f) < 1e-10f, "temperature moments");
    /* AdamW 0 (TSS conv), lr 0.01: p = 0.9999 - (0.01/0.1) * 0.1 = 0.9899 (+1e-10) */
    CHECK_CLOSE(conv->data[0], 0.9899000002, 2e-7, "AdamW 0 step 1");
    /* SGD (prompt), lr 0.1, wd 0.01, momentum 0.9, first step:
     *   d = 0.5 + 0.01*1 = 0.51; buf = d = 0.51; p = 1 - 0.1*0.51 = 0.949 */
    CHECK_CLOSE(prompt->data[0], 0.949, 2e-7, "SGD step 1");
    CHECK(bnm->data[0] == 1.0f, "BN running mean stepped");

    set_grads(a, -0.25f);
    CHECK(optimizer_step(opt, a) == RAMC_OK, "step 2: %s", ramc_last_error());
    /* AdamW 1, t = 2, g = -0.25:
     *   p = 0.899000002 * 0.999               = 0.898101002
     *   m = 0.9*0.05 + 0.1*(-0.25)            = 0.02
     *   v = 0.999*0.00025 + 0.001*0.0625      = 0.00031225
     *   bc1 = 1 - 0.81 = 0.19; bc2 = 1 - 0.998001 = 0.001999
     *   denom = sqrt(0.00031225)/sqrt(0.001999) + 1e-8 = 0.395225391
     *   p = 0.898101002 - (0.1/0.19) * 0.02/0.395225391 = 0.871467299 */
    CHECK_CLOSE(a->temperature->data[0], 0.8714672987, 3e-7, "AdamW 1 step 2");
    /* AdamW 0, lr 0.01: p = 0.9899000002*0.9999 - (0.01/0.19)*0.02/0.395225391 = 0.98713764 */
    CHECK_CLOSE(conv->data[0], 0.9871376399, 3e-7, "AdamW 0 step 2");
    /* SGD: d = -0.25 + 0.01*0.949 = -0.24051; buf = 0.9*0.51 + d = 0.21849;
     *      p = 0.949 - 0.1*0.21849 = 0.927151 */
    CHECK_CLOSE(prompt->data[0], 0.927151, 3e-7, "SGD step 2");
    CHECK(opt->step[0] == 2 && opt->step[1] == 2 && opt->step[2] == 2, "step counts");

    optimizer_zero_grad(a);
    int zero = 1;
    for (int i = 0; i < a->n_params; i++)
        for (int64_t k = 0; a->params[i].grad && k < a->params[i].numel; k++)
            zero &= a->params[i].grad[k] == 0.0f;
    CHECK(zero, "zero_grad");
out:
    optimizer_free(opt);
    ram_adapter_free(a);
}

/* A non-finite gradient refuses the whole step: nothing changes. */
static void test_nan_refused(const ramc_clip *clip) {
    ram_adapter *a = new_adapter(clip, 1);
    ram_optimizer *opt = NULL;
    CHECK(a && optimizer_create(a, NULL, &opt) == RAMC_OK, "create: %s", ramc_last_error());
    if (!opt) goto out;
    optimizer_set_epoch(opt, 1);
    set_grads(a, 0.01f);
    CHECK(optimizer_step(opt, a) == RAMC_OK, "clean step: %s", ramc_last_error());
    for (int bad = 0; bad < 2; bad++) {
        set_grads(a, 0.02f);
        ram_param *victim = a->tss[1].gate_w;
        victim->grad[3] = bad ? INFINITY : NAN;
        size_t total = 0;
        for (int i = 0; i < a->n_params; i++) total += (size_t)a->params[i].numel;
        float *before = malloc(total * sizeof(float));
        size_t sbytes = 0;
        for (int k = 0; k < opt->n_slots; k++)
            sbytes += (size_t)opt->slots[k].numel * (opt->slots[k].buf ? 1 : 2);
        float *state = malloc(sbytes * sizeof(float));
        size_t off = 0;
        for (int i = 0; i < a->n_params; i++) {
            memcpy(before + off, a->params[i].data, (size_t)a->params[i].numel * sizeof(float));
            off += (size_t)a->params[i].numel;
        }
        memcpy(state, opt->storage, sbytes * sizeof(float));
        int64_t steps[RAM_N_GROUPS];
        memcpy(steps, opt->step, sizeof steps);

        ramc_status st = optimizer_step(opt, a);
        CHECK(st == RAMC_ERR_NUMERIC, "non-finite grad: status %s", ramc_status_name(st));
        CHECK(strstr(ramc_last_error(), victim->name) != NULL, "message names the tensor: %s",
              ramc_last_error());
        off = 0;
        int same = 1;
        for (int i = 0; i < a->n_params; i++) {
            same &= !memcmp(before + off, a->params[i].data,
                            (size_t)a->params[i].numel * sizeof(float));
            off += (size_t)a->params[i].numel;
        }
        CHECK(same, "parameters changed by a refused step");
        CHECK(!memcmp(state, opt->storage, sbytes * sizeof(float)), "state changed");
        CHECK(!memcmp(steps, opt->step, sizeof steps), "step counts changed");
        free(before);
        free(state);
    }
out:
    optimizer_free(opt);
    ram_adapter_free(a);
}

static void test_ema(const ramc_clip *clip) {
    ram_adapter *a = new_adapter(clip, 1), *b = new_adapter(clip, 0);
    ram_ema *e = NULL;
    if (!a || !b) goto out;
    ram_param *rm = a->tss[0].bn1_mean;
    a->temperature->data[0] = 0.5f;
    a->temperature_loc->data[0] = 2.0f;
    rm->data[0] = 0.0f;
    a->tss[0].bn1_count = 10;
    a->tss[0].bn2_count = 0;
    CHECK(ema_create(a, NULL, &e) == RAMC_OK && e, "ema_create: %s", ramc_last_error());
    if (!e) goto out;
    int it = (int)(a->temperature_loc - a->params), ig = (int)(a->temperature - a->params);
    int irm = (int)(rm - a->params);
    CHECK(e->data[e->offset[it]] == 2.0f, "reset copies");

    /* live moves on */
    a->temperature->data[0] = 5.0f;
    a->temperature_loc->data[0] = 3.0f;
    rm->data[0] = 1.0f;
    a->tss[0].bn1_count = 20;
    a->tss[0].bn2_count = 5000;
    CHECK(ema_update(e, a) == RAMC_OK, "update: %s", ramc_last_error());
    /* temperature_loc: 0.9997*2 + 0.0003*3 = 2.0003, in float32 exactly as
     * PyTorch: 0.9997f*e + (float)(1-0.9997)*m */
    float want = 0.9997f * 2.0f + (float)(1.0 - 0.9997) * 3.0f;
    CHECK(e->data[e->offset[it]] == want, "temperature_loc averaged: %.9g vs %.9g",
          e->data[e->offset[it]], want);
    CHECK_CLOSE(e->data[e->offset[it]], 2.0003, 1e-6, "temperature_loc ~ 2.0003");
    /* global temperature replaced by the live value, not averaged */
    CHECK(e->data[e->offset[ig]] == 5.0f, "temperature copied: %g", e->data[e->offset[ig]]);
    /* BN running mean averaged too: 0.9997*0 + 0.0003*1 */
    CHECK_CLOSE(e->data[e->offset[irm]], 0.0003, 1e-6, "running mean averaged");
    /* counts: float math then truncation: 0.9997*10 + 0.0003*20 = 10.003 -> 10;
     * 0.9997*0 + 0.0003*5000 = 1.5 -> 1 */
    CHECK(e->bn_count[0] == 10, "bn1 count %lld", (long long)e->bn_count[0]);
    CHECK(e->bn_count[1] == 1, "bn2 count %lld", (long long)e->bn_count[1]);

    /* 5000 iterations from a reset at 0: the EMA count lags by ~3333 */
    a->tss[0].bn1_count = 0;
    CHECK(ema_reset(e, a) == RAMC_OK && e->updates == 0, "reset");
    for (int k = 0; k < 5000; k++) {
        a->tss[0].bn1_count++;
        ema_update(e, a);
    }
    CHECK(e->bn_count[0] == 1667, "EMA count after 5000 iterations: %lld",
          (long long)e->bn_count[0]);
    CHECK(e->updates == 5000, "updates");

    /* evaluation with the EMA weights, in place and into a second adapter */
    float live_tl = a->temperature_loc->data[0], ema_tl = e->data[e->offset[it]];
    CHECK(ema_swap(e, a) == RAMC_OK, "swap");
    CHECK(a->temperature_loc->data[0] == ema_tl && a->tss[0].bn1_count == 1667, "swapped in");
    CHECK(ema_swap(e, a) == RAMC_OK, "swap back");
    CHECK(a->temperature_loc->data[0] == live_tl && a->tss[0].bn1_count == 5000, "swapped back");
    CHECK(ema_copy_to(e, b) == RAMC_OK, "copy_to");
    CHECK(b->temperature_loc->data[0] == ema_tl && b->tss[0].bn1_count == 1667, "copied");

    /* disabled: NULL, and every function accepts it */
    ram_ema_options off = ram_ema_default_options();
    off.enabled = 0;
    ram_ema *none = (ram_ema *)1;
    CHECK(ema_create(a, &off, &none) == RAMC_OK && none == NULL, "disabled EMA is NULL");
    CHECK(ema_update(NULL, a) == RAMC_OK && ema_swap(NULL, a) == RAMC_OK, "NULL EMA no-ops");
out:
    ema_free(e);
    ram_adapter_free(a);
    ram_adapter_free(b);
}

/* The schedule trap check (solver.h): the floor after scheduler_max_epochs
 * and a warm-up that starts low are reported with the epochs concerned; the
 * official settings and the cosine's own tail are not. */
static void test_schedule_check(void) {
    static const struct {
        int max_epochs, scheduler_max_epochs, warmup_epochs, want;
        const char *says; /* a phrase the message must hold ("" when no warning) */
    } cases[] = {
        {6, 60, 3, 0, ""},                      /* the official COCO settings */
        {1, 1, 0, 1, "epochs 1-1 of 1 at its floor"}, /* the old experiment script */
        {10, 10, 0, 1, "epochs 10-10 of 10"},   /* the last epoch only */
        {10, 4, 2, 7, "epochs 4-10 of 10"},     /* a trajectory-like short cycle, then 7 at the floor */
        {10, 11, 0, 0, ""},                     /* the cosine tail: low by design, no floor */
        {5, 60, 40, 3, "epochs 1-3 run below 10%"}, /* a 40-epoch warm-up over 5: starts at 3.5% */
    };
    char msg[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ram_train_config cfg;
        ram_train_config_init(&cfg, RAM_PRESET_COCO);
        cfg.max_epochs = cases[i].max_epochs;
        cfg.scheduler_max_epochs = cases[i].scheduler_max_epochs;
        cfg.warmup_epochs = cases[i].warmup_epochs;
        int n = ram_schedule_check(&cfg, msg, sizeof msg);
        CHECK(n == cases[i].want, "schedule %d/%d/%d: %d epochs flagged, want %d (%s)",
              cases[i].max_epochs, cases[i].scheduler_max_epochs, cases[i].warmup_epochs, n,
              cases[i].want, msg);
        CHECK(cases[i].want ? strstr(msg, cases[i].says) != NULL : msg[0] == '\0',
              "schedule %d/%d/%d: message '%s' should say '%s'", cases[i].max_epochs,
              cases[i].scheduler_max_epochs, cases[i].warmup_epochs, msg, cases[i].says);
    }
}

/* Short schedules as scripts/experiments.sh runs them: the scheduler is
 * stepped with epoch = 1, 2, ..., so max_epochs = scheduler_max_epochs = 1
 * without warm-up runs its only epoch at the floor (0.002 x base: no
 * training), while scheduler_max_epochs = max_epochs + 1 keeps every epoch
 * of a cosine above 2% of the base and the mean near half of it. */
static void test_short_schedules(void) {
    ram_optim_options o = ram_optim_default_options();
    o.base_lr = 1.0;
    o.warmup_epochs = 0;
    o.scheduler_max_epochs = 1;
    CHECK_CLOSE(ram_lr_at_epoch(&o, 1.0, 1), 0.002, 1e-12, "E = T = 1: the only epoch at the floor");
    for (int E = 2; E <= 20; E++) {
        o.scheduler_max_epochs = E + 1;
        double sum = 0, least = 1;
        for (int e = 1; e <= E; e++) {
            double lr = ram_lr_at_epoch(&o, 1.0, e);
            sum += lr;
            if (lr < least) least = lr;
        }
        CHECK(least >= (E <= 10 ? 0.02 : 0.005) && sum / E >= 0.45 && sum / E <= 0.55,
              "E %d, T %d: least lr %.4f, mean %.4f", E, E + 1, least, sum / E);
    }
}

int main(void) {
    test_group_names();
    test_schedule_check();
    test_short_schedules();
    ramc_clip *clip = load_clip();
    if (clip) {
        test_groups_on_adapter(clip);
        test_lr_table(clip);
        test_hand_steps(clip);
        test_nan_refused(clip);
        test_ema(clip);
        ramc_clip_free(clip);
    }
    return test_summary("test_optim");
}
