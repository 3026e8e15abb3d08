/* Fuzz target: ramc_tokenize (UTF-8 decoding, ftfy/html cleanup, the
 * pre-tokenizer and BPE) with the shipped vocabulary, loaded once.
 * Input layout: byte 0 picks a second, short context length; the rest is the
 * text (cut at the first NUL, as the C-string API sees it). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "text/text.h"

static ramc_tokenizer *tok;

void fuzz_init_tokenizer(void) {
    if (tok) return;
    char path[4096];
    ramc_text_default_vocab_path(path, sizeof path);
    ramc_status st = ramc_tokenizer_load(path, &tok);
    /* without the vocabulary every input would be skipped: fail loudly */
    FUZZ_CHECK(st == RAMC_OK, "loading %s: %s", path, ramc_last_error());
}

/* What a successful call promises: [SOT] ids.. [EOT] then zero padding.
 * The text itself may hold "<|endoftext|>" (id EOT) and "!" is id 0, so the
 * end is the last non-zero id, which must be EOT. Returns that length. */
static int check_ids(const int32_t *ids, int n) {
    FUZZ_CHECK(ids[0] == RAMC_SOT_ID || n == 1, "ids[0] = %d", (int)ids[0]);
    int last = -1;
    for (int k = 0; k < n; k++) {
        FUZZ_CHECK(ids[k] >= 0 && ids[k] <= RAMC_EOT_ID, "ids[%d] = %d", k, (int)ids[k]);
        if (ids[k] != 0) last = k;
    }
    FUZZ_CHECK(last >= 0 && ids[last] == RAMC_EOT_ID, "sequence of %d ids does not end in EOT", n);
    return last + 1;
}

int fuzz_one_tokenizer(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    fuzz_init_tokenizer();
    char *text = fuzz_strdup(data + 1, size - 1);
    if (!text) return 0;
    int32_t ids[RAMC_CONTEXT_LENGTH];
    ramc_clear_error();
    ramc_status st = ramc_tokenize(tok, text, ids, RAMC_CONTEXT_LENGTH);
    if (st == RAMC_OK) {
        int full_len = check_ids(ids, RAMC_CONTEXT_LENGTH);
        /* truncation: a shorter context is a prefix, then EOT in the last slot */
        int n = 1 + data[0] % 16;
        int32_t shorter[16];
        FUZZ_CHECK(ramc_tokenize(tok, text, shorter, n) == RAMC_OK, "context %d: %s", n,
                   ramc_last_error());
        check_ids(shorter, n);
        if (full_len <= n) {
            FUZZ_CHECK(!memcmp(shorter, ids, sizeof(int32_t) * (size_t)n), "context %d differs", n);
        } else {
            FUZZ_CHECK(!memcmp(shorter, ids, sizeof(int32_t) * (size_t)(n - 1)) &&
                           shorter[n - 1] == RAMC_EOT_ID,
                       "truncated context %d differs", n);
        }
    } else {
        fuzz_check_error_message("ramc_tokenize");
    }
    free(text);
    return 0;
}
