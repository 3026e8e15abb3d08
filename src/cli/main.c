/* ramc: the command-line tool. A thin layer over the library: parse the
 * arguments, call the library, print results. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
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
    {"train", cmd_train, "train RAM's adapter and prompts on labelled images"},
    {"eval", cmd_eval, "ZSL / GZSL evaluation: P, R, F1 at top-3/5 and mAP"},
    {"golden", cmd_golden, "compare ramc with reference tensors of the official implementation"},
    {"bench", cmd_bench, "time the main workloads on a random CLIP (speed, peak memory)"},
    {"synth", cmd_synth, "generate a seeded synthetic multi-label data set with ZSL/GZSL splits"},
    {"pretrain-clip", cmd_pretrain, "pre-train a small CLIP from scratch on image<TAB>caption pairs"},
    {"convert", cmd_convert, "rewrite a safetensors file in float16, bfloat16 or float32"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: ramc <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
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

int main(int argc, char **argv) {
    /* The CLI owns its process: keep freed memory for reuse (ramc.h). */
    const char *keep = getenv("RAMC_KEEP_FREED_MEMORY");
    if (!keep || strcmp(keep, "0") != 0) ramc_keep_freed_memory();
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ramc: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
