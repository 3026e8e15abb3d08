/* ramc tokenize: one JSON array of CLIP token ids per line of stdin. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "ramc.h"
#include "text/text.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: ramc tokenize [--vocab FILE | --hf-vocab vocab.json --hf-merges merges.txt] [--context N]\n"
            "\n"
            "Reads UTF-8 lines from stdin and prints, per line, the JSON array of the\n"
            "CLIP token ids of the official tokenize(line, context_length=N, truncate=True).\n"
            "\n"
            "  --vocab FILE      bpe_simple_vocab_16e6.txt.gz (gzip or plain), or a folder\n"
            "                    with vocab.json + merges.txt (default:\n"
            "                    $RAMC_DATA_DIR/bpe_simple_vocab_16e6.txt.gz, else the built-in data dir)\n"
            "  --hf-vocab FILE   Hugging Face vocab.json (with --hf-merges)\n"
            "  --hf-merges FILE  Hugging Face merges.txt (with --hf-vocab)\n"
            "  --context N       context length, default 77\n");
}

static int bad_usage(const char *msg) {
    fprintf(stderr, "ramc tokenize: %s\n\n", msg);
    usage(stderr);
    return 2;
}

int cmd_tokenize(int argc, char **argv) {
    const char *vocab = NULL, *hf_vocab = NULL, *hf_merges = NULL;
    long context = RAMC_CONTEXT_LENGTH;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        int has_value = i + 1 < argc;
        if (!strcmp(a, "--vocab") && has_value) vocab = argv[++i];
        else if (!strcmp(a, "--hf-vocab") && has_value) hf_vocab = argv[++i];
        else if (!strcmp(a, "--hf-merges") && has_value) hf_merges = argv[++i];
        else if (!strcmp(a, "--context") && has_value) {
            char *end;
            context = strtol(argv[++i], &end, 10);
            if (*end || end == argv[i] || context < 1 || context > 1000000)
                return bad_usage("--context needs an integer between 1 and 1000000");
        } else {
            char msg[256];
            snprintf(msg, sizeof msg, "unknown or incomplete option '%s'", a);
            return bad_usage(msg);
        }
    }
    if ((hf_vocab != NULL) != (hf_merges != NULL)) return bad_usage("--hf-vocab and --hf-merges go together");
    if (vocab && hf_vocab) return bad_usage("--vocab cannot be combined with --hf-vocab/--hf-merges");

    ramc_tokenizer *tok = NULL;
    ramc_status st;
    char defpath[4096];
    if (hf_vocab) {
        st = ramc_tokenizer_load_hf(hf_vocab, hf_merges, &tok);
    } else {
        if (!vocab) {
            ramc_text_default_vocab_path(defpath, sizeof defpath);
            vocab = defpath;
        }
        st = ramc_tokenizer_load(vocab, &tok);
    }
    if (st != RAMC_OK) return cli_fail("tokenize");

    int32_t *ids = malloc((size_t)context * sizeof *ids);
    if (!ids) {
        ramc_tokenizer_free(tok);
        fprintf(stderr, "ramc tokenize: out of memory\n");
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long lineno = 0;
    int rc = 0;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        lineno++;
        if (n > 0 && line[n - 1] == '\n') line[--n] = 0;
        if (n > 0 && line[n - 1] == '\r') line[--n] = 0;
        if (memchr(line, 0, (size_t)n)) {
            fprintf(stderr, "ramc tokenize: line %ld: NUL byte in input\n", lineno);
            rc = 1;
            break;
        }
        if (ramc_tokenize(tok, line, ids, (int)context) != RAMC_OK) {
            fprintf(stderr, "ramc tokenize: line %ld: %s\n", lineno, ramc_last_error());
            rc = 1;
            break;
        }
        putchar('[');
        for (long k = 0; k < context; k++) printf(k ? ",%d" : "%d", ids[k]);
        fputs("]\n", stdout);
    }
    if (!rc && ferror(stdin)) {
        fprintf(stderr, "ramc tokenize: error reading stdin\n");
        rc = 1;
    }
    free(line);
    free(ids);
    ramc_tokenizer_free(tok);
    if (fflush(stdout) != 0) {
        fprintf(stderr, "ramc tokenize: error writing stdout\n");
        rc = 1;
    }
    return rc;
}
