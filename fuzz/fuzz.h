/* Fuzz entry points shared by the libFuzzer binaries and the replay test.
 *
 * Each reader has one target: fuzz_one_<name>(data, size) feeds it one input
 * and checks what the reader promises about its result, aborting on a broken
 * promise so that libFuzzer (and the replay test) report it like a crash.
 * fuzz_init_<name>() does one-time set-up (loading the BPE vocabulary) so a
 * libFuzzer run does not charge it to its first input. The bodies are plain
 * C11 without libFuzzer: tests/test_fuzz_regressions.c replays the committed
 * corpus through them in the ordinary gcc build, and fuzz/libfuzzer_main.c
 * wraps one of them as LLVMFuzzerTestOneInput in a -DRAMC_FUZZ=ON clang build.
 */
#ifndef RAMC_FUZZ_FUZZ_H
#define RAMC_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#define FUZZ_TARGETS(X) \
    X(safetensors)      \
    X(dataset_json)     \
    X(dataset_tsv)      \
    X(class_list)       \
    X(tokenizer)        \
    X(image)            \
    X(config)           \
    X(pickle)

#define FUZZ_DECLARE(name)                                 \
    void fuzz_init_##name(void);                           \
    int fuzz_one_##name(const uint8_t *data, size_t size);
FUZZ_TARGETS(FUZZ_DECLARE)
#undef FUZZ_DECLARE

/* ------------------------------------------------------------- helpers */

/* Aborts with `what` when `cond` is false: a violated contract of the code
 * under test, which the fuzzer must see as a crash, not as an error return. */
#define FUZZ_CHECK(cond, ...)                                          \
    do {                                                               \
        if (!(cond)) fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
    } while (0)
_Noreturn void fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Writes the input to `basename` inside a private per-process temporary
 * folder (under $TMPDIR, else /tmp) and puts its path in path[cap]. Returns 0,
 * or -1 when the file cannot be written (the input is then skipped: a full
 * disk is not a finding). Used for readers that only take a path. */
int fuzz_temp_file(const char *basename, const uint8_t *data, size_t size, char *path,
                   size_t cap);

/* A malloc'd copy of the input of exactly `size` bytes (at least 1 byte is
 * allocated), with no terminator, so AddressSanitizer catches any read past
 * the length a parser was given. NULL on out-of-memory. */
char *fuzz_copy(const uint8_t *data, size_t size);
/* A NUL-terminated copy (for APIs that take C strings). */
char *fuzz_strdup(const uint8_t *data, size_t size);

/* Checks that a failed call left a message: every ramc error names its input. */
void fuzz_check_error_message(const char *what);

#endif
