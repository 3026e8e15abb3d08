/* ramc: the command-line tool. A thin layer over the library: parse the
 * arguments, call the library, print results. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "kernels/kernels.h"
#include "ramc.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} command;

static const command commands[] = {
    {"tokenize", cmd_tokenize, "print CLIP token ids for each line of stdin"},
    {"preprocess", cmd_preprocess, "decode, resize and normalise an image as the official pipeline"},
    {"predict", cmd_predict, "rank labels for images (open-vocabulary multi-label recognition)"},
    {"serve", cmd_serve, "answer predictions over HTTP, with a web page (the model loaded once)"},
    {"train", cmd_train, "train RAM's adapter and prompts on labelled images"},
    {"eval", cmd_eval, "ZSL / GZSL evaluation: P, R, F1 at top-3/5 and mAP"},
    {"golden", cmd_golden, "compare ramc with reference tensors of the official implementation"},
    {"bench", cmd_bench, "time the main workloads on a random CLIP (speed, peak memory)"},
    {"synth", cmd_synth, "generate a seeded synthetic multi-label data set with ZSL/GZSL splits"},
    {"pretrain-clip", cmd_pretrain, "pre-train a small CLIP from scratch on image<TAB>caption pairs"},
    {"convert", cmd_convert, "rewrite weights (safetensors or PyTorch) as safetensors, optionally f16/bf16/f32"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ramc <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-12s %s\n", "version", "print the version (also: ramc --version)");
    fprintf(f, "\nRun 'ramc <command> --help' for the options of a command.\n");
}

int cli_fail(const char *command_name) {
    fprintf(stderr, "ramc %s: %s\n", command_name, ramc_last_error());
    return 1;
}

int cli_usage_error(const char *command) {
    cli_fail(command);
    return 2;
}

int cli_parse_threads(const char *command, const char *value, int *out) {
    char *end;
    errno = 0;
    long n = strtol(value, &end, 10);
    if (errno || end == value || *end || n < 1 || n > 4096) {
        fprintf(stderr, "ramc %s: invalid --threads '%s' (want 1 to 4096)\n", command, value);
        return 0;
    }
    *out = (int)n;
    return 1;
}

int main(int argc, char **argv) {
    cli_env_process(argc > 1 ? argv[1] : NULL);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "version")) {
        /* first line: the version alone (scripts read it); then how this
         * binary was built and which kernels it runs on this CPU */
        char isa[128];
        printf("ramc %s\n", ramc_version());
        printf("build: %s\n", kernels_build_kind());
        printf("kernels: %s; GEMM %s (chooses its own code at run time)\n",
               kernels_isa_describe(isa, sizeof isa), kernels_gemm_backend());
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ramc: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
