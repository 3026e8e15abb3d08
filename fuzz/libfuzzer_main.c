/* libFuzzer glue: one binary per target, chosen at compile time with
 * -DRAMC_FUZZ_NAME=<name> (see the RAMC_FUZZ section of CMakeLists.txt). */
#include <stddef.h>
#include <stdint.h>

#include "fuzz.h"

#ifndef RAMC_FUZZ_NAME
#error "compile with -DRAMC_FUZZ_NAME=<target>"
#endif
#define FUZZ_CAT2(a, b) a##b
#define FUZZ_CAT(a, b) FUZZ_CAT2(a, b)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    FUZZ_CAT(fuzz_init_, RAMC_FUZZ_NAME)();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    return FUZZ_CAT(fuzz_one_, RAMC_FUZZ_NAME)(data, size);
}
