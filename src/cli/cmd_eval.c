/* ramc eval: the official ZSL / GZSL evaluation of a model on labelled images. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli/cli.h"
#include "io/file.h"
#include "train/config.h"
#include "data/dataset.h"
#include "eval/evaluate.h"
#include "ramc.h"

static const char usage_text[] =
    "usage: ramc eval [--clip WEIGHTS] [--adapter FILE] [--vision-heads N --text-heads N]\n"
    "                 [--config FILE] [--set KEY=VALUE]...\n"
    "                 [--test-zsl FILE] [--test-gzsl FILE] [--test FILE --classes FILE]\n"
    "                 [--seen-classes FILE] [--unseen-classes FILE]\n"
    "                 [--image-root DIR] [--path-map OLD=NEW] [--batch N] [--per-image]\n"
    "                 [--per-class] [--report OUT.json] [--official-mode] [--fatal-missing]\n"
    "                 [--score official|independent] [--baseline clip] [--bf16] [--no-pack]\n"
    "                 [--threads N]\n"
    "\n"
    "Evaluates RAM (or, without --adapter, RAM's zero-shot path on the frozen CLIP)\n"
    "as the official code: ZSL on the unseen labels, GZSL on seen + unseen labels\n"
    "(each list sorted, seen first), images resized straight to the model's size\n"
    "(bilinear), batches of 512 with the batch-coupled Sinkhorn stop. Prints P, R,\n"
    "F1 at top-3 and top-5 (OP/OR/OF1 of the official metric code) and mAP.\n"
    "\n"
    "  --config FILE          a training config: its test_zsl, test_gzsl,\n"
    "                         seen_classes, unseen_classes, image_root, path_map,\n"
    "                         dataset_mode, eval_batch_size and pixel statistics\n"
    "  --test FILE --classes FILE   any other labelled set and its label list\n"
    "  --batch N              images per batch (default 512, the official value)\n"
    "  --per-image            per-image Sinkhorn stop instead of the batch-coupled one\n"
    "  --label-cache DIR      keep encoded label features in DIR (ramc predict --help)\n"
    "  --per-class            also print the per-class table\n"
    "  --score S              the score the metrics rank by: official (default) or\n"
    "                         independent (ramc predict --help, docs/predict.md)\n"
    "  --baseline clip        evaluate plain CLIP instead of RAM: softmax of\n"
    "                         exp(logit_scale) * cos(image, \"A photo of a {label}.\")\n"
    "                         (ramc predict --baseline clip); no adapter is used\n"
    "  --report OUT.json      write the reports: {\"reports\": [one per evaluation]}\n"
    "                         (schema in docs/metrics.md)\n"
    "  --fatal-missing        stop at an unreadable image (default: report, skip it,\n"
    "                         exit status 1 at the end)\n"
    "  --bf16                 CLIP's matrix products in bfloat16 (faster; scores\n"
    "                         within ~1e-2 of float32, docs/performance.md)\n"
    "  --no-pack              float32 products on the stored weights: saves a packed\n"
    "                         copy (4 bytes per weight), slower\n"
    "  --threads N            threads for the model (default: all cores, or\n"
    "                         OMP_NUM_THREADS); image decoding uses the config's workers\n"
    "  --official-mode        drop unknown labels and keep images without labels, as\n"
    "                         the official loader (default: such entries are errors)\n"
    "\n"
    "example:\n"
    "  ramc eval --clip ViT-B-16.safetensors --adapter runs/coco/adapter.safetensors \\\n"
    "      --seen-classes seen.txt --unseen-classes unseen.txt \\\n"
    "      --test-zsl test_17.json --test-gzsl test_65.json --report eval.json\n";

typedef struct {
    const char *name;
    dataset ds;
} eval_set;

static int load_set(const char *path, const class_list *labels, const ram_train_config *cfg,
                    eval_set *out, const char *name) {
    dataset_options d = dataset_default_options();
    d.mode = cfg->dataset_mode;
    d.path_map = cfg->path_map[0] ? cfg->path_map : NULL;
    d.image_root = cfg->image_root[0] ? cfg->image_root : NULL;
    out->name = name;
    return dataset_load(path, labels, &d, &out->ds) == RAMC_OK;
}

static void on_progress(void *user, int done, int total) {
    if (*(int *)user) fprintf(stderr, "\revaluating %d/%d ", done, total);
}

int cmd_eval(int argc, char **argv) {
    ram_train_config cfg;
    ram_train_config_init(&cfg, RAM_PRESET_COCO);
    cfg.eval_batch_size = 512;
    ramc_clip_params cp = ramc_clip_default_params();
    const char *adapter = NULL, *test = NULL, *classes = NULL, *report_path = NULL, *label_cache = NULL;
    int per_class = 0, per_image = 0, batch = 0, status = 0, fatal_missing = 0;
    ramc_score score = RAMC_SCORE_OFFICIAL;
    int baseline = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int v = i + 1 < argc;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        } else if (!strcmp(a, "--bf16")) {
            cp.bf16 = 1;
        } else if (!strcmp(a, "--no-pack")) {
            cp.pack_weights = 0;
        } else if (v && !strcmp(a, "--threads")) {
            if (!cli_parse_threads("eval", argv[++i], &cp.threads)) return 2;
        } else if (v && !strcmp(a, "--config")) {
            if (ram_train_config_load(&cfg, argv[++i])) return cli_fail("eval");
        } else if (v && !strcmp(a, "--set")) {
            if (ram_train_config_set(&cfg, argv[++i], "--set")) return cli_usage_error("eval");
        } else if (v && !strcmp(a, "--clip")) {
            if (ram_train_config_apply(&cfg, "model", argv[++i], a)) return cli_fail("eval");
        } else if (v && !strcmp(a, "--adapter")) {
            adapter = argv[++i];
        } else if (v && (!strcmp(a, "--vision-heads") || !strcmp(a, "--text-heads") ||
                         !strcmp(a, "--batch"))) {
            char *end;
            long n = strtol(argv[++i], &end, 10);
            if (*end || n < 0 || n > 1 << 20) {
                fprintf(stderr, "ramc eval: %s needs a non-negative integer\n", a);
                return 2;
            }
            if (n == 0 && !strcmp(a, "--batch")) {
                fprintf(stderr, "ramc eval: --batch needs a positive integer (images per batch)\n");
                return 2;
            }
            if (!strcmp(a, "--batch")) batch = (int)n;
            else if (!strcmp(a, "--vision-heads")) cp.vision_heads = (int)n;
            else cp.text_heads = (int)n;
        } else if (v && !strcmp(a, "--test-zsl")) {
            if (ram_train_config_apply(&cfg, "test_zsl", argv[++i], a)) return cli_fail("eval");
        } else if (v && !strcmp(a, "--test-gzsl")) {
            if (ram_train_config_apply(&cfg, "test_gzsl", argv[++i], a)) return cli_fail("eval");
        } else if (v && !strcmp(a, "--seen-classes")) {
            if (ram_train_config_apply(&cfg, "seen_classes", argv[++i], a)) return cli_fail("eval");
        } else if (v && !strcmp(a, "--unseen-classes")) {
            if (ram_train_config_apply(&cfg, "unseen_classes", argv[++i], a)) return cli_fail("eval");
        } else if (v && !strcmp(a, "--image-root")) {
            if (ram_train_config_apply(&cfg, "image_root", argv[++i], a)) return cli_fail("eval");
        } else if (v && !strcmp(a, "--path-map")) {
            if (ram_train_config_apply(&cfg, "path_map", argv[++i], a)) return cli_fail("eval");
        } else if (v && !strcmp(a, "--test")) {
            test = argv[++i];
        } else if (v && !strcmp(a, "--classes")) {
            classes = argv[++i];
        } else if (v && !strcmp(a, "--report")) {
            report_path = argv[++i];
        } else if (v && !strcmp(a, "--label-cache")) {
            label_cache = argv[++i];
        } else if (v && !strcmp(a, "--score")) {
            if (!cli_parse_score(argv[++i], &score)) {
                fprintf(stderr, "ramc eval: invalid value '%s' for --score (official or independent)\n",
                        argv[i]);
                return 2;
            }
        } else if (v && !strcmp(a, "--baseline")) {
            if (strcmp(argv[++i], "clip")) {
                fprintf(stderr, "ramc eval: invalid value '%s' for --baseline (the one baseline is "
                                "'clip')\n", argv[i]);
                return 2;
            }
            baseline = 1;
        } else if (!strcmp(a, "--per-class")) {
            per_class = 1;
        } else if (!strcmp(a, "--per-image")) {
            per_image = 1;
        } else if (!strcmp(a, "--fatal-missing")) {
            fatal_missing = 1;
        } else if (!strcmp(a, "--official-mode")) {
            cfg.dataset_mode = DATASET_OFFICIAL;
        } else {
            fprintf(stderr, "ramc eval: unknown or incomplete option '%s'\n\n%s", a, usage_text);
            return 2;
        }
    }
    if (baseline && adapter) {
        fprintf(stderr, "ramc eval: --baseline clip evaluates plain CLIP: it takes no --adapter\n");
        return 2;
    }
    if (baseline && score != RAMC_SCORE_OFFICIAL) {
        fprintf(stderr, "ramc eval: --baseline clip has its own score; --score applies to RAM\n");
        return 2;
    }
    if (!cfg.model[0]) {
        /* the embedded default model, said aloud (see ramc predict) */
        static char default_clip[4096], default_adapter[4096];
        if (ramc_default_model_paths(default_clip, default_adapter, sizeof default_clip) != RAMC_OK) {
            fprintf(stderr, "ramc eval: no --clip given and %s\n", ramc_last_error());
            return 1;
        }
        if (ram_train_config_apply(&cfg, "model", default_clip, "default model")) return cli_fail("eval");
        if (baseline) {
            fprintf(stderr, "ramc eval: no --clip given: using the embedded default model %s\n",
                    default_clip);
        } else if (!adapter) {
            adapter = default_adapter;
            fprintf(stderr, "ramc eval: no --clip given: using the embedded default model %s "
                            "and its adapter %s\n", default_clip, default_adapter);
        } else {
            fprintf(stderr, "ramc eval: no --clip given: using the embedded default model %s\n",
                    default_clip);
        }
    }
    if (!test && !cfg.test_zsl[0] && !cfg.test_gzsl[0]) {
        fprintf(stderr, "ramc eval: nothing to evaluate: give --test-zsl, --test-gzsl or --test\n");
        return 2;
    }
    if ((test && !classes) || (cfg.test_zsl[0] && !cfg.unseen_classes[0]) ||
        (cfg.test_gzsl[0] && !cfg.seen_classes[0])) {
        fprintf(stderr, "ramc eval: label lists needed: --test needs --classes, --test-zsl needs "
                        "--unseen-classes, --test-gzsl needs --seen-classes (and --unseen-classes)\n");
        return 2;
    }

    ramc_model *model = NULL;
    class_list seen = {0}, unseen = {0}, gzsl = {0}, other = {0};
    eval_set sets[3];
    int n_sets = 0;
    cJSON *reports = cJSON_CreateArray();
    cli_env_clip_params(&cp);
    if (ramc_model_load(cfg.model, adapter, &cp, &model)) {
        status = cli_fail("eval");
        goto done;
    }
    if (cfg.seen_classes[0] && (class_list_load(cfg.seen_classes, &seen) || class_list_sort(&seen)))
        goto fail;
    if (cfg.unseen_classes[0] &&
        (class_list_load(cfg.unseen_classes, &unseen) || class_list_sort(&unseen)))
        goto fail;
    if (cfg.test_zsl[0]) {
        if (!load_set(cfg.test_zsl, &unseen, &cfg, &sets[n_sets], "zsl")) goto fail;
        n_sets++;
    }
    if (cfg.test_gzsl[0]) {
        const class_list *labels = &seen;
        if (cfg.unseen_classes[0]) {
            ramc_status gst = class_list_gzsl(&seen, &unseen, &gzsl);
            if (gst) {
                ramc_error_prefix(gst, "seen classes %s, unseen classes %s", cfg.seen_classes,
                                  cfg.unseen_classes);
                goto fail;
            }
            labels = &gzsl;
        }
        if (!load_set(cfg.test_gzsl, labels, &cfg, &sets[n_sets], "gzsl")) goto fail;
        n_sets++;
    }
    if (test) {
        if (class_list_load(classes, &other)) goto fail;
        if (!load_set(test, &other, &cfg, &sets[n_sets], "test")) goto fail;
        n_sets++;
    }
    int show_progress = isatty(fileno(stderr));
    ram_eval_options eo = ram_eval_default_options();
    eo.batch_size = batch ? batch : cfg.eval_batch_size;
    eo.workers = cfg.workers;
    eo.per_image_sinkhorn = per_image;
    eo.label_cache = label_cache;
    eo.score = score;
    eo.clip_baseline = baseline;
    eo.fatal_missing = fatal_missing;
    /* the ablation keys of a config (--config / --set) apply to evaluation too */
    eo.variant = cfg.variant;
    for (int c = 0; c < 3; c++) eo.mean[c] = (float)cfg.pixel_mean[c], eo.std[c] = (float)cfg.pixel_std[c];
    eo.progress = on_progress;
    eo.progress_user = &show_progress;
    for (int s = 0; s < n_sets; s++) {
        eval_report *r = NULL;
        int skipped = 0;
        ramc_status st = ram_evaluate(model, &sets[s].ds, &eo, sets[s].name,
                                      baseline ? "clip-baseline" : adapter ? "adapter" : "zero-shot",
                                      &skipped, &r);
        if (show_progress) fputc('\n', stderr);
        if (skipped) {
            fprintf(stderr, "ramc eval: %s: %d unreadable images skipped\n", sets[s].ds.source,
                    skipped);
            status = 1;
        }
        if (st) {
            status = cli_fail("eval");
            continue;
        }
        if (score != RAMC_SCORE_OFFICIAL) printf("score: %s\n", cli_score_name(score));
        report_print_table(stdout, r, per_class);
        cJSON *json = report_to_json(r);
        if (json) cJSON_AddStringToObject(json, "score_type", cli_score_name(score));
        if (json) cJSON_AddItemToArray(reports, json);
        report_free(r);
    }
    if (report_path) {
        /* {"reports": [...]}, written atomically: never a half-written file */
        cJSON *root = cJSON_CreateObject();
        cJSON_AddItemToObject(root, "reports", reports);
        reports = NULL;
        char *text = cJSON_Print(root);
        cJSON_Delete(root);
        if (!text || file_write_atomic(report_path, text, strlen(text)) != RAMC_OK) {
            status = text ? cli_fail("eval") : 1;
        }
        free(text);
    }
    goto done;
fail:
    status = cli_fail("eval");
done:
    cJSON_Delete(reports);
    for (int s = 0; s < n_sets; s++) dataset_free(&sets[s].ds);
    class_list_free(&seen);
    class_list_free(&unseen);
    class_list_free(&gzsl);
    class_list_free(&other);
    ramc_model_free(model);
    return status;
}
