/* ramc golden DIR...: compare ramc with a golden set of the official code. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/dist.h"
#include "golden/golden.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ramc golden [--tolerance REL] [--failures-only] [--bf16] DIR...\n\n"
            "Runs ramc on the inputs of each golden set DIR (weights, adapter, inputs,\n"
            "outputs .safetensors, config.json, classes.json) and compares every tensor\n"
            "it produces with the reference. One row per tensor: name, shape, max abs\n"
            "error, relative error (max|diff| / max|ref|). Exit 0 only if every tensor\n"
            "is within the tolerance (default %g relative; ids and counts exactly).\n"
            "--bf16 runs CLIP's matrix products in bf16, to measure how far that mode\n"
            "strays from the float32 reference (it is not expected to pass); a trajectory\n"
            "set is then replayed as `ramc train --bf16` trains.\n\n"
            "A trajectory set (config.json \"kind\": \"trajectory\": trajectory.safetensors\n"
            "instead of outputs) is replayed through ramc's trainer: optimisers, per-epoch\n"
            "schedule, per-epoch EMA and BatchNorm, step by step. Each step's parameters,\n"
            "BatchNorm buffers and EMA are judged by their displacement from the start,\n"
            "||ref - ours|| / ||ref - initial|| <= 1e-2; losses within 1e-4, scores 1e-3\n"
            "relative, learning rates, parameter groups and counts exactly (docs/golden.md).\n"
            "--tolerance applies to single-step sets only.\n",
            GOLDEN_DEFAULT_TOLERANCE);
}

int cmd_golden(int argc, char **argv) {
    double tolerance = GOLDEN_DEFAULT_TOLERANCE;
    int failures_only = 0, n_dirs = 0, status = 0, bf16 = 0;
    const char **dirs = calloc((size_t)argc, sizeof *dirs);
    if (!dirs) return 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            free(dirs);
            return 0;
        } else if (!strcmp(argv[i], "--tolerance") && i + 1 < argc) {
            char *end;
            tolerance = strtod(argv[++i], &end);
            if (*end || !(tolerance > 0)) {
                fprintf(stderr, "ramc golden: --tolerance needs a positive number\n");
                free(dirs);
                return 2;
            }
        } else if (!strcmp(argv[i], "--bf16")) {
            bf16 = 1;
        } else if (!strcmp(argv[i], "--failures-only")) {
            failures_only = 1;
        } else if (argv[i][0] == '-') {
            fprintf(stderr, "ramc golden: unknown option '%s'\n", argv[i]);
            usage(stderr);
            free(dirs);
            return 2;
        } else {
            dirs[n_dirs++] = argv[i];
        }
    }
    if (n_dirs == 0) {
        usage(stderr);
        free(dirs);
        return 2;
    }
    ramc_clip_params cp = ramc_clip_default_params();
    cp.bf16 = bf16;
    cli_env_clip_params(&cp);
    /* under mpirun a trajectory set is replayed data-parallel (docs/distributed.md);
     * rank 0 prints the report */
    ramc_dist *dist = NULL;
    if ((status = cli_join_processes("golden", &dist))) {
        free(dirs);
        return status;
    }
    const int rank = dist_rank(dist), size = dist_size(dist);
    if (rank != 0 && !freopen("/dev/null", "w", stdout)) {
        fprintf(stderr, "ramc golden: process %d: cannot silence its output\n", rank);
        dist_abort(dist, 1);
        return 1;
    }
    for (int d = 0; d < n_dirs; d++) {
        golden_report report = {.tolerance = tolerance, .bf16 = cp.bf16, .no_pack = !cp.pack_weights,
                                .dist = dist};
        printf("== %s\n", dirs[d]);
        if (golden_run(dirs[d], &report) != RAMC_OK) {
            if (size > 1) {
                /* the others may wait for this process in an exchange */
                fprintf(stderr, "ramc golden: process %d of %d: %s; stopping the job\n", rank,
                        size, ramc_last_error());
                fflush(stderr);
                dist_abort(dist, 1);
            }
            cli_fail("golden");
            status = 1;
        }
        printf("%-58s %-16s %12s %12s  %s\n", "tensor", "shape", "max_abs", "rel", "result");
        for (int r = 0; r < report.n_rows; r++) {
            const golden_row *row = &report.rows[r];
            if (failures_only && row->pass) continue;
            if (row->exact)
                printf("%-58s %-16s %12.0f %12s  %s\n", row->name, row->shape, row->max_abs,
                       "exact", row->pass ? "ok" : "FAIL (entries differ)");
            else
                printf("%-58s %-16s %12.3e %12.3e  %s\n", row->name, row->shape, row->max_abs,
                       row->rel, row->pass ? "ok" : "FAIL");
        }
        printf("%s: %d tensors compared, %d failed\n", dirs[d], report.n_rows, report.n_failed);
        if (report.n_failed || report.n_rows == 0) status = 1;
        golden_report_free(&report);
    }
    free(dirs);
    dist_finalize(dist);
    return status;
}
